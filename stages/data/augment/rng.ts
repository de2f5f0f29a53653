// Deterministic randomness: every random choice for a sample comes from one PRNG seeded by a hash
// of (seed, epoch, index), so augmentation does not depend on batch composition or order.
import { mix32 } from '../random.js';

/** Folds a (possibly > 2^32 or negative) integer into the hash, both 32-bit halves. */
function absorb(h: number, n: number): number {
  const lo = n >>> 0;
  const hi = Math.floor(n / 4294967296) >>> 0;
  h = mix32((h ^ lo) + 0x9e3779b9);
  return mix32((h ^ hi) + 0x7f4a7c15);
}

function requireInteger(name: string, n: number): void {
  if (!Number.isSafeInteger(n)) throw new RangeError(`${name} must be a safe integer, got ${n}`);
}

/** splitmix32: tiny, fast, passes the statistical tests that matter for augmentation draws. */
export function splitmix32(state: number): () => number {
  let a = state | 0;
  return () => {
    a = (a + 0x9e3779b9) | 0;
    let t = a ^ (a >>> 16);
    t = Math.imul(t, 0x21f0aaad);
    t ^= t >>> 15;
    t = Math.imul(t, 0x735a2d97);
    t ^= t >>> 15;
    return (t >>> 0) / 4294967296;
  };
}

/** The PRNG for one sample: depends on (seed, epoch, index) only. */
export function sampleRng(seed: number, epoch: number, index: number): () => number {
  requireInteger('seed', seed);
  requireInteger('epoch', epoch);
  requireInteger('index', index);
  let h = 0x3c6ef372; // domain tag so this stream differs from other users of the same seed
  h = absorb(h, seed);
  h = absorb(h, epoch);
  h = absorb(h, index);
  return splitmix32(h);
}
