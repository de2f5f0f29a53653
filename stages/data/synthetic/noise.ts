/**
 * Noise of the synthetic scene generator: multi-octave value noise over the image or across its
 * width, and the horizon-like lines made from it.
 */
import type { Rng } from '../random.js';
import { clamp, lerp, smooth } from './paint.js';

/**
 * Multi-octave value noise over the image, in [0,1] (mean 0.5). Cell counts are per image
 * (not per pixel) so the pattern scales with the image, and the number of RNG draws depends
 * only on the cell counts, never on the image size or the row range.
 * Only rows [y0, y1) are evaluated (the rest stay 0): noise is the hottest code here and most
 * fields are only needed above or below the horizon.
 */
export function noise2D(
  size: number,
  rng: Rng,
  cellsX: number,
  cellsY: number,
  octaves: number,
  persistence = 0.5,
  y0 = 0,
  y1 = size,
): Float32Array {
  const ya = clamp(Math.floor(y0), 0, size),
    yb = clamp(Math.ceil(y1), 0, size);
  const out = new Float32Array(size * size);
  let total = 0;
  for (let o = 0, amp = 1; o < octaves; o++, amp *= persistence) total += amp;
  const rows = new Float32Array(size * (Math.ceil(cellsY * 2 ** (octaves - 1)) + 2));
  for (let o = 0, amp = 1 / total; o < octaves; o++, amp *= persistence) {
    const gx = Math.max(1, Math.round(cellsX * 2 ** o));
    const gy = Math.max(1, Math.round(cellsY * 2 ** o));
    const stride = gx + 1;
    const lat = new Float32Array(stride * (gy + 1));
    for (let k = 0; k < lat.length; k++) lat[k] = rng.next();
    if (size < 2 * gx && size < 2 * gy) {
      // Cells under 2 px both ways: detail JPEG would smear anyway. Add the octave's mean
      // instead of evaluating it (the lattice was still drawn, so the RNG stream, and with
      // it the scene, stays the same at every size; small images just lose the finest grain).
      for (let y = ya; y < yb; y++) for (let x = y * size, e = x + size; x < e; x++) out[x] = out[x]! + 0.5 * amp;
      continue;
    }
    // Separable interpolation: smooth each lattice row along x once, so each pixel only
    // needs one lerp in y. This roughly halves the cost of the noise, the hottest code here.
    for (let x = 0; x < size; x++) {
      const f = ((x + 0.5) / size) * gx;
      const i = Math.min(gx - 1, Math.floor(f));
      const t = smooth(f - i);
      for (let j = 0; j <= gy; j++) {
        const a = lat[j * stride + i]!;
        rows[j * size + x] = a + (lat[j * stride + i + 1]! - a) * t;
      }
    }
    for (let y = ya; y < yb; y++) {
      const f = ((y + 0.5) / size) * gy;
      const j = Math.min(gy - 1, Math.floor(f));
      const ty = smooth(f - j) * amp;
      const ra = j * size;
      const rb = ra + size;
      const row = y * size;
      for (let x = 0; x < size; x++) {
        const a = rows[ra + x]!;
        out[row + x] = out[row + x]! + a * amp + (rows[rb + x]! - a) * ty;
      }
    }
  }
  return out;
}

/** 1-D value noise across the image width, in [0,1]; used for ridge lines and shorelines. */
export function noise1D(size: number, rng: Rng, cells: number, octaves: number, persistence = 0.5): Float32Array {
  const out = new Float32Array(size);
  let amp = 1;
  let total = 0;
  for (let o = 0; o < octaves; o++) {
    const g = Math.max(1, Math.round(cells * 2 ** o));
    const lat = new Float32Array(g + 1);
    for (let k = 0; k < lat.length; k++) lat[k] = rng.next();
    for (let x = 0; x < size; x++) {
      const f = ((x + 0.5) / size) * g;
      const i = Math.min(g - 1, Math.floor(f));
      out[x] = out[x]! + lerp(lat[i]!, lat[i + 1]!, smooth(f - i)) * amp;
    }
    total += amp;
    amp *= persistence;
  }
  for (let k = 0; k < size; k++) out[k] = out[k]! / total;
  return out;
}

/** Horizontal line at `base` displaced by noise of amplitude `amp` (pixels). */
export function wavyLine(
  size: number,
  rng: Rng,
  base: number,
  amp: number,
  cells: number,
  octaves: number,
): Float32Array {
  const n = noise1D(size, rng, cells, octaves);
  for (let x = 0; x < size; x++) n[x] = base + (n[x]! - 0.5) * 2 * amp;
  return n;
}

export function flatLine(S: number, y: number): Float32Array {
  return new Float32Array(S).fill(y);
}
