import { describe, expect, it } from 'vitest';
import { bilinearTaps, resizeU8 } from '../../stages/data/resize.js';

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
    const src = rgb(Array.from({ length: w * h }, (_, i) => (((i % w) + Math.floor(i / w)) % 2 ? 255 : 0)));
    const out = channel(resizeU8(src, w, h, 60, 30));
    expect(Math.min(...out)).toBeGreaterThanOrEqual(112);
    expect(Math.max(...out)).toBeLessThanOrEqual(143);
  });
});

// The same arithmetic in plain JS, step by step as the kernel does it: the taps resize.ts computes
// (stride 1), the u16 horizontal value a·(256−t) + b·t, then the vertical (A·u + B·t + 2¹⁵) >>> 16. Any
// change to the kernel that is not bit-identical shows up here.
function referenceBox(src: Uint8Array, w: number, h: number, k: number): Uint8Array {
  const W = Math.floor(w / k);
  const H = Math.floor(h / k);
  const out = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let r = 0; r < k; r++) for (let j = 0; j < k; j++) sum += src[((y * k + r) * w + x * k + j) * 3 + c]!;
        out[(y * W + x) * 3 + c] = Math.floor((sum + Math.floor((k * k) / 2)) / (k * k));
      }
    }
  }
  return out;
}

function referenceResize(src: Uint8Array, w: number, h: number, W: number, H: number): Uint8Array {
  const factor = Math.max(1, Math.min(Math.floor(w / W), Math.floor(h / H)));
  if (factor > 1) {
    src = referenceBox(src, w, h, factor);
    w = Math.floor(w / factor);
    h = Math.floor(h / factor);
    if (w === W && h === H) return src;
  }
  const xs = bilinearTaps(w, W, 1);
  const ys = bilinearTaps(h, H, 1);
  const tmp = new Uint16Array(h * W * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < W; x++) {
      const t = xs.w1[x]!;
      const a = (y * w + xs.i0[x]!) * 3;
      const b = a + (w === 1 ? 0 : 3);
      for (let c = 0; c < 3; c++) tmp[(y * W + x) * 3 + c] = src[a + c]! * (256 - t) + src[b + c]! * t;
    }
  }
  const out = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    const t = ys.w1[y]!;
    const r0 = ys.i0[y]! * W * 3;
    const r1 = r0 + (h === 1 ? 0 : W * 3);
    for (let k = 0; k < W * 3; k++) out[y * W * 3 + k] = (tmp[r0 + k]! * (256 - t) + tmp[r1 + k]! * t + 32768) >>> 16;
  }
  return out;
}

/** Deterministic pseudo-random pixels (xorshift32), so a failure reproduces. */
function noise(w: number, h: number, seed: number): Uint8Array {
  let s = seed | 1;
  const out = new Uint8Array(w * h * 3);
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 255;
  }
  return out;
}

describe('resizeU8 matches a plain-JS reference of its arithmetic byte for byte', () => {
  const check = (w: number, h: number, W: number, H: number, seed = w * 7919 + h * 104729 + W * 31 + H): void => {
    const src = noise(w, h, seed);
    const got = resizeU8(src, w, h, W, H);
    const want = referenceResize(src, w, h, W, H);
    // Locate the first difference instead of dumping whole images.
    const at = got.findIndex((v, i) => v !== want[i]);
    expect({ size: `${w}×${h} → ${W}×${H}`, length: got.length, at }).toEqual({
      size: `${w}×${h} → ${W}×${H}`,
      length: want.length,
      at: -1,
    });
  };

  // Upscales gather each block of 8 output bytes from one 16-byte window, the bilinear step of
  // downscales (300 → 171, 200 → 101) mostly from two, large horizontal factors (300 → 20,
  // 400 → 13) byte by byte.
  it.each([
    [150, 150, 256, 256],
    [1024, 768, 341, 256],
    [300, 200, 171, 114],
    [150, 150, 100, 100],
    [200, 100, 101, 51],
    [1, 1, 1, 1],
    [1, 1, 5, 3],
    [1, 7, 9, 4],
    [7, 1, 13, 1],
    [1, 9, 1, 17],
    [9, 1, 1, 1],
    [2, 2, 1, 1],
    [3, 5, 7, 9],
    [17, 13, 33, 29],
    [255, 3, 257, 5],
    [300, 10, 20, 10],
    [400, 9, 13, 20],
    [64, 64, 64, 64],
    [31, 40, 256, 7],
    [256, 256, 255, 255],
    [250, 150, 249, 299],
    [5, 5, 3, 3],
    [19, 23, 5, 7],
  ])('%i×%i → %i×%i', (w, h, W, H) => check(w, h, W, H));

  it('image after image of the same sizes (tables kept between calls)', () => {
    for (let seed = 1; seed <= 3; seed++) check(150, 150, 256, 256, seed);
  });

  it('over widths around SIMD block boundaries', () => {
    for (const w of [1, 2, 3, 4, 5, 6, 7, 8, 11, 15, 16, 17, 31, 33, 40]) {
      for (const W of [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 21, 31, 32, 33, 47, 48, 49, 63, 64, 65])
        check(w, 3, W, 4);
    }
  });
});
