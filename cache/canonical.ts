// One canonical serialisation (RFC 8785, via `canonicalize`) is both what gets hashed and what
// goes into keys, so two processes, or two versions of the same object with keys in another
// order, always agree on a digest.
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/** A sha256 digest in lowercase hex. Branded so a path or a stage id can't be passed by mistake. */
export type Digest = string & { readonly __digest: unique symbol };

export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
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
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
    }
    return v;
  }, indent);
}
