/**
 * The editing layer over a patch: a canvas of mask_width × mask_height pixels placed as an
 * OpenSeadragon overlay on the patch's level-0 rectangle (CSS-scaled, pixelated), drawing
 * the model's labels in their colours; and an SVG on top for the polygon being drawn and
 * the brush outline. It takes no pointer events: tools.ts reads OpenSeadragon's.
 */
import type { LabelInfo, WorklistItem } from "../api/types";
import { el, parseColour } from "../dom";
import type { SlideView } from "../slide-view";
import type { EditorModel } from "./model";
import type { PixelRect, Point } from "./raster";

const SVG = "http://www.w3.org/2000/svg";
const FILL_ALPHA = 0.45;

export class MaskLayer {
  readonly element: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  private readonly context: CanvasRenderingContext2D;
  private readonly svg: SVGSVGElement;
  private readonly outline: SVGPolylineElement;
  private readonly cursor: SVGCircleElement;
  private readonly palette: Uint8ClampedArray;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly view: SlideView,
    readonly patch: WorklistItem,
    readonly model: EditorModel,
    labels: LabelInfo[],
  ) {
    this.palette = palette(labels);
    this.canvas = el("canvas", { class: "mask-canvas", "data-testid": "mask-canvas" });
    this.canvas.width = model.width;
    this.canvas.height = model.height;
    const context = this.canvas.getContext("2d", { willReadFrequently: true });
    if (!context) throw new Error("no 2D canvas for the editing layer");
    this.context = context;

    this.svg = document.createElementNS(SVG, "svg");
    this.svg.setAttribute("class", "mask-tools");
    this.svg.setAttribute("viewBox", `0 0 ${model.width} ${model.height}`);
    this.svg.setAttribute("preserveAspectRatio", "none");
    this.outline = document.createElementNS(SVG, "polyline");
    this.outline.setAttribute("class", "polygon-outline");
    this.cursor = document.createElementNS(SVG, "circle");
    this.cursor.setAttribute("class", "brush-cursor");
    this.cursor.style.display = "none";
    this.svg.append(this.outline, this.cursor);

    this.element = el("div", { class: "mask-layer", "data-testid": "mask-layer", "data-patch-id": patch.id });
    this.element.append(this.canvas, this.svg);
    view.viewer.addOverlay({ element: this.element, location: view.toViewport(patch) });
    this.unsubscribe = model.onChange((rect) => this.redraw(rect));
    this.redraw(null);
  }

  /** Repaints `rect` of the mask (all of it when null). */
  redraw(rect: PixelRect | null): void {
    const { width, height, labels } = this.model;
    const r = rect ?? { x: 0, y: 0, width, height };
    if (r.width <= 0 || r.height <= 0) return;
    const image = this.context.createImageData(r.width, r.height);
    const out = image.data;
    let o = 0;
    for (let y = r.y; y < r.y + r.height; y++) {
      let i = y * width + r.x;
      for (let x = 0; x < r.width; x++, i++, o += 4) {
        const p = labels[i] * 4;
        out[o] = this.palette[p];
        out[o + 1] = this.palette[p + 1];
        out[o + 2] = this.palette[p + 2];
        out[o + 3] = this.palette[p + 3];
      }
    }
    this.context.putImageData(image, r.x, r.y);
  }

  setVisible(visible: boolean): void {
    this.canvas.style.visibility = visible ? "visible" : "hidden";
  }

  get visible(): boolean {
    return this.canvas.style.visibility !== "hidden";
  }

  /** The polygon being drawn (mask px), open, with a rubber band to `hover`. */
  setPolygon(vertices: Point[], hover: Point | null): void {
    const points = hover && vertices.length ? [...vertices, hover] : vertices;
    this.outline.setAttribute("points", points.map((p) => `${p.x},${p.y}`).join(" "));
  }

  /** The brush outline at `at` (mask px), diameter `size`; hidden when null. */
  setCursor(at: Point | null, size: number): void {
    if (!at) {
      this.cursor.style.display = "none";
      return;
    }
    this.cursor.style.display = "";
    this.cursor.setAttribute("cx", String(at.x));
    this.cursor.setAttribute("cy", String(at.y));
    this.cursor.setAttribute("r", String(Math.max(0.5, size / 2)));
  }

  /** Mask pixel coordinates (continuous) of a level-0 image point. */
  toMask(image: Point): Point {
    const { patch, model } = this;
    return {
      x: ((image.x - patch.x) * model.width) / patch.width,
      y: ((image.y - patch.y) * model.height) / patch.height,
    };
  }

  destroy(): void {
    this.unsubscribe();
    this.view.viewer.removeOverlay(this.element);
  }
}

/** RGBA per label value (256 entries); 0 is transparent, unknown labels magenta. */
function palette(labels: LabelInfo[]): Uint8ClampedArray {
  const table = new Uint8ClampedArray(256 * 4);
  for (let value = 1; value < 256; value++) table.set([255, 0, 255, 255 * FILL_ALPHA], value * 4);
  for (const label of labels) {
    if (label.value <= 0 || label.value > 255) continue;
    table.set([...parseColour(label.color), 255 * FILL_ALPHA], label.value * 4);
  }
  return table;
}
