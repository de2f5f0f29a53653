import { describe, expect, it } from 'vitest';
import {
  augmentBatch,
  augmentSample,
  centerCrop,
  contactSheet,
  policyForLevel,
  type AugmentPolicy,
  type RawImage,
} from '../../stages/data/augment/index.js';

// ---------------------------------------------------------------------------------------------
// Fixtures

function makeImage(width: number, height: number, px: (x: number, y: number) => [number, number, number]): RawImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = px(x, y);
      const i = (y * width + x) * 3;
      data[i] = r;
      data[i + 1] = g;
      data[i + 2] = b;
    }
  }
  return { data, width, height };
}

/** Every pixel unique and decodable: R = x, G = y, B = (x·7 + y·13) & 255. */
const gradient = (w: number, h: number): RawImage =>
  makeImage(w, h, (x, y) => [x & 255, y & 255, (x * 7 + y * 13) & 255]);

/** Colourful, structured, deterministic "photo" for colour tests. */
const colourful = (w: number, h: number): RawImage =>
  makeImage(
    w,
    h,
    (x, y) =>
      [(x * 255) / (w - 1), (y * 255) / (h - 1), 128 + 100 * Math.sin((x + 2 * y) / 9)].map((v) => Math.round(v)) as [
        number,
        number,
        number,
      ],
  );

const grey = (w: number, h: number): RawImage =>
  makeImage(w, h, (x, y) => {
    const v = (x * 5 + y * 3) % 256;
    return [v, v, v];
  });

function sample(img: RawImage, policy: AugmentPolicy, seed: number, epoch: number, index: number): Float32Array {
  const out = new Float32Array(policy.crop * policy.crop * 3);
  augmentSample(img, policy, seed, epoch, index, out, 0);
  return out;
}

function px(out: Float32Array, crop: number, u: number, v: number): [number, number, number] {
  const i = (v * crop + u) * 3;
  return [out[i]!, out[i + 1]!, out[i + 2]!];
}

/** Float output → bytes, asserting each value is exactly some byte / 255. */
function exactBytes(out: Float32Array): Uint8Array {
  const bytes = new Uint8Array(out.length);
  for (let i = 0; i < out.length; i++) {
    const b = Math.round(out[i]! * 255);
    if (out[i] !== Math.fround(b / 255)) throw new Error(`value ${out[i]} at ${i} is not an exact byte/255`);
    bytes[i] = b;
  }
  return bytes;
}

function hsl(r: number, g: number, b: number): { h: number; s: number; l: number } {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const l = (max + min) / 2;
  const c = max - min;
  if (c === 0) return { h: NaN, s: 0, l };
  const s = c / (1 - Math.abs(2 * l - 1));
  let h = max === r ? (g - b) / c : max === g ? (b - r) / c + 2 : (r - g) / c + 4;
  if (h < 0) h += 6;
  return { h: h * 60, s, l };
}

/** Signed smallest angle difference in degrees. */
const angleDiff = (a: number, b: number): number => ((a - b + 540) % 360) - 180;

// ---------------------------------------------------------------------------------------------

