/**
 * Colours of the synthetic scene generator: RGB triples nominally 0..255, mixed and scaled, and
 * drawn at random from class-typical ranges.
 */
import type { Rng } from '../random.js';
import { clamp, lerp } from './paint.js';

export type RGB = readonly [number, number, number];

export const mixRGB = (a: RGB, b: RGB, t: number): RGB => [
  lerp(a[0], b[0], t),
  lerp(a[1], b[1], t),
  lerp(a[2], b[2], t),
];
export const scaleRGB = (a: RGB, k: number): RGB => [a[0] * k, a[1] * k, a[2] * k];

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

/** A class-typical range of colours, drawn from with between(). */
export interface ColourSpan {
  lo: RGB;
  hi: RGB;
}

/** A fixed colour as it is, or one drawn from a range (which takes draws from `rng`). */
export function colourOf(rng: Rng, c: RGB | ColourSpan): RGB {
  return 'lo' in c ? between(rng, c.lo, c.hi) : c;
}
