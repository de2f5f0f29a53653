// The image and output-buffer contract shared by every augmentation module.

/** Decoded image: RGB, HWC, row-major, 3 bytes per pixel, no padding. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export function validateImage(img: RawImage): void {
  const { width: w, height: h, data } = img;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1) {
    throw new RangeError(`image size must be positive integers, got ${w}×${h}`);
  }
  if (data.length !== w * h * 3) {
    throw new RangeError(`image data has ${data.length} bytes, expected ${w}×${h}×3 = ${w * h * 3} (RGB HWC)`);
  }
}

export function validateOut(out: Float32Array, outOffset: number, crop: number): void {
  if (!Number.isInteger(outOffset) || outOffset < 0 || outOffset + crop * crop * 3 > out.length) {
    throw new RangeError(
      `output buffer of ${out.length} floats cannot hold a ${crop}×${crop}×3 sample at offset ${outOffset}`,
    );
  }
}