describe('policyForLevel', () => {
  it('reproduces MXNet set_data_aug_level defaults', () => {
    const l0 = policyForLevel(0, 224);
    expect(l0).toMatchObject({
      crop: 224,
      randomCrop: false,
      mirror: false,
      hue: 0,
      saturation: 0,
      lightness: 0,
      rotate: 0,
      shear: 0,
      aspect: 0,
      fill: 127,
    });
    expect(policyForLevel(1, 224)).toMatchObject({ randomCrop: true, mirror: true, hue: 0, rotate: 0 });
    expect(policyForLevel(2, 224)).toMatchObject({
      randomCrop: true,
      mirror: true,
      hue: 36,
      saturation: 50,
      lightness: 50,
      rotate: 0,
      shear: 0,
      aspect: 0,
    });
    expect(policyForLevel(3, 128)).toMatchObject({
      crop: 128,
      hue: 36,
      saturation: 50,
      lightness: 50,
      rotate: 10,
      shear: 0.1,
      aspect: 0.25,
      fill: 127,
    });
    expect(l0.randomResizedCrop ?? null).toBeNull();
    expect(l0.scaleJitter ?? null).toBeNull();
  });

  it('lets explicit values win, ignores undefined, and honours null', () => {
    const p = policyForLevel(3, 224, { rotate: 0, mirror: false, hue: undefined, fill: 0, scaleJitter: [1, 1.2] });
    expect(p.rotate).toBe(0);
    expect(p.mirror).toBe(false);
    expect(p.hue).toBe(36); // undefined does not erase the level default
    expect(p.fill).toBe(0);
    expect(p.scaleJitter).toEqual([1, 1.2]);
    expect(policyForLevel(0, 64, { randomCrop: true }).randomCrop).toBe(true);
    const q = policyForLevel(1, 64, { scaleJitter: null });
    expect(q.scaleJitter).toBeNull();
  });

  it('rejects unknown keys and invalid values', () => {
    expect(() => policyForLevel(1, 224, { rotaet: 5 } as unknown as Partial<AugmentPolicy>)).toThrow(
      /unknown augmentation policy key "rotaet"/,
    );
    expect(() => policyForLevel(4 as 3, 224)).toThrow(/level/);
    expect(() => policyForLevel(1, 0)).toThrow(/crop/);
    expect(() => policyForLevel(1, 224, { aspect: 1 })).toThrow(/aspect/);
    expect(() => policyForLevel(1, 224, { hue: -1 })).toThrow(/hue/);
    expect(() => policyForLevel(1, 224, { randomResizedCrop: { area: [0.5, 0.2], ratio: [0.75, 1.33] } })).toThrow(
      /area/,
    );
    expect(() => policyForLevel(1, 224, { scaleJitter: [0, 1] })).toThrow(/scaleJitter/);
  });
});

describe('determinism', () => {
  const img = colourful(96, 80);
  const policy = policyForLevel(3, 64, { randomResizedCrop: { area: [0.3, 1], ratio: [3 / 4, 4 / 3] } });

  it('same (seed, epoch, index) gives identical floats; anything else differs', () => {
    const a = sample(img, policy, 42, 3, 17);
    const b = sample(img, policy, 42, 3, 17);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    for (const [seed, epoch, index] of [
      [42, 4, 17],
      [42, 3, 18],
      [43, 3, 17],
    ] as const) {
      const c = sample(img, policy, seed, epoch, index);
      expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
    }
  });

  it('level 1: different epochs give different crops of the same image', () => {
    const p1 = policyForLevel(1, 64);
    const src = gradient(96, 96);
    const seen = new Set<string>();
    for (let epoch = 0; epoch < 8; epoch++) {
      const out = sample(src, p1, 1, epoch, 5);
      seen.add(px(out, 64, 0, 0).join(',') + px(out, 64, 1, 0).join(','));
    }
    expect(seen.size).toBeGreaterThan(4);
  });

  it('a sample does not depend on its batch position or batch mates', () => {
    const imgs = [img, colourful(70, 90), gradient(80, 80)];
    const batch = augmentBatch(imgs, [7, 1000, 3], policy, 9, 2);
    expect(batch.length).toBe(3 * 64 * 64 * 3);
    const alone = sample(imgs[1]!, policy, 9, 2, 1000);
    expect(Array.from(batch.subarray(64 * 64 * 3, 2 * 64 * 64 * 3))).toEqual(Array.from(alone));
    const reordered = augmentBatch([imgs[1]!], [1000], policy, 9, 2);
    expect(Array.from(reordered)).toEqual(Array.from(alone));
  });

  it('switching colour jitter on does not move the crops (draws are in a fixed order)', () => {
    // Saturation jitter leaves greys untouched, so a grey image isolates the geometry.
    const g = grey(90, 90);
    const geo = policyForLevel(3, 64, { hue: 0, saturation: 0, lightness: 0 });
    const withSat = { ...geo, saturation: 50 };
    for (let i = 0; i < 5; i++)
      expect(Array.from(sample(g, withSat, 1, 0, i))).toEqual(Array.from(sample(g, geo, 1, 0, i)));
  });
});

