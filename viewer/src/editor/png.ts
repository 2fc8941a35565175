/**
 * Label masks as the API sends them: 8-bit grey PNGs whose pixel values are label values.
 * Decoded by the browser without colour management, read back from the red channel.
 */
export async function decodeMaskPng(blob: Blob, width: number, height: number): Promise<Uint8Array> {
  const bitmap = await createImageBitmap(blob, {
    colorSpaceConversion: "none",
    premultiplyAlpha: "none",
  });
  try {
    if (bitmap.width !== width || bitmap.height !== height) {
      throw new Error(`mask PNG is ${bitmap.width}×${bitmap.height}, expected ${width}×${height}`);
    }
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext("2d", { willReadFrequently: true });
    if (!context) throw new Error("no 2D canvas to decode the mask");
    context.drawImage(bitmap, 0, 0);
    const rgba = context.getImageData(0, 0, width, height).data;
    const labels = new Uint8Array(width * height);
    for (let i = 0; i < labels.length; i++) labels[i] = rgba[i * 4];
    return labels;
  } finally {
    bitmap.close();
  }
}
