/**
 * One patch being corrected, as the server sees it: the claim, the version the local edits
 * start from, saving (as RLE), reverting, accepting the prediction, keeping the annotation,
 * skipping. No DOM: the editor shows what these return.
 *
 * A save is based on `baseVersion`; when someone else saved meanwhile the server answers
 * 409, the session reloads the latest version and hands the local mask back so nothing
 * drawn is lost.
 */
import { ApiError, type SiteApi } from "../api/client";
import type { CorrectionVersion, WorklistItem } from "../api/types";
import { EditorModel } from "./model";
import { decodeMaskPng } from "./png";
import { encodeRle } from "./rle";

export type SaveOutcome =
  | { saved: CorrectionVersion }
  | { conflict: { latest: number; mine: Uint8Array } };

export class EditSession {
  versions: CorrectionVersion[] = [];
  /** The version the local edits start from (0: no correction yet). */
  baseVersion = 0;

  private constructor(
    private readonly api: SiteApi,
    public patch: WorklistItem,
    readonly model: EditorModel,
  ) {}

  /** Claims the patch (409 when someone else holds it) and loads its latest mask. */
  static async open(api: SiteApi, patch: WorklistItem): Promise<EditSession> {
    const claimed = await api.claim(patch.id);
    const session = new EditSession(api, claimed, new EditorModel(claimed.mask_width, claimed.mask_height));
    await session.reload();
    return session;
  }

  get id(): number {
    return this.patch.id;
  }

  /** The latest saved version (0: none). */
  get latest(): number {
    return this.versions.at(-1)?.version ?? 0;
  }

  /** What "undo last save" goes back to: the latest version's parent; null with no saves. */
  get previous(): number | null {
    const last = this.versions.at(-1);
    if (!last) return null;
    return last.parent_version ?? 0;
  }

  /** The server's latest state replaces the local mask; local undo history starts again. */
  async reload(): Promise<void> {
    this.versions = await this.api.versions(this.id);
    const blob = await this.api.mask(this.id, "latest");
    const labels = await decodeMaskPng(blob, this.model.width, this.model.height);
    this.baseVersion = this.latest;
    this.model.load(labels);
  }

  async save(): Promise<SaveOutcome> {
    const mine = this.model.labels.slice();
    try {
      const saved = await this.api.saveVersion(
        this.id, this.baseVersion, encodeRle(mine, this.model.width, this.model.height));
      this.versions = await this.api.versions(this.id);
      this.baseVersion = saved.version;
      this.model.markSaved();
      await this.refreshPatch();
      return { saved };
    } catch (error) {
      if (!(error instanceof ApiError && error.conflict)) throw error;
      await this.reload();
      return { conflict: { latest: this.latest, mine } };
    }
  }

  /** A new version with an earlier one's mask (0: back to no correction). */
  revert(toVersion: number): Promise<CorrectionVersion> {
    return this.act(() => this.api.revert(this.id, this.baseVersion, toVersion));
  }

  acceptPrediction(): Promise<CorrectionVersion> {
    return this.act(() => this.api.acceptPrediction(this.id, this.baseVersion));
  }

  keepAnnotation(): Promise<CorrectionVersion> {
    return this.act(() => this.api.keepAnnotation(this.id, this.baseVersion));
  }

  async skip(): Promise<WorklistItem> {
    this.patch = await this.api.skip(this.id);
    return this.patch;
  }

  /** Lets go of the claim (when moving on without saving); errors are not the user's. */
  async release(): Promise<void> {
    try {
      this.patch = await this.api.release(this.id);
    } catch {
      // the claim lapses on the server anyway
    }
  }

  async refreshPatch(): Promise<WorklistItem> {
    this.patch = await this.api.patch(this.id);
    return this.patch;
  }

  /** Runs a server-side action that makes a new version, then loads that version. */
  private async act(call: () => Promise<CorrectionVersion>): Promise<CorrectionVersion> {
    try {
      const version = await call();
      await this.reload();
      await this.refreshPatch();
      return version;
    } catch (error) {
      if (error instanceof ApiError && error.conflict) await this.reload();
      throw error;
    }
  }
}