describe('level 0/1 geometry is an exact copy', () => {
  it('byte * (1/255) rounds to the same float32 as byte / 255 for every byte', () => {
    for (let v = 0; v < 256; v++) expect(Math.fround(v * (1 / 255))).toBe(Math.fround(v / 255));
  });

  it('level 1 output is a translated (and maybe mirrored) crop of the gradient, pixel for pixel', () => {
    const W = 256;
    const H = 200;
    const src = gradient(W, H);
    const crop = 160;
    const policy = policyForLevel(1, crop);
    let flips = 0;
    for (let index = 0; index < 40; index++) {
      const bytes = exactBytes(sample(src, policy, 5, 1, index)); // every value is exactly byte/255
      // Decode the crop from its top-left pixel: R = x, G = y of the source pixel.
      const x00 = bytes[0]!;
      const y00 = bytes[1]!;
      const flip = bytes[3]! === x00 - 1; // the next pixel to the right comes from the column to the left
      if (flip) flips++;
      const ox = flip ? x00 - (crop - 1) : x00;
      expect(ox).toBeGreaterThanOrEqual(0);
      expect(ox + crop).toBeLessThanOrEqual(W);
      expect(y00 + crop).toBeLessThanOrEqual(H);
      for (let v = 0; v < crop; v++) {
        for (let u = 0; u < crop; u++) {
          const sx = flip ? x00 - u : x00 + u;
          const sy = y00 + v;
          const i = (v * crop + u) * 3;
          if (bytes[i] !== sx || bytes[i + 1] !== sy || bytes[i + 2] !== ((sx * 7 + sy * 13) & 255)) {
            throw new Error(`sample ${index}: pixel (${u},${v}) is not source (${sx},${sy})`);
          }
        }
      }
    }
    // p = 0.5 mirror: 40 draws land well inside [8, 32] unless the coin is broken.
    expect(flips).toBeGreaterThan(8);
    expect(flips).toBeLessThan(32);
  });

  it('level 1 never invents colours: every output value is some source value / 255', () => {
    const src = colourful(120, 100);
    const values = new Set(Array.from(src.data, (v) => Math.fround(v / 255)));
    const out = augmentBatch([src, src, src], [0, 1, 2], policyForLevel(1, 96), 3, 0);
    expect(out.filter((v) => !values.has(v)).length).toBe(0);
  });

  it('centerCrop takes floor((W − size)/2) like MXNet, exactly', () => {
    const src = gradient(11, 8);
    const out = new Float32Array(4 * 4 * 3 + 6);
    centerCrop(src, 4, out, 6); // also honours the offset
    expect(Array.from(out.subarray(0, 6))).toEqual([0, 0, 0, 0, 0, 0]);
    const bytes = exactBytes(out.subarray(6));
    for (let v = 0; v < 4; v++) {
      for (let u = 0; u < 4; u++) {
        const [sx, sy] = [3 + u, 2 + v]; // floor((11−4)/2) = 3, (8−4)/2 = 2
        expect(Array.from(bytes.subarray((v * 4 + u) * 3, (v * 4 + u) * 3 + 3))).toEqual([
          sx,
          sy,
          (sx * 7 + sy * 13) & 255,
        ]);
      }
    }
    // Level 0 is the same centre crop, for any seed/epoch/index.
    const lvl0 = sample(src, policyForLevel(0, 4), 123, 4, 5);
    expect(Array.from(lvl0)).toEqual(Array.from(out.subarray(6)));
  });

  it('mirror flips horizontally about the crop centre', () => {
    const src = gradient(64, 48);
    const policy = policyForLevel(0, 32, { mirror: true }); // centre crop, random flip only
    const plain = sample(src, policyForLevel(0, 32), 0, 0, 0);
    let sawFlip = false;
    let sawPlain = false;
    for (let index = 0; index < 16; index++) {
      const out = sample(src, policy, 1, 0, index);
      if (out[0] === plain[0]) {
        sawPlain = true;
        expect(Array.from(out)).toEqual(Array.from(plain));
        continue;
      }
      sawFlip = true;
      for (let v = 0; v < 32; v++) {
        for (let u = 0; u < 32; u++) expect(px(out, 32, u, v)).toEqual(px(plain, 32, 31 - u, v));
      }
    }
    expect(sawFlip && sawPlain).toBe(true);
  });
});

