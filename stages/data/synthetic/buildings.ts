/**
 * Buildings of the city scene classes (buildings, street): facades with a window grid, and
 * front-facing towers painted with them.
 */
import { hash01, type Rng } from '../random.js';
import { between, type ColourSpan, colourOf, mixRGB, type RGB, scaleRGB } from './colour.js';
import { type Canvas, clamp, fract, lerp, P, setP } from './paint.js';
import type { Sky } from './elements.js';

export interface Facade {
  col: RGB;
  win: RGB;
  /** Window period and the fraction of it that is glass, horizontally and vertically (pixels). */
  sx: number;
  sy: number;
  fx: number;
  fy: number;
  /** Probability a window is lit (much brighter), e.g. at dusk. */
  lit: number;
  seed: number;
}

/** Wall colours by facade material; a glass facade also takes on the sky's horizon colour. */
const FACADE_COLOURS = {
  concrete: { lo: [135, 135, 135], hi: [195, 192, 188] },
  brick: { lo: [125, 60, 45], hi: [175, 95, 70] },
  beige: { lo: [190, 175, 145], hi: [230, 215, 185] },
  glass: { lo: [60, 90, 110], hi: [110, 140, 170] },
  dark: { lo: [55, 55, 60], hi: [95, 90, 90] },
} as const satisfies Record<string, ColourSpan>;

export function randomFacade(rng: Rng, S: number, sky: Sky): Facade {
  const kind = rng.pick(['concrete', 'brick', 'beige', 'glass', 'dark'] as const);
  const glassy = kind === 'glass';
  const wall = colourOf(rng, FACADE_COLOURS[kind]);
  const col = glassy ? mixRGB(wall, sky.horizon, 0.3) : wall;
  const win: RGB = glassy
    ? mixRGB(sky.top, sky.horizon, rng.next())
    : mixRGB(between(rng, [25, 30, 40], [70, 80, 95]), sky.horizon, rng.range(0, 0.35));
  return {
    col,
    win,
    sx: S * rng.range(0.03, 0.075),
    sy: S * rng.range(0.04, 0.085),
    fx: glassy ? rng.range(0.82, 0.92) : rng.range(0.4, 0.7),
    fy: glassy ? rng.range(0.8, 0.92) : rng.range(0.4, 0.65),
    lit: sky.mood === 'sunset' ? rng.range(0.1, 0.5) : rng.range(0, 0.08),
    seed: rng.u32(),
  };
}

/**
 * Colour of a facade at facade-local coordinates (u, v) in pixels from its left/top edge:
 * a window grid with per-window variation (hashed, so independent of image size).
 */
export function facadeColour(f: Facade, u: number, v: number, texV: number): void {
  const cu = u / f.sx,
    cv = v / f.sy;
  const inWin =
    fract(cu) > (1 - f.fx) / 2 && fract(cu) < (1 + f.fx) / 2 && fract(cv) > 0.3 && fract(cv) < 0.3 + f.fy && cv > 0.8;
  const k = 0.88 + 0.24 * texV;
  if (inWin) {
    const h = hash01(Math.floor(cu), Math.floor(cv), f.seed);
    if (h < f.lit) {
      P[0] = 250;
      P[1] = 215;
      P[2] = 140;
    } else {
      setP(f.win, k * (0.8 + 0.4 * h));
    }
  } else {
    setP(f.col, k);
  }
}

/**
 * Front-facing building spanning [x0,x1) from `top` down to `bottom` (or, per column, down to
 * `clip[x]` when something nearer will cover the rest), tinted by `shade` and `haze`.
 */
export function drawBuilding(
  c: Canvas,
  x0: number,
  x1: number,
  top: number,
  bottom: number,
  f: Facade,
  tex: Float32Array,
  shade: number,
  haze: RGB,
  hazeAmt: number,
  clip?: Float32Array,
): void {
  const S = c.size;
  const xa = clamp(Math.round(x0), 0, S),
    xb = clamp(Math.round(x1), 0, S);
  const ya = clamp(Math.round(top), 0, S),
    yb = clamp(Math.round(bottom), 0, S);
  for (let x = xa; x < xb; x++) {
    const ye = clip === undefined ? yb : Math.min(yb, Math.ceil(clip[x]!));
    for (let y = ya; y < ye; y++) {
      facadeColour(f, x - x0, y - top, tex[y * S + x]!);
      c.put(
        x,
        y,
        lerp(P[0]! * shade, haze[0], hazeAmt),
        lerp(P[1]! * shade, haze[1], hazeAmt),
        lerp(P[2]! * shade, haze[2], hazeAmt),
      );
    }
  }
  // Roof parapet: a thin lighter band that separates towers from each other and from the sky.
  c.rect(x0, top, x1, top + Math.max(1, S * 0.008), mixRGB(scaleRGB(f.col, 1.15), haze, hazeAmt));
}
