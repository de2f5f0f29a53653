// Geometry: every spatial transform of a sample (scale jitter / upscaling, random-resized-crop,
// rotation, shear, aspect change, crop offset, mirror) folded into ONE affine map from output pixel
// to source position, plus the sample's colour offsets, all drawn from its PRNG in a fixed order.

import type { RawImage } from './image.js';
import type { AugmentPolicy } from './policy.js';

// ---------------------------------------------------------------------------------------------
// Affine maps: x' = a·x + b·y + c, y' = d·x + e·y + f

export interface Affine {
  a: number;
  b: number;
  c: number;
  d: number;
  e: number;
  f: number;
}

const IDENTITY: Affine = { a: 1, b: 0, c: 0, d: 0, e: 1, f: 0 };

/** p ∘ q: apply q first, then p. */
function mul(p: Affine, q: Affine): Affine {
  return {
    a: p.a * q.a + p.b * q.d,
    b: p.a * q.b + p.b * q.e,
    c: p.a * q.c + p.b * q.f + p.c,
    d: p.d * q.a + p.e * q.d,
    e: p.d * q.b + p.e * q.e,
    f: p.d * q.c + p.e * q.f + p.f,
  };
}

/** Composes maps given in the order they are applied to a point. */
function chain(...steps: Affine[]): Affine {
  let m = IDENTITY;
  for (const s of steps) m = mul(s, m);
  return m;
}

const translate = (tx: number, ty: number): Affine => ({ a: 1, b: 0, c: tx, d: 0, e: 1, f: ty });
const scaleXY = (sx: number, sy: number): Affine => ({ a: sx, b: 0, c: 0, d: 0, e: sy, f: 0 });

/** Inverse of the 2×2 linear part (translation 0). */
function invertLinear(m: Affine): Affine {
  const det = m.a * m.e - m.b * m.d;
  return { a: m.e / det, b: -m.b / det, c: 0, d: -m.d / det, e: m.a / det, f: 0 };
}

// ---------------------------------------------------------------------------------------------
// Per-sample plan

export interface SamplePlan {
  /** Output pixel (u, v) → source sample position, in pixel-centre coordinates (integer = centre). */
  map: Affine;
  /** HSL offsets: hue in sixths of a turn, saturation/lightness on the 0..1 scale. */
  dHue: number;
  dSat: number;
  dLight: number;
}

/**
 * Draws every random value for one sample and folds the geometry into one map. The first ten draws
 * happen in a fixed order whether or not the feature is enabled, so switching one transform on or
 * off does not reshuffle the others (e.g. adding colour jitter keeps the same crops and flips).
 */