describe('resampling', () => {
  it('a source smaller than the crop is scaled up (shorter side = crop), never padded', () => {
    const src = makeImage(40, 30, () => [200, 100, 50]);
    const expected = [200, 100, 50].map((v) => Math.fround(v / 255));
    const geometryOnly = { rotate: 0, shear: 0, aspect: 0, hue: 0, saturation: 0, lightness: 0 };
    for (const policy of [policyForLevel(1, 64), policyForLevel(3, 64, geometryOnly)]) {
      for (let index = 0; index < 4; index++) {
        const out = sample(src, policy, 1, 0, index);
        let wrong = 0;
        for (let i = 0; i < out.length; i++) if (out[i] !== expected[i % 3]) wrong++;
        expect(wrong).toBe(0);
      }
    }
  });

  it('upscaling is bilinear with pixel-centre alignment and edge clamping', () => {
    // R = 3x, G = 3y: bilinear reproduces a linear ramp, so the expected value is analytic.
    const src = makeImage(64, 64, (x, y) => [3 * x, 3 * y, 100]);
    const size = 128; // scale 2: output pixel u samples source x = (u + 0.5)/2 − 0.5
    const out = new Float32Array(size * size * 3);
    centerCrop(src, size, out, 0);
    const clamp = (x: number): number => Math.min(63, Math.max(0, x));
    let worst = 0;
    for (let v = 0; v < size; v++) {
      for (let u = 0; u < size; u++) {
        const [r, g, b] = px(out, size, u, v);
        worst = Math.max(
          worst,
          Math.abs(r * 255 - 3 * clamp((u + 0.5) / 2 - 0.5)),
          Math.abs(g * 255 - 3 * clamp((v + 0.5) / 2 - 0.5)),
          Math.abs(b * 255 - 100),
        );
      }
    }
    // 8-bit sub-pixel weights: ≤ 3 levels/px · 1/256 px, plus float rounding.
    expect(worst).toBeLessThan(0.02);
  });

  it('rotation shows the fill value outside the source, and only then', () => {
    const src = makeImage(64, 64, () => [10, 200, 30]);
    const rotated = policyForLevel(0, 64, { rotate: 45, fill: 127 });
    let cornersFilled = 0;
    for (let index = 0; index < 10; index++) {
      const out = sample(src, rotated, 2, 0, index);
      // A rotation of ≥ ~3° about the centre of a crop that equals the source uncovers the corners.
      const corner = px(out, 64, 0, 0);
      const centre = px(out, 64, 32, 32);
      expect(centre).toEqual([10, 200, 30].map((v) => Math.fround(v / 255)));
      if (corner.every((c) => c === Math.fround(127 / 255))) cornersFilled++;
      // Only ever the source colour or the fill: the edge is hard, not blended.
      let other = 0;
      for (let i = 0; i < out.length; i += 3) {
        const p = [out[i], out[i + 1], out[i + 2]];
        const isFill = p.every((c) => c === Math.fround(127 / 255));
        const isSrc =
          p[0] === Math.fround(10 / 255) && p[1] === Math.fround(200 / 255) && p[2] === Math.fround(30 / 255);
        if (!isFill && !isSrc) other++;
      }
      expect(other).toBe(0);
    }
    expect(cornersFilled).toBeGreaterThan(5);
    // Without rotation no fill appears.
    const straight = sample(src, policyForLevel(0, 64), 2, 0, 0);
    expect(straight.includes(Math.fround(127 / 255))).toBe(false);
    // The fill value is configurable.
    const black = sample(src, { ...rotated, fill: 0, rotate: 45 }, 2, 0, 0);
    expect(black.includes(0)).toBe(true);
  });

  it('level 3 warps geometry (not a plain crop) yet stays close to the source', () => {
    const src = gradient(256, 256);
    const out = sample(src, policyForLevel(3, 224, { hue: 0, saturation: 0, lightness: 0 }), 1, 0, 3);
    expect(() => exactBytes(out)).toThrow(); // interpolated values appear
    // Top-left to bottom-right across the crop still spans roughly the crop size in source x.
    const [r0] = px(out, 224, 112, 112);
    expect(r0 * 255).toBeGreaterThan(60);
    expect(r0 * 255).toBeLessThan(200);
  });

  it('warps are affine: a linear source ramp stays exactly linear in the output', () => {
    // R = x, G = y. Any affine map sampled bilinearly gives R, G linear in (u, v) wherever all four
    // taps are inside, so horizontal and vertical differences must be constant — this catches
    // glitches in the fixed-point stepping, its re-basing, and mirrored/rotated maps.
    const src = makeImage(256, 256, (x, y) => [x, y, 0]);
    const crop = 200;
    const fill = Math.fround(127 / 255);
    const policies = [
      policyForLevel(3, crop, { hue: 0, saturation: 0, lightness: 0, rotate: 30, fill: 127 }),
      policyForLevel(1, crop, { scaleJitter: [0.9, 1.3] }),
      policyForLevel(1, crop, { randomResizedCrop: { area: [0.1, 1], ratio: [0.75, 1.33] }, rotate: 15 }),
    ];
    for (const policy of policies) {
      for (let index = 0; index < 6; index++) {
        const out = sample(src, policy, 11, 0, index);
        const inside = (u: number, v: number): boolean => {
          const [r, g, b] = px(out, crop, u, v);
          // Exclude the fill and the half-pixel edge band (which clamps to 0 or 255).
          return b !== fill && r > 0.5 / 255 && r < 254.5 / 255 && g > 0.5 / 255 && g < 254.5 / 255;
        };
        for (const [du, dv] of [
          [1, 0],
          [0, 1],
        ] as const) {
          let lo = Infinity;
          let hi = -Infinity;
          let n = 0;
          for (let v = 0; v + dv < crop; v++) {
            for (let u = 0; u + du < crop; u++) {
              if (!inside(u, v) || !inside(u + du, v + dv)) continue;
              const d = (px(out, crop, u + du, v + dv)[0] - px(out, crop, u, v)[0]) * 255;
              lo = Math.min(lo, d);
              hi = Math.max(hi, d);
              n++;
            }
          }
          expect(n).toBeGreaterThan(crop * crop * 0.3);
          // 8-bit sub-pixel weights: each value is within 1/256 level of exact, so differences agree to 2/256.
          expect(hi - lo).toBeLessThan(2 / 256 + 1e-4);
        }
      }
    }
  });

  it('random-resized-crop covering the whole crop-sized source is an exact copy', () => {
    const src = gradient(48, 48);
    const policy = policyForLevel(0, 48, { randomResizedCrop: { area: [1, 1], ratio: [1, 1] } });
    const out = sample(src, policy, 1, 2, 3);
    const plain = new Float32Array(48 * 48 * 3);
    centerCrop(src, 48, plain, 0);
    expect(Array.from(out)).toEqual(Array.from(plain));
  });

  it('random-resized-crop zooms into a sub-region', () => {
    const src = gradient(200, 200);
    const policy = policyForLevel(0, 64, { randomResizedCrop: { area: [0.08, 0.1], ratio: [1, 1] } });
    for (let index = 0; index < 5; index++) {
      const out = sample(src, policy, 1, 0, index);
      // The region is ~√0.09·200 ≈ 60 source px wide, so R spans ~60 levels across 64 output px.
      const span = (px(out, 64, 63, 32)[0] - px(out, 64, 0, 32)[0]) * 255;
      expect(span).toBeGreaterThan(45);
      expect(span).toBeLessThan(70);
    }
  });
});

