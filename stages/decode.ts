// `decode`: every image of a dataset manifest decoded (EXIF orientation applied, sRGB 8-bit
// RGB, shorter side resized, optional centre crop) and stored in the cache as raw RGB, so
// training and prediction never decode a JPEG again. By default (`decoder: "exact"`) plain JPEGs
// that need no shrink go through libjpeg-turbo, which gives sharp's bytes for them, and
// everything else through sharp; "sharp" sends everything through sharp, "fast" also the shrinks
// through libjpeg-turbo (close to sharp's pixels, not equal). Each image's blob is indexed by
// (image bytes digest, decode params): adding 100 images to a 50k set decodes 100. The images
// are decoded and their blobs stored on worker threads (data/decode-workers.ts,
// data/decode-image.ts); this thread looks up and writes the index.
import type { FromSchema } from 'json-schema-to-ts';

import { digestOf, type Digest } from '../cache/canonical.js';
import { defineStage, InputError, type IndexEntry, type InputArtifact, type JsonSchema } from './contract.js';
import type { DecodedImage, PoolOptions } from './data/decode-workers.js';
import type { DecodedSet } from './data/decoded.js';
import { turboJpeg } from './data/jpeg-turbo.js';
import { imageFile, imageLabel, type Manifest, type ManifestEntry } from './data/manifest.js';

/**
 * Bump when the pixels a given (image, params) produces, or whether it is bad, change. 3: the
 * fast decoder's accurate IDCT and IDCT scaling (it had libjpeg-turbo's fast integer IDCT).
 * 4: a JPEG libjpeg warns about (corrupt or truncated data) is bad with either decoder; the
 * index, whose keys hold the version, forgets the blobs version 3 made of such files.
 * 5: the default decoder "exact" (libjpeg-turbo where its bytes are sharp's): the blobs are
 * version 4's, but which decoder made them (the byLibjpegTurbo/bySharp metrics, remembered in
 * the index) changed.
 */
const VERSION = 5;

const params = {
  type: 'object',
  additionalProperties: false,
  properties: {
    shortSide: {
      type: ['integer', 'null'],
      minimum: 8,
      default: 256,
      description: 'Resize so the shorter side has this many pixels (aspect kept).',
    },
    size: {
      type: ['array', 'null'],
      items: { type: 'integer', minimum: 8 },
      minItems: 2,
      maxItems: 2,
      default: null,
      description: '[width, height] instead of shortSide, with `fit`.',
    },
    fit: { enum: ['cover', 'contain', 'fill'], default: 'cover' },
    centerCrop: {
      type: ['integer', 'null'],
      minimum: 8,
      default: null,
      description: 'Cut a centred square of this size after resizing.',
    },
    kernel: {
      enum: ['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3'],
      default: 'linear',
      description: 'Resampling kernel (linear is ~2× faster than lanczos3 for the upscales of small images).',
    },
    maxPixels: {
      type: 'integer',
      minimum: 1,
      default: 64000000,
      description: 'Refuse images with more pixels than this (decompression bombs).',
    },
    decoder: {
      enum: ['exact', 'sharp', 'fast'],
      default: 'exact',
      description:
        "exact (default): plain JPEGs (no EXIF rotation or ICC profile) that need no shrink (shortSide at least their shorter side, the linear kernel; or no resize) are decoded by libjpeg-turbo (the accurate IDCT, as sharp) and resized by the same code as on the sharp path, which gives sharp's bytes exactly, for about a ninth of sharp's decode CPU on small JPEGs (bench/decode-cost.mjs); everything else through sharp. sharp: every image through sharp (libvips resizes the shrinks); the same bytes as exact, slower. fast: libjpeg-turbo and the wasm resize for the shrinks of plain JPEGs too (2x or more start inside the IDCT, smaller ones are plain bilinear), which differ slightly from sharp's.",
    },
    onError: {
      enum: ['fail', 'skip'],
      default: 'fail',
      description:
        'fail: the stage fails listing every bad file; skip: bad files are left out and listed in the report output.',
    },
  },
} as const satisfies JsonSchema;

