/**
 * Trees shared by several scene classes: foliage palettes, conifers and broadleaf trees.
 */
import type { Rng } from '../random.js';
import { between, mixRGB, type RGB } from './colour.js';
import { type Canvas, clamp, fract, mixP, P } from './paint.js';

export interface Foliage {
  dark: RGB;
  light: RGB;
}

export function foliagePalette(rng: Rng, autumnChance: number): Foliage {
  if (rng.chance(autumnChance)) {
    return { dark: between(rng, [70, 40, 15], [110, 70, 35]), light: between(rng, [170, 110, 30], [225, 170, 70]) };
  }
  return { dark: between(rng, [15, 35, 12], [45, 70, 40]), light: between(rng, [70, 110, 35], [135, 175, 85]) };
}

/** How a tree is coloured: its palette, the texture that breaks up its leaves, and how far it fades into the haze. */
export interface TreeShading {
  foliage: Foliage;
  tex: Float32Array;
  haze: RGB;
  hazeAmt: number;
}

/** Conifer: a textured triangle on a short trunk, lit from the left. */
export function drawConifer(c: Canvas, x0: number, base: number, h: number, w: number, shading: TreeShading): void {
  const { foliage: fol, tex, haze, hazeAmt } = shading;
  const S = c.size;
  const top = base - h;
  const dark = mixRGB(fol.dark, haze, hazeAmt),
    light = mixRGB(fol.light, haze, hazeAmt);
  const trunk = mixRGB([60, 45, 35], haze, hazeAmt);
  c.rect(x0 - w * 0.06, base - h * 0.15, x0 + w * 0.06, base, trunk);
  const ya = Math.max(0, Math.floor(top)),
    yb = Math.min(S, Math.ceil(base - h * 0.12));
  for (let y = ya; y < yb; y++) {
    const f = (y + 0.5 - top) / (h * 0.88);
    // Slightly ragged edges: tiers of branches make the outline saw-toothed.
    const half = (w / 2) * f * (0.8 + 0.2 * fract(f * 5));
    const xa = Math.max(0, Math.floor(x0 - half)),
      xb = Math.min(S, Math.ceil(x0 + half));
    for (let x = xa; x < xb; x++) {
      const side = (x - x0) / Math.max(1, half); // -1 left .. 1 right
      const l = clamp(0.55 - side * 0.35, 0, 1) * (0.6 + 0.8 * (tex[y * S + x]! - 0.3));
      mixP(dark, light, clamp(l, 0, 1));
      c.put(x, y, P[0]!, P[1]!, P[2]!);
    }
  }
}

/** Broadleaf tree: a few overlapping shaded discs on a trunk. */
export function drawRoundTree(c: Canvas, rng: Rng, x0: number, base: number, h: number, shading: TreeShading): void {
  const { foliage: fol, tex, haze, hazeAmt } = shading;
  const S = c.size;
  const trunk = mixRGB(between(rng, [45, 35, 25], [90, 70, 55]), haze, hazeAmt);
  const dark = mixRGB(fol.dark, haze, hazeAmt),
    light = mixRGB(fol.light, haze, hazeAmt);
  const r = h * rng.range(0.28, 0.4);
  const cy = base - h + r;
  c.rect(x0 - h * 0.04, cy, x0 + h * 0.04, base, trunk);
  const blobs = rng.int(2, 4);
  for (let k = 0; k < blobs; k++) {
    const bx = x0 + rng.range(-0.5, 0.5) * r,
      by = cy + rng.range(-0.3, 0.4) * r,
      br = r * rng.range(0.6, 0.95);
    const ya = Math.max(0, Math.floor(by - br)),
      yb = Math.min(S, Math.ceil(by + br));
    const xa = Math.max(0, Math.floor(bx - br)),
      xb = Math.min(S, Math.ceil(bx + br));
    for (let y = ya; y < yb; y++) {
      for (let x = xa; x < xb; x++) {
        const dx = (x + 0.5 - bx) / br,
          dy = (y + 0.5 - by) / br;
        const d2 = dx * dx + dy * dy;
        if (d2 > 1) continue;
        const l = clamp(0.55 - (dx + dy) * 0.3 + (tex[y * S + x]! - 0.5) * 1.4, 0, 1);
        mixP(dark, light, l);
        c.blend(x, y, P[0]!, P[1]!, P[2]!, d2 > 0.85 ? 0.6 : 1);
      }
    }
  }
}
