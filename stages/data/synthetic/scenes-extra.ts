/**
 * Recipes of the six classes appended after the Intel-benchmark ones (desert, field, lake,
 * beach, sky, canyon).
 */
import type { Rng } from '../random.js';
import { between, type ColourSpan, colourOf, jitter, mixRGB, type RGB, scaleRGB } from './colour.js';
import { flatLine, noise1D, noise2D, wavyLine } from './noise.js';
import { type Canvas, clamp, fillBelow, lerp, minOf, mixP, P, setP, smoothstep } from './paint.js';
import { drawGround, drawMountains, drawSky, drawWater, GROUNDS, peaksLine } from './elements.js';
import { drawRoundTree, foliagePalette } from './trees.js';

export function sceneDesert(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.3, 0.6);
  const sky = drawSky(c, rng, hy, { clear: 0.6, overcast: 0.05, sunset: 0.15, hazy: 0.2 });
  const sand = between(rng, [180, 135, 85], [235, 195, 145]);
  if (rng.chance(0.3)) {
    // Distant mesa.
    const pk = peaksLine(S, rng, hy + 1, hy - S * rng.range(0.05, 0.15), hy - S * 0.05, 2, 0.01);
    for (let x = 0; x < S; x++) pk.line[x] = Math.max(pk.line[x]!, hy - S * 0.12);
    drawMountains(c, rng, pk, hy + 1, {
      rock: scaleRGB(sand, 0.7),
      haze: sky.horizon,
      hazeAmt: 0.45,
    });
  }
  const layers = rng.int(2, 4);
  const ripples = noise2D(S, rng, 3, 6, 2, 0.5, hy - S * 0.2, S);
  const freq = rng.range(40, 90) / S;
  for (let l = 0; l < layers; l++) {
    const near = l / Math.max(1, layers - 1);
    const crest = wavyLine(S, rng, hy + (S - hy) * near * 0.6, S * lerp(0.04, 0.15, near), rng.range(1, 2.5), 2);
    const col = mixRGB(jitter(rng, sand, 12), sky.horizon, (1 - near) * 0.3);
    fillBelow(c, crest, S, (x, y) => {
      // Lit vs shadowed flank from the crest slope; shading fades away from the crest.
      const xl = Math.max(0, x - 1),
        xr = Math.min(S - 1, x + 1);
      const slope = (crest[xr]! - crest[xl]!) / 2;
      const below = (y - crest[x]!) / S;
      const k = 1 + clamp(slope * 1.5, -0.35, 0.2) * Math.exp(-below * 8);
      const rip = 1 + 0.06 * Math.sin(y * freq * S * 0.25 + ripples[y * S + x]! * 30) * near;
      setP(col, k * rip);
    });
  }
  // A few dark rocks / scrub.
  const rocks = rng.int(0, 5);
  for (let k = 0; k < rocks; k++) {
    const ry = rng.range(hy + S * 0.05, S),
      rw = S * rng.range(0.005, 0.03) * (0.5 + (ry - hy) / S);
    const rx = rng.range(0, 1) * S;
    c.rect(rx - rw, ry - rw * 0.7, rx + rw, ry, between(rng, [60, 50, 35], [110, 95, 65]));
  }
}

/** The field's main colour by crop (the second is darker soil, or the furrows of a ploughed one). */
const CROP_COLOURS = {
  green: { lo: [60, 110, 30], hi: [130, 175, 70] },
  wheat: { lo: [190, 160, 70], hi: [235, 205, 120] },
  ploughed: { lo: [90, 65, 45], hi: [140, 105, 75] },
  meadow: { lo: [80, 130, 50], hi: [150, 185, 90] },
} as const satisfies Record<string, ColourSpan>;

