import { describe, expect, it } from 'vitest';
import type { RawImage } from '../../stages/data/augment/index.js';
import { cropCount, cropOrigins, crops, resizeBilinear, resizeShorter, writeCrops } from '../../stages/data/crops.js';

/** W×H image whose pixel (x, y) is (10x, 10y, 7): every crop pixel tells where it came from. */
function known(width: number, height: number): RawImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set([10 * x, 10 * y, 7], (y * width + x) * 3);
  return { data, width, height };
}

/** Source (x, y) of every pixel of crop `c` (size s), read back from the encoding. */
function where(buf: Float32Array, c: number, s: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < s * s; i++) {
    const o = (c * s * s + i) * 3;
    out.push([Math.round((buf[o]! * 255) / 10), Math.round((buf[o + 1]! * 255) / 10)]);
    expect(buf[o + 2]).toBeCloseTo(7 / 255, 6);
  }
  return out;
}

const grid = (x0: number, y0: number, s: number, mirror = false): Array<[number, number]> =>
  Array.from(
    { length: s * s },
    (_, i) => [x0 + (mirror ? s - 1 - (i % s) : i % s), y0 + Math.floor(i / s)] as [number, number],
  );

describe('test-time crops', () => {
  const img = known(7, 5);

  it('cuts the centre, the four corners and their mirrors at exact positions', () => {
    // scale 5 = the shorter side: no resampling, crops are exact copies.
    const buf = crops(img, '10', 5, 3);
    expect(buf.length).toBe(10 * 3 * 3 * 3);
    const origins: Array<[number, number]> = [
      [2, 1],
      [0, 0],
      [4, 0],
      [0, 2],
      [4, 2],
    ];
    expect(cropOrigins(7, 5, 3)).toEqual(origins);
    for (let c = 0; c < 10; c++) {
      const [x0, y0] = origins[c % 5]!;
      expect(where(buf, c, 3), `crop ${c}`).toEqual(grid(x0, y0, 3, c >= 5));
    }
  });

  it('nests: 1 ⊂ 5 ⊂ 10 crops, in the same order', () => {
    const ten = crops(img, '10', 5, 3);
    expect(Array.from(crops(img, '1', 5, 3))).toEqual(Array.from(ten.subarray(0, 27)));
    expect(Array.from(crops(img, '5', 5, 3))).toEqual(Array.from(ten.subarray(0, 5 * 27)));
    expect([cropCount('1'), cropCount('5'), cropCount('10'), cropCount('full')]).toEqual([1, 5, 10, 1]);
  });

  it('resizes the shorter side to the scale with bilinear half-pixel sampling', () => {
    const r = resizeShorter(img, 10);
    expect([r.width, r.height]).toEqual([14, 10]);
    const tall = resizeShorter(known(4, 6), 8);
    expect([tall.width, tall.height]).toEqual([8, 12]);
    const ramp = resizeBilinear({ data: Uint8Array.from([0, 0, 0, 255, 255, 255]), width: 2, height: 1 }, 4, 1);
    expect(Array.from(ramp.data.filter((_, i) => i % 3 === 0))).toEqual([0, 0.25, 0.75, 1]);
    const flat = resizeShorter({ data: new Uint8Array(5 * 3 * 3).fill(51), width: 5, height: 3 }, 7);
    for (const v of flat.data) expect(v).toBeCloseTo(0.2, 6);
    // A crop after an upscale: the centre of a 2× image samples the centre of the source.
    const up = crops(img, '1', 10, 2);
    const centre = where(up, 0, 2);
    for (const [x, y] of centre) {
      expect(x).toBeGreaterThanOrEqual(3);
      expect(x).toBeLessThanOrEqual(4);
      expect(y).toBeGreaterThanOrEqual(2);
      expect(y).toBeLessThanOrEqual(3);
    }
  });

  it('full: the whole image squeezed to size × size', () => {
    const full = crops(known(4, 2), 'full', 999, 2);
    // 4 → 2 wide: src x = 2·(x + 0.5) − 0.5 = 0.5, 2.5; 2 → 2 high: exact rows.
    expect(Array.from(full).map((v) => Math.round(v * 255 * 100) / 100)).toEqual([
      5, 0, 7, 25, 0, 7, 5, 10, 7, 25, 10, 7,
    ]);
  });

  it('refuses a scale below the crop size and a short buffer', () => {
    expect(() => crops(img, '1', 2, 3)).toThrow(/smaller than the crop size/);
    expect(() => writeCrops(img, '10', 5, 3, new Float32Array(10))).toThrow(/too small/);
  });
});

describe('crop averaging', () => {
  it("averages probabilities ('probs') or logits then softmax ('logits')", async () => {
    const { averageCrops, softmaxRows } = await import('../../stages/data/crops.js');
    // One image, two crops, two classes: logits (0, 0) and (4, 0).
    const logits = Float32Array.from([0, 0, 4, 0]);
    const probs = averageCrops([{ logits, stride: 2, crops: 2 }], 1, 2, 'probs');
    const p2 = 1 / (1 + Math.exp(-4));
    expect(probs[0]).toBeCloseTo((0.5 + p2) / 2, 6);
    const viaLogits = averageCrops([{ logits, stride: 2, crops: 2 }], 1, 2, 'logits');
    expect(viaLogits[0]).toBeCloseTo(1 / (1 + Math.exp(-2)), 6);
    // Only the first `crops` of each image's `stride` rows count; views add up crop by crop.
    expect(Array.from(averageCrops([{ logits, stride: 2, crops: 1 }], 1, 2, 'probs'))).toEqual([0.5, 0.5]);
    const two = averageCrops(
      [
        { logits, stride: 2, crops: 1 },
        { logits: Float32Array.from([4, 0]), stride: 1, crops: 1 },
      ],
      1,
      2,
      'probs',
    );
    expect(Array.from(two)).toEqual(Array.from(probs));
    expect(Array.from(softmaxRows([0, Math.log(3)], 1, 2))).toEqual([0.25, 0.75]);
  });
});