describe('HSL jitter (MXNet units: hue in OpenCV half-degrees, S/L on 0..255)', () => {
  const src = colourful(64, 64);
  const base = policyForLevel(0, 64);

  it('level 2 changes colours', () => {
    const plain = sample(src, base, 1, 0, 0);
    const jittered = sample(src, { ...base, hue: 36, saturation: 50, lightness: 50 }, 1, 0, 0);
    let changed = 0;
    for (let i = 0; i < plain.length; i++) if (Math.abs(plain[i]! - jittered[i]!) > 1 / 255) changed++;
    expect(changed).toBeGreaterThan(plain.length / 2);
    expect(jittered.filter((v) => !(v >= 0 && v <= 1)).length).toBe(0);
  });

  it('keeps greys grey (with hue and lightness jitter, and even with saturation jitter)', () => {
    const g = grey(64, 64);
    for (const policy of [
      { ...base, hue: 36, saturation: 0, lightness: 50 },
      { ...base, hue: 36, saturation: 50, lightness: 50 },
    ]) {
      for (let index = 0; index < 5; index++) {
        const out = sample(g, policy, 7, 0, index);
        let tinted = 0;
        for (let i = 0; i < out.length; i += 3) if (out[i + 1] !== out[i] || out[i + 2] !== out[i]) tinted++;
        expect(tinted).toBe(0);
        // ...while the lightness jitter did change them.
        expect(Array.from(out)).not.toEqual(Array.from(sample(g, base, 7, 0, index)));
      }
    }
  });

  it('hue-only jitter rotates every pixel by the same angle (≤ 2°·hue) and keeps S and L', () => {
    const policy = { ...base, hue: 36 };
    let largest = 0;
    for (let index = 0; index < 40; index++) {
      const out = sample(src, policy, 3, 0, index);
      let shift: number | null = null;
      let worstL = 0;
      let worstS = 0;
      let worstSpread = 0;
      for (let i = 0; i < out.length; i += 3 * 7) {
        const a = hsl(src.data[i]! / 255, src.data[i + 1]! / 255, src.data[i + 2]! / 255);
        const b = hsl(out[i]!, out[i + 1]!, out[i + 2]!);
        worstL = Math.max(worstL, Math.abs(b.l - a.l));
        worstS = Math.max(worstS, Math.abs(b.s - a.s));
        if (a.s < 0.05) continue; // hue is ill-conditioned for near-greys
        const d = angleDiff(b.h, a.h);
        if (shift === null) shift = d;
        else worstSpread = Math.max(worstSpread, Math.abs(angleDiff(d, shift)));
      }
      // float32 output: S and L agree to ~1e-6, the per-pixel hue shift is one constant.
      expect(worstL).toBeLessThan(1e-5);
      expect(worstS).toBeLessThan(1e-4);
      expect(worstSpread).toBeLessThan(0.01);
      expect(shift).not.toBeNull();
      largest = Math.max(largest, Math.abs(shift!));
      expect(Math.abs(shift!)).toBeLessThanOrEqual(72 + 1e-6);
    }
    // MXNet's random_h = 36 is in OpenCV units (2°): shifts reach well beyond 36°.
    expect(largest).toBeGreaterThan(50);
  });

  it('lightness-only jitter shifts L by one constant ≤ lightness/255 and keeps hue', () => {
    const policy = { ...base, lightness: 50 };
    for (let index = 0; index < 10; index++) {
      const out = sample(src, policy, 4, 0, index);
      let dl: number | null = null;
      for (let i = 0; i < out.length; i += 3 * 5) {
        const a = hsl(src.data[i]! / 255, src.data[i + 1]! / 255, src.data[i + 2]! / 255);
        const b = hsl(out[i]!, out[i + 1]!, out[i + 2]!);
        if (b.l <= 1e-6 || b.l >= 1 - 1e-6) continue; // clamped
        const d = b.l - a.l;
        if (dl === null) dl = d;
        else expect(d).toBeCloseTo(dl, 5);
        if (a.s > 0.05 && b.s > 0.05) expect(Math.abs(angleDiff(b.h, a.h))).toBeLessThan(0.01);
      }
      expect(Math.abs(dl!)).toBeLessThanOrEqual(50 / 255 + 1e-6);
    }
  });

  it('saturation-only jitter keeps hue and lightness', () => {
    const policy = { ...base, saturation: 50 };
    const out = sample(src, policy, 5, 0, 1);
    for (let i = 0; i < out.length; i += 3 * 11) {
      const a = hsl(src.data[i]! / 255, src.data[i + 1]! / 255, src.data[i + 2]! / 255);
      const b = hsl(out[i]!, out[i + 1]!, out[i + 2]!);
      expect(b.l).toBeCloseTo(a.l, 5);
      if (a.s > 0.05 && b.s > 0.05) expect(Math.abs(angleDiff(b.h, a.h))).toBeLessThan(0.01);
    }
  });

  it('a known colour: pure red shifted by the drawn hue lands on the hue circle', () => {
    const red = makeImage(8, 8, () => [255, 0, 0]);
    const out = sample(red, { ...policyForLevel(0, 8), hue: 90 }, 1, 0, 0); // ±180°
    const b = hsl(out[0]!, out[1]!, out[2]!);
    expect(b.s).toBeCloseTo(1, 5);
    expect(b.l).toBeCloseTo(0.5, 5);
    // Still fully saturated at L = 0.5: one channel 1, one 0 (up to float32 rounding).
    const sorted = [out[0]!, out[1]!, out[2]!].sort((x, y) => x - y);
    expect(sorted[0]).toBeCloseTo(0, 6);
    expect(sorted[2]).toBeCloseTo(1, 6);
  });
});

