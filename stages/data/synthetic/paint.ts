/**
 * Painting primitives of the synthetic scene generator: maths helpers, the float canvas, and
 * column fills (colours are in colour.ts, noise and noisy lines in noise.ts). Geometry is in
 * pixels of a square `size` canvas.
 */
import type { RGB } from './colour.js';

// ---------------------------------------------------------------------------------------------
// Maths helpers
// ---------------------------------------------------------------------------------------------

export const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);
export const lerp = (a: number, b: number, t: number): number => a + (b - a) * t;
/** The smoothstep polynomial on [0, 1] (also what value noise interpolates with). */
export const smooth = (t: number): number => t * t * (3 - 2 * t);
export const smoothstep = (e0: number, e1: number, v: number): number => smooth(clamp((v - e0) / (e1 - e0), 0, 1));
export const fract = (v: number): number => v - Math.floor(v);
export const minOf = (a: Float32Array): number => a.reduce((m, v) => (v < m ? v : m), Infinity);
export const maxOf = (a: Float32Array): number => a.reduce((m, v) => (v > m ? v : m), -Infinity);

// ---------------------------------------------------------------------------------------------
// Canvas and column fills
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
