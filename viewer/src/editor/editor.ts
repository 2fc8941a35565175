/**
 * The patch editor: the open patch's session, its editing layer, the tools, the version
 * history; every action a pathologist takes on a patch goes through here (toolbar buttons
 * and shortcuts alike).
 */
import { ApiError, type SiteApi } from "../api/client";
import type { LabelInfo, WorklistItem } from "../api/types";
import { banner, clearBanner, describe, notify, track } from "../status";
import type { SlideView } from "../slide-view";
import { MaskLayer } from "./layer";
import { EditSession } from "./session";
import { ToolInput, ToolState } from "./tools";
import { VersionsPanel } from "./versions-panel";

export interface EditorHooks {
  /** A patch's worklist entry changed (claimed, saved, skipped). */
  patchChanged: (item: WorklistItem) => void;
  /** A new version was saved on the server (the corrections overlay changed). */
  versionSaved: () => void;
  /** The editor's state changed (toolbar buttons, patch line). */
  stateChanged: () => void;
}

export class Editor {
  session: EditSession | null = null;
  layer: MaskLayer | null = null;
  labels: LabelInfo[] = [];
  readonly tools = new ToolState();
  readonly input: ToolInput;
  private readonly versions: VersionsPanel;
  private pendingState = false;

  constructor(
    private readonly view: SlideView,
    private readonly api: SiteApi,
    private readonly hooks: EditorHooks,
    versionsRoot: HTMLElement,
  ) {
    this.input = new ToolInput(view, this.tools, () => this.layer, () => this.session !== null);
    this.tools.onChange = () => {
      this.input.refresh();
      this.hooks.stateChanged();
    };
    this.versions = new VersionsPanel(versionsRoot, {
      restore: (version) => void this.restore(version),
      undoLastSave: () => void this.undoLastSave(),
    });
    this.versions.render(null, 0);
  }

  get patch(): WorklistItem | null {
    return this.session?.patch ?? null;
  }

  get dirty(): boolean {
    return this.session?.model.dirty ?? false;
  }

  /** The slide's labels: the brush's choices and the layer's colours. */
  setLabels(labels: LabelInfo[]): void {
    this.labels = labels;
    const painted = labels.filter((label) => label.value > 0);
    if (!painted.some((label) => label.value === this.tools.label) && painted.length) {
      this.tools.setLabel(painted[0].value);
    }
  }

