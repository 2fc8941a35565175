/**
 * The editing tools and how the mouse drives them: brush and eraser strokes, polygon fill,
 * and panning. Drawing reads OpenSeadragon's canvas events and cancels their default
 * action, so a drag paints instead of panning; the wheel still zooms. The pan tool, or
 * holding Space with any tool, gives the mouse back to OpenSeadragon.
 */
import OpenSeadragon from "openseadragon";
import type { SlideView } from "../slide-view";
import type { MaskLayer } from "./layer";
import type { Point } from "./raster";

export type Tool = "pan" | "brush" | "eraser" | "polygon";
export const TOOLS: Tool[] = ["pan", "brush", "eraser", "polygon"];
export const MIN_SIZE = 1;
export const MAX_SIZE = 128;

export class ToolState {
  tool: Tool = "brush";
  size = 12;
  label = 1;
  spaceHeld = false;
  /** The polygon being drawn, in mask px. */
  polygon: Point[] = [];
  onChange: () => void = () => undefined;

  /** Whether the mouse draws (rather than pans) right now. */
  get drawing(): boolean {
    return this.tool !== "pan" && !this.spaceHeld;
  }

  setTool(tool: Tool): void {
    if (tool !== "polygon") this.polygon = [];
    this.tool = tool;
    this.onChange();
  }

  setSize(size: number): void {
    this.size = Math.min(MAX_SIZE, Math.max(MIN_SIZE, Math.round(size)));
    this.onChange();
  }

  /** `[` and `]`: about 20 % smaller or larger, at least one pixel. */
  stepSize(direction: 1 | -1): void {
    const step = Math.max(1, Math.round(this.size * 0.2));
    this.setSize(this.size + direction * step);
  }

  setLabel(value: number): void {
    this.label = value;
    this.onChange();
  }
}

/** Connects the tools to the viewer's mouse events and the current patch's layer. */
export class ToolInput {
  private hover: Point | null = null;

  constructor(
    private readonly view: SlideView,
    private readonly state: ToolState,
    private readonly layer: () => MaskLayer | null,
    private readonly editable: () => boolean,
  ) {
    const viewer = view.viewer;
    viewer.addHandler("canvas-press", (event) => this.press(event));
    viewer.addHandler("canvas-drag", (event) => this.drag(event));
    viewer.addHandler("canvas-release", () => this.release());
    viewer.addHandler("canvas-click", (event) => this.click(event));
    viewer.addHandler("canvas-double-click", (event) => this.doubleClick(event));
    viewer.addHandler("canvas-exit", () => this.updateCursor(null));
    viewer.element.addEventListener("pointermove", (event) => {
      const box = viewer.element.getBoundingClientRect();
      this.updateCursor(new OpenSeadragon.Point(event.clientX - box.left, event.clientY - box.top));
    });
  }

  /** Closes and fills the polygon being drawn (Enter, double-click). */
  closePolygon(): void {
    const layer = this.layer();
    const vertices = dedupe(this.state.polygon);
    this.state.polygon = [];
    layer?.setPolygon([], null);
    if (layer && this.editable() && vertices.length >= 3) layer.model.fillPolygon(vertices, this.state.label);
  }

  /** Drops the polygon being drawn (Esc); whether there was one. */
  cancelPolygon(): boolean {
    const had = this.state.polygon.length > 0;
    this.state.polygon = [];
    this.layer()?.setPolygon([], null);
    return had;
  }

  /** Redraws the brush outline and polygon after a tool, size or Space change. */
  refresh(): void {
    this.updateCursor(null, true);
  }

  private target(position: OpenSeadragon.Point): { layer: MaskLayer; at: Point } | null {
    const layer = this.layer();
    if (!layer || !this.editable() || !this.view.base) return null;
    return { layer, at: layer.toMask(this.view.toImage(position)) };
  }

  private press(event: OpenSeadragon.CanvasPressEvent): void {
    if (!this.state.drawing || (this.state.tool !== "brush" && this.state.tool !== "eraser")) return;
    const target = this.target(event.position);
    if (!target) return;
    const value = this.state.tool === "eraser" ? 0 : this.state.label;
    target.layer.model.beginStroke(target.at, this.state.size, value);
  }

  private drag(event: OpenSeadragon.CanvasDragEvent): void {
    if (!this.state.drawing || !this.layer()) return;
    event.preventDefaultAction = true;
    const target = this.target(event.position);
    if (target?.layer.model.stroking) target.layer.model.continueStroke(target.at);
    this.updateCursor(event.position);
  }

  private release(): void {
    this.layer()?.model.endStroke();
  }

  private click(event: OpenSeadragon.CanvasClickEvent): void {
    if (!this.state.drawing || !this.layer()) return;
    event.preventDefaultAction = true;
    if (this.state.tool !== "polygon" || !event.quick) return;
    const target = this.target(event.position);
    if (!target) return;
    this.state.polygon.push(target.at);
    target.layer.setPolygon(this.state.polygon, null);
  }

  private doubleClick(event: OpenSeadragon.CanvasDoubleClickEvent): void {
    if (!this.state.drawing || !this.layer()) return;
    event.preventDefaultAction = true;
    if (this.state.tool === "polygon") this.closePolygon();
  }

  private updateCursor(position: OpenSeadragon.Point | null, keep = false): void {
    const layer = this.layer();
    if (!layer) return;
    if (!keep) this.hover = position && this.view.base ? layer.toMask(this.view.toImage(position)) : null;
    const { tool, size, polygon } = this.state;
    const brush = this.state.drawing && (tool === "brush" || tool === "eraser");
    layer.setCursor(brush ? this.hover : null, size);
    layer.setPolygon(tool === "polygon" ? polygon : [], tool === "polygon" ? this.hover : null);
    this.view.viewer.element.dataset.tool = this.state.drawing ? tool : "pan";
  }
}

/** Drops repeated vertices (a double-click adds its point twice). */
function dedupe(vertices: Point[]): Point[] {
  return vertices.filter((p, i) => i === 0 || Math.hypot(p.x - vertices[i - 1].x, p.y - vertices[i - 1].y) > 0.5);
}
