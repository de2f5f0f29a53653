/**
 * Deterministic synthetic "scene" dataset generator.
 *
 * Why this exists: podium's default pipeline must run on a fresh clone with no network, so
 * instead of downloading a dataset it paints one. Images are procedurally drawn outdoor scenes
 * (sky / water / foliage / buildings / road / mountains / sand / snow) written as real JPEG
 * files in imagefolder layout `outDir/<split>/<class>/<class>_<split>_<00000>.jpg`, so the
 * same loader code path is exercised as for a real dataset.
 *
 * Design constraints:
 *  - Deterministic and order-independent: every sample's seed is a hash of
 *    (seed, split, class, index), so generating more samples only adds files and the same
 *    options always give byte-identical files (sharp/mozjpeg encoding is deterministic).
 *  - Learnable but not trivial: classes share palettes and layout elements (sky, haze,
 *    horizons, trees, snow, water) and every image gets a random global "camera" transform
 *    (exposure, white balance, saturation, contrast, fog, vignette, grain), so the mean
 *    colour alone does not give the class away; the structure (window grids, ridges,
 *    perspective lines, wave bands, textures) does.
 *  - Fast: all painting is done on a Float32Array in plain typed-array loops and geometry is
 *    defined in fractions of the image size, so one scene looks the same at every resolution.
 *
 * Layout: this file is the public API (options, file naming, the generation loop);
 * random.ts is hashing and the PRNG, paint.ts the canvas and drawing primitives (colour.ts the
 * colours, noise.ts value noise and noisy lines), elements.ts,
 * trees.ts and buildings.ts the scene parts shared by several classes, scenes.ts the class list
 * (with the recipes in scenes-classic.ts, scenes-city.ts and scenes-extra.ts), and camera.ts the
 * per-image photometric finish.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { finish } from './camera.js';
import { Canvas } from './paint.js';
import { fnv1a, mix32, Rng } from '../random.js';
import { SCENES, SYNTHETIC_CLASS_NAMES } from './scenes.js';

export { SYNTHETIC_CLASS_NAMES };

export interface SyntheticOptions {
  /** How many classes to generate: the first `classes` entries of SYNTHETIC_CLASS_NAMES. */
  classes: number;
  /** Images per class for each split. */
  perClass: { train: number; val: number; test: number };
  /** Width = height of every image, in pixels. */
  size: number;
  /** Dataset seed; any safe integer. */
  seed: number;
  /** JPEG quality 1..100 (default 90). */
  quality?: number;
}

export const SYNTHETIC_SPLITS = ['train', 'val', 'test'] as const;
export type SyntheticSplit = (typeof SYNTHETIC_SPLITS)[number];

/** Smallest image we accept: below this the scene geometry degenerates into a few pixels. */
export const SYNTHETIC_MIN_SIZE = 16;
/** Largest image we accept: a guard against typos (size*size*3 floats are held in memory). */
export const SYNTHETIC_MAX_SIZE = 2048;
const DEFAULT_QUALITY = 90;
/**
 * In-flight encode+write jobs. Painting is synchronous on the main thread while sharp encodes
 * on libuv/libvips threads, so a handful of in-flight jobs keeps both cores busy without
 * holding many raw buffers in memory.
 */
const ENCODE_CONCURRENCY = 8;

/**
 * Derives the seed of one sample from the dataset seed and the sample's coordinates.
 * Hashing (instead of drawing sequentially from one stream) is what makes every image
 * independent of generation order and of how many other images are generated.
 */
export function deriveSampleSeed(seed: number, split: SyntheticSplit, classIndex: number, index: number): number {
  const lo = seed >>> 0; // ToUint32 wraps modulo 2^32, so this is well defined for any safe integer
  const hi = Math.floor(seed / 4294967296) >>> 0;
  let h = mix32(0x243f6a88 ^ lo);
  h = mix32(h ^ Math.imul(hi, 0x9e3779b1));
  h = mix32(h ^ fnv1a(split)); // hash the split *name*, so adding splits never reshuffles old ones
  h = mix32(h ^ Math.imul(classIndex + 1, 0x85ebca6b));
  h = mix32(h ^ Math.imul(index + 1, 0xc2b2ae35));
  return h;
}

/**
 * Paints one scene of class `classIndex` and returns raw RGB bytes (size*size*3, row-major).
 * Pure: depends only on its arguments.
 */
export function renderScene(classIndex: number, sampleSeed: number, size: number): Buffer {
  const scene = SCENES[classIndex];
  if (!Number.isInteger(classIndex) || scene === undefined) {
    throw new RangeError(
      `renderScene: classIndex must be an integer in [0, ${SCENES.length - 1}], got ${String(classIndex)}`,
    );
  }
  if (!Number.isInteger(sampleSeed)) {
    throw new TypeError(`renderScene: sampleSeed must be an integer, got ${String(sampleSeed)}`);
  }
  checkSize('renderScene: size', size);
  const rng = new Rng(sampleSeed);
  // Grain uses its own stream so the number of pixels (i.e. the size) never shifts the
  // random draws that decide the scene layout: the same seed gives the same scene at any size.
  const grain = new Rng(sampleSeed ^ 0x5bd1e995);
  const canvas = new Canvas(size);
  scene.draw(canvas, rng);
  return finish(canvas, rng, grain);
}

