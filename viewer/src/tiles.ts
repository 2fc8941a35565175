/**
 * Deep Zoom tile sources for OpenSeadragon, built inline from the API's grid description
 * (no descriptor fetch): the slide and every overlay share one grid, so they line up.
 */
import type { DeepZoomInfo } from "./api/types";

export interface InlineTileSource {
  width: number;
  height: number;
  tileSize: number;
  tileOverlap: number;
  minLevel: number;
  maxLevel: number;
  getTileUrl: (level: number, col: number, row: number) => string;
}

/** Fills `{level}`, `{col}` and `{row}` of an API URL template. */
export function tileUrl(template: string, level: number, col: number, row: number): string {
  return template
    .replace("{level}", String(level))
    .replace("{col}", String(col))
    .replace("{row}", String(row));
}

/**
 * A tile source on the slide's Deep Zoom grid; `version` (an overlay's content version)
 * goes into the query so a changed overlay is never served from the browser's cache.
 * Deep Zoom's levels count up from a 1×1 image to the full resolution at `levels - 1`,
 * as OpenSeadragon's do.
 */
export function deepZoomSource(
  grid: DeepZoomInfo, template: string = grid.url_template, version?: string,
): InlineTileSource {
  const query = version === undefined ? "" : `?v=${encodeURIComponent(version)}`;
  return {
    width: grid.width,
    height: grid.height,
    tileSize: grid.tile_size,
    tileOverlap: grid.overlap,
    minLevel: 0,
    maxLevel: grid.levels - 1,
    getTileUrl: (level, col, row) => tileUrl(template, level, col, row) + query,
  };
}
