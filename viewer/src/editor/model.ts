/**
 * The editing model of one patch: its label mask, local undo/redo and what the server holds.
 *
 * No DOM here: views listen with `onChange` and redraw the rectangle they are told about
 * (null means everything). Label values are bytes, 0 is background; the mask is row-major,
 * `width * height`, at the patch's mask resolution.
 */
import { UndoStack } from "./history";
import {
  fillPolygon,
  strokeSegment,
  type PixelRect,
  type Point,
  type Raster,
} from "./raster";

export type ChangeListener = (rect: PixelRect | null) => void;

export class EditorModel implements Raster {
  labels: Uint8Array;
  readonly history = new UndoStack();
  private baseline: Uint8Array;
  private stroke: { last: Point; size: number; value: number } | null = null;
  private readonly listeners = new Set<ChangeListener>();

  constructor(readonly width: number, readonly height: number, labels?: Uint8Array) {
    if (labels && labels.length !== width * height) {
      throw new Error(`mask has ${labels.length} pixels, expected ${width}×${height}`);
    }
    this.labels = labels ? labels.slice() : new Uint8Array(width * height);
    this.baseline = this.labels.slice();
  }

  /** The label at mask pixel (x, y); -1 outside the mask. */
  labelAt(x: number, y: number): number {
    const [i, j] = [Math.floor(x), Math.floor(y)];
    if (i < 0 || j < 0 || i >= this.width || j >= this.height) return -1;
    return this.labels[j * this.width + i];
  }

  /** How many pixels hold `value`. */
  count(value: number): number {
    let n = 0;
    for (const label of this.labels) if (label === value) n++;
    return n;
  }

  /** Whether the mask differs from the version it was loaded from or last saved as. */
  get dirty(): boolean {
    const { labels, baseline } = this;
    for (let i = 0; i < labels.length; i++) if (labels[i] !== baseline[i]) return true;
    return false;
  }

  get stroking(): boolean {
    return this.stroke !== null;
  }

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts a brush (value = label) or eraser (value = 0) stroke of diameter `size` px. */
  beginStroke(at: Point, size: number, value: number): void {
    this.history.record(this.labels);
    this.stroke = { last: at, size, value };
    this.touched(strokeSegment(this, at, at, size, value));
  }

  continueStroke(to: Point): void {
    if (!this.stroke) return;
    const { last, size, value } = this.stroke;
    this.stroke.last = to;
    this.touched(strokeSegment(this, last, to, size, value));
  }

  endStroke(): void {
    this.stroke = null;
  }

  fillPolygon(vertices: Point[], value: number): void {
    if (vertices.length < 3) return;
    this.history.record(this.labels);
    this.touched(fillPolygon(this, vertices, value));
  }

  /** Clears the mask to background, to annotate the patch afresh. */
  clear(): void {
    this.history.record(this.labels);
    this.labels.fill(0);
    this.emit(null);
  }

  undo(): boolean {
    return this.restore(this.history.undo(this.labels));
  }

  redo(): boolean {
    return this.restore(this.history.redo(this.labels));
  }

  /**
   * Replaces the whole mask.
   *
   * As the server's state (`asEdit` false): local history and the saved baseline start
   * again from it. As an edit (`asEdit` true, e.g. re-applying strokes after a conflict):
   * it is undoable and leaves the baseline alone.
   */
  load(labels: Uint8Array, asEdit = false): void {
    if (labels.length !== this.labels.length) {
      throw new Error(`mask has ${labels.length} pixels, expected ${this.width}×${this.height}`);
    }
    this.stroke = null;
    if (asEdit) {
      this.history.record(this.labels);
    } else {
      this.history.clear();
      this.baseline = labels.slice();
    }
    this.labels = labels.slice();
    this.emit(null);
  }

  /** The current mask is what the server now holds. */
  markSaved(): void {
    this.baseline = this.labels.slice();
  }

  private restore(state: Uint8Array | null): boolean {
    if (!state) return false;
    this.stroke = null;
    this.labels = state;
    this.emit(null);
    return true;
  }

  /** An edit touched `rect` (nothing when null). */
  private touched(rect: PixelRect | null): void {
    if (rect) this.emit(rect);
  }

  /** Tells the views to redraw `rect`, or everything when null. */
  private emit(rect: PixelRect | null): void {
    for (const listener of this.listeners) listener(rect);
  }
}
