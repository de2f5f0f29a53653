/** Camera: global photometric variation + sensor grain, then quantise to bytes. */
import type { Canvas } from './paint.js';
import { Rng } from '../random.js';

let GRAIN: Uint32Array | undefined;
/**
 * Fixed table of random words, read from a random start per image: a table lookup per pixel
 * is cheaper than a PRNG step. Its length is prime so the pattern never lines up with rows.
 */
function grainTable(): Uint32Array {
  if (GRAIN === undefined) {
    const rng = new Rng(0x6a09e667);
    GRAIN = new Uint32Array(65521);
    for (let k = 0; k < GRAIN.length; k++) GRAIN[k] = rng.u32();
  }
  return GRAIN;
}

/**
 * Random per-image "camera" transform. This is the main reason a mean-colour classifier can't
 * solve the dataset: exposure, white balance, saturation and fog shift every class's colours
 * across each other's ranges while leaving the spatial structure intact.
 */
export function finish(c: Canvas, rng: Rng, grain: Rng): Buffer {
  const S = c.size;
  const d = c.d;
  const exposure = rng.range(0.7, 1.25);
  const g0 = 1 + rng.range(-0.1, 0.1),
    g1 = 1 + rng.range(-0.06, 0.06),
    g2 = 1 + rng.range(-0.1, 0.1);
  const sat = rng.range(0.6, 1.3);
  const contrast = rng.range(0.8, 1.2);
  const fog = rng.chance(0.25) ? rng.range(0.05, 0.35) : 0;
  const fogC = rng.range(170, 225);
  const vig = rng.range(0, 0.5);
  const sigma = rng.range(1.5, 6.5);
  // out = ((mix(px, fog) -> saturation) * exposure * vignette * gain - 128) * contrast + 128 + grain,
  // with everything constant folded out of the pixel loop.
  const keep = 1 - fog,
    fogAdd = fogC * fog;
  const k0 = exposure * g0 * contrast,
    k1 = exposure * g1 * contrast,
    k2 = exposure * g2 * contrast;
  const offset = 128 * (1 - contrast);
  const lumaGrain = (sigma * 1.7) / 255,
    chromaGrain = (sigma * 0.6) / 255;
  const table = grainTable();
  let gi = grain.u32() % table.length;
  // Uint8ClampedArray rounds (half to even) and clamps natively: 3x faster than Math.round + clamp.
  const out = new Uint8ClampedArray(S * S * 3);
  for (let y = 0; y < S; y++) {
    const dy = (y + 0.5) / S - 0.5;
    for (let x = 0; x < S; x++) {
      const dx = (x + 0.5) / S - 0.5;
      const i = (y * S + x) * 3;
      let r = d[i]! * keep + fogAdd,
        g = d[i + 1]! * keep + fogAdd,
        b = d[i + 2]! * keep + fogAdd;
      const l = (0.299 * r + 0.587 * g + 0.114 * b) * (1 - sat);
      r = l + r * sat;
      g = l + g * sat;
      b = l + b * sat;
      const v = 1 - vig * (dx * dx + dy * dy) * 2;
      // One 32-bit word per pixel: two bytes make triangular luminance grain, two make chroma grain.
      const h = table[gi]!;
      if (++gi === table.length) gi = 0;
      const ln = ((h & 0xff) + ((h >>> 8) & 0xff) - 255) * lumaGrain + offset;
      out[i] = r * v * k0 + ln + (((h >>> 16) & 0xff) - 127.5) * chromaGrain;
      out[i + 1] = g * v * k1 + ln;
      out[i + 2] = b * v * k2 + ln + ((h >>> 24) - 127.5) * chromaGrain;
    }
  }
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}
