// One canonical serialisation is both what gets hashed and what goes into keys, so two
// processes, or two versions of the same object with keys in another order, always agree on a
// digest. safe-stable-stringify sorts keys and otherwise writes what JSON.stringify writes (the
// same number formatting RFC 8785 uses); it was ~10× faster than `canonicalize` on a
// 1000-stage no-op run, where hashing fingerprints is most of the work.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

// CommonJS packages are required, not imported: an ES import of a CommonJS module makes Node
// parse it for named exports first, which cost ~30 ms of a ~150 ms no-op run.
const { configure } = createRequire(import.meta.url)('safe-stable-stringify') as typeof import('safe-stable-stringify');
const stringify = configure({ deterministic: true, circularValue: Error, bigint: false });

/** A sha256 digest in lowercase hex. Branded so a path or a stage id can't be passed by mistake. */
export type Digest = string & { readonly __digest: unique symbol };

export function canonicalJson(value: unknown): string {
  const text = stringify(value);
  if (text === undefined) throw new Error('cannot canonicalise undefined');
  return text;
}

export function sha256(data: string | Uint8Array): Digest {
  return createHash('sha256').update(data).digest('hex') as Digest;
}

export function digestOf(value: unknown): Digest {
  return sha256(canonicalJson(value));
}

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);
}

/**
 * Pretty JSON with sorted keys, for files people read and diff (lock files). Not used for
 * hashing: only canonicalJson is.
 */
export function stableStringify(value: unknown, indent = 2): string {
  return stringify(value, null, indent) ?? 'null';
}
