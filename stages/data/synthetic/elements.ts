/**
 * Scene elements shared by several classes: sky, mountains, water, ground (trees are in trees.ts,
 * buildings in buildings.ts). Sharing them is what makes the classes overlap (see index.ts).
 */
import type { Rng } from '../random.js';
import { type ColourSpan, colourOf, mixRGB, type RGB } from './colour.js';
import { noise1D, noise2D } from './noise.js';
import { type Canvas, clamp, fillBelow, lerp, maxOf, minOf, mixP, setP, smoothstep } from './paint.js';

export type Mood = 'clear' | 'overcast' | 'sunset' | 'hazy';
const DEFAULT_MOODS: Readonly<Record<Mood, number>> = { clear: 0.45, overcast: 0.25, sunset: 0.12, hazy: 0.18 };

/**
 * The sky of each mood but overcast (whose greys are tied to one another), drawn in this order:
 * the top and horizon colours, the cloud colour (or a fixed one), the cloud cover.
 */
const MOOD_COLOURS: Readonly<
  Record<
    Exclude<Mood, 'overcast'>,
    { top: ColourSpan; horizon: ColourSpan; cloud: ColourSpan | RGB; cover: readonly [number, number] }
  >
> = {
  clear: {
    top: { lo: [35, 85, 165], hi: [100, 155, 235] },
    horizon: { lo: [160, 190, 215], hi: [220, 232, 250] },
    cloud: { lo: [235, 235, 235], hi: [252, 252, 255] },
    cover: [0, 0.5],
  },
  sunset: {
    top: { lo: [40, 45, 90], hi: [100, 95, 165] },
    horizon: { lo: [220, 115, 60], hi: [255, 195, 140] },
    cloud: { lo: [190, 100, 100], hi: [250, 175, 160] },
    cover: [0.1, 0.6],
  },
  hazy: {
    top: { lo: [135, 160, 185], hi: [190, 205, 225] },
    horizon: { lo: [200, 200, 195], hi: [238, 234, 228] },
    cloud: [242, 240, 236],
    cover: [0, 0.35],
  },
};

export interface Sky {
  mood: Mood;
  top: RGB;
  /** Colour at the horizon: also the aerial-perspective haze and the water reflection colour. */
  horizon: RGB;
}

/** Vertical gradient sky with value-noise clouds and an optional sun, over the whole canvas. */
export function drawSky(
  c: Canvas,
  rng: Rng,
  horizon: number,
  moods: Readonly<Record<Mood, number>> = DEFAULT_MOODS,
  coverBoost = 0,
): Sky {
  const S = c.size;
  const mood = rng.weighted(moods);
  let top: RGB, hor: RGB, cloud: RGB, cover: number;
  if (mood === 'overcast') {
    const g = rng.range(105, 175);
    top = [g - 6, g, g + 8];
    const h = rng.range(170, 220);
    hor = [h, h + 2, h + 5];
    cloud = [h * 0.9 + 20, h * 0.9 + 20, h * 0.9 + 24];
    cover = rng.range(0.55, 1);
  } else {
    const m = MOOD_COLOURS[mood];
    top = colourOf(rng, m.top);
    hor = colourOf(rng, m.horizon);
    cloud = colourOf(rng, m.cloud);
    cover = rng.range(m.cover[0], m.cover[1]);
  }
  cover = clamp(cover + coverBoost, 0, 1);
  const hy = Math.max(1, horizon);
  const gamma = rng.range(0.5, 1.1);
  const clouds = noise2D(S, rng, rng.range(1.2, 2.6), rng.range(2.5, 5), 4, 0.55, 0, hy);
  // Value noise sits around 0.5 with a spread of roughly +-0.15, so thresholds live near there.
  const thr = 0.6 - cover * 0.2;
  const opacity = rng.range(0.7, 1);
  const sunOn = (mood === 'clear' || mood === 'sunset') && rng.chance(0.35);
  const sx = rng.range(0.1, 0.9) * S;
  const sy = rng.range(0.2, 0.95) * hy;
  const sr = rng.range(0.025, 0.05) * S;
  const sun: RGB = mood === 'sunset' ? [255, 215, 150] : [255, 252, 238];
  // Sun first (under the clouds), then clouds on top. The glow is only evaluated inside the box
  // where it is still visible (exp(-0.12 (d2-1)) * 0.55 > 1% needs d2 < ~34, i.e. 5.8 radii).
  for (let y = 0; y < S; y++) {
    const t = Math.pow(clamp(y / hy, 0, 1), gamma);
    const br = lerp(top[0], hor[0], t),
      bg = lerp(top[1], hor[1], t),
      bb = lerp(top[2], hor[2], t);
    for (let x = 0; x < S; x++) c.put(x, y, br, bg, bb);
  }
  if (sunOn) {
    const reach = sr * 5.8;
    for (let y = Math.max(0, Math.floor(sy - reach)); y < Math.min(S, Math.ceil(sy + reach)); y++) {
      for (let x = Math.max(0, Math.floor(sx - reach)); x < Math.min(S, Math.ceil(sx + reach)); x++) {
        const dx = x - sx,
          dy = y - sy;
        const d2 = (dx * dx + dy * dy) / (sr * sr);
        c.blend(x, y, sun[0], sun[1], sun[2], d2 < 1 ? 1 : Math.exp(-(d2 - 1) * 0.12) * 0.55);
      }
    }
  }
  for (let y = 0; y < Math.min(S, hy); y++) {
    // Clouds thin out towards the horizon, as they do when seen at a grazing angle.
    const fade = (1 - smoothstep(0.5, 1, y / hy)) * opacity;
    for (let x = 0; x < S; x++) {
      const n = clouds[y * S + x]!;
      if (n <= thr) continue;
      const shade = 0.72 + 0.28 * smoothstep(thr, thr + 0.22, n); // darker undersides at cloud edges
      c.blend(x, y, cloud[0] * shade, cloud[1] * shade, cloud[2] * shade, smoothstep(thr, thr + 0.1, n) * fade);
    }
  }
  return { mood, top, horizon: hor };
}

