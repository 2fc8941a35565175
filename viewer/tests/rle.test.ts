import { describe, expect, it } from "vitest";
import { decodeRle, encodeRle } from "../src/editor/rle";

describe("RLE", () => {
  it("encodes row-major runs across row ends", () => {
    const labels = Uint8Array.from([0, 0, 1, 1, 1, 2, 0, 0]); // 4 × 2
    const rle = encodeRle(labels, 4, 2);
    expect(rle).toEqual({ format: "rle", width: 4, height: 2, values: [0, 1, 2, 0], counts: [2, 3, 1, 2] });
  });

  it("round-trips a random mask exactly", () => {
    const width = 37;
    const height = 23;
    const labels = new Uint8Array(width * height);
    let seed = 7;
    for (let i = 0; i < labels.length; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      labels[i] = seed % 5 < 3 ? (i > 0 ? labels[i - 1] : 0) : seed % 4;
    }
    const rle = encodeRle(labels, width, height);
    expect(rle.counts.reduce((a, b) => a + b, 0)).toBe(width * height);
    expect(rle.values.every((v, i) => i === 0 || v !== rle.values[i - 1])).toBe(true);
    expect(decodeRle(rle)).toEqual(labels);
  });

  it("encodes a uniform mask as one run and an empty one as none", () => {
    expect(encodeRle(new Uint8Array(12), 3, 4)).toMatchObject({ values: [0], counts: [12] });
    expect(encodeRle(new Uint8Array(0), 0, 0)).toMatchObject({ values: [], counts: [] });
  });

  it("refuses a size that does not match", () => {
    expect(() => encodeRle(new Uint8Array(5), 2, 2)).toThrow(/5 pixels, expected 2×2/);
    expect(() => decodeRle({ format: "rle", width: 2, height: 2, values: [1], counts: [3] }))
      .toThrow(/covers 3 pixels/);
  });
});