export function sceneField(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.3, 0.6);
  const sky = drawSky(c, rng, hy);
  if (rng.chance(0.5)) {
    // Tree line on the horizon.
    const fol = foliagePalette(rng, 0.15);
    const top = wavyLine(S, rng, hy - S * rng.range(0.02, 0.08), S * 0.02, 16, 3);
    const col = mixRGB(fol.dark, sky.horizon, 0.3);
    fillBelow(c, top, hy + 1, () => setP(col));
  }
  const crop = rng.weighted({ green: 0.4, wheat: 0.3, ploughed: 0.15, meadow: 0.15 });
  const a = colourOf(rng, CROP_COLOURS[crop]);
  const b: RGB = crop === 'ploughed' ? scaleRGB(a, 0.65) : mixRGB(a, [60, 50, 35], rng.range(0.2, 0.5));
  const rows = crop !== 'meadow' && rng.chance(0.8);
  const vx = S * rng.range(0.1, 0.9);
  const freq = rng.range(10, 30);
  const tex = noise2D(S, rng, 10, 20, 3);
  const wind = noise2D(S, rng, 3, 8, 2, 0.5, hy, S);
  fillBelow(c, flatLine(S, hy), S, (x, y) => {
    const dz = (y + 0.5 - hy) / (S - hy);
    const i = y * S + x;
    let t = 0.5;
    if (rows) {
      // Crop rows: stripes in the ground-plane angle, converging to the vanishing point.
      const ang = (x + 0.5 - vx) / Math.max(0.5, y + 0.5 - hy);
      t = 0.5 + 0.5 * Math.sin(ang * freq) * smoothstep(0.02, 0.3, dz);
    }
    const k = 0.85 + 0.2 * tex[i]! + 0.15 * (wind[i]! - 0.5);
    mixP(a, b, t * 0.8, k);
    // Aerial perspective: the far field fades towards the horizon colour.
    const h = (1 - dz) * (1 - dz) * 0.35;
    P[0] = lerp(P[0]!, sky.horizon[0], h);
    P[1] = lerp(P[1]!, sky.horizon[1], h);
    P[2] = lerp(P[2]!, sky.horizon[2], h);
  });
  if (crop === 'meadow') {
    // Flowers: scattered dots, denser (smaller) towards the horizon.
    const flower = rng.pick<RGB>([
      [235, 220, 60],
      [230, 230, 235],
      [200, 60, 60],
      [180, 110, 200],
    ]);
    const n = rng.int(20, 120);
    for (let k = 0; k < n; k++) {
      const y = hy + (S - hy) * Math.pow(rng.next(), 0.6),
        r = Math.max(0.5, S * 0.008 * ((y - hy) / (S - hy)));
      const x = rng.range(0, 1) * S;
      c.rect(x - r, y - r, x + r, y + r, flower, 0.85);
    }
  }
  if (rng.chance(0.25)) {
    const shading = { foliage: foliagePalette(rng, 0.1), tex, haze: sky.horizon, hazeAmt: 0.1 };
    drawRoundTree(c, rng, rng.range(0.1, 0.9) * S, hy + S * rng.range(0.02, 0.2), S * rng.range(0.15, 0.4), shading);
  }
}

export function sceneLake(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.4, 0.65);
  const sky = drawSky(c, rng, hy);
  // Backdrop: mountains or forested hills, which the still water mirrors.
  if (rng.chance(0.5)) {
    const pk = peaksLine(S, rng, hy, hy - S * rng.range(0.15, 0.35), hy - S * 0.05, rng.int(1, 3), 0.04);
    drawMountains(c, rng, pk, hy + 1, {
      rock: between(rng, [80, 80, 80], [140, 130, 120]),
      foot: between(rng, [40, 70, 35], [90, 115, 60]),
      haze: sky.horizon,
      hazeAmt: rng.range(0.15, 0.45),
      snow: rng.chance(0.4) ? { line: hy - S * rng.range(0.15, 0.3), colour: [238, 240, 245] } : undefined,
    });
  } else {
    const fol = foliagePalette(rng, 0.2);
    const top = wavyLine(S, rng, hy - S * rng.range(0.05, 0.18), S * 0.05, 5, 4);
    const tex = noise2D(S, rng, 20, 12, 2, 0.5, minOf(top), hy + 1);
    fillBelow(c, top, hy + 1, (x, y) => mixP(fol.dark, fol.light, tex[y * S + x]! * 0.8));
  }
  drawWater(c, rng, hy, {
    deep: between(rng, [20, 50, 60], [60, 95, 110]),
    waves: rng.range(0, 0.25),
    mirror: rng.range(0.55, 0.9),
    sky,
  });
  // Shore or reeds in the foreground.
  if (rng.chance(0.4)) {
    const top = wavyLine(S, rng, S * rng.range(0.85, 0.98), S * 0.04, 3, 3);
    drawGround(c, rng, top, GROUNDS.lakeShore);
  }
  if (rng.chance(0.3)) {
    const reed = between(rng, [50, 70, 30], [110, 120, 60]);
    const n = rng.int(10, 40);
    for (let k = 0; k < n; k++) {
      const x = rng.range(0, 1) * S,
        w = Math.max(0.7, S * 0.006);
      c.rect(x, S - S * rng.range(0.05, 0.25), x + w, S, reed);
    }
  }
}

export function sceneBeach(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.28, 0.5);
  const sky = drawSky(c, rng, hy, { clear: 0.6, overcast: 0.15, sunset: 0.15, hazy: 0.1 });
  drawWater(c, rng, hy, {
    deep: between(rng, [20, 90, 120], [70, 150, 170]),
    waves: rng.range(0.3, 0.8),
    mirror: 0,
    sky,
  });
  const shore = wavyLine(S, rng, hy + (S - hy) * rng.range(0.2, 0.55), S * 0.04, rng.range(2, 5), 3);
  const sand = between(rng, [190, 165, 120], [240, 220, 180]);
  const wet = scaleRGB(sand, rng.range(0.6, 0.8));
  const tex = noise2D(S, rng, 12, 12, 3, 0.5, minOf(shore), S);
  const foamW = S * rng.range(0.01, 0.03);
  fillBelow(c, shore, S, (x, y) => {
    const below = y - shore[x]!;
    mixP(wet, sand, smoothstep(0, S * 0.12, below), 0.9 + 0.2 * tex[y * S + x]!);
    const f = smoothstep(foamW, 0, below);
    P[0] = lerp(P[0]!, 248, f);
    P[1] = lerp(P[1]!, 248, f);
    P[2] = lerp(P[2]!, 245, f);
  });
  // Umbrellas / towels: small saturated shapes.
  const n = rng.int(0, 4);
  for (let k = 0; k < n; k++) {
    const x = rng.range(0, 1) * S,
      y = rng.range(shore[clamp(Math.floor(x), 0, S - 1)]! + S * 0.08, S),
      w = S * 0.04 * (0.5 + (y - hy) / S);
    c.rect(
      x - w,
      y - w * 0.4,
      x + w,
      y,
      rng.pick<RGB>([
        [220, 50, 50],
        [40, 90, 200],
        [240, 200, 40],
        [250, 250, 250],
      ]),
    );
  }
}

