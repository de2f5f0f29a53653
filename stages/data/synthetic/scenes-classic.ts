/**
 * Recipes of the natural four of the first six classes, which mirror the classic Intel scene
 * benchmark (buildings, forest, glacier, mountain, sea, street; the city two are in
 * scenes-city.ts). Each draws every random choice from the sample's Rng.
 */
import type { Rng } from '../random.js';
import { between, jitter, mixRGB, type RGB, scaleRGB } from './colour.js';
import { noise1D, noise2D, wavyLine } from './noise.js';
import { type Canvas, clamp, fillBelow, lerp, minOf, mixP, setP, smoothstep } from './paint.js';
import { drawGround, drawMountains, drawSky, drawWater, GROUNDS, peaksLine } from './elements.js';
import { drawConifer, drawRoundTree, foliagePalette } from './trees.js';

export function sceneForest(c: Canvas, rng: Rng): void {
  const S = c.size;
  const canopyTop = rng.chance(0.25) ? -S * 0.1 : S * rng.range(0.03, 0.35);
  const sky = drawSky(c, rng, Math.max(S * 0.3, canopyTop + S * 0.1));
  const fol = foliagePalette(rng, 0.22);
  const tex = noise2D(S, rng, rng.range(6, 12), rng.range(6, 12), 4, 0.6);
  if (rng.chance(0.5)) {
    // Conifer forest: rows of triangles, smaller and hazier towards the back.
    const rows = rng.int(3, 5);
    const backdrop = wavyLine(S, rng, canopyTop + S * 0.12, S * 0.05, 12, 3);
    const bd = mixRGB(fol.dark, sky.horizon, 0.35);
    fillBelow(c, backdrop, S, (x, y) => setP(bd, 0.8 + 0.4 * tex[y * S + x]!));
    for (let r = 0; r < rows; r++) {
      const depth = 1 - r / rows; // 1 = far
      const h = S * lerp(0.35, 0.12, depth) * rng.range(0.8, 1.6);
      const base = canopyTop + h + S * lerp(0.55, 0.05, depth);
      const spacing = h * rng.range(0.25, 0.45);
      const shading = { foliage: fol, tex, haze: sky.horizon, hazeAmt: depth * 0.45 };
      for (let x = -rng.range(0, spacing); x < S + spacing; x += spacing * rng.range(0.7, 1.3)) {
        const hh = h * rng.range(0.75, 1.25);
        drawConifer(c, x, base + rng.range(-0.05, 0.05) * S, hh, hh * rng.range(0.35, 0.55), shading);
      }
    }
  } else {
    // Broadleaf forest: a dense canopy texture with trunks showing underneath.
    const canopy = wavyLine(S, rng, canopyTop, S * 0.06, 10, 4);
    const under = rng.range(0.55, 0.9) * S;
    const gloom = rng.range(0.35, 0.7);
    fillBelow(c, canopy, S, (x, y) => {
      const t = tex[y * S + x]!;
      // Interior of a forest is darker than the sunlit canopy.
      mixP(fol.dark, fol.light, clamp((t - 0.3) * 2.2, 0, 1), 1 - gloom * smoothstep(canopyTop, under, y));
    });
    const trunks = rng.int(4, 14);
    const bark = between(rng, [35, 28, 22], [95, 85, 75]);
    for (let k = 0; k < trunks; k++) {
      const tx = rng.range(0, 1) * S,
        w = S * rng.range(0.008, 0.045);
      const col = jitter(rng, bark, 12);
      const top = rng.range(canopyTop + S * 0.1, under);
      c.rect(tx - w / 2, top, tx + w / 2, S, col);
      c.rect(tx - w / 2, top, tx - w / 6, S, scaleRGB(col, 1.4), 0.35); // lit edge reads as a round trunk
    }
    const blobs = rng.int(2, 6);
    const shading = { foliage: fol, tex, haze: sky.horizon, hazeAmt: 0 };
    for (let k = 0; k < blobs; k++) {
      drawRoundTree(c, rng, rng.range(0, 1) * S, S * rng.range(0.5, 1.1), S * rng.range(0.3, 0.7), shading);
    }
  }
  // Forest floor.
  if (rng.chance(0.6)) {
    const floor = wavyLine(S, rng, S * rng.range(0.82, 0.97), S * 0.03, 6, 3);
    drawGround(c, rng, floor, GROUNDS.forestFloor);
  }
}

