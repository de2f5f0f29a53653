// decode's per-image index key is built from the params object itself: a param added to the
// schema enters it without being listed by hand, so it cannot silently reuse stale blobs.
import { describe, expect, it } from 'vitest';
import { digestOf } from '../../cache/canonical.js';
import { decode, decodeParamsKey, type DecodeParams } from '../../stages/decode.js';

const base: DecodeParams = {
  shortSide: 256,
  size: null,
  fit: 'cover',
  centerCrop: null,
  kernel: 'linear',
  maxPixels: 64000000,
  decoder: 'sharp',
  onError: 'fail',
};

/** The key as it was written out by hand before (seven fields): the same values, so no blob is decoded again. */
function handWritten(p: DecodeParams): string {
  return digestOf({
    version: decode.version,
    shortSide: p.size ? null : p.shortSide,
    size: p.size,
    fit: p.fit,
    centerCrop: p.centerCrop,
    kernel: p.kernel,
    maxPixels: p.maxPixels,
    decoder: p.decoder,
  });
}

describe('decode params key', () => {
  it('changes when a field is added to the params', () => {
    const added = { ...base, sharpen: 1 } as DecodeParams;
    expect(decodeParamsKey(added)).not.toBe(decodeParamsKey(base));
  });

  it('changes with every param that affects the decoded bytes, and not with onError', () => {
    const changed: Partial<DecodeParams>[] = [
      { shortSide: 128 },
      { fit: 'contain' },
      { centerCrop: 224 },
      { kernel: 'lanczos3' },
      { maxPixels: 1000 },
      { decoder: 'fast' },
      { size: [224, 224], shortSide: null },
    ];
    const keys = new Set([decodeParamsKey(base), ...changed.map((c) => decodeParamsKey({ ...base, ...c }))]);
    expect(keys.size).toBe(changed.length + 1);
    expect(decodeParamsKey({ ...base, onError: 'skip' })).toBe(decodeParamsKey(base));
    // shortSide does nothing once size is given (decode-image.ts), so it does not split the key.
    expect(decodeParamsKey({ ...base, size: [224, 224], shortSide: 64 })).toBe(
      decodeParamsKey({ ...base, size: [224, 224], shortSide: 256 }),
    );
  });

  it('keys decoder "fast" as "sharp" where libjpeg-turbo cannot load (sharp decodes everything then)', async () => {
    const fast = { ...base, decoder: 'fast' } as DecodeParams;
    expect(decodeParamsKey(fast, false)).toBe(decodeParamsKey(base));
    expect(decodeParamsKey(fast, true)).not.toBe(decodeParamsKey(base));
    // Here the library loads, so the default is the fast decoder's own key.
    const { turboJpeg } = await import('../../stages/data/jpeg-turbo.js');
    expect(turboJpeg()).not.toBeNull();
    expect(decodeParamsKey(fast)).toBe(decodeParamsKey(fast, true));
  });

  it('has the same values as the hand-written key it replaces', () => {
    for (const p of [
      base,
      { ...base, decoder: 'fast', onError: 'skip' },
      { ...base, size: [300, 200], fit: 'fill', centerCrop: 150 },
    ] as DecodeParams[]) {
      expect(decodeParamsKey(p)).toBe(handWritten(p));
    }
  });
});
