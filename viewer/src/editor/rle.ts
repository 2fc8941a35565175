/**
 * Run-length encoding of label masks, as the site API takes them.
 *
 * Row-major: `values[i]` repeated `counts[i]` times; `sum(counts) = width * height`.
 */

export interface RleMask {
  format: "rle";
  width: number;
  height: number;
  values: number[];
  counts: number[];
}

/** Encodes a row-major label array (`width * height` bytes, label values) as runs. */
export function encodeRle(labels: Uint8Array, width: number, height: number): RleMask {
  if (labels.length !== width * height) {
    throw new Error(`mask has ${labels.length} pixels, expected ${width}×${height}`);
  }
  const values: number[] = [];
  const counts: number[] = [];
  let i = 0;
  while (i < labels.length) {
    const value = labels[i];
    let j = i + 1;
    while (j < labels.length && labels[j] === value) j++;
    values.push(value);
    counts.push(j - i);
    i = j;
  }
  return { format: "rle", width, height, values, counts };
}

/** Decodes runs back to a row-major label array; refuses runs that do not cover the mask. */
export function decodeRle(mask: RleMask): Uint8Array {
  const { width, height, values, counts } = mask;
  if (values.length !== counts.length) {
    throw new Error(`RLE has ${values.length} values but ${counts.length} counts`);
  }
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total !== width * height) {
    throw new Error(`RLE covers ${total} pixels, expected ${width}×${height}`);
  }
  const labels = new Uint8Array(width * height);
  let offset = 0;
  for (let i = 0; i < values.length; i++) {
    labels.fill(values[i], offset, offset + counts[i]);
    offset += counts[i];
  }
  return labels;
}
