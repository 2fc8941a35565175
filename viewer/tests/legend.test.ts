import { describe, expect, it } from "vitest";
import type { Legend, WorklistItem } from "../src/api/types";
import { formatValue, legendGradient, legendRange } from "../src/legend";
import { tileUrl, deepZoomSource } from "../src/tiles";
import { pickNext } from "../src/worklist";

const legend: Legend = {
  type: "continuous", title: "Uncertainty", min: 0, max: 2,
  stops: [{ value: 2, color: "#ff0000" }, { value: 0, color: "#000000" }, { value: 1, color: "#00ff00" }],
  entries: [],
};

describe("legend", () => {
  it("places the stops between min and max", () => {
    expect(legendGradient(legend)).toBe("linear-gradient(to right, #000000 0.0%, #00ff00 50.0%, #ff0000 100.0%)");
    expect(legendRange({ ...legend, min: null, max: null })).toEqual([0, 2]);
    expect(formatValue(0.6931)).toBe("0.69");
    expect(formatValue(0.004)).toBe("0.0040");
  });
});

describe("tile sources", () => {
  it("fills the URL template and appends the overlay version", () => {
    expect(tileUrl("/api/slides/1/dz/{level}/{col}_{row}.jpeg", 12, 3, 4)).toBe("/api/slides/1/dz/12/3_4.jpeg");
    const source = deepZoomSource(
      { dzi_url: "", url_template: "/dz/{level}/{col}_{row}.jpeg", tile_size: 254, overlap: 1, format: "jpeg",
        width: 2220, height: 2967, levels: 13 },
      "/o/uncertainty/{level}/{col}_{row}.png", "a b",
    );
    expect(source.maxLevel).toBe(12);
    expect(source.getTileUrl(12, 0, 1)).toBe("/o/uncertainty/12/0_1.png?v=a%20b");
  });
});

function item(id: number, status: WorklistItem["status"], claimed_by: string | null = null): WorklistItem {
  return {
    id, slide_id: 1, slide_name: "s", ranking_id: 1, rank: id, x: 0, y: 0, width: 10, height: 10, mpp: 1,
    mask_width: 10, mask_height: 10, score_mean: 1, score_sum: 1, status, claimed_by, claimed_at: null, version: 0,
  };
}

describe("next uncertain patch", () => {
  const items = [item(1, "corrected"), item(2, "pending", "bob"), item(3, "pending"), item(4, "skipped"), item(5, "pending", "me")];
  it("takes the best pending patch nobody else holds", () => {
    expect(pickNext(items, null, "me")?.id).toBe(3);
  });
  it("goes on after the current patch and wraps round", () => {
    expect(pickNext(items, 3, "me")?.id).toBe(5);
    expect(pickNext(items, 5, "me")?.id).toBe(3);
    expect(pickNext([item(1, "pending")], 1, "me")).toBeNull();
  });
});