describe('robustness', () => {
  it('odd sizes and extreme policies never read outside the source (no NaN) and stay in [0,1]', () => {
    // An out-of-range typed-array read yields undefined → NaN, so finiteness is a bounds check.
    let state = 12345;
    const rand = (): number => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state / 4294967296;
    };
    for (let trial = 0; trial < 60; trial++) {
      const w = 1 + Math.floor(rand() * 70);
      const h = 1 + Math.floor(rand() * 70);
      const img = makeImage(w, h, (x, y) => [(x * 37) & 255, (y * 91) & 255, (x * y) & 255]);
      const crop = 1 + Math.floor(rand() * 48);
      const policy = policyForLevel(3, crop, {
        rotate: rand() * 180,
        shear: rand() * 0.9,
        aspect: rand() * 0.9,
        hue: rand() * 90,
        saturation: rand() * 255,
        lightness: rand() * 255,
        scaleJitter: rand() < 0.5 ? [0.2, 3] : null,
        randomResizedCrop: rand() < 0.3 ? { area: [0.01, 1], ratio: [0.2, 5] } : null,
      });
      const out = sample(img, policy, trial, 1, trial);
      const bad = out.filter((v) => !(v >= 0 && v <= 1)).length;
      if (bad > 0) throw new Error(`trial ${trial}: ${bad} values outside [0,1] for ${w}×${h} → ${crop}`);
    }
  });

  it('works on views with a byte offset (e.g. pooled Node Buffers from a decoder)', () => {
    const img = colourful(50, 40);
    const backing = new Uint8Array(img.data.length + 7);
    backing.set(img.data, 7);
    const view: RawImage = { data: backing.subarray(7), width: 50, height: 40 };
    const policy = policyForLevel(3, 32);
    for (let index = 0; index < 4; index++) {
      expect(Array.from(sample(view, policy, 1, 0, index))).toEqual(Array.from(sample(img, policy, 1, 0, index)));
    }
  });

  it('a 1×1 source becomes a flat crop of its colour', () => {
    const out = new Float32Array(5 * 5 * 3);
    centerCrop(
      makeImage(1, 1, () => [9, 99, 199]),
      5,
      out,
      0,
    );
    const expected = [9, 99, 199].map((v) => Math.fround(v / 255));
    expect(Array.from(out)).toEqual(Array.from({ length: 75 }, (_, i) => expected[i % 3]));
  });
});

