/** Seeded hashing and the PRNG shared by the synthetic generator, shuffling (finetune) and bagging (fuse): one implementation, so every stage draws the same way. */

/** murmur3 finaliser: a cheap, well-mixing 32-bit bijection. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Hash of two integers and a seed to [0,1): per-cell randomness that needs no RNG state. */
export function hash01(a: number, b: number, seed: number): number {
  return mix32(Math.imul(a, 0x27d4eb2d) ^ mix32(Math.imul(b, 0x165667b1) ^ seed)) / 4294967296;
}

/**
 * mulberry32: tiny, fast, good enough for procedural art; the seed is pre-mixed so nearby
 * seeds diverge. The state is kept as an int32 (`| 0`), not a uint32 (`>>> 0`): values above
 * 2^31 don't fit a V8 small integer, and boxing one per call made this 4x slower.
 */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = mix32(seed >>> 0) | 0;
  }
  u32(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform in [0,1). */
  next(): number {
    return this.u32() / 4294967296;
  }
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  /** Uniform integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    const v = xs[Math.floor(this.next() * xs.length)];
    if (v === undefined) throw new Error('Rng.pick: empty list');
    return v;
  }
  /** Picks a key with probability proportional to its weight. */
  weighted<K extends string>(w: Readonly<Record<K, number>>): K {
    const keys = Object.keys(w) as K[];
    let total = 0;
    for (const k of keys) total += w[k];
    let r = this.next() * total;
    for (const k of keys) {
      r -= w[k];
      if (r < 0) return k;
    }
    const last = keys[keys.length - 1];
    if (last === undefined) throw new Error('Rng.weighted: empty table');
    return last;
  }
}
