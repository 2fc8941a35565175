/**
 * The viewer's wiring: slides, the deep-zoom view and its overlays, the worklist, the patch
 * editor, the inspection mode, jobs and the keyboard. Each part lives in its own module; this
 * one decides what happens when the pathologist moves between modes, slides and patches, and
 * keeps the inspection mode's place in the address (`#mode=inspection&item=…`).
 */
import type { SiteApi } from "./api/client";
import type { SlideDetail, SlideSummary, WorklistItem } from "./api/types";
import type { InspectionDecision } from "./api/types";
import { button, byId, el } from "./dom";
import { Editor } from "./editor/editor";
import { InspectionPanel } from "./inspection";
import { formatState, parseState, type Mode, type ViewState } from "./inspection-state";
import { JobsPanel } from "./jobs";
import { OverlayLayers } from "./overlays";
import { actionFor, helpOverlay, typingInto, type Action } from "./shortcuts";
import { SlideView } from "./slide-view";
import { banner, describe, notify, track } from "./status";
import { Toolbar } from "./toolbar";
import { pickNext, WorklistPanel } from "./worklist";

export class App {
  me: string | null = null;
  slides: SlideSummary[] = [];
  slide: SlideDetail | null = null;
  readonly view: SlideView;
  readonly overlays: OverlayLayers;
  readonly worklist: WorklistPanel;
  readonly editor: Editor;
  readonly jobs: JobsPanel;
  readonly toolbar: Toolbar;
  readonly inspection: InspectionPanel;
  mode: Mode = "worklist";
  private readonly modeButtons: Map<Mode, HTMLButtonElement>;
  private refreshing: Promise<void> | null = null;

  constructor(private readonly api: SiteApi) {
    this.view = new SlideView(byId("view"), api.authHeaders);
    this.overlays = new OverlayLayers(this.view, byId("overlays"));
    this.worklist = new WorklistPanel(api, byId("worklist"), byId("worklist-counts"));
    this.worklist.onSelect = (item) => void this.openPatch(item);
    this.editor = new Editor(this.view, api, {
      patchChanged: (item) => this.patchChanged(item),
      versionSaved: () => void this.refreshSlide(),
      stateChanged: () => this.stateChanged(),
    }, byId("versions"));
    this.toolbar = new Toolbar(byId("toolbar"), this.editor, (action) => void this.perform(action));
    this.inspection = new InspectionPanel(api, (decision, whole) => void this.decide(decision, whole), () => this.toggleHelp());
    this.inspection.onChange = () => this.writeUrl();
    this.modeButtons = new Map([
      ["worklist", button("Worklist", "mode-worklist", () => void this.setMode("worklist"),
        "Correct the most uncertain patches of each slide (I switches)")],
      ["inspection", button("Inspection", "mode-inspection", () => void this.setMode("inspection"),
        "Review the annotations an inspection run found most suspect (I switches)")],
    ]);
    byId("modes").replaceChildren(...this.modeButtons.values());
    this.jobs = new JobsPanel(api, byId("jobs"));
    this.jobs.onFinished = (job) => {
      notify(`${job.kind} ${job.state}${job.error ? `: ${job.error}` : ""}`, job.state === "succeeded" ? "ok" : "warn");
      if (String(job.kind) === "inspect" && this.mode === "inspection" && job.state === "succeeded") {
        void this.inspection.open({ ...this.inspection.state, inspection: null, item: null, instance: null });
      }
      if (job.slide_id === null || job.slide_id === this.slide?.id) void this.refreshSlide(true);
    };
    byId("start-predict").addEventListener("click", () => void this.jobs.run("predict", this.slide?.id ?? null));
    byId("start-rank").addEventListener("click", () => void this.jobs.run("rank", this.slide?.id ?? null));
    this.bindKeys();
  }

