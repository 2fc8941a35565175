/**
 * The deep-zoom view: one OpenSeadragon viewer showing the open slide (the world's first
 * item) and its overlays as further tiled images on the same grid.
 *
 * Image coordinates are the slide's level-0 pixels; worklist patches are given in them.
 */
import OpenSeadragon from "openseadragon";
import type { SlideDetail } from "./api/types";
import { deepZoomSource, type InlineTileSource } from "./tiles";

export interface ImageRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export class SlideView {
  readonly viewer: OpenSeadragon.Viewer;
  slide: SlideDetail | null = null;

  constructor(element: HTMLElement, authHeaders: Record<string, string>) {
    this.viewer = OpenSeadragon({
      element,
      // WebGL runs in software on machines without a GPU: the canvas drawer is much faster.
      drawer: "canvas",
      loadTilesWithAjax: true,
      ajaxHeaders: authHeaders,
      showNavigator: true,
      navigatorPosition: "BOTTOM_RIGHT",
      navigatorSizeRatio: 0.16,
      showNavigationControl: false,
      // the viewer's own shortcuts (shortcuts.ts) replace OpenSeadragon's w/a/s/d/r/f keys
      keyboardNavEnabled: false,
      gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: false },
      visibilityRatio: 0.3,
      maxZoomPixelRatio: 4,
      animationTime: 0.5,
    });
    this.viewer.addHandler("fully-loaded-change", (event) => {
      if (event.fullyLoaded) window.dispatchEvent(new Event("pathloop:tiles-loaded"));
    });
  }

  /** The slide's own tiled image (null before one is open). */
  get base(): OpenSeadragon.TiledImage | null {
    return this.viewer.world.getItemCount() ? this.viewer.world.getItemAt(0) : null;
  }

  /** Opens a slide (closing the previous one, its overlays and HTML overlays). */
  open(slide: SlideDetail): Promise<void> {
    this.slide = slide;
    return new Promise((resolve, reject) => {
      const opened = () => {
        this.viewer.removeHandler("open-failed", failed);
        resolve();
      };
      const failed = (event: OpenSeadragon.OpenFailedEvent) => {
        this.viewer.removeHandler("open", opened);
        reject(new Error(`cannot open slide ${slide.name}: ${String(event.message)}`));
      };
      this.viewer.addOnceHandler("open", opened);
      this.viewer.addOnceHandler("open-failed", failed);
      this.viewer.open({ tileSource: deepZoomSource(slide.deepzoom) });
    });
  }

  /** Adds a layer over the whole slide; resolves with its tiled image. */
  addLayer(source: InlineTileSource, opacity: number, index?: number): Promise<OpenSeadragon.TiledImage> {
    return new Promise((resolve, reject) => {
      this.viewer.addTiledImage({
        tileSource: source,
        x: 0,
        y: 0,
        width: 1,
        opacity,
        index,
        success: (event) => resolve((event as unknown as { item: OpenSeadragon.TiledImage }).item),
        error: (error) => reject(error),
      });
    });
  }

  removeLayer(item: OpenSeadragon.TiledImage): void {
    this.viewer.world.removeItem(item);
  }

  /** A level-0 image rectangle in viewport coordinates (where HTML overlays are placed). */
  toViewport(rect: ImageRect): OpenSeadragon.Rect {
    const base = this.requireBase();
    return base.imageToViewportRectangle(rect.x, rect.y, rect.width, rect.height);
  }

  /** A point in the viewer element's pixels as level-0 image coordinates. */
  toImage(elementPoint: OpenSeadragon.Point): OpenSeadragon.Point {
    return this.requireBase().viewerElementToImageCoordinates(elementPoint);
  }

  /** Zooms to show `rect` (level-0 px) with a margin of `margin` × its size around it. */
  fit(rect: ImageRect, margin = 0.15, immediately = false): void {
    const pad = { x: rect.width * margin, y: rect.height * margin };
    this.viewer.viewport.fitBounds(
      this.toViewport({
        x: rect.x - pad.x, y: rect.y - pad.y,
        width: rect.width + 2 * pad.x, height: rect.height + 2 * pad.y,
      }),
      immediately,
    );
  }

  zoomBy(factor: number): void {
    this.viewer.viewport.zoomBy(factor);
    this.viewer.viewport.applyConstraints();
  }

  panBy(dx: number, dy: number): void {
    const bounds = this.viewer.viewport.getBounds();
    this.viewer.viewport.panBy(new OpenSeadragon.Point(dx * bounds.width, dy * bounds.height));
  }

  home(): void {
    this.viewer.viewport.goHome();
  }

  /**
   * Resolves once the view has settled and every visible layer has loaded its tiles for it
   * (OpenSeadragon's `fully-loaded-change` on the world's items). Hidden layers (opacity 0)
   * load nothing, so they are not waited for. Rejects after `timeoutMs`, naming the layers
   * still loading (a tile that keeps failing never completes its layer).
   */
  tilesLoaded(timeoutMs = 30_000): Promise<void> {
    let timer: number | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = window.setTimeout(() => reject(new Error(
        `tiles still loading after ${timeoutMs} ms: layers ${this.loadingLayers().join(", ")}`)), timeoutMs);
    });
    return Promise.race([this.settled(), timeout]).finally(() => window.clearTimeout(timer));
  }

  private async settled(): Promise<void> {
    await nextFrames(2);
    while (this.animating()) await once(this.viewer, "animation-finish");
    await nextFrames(1);
    const world = this.viewer.world;
    const waiting: Promise<void>[] = [];
    for (const index of this.loadingLayers()) waiting.push(fullyLoaded(world.getItemAt(index)));
    await Promise.all(waiting);
  }

  /** The world indices of visible layers not fully loaded. */
  private loadingLayers(): number[] {
    const world = this.viewer.world;
    const loading: number[] = [];
    for (let i = 0; i < world.getItemCount(); i++) {
      const item = world.getItemAt(i);
      if (item.getOpacity() > 0 && !item.getFullyLoaded()) loading.push(i);
    }
    return loading;
  }

  private animating(): boolean {
    const viewport = this.viewer.viewport;
    const now = viewport.getCenter(true);
    const target = viewport.getCenter(false);
    const zoom = viewport.getZoom(true) / viewport.getZoom(false);
    return Math.abs(zoom - 1) > 1e-6 || now.distanceTo(target) > 1e-9 * Math.max(1, viewport.getBounds().width);
  }

  private requireBase(): OpenSeadragon.TiledImage {
    const base = this.base;
    if (!base) throw new Error("no slide is open");
    return base;
  }
}

function fullyLoaded(item: OpenSeadragon.TiledImage): Promise<void> {
  return new Promise((resolve) => {
    const handler = (event: { fullyLoaded: boolean }) => {
      if (!event.fullyLoaded) return;
      item.removeHandler("fully-loaded-change", handler);
      resolve();
    };
    item.addHandler("fully-loaded-change", handler);
  });
}

function once(viewer: OpenSeadragon.Viewer, event: "animation-finish"): Promise<void> {
  return new Promise((resolve) => viewer.addOnceHandler(event, () => resolve()));
}

function nextFrames(count: number): Promise<void> {
  return new Promise((resolve) => {
    const step = (left: number) => (left <= 0 ? resolve() : requestAnimationFrame(() => step(left - 1)));
    step(count);
  });
}
