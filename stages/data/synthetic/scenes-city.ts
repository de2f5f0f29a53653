/**
 * Recipes of the city two of the first six classes, which mirror the classic Intel scene
 * benchmark (buildings and street; the natural four are in scenes-classic.ts). Each draws every
 * random choice from the sample's Rng.
 */
import type { Rng } from '../random.js';
import { between, jitter, type RGB } from './colour.js';
import { flatLine, noise2D } from './noise.js';
import { type Canvas, clamp, fract, lerp, P, setP } from './paint.js';
import { drawBuilding, facadeColour, type Facade, randomFacade } from './buildings.js';
import { drawGround, drawSky, GROUNDS } from './elements.js';
import { drawRoundTree, foliagePalette } from './trees.js';

export function sceneBuildings(c: Canvas, rng: Rng): void {
  const S = c.size;
  const ground = S * rng.range(0.8, 1.05);
  const sky = drawSky(c, rng, S * rng.range(0.45, 0.9));
  const tex = noise2D(S, rng, 10, 10, 3);
  // Foreground towers tiling the width, some with a darker side face for depth. Planned
  // first so the far skyline is only painted where it will stay visible.
  interface Tower {
    x: number;
    w: number;
    top: number;
    side: number;
    f: Facade;
  }
  const towers: Tower[] = [];
  const fgTop = new Float32Array(S).fill(S);
  for (let x = -rng.range(0, 0.15) * S; x < S; ) {
    const w = S * rng.range(0.18, 0.55);
    const t: Tower = {
      x,
      w,
      top: S * rng.range(-0.15, 0.5),
      side: rng.chance(0.4) ? w * rng.range(0.15, 0.3) : 0,
      f: randomFacade(rng, S, sky),
    };
    towers.push(t);
    for (let k = Math.max(0, Math.round(x)); k < Math.min(S, Math.round(x + w)); k++) fgTop[k] = Math.max(0, t.top);
    x += w + (rng.chance(0.3) ? S * rng.range(0.02, 0.12) : 0);
  }
  // A hazy far skyline so gaps between towers still read as "city".
  if (rng.chance(0.7)) {
    let x = -rng.range(0, 0.1) * S;
    while (x < S) {
      const w = S * rng.range(0.06, 0.18);
      drawBuilding(
        c,
        x,
        x + w,
        S * rng.range(0.15, 0.55),
        ground,
        randomFacade(rng, S, sky),
        tex,
        1,
        sky.horizon,
        rng.range(0.35, 0.6),
        fgTop,
      );
      x += w;
    }
  }
  for (const t of towers) {
    drawBuilding(c, t.x, t.x + t.w - t.side, t.top, ground, t.f, tex, 1, sky.horizon, 0);
    if (t.side > 0)
      drawBuilding(c, t.x + t.w - t.side, t.x + t.w, t.top + S * 0.01, ground, t.f, tex, 0.65, sky.horizon, 0);
  }
  if (ground < S) drawGround(c, rng, flatLine(S, ground), GROUNDS.pavement);
  // Street trees in front of some blocks: shared with street/forest, blurs colour statistics.
  if (rng.chance(0.35)) {
    const fol = foliagePalette(rng, 0.15);
    const ftex = noise2D(S, rng, 14, 14, 2);
    const n = rng.int(1, 4);
    const shading = { foliage: fol, tex: ftex, haze: sky.horizon, hazeAmt: 0 };
    for (let k = 0; k < n; k++)
      drawRoundTree(c, rng, rng.range(0, 1) * S, Math.min(ground, S) + S * 0.02, S * rng.range(0.25, 0.5), shading);
  }
}