  async start(): Promise<void> {
    const [me, slides] = await track(Promise.all([this.api.me(), this.api.slides()]));
    this.me = me.user;
    byId("user").textContent = me.user;
    this.slides = slides;
    this.renderSlides();
    this.jobs.start();
    this.stateChanged();
    notify(slides.length ? "Choose a slide, or press N for the next uncertain patch" : "No slides on this site yet");
    const state = parseState(window.location.hash);
    if (state.mode === "inspection") await this.setMode("inspection", state);
    else this.showMode();
  }

  /**
   * Switches between the worklist and the inspection (asking first when the open patch has
   * unsaved edits); the inspection opens at `state` (where it was, by default).
   */
  async setMode(mode: Mode, state?: ViewState): Promise<void> {
    if (mode === "inspection" && this.mode === "worklist") {
      if (!(await this.leaveEditing())) return;
      await this.editor.close();
      this.worklist.setCurrent(null);
    }
    const opening = mode === "inspection" && (this.mode !== "inspection" || state !== undefined);
    this.mode = mode;
    this.showMode();
    this.toggleHelp(false);
    if (opening) await this.inspection.open(state ?? this.inspection.state);
    else if (mode === "worklist") notify("Worklist: choose a slide, or press N for the next uncertain patch");
    this.writeUrl();
  }

  private showMode(): void {
    // The parts of one mode only (the body's own data-mode says which mode is shown).
    for (const part of byId("app").querySelectorAll<HTMLElement>("[data-mode]")) part.hidden = part.dataset.mode !== this.mode;
    for (const [mode, b] of this.modeButtons) {
      b.classList.toggle("active", mode === this.mode);
      b.setAttribute("aria-pressed", String(mode === this.mode));
    }
    document.body.dataset.mode = this.mode;
  }

  /** The mode (and the inspection's place) in the address, replacing the current entry. */
  private writeUrl(): void {
    const state: ViewState = this.mode === "inspection" ? this.inspection.state : parseState("");
    const { pathname, search, hash } = window.location;
    const next = formatState(state, hash);
    if (next !== hash && !(next === "" && hash === "#")) history.replaceState(null, "", `${pathname}${search}${next}`);
  }

  /** A decision from a button or key: for the item, or for the selected instance when there is one. */
  private async decide(decision: InspectionDecision, whole: boolean): Promise<void> {
    await this.inspection.decide(decision, whole || this.inspection.instance === null);
  }

  /** Opens a slide (asking first when the open patch has unsaved edits). */
  async openSlide(slideId: number): Promise<void> {
    if (await this.leaveEditing()) await this.showSlide(slideId);
  }

  private async showSlide(slideId: number): Promise<void> {
    await this.editor.close();
    try {
      const slide = await track(this.api.slide(slideId));
      this.slide = slide;
      this.renderSlides();
      byId("slide-name").textContent = slide.name;
      await track(this.view.open(slide));
      this.editor.setLabels(slide.labels);
      this.toolbar.setLabels(slide.labels);
      await track(Promise.all([this.overlays.show(slide), this.worklist.load(slide.id)]));
      this.worklist.setCurrent(null);
      notify(`${slide.name}: ${slide.width}×${slide.height} px at ${slide.mpp.toFixed(3)} µm/px`);
    } catch (error) {
      notify(`Cannot open slide ${slideId}: ${describe(error)}`, "error");
      throw error;
    }
  }

  /** Opens a worklist patch: its slide if needed, the view zoomed on it, the editor on it. */
  async openPatch(item: WorklistItem): Promise<boolean> {
    return (await this.leaveEditing()) && this.showPatch(item);
  }

  private async showPatch(item: WorklistItem): Promise<boolean> {
    if (this.slide?.id !== item.slide_id) await this.showSlide(item.slide_id);
    else await this.editor.close();
    this.view.fit(item);
    this.worklist.setCurrent(item.id);
    const opened = await this.editor.open(item);
    if (!opened) this.worklist.setCurrent(null);
    return opened;
  }