  /** Claims `item` and starts editing it (its slide must be open). False when it cannot. */
  async open(item: WorklistItem): Promise<boolean> {
    await this.close();
    try {
      const session = await track(EditSession.open(this.api, item));
      this.session = session;
      this.layer = new MaskLayer(this.view, session.patch, session.model, this.labels);
      session.model.onChange(() => this.stateSoon());
      this.hooks.patchChanged(session.patch);
      this.render();
      notify(`Editing patch #${item.rank} of ${item.slide_name} (v${session.baseVersion})`);
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.conflict) {
        notify(`Patch #${item.rank} is being corrected by someone else: ${error.detail}`, "warn");
      } else {
        notify(`Cannot open patch ${item.id}: ${describe(error)}`, "error");
      }
      this.render();
      return false;
    }
  }

  /** Stops editing (before another patch or slide); an unsaved, unchanged claim is released. */
  async close(): Promise<void> {
    const session = this.session;
    this.input.cancelPolygon();
    this.layer?.destroy();
    this.layer = null;
    this.session = null;
    clearBanner();
    if (session && session.patch.status === "pending" && session.latest === 0 && !session.model.dirty) {
      await session.release();
      this.hooks.patchChanged(session.patch);
    }
    this.render();
  }

  labelAt(x: number, y: number): number {
    return this.session?.model.labelAt(x, y) ?? -1;
  }

  undo(): void {
    if (this.session && !this.session.model.undo()) notify("Nothing to undo");
  }

  redo(): void {
    if (this.session && !this.session.model.redo()) notify("Nothing to redo");
  }

  /** Clears the local mask to background, to annotate afresh (undoable, not saved yet). */
  clear(): void {
    if (!this.session) return;
    this.session.model.clear();
    notify("Mask cleared: paint the patch afresh, then save");
  }

  toggleMask(): void {
    if (this.layer) this.layer.setVisible(!this.layer.visible);
  }

  save(): Promise<void> {
    return this.run("Saving", async (session) => {
      const outcome = await session.save();
      if ("saved" in outcome) {
        notify(`Saved v${outcome.saved.version} of patch #${session.patch.rank}`, "ok");
        this.afterNewVersion(session);
        return;
      }
      const { latest, mine } = outcome.conflict;
      this.afterNewVersion(session);
      banner(
        `Someone else saved v${latest} of this patch while you were editing; it is loaded now. `
          + "Your edit is kept: re-apply it on top, then save again.",
        "warn",
        [
          {
            label: "Re-apply my edit", testId: "reapply-edit",
            run: () => {
              if (this.session === session) session.model.load(mine, true);
              notify(`Your edit is back, based on v${latest}: save to keep it`, "info");
            },
          },
          { label: "Keep theirs", testId: "discard-edit", run: () => notify(`Showing v${latest}`) },
        ],
        "conflict-banner",
      );
    });
  }

  restore(version: number): Promise<void> {
    return this.run(`Restoring v${version}`, async (session) => {
      const made = await session.revert(version);
      notify(`v${made.version}: restored v${version}`, "ok");
      this.afterNewVersion(session);
    });
  }

  undoLastSave(): Promise<void> {
    return this.run("Undoing the last save", async (session) => {
      const previous = session.previous;
      if (previous === null) {
        notify("Nothing saved yet for this patch");
        return;
      }
      const made = await session.revert(previous);
      notify(`v${made.version}: back to v${previous}${previous === 0 ? " (no correction)" : ""}`, "ok");
      this.afterNewVersion(session);
    });
  }

  acceptPrediction(): Promise<void> {
    return this.run("Accepting the prediction", async (session) => {
      const made = await session.acceptPrediction();
      notify(`v${made.version}: prediction accepted`, "ok");
      this.afterNewVersion(session);
    });
  }

  keepAnnotation(): Promise<void> {
    return this.run("Keeping the annotation", async (session) => {
      const made = await session.keepAnnotation();
      notify(`v${made.version}: annotation kept`, "ok");
      this.afterNewVersion(session);
    });
  }

  skip(): Promise<void> {
    return this.run("Skipping", async (session) => {
      const item = await session.skip();
      this.hooks.patchChanged(item);
      notify(`Patch #${item.rank} skipped`);
    });
  }

  /** Runs an action on the open patch: busy while it runs, errors shown, state redrawn. */
  private async run(what: string, action: (session: EditSession) => Promise<void>): Promise<void> {
    const session = this.session;
    if (!session) {
      notify("Open a patch first (N: next uncertain patch)", "warn");
      return;
    }
    notify(`${what}…`);
    try {
      await track(action(session));
    } catch (error) {
      if (error instanceof ApiError && error.conflict) {
        notify(`Someone else changed this patch meanwhile (${error.detail}); the latest version is loaded`, "warn");
        this.afterNewVersion(session);
      } else {
        notify(`${what} failed: ${describe(error)}`, "error");
      }
    } finally {
      this.render();
    }
  }

  private afterNewVersion(session: EditSession): void {
    this.hooks.patchChanged(session.patch);
    this.hooks.versionSaved();
  }

  private stateSoon(): void {
    if (this.pendingState) return;
    this.pendingState = true;
    requestAnimationFrame(() => {
      this.pendingState = false;
      this.hooks.stateChanged();
    });
  }

  private render(): void {
    const session = this.session;
    this.versions.render(session ? session.versions : null, session?.baseVersion ?? 0);
    this.hooks.stateChanged();
  }
}