export function planSample(img: RawImage, p: AugmentPolicy, rng: () => number): SamplePlan {
  const uFlip = rng();
  const uX = rng();
  const uY = rng();
  const uScale = rng();
  const uRot = rng();
  const uShear = rng();
  const uAspect = rng();
  const uH = rng();
  const uS = rng();
  const uL = rng();

  const w = img.width;
  const h = img.height;
  const crop = p.crop;
  const flip = p.mirror && uFlip < 0.5;

  // Forward warp about the centre: rotate ∘ shear ∘ aspect (MXNet's decomposition). Built only from
  // exact values when amplitudes are 0 (cos 0 = 1, sin 0 = 0), so level 0–2 maps stay integral.
  const theta = ((2 * uRot - 1) * p.rotate * Math.PI) / 180;
  const shear = (2 * uShear - 1) * p.shear;
  const ratio = 1 + (2 * uAspect - 1) * p.aspect;
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  // Width/height change by `ratio` while their mean scale stays ~1 (as MXNet's hs/ws).
  const ax = (2 * ratio) / (1 + ratio);
  const ay = 2 / (1 + ratio);
  const warp: Affine = chain(
    scaleXY(ax, ay),
    { a: 1, b: shear, c: 0, d: 0, e: 1, f: 0 },
    { a: cos, b: -sin, c: 0, d: sin, e: cos, f: 0 },
  );
  const unwarp = invertLinear(warp);

  // Output pixel index → output area coordinates (pixel u covers [u, u+1)), mirrored if drawn.
  const toArea = flip ? { a: -1, b: 0, c: crop - 0.5, d: 0, e: 1, f: 0.5 } : translate(0.5, 0.5);

  let map: Affine;
  const rrc = p.randomResizedCrop;
  if (rrc != null) {
    const [x0, y0, cw, ch] = randomResizedRegion(w, h, rrc.area, rrc.ratio, rng);
    map = chain(
      toArea,
      translate(-crop / 2, -crop / 2),
      scaleXY(cw / crop, ch / crop), // output square → region size (source pixels)
      unwarp, // rotate/shear/aspect about the region centre
      translate(x0 + cw / 2, y0 + ch / 2),
      translate(-0.5, -0.5), // area → pixel-centre coordinates
    );
  } else {
    // Scale of the whole image: jitter, but never so small that the crop would not fit (upscale).
    const sj = p.scaleJitter;
    let s = sj != null ? sj[0] + uScale * (sj[1] - sj[0]) : 1;
    const minScale = crop / Math.min(w, h);
    if (s < minScale) s = minScale;
    // MXNet's warp canvas is the scaled image itself; the crop is cut from it.
    const cw = w * s;
    const ch = h * s;
    // 1e-9 absorbs rounding in w*s so an exact fit is not mistaken for a negative range.
    const rangeX = Math.max(0, Math.floor(cw - crop + 1e-9));
    const rangeY = Math.max(0, Math.floor(ch - crop + 1e-9));
    // Integer offsets (MXNet's uniform_int_distribution in [0, range]); centre crop floors like (W-c)/2.
    const ox = p.randomCrop ? Math.min(rangeX, Math.floor(uX * (rangeX + 1))) : Math.floor(rangeX / 2);
    const oy = p.randomCrop ? Math.min(rangeY, Math.floor(uY * (rangeY + 1))) : Math.floor(rangeY / 2);
    map = chain(
      toArea,
      translate(ox - cw / 2, oy - ch / 2), // canvas coordinates relative to the canvas centre
      unwarp,
      translate(cw / 2, ch / 2),
      scaleXY(1 / s, 1 / s), // scaled canvas → original source area coordinates
      translate(-0.5, -0.5),
    );
  }

  return {
    map,
    dHue: ((2 * uH - 1) * p.hue) / 30, // OpenCV units (2°) → sixths of a turn (60°)
    dSat: ((2 * uS - 1) * p.saturation) / 255,
    dLight: ((2 * uL - 1) * p.lightness) / 255,
  };
}

/** torchvision RandomResizedCrop.get_params; returns [x, y, w, h] in source pixels (integers). */
function randomResizedRegion(
  w: number,
  h: number,
  area: [number, number],
  ratio: [number, number],
  rng: () => number,
): [number, number, number, number] {
  const total = w * h;
  const logR0 = Math.log(ratio[0]);
  const logR1 = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = total * (area[0] + rng() * (area[1] - area[0]));
    const r = Math.exp(logR0 + rng() * (logR1 - logR0));
    const uX = rng();
    const uY = rng();
    const cw = Math.round(Math.sqrt(target * r));
    const ch = Math.round(Math.sqrt(target / r));
    if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
      return [Math.floor(uX * (w - cw + 1)), Math.floor(uY * (h - ch + 1)), cw, ch];
    }
  }
  // Fallback: the largest centred region whose ratio is within range.
  const inRatio = w / h;
  let cw = w;
  let ch = h;
  if (inRatio < ratio[0]) ch = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) cw = Math.round(h * ratio[1]);
  return [Math.floor((w - cw) / 2), Math.floor((h - ch) / 2), cw, ch];
}
