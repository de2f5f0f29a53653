/**
 * Painting primitives of the synthetic scene generator: colour and maths helpers, the float
 * canvas, value noise, and column fills. Geometry is in pixels of a square `size` canvas.
 */
import type { Rng } from '../random.js';

// ---------------------------------------------------------------------------------------------
// Colour and maths helpers
// ---------------------------------------------------------------------------------------------

export type RGB = readonly [number, number, number];

export const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);
export const lerp = (a: number, b: number, t: number): number => a + (b - a) * t;
const smooth = (t: number): number => t * t * (3 - 2 * t);
export const smoothstep = (e0: number, e1: number, v: number): number => smooth(clamp((v - e0) / (e1 - e0), 0, 1));
export const fract = (v: number): number => v - Math.floor(v);
export const mixRGB = (a: RGB, b: RGB, t: number): RGB => [
  lerp(a[0], b[0], t),
  lerp(a[1], b[1], t),
  lerp(a[2], b[2], t),
];
export const scaleRGB = (a: RGB, k: number): RGB => [a[0] * k, a[1] * k, a[2] * k];
export const minOf = (a: Float32Array): number => a.reduce((m, v) => (v < m ? v : m), Infinity);
export const maxOf = (a: Float32Array): number => a.reduce((m, v) => (v > m ? v : m), -Infinity);

/**
 * A colour from the box [lo, hi]: how "class-typical ranges" are expressed. The channels share
 * most of their position in the box, so a grey range yields greys of varying brightness
 * (with a slight tint) rather than purple or green asphalt.
 */
export function between(rng: Rng, lo: RGB, hi: RGB): RGB {
  const t = rng.next();
  const ch = (k: 0 | 1 | 2): number => lerp(lo[k], hi[k], clamp(t + (rng.next() - 0.5) * 0.5, 0, 1));
  return [ch(0), ch(1), ch(2)];
}

/** Small random shift of a colour, mostly in brightness, a little in hue. */
export function jitter(rng: Rng, c: RGB, spread: number): RGB {
  const b = rng.range(-spread, spread);
  const h = spread * 0.4;
  return [c[0] + b + rng.range(-h, h), c[1] + b + rng.range(-h, h), c[2] + b + rng.range(-h, h)];
}

// ---------------------------------------------------------------------------------------------
// Canvas and noise
// ---------------------------------------------------------------------------------------------

/**
 * Float RGB canvas, values nominally 0..255 (may overshoot until finish() clamps).
 * Note on `!`: with noUncheckedIndexedAccess every typed-array read is `number | undefined`;
 * the loops below only index inside [0, size*size*3), so the non-null assertions are safe.
 */
export class Canvas {
  readonly d: Float32Array;
  constructor(readonly size: number) {
    this.d = new Float32Array(size * size * 3);
  }
  /** Alpha-blends (r,g,b) over pixel (x,y). No bounds check: callers clip. */
  blend(x: number, y: number, r: number, g: number, b: number, a: number): void {
    const d = this.d;
    const i = (y * this.size + x) * 3;
    d[i] = d[i]! + (r - d[i]!) * a;
    d[i + 1] = d[i + 1]! + (g - d[i + 1]!) * a;
    d[i + 2] = d[i + 2]! + (b - d[i + 2]!) * a;
  }
  put(x: number, y: number, r: number, g: number, b: number): void {
    const i = (y * this.size + x) * 3;
    this.d[i] = r;
    this.d[i + 1] = g;
    this.d[i + 2] = b;
  }
  /** Filled axis-aligned rectangle in float pixel coordinates, clipped; edges are not anti-aliased. */
  rect(x0: number, y0: number, x1: number, y1: number, c: RGB, a = 1): void {
    const S = this.size;
    const xa = clamp(Math.round(x0), 0, S),
      xb = clamp(Math.round(x1), 0, S);
    const ya = clamp(Math.round(y0), 0, S),
      yb = clamp(Math.round(y1), 0, S);
    for (let y = ya; y < yb; y++) for (let x = xa; x < xb; x++) this.blend(x, y, c[0], c[1], c[2], a);
  }
}

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

/** Scratch colour written by Paint callbacks (avoids allocating a tuple per pixel). */
export const P = new Float32Array(3);
export type Paint = (x: number, y: number) => void;

/**
 * Fills every column from the line `top[x]` down to `bottom` (a row, or a per-column line,
 * e.g. the ridge of a nearer layer, which saves painting what will be covered) with `paint`,
 * anti-aliasing the top edge by partial coverage so ridges don't look like staircases.
 */
export function fillBelow(c: Canvas, top: Float32Array, bottom: number | Float32Array, paint: Paint): void {
  const S = c.size;
  for (let x = 0; x < S; x++) {
    // +1 row under a per-column bottom: the nearer layer only partially covers its edge row.
    const yEnd = Math.min(S, typeof bottom === 'number' ? Math.ceil(bottom) : Math.ceil(bottom[x]!) + 1);
    const t = top[x]!;
    const ft = Math.floor(t);
    for (let y = Math.max(0, ft); y < yEnd; y++) {
      paint(x, y);
      c.blend(x, y, P[0]!, P[1]!, P[2]!, y === ft ? 1 - (t - ft) : 1);
    }
  }
}

export function setP(c: RGB, k = 1): void {
  P[0] = c[0] * k;
  P[1] = c[1] * k;
  P[2] = c[2] * k;
}

/** P = mix(a, b, t) * k, without allocating a tuple (this runs once per pixel). */
export function mixP(a: RGB, b: RGB, t: number, k = 1): void {
  P[0] = (a[0] + (b[0] - a[0]) * t) * k;
  P[1] = (a[1] + (b[1] - a[1]) * t) * k;
  P[2] = (a[2] + (b[2] - a[2]) * t) * k;
}
