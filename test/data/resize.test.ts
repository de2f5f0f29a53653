import { describe, expect, it } from 'vitest';
import { resizeBilinearU8 } from '../../stages/data/resize.js';

const rgb = (vals: number[]): Uint8Array => Uint8Array.from(vals.flatMap((v) => [v, v, v]));
const channel = (img: Uint8Array): number[] => Array.from(img.filter((_, i) => i % 3 === 0));

describe('resizeBilinearU8 (OpenCV INTER_LINEAR conventions)', () => {
  it('upscales a row the way OpenCV does: centres at +0.5, edges clamped', () => {
    expect(channel(resizeBilinearU8(rgb([0, 100]), 2, 1, 4, 1))).toEqual([0, 25, 75, 100]);
  });

  it('is separable: a 2×2 upscaled to 4×4 interpolates rows then columns', () => {
    const out = channel(resizeBilinearU8(rgb([0, 100, 100, 200]), 2, 2, 4, 4));
    expect(out).toEqual([0, 25, 75, 100, 25, 50, 100, 125, 75, 100, 150, 175, 100, 125, 175, 200]);
  });

  it('copies when the size is unchanged and keeps channels apart', () => {
    const src = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(Array.from(resizeBilinearU8(src, 2, 2, 2, 2))).toEqual(Array.from(src));
    const up = resizeBilinearU8(Uint8Array.from([255, 0, 0]), 1, 1, 3, 2);
    expect(Array.from(up)).toEqual([255, 0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0]);
  });
});