/**
 * Generates the dataset under `outDir` and returns the class names used and the number of
 * files written. Existing files with the same names are overwritten (with identical bytes if
 * the options are the same); other files in `outDir` are left alone.
 */
export async function generateSynthetic(
  outDir: string,
  opts: SyntheticOptions,
): Promise<{ classes: string[]; files: number }> {
  const o = validateOptions(outDir, opts);
  const classes = SYNTHETIC_CLASS_NAMES.slice(0, o.classes);

  interface Job {
    split: SyntheticSplit;
    classIndex: number;
    index: number;
    file: string;
  }
  const jobs: Job[] = [];
  const dirs: string[] = [];
  for (const split of SYNTHETIC_SPLITS) {
    const count = o.perClass[split];
    if (count === 0) continue;
    classes.forEach((name, classIndex) => {
      const dir = path.join(outDir, split, name);
      dirs.push(dir);
      for (let index = 0; index < count; index++) {
        jobs.push({ split, classIndex, index, file: path.join(dir, sampleFileName(name, split, index)) });
      }
    });
  }
  await Promise.all(dirs.map((d) => mkdir(d, { recursive: true })));

  // A small pool of async workers pulling from a shared cursor: unlike fixed batches, a slow
  // encode never leaves the other slots idle.
  let cursor = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && cursor < jobs.length) {
      const job = jobs[cursor++];
      if (job === undefined) break;
      const raw = renderScene(job.classIndex, deriveSampleSeed(o.seed, job.split, job.classIndex, job.index), o.size);
      const jpeg = await sharp(raw, { raw: { width: o.size, height: o.size, channels: 3 } })
        // optimiseCoding (a second Huffman pass) costs ~35% of the encode time for ~8% smaller
        // files; not worth it for a dataset regenerated on demand.
        .jpeg({ quality: o.quality, optimiseCoding: false })
        .toBuffer();
      // Write-then-rename so a crash never leaves a truncated .jpg that a loader would pick up.
      const tmp = `${job.file}.tmp`;
      try {
        await writeFile(tmp, jpeg);
        await rename(tmp, job.file);
      } catch (err) {
        await rm(tmp, { force: true }).catch(() => undefined);
        throw err;
      }
    }
  };
  const workers = Array.from({ length: Math.min(ENCODE_CONCURRENCY, jobs.length) }, () =>
    worker().catch((err: unknown) => {
      failed = true; // stop the other workers from starting new jobs
      throw err;
    }),
  );
  // allSettled, not all: on failure, wait for in-flight writes to finish (or clean up) before
  // rejecting, so the caller can safely delete outDir in its error handler.
  const results = await Promise.allSettled(workers);
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
  return { classes, files: jobs.length };
}

/** `<class>_<split>_<index padded to 5>.jpg`: class and split in the name keep files unique when flattened. */
export function sampleFileName(className: string, split: SyntheticSplit, index: number): string {
  return `${className}_${split}_${String(index).padStart(5, '0')}.jpg`;
}

function checkSize(what: string, size: unknown): asserts size is number {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < SYNTHETIC_MIN_SIZE || size > SYNTHETIC_MAX_SIZE) {
    throw new RangeError(
      `${what} must be an integer between ${SYNTHETIC_MIN_SIZE} and ${SYNTHETIC_MAX_SIZE}, got ${String(size)}`,
    );
  }
}

function validateOptions(outDir: unknown, opts: unknown): Required<SyntheticOptions> {
  const p = 'generateSynthetic:';
  if (typeof outDir !== 'string' || outDir.length === 0) {
    throw new TypeError(`${p} outDir must be a non-empty string`);
  }
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${p} options must be an object`);
  const o = opts as Partial<Record<keyof SyntheticOptions, unknown>>;
  const max = SYNTHETIC_CLASS_NAMES.length;
  if (typeof o.classes !== 'number' || !Number.isInteger(o.classes) || o.classes < 2 || o.classes > max) {
    throw new RangeError(`${p} classes must be an integer between 2 and ${max}, got ${String(o.classes)}`);
  }
  checkSize(`${p} size`, o.size);
  if (typeof o.seed !== 'number' || !Number.isSafeInteger(o.seed)) {
    throw new TypeError(`${p} seed must be a safe integer, got ${String(o.seed)}`);
  }
  const quality = o.quality ?? DEFAULT_QUALITY;
  if (typeof quality !== 'number' || !Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw new RangeError(`${p} quality must be an integer between 1 and 100, got ${String(quality)}`);
  }
  if (typeof o.perClass !== 'object' || o.perClass === null) {
    throw new TypeError(`${p} perClass must be an object { train, val, test }`);
  }
  const pc = o.perClass as Partial<Record<SyntheticSplit, unknown>>;
  const perClass = { train: 0, val: 0, test: 0 };
  for (const split of SYNTHETIC_SPLITS) {
    const n = pc[split];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 99_999) {
      // 99 999 because the index is zero-padded to five digits in the file name
      throw new RangeError(`${p} perClass.${split} must be an integer between 0 and 99999, got ${String(n)}`);
    }
    perClass[split] = n;
  }
  if (perClass.train + perClass.val + perClass.test === 0) {
    throw new RangeError(`${p} perClass must request at least one image`);
  }
  return { classes: o.classes, perClass, size: o.size, seed: o.seed, quality };
}