export function sceneSky(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.8, 1.15);
  drawSky(c, rng, hy, { clear: 0.45, overcast: 0.2, sunset: 0.25, hazy: 0.1 }, rng.range(0, 0.4));
  // Low silhouette of land, trees or a town at the bottom edge.
  if (hy < S) {
    const top = wavyLine(S, rng, hy, S * rng.range(0.01, 0.05), rng.range(4, 20), 3);
    const col = between(rng, [20, 25, 25], [70, 80, 70]);
    fillBelow(c, top, S, () => setP(col));
  }
  // Birds: small dark chevrons.
  if (rng.chance(0.3)) {
    const n = rng.int(2, 9);
    for (let k = 0; k < n; k++) {
      const x = rng.range(0.1, 0.9) * S,
        y = rng.range(0.1, 0.7) * S,
        w = Math.max(1, S * 0.015);
      c.rect(x - w, y - w * 0.3, x, y + w * 0.1, [30, 30, 35]);
      c.rect(x, y - w * 0.3, x + w, y + w * 0.1, [30, 30, 35]);
    }
  }
}

export function sceneCanyon(c: Canvas, rng: Rng): void {
  const S = c.size;
  const sky = drawSky(c, rng, S * rng.range(0.3, 0.5), { clear: 0.6, overcast: 0.1, sunset: 0.15, hazy: 0.15 });
  // Two rock walls leave a V of sky that widens upwards; strata are horizontal bands warped by noise.
  const gapX = rng.range(0.3, 0.7) * S;
  const floorY = S * rng.range(0.6, 0.95);
  const gapW = S * rng.range(0.0, 0.15);
  const open = rng.range(0.2, 0.9);
  const warp = noise2D(S, rng, 4, 4, 3);
  const tex = noise2D(S, rng, 12, 6, 3);
  const palette: RGB[] = [];
  const base = between(rng, [160, 75, 45], [215, 135, 90]);
  for (let k = 0; k < 7; k++) palette.push(jitter(rng, mixRGB(base, [230, 200, 160], rng.range(0, 0.45)), 18));
  const band = S * rng.range(0.03, 0.08);
  const edgeL = noise1D(S, rng, 8, 3),
    edgeR = noise1D(S, rng, 8, 3);
  const litLeft = rng.chance(0.5);
  for (let y = 0; y < S; y++) {
    const half = gapW / 2 + open * Math.max(0, floorY - y);
    const l = gapX - half + (edgeL[y]! - 0.5) * S * 0.1;
    const r = gapX + half + (edgeR[y]! - 0.5) * S * 0.1;
    for (let x = 0; x < S; x++) {
      if (x + 0.5 > l && x + 0.5 < r) continue; // sky shows through the gap
      const i = y * S + x;
      const s = (y + (warp[i]! - 0.5) * S * 0.25) / band;
      const col = palette[((Math.floor(s) % palette.length) + palette.length) % palette.length]!;
      const shade = x < gapX === litLeft ? 1.05 : 0.7;
      setP(col, shade * (0.8 + 0.35 * tex[i]!));
      c.put(x, y, P[0]!, P[1]!, P[2]!);
    }
  }
  // River or sandy floor at the bottom of the gorge.
  if (floorY < S * 0.9 && rng.chance(0.5)) {
    drawWater(c, rng, floorY, { deep: between(rng, [40, 90, 80], [90, 140, 120]), waves: 0.3, mirror: 0.4, sky });
  } else if (rng.chance(0.5)) {
    drawGround(c, rng, wavyLine(S, rng, Math.max(floorY, S * 0.85), S * 0.02, 4, 2), {
      far: scaleRGB(base, 0.9),
      near: scaleRGB(base, 0.75),
      texture: 0.5,
      cells: 14,
    });
  }
}

/** This module's recipes by class name (scenes.ts puts the classes in order). */
export const EXTRA_SCENES = {
  desert: sceneDesert,
  field: sceneField,
  lake: sceneLake,
  beach: sceneBeach,
  sky: sceneSky,
  canyon: sceneCanyon,
};