/** How each image is decoded (data/decode-image.ts), and what to do with bad ones: the schema's type. */
export type DecodeParams = FromSchema<typeof params>;
/** What data/decode-image.ts reads: every param except onError (which only decides skip or fail). */
export type DecodeImageParams = Omit<DecodeParams, 'onError'>;

/**
 * The params part of the per-image index key: every param that can change an image's decoded
 * bytes, which is all of them but onError (that one only decides whether a bad image fails the
 * stage or is skipped). Built from the params object itself, so a param added to the schema
 * enters the key without anyone listing it here, and cannot silently reuse stale blobs.
 * shortSide is ignored when size is given (data/decode-image.ts), so it is keyed as null then.
 * The version is in it: a new version forgets the old blobs. Where libjpeg-turbo cannot load,
 * decoder "fast" decodes every image exactly as "sharp" does, and is keyed as "sharp": its blobs
 * must not pass for the fast decoder's, whose shrunk images differ.
 */
export function decodeParamsKey(
  p: DecodeParams,
  fastDecoderLoads = p.decoder === 'fast' && turboJpeg() !== null,
): Digest {
  const { onError: _skipOrFail, ...decoding } = p;
  const decoder = p.decoder === 'fast' && !fastDecoderLoads ? 'sharp' : p.decoder;
  return digestOf({ ...decoding, decoder, version: VERSION, shortSide: p.size ? null : p.shortSide });
}