export function sceneGlacier(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.3, 0.6);
  const sky = drawSky(c, rng, hy, { clear: 0.5, overcast: 0.3, sunset: 0.05, hazy: 0.15 });
  if (rng.chance(0.5)) {
    // Distant snowy peaks behind the ice.
    const pk = peaksLine(S, rng, hy, hy - S * 0.35, hy - S * 0.12, rng.int(2, 4), 0.04);
    drawMountains(c, rng, pk, hy + S * 0.05, {
      rock: between(rng, [90, 95, 105], [140, 145, 150]),
      haze: sky.horizon,
      hazeAmt: rng.range(0.3, 0.6),
      snow: { line: hy, colour: [235, 240, 248] },
    });
  }
  // Ice cliff / tongue: jagged top, vertical streaks, blue crevasses.
  const waterline = hy + S * rng.range(0.05, 0.3);
  const iceTop = wavyLine(S, rng, hy - S * rng.range(0.0, 0.15), S * rng.range(0.03, 0.1), rng.range(6, 14), 5);
  const streaks = noise2D(S, rng, rng.range(10, 22), rng.range(1.5, 3), 3, 0.5, minOf(iceTop), waterline);
  const tex = noise2D(S, rng, 8, 8, 4, 0.5, minOf(iceTop), waterline);
  const ice = between(rng, [185, 215, 230], [235, 248, 255]);
  const crevasse = between(rng, [60, 120, 165], [130, 185, 225]);
  const cut = rng.range(0.34, 0.45);
  fillBelow(c, iceTop, waterline, (x, y) => {
    const i = y * S + x;
    const s = streaks[i]!;
    mixP(
      ice,
      crevasse,
      smoothstep(0.5, 0.25, s) * 0.9 + smoothstep(cut, cut - 0.05, tex[i]!) * 0.4,
      0.85 + 0.3 * tex[i]!,
    );
  });
  if (rng.chance(0.65)) {
    drawWater(c, rng, waterline, {
      deep: between(rng, [20, 60, 80], [60, 110, 130]),
      waves: rng.range(0.1, 0.5),
      mirror: rng.range(0.2, 0.5),
      sky,
    });
    // Floating ice floes.
    const floes = rng.int(0, 8);
    for (let k = 0; k < floes; k++) {
      const fy = rng.range(waterline + S * 0.02, S);
      const fw = S * rng.range(0.03, 0.12) * (0.4 + (fy - waterline) / S);
      const fx = rng.range(0, 1) * S;
      c.rect(fx - fw, fy - fw * 0.25, fx + fw, fy, jitter(rng, ice, 10));
      c.rect(fx - fw, fy, fx + fw, fy + fw * 0.12, crevasse, 0.7);
    }
  } else {
    // Snow field in front with blue shadows.
    const snowTop = wavyLine(S, rng, waterline, S * 0.03, 4, 3);
    drawGround(c, rng, snowTop, GROUNDS.snowField);
  }
}