export function sceneStreet(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.32, 0.55);
  const vx = S * rng.range(0.3, 0.7);
  const sky = drawSky(c, rng, hy);
  const tex = noise2D(S, rng, 10, 10, 3);
  const roadL = vx - S * rng.range(0.35, 0.9),
    roadR = vx + S * rng.range(0.35, 0.9);
  const asphalt = between(rng, [55, 55, 58], [115, 112, 108]);
  const walk = between(rng, [120, 115, 105], [185, 180, 170]);
  const paint: RGB = rng.chance(0.7) ? [235, 235, 230] : [230, 195, 70];

  // Each side is a row of facades seen in perspective (or open, with trees drawn later).
  // Depth z = 1/t where t is the horizontal distance from the vanishing point relative to the
  // frame edge; equal steps in z are equal world distances along the street.
  interface Block {
    z1: number;
    h: number;
    f: Facade;
  }
  interface Side {
    buildings: boolean;
    span: number;
    drop: number;
    blocks: Block[];
  }
  const sides: Side[] = [];
  for (const edge of [0, S]) {
    const span = Math.max(1, Math.abs(vx - edge));
    const blocks: Block[] = [];
    let z = rng.range(0.6, 1.2);
    while (z < 80) {
      z += rng.range(0.4, 2.2) * (S / span) * 0.4 * Math.max(1, z * 0.3);
      blocks.push({ z1: z, h: S * rng.range(0.3, 1.3), f: randomFacade(rng, S * 0.6, sky) });
    }
    sides.push({ buildings: rng.chance(0.75), span, drop: S * rng.range(0.2, 0.5), blocks });
  }
  const [sideL, sideR] = sides as [Side, Side];
  const hazeFar = 30;
  for (let x = 0; x < S; x++) {
    const side = x < vx ? sideL : sideR;
    const t = Math.max(1e-3, Math.abs(x + 0.5 - vx) / side.span);
    const z = 1 / t;
    const yb = hy + side.drop * t;
    let block: Block | undefined;
    let zPrev = 0;
    for (const b of side.blocks) {
      if (z <= b.z1) {
        block = b;
        break;
      }
      zPrev = b.z1;
    }
    const d = (y: number): number => (y + 0.5 - hy) / (S - hy);
    for (let y = 0; y < S; y++) {
      if (y + 0.5 > yb && y + 0.5 > hy) {
        // Ground: road triangle converging to the vanishing point, sidewalks elsewhere.
        const dz = d(y);
        const xl = vx + (roadL - vx) * dz,
          xr = vx + (roadR - vx) * dz;
        const tv = tex[y * S + x]!;
        if (x >= xl && x < xr) {
          const xc = (xl + xr) / 2,
            lw = Math.max(0.6, S * 0.012 * dz);
          const dash = fract(2.5 / dz) < 0.5 && Math.abs(x + 0.5 - xc) < lw;
          const edgeLine = Math.abs(x + 0.5 - xl) < lw || Math.abs(x + 0.5 - xr) < lw;
          if (dash || edgeLine) setP(paint, 0.9 + 0.2 * tv);
          else setP(asphalt, 0.85 + 0.3 * tv);
        } else {
          setP(walk, 0.85 + 0.3 * tv);
        }
        const fog = clamp(1 - dz * 3, 0, 1) * 0.5;
        c.put(
          x,
          y,
          lerp(P[0]!, sky.horizon[0], fog),
          lerp(P[1]!, sky.horizon[1], fog),
          lerp(P[2]!, sky.horizon[2], fog),
        );
      } else if (side.buildings && block !== undefined && y + 0.5 <= yb) {
        const v = (yb - y - 0.5) / t; // height above the ground in "frame-edge pixels"
        if (v > block.h) continue;
        const u = (z - zPrev) * side.span * 0.4; // distance along the facade, same units
        if (u < S * 0.01) {
          setP(block.f.col, 0.6); // dark seam between neighbouring buildings
        } else {
          facadeColour(block.f, u, block.h - v, tex[y * S + x]!);
        }
        const fog = clamp(z / hazeFar, 0, 0.85);
        c.put(
          x,
          y,
          lerp(P[0]!, sky.horizon[0], fog),
          lerp(P[1]!, sky.horizon[1], fog),
          lerp(P[2]!, sky.horizon[2], fog),
        );
      }
    }
  }
  // Trees along open sides, drawn far to near.
  for (const [k, side] of sides.entries()) {
    if (side.buildings && !rng.chance(0.25)) continue;
    const fol = foliagePalette(rng, 0.2);
    const ftex = noise2D(S, rng, 16, 16, 2);
    const dir = k === 0 ? -1 : 1;
    const hs = S * rng.range(0.5, 1.0);
    for (let z = 24; z > 1; z /= rng.range(1.2, 1.6)) {
      const t = 1 / z;
      const shading = { foliage: fol, tex: ftex, haze: sky.horizon, hazeAmt: clamp(z / hazeFar, 0, 0.8) };
      drawRoundTree(c, rng, vx + dir * side.span * t * 0.85, hy + side.drop * t, hs * t, shading);
    }
  }
  // Cars, far to near so nearer ones overlap.
  const cars = rng.int(0, 3);
  const ds = Array.from({ length: cars }, () => rng.range(0.15, 0.85)).sort((a, b) => a - b);
  for (const dz of ds) {
    const lane = rng.range(0.25, 0.75);
    const xl = vx + (roadL - vx) * dz,
      xr = vx + (roadR - vx) * dz;
    const cx = lerp(xl, xr, lane),
      w = (xr - xl) * 0.22,
      h = w * 0.6,
      yb = hy + (S - hy) * dz;
    const body = rng.pick<RGB>([
      [180, 30, 30],
      [30, 60, 150],
      [220, 220, 220],
      [40, 40, 40],
      [160, 160, 165],
      [200, 170, 40],
    ]);
    c.rect(cx - w / 2, yb - h, cx + w / 2, yb, jitter(rng, body, 15));
    c.rect(cx - w * 0.4, yb - h * 0.95, cx + w * 0.4, yb - h * 0.6, [40, 50, 60]);
    c.rect(cx - w / 2, yb - h * 0.1, cx + w / 2, yb, [20, 20, 20]);
  }
}

/** This module's recipes by class name (scenes.ts puts the classes in order). */
export const CITY_SCENES = { buildings: sceneBuildings, street: sceneStreet };
