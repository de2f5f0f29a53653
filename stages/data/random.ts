// Seeded hashing and the one PRNG of podium: the synthetic generator, augmentation, shuffling and
// Dropout seeds (finetune) and bagging (fuse) all draw from here, so every stage draws the same
// way. Streams are keyed by integers through hashInts with a tag per use, never by ad hoc mixing.

/** murmur3 finaliser: a cheap, well-mixing 32-bit bijection. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Folds a safe integer (possibly ≥ 2^32 or negative) into the hash, both 32-bit halves. */
function absorb(h: number, n: number): number {
  const lo = n >>> 0;
  const hi = Math.floor(n / 4294967296) >>> 0;
  h = mix32((h ^ lo) + 0x9e3779b9);
  return mix32((h ^ hi) + 0x7f4a7c15);
}

/**
 * A 32-bit hash of a domain tag and integers, e.g. (AUGMENT, seed, epoch, index). Each value is
 * absorbed whole, so seeds above 2^32 or negative do not collide with small ones; the tag keeps
 * apart streams keyed by the same numbers (one step's augmentation and its Dropout masks).
 */
export function hashInts(tag: number, ...values: number[]): number {
  let h = tag >>> 0;
  for (const v of values) {
    if (!Number.isSafeInteger(v)) throw new RangeError(`hashInts: every value must be a safe integer, got ${v}`);
    h = absorb(h, v);
  }
  return h;
}

/** Domain tags for hashInts, one per stream. */
export const STREAM = {
  /** Per-sample augmentation draws: (seed, epoch, dataset index). */
  augment: 0x3c6ef372,
  /** The order of the training set in an epoch: (seed, epoch). */
  shuffle: 0x5be0cd19,
  /** A Dropout layer's seed for one training step: (seed, epoch, batch, layer). */
  dropout: 0x510e527f,
  /** finetune's new head, kernel initialised N(0, σ²): (seed). */
  headInit: 0x1f83d9ab,
} as const;

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
  /** Standard normal (Box–Muller, one value per pair of uniforms; V8's Math is the same on every platform). */
  normal(): number {
    const u1 = 1 - this.next(); // (0, 1]: log is finite
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * this.next());
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
