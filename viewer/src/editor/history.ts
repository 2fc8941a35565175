/**
 * Undo/redo of local edits: a stack of whole-mask snapshots.
 *
 * Before each edit the caller records the state it is about to change; `undo` hands back
 * the state to restore and keeps the current one for `redo`. A new edit drops the redo
 * branch. The number of snapshots kept is bounded by a byte budget (oldest go first).
 */
export class UndoStack {
  private readonly done: Uint8Array[] = [];
  private readonly undone: Uint8Array[] = [];

  constructor(private readonly maxBytes = 64 * 1024 * 1024, private readonly minEntries = 10) {}

  /** Records `before` (a copy is kept) as the state an edit is about to change. */
  record(before: Uint8Array): void {
    this.done.push(before.slice());
    this.undone.length = 0;
    const limit = Math.max(this.minEntries, Math.floor(this.maxBytes / Math.max(1, before.length)));
    while (this.done.length > limit) this.done.shift();
  }

  /** The state to restore, given the current one (kept for redo); null when nothing to undo. */
  undo(current: Uint8Array): Uint8Array | null {
    const previous = this.done.pop();
    if (!previous) return null;
    this.undone.push(current.slice());
    return previous;
  }

  /** The state to restore again, given the current one; null when nothing to redo. */
  redo(current: Uint8Array): Uint8Array | null {
    const next = this.undone.pop();
    if (!next) return null;
    this.done.push(current.slice());
    return next;
  }

  get canUndo(): boolean {
    return this.done.length > 0;
  }

  get canRedo(): boolean {
    return this.undone.length > 0;
  }

  clear(): void {
    this.done.length = 0;
    this.undone.length = 0;
  }
}
