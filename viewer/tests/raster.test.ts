import { describe, expect, it } from "vitest";
import { fillPolygon, stampDisc, strokeSegment, type Raster } from "../src/editor/raster";

function raster(width: number, height: number): Raster {
  return { labels: new Uint8Array(width * height), width, height };
}

function painted(r: Raster, value = 1): number {
  return r.labels.reduce((n, v) => n + (v === value ? 1 : 0), 0);
}

function at(r: Raster, x: number, y: number): number {
  return r.labels[y * r.width + x];
}

describe("brush stamping", () => {
  it.each([
    [1, 1],
    [2, 4],
    [3, 9],
    [4, 12],
    [5, 21],
  ])("a disc of size %i covers %i pixels", (size, expected) => {
    const r = raster(20, 20);
    stampDisc(r, { x: 10.3, y: 10.4 }, size, 1);
    expect(painted(r)).toBe(expected);
  });

  it("covers about π r² for large sizes and stays symmetric", () => {
    const r = raster(100, 100);
    const rect = stampDisc(r, { x: 50.5, y: 50.5 }, 41, 3);
    expect(Math.abs(painted(r, 3) - Math.PI * 20.5 ** 2) / (Math.PI * 20.5 ** 2)).toBeLessThan(0.03);
    expect(rect).toEqual({ x: 30, y: 30, width: 41, height: 41 });
    for (let d = 0; d <= 20; d++) {
      expect(at(r, 50 + d, 50)).toBe(at(r, 50 - d, 50));
      expect(at(r, 50, 50 + d)).toBe(at(r, 50, 50 - d));
    }
  });

  it("size 1 paints the pixel under the point, even at its corner", () => {
    const r = raster(4, 4);
    stampDisc(r, { x: 2, y: 1 }, 1, 2);
    expect(at(r, 2, 1)).toBe(2);
    expect(painted(r, 2)).toBe(1);
  });

  it("clips at the mask edge", () => {
    const r = raster(10, 10);
    const rect = stampDisc(r, { x: 0, y: 0 }, 4, 1);
    expect(painted(r)).toBe(3); // the quarter of the 12-pixel disc inside
    expect(rect).toEqual({ x: 0, y: 0, width: 2, height: 2 });
    expect(stampDisc(r, { x: -20, y: 5 }, 4, 1)).toBeNull();
  });

  it("erases with value 0", () => {
    const r = raster(10, 10);
    r.labels.fill(2);
    stampDisc(r, { x: 5, y: 5 }, 3, 0);
    expect(painted(r, 0)).toBe(9);
  });

  it("strokes a gap-free band", () => {
    const r = raster(50, 10);
    strokeSegment(r, { x: 2.5, y: 5.5 }, { x: 47.5, y: 5.5 }, 3, 1);
    for (let x = 2; x <= 47; x++) {
      expect([at(r, x, 4), at(r, x, 5), at(r, x, 6)]).toEqual([1, 1, 1]);
      expect(at(r, x, 3) + at(r, x, 7)).toBe(0);
    }
    expect(painted(r)).toBe(46 * 3 + 2 * 3); // the band plus the discs' ends (1 column each side)
  });
});

describe("polygon fill", () => {
  it("fills a rectangle's pixels exactly", () => {
    const r = raster(10, 10);
    const rect = fillPolygon(r, [{ x: 2, y: 2 }, { x: 6, y: 2 }, { x: 6, y: 5 }, { x: 2, y: 5 }], 4);
    expect(painted(r, 4)).toBe(12);
    expect(rect).toEqual({ x: 2, y: 2, width: 4, height: 3 });
    expect(at(r, 2, 2)).toBe(4);
    expect(at(r, 5, 4)).toBe(4);
    expect(at(r, 6, 4)).toBe(0);
    expect(at(r, 5, 5)).toBe(0);
  });

  it("fills a triangle with about its area, pixel centres inside", () => {
    const r = raster(100, 100);
    fillPolygon(r, [{ x: 10, y: 10 }, { x: 90, y: 10 }, { x: 10, y: 90 }], 1);
    expect(Math.abs(painted(r) - 3200)).toBeLessThan(80);
    expect(at(r, 11, 87)).toBe(1); // centre (11.5, 87.5): x + y = 99, inside
    expect(at(r, 11, 88)).toBe(0); // centre on the hypotenuse x + y = 100: outside
    expect(at(r, 50, 50)).toBe(0);
    expect(at(r, 49, 49)).toBe(1);
  });

  it("uses the even-odd rule for self-intersecting outlines", () => {
    const r = raster(20, 20);
    // a bow tie: a left and a right triangle meeting at (10, 10)
    fillPolygon(r, [{ x: 0, y: 0 }, { x: 20, y: 20 }, { x: 20, y: 0 }, { x: 0, y: 20 }], 1);
    expect(at(r, 2, 10)).toBe(1);
    expect(at(r, 17, 10)).toBe(1);
    expect(at(r, 10, 2)).toBe(0);
    expect(at(r, 10, 17)).toBe(0);
  });

  it("clips to the mask and ignores fewer than three vertices", () => {
    const r = raster(10, 10);
    fillPolygon(r, [{ x: -5, y: -5 }, { x: 15, y: -5 }, { x: 15, y: 15 }, { x: -5, y: 15 }], 2);
    expect(painted(r, 2)).toBe(100);
    expect(fillPolygon(r, [{ x: 1, y: 1 }, { x: 5, y: 5 }], 3)).toBeNull();
    expect(painted(r, 3)).toBe(0);
  });
});