describe('batches, validation and the contact sheet', () => {
  it('augmentBatch writes NHWC and can fill a caller buffer', () => {
    const imgs = [gradient(80, 80), colourful(90, 70)];
    const policy = policyForLevel(2, 48);
    const fresh = augmentBatch(imgs, [4, 5], policy, 1, 0);
    const buf = new Float32Array(2 * 48 * 48 * 3 + 10).fill(-1);
    const same = augmentBatch(imgs, [4, 5], policy, 1, 0, buf);
    expect(same).toBe(buf);
    expect(Array.from(buf.subarray(0, fresh.length))).toEqual(Array.from(fresh));
    expect(() => augmentBatch(imgs, [4, 5], policy, 1, 0, new Float32Array(10))).toThrow(/needs/);
  });

  it('rejects malformed inputs with clear errors', () => {
    const policy = policyForLevel(1, 16);
    const img = gradient(20, 20);
    expect(() => augmentBatch([img], [1, 2], policy, 1, 0)).toThrow(/1 images but 2 indices/);
    expect(() =>
      augmentSample({ data: new Uint8Array(10), width: 20, height: 20 }, policy, 1, 0, 0, new Float32Array(768), 0),
    ).toThrow(/RGB HWC/);
    expect(() => augmentSample(img, policy, 1, 0, 0, new Float32Array(100), 0)).toThrow(/cannot hold/);
    expect(() => augmentSample(img, policy, 1.5, 0, 0, new Float32Array(768), 0)).toThrow(/seed/);
  });

  it('contactSheet lays out rows = images, columns = epochs', () => {
    const imgs = [gradient(70, 70), colourful(60, 80)];
    const policy = policyForLevel(3, 32);
    const sheet = contactSheet(imgs, policy, 9, 3);
    expect(sheet.width).toBe(3 * 32 + 2 * 2);
    expect(sheet.height).toBe(2 * 32 + 2);
    expect(sheet.data.length).toBe(sheet.width * sheet.height * 3);
    // Cell (row 1, column 2) is image 1 augmented as index 1 in epoch 2.
    const cell = sample(imgs[1]!, policy, 9, 2, 1);
    for (let v = 0; v < 32; v += 5) {
      for (let u = 0; u < 32; u += 5) {
        const o = ((34 + v) * sheet.width + 68 + u) * 3;
        const [r, g, b] = px(cell, 32, u, v);
        expect([sheet.data[o], sheet.data[o + 1], sheet.data[o + 2]]).toEqual(
          [r, g, b].map((c) => Math.round(c * 255)),
        );
      }
    }
  });
});
