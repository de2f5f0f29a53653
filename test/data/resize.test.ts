import { describe, expect, it } from 'vitest';
import { resizeU8 } from '../../stages/data/resize.js';

const rgb = (vals: number[]): Uint8Array => Uint8Array.from(vals.flatMap((v) => [v, v, v]));
const channel = (img: Uint8Array): number[] => Array.from(img.filter((_, i) => i % 3 === 0));

describe('resizeU8 (OpenCV INTER_LINEAR conventions)', () => {
  it('upscales a row the way OpenCV does: centres at +0.5, edges clamped', () => {
    expect(channel(resizeU8(rgb([0, 100]), 2, 1, 4, 1))).toEqual([0, 25, 75, 100]);
  });

  it('is separable: a 2×2 upscaled to 4×4 interpolates rows then columns', () => {
    const out = channel(resizeU8(rgb([0, 100, 100, 200]), 2, 2, 4, 4));
    expect(out).toEqual([0, 25, 75, 100, 25, 50, 100, 125, 75, 100, 150, 175, 100, 125, 175, 200]);
  });

  it('copies when the size is unchanged and keeps channels apart', () => {
    const src = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(Array.from(resizeU8(src, 2, 2, 2, 2))).toEqual(Array.from(src));
    const up = resizeU8(Uint8Array.from([255, 0, 0]), 1, 1, 3, 2);
    expect(Array.from(up)).toEqual([255, 0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0]);
  });
});

describe('resizeU8 downscales (box shrink by the integer factor, then bilinear)', () => {
  it('averages k × k blocks with rounding', () => {
    // 4×2 → 2×1: blocks {0,10,20,30} → 15, {1,2,3,5} → 2.75 → 3.
    const out = channel(resizeU8(rgb([0, 10, 1, 2, 20, 30, 3, 5]), 4, 2, 2, 1));
    expect(out).toEqual([15, 3]);
  });

  it('drops the remainder rows and columns when the box already lands on the size', () => {
    // 7×7 → 3×3: factor 2, the last row and column are not used.
    const src = rgb(Array.from({ length: 49 }, (_, i) => (i % 7 === 6 || i >= 42 ? 255 : 0)));
    expect(channel(resizeU8(src, 7, 7, 3, 3))).toEqual(new Array(9).fill(0));
  });

  it('does not alias: a one-pixel checkerboard shrunk 3.3× is flat grey', () => {
    const w = 200;
    const h = 100;
    const src = rgb(Array.from({ length: w * h }, (_, i) => ((i % w) + Math.floor(i / w)) % 2 ? 255 : 0));
    const out = channel(resizeU8(src, w, h, 60, 30));
    expect(Math.min(...out)).toBeGreaterThanOrEqual(112);
    expect(Math.max(...out)).toBeLessThanOrEqual(143);
  });
});