  /** The next pending patch: on the open slide first, then on any slide. */
  async next(): Promise<void> {
    if (!(await this.leaveEditing())) return;
    const current = this.editor.patch?.id ?? null;
    const tried = new Set<number>();
    for (const slideId of this.slide ? [this.slide.id, undefined] : [undefined]) {
      const items = await track(this.api.worklist(slideId, "pending"));
      for (;;) {
        const pick = pickNext(items.filter((item) => !tried.has(item.id)), current, this.me);
        if (!pick) break;
        tried.add(pick.id);
        if (await this.showPatch(pick)) return;
      }
    }
    notify("No pending patch left to correct", "ok");
  }

  async perform(action: Action): Promise<void> {
    const { editor, view, inspection } = this;
    const patch = editor.patch;
    switch (action) {
      case "mode": return this.setMode(this.mode === "worklist" ? "inspection" : "worklist");
      case "item-next": return inspection.stepItem(1);
      case "item-prev": return inspection.stepItem(-1);
      case "instance-next": return inspection.stepInstance(1);
      case "instance-prev": return inspection.stepInstance(-1);
      case "instance-none":
        if (!byId("help-backdrop").hidden) this.toggleHelp(false);
        else inspection.selectInstance(null);
        return;
      case "decide-keep": return this.decide("keep-annotation", false);
      case "decide-accept": return this.decide("accept-prediction", false);
      case "decide-reannotate": return this.decide("re-annotate", false);
      case "item-keep": return this.decide("keep-annotation", true);
      case "item-accept": return this.decide("accept-prediction", true);
      case "item-reannotate": return this.decide("re-annotate", true);
      case "next": return this.next();
      case "help": return this.toggleHelp();
      case "cancel":
        if (!editor.input.cancelPolygon()) this.toggleHelp(false);
        return;
      case "polygon-close": return editor.input.closePolygon();
      case "tool-pan": return editor.tools.setTool("pan");
      case "tool-brush": return editor.tools.setTool("brush");
      case "tool-eraser": return editor.tools.setTool("eraser");
      case "tool-polygon": return editor.tools.setTool("polygon");
      case "size-down": return editor.tools.stepSize(-1);
      case "size-up": return editor.tools.stepSize(1);
      case "undo": return editor.undo();
      case "redo": return editor.redo();
      case "save": return editor.save();
      case "accept": return editor.acceptPrediction();
      case "keep": return editor.keepAnnotation();
      case "clear": return editor.clear();
      case "skip": return editor.skip();
      case "undo-save": return editor.undoLastSave();
      case "toggle-mask": return editor.toggleMask();
      case "toggle-uncertainty": return this.overlays.toggle("uncertainty");
      case "zoom-in": return view.zoomBy(1.5);
      case "zoom-out": return view.zoomBy(1 / 1.5);
      case "home": return view.home();
      case "zoom-patch":
        if (patch) view.fit(patch);
        return;
      case "pan-left": return view.panBy(-0.2, 0);
      case "pan-right": return view.panBy(0.2, 0);
      case "pan-up": return view.panBy(0, -0.2);
      case "pan-down": return view.panBy(0, 0.2);
      default: {
        const label = /^label-(\d)$/.exec(action);
        const painted = editor.labels.filter((l) => l.value > 0);
        if (label && painted[Number(label[1]) - 1]) editor.tools.setLabel(painted[Number(label[1]) - 1].value);
      }
    }
  }