export interface Peaks {
  line: Float32Array;
  /** Peak position owning each column, for left-lit / right-shadowed faces. */
  px: Float32Array;
  py: Float32Array;
}

/** Mountain silhouette: the lower envelope of a few triangular peaks, roughened with noise. */
export function peaksLine(
  S: number,
  rng: Rng,
  base: number,
  minY: number,
  maxY: number,
  n: number,
  jag: number,
): Peaks {
  const pxs: number[] = [],
    pys: number[] = [],
    slopes: number[] = [];
  for (let k = 0; k < n; k++) {
    pxs.push(rng.range(-0.15, 1.15) * S);
    pys.push(rng.range(minY, maxY));
    slopes.push(rng.range(0.45, 1.5));
  }
  const rough = noise1D(S, rng, rng.range(5, 9), 4, 0.55);
  const line = new Float32Array(S),
    px = new Float32Array(S),
    py = new Float32Array(S);
  for (let x = 0; x < S; x++) {
    let best = base + S,
      bx = x,
      by = base;
    for (let k = 0; k < n; k++) {
      const y = pys[k]! + slopes[k]! * Math.abs(x - pxs[k]!);
      if (y < best) {
        best = y;
        bx = pxs[k]!;
        by = pys[k]!;
      }
    }
    line[x] = Math.min(base, best + (rough[x]! - 0.5) * jag * S);
    px[x] = bx;
    py[x] = by;
  }
  return { line, px, py };
}

export interface MountainStyle {
  rock: RGB;
  /** Colour the slopes blend into near their foot (vegetation); bare rock without it. */
  foot?: RGB;
  haze: RGB;
  hazeAmt: number;
  /** The snow line (y in pixels) and the snow's colour; no snow without it. */
  snow?: { line: number; colour: RGB };
}

/** `bottom` is the foot of the range (for the vegetation gradient); `clip`, if given, the nearer ridge hiding it. */
export function drawMountains(
  c: Canvas,
  rng: Rng,
  pk: Peaks,
  bottom: number,
  st: MountainStyle,
  clip?: Float32Array,
): void {
  const S = c.size;
  // Noise is only needed between this ridge and whatever hides the layer.
  const y0 = minOf(pk.line);
  const y1 = clip === undefined ? bottom : Math.min(bottom, maxOf(clip) + 2);
  const tex = noise2D(S, rng, 6, 4, 4, 0.6, y0, y1);
  const streak = noise2D(S, rng, 14, 3, 2, 0.5, y0, y1);
  const skew = rng.range(-0.35, 0.35);
  const lit = rng.range(1.0, 1.2),
    shadow = rng.range(0.6, 0.8);
  const rock = mixRGB(st.rock, st.haze, st.hazeAmt);
  const foot = st.foot === undefined ? undefined : mixRGB(st.foot, st.haze, st.hazeAmt);
  const snow =
    st.snow === undefined
      ? undefined
      : { line: st.snow.line, colour: mixRGB(st.snow.colour, st.haze, st.hazeAmt * 0.6) };
  fillBelow(c, pk.line, clip ?? bottom, (x, y) => {
    const i = y * S + x;
    const t = tex[i]!;
    const peakX = pk.px[x]!,
      peakY = pk.py[x]!;
    const sunny = x - peakX < (y - peakY) * skew;
    const k = (sunny ? lit : shadow) * (0.78 + 0.45 * t) * (0.9 + 0.2 * streak[i]!);
    if (snow !== undefined && y < snow.line + (t - 0.5) * S * 0.3) {
      setP(snow.colour, sunny ? 1 : 0.8);
    } else if (foot !== undefined) {
      mixP(rock, foot, smoothstep(0.35, 1, (y - peakY) / Math.max(1, bottom - peakY)), k);
    } else {
      setP(rock, k);
    }
  });
}

export interface WaterStyle {
  deep: RGB;
  /** 0..1 strength of the wave bands. */
  waves: number;
  /** Mirror the canvas above `top` into the water (lakes) instead of just reflecting the sky colour. */
  mirror: number;
  sky: Sky;
}

