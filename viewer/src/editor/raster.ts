/**
 * Rasterisation on a label mask: brush discs, stroke segments and polygon fills.
 *
 * Coordinates are continuous mask pixels: pixel (i, j) covers [i, i+1) × [j, j+1), its
 * centre is (i + 0.5, j + 0.5). Every function writes `value` into `labels` (row-major,
 * `width * height`) and returns the rectangle it touched (or null), so views can redraw
 * only that part.
 */

export interface Point {
  x: number;
  y: number;
}

/** A pixel rectangle: columns [x, x + width), rows [y, y + height). */
export interface PixelRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Raster {
  labels: Uint8Array;
  width: number;
  height: number;
}

/** The smallest rectangle holding both (either may be null). */
export function unionRect(a: PixelRect | null, b: PixelRect | null): PixelRect | null {
  if (!a) return b;
  if (!b) return a;
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return {
    x,
    y,
    width: Math.max(a.x + a.width, b.x + b.width) - x,
    height: Math.max(a.y + a.height, b.y + b.height) - y,
  };
}

/**
 * Stamps a disc of diameter `size` pixels at `at`.
 *
 * An odd size centres the disc on the pixel under `at`, an even size on the pixel corner
 * nearest to it, so size 1 is one pixel, 2 a 2×2 block, 3 a 3×3 block; larger discs hold
 * the pixels whose centres lie within size/2.
 */
export function stampDisc(raster: Raster, at: Point, size: number, value: number): PixelRect | null {
  const diameter = Math.max(1, Math.round(size));
  const radius = diameter / 2;
  const odd = diameter % 2 === 1;
  const cx = odd ? Math.floor(at.x) + 0.5 : Math.round(at.x);
  const cy = odd ? Math.floor(at.y) + 0.5 : Math.round(at.y);
  const x0 = Math.max(0, Math.floor(cx - radius));
  const x1 = Math.min(raster.width, Math.ceil(cx + radius));
  const y0 = Math.max(0, Math.floor(cy - radius));
  const y1 = Math.min(raster.height, Math.ceil(cy + radius));
  if (x0 >= x1 || y0 >= y1) return null;
  const r2 = radius * radius + 1e-9;
  for (let y = y0; y < y1; y++) {
    const dy = y + 0.5 - cy;
    const row = y * raster.width;
    for (let x = x0; x < x1; x++) {
      const dx = x + 0.5 - cx;
      if (dx * dx + dy * dy <= r2) raster.labels[row + x] = value;
    }
  }
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** Stamps discs along the segment from `a` to `b` (both ends included), gap-free. */
export function strokeSegment(
  raster: Raster, a: Point, b: Point, size: number, value: number,
): PixelRect | null {
  const length = Math.hypot(b.x - a.x, b.y - a.y);
  const spacing = Math.max(0.5, size / 4);
  const steps = Math.max(1, Math.ceil(length / spacing));
  let touched: PixelRect | null = null;
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    const at = { x: a.x + (b.x - a.x) * t, y: a.y + (b.y - a.y) * t };
    touched = unionRect(touched, stampDisc(raster, at, size, value));
  }
  return touched;
}

/**
 * Fills a polygon (even-odd rule): the pixels whose centres lie inside it.
 *
 * Scanlines run through pixel centres; an edge counts on [min y, max y), so shared vertices
 * are not counted twice and a rectangle from (2, 2) to (6, 5) fills exactly columns 2–5 of
 * rows 2–4. Fewer than 3 vertices fill nothing.
 */
export function fillPolygon(raster: Raster, vertices: Point[], value: number): PixelRect | null {
  if (vertices.length < 3) return null;
  const ys = vertices.map((v) => v.y);
  const y0 = Math.max(0, Math.floor(Math.min(...ys)));
  const y1 = Math.min(raster.height, Math.ceil(Math.max(...ys)));
  let touched: PixelRect | null = null;
  const crossings: number[] = [];
  for (let y = y0; y < y1; y++) {
    const sy = y + 0.5;
    crossings.length = 0;
    for (let i = 0; i < vertices.length; i++) {
      const p = vertices[i];
      const q = vertices[(i + 1) % vertices.length];
      const lo = Math.min(p.y, q.y);
      const hi = Math.max(p.y, q.y);
      if (sy < lo || sy >= hi) continue;
      crossings.push(p.x + ((sy - p.y) / (q.y - p.y)) * (q.x - p.x));
    }
    crossings.sort((m, n) => m - n);
    const row = y * raster.width;
    for (let k = 0; k + 1 < crossings.length; k += 2) {
      // pixel centres x + 0.5 in [left, right)
      const first = Math.max(0, Math.ceil(crossings[k] - 0.5));
      const last = Math.min(raster.width, Math.ceil(crossings[k + 1] - 0.5));
      if (first >= last) continue;
      raster.labels.fill(value, row + first, row + last);
      touched = unionRect(touched, { x: first, y, width: last - first, height: 1 });
    }
  }
  return touched;
}