export const decode = defineStage<DecodeParams>({
  name: 'decode',
  version: VERSION,
  description: 'Decode and resize every image of a dataset into raw RGB blobs in the cache.',
  params,
  inputs: { dataset: { many: false, required: true, description: 'a dataset stage' } },
  isolate: true,

  async run(ctx, p) {
    const { decodeAll } = await import('./data/decode-workers.js');
    const manifestBlob = ctx.store.getBlob((ctx.inputs.dataset as InputArtifact).outputs.manifest!);
    if (!manifestBlob) throw new Error('dataset manifest blob missing from the cache');
    const manifest = JSON.parse(manifestBlob.toString()) as Manifest;
    const paramsKey = decodeParamsKey(p);
    const indexKey = (e: ManifestEntry): string => `decode:${paramsKey}:${e.sha256}`;

    const result: DecodedSet = { classes: manifest.classes, splits: {} };
    const bad: Array<{ k: number; split: string; id: string; path: string; reason: string }> = [];
    type Row = DecodedSet['splits'][string][number];
    const rows = new Map<string, Array<Row | undefined>>();
    // Images whose blob the index already knows (same bytes, same params) are not decoded again;
    // an entry holds the blob and {width, height, via: decoder}, and a blob gc removed since is
    // decoded again.
    // The decoder is remembered so that the metrics count every image, not only those decoded
    // by this run: what is in the index depends on the cache's history (an interrupted run, a
    // smaller dataset decoded before), and a lock must not. An entry without it is a miss.
    const todo: Array<{ split: string; i: number; e: ManifestEntry }> = [];
    type Via = DecodedImage['via'];
    const via: Record<Via, number> = { 'libjpeg-turbo': 0, sharp: 0 };
    const decodedNow: Record<Via, number> = { 'libjpeg-turbo': 0, sharp: 0 };
    let fromIndex = 0;
    for (const [split, entries] of Object.entries(manifest.splits)) {
      const splitRows: Array<Row | undefined> = new Array(entries.length);
      rows.set(split, splitRows);
      entries.forEach((e, i) => {
        // Under verify (resume false) every image is decoded again: the index is a memo of this
        // very computation, and reusing it would verify nothing.
        const known = ctx.resume ? indexedImage(ctx.store.getIndex(indexKey(e))) : undefined;
        if (known && ctx.store.blobInfo(known.blob)) {
          splitRows[i] = { id: e.id, label: e.label, blob: known.blob, width: known.width, height: known.height };
          via[known.via]++;
          fromIndex++;
        } else todo.push({ split, i, e });
      });
    }
    const t0 = Date.now();
    let decodedCount = 0;
    const decodeSome = async (which: number[], pool: PoolOptions): Promise<void> => {
      await decodeAll(
        which.map((k) => ({
          path: imageFile(manifest, todo[k]!.e, ctx.projectDir, ctx.store.filesDir),
          sha256: todo[k]!.e.sha256,
        })),
        p,
        (n, image, reason) => {
          const k = which[n]!;
          const { split, i, e } = todo[k]!;
          // Bad images are decoded a second time, alone (below): count each image once.
          decodedCount = Math.min(decodedCount + 1, todo.length);
          ctx.progress({ unit: 'images', done: decodedCount, total: todo.length });
          if (!image) {
            bad.push({ k, split, id: e.id, path: imageLabel(manifest, e), reason: reason! });
            return;
          }
          via[image.via]++;
          decodedNow[image.via]++;
          ctx.store.setIndex(indexKey(e), {
            blobs: [image.digest],
            meta: { width: image.width, height: image.height, via: image.via },
          });
          rows.get(split)![i] = {
            id: e.id,
            label: e.label,
            blob: image.digest,
            width: image.width,
            height: image.height,
          };
        },
        pool,
      );
    };
    await decodeSome(
      todo.map((_, k) => k),
      { threads: ctx.threads, store: ctx.store },
    );
    if (bad.length) {
      // libvips keeps one error buffer per process: when two images fail at once, either may
      // read the other's message, or "Unknown error". So that the report is reproducible, each
      // bad image is decoded once more, alone and in manifest order, for its own reason (one
      // that only failed in company would be kept). Bad images are few, so this costs little.
      const again = bad
        .splice(0)
        .map((b) => b.k)
        .sort((a, b) => a - b);
      await decodeSome(again, { threads: 1, inFlight: 1, store: ctx.store });
      bad.sort((a, b) => a.k - b.k); // already in order, one at a time; the report must not depend on it
    }
    for (const [split, splitRows] of rows) result.splits[split] = splitRows.filter((r): r is Row => r !== undefined);
    const decoded = fromIndex + todo.length - bad.length;
    const seconds = (Date.now() - t0) / 1000;
    ctx.log(
      `${decoded} images (${decoded - fromIndex} new, ${fromIndex} from the index) in ${seconds.toFixed(1)} s, ${((decoded - fromIndex) / Math.max(seconds, 1e-3)).toFixed(0)} img/s decoded (libjpeg-turbo ${decodedNow['libjpeg-turbo']}, sharp ${decodedNow.sharp}); ${bad.length} bad`,
    );
    if (bad.length && p.onError === 'fail') {
      const lines = bad.map((b) => `${b.path}: ${b.reason}`);
      throw new InputError(
        `${bad.length} bad image${bad.length > 1 ? 's' : ''}: ${lines.slice(0, 3).join('; ')}${bad.length > 3 ? `; … (${bad.length - 3} more in the log)` : ''}`,
        lines,
      );
    }
    const refs = [
      ...new Set(
        Object.values(result.splits)
          .flat()
          .map((r) => r.blob),
      ),
    ];
    return {
      outputs: {
        images: await ctx.store.putBlob(Buffer.from(JSON.stringify(result))),
        report: await ctx.store.putBlob(Buffer.from(JSON.stringify({ bad: bad.map(({ k: _, ...b }) => b) }, null, 2))),
      },
      refs,
      // Functions of the inputs only (every image counted, wherever its blob came from); how many
      // were decoded now is history, and goes to the log above.
      metrics: { images: decoded, bad: bad.length, byLibjpegTurbo: via['libjpeg-turbo'], bySharp: via.sharp },
    };
  },
});

/** An index entry as decode wrote it: one blob, its size and decoder; anything else is a miss. */
function indexedImage(
  entry: IndexEntry | undefined,
): { blob: Digest; width: number; height: number; via: DecodedImage['via'] } | undefined {
  const { width, height, via } = entry?.meta ?? {};
  if (
    entry?.blobs.length !== 1 ||
    !Number.isInteger(width) ||
    !Number.isInteger(height) ||
    (via !== 'sharp' && via !== 'libjpeg-turbo')
  )
    return undefined;
  return { blob: entry.blobs[0]!, width: width as number, height: height as number, via };
}