/** Water from `top` to the bottom edge: perspective wave bands denser near the horizon, sky reflection, foam glints. */
export function drawWater(c: Canvas, rng: Rng, top: number, st: WaterStyle): void {
  const S = c.size;
  const y0 = clamp(Math.floor(top), 0, S);
  const phase = noise2D(S, rng, rng.range(1.5, 3.5), rng.range(3, 6), 3, 0.5, y0, S);
  const ripple = noise2D(S, rng, 3, 12, 2, 0.5, y0, S);
  const freq = rng.range(2.5, 5);
  const foam = mixRGB(st.sky.horizon, [250, 250, 250], 0.6);
  const near = mixRGB(st.deep, st.sky.horizon, rng.range(0.35, 0.7));
  const depth = Math.max(1, S - top);
  const d = c.d;
  for (let y = y0; y < S; y++) {
    const dz = (y + 0.5 - top) / depth; // 0 at horizon, 1 at bottom edge
    const base = mixRGB(near, st.deep, Math.sqrt(clamp(dz, 0, 1)));
    // Perspective: equal spacing in 1/depth, so bands bunch up towards the horizon;
    // their amplitude fades there so they don't alias into stripes.
    const wz = freq / (dz + 0.06);
    const amp = st.waves * smoothstep(0, 0.25, dz);
    for (let x = 0; x < S; x++) {
      const i = y * S + x;
      const rp = ripple[i]!;
      // Phase noise bends the bands; the horizontally stretched ripple noise breaks them into swells.
      const w = Math.sin(wz + phase[i]! * 7 + (rp - 0.5) * 3);
      let r = base[0],
        g = base[1],
        b = base[2];
      if (st.mirror > 0) {
        const ys = Math.floor(2 * top - y - 1 + (rp - 0.5) * 6 * (0.3 + dz));
        const xs = clamp(Math.round(x + (rp - 0.5) * S * 0.02), 0, S - 1);
        if (ys >= 0 && ys < y0) {
          const j = (ys * S + xs) * 3;
          const m = st.mirror * (1 - 0.5 * dz);
          r = lerp(r, d[j]! * 0.85, m);
          g = lerp(g, d[j + 1]! * 0.88, m);
          b = lerp(b, d[j + 2]! * 0.92, m);
        }
      }
      const k = 1 + w * 0.12 * amp;
      r *= k;
      g *= k;
      b *= k;
      const crest = smoothstep(0.88, 1, w) * amp * 0.7 * smoothstep(0.45, 0.65, rp);
      c.put(x, y, lerp(r, foam[0], crest), lerp(g, foam[1], crest), lerp(b, foam[2], crest));
    }
  }
}

export interface GroundStyle {
  /** Colour at the ground's far edge and near the camera: fixed, or drawn from a range (far first). */
  far: RGB | ColourSpan;
  near: RGB | ColourSpan;
  /** How strongly the noise texture modulates brightness. */
  texture: number;
  /** Noise cells across the image (default 8); more cells, finer grain. */
  cells?: number;
}

/** A ground whose far colour is drawn from [farLo, farHi] and near colour from [nearLo, nearHi]. */
function ground(farLo: RGB, farHi: RGB, nearLo: RGB, nearHi: RGB, texture: number, cells?: number): GroundStyle {
  return { far: { lo: farLo, hi: farHi }, near: { lo: nearLo, hi: nearHi }, texture, ...(cells ? { cells } : {}) };
}

/** The grounds the scene classes stand on: far colours, near colours, texture strength, noise grain. */
export const GROUNDS = {
  forestFloor: ground([50, 55, 25], [110, 95, 55], [40, 45, 20], [90, 80, 45], 0.5, 12),
  snowField: ground([200, 215, 230], [240, 245, 252], [170, 195, 220], [230, 240, 250], 0.25, 5),
  meadow: ground([70, 100, 40], [140, 160, 80], [50, 80, 30], [110, 130, 60], 0.4),
  scree: ground([110, 105, 95], [165, 155, 140], [80, 75, 70], [130, 120, 110], 0.6, 14),
  rockyShore: ground([60, 55, 50], [120, 110, 100], [40, 38, 35], [90, 85, 80], 0.8, 16),
  lakeShore: ground([90, 85, 60], [150, 140, 100], [70, 65, 45], [120, 110, 80], 0.6, 14),
  pavement: ground([90, 90, 90], [150, 145, 140], [70, 70, 70], [130, 125, 120], 0.25),
};

/** Textured ground from `top` to the bottom edge, a little darker and more saturated near the camera. */
export function drawGround(c: Canvas, rng: Rng, top: Float32Array, st: GroundStyle): void {
  const far = colourOf(rng, st.far);
  const near = colourOf(rng, st.near);
  const cells = st.cells ?? 8;
  const S = c.size;
  const minTop = minOf(top);
  const tex = noise2D(S, rng, cells, cells * 1.5, 4, 0.6, minTop, S);
  const span = Math.max(1, S - minTop);
  fillBelow(c, top, S, (x, y) =>
    mixP(far, near, clamp((y - minTop) / span, 0, 1), 1 + (tex[y * S + x]! - 0.5) * st.texture),
  );
}