export function sceneMountain(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.5, 0.85);
  const sky = drawSky(c, rng, hy);
  const layers = rng.int(2, 3);
  const snowy = rng.chance(0.5);
  const rockBase = between(rng, [85, 80, 75], [150, 135, 120]);
  // Plan every layer first so each far layer is only painted down to the ridge in front of it.
  const plan = Array.from({ length: layers }, (_, l) => {
    const far = 1 - l / layers; // 1 = farthest layer
    const peakTop = S * lerp(rng.range(0.05, 0.25), rng.range(0.2, 0.45), 1 - far);
    const base = hy + S * lerp(0.0, 0.2, 1 - far);
    const pk = peaksLine(S, rng, base, peakTop, lerp(peakTop, base, 0.5), rng.int(1, 4), rng.range(0.03, 0.07));
    return { far, peakTop, base, pk };
  });
  plan.forEach(({ far, peakTop, base, pk }, l) => {
    drawMountains(
      c,
      rng,
      pk,
      S,
      {
        rock: jitter(rng, rockBase, 15),
        foot: rng.chance(0.6) ? between(rng, [50, 75, 35], [110, 130, 70]) : undefined,
        haze: sky.horizon,
        hazeAmt: far * rng.range(0.35, 0.6),
        snow: snowy ? { line: lerp(peakTop, base, rng.range(0.15, 0.45)), colour: [238, 240, 245] } : undefined,
      },
      plan[l + 1]?.pk.line,
    );
  });
  // Foreground: meadow, scree or a lake, sometimes with a few conifers.
  const fg = rng.weighted({ meadow: 0.5, scree: 0.3, none: 0.2 });
  if (fg !== 'none') {
    const top = wavyLine(S, rng, S * rng.range(0.75, 0.95), S * 0.05, 3, 3);
    drawGround(c, rng, top, fg === 'meadow' ? GROUNDS.meadow : GROUNDS.scree);
    if (rng.chance(0.35)) {
      const fol = foliagePalette(rng, 0.1);
      const ftex = noise2D(S, rng, 16, 16, 2);
      const n = rng.int(1, 5);
      const shading = { foliage: fol, tex: ftex, haze: sky.horizon, hazeAmt: 0 };
      for (let k = 0; k < n; k++) {
        const h = S * rng.range(0.1, 0.3);
        drawConifer(c, rng.range(0, 1) * S, S * rng.range(0.85, 1.05), h, h * 0.45, shading);
      }
    }
  }
}

export function sceneSea(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.3, 0.6);
  const sky = drawSky(c, rng, hy);
  // Sometimes a distant island or headland on the horizon.
  if (rng.chance(0.3)) {
    const pk = peaksLine(S, rng, hy + 1, hy - S * rng.range(0.03, 0.12), hy, rng.int(1, 2), 0.02);
    drawMountains(c, rng, pk, hy + 1, {
      rock: between(rng, [60, 75, 60], [110, 120, 100]),
      haze: sky.horizon,
      hazeAmt: rng.range(0.4, 0.7),
    });
  }
  drawWater(c, rng, hy, {
    deep: between(rng, [10, 45, 80], [50, 110, 150]),
    waves: rng.range(0.5, 1),
    mirror: 0,
    sky,
  });
  // Sun glitter column.
  if (sky.mood === 'sunset' || rng.chance(0.2)) {
    const gx = rng.range(0.2, 0.8) * S,
      gw = S * rng.range(0.05, 0.15);
    const glint = noise2D(S, rng, 8, 30, 1, 0.5, hy, S);
    const col: RGB = sky.mood === 'sunset' ? [255, 200, 130] : [250, 250, 240];
    for (let y = Math.ceil(hy); y < S; y++) {
      const w = gw * (0.3 + (y - hy) / S);
      for (let x = Math.max(0, Math.floor(gx - w)); x < Math.min(S, Math.ceil(gx + w)); x++) {
        const a = smoothstep(0.6, 0.75, glint[y * S + x]!) * (1 - Math.abs(x - gx) / w);
        if (a > 0) c.blend(x, y, col[0], col[1], col[2], a);
      }
    }
  }
  // Rocky shore in a bottom corner.
  if (rng.chance(0.25)) {
    const left = rng.chance(0.5);
    const top = new Float32Array(S);
    const rough = noise1D(S, rng, 8, 3);
    const reach = rng.range(0.3, 0.6) * S;
    for (let x = 0; x < S; x++) {
      const dx = left ? x : S - 1 - x;
      top[x] = S - Math.max(0, reach - dx) * 0.6 + (rough[x]! - 0.5) * S * 0.08;
    }
    drawGround(c, rng, top, GROUNDS.rockyShore);
  }
}

/** This module's recipes by class name (scenes.ts puts the classes in order). */
export const CLASSIC_SCENES = { forest: sceneForest, glacier: sceneGlacier, mountain: sceneMountain, sea: sceneSea };
