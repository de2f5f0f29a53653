import { describe, expect, it } from 'vitest';
import { hashInts, Rng, STREAM } from '../../stages/data/random.js';
import { sampleRng } from '../../stages/data/augment/index.js';

describe('the one hash and PRNG', () => {
  it('hashInts keys a stream by its tag and every whole value', () => {
    const h = hashInts(STREAM.augment, 7, 1, 2);
    expect(h).toBe(hashInts(STREAM.augment, 7, 1, 2));
    expect(Number.isInteger(h) && h >= 0 && h < 2 ** 32).toBe(true);
    // Another tag, another order, or a value that differs only above 2^32 or in sign: other hashes.
    const others = [
      hashInts(STREAM.dropout, 7, 1, 2),
      hashInts(STREAM.augment, 7, 2, 1),
      hashInts(STREAM.augment, 7 + 2 ** 32, 1, 2),
      hashInts(STREAM.augment, -7, 1, 2),
      hashInts(STREAM.augment, 7, 1),
    ];
    for (const o of others) expect(o).not.toBe(h);
    expect(new Set(Object.values(STREAM)).size).toBe(Object.keys(STREAM).length);
    expect(() => hashInts(STREAM.shuffle, 1.5)).toThrow(/safe integer, got 1.5/);
    expect(() => hashInts(STREAM.shuffle, 2 ** 53)).toThrow(/safe integer/);
  });

  it("a sample's augmentation draws come from an Rng keyed by (seed, epoch, index) alone", () => {
    const draws = (r: () => number): number[] => Array.from({ length: 10 }, r);
    const a = draws(sampleRng(3, 4, 5));
    expect(draws(sampleRng(3, 4, 5))).toEqual(a);
    const rng = new Rng(hashInts(STREAM.augment, 3, 4, 5));
    expect(a).toEqual(draws(() => rng.next()));
    expect(draws(sampleRng(3, 4, 6))).not.toEqual(a);
    for (const v of a) expect(v >= 0 && v < 1).toBe(true);
  });
});