  /** The slide's overlays and worklist again (after a save or a finished job). */
  refreshSlide(withWorklist = false): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const slide = this.slide;
        if (!slide) return;
        const fresh = await this.api.slide(slide.id);
        if (this.slide?.id !== fresh.id) return;
        this.slide = fresh;
        await this.overlays.refresh(fresh);
        if (withWorklist) await this.worklist.reload();
        this.slides = await this.api.slides();
        this.renderSlides();
      } catch (error) {
        notify(`Cannot refresh the slide: ${describe(error)}`, "warn");
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /**
   * Whether the open patch may be left: yes without unsaved edits, else as the user decides
   * (save, discard or stay).
   */
  private leaveEditing(): Promise<boolean> {
    const patch = this.editor.patch;
    if (!patch || !this.editor.dirty) return Promise.resolve(true);
    return new Promise((resolve) => banner(
      `Patch #${patch.rank} has unsaved edits.`, "warn",
      [
        {
          label: "Save and go on", testId: "unsaved-save",
          run: () => void this.editor.save().then(() => resolve(!this.editor.dirty)),
        },
        { label: "Discard them", testId: "unsaved-discard", run: () => resolve(true) },
        { label: "Stay", testId: "unsaved-stay", run: () => resolve(false) },
      ],
      "unsaved-banner",
    ));
  }

  private patchChanged(item: WorklistItem): void {
    this.worklist.update(item);
  }

  private stateChanged(): void {
    this.toolbar.sync();
    const patch = this.editor.patch;
    const session = this.editor.session;
    byId("patch-info").textContent = patch && session
      ? `#${patch.rank} · ${patch.mask_width}×${patch.mask_height} · v${session.baseVersion}${this.editor.dirty ? " · unsaved" : ""}`
      : "";
    document.body.dataset.patch = patch ? String(patch.id) : "";
  }

  private renderSlides(): void {
    const list = byId("slides");
    list.replaceChildren(...this.slides.map((slide) => {
      const row = el("li", {
        class: `slide-item${slide.id === this.slide?.id ? " current" : ""}`,
        "data-testid": "slide-item", "data-slide-id": slide.id, tabindex: 0,
        title: `${slide.width}×${slide.height} px, ${slide.mpp} µm/px${slide.vendor ? `, ${slide.vendor}` : ""}`
          + (slide.objective_power ? `, ${slide.objective_power}×` : ""),
      },
        el("span", { class: "slide-name" }, slide.name),
        el("span", { class: "slide-counts" }, `${slide.worklist.pending} pending · ${slide.worklist.corrected} done`));
      const open = () => void this.openSlide(slide.id).catch(() => undefined);
      row.addEventListener("click", open);
      row.addEventListener("keydown", (event) => {
        if (event.key === "Enter") {
          event.stopPropagation();
          open();
        }
      });
      return row;
    }));
    if (this.slides.length === 0) list.append(el("li", { class: "empty" }, "No slides: ingest some with pathloop ingest."));
  }

  private toggleHelp(show?: boolean): void {
    const backdrop = byId("help-backdrop");
    const visible = show ?? backdrop.hidden;
    backdrop.hidden = !visible;
    if (visible) backdrop.replaceChildren(helpOverlay(this.mode));
  }

  private bindKeys(): void {
    byId("help-backdrop").addEventListener("click", () => this.toggleHelp(false));
    window.addEventListener("keydown", (event) => {
      if (event.key === " " && !typingInto(event.target)) {
        event.preventDefault(); // no page scroll, no button press
        if (!event.repeat) this.space(true);
        return;
      }
      const action = actionFor(event, this.mode);
      if (!action) return;
      const typing = typingInto(event.target);
      if (typing && action !== "save" && action !== "cancel") return;
      if (event.target instanceof HTMLInputElement && event.target.type === "range" && action.startsWith("pan-")) return;
      if (action === "polygon-close" && !this.editor.tools.polygon.length) return; // Enter on a focused control
      event.preventDefault();
      void this.perform(action);
    });
    window.addEventListener("keyup", (event) => {
      if (event.key === " ") {
        if (!typingInto(event.target)) event.preventDefault();
        this.space(false);
      }
    });
    window.addEventListener("blur", () => this.space(false));
    window.addEventListener("hashchange", () => {
      const state = parseState(window.location.hash);
      if (state.mode !== this.mode || state.mode === "inspection") void this.setMode(state.mode, state.mode === "inspection" ? state : undefined);
    });
    window.addEventListener("beforeunload", (event) => {
      if (this.editor.dirty) event.preventDefault(); // the browser asks before losing edits
    });
  }

  private space(held: boolean): void {
    if (this.editor.tools.spaceHeld === held) return;
    this.editor.tools.spaceHeld = held;
    this.editor.input.refresh();
  }
}
