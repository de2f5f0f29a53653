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
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

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
    throw new RangeError(`renderScene: classIndex must be an integer in [0, ${SCENES.length - 1}], got ${String(classIndex)}`);
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
    throw new RangeError(`${what} must be an integer between ${SYNTHETIC_MIN_SIZE} and ${SYNTHETIC_MAX_SIZE}, got ${String(size)}`);
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

// ---------------------------------------------------------------------------------------------
// Hashing and PRNG
// ---------------------------------------------------------------------------------------------

/** murmur3 finaliser: a cheap, well-mixing 32-bit bijection. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Hash of two integers and a seed to [0,1): per-cell randomness that needs no RNG state. */
function hash01(a: number, b: number, seed: number): number {
  return mix32(Math.imul(a, 0x27d4eb2d) ^ mix32(Math.imul(b, 0x165667b1) ^ seed)) / 4294967296;
}

/**
 * mulberry32: tiny, fast, good enough for procedural art; the seed is pre-mixed so nearby
 * seeds diverge. The state is kept as an int32 (`| 0`), not a uint32 (`>>> 0`): values above
 * 2^31 don't fit a V8 small integer, and boxing one per call made this 4x slower.
 */
class Rng {
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

// ---------------------------------------------------------------------------------------------
// Colour and maths helpers
// ---------------------------------------------------------------------------------------------

type RGB = readonly [number, number, number];

const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);
const lerp = (a: number, b: number, t: number): number => a + (b - a) * t;
const smooth = (t: number): number => t * t * (3 - 2 * t);
const smoothstep = (e0: number, e1: number, v: number): number => smooth(clamp((v - e0) / (e1 - e0), 0, 1));
const fract = (v: number): number => v - Math.floor(v);
const mixRGB = (a: RGB, b: RGB, t: number): RGB => [lerp(a[0], b[0], t), lerp(a[1], b[1], t), lerp(a[2], b[2], t)];
const scaleRGB = (a: RGB, k: number): RGB => [a[0] * k, a[1] * k, a[2] * k];
const minOf = (a: Float32Array): number => a.reduce((m, v) => (v < m ? v : m), Infinity);
const maxOf = (a: Float32Array): number => a.reduce((m, v) => (v > m ? v : m), -Infinity);

/**
 * A colour from the box [lo, hi]: how "class-typical ranges" are expressed. The channels share
 * most of their position in the box, so a grey range yields greys of varying brightness
 * (with a slight tint) rather than purple or green asphalt.
 */
function between(rng: Rng, lo: RGB, hi: RGB): RGB {
  const t = rng.next();
  const ch = (k: 0 | 1 | 2): number => lerp(lo[k], hi[k], clamp(t + (rng.next() - 0.5) * 0.5, 0, 1));
  return [ch(0), ch(1), ch(2)];
}

/** Small random shift of a colour, mostly in brightness, a little in hue. */
function jitter(rng: Rng, c: RGB, spread: number): RGB {
  const b = rng.range(-spread, spread);
  const h = spread * 0.4;
  return [c[0] + b + rng.range(-h, h), c[1] + b + rng.range(-h, h), c[2] + b + rng.range(-h, h)];
}

// ---------------------------------------------------------------------------------------------
// Canvas and noise
// ---------------------------------------------------------------------------------------------

/**
 * Float RGB canvas, values nominally 0..255 (may overshoot until finish() clamps).
 * Note on `!`: with noUncheckedIndexedAccess every typed-array read is `number | undefined`;
 * the loops below only index inside [0, size*size*3), so the non-null assertions are safe.
 */
class Canvas {
  readonly d: Float32Array;
  constructor(readonly size: number) {
    this.d = new Float32Array(size * size * 3);
  }
  /** Alpha-blends (r,g,b) over pixel (x,y). No bounds check: callers clip. */
  blend(x: number, y: number, r: number, g: number, b: number, a: number): void {
    const d = this.d;
    const i = (y * this.size + x) * 3;
    d[i] = d[i]! + (r - d[i]!) * a;
    d[i + 1] = d[i + 1]! + (g - d[i + 1]!) * a;
    d[i + 2] = d[i + 2]! + (b - d[i + 2]!) * a;
  }
  put(x: number, y: number, r: number, g: number, b: number): void {
    const i = (y * this.size + x) * 3;
    this.d[i] = r;
    this.d[i + 1] = g;
    this.d[i + 2] = b;
  }
  /** Filled axis-aligned rectangle in float pixel coordinates, clipped; edges are not anti-aliased. */
  rect(x0: number, y0: number, x1: number, y1: number, c: RGB, a = 1): void {
    const S = this.size;
    const xa = clamp(Math.round(x0), 0, S), xb = clamp(Math.round(x1), 0, S);
    const ya = clamp(Math.round(y0), 0, S), yb = clamp(Math.round(y1), 0, S);
    for (let y = ya; y < yb; y++) for (let x = xa; x < xb; x++) this.blend(x, y, c[0], c[1], c[2], a);
  }
}

/**
 * Multi-octave value noise over the image, in [0,1] (mean 0.5). Cell counts are per image
 * (not per pixel) so the pattern scales with the image, and the number of RNG draws depends
 * only on the cell counts, never on the image size or the row range.
 * Only rows [y0, y1) are evaluated (the rest stay 0): noise is the hottest code here and most
 * fields are only needed above or below the horizon.
 */
function noise2D(size: number, rng: Rng, cellsX: number, cellsY: number, octaves: number, persistence = 0.5, y0 = 0, y1 = size): Float32Array {
  const ya = clamp(Math.floor(y0), 0, size), yb = clamp(Math.ceil(y1), 0, size);
  const out = new Float32Array(size * size);
  let total = 0;
  for (let o = 0, amp = 1; o < octaves; o++, amp *= persistence) total += amp;
  const rows = new Float32Array(size * (Math.ceil(cellsY * 2 ** (octaves - 1)) + 2));
  for (let o = 0, amp = 1 / total; o < octaves; o++, amp *= persistence) {
    const gx = Math.max(1, Math.round(cellsX * 2 ** o));
    const gy = Math.max(1, Math.round(cellsY * 2 ** o));
    const stride = gx + 1;
    const lat = new Float32Array(stride * (gy + 1));
    for (let k = 0; k < lat.length; k++) lat[k] = rng.next();
    if (size < 2 * gx && size < 2 * gy) {
      // Cells under 2 px both ways: detail JPEG would smear anyway. Add the octave's mean
      // instead of evaluating it (the lattice was still drawn, so the RNG stream, and with
      // it the scene, stays the same at every size; small images just lose the finest grain).
      for (let y = ya; y < yb; y++) for (let x = y * size, e = x + size; x < e; x++) out[x] = out[x]! + 0.5 * amp;
      continue;
    }
    // Separable interpolation: smooth each lattice row along x once, so each pixel only
    // needs one lerp in y. This roughly halves the cost of the noise, the hottest code here.
    for (let x = 0; x < size; x++) {
      const f = ((x + 0.5) / size) * gx;
      const i = Math.min(gx - 1, Math.floor(f));
      const t = smooth(f - i);
      for (let j = 0; j <= gy; j++) {
        const a = lat[j * stride + i]!;
        rows[j * size + x] = a + (lat[j * stride + i + 1]! - a) * t;
      }
    }
    for (let y = ya; y < yb; y++) {
      const f = ((y + 0.5) / size) * gy;
      const j = Math.min(gy - 1, Math.floor(f));
      const ty = smooth(f - j) * amp;
      const ra = j * size;
      const rb = ra + size;
      const row = y * size;
      for (let x = 0; x < size; x++) {
        const a = rows[ra + x]!;
        out[row + x] = out[row + x]! + a * amp + (rows[rb + x]! - a) * ty;
      }
    }
  }
  return out;
}

/** 1-D value noise across the image width, in [0,1]; used for ridge lines and shorelines. */
function noise1D(size: number, rng: Rng, cells: number, octaves: number, persistence = 0.5): Float32Array {
  const out = new Float32Array(size);
  let amp = 1;
  let total = 0;
  for (let o = 0; o < octaves; o++) {
    const g = Math.max(1, Math.round(cells * 2 ** o));
    const lat = new Float32Array(g + 1);
    for (let k = 0; k < lat.length; k++) lat[k] = rng.next();
    for (let x = 0; x < size; x++) {
      const f = ((x + 0.5) / size) * g;
      const i = Math.min(g - 1, Math.floor(f));
      out[x] = out[x]! + lerp(lat[i]!, lat[i + 1]!, smooth(f - i)) * amp;
    }
    total += amp;
    amp *= persistence;
  }
  for (let k = 0; k < size; k++) out[k] = out[k]! / total;
  return out;
}

/** Horizontal line at `base` displaced by noise of amplitude `amp` (pixels). */
function wavyLine(size: number, rng: Rng, base: number, amp: number, cells: number, octaves: number): Float32Array {
  const n = noise1D(size, rng, cells, octaves);
  for (let x = 0; x < size; x++) n[x] = base + (n[x]! - 0.5) * 2 * amp;
  return n;
}

/** Scratch colour written by Paint callbacks (avoids allocating a tuple per pixel). */
const P = new Float32Array(3);
type Paint = (x: number, y: number) => void;

/**
 * Fills every column from the line `top[x]` down to `bottom` (a row, or a per-column line,
 * e.g. the ridge of a nearer layer, which saves painting what will be covered) with `paint`,
 * anti-aliasing the top edge by partial coverage so ridges don't look like staircases.
 */
function fillBelow(c: Canvas, top: Float32Array, bottom: number | Float32Array, paint: Paint): void {
  const S = c.size;
  for (let x = 0; x < S; x++) {
    // +1 row under a per-column bottom: the nearer layer only partially covers its edge row.
    const yEnd = Math.min(S, typeof bottom === 'number' ? Math.ceil(bottom) : Math.ceil(bottom[x]!) + 1);
    const t = top[x]!;
    const ft = Math.floor(t);
    for (let y = Math.max(0, ft); y < yEnd; y++) {
      paint(x, y);
      c.blend(x, y, P[0]!, P[1]!, P[2]!, y === ft ? 1 - (t - ft) : 1);
    }
  }
}

function setP(c: RGB, k = 1): void {
  P[0] = c[0] * k;
  P[1] = c[1] * k;
  P[2] = c[2] * k;
}

/** P = mix(a, b, t) * k, without allocating a tuple (this runs once per pixel). */
function mixP(a: RGB, b: RGB, t: number, k = 1): void {
  P[0] = (a[0] + (b[0] - a[0]) * t) * k;
  P[1] = (a[1] + (b[1] - a[1]) * t) * k;
  P[2] = (a[2] + (b[2] - a[2]) * t) * k;
}

// ---------------------------------------------------------------------------------------------
// Scene elements shared by several classes (sharing is what makes the classes overlap)
// ---------------------------------------------------------------------------------------------

type Mood = 'clear' | 'overcast' | 'sunset' | 'hazy';
const DEFAULT_MOODS: Readonly<Record<Mood, number>> = { clear: 0.45, overcast: 0.25, sunset: 0.12, hazy: 0.18 };

interface Sky {
  mood: Mood;
  top: RGB;
  /** Colour at the horizon: also the aerial-perspective haze and the water reflection colour. */
  horizon: RGB;
}

/** Vertical gradient sky with value-noise clouds and an optional sun, over the whole canvas. */
function drawSky(c: Canvas, rng: Rng, horizon: number, moods: Readonly<Record<Mood, number>> = DEFAULT_MOODS, coverBoost = 0): Sky {
  const S = c.size;
  const mood = rng.weighted(moods);
  let top: RGB, hor: RGB, cloud: RGB, cover: number;
  switch (mood) {
    case 'clear':
      top = between(rng, [35, 85, 165], [100, 155, 235]);
      hor = between(rng, [160, 190, 215], [220, 232, 250]);
      cloud = between(rng, [235, 235, 235], [252, 252, 255]);
      cover = rng.range(0, 0.5);
      break;
    case 'overcast': {
      const g = rng.range(105, 175);
      top = [g - 6, g, g + 8];
      const h = rng.range(170, 220);
      hor = [h, h + 2, h + 5];
      cloud = [h * 0.9 + 20, h * 0.9 + 20, h * 0.9 + 24];
      cover = rng.range(0.55, 1);
      break;
    }
    case 'sunset':
      top = between(rng, [40, 45, 90], [100, 95, 165]);
      hor = between(rng, [220, 115, 60], [255, 195, 140]);
      cloud = between(rng, [190, 100, 100], [250, 175, 160]);
      cover = rng.range(0.1, 0.6);
      break;
    case 'hazy':
      top = between(rng, [135, 160, 185], [190, 205, 225]);
      hor = between(rng, [200, 200, 195], [238, 234, 228]);
      cloud = [242, 240, 236];
      cover = rng.range(0, 0.35);
      break;
  }
  cover = clamp(cover + coverBoost, 0, 1);
  const hy = Math.max(1, horizon);
  const gamma = rng.range(0.5, 1.1);
  const clouds = noise2D(S, rng, rng.range(1.2, 2.6), rng.range(2.5, 5), 4, 0.55, 0, hy);
  // Value noise sits around 0.5 with a spread of roughly +-0.15, so thresholds live near there.
  const thr = 0.6 - cover * 0.2;
  const opacity = rng.range(0.7, 1);
  const sunOn = (mood === 'clear' || mood === 'sunset') && rng.chance(0.35);
  const sx = rng.range(0.1, 0.9) * S;
  const sy = rng.range(0.2, 0.95) * hy;
  const sr = rng.range(0.025, 0.05) * S;
  const sun: RGB = mood === 'sunset' ? [255, 215, 150] : [255, 252, 238];
  // Sun first (under the clouds), then clouds on top. The glow is only evaluated inside the box
  // where it is still visible (exp(-0.12 (d2-1)) * 0.55 > 1% needs d2 < ~34, i.e. 5.8 radii).
  for (let y = 0; y < S; y++) {
    const t = Math.pow(clamp(y / hy, 0, 1), gamma);
    const br = lerp(top[0], hor[0], t), bg = lerp(top[1], hor[1], t), bb = lerp(top[2], hor[2], t);
    for (let x = 0; x < S; x++) c.put(x, y, br, bg, bb);
  }
  if (sunOn) {
    const reach = sr * 5.8;
    for (let y = Math.max(0, Math.floor(sy - reach)); y < Math.min(S, Math.ceil(sy + reach)); y++) {
      for (let x = Math.max(0, Math.floor(sx - reach)); x < Math.min(S, Math.ceil(sx + reach)); x++) {
        const dx = x - sx, dy = y - sy;
        const d2 = (dx * dx + dy * dy) / (sr * sr);
        c.blend(x, y, sun[0], sun[1], sun[2], d2 < 1 ? 1 : Math.exp(-(d2 - 1) * 0.12) * 0.55);
      }
    }
  }
  for (let y = 0; y < Math.min(S, hy); y++) {
    // Clouds thin out towards the horizon, as they do when seen at a grazing angle.
    const fade = (1 - smoothstep(0.5, 1, y / hy)) * opacity;
    for (let x = 0; x < S; x++) {
      const n = clouds[y * S + x]!;
      if (n <= thr) continue;
      const shade = 0.72 + 0.28 * smoothstep(thr, thr + 0.22, n); // darker undersides at cloud edges
      c.blend(x, y, cloud[0] * shade, cloud[1] * shade, cloud[2] * shade, smoothstep(thr, thr + 0.1, n) * fade);
    }
  }
  return { mood, top, horizon: hor };
}

interface Peaks {
  line: Float32Array;
  /** Peak position owning each column, for left-lit / right-shadowed faces. */
  px: Float32Array;
  py: Float32Array;
}

/** Mountain silhouette: the lower envelope of a few triangular peaks, roughened with noise. */
function peaksLine(S: number, rng: Rng, base: number, minY: number, maxY: number, n: number, jag: number): Peaks {
  const pxs: number[] = [], pys: number[] = [], slopes: number[] = [];
  for (let k = 0; k < n; k++) {
    pxs.push(rng.range(-0.15, 1.15) * S);
    pys.push(rng.range(minY, maxY));
    slopes.push(rng.range(0.45, 1.5));
  }
  const rough = noise1D(S, rng, rng.range(5, 9), 4, 0.55);
  const line = new Float32Array(S), px = new Float32Array(S), py = new Float32Array(S);
  for (let x = 0; x < S; x++) {
    let best = base + S, bx = x, by = base;
    for (let k = 0; k < n; k++) {
      const y = pys[k]! + slopes[k]! * Math.abs(x - pxs[k]!);
      if (y < best) { best = y; bx = pxs[k]!; by = pys[k]!; }
    }
    line[x] = Math.min(base, best + (rough[x]! - 0.5) * jag * S);
    px[x] = bx;
    py[x] = by;
  }
  return { line, px, py };
}

interface MountainStyle {
  rock: RGB;
  /** Colour the slopes blend into near their foot (vegetation), or null for bare rock. */
  foot: RGB | null;
  haze: RGB;
  hazeAmt: number;
  /** y of the snow line (pixels), or null for no snow. */
  snow: number | null;
  snowCol: RGB;
}

/** `bottom` is the foot of the range (for the vegetation gradient); `clip`, if given, the nearer ridge hiding it. */
function drawMountains(c: Canvas, rng: Rng, pk: Peaks, bottom: number, st: MountainStyle, clip?: Float32Array): void {
  const S = c.size;
  // Noise is only needed between this ridge and whatever hides the layer.
  const y0 = minOf(pk.line);
  const y1 = clip === undefined ? bottom : Math.min(bottom, maxOf(clip) + 2);
  const tex = noise2D(S, rng, 6, 4, 4, 0.6, y0, y1);
  const streak = noise2D(S, rng, 14, 3, 2, 0.5, y0, y1);
  const skew = rng.range(-0.35, 0.35);
  const lit = rng.range(1.0, 1.2), shadow = rng.range(0.6, 0.8);
  const rock = mixRGB(st.rock, st.haze, st.hazeAmt);
  const foot = st.foot === null ? null : mixRGB(st.foot, st.haze, st.hazeAmt);
  const snowCol = mixRGB(st.snowCol, st.haze, st.hazeAmt * 0.6);
  fillBelow(c, pk.line, clip ?? bottom, (x, y) => {
    const i = y * S + x;
    const t = tex[i]!;
    const peakX = pk.px[x]!, peakY = pk.py[x]!;
    const sunny = x - peakX < (y - peakY) * skew;
    const k = (sunny ? lit : shadow) * (0.78 + 0.45 * t) * (0.9 + 0.2 * streak[i]!);
    if (st.snow !== null && y < st.snow + (t - 0.5) * S * 0.3) {
      setP(snowCol, sunny ? 1 : 0.8);
    } else if (foot !== null) {
      mixP(rock, foot, smoothstep(0.35, 1, (y - peakY) / Math.max(1, bottom - peakY)), k);
    } else {
      setP(rock, k);
    }
  });
}

interface Foliage {
  dark: RGB;
  light: RGB;
}

function foliagePalette(rng: Rng, autumnChance: number): Foliage {
  if (rng.chance(autumnChance)) {
    return { dark: between(rng, [70, 40, 15], [110, 70, 35]), light: between(rng, [170, 110, 30], [225, 170, 70]) };
  }
  return { dark: between(rng, [15, 35, 12], [45, 70, 40]), light: between(rng, [70, 110, 35], [135, 175, 85]) };
}

/** Conifer: a textured triangle on a short trunk, lit from the left. */
function drawConifer(c: Canvas, x0: number, base: number, h: number, w: number, fol: Foliage, tex: Float32Array, haze: RGB, hazeAmt: number): void {
  const S = c.size;
  const top = base - h;
  const dark = mixRGB(fol.dark, haze, hazeAmt), light = mixRGB(fol.light, haze, hazeAmt);
  const trunk = mixRGB([60, 45, 35], haze, hazeAmt);
  c.rect(x0 - w * 0.06, base - h * 0.15, x0 + w * 0.06, base, trunk);
  const ya = Math.max(0, Math.floor(top)), yb = Math.min(S, Math.ceil(base - h * 0.12));
  for (let y = ya; y < yb; y++) {
    const f = (y + 0.5 - top) / (h * 0.88);
    // Slightly ragged edges: tiers of branches make the outline saw-toothed.
    const half = (w / 2) * f * (0.8 + 0.2 * fract(f * 5));
    const xa = Math.max(0, Math.floor(x0 - half)), xb = Math.min(S, Math.ceil(x0 + half));
    for (let x = xa; x < xb; x++) {
      const side = (x - x0) / Math.max(1, half); // -1 left .. 1 right
      const l = clamp(0.55 - side * 0.35, 0, 1) * (0.6 + 0.8 * (tex[y * S + x]! - 0.3));
      mixP(dark, light, clamp(l, 0, 1));
      c.put(x, y, P[0]!, P[1]!, P[2]!);
    }
  }
}

/** Broadleaf tree: a few overlapping shaded discs on a trunk. */
function drawRoundTree(c: Canvas, rng: Rng, x0: number, base: number, h: number, fol: Foliage, tex: Float32Array, haze: RGB, hazeAmt: number): void {
  const S = c.size;
  const trunk = mixRGB(between(rng, [45, 35, 25], [90, 70, 55]), haze, hazeAmt);
  const dark = mixRGB(fol.dark, haze, hazeAmt), light = mixRGB(fol.light, haze, hazeAmt);
  const r = h * rng.range(0.28, 0.4);
  const cy = base - h + r;
  c.rect(x0 - h * 0.04, cy, x0 + h * 0.04, base, trunk);
  const blobs = rng.int(2, 4);
  for (let k = 0; k < blobs; k++) {
    const bx = x0 + rng.range(-0.5, 0.5) * r, by = cy + rng.range(-0.3, 0.4) * r, br = r * rng.range(0.6, 0.95);
    const ya = Math.max(0, Math.floor(by - br)), yb = Math.min(S, Math.ceil(by + br));
    const xa = Math.max(0, Math.floor(bx - br)), xb = Math.min(S, Math.ceil(bx + br));
    for (let y = ya; y < yb; y++) {
      for (let x = xa; x < xb; x++) {
        const dx = (x + 0.5 - bx) / br, dy = (y + 0.5 - by) / br;
        const d2 = dx * dx + dy * dy;
        if (d2 > 1) continue;
        const l = clamp(0.55 - (dx + dy) * 0.3 + (tex[y * S + x]! - 0.5) * 1.4, 0, 1);
        mixP(dark, light, l);
        c.blend(x, y, P[0]!, P[1]!, P[2]!, d2 > 0.85 ? 0.6 : 1);
      }
    }
  }
}

interface Facade {
  col: RGB;
  win: RGB;
  /** Window period and the fraction of it that is glass, horizontally and vertically (pixels). */
  sx: number;
  sy: number;
  fx: number;
  fy: number;
  /** Probability a window is lit (much brighter), e.g. at dusk. */
  lit: number;
  seed: number;
}

function randomFacade(rng: Rng, S: number, sky: Sky): Facade {
  const kind = rng.pick(['concrete', 'brick', 'beige', 'glass', 'dark'] as const);
  const col: RGB =
    kind === 'concrete' ? between(rng, [135, 135, 135], [195, 192, 188])
    : kind === 'brick' ? between(rng, [125, 60, 45], [175, 95, 70])
    : kind === 'beige' ? between(rng, [190, 175, 145], [230, 215, 185])
    : kind === 'glass' ? mixRGB(between(rng, [60, 90, 110], [110, 140, 170]), sky.horizon, 0.3)
    : between(rng, [55, 55, 60], [95, 90, 90]);
  const glassy = kind === 'glass';
  const win: RGB = glassy ? mixRGB(sky.top, sky.horizon, rng.next()) : mixRGB(between(rng, [25, 30, 40], [70, 80, 95]), sky.horizon, rng.range(0, 0.35));
  return {
    col,
    win,
    sx: S * rng.range(0.03, 0.075),
    sy: S * rng.range(0.04, 0.085),
    fx: glassy ? rng.range(0.82, 0.92) : rng.range(0.4, 0.7),
    fy: glassy ? rng.range(0.8, 0.92) : rng.range(0.4, 0.65),
    lit: sky.mood === 'sunset' ? rng.range(0.1, 0.5) : rng.range(0, 0.08),
    seed: rng.u32(),
  };
}

/**
 * Colour of a facade at facade-local coordinates (u, v) in pixels from its left/top edge:
 * a window grid with per-window variation (hashed, so independent of image size).
 */
function facadeColour(f: Facade, u: number, v: number, texV: number): void {
  const cu = u / f.sx, cv = v / f.sy;
  const inWin = fract(cu) > (1 - f.fx) / 2 && fract(cu) < (1 + f.fx) / 2 && fract(cv) > 0.3 && fract(cv) < 0.3 + f.fy && cv > 0.8;
  const k = 0.88 + 0.24 * texV;
  if (inWin) {
    const h = hash01(Math.floor(cu), Math.floor(cv), f.seed);
    if (h < f.lit) {
      P[0] = 250; P[1] = 215; P[2] = 140;
    } else {
      setP(f.win, k * (0.8 + 0.4 * h));
    }
  } else {
    setP(f.col, k);
  }
}

/**
 * Front-facing building spanning [x0,x1) from `top` down to `bottom` (or, per column, down to
 * `clip[x]` when something nearer will cover the rest), tinted by `shade` and `haze`.
 */
function drawBuilding(c: Canvas, x0: number, x1: number, top: number, bottom: number, f: Facade, tex: Float32Array, shade: number, haze: RGB, hazeAmt: number, clip?: Float32Array): void {
  const S = c.size;
  const xa = clamp(Math.round(x0), 0, S), xb = clamp(Math.round(x1), 0, S);
  const ya = clamp(Math.round(top), 0, S), yb = clamp(Math.round(bottom), 0, S);
  for (let x = xa; x < xb; x++) {
    const ye = clip === undefined ? yb : Math.min(yb, Math.ceil(clip[x]!));
    for (let y = ya; y < ye; y++) {
      facadeColour(f, x - x0, y - top, tex[y * S + x]!);
      c.put(
        x, y,
        lerp(P[0]! * shade, haze[0], hazeAmt),
        lerp(P[1]! * shade, haze[1], hazeAmt),
        lerp(P[2]! * shade, haze[2], hazeAmt),
      );
    }
  }
  // Roof parapet: a thin lighter band that separates towers from each other and from the sky.
  c.rect(x0, top, x1, top + Math.max(1, S * 0.008), mixRGB(scaleRGB(f.col, 1.15), haze, hazeAmt));
}

interface WaterStyle {
  deep: RGB;
  /** 0..1 strength of the wave bands. */
  waves: number;
  /** Mirror the canvas above `top` into the water (lakes) instead of just reflecting the sky colour. */
  mirror: number;
  sky: Sky;
}

/** Water from `top` to the bottom edge: perspective wave bands denser near the horizon, sky reflection, foam glints. */
function drawWater(c: Canvas, rng: Rng, top: number, st: WaterStyle): void {
  const S = c.size;
  const y0 = clamp(Math.floor(top), 0, S);
  const phase = noise2D(S, rng, rng.range(1.5, 3.5), rng.range(3, 6), 3, 0.5, y0, S);
  const ripple = noise2D(S, rng, 3, 12, 2, 0.5, y0, S);
  const freq = rng.range(2.5, 5);
  const foam = mixRGB(st.sky.horizon, [250, 250, 250], 0.6);
  const near = mixRGB(st.deep, st.sky.horizon, rng.range(0.35, 0.7));
  const depth = Math.max(1, S - top);
  const d = c.d;
  for (let y = y0; y < S; y++) {
    const dz = (y + 0.5 - top) / depth; // 0 at horizon, 1 at bottom edge
    const base = mixRGB(near, st.deep, Math.sqrt(clamp(dz, 0, 1)));
    // Perspective: equal spacing in 1/depth, so bands bunch up towards the horizon;
    // their amplitude fades there so they don't alias into stripes.
    const wz = freq / (dz + 0.06);
    const amp = st.waves * smoothstep(0, 0.25, dz);
    for (let x = 0; x < S; x++) {
      const i = y * S + x;
      const rp = ripple[i]!;
      // Phase noise bends the bands; the horizontally stretched ripple noise breaks them into swells.
      const w = Math.sin(wz + phase[i]! * 7 + (rp - 0.5) * 3);
      let r = base[0], g = base[1], b = base[2];
      if (st.mirror > 0) {
        const ys = Math.floor(2 * top - y - 1 + (rp - 0.5) * 6 * (0.3 + dz));
        const xs = clamp(Math.round(x + (rp - 0.5) * S * 0.02), 0, S - 1);
        if (ys >= 0 && ys < y0) {
          const j = (ys * S + xs) * 3;
          const m = st.mirror * (1 - 0.5 * dz);
          r = lerp(r, d[j]! * 0.85, m); g = lerp(g, d[j + 1]! * 0.88, m); b = lerp(b, d[j + 2]! * 0.92, m);
        }
      }
      const k = 1 + w * 0.12 * amp;
      r *= k; g *= k; b *= k;
      const crest = smoothstep(0.88, 1, w) * amp * 0.7 * smoothstep(0.45, 0.65, rp);
      c.put(x, y, lerp(r, foam[0], crest), lerp(g, foam[1], crest), lerp(b, foam[2], crest));
    }
  }
}

/** Textured ground from `top` to the bottom edge, a little darker and more saturated near the camera. */
function drawGround(c: Canvas, rng: Rng, top: Float32Array, far: RGB, near: RGB, texAmt: number, cells = 8): void {
  const S = c.size;
  const minTop = minOf(top);
  const tex = noise2D(S, rng, cells, cells * 1.5, 4, 0.6, minTop, S);
  const span = Math.max(1, S - minTop);
  fillBelow(c, top, S, (x, y) => mixP(far, near, clamp((y - minTop) / span, 0, 1), 1 + (tex[y * S + x]! - 0.5) * texAmt));
}

function flatLine(S: number, y: number): Float32Array {
  return new Float32Array(S).fill(y);
}

// ---------------------------------------------------------------------------------------------
// Scenes
// ---------------------------------------------------------------------------------------------

function sceneBuildings(c: Canvas, rng: Rng): void {
  const S = c.size;
  const ground = S * rng.range(0.8, 1.05);
  const sky = drawSky(c, rng, S * rng.range(0.45, 0.9));
  const tex = noise2D(S, rng, 10, 10, 3);
  // Foreground towers tiling the width, some with a darker side face for depth. Planned
  // first so the far skyline is only painted where it will stay visible.
  interface Tower { x: number; w: number; top: number; side: number; f: Facade }
  const towers: Tower[] = [];
  const fgTop = new Float32Array(S).fill(S);
  for (let x = -rng.range(0, 0.15) * S; x < S; ) {
    const w = S * rng.range(0.18, 0.55);
    const t: Tower = { x, w, top: S * rng.range(-0.15, 0.5), side: rng.chance(0.4) ? w * rng.range(0.15, 0.3) : 0, f: randomFacade(rng, S, sky) };
    towers.push(t);
    for (let k = Math.max(0, Math.round(x)); k < Math.min(S, Math.round(x + w)); k++) fgTop[k] = Math.max(0, t.top);
    x += w + (rng.chance(0.3) ? S * rng.range(0.02, 0.12) : 0);
  }
  // A hazy far skyline so gaps between towers still read as "city".
  if (rng.chance(0.7)) {
    let x = -rng.range(0, 0.1) * S;
    while (x < S) {
      const w = S * rng.range(0.06, 0.18);
      drawBuilding(c, x, x + w, S * rng.range(0.15, 0.55), ground, randomFacade(rng, S, sky), tex, 1, sky.horizon, rng.range(0.35, 0.6), fgTop);
      x += w;
    }
  }
  for (const t of towers) {
    drawBuilding(c, t.x, t.x + t.w - t.side, t.top, ground, t.f, tex, 1, sky.horizon, 0);
    if (t.side > 0) drawBuilding(c, t.x + t.w - t.side, t.x + t.w, t.top + S * 0.01, ground, t.f, tex, 0.65, sky.horizon, 0);
  }
  if (ground < S) drawGround(c, rng, flatLine(S, ground), between(rng, [90, 90, 90], [150, 145, 140]), between(rng, [70, 70, 70], [130, 125, 120]), 0.25);
  // Street trees in front of some blocks: shared with street/forest, blurs colour statistics.
  if (rng.chance(0.35)) {
    const fol = foliagePalette(rng, 0.15);
    const ftex = noise2D(S, rng, 14, 14, 2);
    const n = rng.int(1, 4);
    for (let k = 0; k < n; k++) drawRoundTree(c, rng, rng.range(0, 1) * S, Math.min(ground, S) + S * 0.02, S * rng.range(0.25, 0.5), fol, ftex, sky.horizon, 0);
  }
}

function sceneForest(c: Canvas, rng: Rng): void {
  const S = c.size;
  const canopyTop = rng.chance(0.25) ? -S * 0.1 : S * rng.range(0.03, 0.35);
  const sky = drawSky(c, rng, Math.max(S * 0.3, canopyTop + S * 0.1));
  const fol = foliagePalette(rng, 0.22);
  const tex = noise2D(S, rng, rng.range(6, 12), rng.range(6, 12), 4, 0.6);
  if (rng.chance(0.5)) {
    // Conifer forest: rows of triangles, smaller and hazier towards the back.
    const rows = rng.int(3, 5);
    const backdrop = wavyLine(S, rng, canopyTop + S * 0.12, S * 0.05, 12, 3);
    const bd = mixRGB(fol.dark, sky.horizon, 0.35);
    fillBelow(c, backdrop, S, (x, y) => setP(bd, 0.8 + 0.4 * tex[y * S + x]!));
    for (let r = 0; r < rows; r++) {
      const depth = 1 - r / rows; // 1 = far
      const h = S * lerp(0.35, 0.12, depth) * rng.range(0.8, 1.6);
      const base = canopyTop + h + S * lerp(0.55, 0.05, depth);
      const spacing = h * rng.range(0.25, 0.45);
      for (let x = -rng.range(0, spacing); x < S + spacing; x += spacing * rng.range(0.7, 1.3)) {
        const hh = h * rng.range(0.75, 1.25);
        drawConifer(c, x, base + rng.range(-0.05, 0.05) * S, hh, hh * rng.range(0.35, 0.55), fol, tex, sky.horizon, depth * 0.45);
      }
    }
  } else {
    // Broadleaf forest: a dense canopy texture with trunks showing underneath.
    const canopy = wavyLine(S, rng, canopyTop, S * 0.06, 10, 4);
    const under = rng.range(0.55, 0.9) * S;
    const gloom = rng.range(0.35, 0.7);
    fillBelow(c, canopy, S, (x, y) => {
      const t = tex[y * S + x]!;
      // Interior of a forest is darker than the sunlit canopy.
      mixP(fol.dark, fol.light, clamp((t - 0.3) * 2.2, 0, 1), 1 - gloom * smoothstep(canopyTop, under, y));
    });
    const trunks = rng.int(4, 14);
    const bark = between(rng, [35, 28, 22], [95, 85, 75]);
    for (let k = 0; k < trunks; k++) {
      const tx = rng.range(0, 1) * S, w = S * rng.range(0.008, 0.045);
      const col = jitter(rng, bark, 12);
      const top = rng.range(canopyTop + S * 0.1, under);
      c.rect(tx - w / 2, top, tx + w / 2, S, col);
      c.rect(tx - w / 2, top, tx - w / 6, S, scaleRGB(col, 1.4), 0.35); // lit edge reads as a round trunk
    }
    const blobs = rng.int(2, 6);
    for (let k = 0; k < blobs; k++) {
      drawRoundTree(c, rng, rng.range(0, 1) * S, S * rng.range(0.5, 1.1), S * rng.range(0.3, 0.7), fol, tex, sky.horizon, 0);
    }
  }
  // Forest floor.
  if (rng.chance(0.6)) {
    const floor = wavyLine(S, rng, S * rng.range(0.82, 0.97), S * 0.03, 6, 3);
    drawGround(c, rng, floor, between(rng, [50, 55, 25], [110, 95, 55]), between(rng, [40, 45, 20], [90, 80, 45]), 0.5, 12);
  }
}

function sceneGlacier(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.3, 0.6);
  const sky = drawSky(c, rng, hy, { clear: 0.5, overcast: 0.3, sunset: 0.05, hazy: 0.15 });
  if (rng.chance(0.5)) {
    // Distant snowy peaks behind the ice.
    const pk = peaksLine(S, rng, hy, hy - S * 0.35, hy - S * 0.12, rng.int(2, 4), 0.04);
    drawMountains(c, rng, pk, hy + S * 0.05, {
      rock: between(rng, [90, 95, 105], [140, 145, 150]), foot: null, haze: sky.horizon, hazeAmt: rng.range(0.3, 0.6),
      snow: hy, snowCol: [235, 240, 248],
    });
  }
  // Ice cliff / tongue: jagged top, vertical streaks, blue crevasses.
  const waterline = hy + S * rng.range(0.05, 0.3);
  const iceTop = wavyLine(S, rng, hy - S * rng.range(0.0, 0.15), S * rng.range(0.03, 0.1), rng.range(6, 14), 5);
  const streaks = noise2D(S, rng, rng.range(10, 22), rng.range(1.5, 3), 3, 0.5, minOf(iceTop), waterline);
  const tex = noise2D(S, rng, 8, 8, 4, 0.5, minOf(iceTop), waterline);
  const ice = between(rng, [185, 215, 230], [235, 248, 255]);
  const crevasse = between(rng, [60, 120, 165], [130, 185, 225]);
  const cut = rng.range(0.34, 0.45);
  fillBelow(c, iceTop, waterline, (x, y) => {
    const i = y * S + x;
    const s = streaks[i]!;
    mixP(ice, crevasse, smoothstep(0.5, 0.25, s) * 0.9 + smoothstep(cut, cut - 0.05, tex[i]!) * 0.4, 0.85 + 0.3 * tex[i]!);
  });
  if (rng.chance(0.65)) {
    drawWater(c, rng, waterline, {
      deep: between(rng, [20, 60, 80], [60, 110, 130]), waves: rng.range(0.1, 0.5), mirror: rng.range(0.2, 0.5), sky,
    });
    // Floating ice floes.
    const floes = rng.int(0, 8);
    for (let k = 0; k < floes; k++) {
      const fy = rng.range(waterline + S * 0.02, S);
      const fw = S * rng.range(0.03, 0.12) * (0.4 + (fy - waterline) / S);
      const fx = rng.range(0, 1) * S;
      c.rect(fx - fw, fy - fw * 0.25, fx + fw, fy, jitter(rng, ice, 10));
      c.rect(fx - fw, fy, fx + fw, fy + fw * 0.12, crevasse, 0.7);
    }
  } else {
    // Snow field in front with blue shadows.
    const snowTop = wavyLine(S, rng, waterline, S * 0.03, 4, 3);
    drawGround(c, rng, snowTop, between(rng, [200, 215, 230], [240, 245, 252]), between(rng, [170, 195, 220], [230, 240, 250]), 0.25, 5);
  }
}

function sceneMountain(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.5, 0.85);
  const sky = drawSky(c, rng, hy);
  const layers = rng.int(2, 3);
  const snowy = rng.chance(0.5);
  const rockBase = between(rng, [85, 80, 75], [150, 135, 120]);
  // Plan every layer first so each far layer is only painted down to the ridge in front of it.
  const plan = Array.from({ length: layers }, (_, l) => {
    const far = 1 - l / layers; // 1 = farthest layer
    const peakTop = S * lerp(rng.range(0.05, 0.25), rng.range(0.2, 0.45), 1 - far);
    const base = hy + S * lerp(0.0, 0.2, 1 - far);
    const pk = peaksLine(S, rng, base, peakTop, lerp(peakTop, base, 0.5), rng.int(1, 4), rng.range(0.03, 0.07));
    return { far, peakTop, base, pk };
  });
  plan.forEach(({ far, peakTop, base, pk }, l) => {
    drawMountains(c, rng, pk, S, {
      rock: jitter(rng, rockBase, 15),
      foot: rng.chance(0.6) ? between(rng, [50, 75, 35], [110, 130, 70]) : null,
      haze: sky.horizon,
      hazeAmt: far * rng.range(0.35, 0.6),
      snow: snowy ? lerp(peakTop, base, rng.range(0.15, 0.45)) : null,
      snowCol: [238, 240, 245],
    }, plan[l + 1]?.pk.line);
  });
  // Foreground: meadow, scree or a lake, sometimes with a few conifers.
  const fg = rng.weighted({ meadow: 0.5, scree: 0.3, none: 0.2 });
  if (fg !== 'none') {
    const top = wavyLine(S, rng, S * rng.range(0.75, 0.95), S * 0.05, 3, 3);
    if (fg === 'meadow') drawGround(c, rng, top, between(rng, [70, 100, 40], [140, 160, 80]), between(rng, [50, 80, 30], [110, 130, 60]), 0.4);
    else drawGround(c, rng, top, between(rng, [110, 105, 95], [165, 155, 140]), between(rng, [80, 75, 70], [130, 120, 110]), 0.6, 14);
    if (rng.chance(0.35)) {
      const fol = foliagePalette(rng, 0.1);
      const ftex = noise2D(S, rng, 16, 16, 2);
      const n = rng.int(1, 5);
      for (let k = 0; k < n; k++) {
        const h = S * rng.range(0.1, 0.3);
        drawConifer(c, rng.range(0, 1) * S, S * rng.range(0.85, 1.05), h, h * 0.45, fol, ftex, sky.horizon, 0);
      }
    }
  }
}

function sceneSea(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.3, 0.6);
  const sky = drawSky(c, rng, hy);
  // Sometimes a distant island or headland on the horizon.
  if (rng.chance(0.3)) {
    const pk = peaksLine(S, rng, hy + 1, hy - S * rng.range(0.03, 0.12), hy, rng.int(1, 2), 0.02);
    drawMountains(c, rng, pk, hy + 1, {
      rock: between(rng, [60, 75, 60], [110, 120, 100]), foot: null, haze: sky.horizon, hazeAmt: rng.range(0.4, 0.7), snow: null, snowCol: [255, 255, 255],
    });
  }
  drawWater(c, rng, hy, {
    deep: between(rng, [10, 45, 80], [50, 110, 150]), waves: rng.range(0.5, 1), mirror: 0, sky,
  });
  // Sun glitter column.
  if (sky.mood === 'sunset' || rng.chance(0.2)) {
    const gx = rng.range(0.2, 0.8) * S, gw = S * rng.range(0.05, 0.15);
    const glint = noise2D(S, rng, 8, 30, 1, 0.5, hy, S);
    const col: RGB = sky.mood === 'sunset' ? [255, 200, 130] : [250, 250, 240];
    for (let y = Math.ceil(hy); y < S; y++) {
      const w = gw * (0.3 + (y - hy) / S);
      for (let x = Math.max(0, Math.floor(gx - w)); x < Math.min(S, Math.ceil(gx + w)); x++) {
        const a = smoothstep(0.6, 0.75, glint[y * S + x]!) * (1 - Math.abs(x - gx) / w);
        if (a > 0) c.blend(x, y, col[0], col[1], col[2], a);
      }
    }
  }
  // Rocky shore in a bottom corner.
  if (rng.chance(0.25)) {
    const left = rng.chance(0.5);
    const top = new Float32Array(S);
    const rough = noise1D(S, rng, 8, 3);
    const reach = rng.range(0.3, 0.6) * S;
    for (let x = 0; x < S; x++) {
      const dx = left ? x : S - 1 - x;
      top[x] = S - Math.max(0, reach - dx) * 0.6 + (rough[x]! - 0.5) * S * 0.08;
    }
    drawGround(c, rng, top, between(rng, [60, 55, 50], [120, 110, 100]), between(rng, [40, 38, 35], [90, 85, 80]), 0.8, 16);
  }
}

function sceneStreet(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.32, 0.55);
  const vx = S * rng.range(0.3, 0.7);
  const sky = drawSky(c, rng, hy);
  const tex = noise2D(S, rng, 10, 10, 3);
  const roadL = vx - S * rng.range(0.35, 0.9), roadR = vx + S * rng.range(0.35, 0.9);
  const asphalt = between(rng, [55, 55, 58], [115, 112, 108]);
  const walk = between(rng, [120, 115, 105], [185, 180, 170]);
  const paint: RGB = rng.chance(0.7) ? [235, 235, 230] : [230, 195, 70];

  // Each side is a row of facades seen in perspective (or open, with trees drawn later).
  // Depth z = 1/t where t is the horizontal distance from the vanishing point relative to the
  // frame edge; equal steps in z are equal world distances along the street.
  interface Block { z1: number; h: number; f: Facade }
  interface Side { buildings: boolean; span: number; drop: number; blocks: Block[] }
  const sides: Side[] = [];
  for (const edge of [0, S]) {
    const span = Math.max(1, Math.abs(vx - edge));
    const blocks: Block[] = [];
    let z = rng.range(0.6, 1.2);
    while (z < 80) {
      z += rng.range(0.4, 2.2) * (S / span) * 0.4 * Math.max(1, z * 0.3);
      blocks.push({ z1: z, h: S * rng.range(0.3, 1.3), f: randomFacade(rng, S * 0.6, sky) });
    }
    sides.push({ buildings: rng.chance(0.75), span, drop: S * rng.range(0.2, 0.5), blocks });
  }
  const [sideL, sideR] = sides as [Side, Side];
  const hazeFar = 30;
  for (let x = 0; x < S; x++) {
    const side = x < vx ? sideL : sideR;
    const t = Math.max(1e-3, Math.abs(x + 0.5 - vx) / side.span);
    const z = 1 / t;
    const yb = hy + side.drop * t;
    let block: Block | undefined;
    let zPrev = 0;
    for (const b of side.blocks) {
      if (z <= b.z1) { block = b; break; }
      zPrev = b.z1;
    }
    const d = (y: number): number => (y + 0.5 - hy) / (S - hy);
    for (let y = 0; y < S; y++) {
      if (y + 0.5 > yb && y + 0.5 > hy) {
        // Ground: road triangle converging to the vanishing point, sidewalks elsewhere.
        const dz = d(y);
        const xl = vx + (roadL - vx) * dz, xr = vx + (roadR - vx) * dz;
        const tv = tex[y * S + x]!;
        if (x >= xl && x < xr) {
          const xc = (xl + xr) / 2, lw = Math.max(0.6, S * 0.012 * dz);
          const dash = fract(2.5 / dz) < 0.5 && Math.abs(x + 0.5 - xc) < lw;
          const edgeLine = Math.abs(x + 0.5 - xl) < lw || Math.abs(x + 0.5 - xr) < lw;
          if (dash || edgeLine) setP(paint, 0.9 + 0.2 * tv);
          else setP(asphalt, 0.85 + 0.3 * tv);
        } else {
          setP(walk, 0.85 + 0.3 * tv);
        }
        const fog = clamp(1 - dz * 3, 0, 1) * 0.5;
        c.put(x, y, lerp(P[0]!, sky.horizon[0], fog), lerp(P[1]!, sky.horizon[1], fog), lerp(P[2]!, sky.horizon[2], fog));
      } else if (side.buildings && block !== undefined && y + 0.5 <= yb) {
        const v = (yb - y - 0.5) / t; // height above the ground in "frame-edge pixels"
        if (v > block.h) continue;
        const u = (z - zPrev) * side.span * 0.4; // distance along the facade, same units
        if (u < S * 0.01) {
          setP(block.f.col, 0.6); // dark seam between neighbouring buildings
        } else {
          facadeColour(block.f, u, block.h - v, tex[y * S + x]!);
        }
        const fog = clamp(z / hazeFar, 0, 0.85);
        c.put(x, y, lerp(P[0]!, sky.horizon[0], fog), lerp(P[1]!, sky.horizon[1], fog), lerp(P[2]!, sky.horizon[2], fog));
      }
    }
  }
  // Trees along open sides, drawn far to near.
  for (const [k, side] of sides.entries()) {
    if (side.buildings && !rng.chance(0.25)) continue;
    const fol = foliagePalette(rng, 0.2);
    const ftex = noise2D(S, rng, 16, 16, 2);
    const dir = k === 0 ? -1 : 1;
    const hs = S * rng.range(0.5, 1.0);
    for (let z = 24; z > 1; z /= rng.range(1.2, 1.6)) {
      const t = 1 / z;
      drawRoundTree(c, rng, vx + dir * side.span * t * 0.85, hy + side.drop * t, hs * t, fol, ftex, sky.horizon, clamp(z / hazeFar, 0, 0.8));
    }
  }
  // Cars, far to near so nearer ones overlap.
  const cars = rng.int(0, 3);
  const ds = Array.from({ length: cars }, () => rng.range(0.15, 0.85)).sort((a, b) => a - b);
  for (const dz of ds) {
    const lane = rng.range(0.25, 0.75);
    const xl = vx + (roadL - vx) * dz, xr = vx + (roadR - vx) * dz;
    const cx = lerp(xl, xr, lane), w = (xr - xl) * 0.22, h = w * 0.6, yb = hy + (S - hy) * dz;
    const body = rng.pick<RGB>([[180, 30, 30], [30, 60, 150], [220, 220, 220], [40, 40, 40], [160, 160, 165], [200, 170, 40]]);
    c.rect(cx - w / 2, yb - h, cx + w / 2, yb, jitter(rng, body, 15));
    c.rect(cx - w * 0.4, yb - h * 0.95, cx + w * 0.4, yb - h * 0.6, [40, 50, 60]);
    c.rect(cx - w / 2, yb - h * 0.1, cx + w / 2, yb, [20, 20, 20]);
  }
}

function sceneDesert(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.3, 0.6);
  const sky = drawSky(c, rng, hy, { clear: 0.6, overcast: 0.05, sunset: 0.15, hazy: 0.2 });
  const sand = between(rng, [180, 135, 85], [235, 195, 145]);
  if (rng.chance(0.3)) {
    // Distant mesa.
    const pk = peaksLine(S, rng, hy + 1, hy - S * rng.range(0.05, 0.15), hy - S * 0.05, 2, 0.01);
    for (let x = 0; x < S; x++) pk.line[x] = Math.max(pk.line[x]!, hy - S * 0.12);
    drawMountains(c, rng, pk, hy + 1, { rock: scaleRGB(sand, 0.7), foot: null, haze: sky.horizon, hazeAmt: 0.45, snow: null, snowCol: sand });
  }
  const layers = rng.int(2, 4);
  const ripples = noise2D(S, rng, 3, 6, 2, 0.5, hy - S * 0.2, S);
  const freq = rng.range(40, 90) / S;
  for (let l = 0; l < layers; l++) {
    const near = l / Math.max(1, layers - 1);
    const crest = wavyLine(S, rng, hy + (S - hy) * near * 0.6, S * lerp(0.04, 0.15, near), rng.range(1, 2.5), 2);
    const col = mixRGB(jitter(rng, sand, 12), sky.horizon, (1 - near) * 0.3);
    fillBelow(c, crest, S, (x, y) => {
      // Lit vs shadowed flank from the crest slope; shading fades away from the crest.
      const xl = Math.max(0, x - 1), xr = Math.min(S - 1, x + 1);
      const slope = (crest[xr]! - crest[xl]!) / 2;
      const below = (y - crest[x]!) / S;
      const k = 1 + clamp(slope * 1.5, -0.35, 0.2) * Math.exp(-below * 8);
      const rip = 1 + 0.06 * Math.sin(y * freq * S * 0.25 + ripples[y * S + x]! * 30) * near;
      setP(col, k * rip);
    });
  }
  // A few dark rocks / scrub.
  const rocks = rng.int(0, 5);
  for (let k = 0; k < rocks; k++) {
    const ry = rng.range(hy + S * 0.05, S), rw = S * rng.range(0.005, 0.03) * (0.5 + (ry - hy) / S);
    const rx = rng.range(0, 1) * S;
    c.rect(rx - rw, ry - rw * 0.7, rx + rw, ry, between(rng, [60, 50, 35], [110, 95, 65]));
  }
}

function sceneField(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.3, 0.6);
  const sky = drawSky(c, rng, hy);
  if (rng.chance(0.5)) {
    // Tree line on the horizon.
    const fol = foliagePalette(rng, 0.15);
    const top = wavyLine(S, rng, hy - S * rng.range(0.02, 0.08), S * 0.02, 16, 3);
    const col = mixRGB(fol.dark, sky.horizon, 0.3);
    fillBelow(c, top, hy + 1, () => setP(col));
  }
  const crop = rng.weighted({ green: 0.4, wheat: 0.3, ploughed: 0.15, meadow: 0.15 });
  const a: RGB =
    crop === 'green' ? between(rng, [60, 110, 30], [130, 175, 70])
    : crop === 'wheat' ? between(rng, [190, 160, 70], [235, 205, 120])
    : crop === 'ploughed' ? between(rng, [90, 65, 45], [140, 105, 75])
    : between(rng, [80, 130, 50], [150, 185, 90]);
  const b: RGB = crop === 'ploughed' ? scaleRGB(a, 0.65) : mixRGB(a, [60, 50, 35], rng.range(0.2, 0.5));
  const rows = crop !== 'meadow' && rng.chance(0.8);
  const vx = S * rng.range(0.1, 0.9);
  const freq = rng.range(10, 30);
  const tex = noise2D(S, rng, 10, 20, 3);
  const wind = noise2D(S, rng, 3, 8, 2, 0.5, hy, S);
  fillBelow(c, flatLine(S, hy), S, (x, y) => {
    const dz = (y + 0.5 - hy) / (S - hy);
    const i = y * S + x;
    let t = 0.5;
    if (rows) {
      // Crop rows: stripes in the ground-plane angle, converging to the vanishing point.
      const ang = (x + 0.5 - vx) / Math.max(0.5, y + 0.5 - hy);
      t = 0.5 + 0.5 * Math.sin(ang * freq) * smoothstep(0.02, 0.3, dz);
    }
    const k = 0.85 + 0.2 * tex[i]! + 0.15 * (wind[i]! - 0.5);
    mixP(a, b, t * 0.8, k);
    // Aerial perspective: the far field fades towards the horizon colour.
    const h = (1 - dz) * (1 - dz) * 0.35;
    P[0] = lerp(P[0]!, sky.horizon[0], h); P[1] = lerp(P[1]!, sky.horizon[1], h); P[2] = lerp(P[2]!, sky.horizon[2], h);
  });
  if (crop === 'meadow') {
    // Flowers: scattered dots, denser (smaller) towards the horizon.
    const flower = rng.pick<RGB>([[235, 220, 60], [230, 230, 235], [200, 60, 60], [180, 110, 200]]);
    const n = rng.int(20, 120);
    for (let k = 0; k < n; k++) {
      const y = hy + (S - hy) * Math.pow(rng.next(), 0.6), r = Math.max(0.5, S * 0.008 * ((y - hy) / (S - hy)));
      const x = rng.range(0, 1) * S;
      c.rect(x - r, y - r, x + r, y + r, flower, 0.85);
    }
  }
  if (rng.chance(0.25)) {
    const fol = foliagePalette(rng, 0.1);
    drawRoundTree(c, rng, rng.range(0.1, 0.9) * S, hy + S * rng.range(0.02, 0.2), S * rng.range(0.15, 0.4), fol, tex, sky.horizon, 0.1);
  }
}

function sceneLake(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.4, 0.65);
  const sky = drawSky(c, rng, hy);
  // Backdrop: mountains or forested hills, which the still water mirrors.
  if (rng.chance(0.5)) {
    const pk = peaksLine(S, rng, hy, hy - S * rng.range(0.15, 0.35), hy - S * 0.05, rng.int(1, 3), 0.04);
    drawMountains(c, rng, pk, hy + 1, {
      rock: between(rng, [80, 80, 80], [140, 130, 120]), foot: between(rng, [40, 70, 35], [90, 115, 60]), haze: sky.horizon,
      hazeAmt: rng.range(0.15, 0.45), snow: rng.chance(0.4) ? hy - S * rng.range(0.15, 0.3) : null, snowCol: [238, 240, 245],
    });
  } else {
    const fol = foliagePalette(rng, 0.2);
    const top = wavyLine(S, rng, hy - S * rng.range(0.05, 0.18), S * 0.05, 5, 4);
    const tex = noise2D(S, rng, 20, 12, 2, 0.5, minOf(top), hy + 1);
    fillBelow(c, top, hy + 1, (x, y) => mixP(fol.dark, fol.light, tex[y * S + x]! * 0.8));
  }
  drawWater(c, rng, hy, {
    deep: between(rng, [20, 50, 60], [60, 95, 110]), waves: rng.range(0, 0.25), mirror: rng.range(0.55, 0.9), sky,
  });
  // Shore or reeds in the foreground.
  if (rng.chance(0.4)) {
    const top = wavyLine(S, rng, S * rng.range(0.85, 0.98), S * 0.04, 3, 3);
    drawGround(c, rng, top, between(rng, [90, 85, 60], [150, 140, 100]), between(rng, [70, 65, 45], [120, 110, 80]), 0.6, 14);
  }
  if (rng.chance(0.3)) {
    const reed = between(rng, [50, 70, 30], [110, 120, 60]);
    const n = rng.int(10, 40);
    for (let k = 0; k < n; k++) {
      const x = rng.range(0, 1) * S, w = Math.max(0.7, S * 0.006);
      c.rect(x, S - S * rng.range(0.05, 0.25), x + w, S, reed);
    }
  }
}

function sceneBeach(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.28, 0.5);
  const sky = drawSky(c, rng, hy, { clear: 0.6, overcast: 0.15, sunset: 0.15, hazy: 0.1 });
  drawWater(c, rng, hy, { deep: between(rng, [20, 90, 120], [70, 150, 170]), waves: rng.range(0.3, 0.8), mirror: 0, sky });
  const shore = wavyLine(S, rng, hy + (S - hy) * rng.range(0.2, 0.55), S * 0.04, rng.range(2, 5), 3);
  const sand = between(rng, [190, 165, 120], [240, 220, 180]);
  const wet = scaleRGB(sand, rng.range(0.6, 0.8));
  const tex = noise2D(S, rng, 12, 12, 3, 0.5, minOf(shore), S);
  const foamW = S * rng.range(0.01, 0.03);
  fillBelow(c, shore, S, (x, y) => {
    const below = y - shore[x]!;
    mixP(wet, sand, smoothstep(0, S * 0.12, below), 0.9 + 0.2 * tex[y * S + x]!);
    const f = smoothstep(foamW, 0, below);
    P[0] = lerp(P[0]!, 248, f); P[1] = lerp(P[1]!, 248, f); P[2] = lerp(P[2]!, 245, f);
  });
  // Umbrellas / towels: small saturated shapes.
  const n = rng.int(0, 4);
  for (let k = 0; k < n; k++) {
    const x = rng.range(0, 1) * S, y = rng.range(shore[clamp(Math.floor(x), 0, S - 1)]! + S * 0.08, S), w = S * 0.04 * (0.5 + (y - hy) / S);
    c.rect(x - w, y - w * 0.4, x + w, y, rng.pick<RGB>([[220, 50, 50], [40, 90, 200], [240, 200, 40], [250, 250, 250]]));
  }
}

function sceneSky(c: Canvas, rng: Rng): void {
  const S = c.size;
  const hy = S * rng.range(0.8, 1.15);
  drawSky(c, rng, hy, { clear: 0.45, overcast: 0.2, sunset: 0.25, hazy: 0.1 }, rng.range(0, 0.4));
  // Low silhouette of land, trees or a town at the bottom edge.
  if (hy < S) {
    const top = wavyLine(S, rng, hy, S * rng.range(0.01, 0.05), rng.range(4, 20), 3);
    const col = between(rng, [20, 25, 25], [70, 80, 70]);
    fillBelow(c, top, S, () => setP(col));
  }
  // Birds: small dark chevrons.
  if (rng.chance(0.3)) {
    const n = rng.int(2, 9);
    for (let k = 0; k < n; k++) {
      const x = rng.range(0.1, 0.9) * S, y = rng.range(0.1, 0.7) * S, w = Math.max(1, S * 0.015);
      c.rect(x - w, y - w * 0.3, x, y + w * 0.1, [30, 30, 35]);
      c.rect(x, y - w * 0.3, x + w, y + w * 0.1, [30, 30, 35]);
    }
  }
}

function sceneCanyon(c: Canvas, rng: Rng): void {
  const S = c.size;
  const sky = drawSky(c, rng, S * rng.range(0.3, 0.5), { clear: 0.6, overcast: 0.1, sunset: 0.15, hazy: 0.15 });
  // Two rock walls leave a V of sky that widens upwards; strata are horizontal bands warped by noise.
  const gapX = rng.range(0.3, 0.7) * S;
  const floorY = S * rng.range(0.6, 0.95);
  const gapW = S * rng.range(0.0, 0.15);
  const open = rng.range(0.2, 0.9);
  const warp = noise2D(S, rng, 4, 4, 3);
  const tex = noise2D(S, rng, 12, 6, 3);
  const palette: RGB[] = [];
  const base = between(rng, [160, 75, 45], [215, 135, 90]);
  for (let k = 0; k < 7; k++) palette.push(jitter(rng, mixRGB(base, [230, 200, 160], rng.range(0, 0.45)), 18));
  const band = S * rng.range(0.03, 0.08);
  const edgeL = noise1D(S, rng, 8, 3), edgeR = noise1D(S, rng, 8, 3);
  const litLeft = rng.chance(0.5);
  for (let y = 0; y < S; y++) {
    const half = gapW / 2 + open * Math.max(0, floorY - y);
    const l = gapX - half + (edgeL[y]! - 0.5) * S * 0.1;
    const r = gapX + half + (edgeR[y]! - 0.5) * S * 0.1;
    for (let x = 0; x < S; x++) {
      if (x + 0.5 > l && x + 0.5 < r) continue; // sky shows through the gap
      const i = y * S + x;
      const s = (y + (warp[i]! - 0.5) * S * 0.25) / band;
      const col = palette[((Math.floor(s) % palette.length) + palette.length) % palette.length]!;
      const shade = (x < gapX) === litLeft ? 1.05 : 0.7;
      setP(col, shade * (0.8 + 0.35 * tex[i]!));
      c.put(x, y, P[0]!, P[1]!, P[2]!);
    }
  }
  // River or sandy floor at the bottom of the gorge.
  if (floorY < S * 0.9 && rng.chance(0.5)) {
    drawWater(c, rng, floorY, { deep: between(rng, [40, 90, 80], [90, 140, 120]), waves: 0.3, mirror: 0.4, sky });
  } else if (rng.chance(0.5)) {
    drawGround(c, rng, wavyLine(S, rng, Math.max(floorY, S * 0.85), S * 0.02, 4, 2), scaleRGB(base, 0.9), scaleRGB(base, 0.75), 0.5, 14);
  }
}

interface SceneDef {
  name: string;
  draw: (c: Canvas, rng: Rng) => void;
}

/**
 * Order matters: `classes: n` uses the first n. The first six mirror the classic Intel scene
 * benchmark (buildings, forest, glacier, mountain, sea, street), including its hard pairs
 * (glacier/mountain, buildings/street, sea/glacier). New classes must be appended, never
 * inserted, or seeds and file contents of existing datasets change.
 */
const SCENES: readonly SceneDef[] = [
  { name: 'buildings', draw: sceneBuildings },
  { name: 'forest', draw: sceneForest },
  { name: 'glacier', draw: sceneGlacier },
  { name: 'mountain', draw: sceneMountain },
  { name: 'sea', draw: sceneSea },
  { name: 'street', draw: sceneStreet },
  { name: 'desert', draw: sceneDesert },
  { name: 'field', draw: sceneField },
  { name: 'lake', draw: sceneLake },
  { name: 'beach', draw: sceneBeach },
  { name: 'sky', draw: sceneSky },
  { name: 'canyon', draw: sceneCanyon },
];

export const SYNTHETIC_CLASS_NAMES: readonly string[] = Object.freeze(SCENES.map((s) => s.name));

// ---------------------------------------------------------------------------------------------
// Camera: global photometric variation + sensor grain, then quantise to bytes
// ---------------------------------------------------------------------------------------------

let GRAIN: Uint32Array | undefined;
/**
 * Fixed table of random words, read from a random start per image: a table lookup per pixel
 * is cheaper than a PRNG step. Its length is prime so the pattern never lines up with rows.
 */
function grainTable(): Uint32Array {
  if (GRAIN === undefined) {
    const rng = new Rng(0x6a09e667);
    GRAIN = new Uint32Array(65521);
    for (let k = 0; k < GRAIN.length; k++) GRAIN[k] = rng.u32();
  }
  return GRAIN;
}

/**
 * Random per-image "camera" transform. This is the main reason a mean-colour classifier can't
 * solve the dataset: exposure, white balance, saturation and fog shift every class's colours
 * across each other's ranges while leaving the spatial structure intact.
 */
function finish(c: Canvas, rng: Rng, grain: Rng): Buffer {
  const S = c.size;
  const d = c.d;
  const exposure = rng.range(0.7, 1.25);
  const g0 = 1 + rng.range(-0.1, 0.1), g1 = 1 + rng.range(-0.06, 0.06), g2 = 1 + rng.range(-0.1, 0.1);
  const sat = rng.range(0.6, 1.3);
  const contrast = rng.range(0.8, 1.2);
  const fog = rng.chance(0.25) ? rng.range(0.05, 0.35) : 0;
  const fogC = rng.range(170, 225);
  const vig = rng.range(0, 0.5);
  const sigma = rng.range(1.5, 6.5);
  // out = ((mix(px, fog) -> saturation) * exposure * vignette * gain - 128) * contrast + 128 + grain,
  // with everything constant folded out of the pixel loop.
  const keep = 1 - fog, fogAdd = fogC * fog;
  const k0 = exposure * g0 * contrast, k1 = exposure * g1 * contrast, k2 = exposure * g2 * contrast;
  const offset = 128 * (1 - contrast);
  const lumaGrain = (sigma * 1.7) / 255, chromaGrain = (sigma * 0.6) / 255;
  const table = grainTable();
  let gi = grain.u32() % table.length;
  // Uint8ClampedArray rounds (half to even) and clamps natively: 3x faster than Math.round + clamp.
  const out = new Uint8ClampedArray(S * S * 3);
  for (let y = 0; y < S; y++) {
    const dy = (y + 0.5) / S - 0.5;
    for (let x = 0; x < S; x++) {
      const dx = (x + 0.5) / S - 0.5;
      const i = (y * S + x) * 3;
      let r = d[i]! * keep + fogAdd, g = d[i + 1]! * keep + fogAdd, b = d[i + 2]! * keep + fogAdd;
      const l = (0.299 * r + 0.587 * g + 0.114 * b) * (1 - sat);
      r = l + r * sat; g = l + g * sat; b = l + b * sat;
      const v = 1 - vig * (dx * dx + dy * dy) * 2;
      // One 32-bit word per pixel: two bytes make triangular luminance grain, two make chroma grain.
      const h = table[gi]!;
      if (++gi === table.length) gi = 0;
      const ln = ((h & 0xff) + ((h >>> 8) & 0xff) - 255) * lumaGrain + offset;
      out[i] = r * v * k0 + ln + (((h >>> 16) & 0xff) - 127.5) * chromaGrain;
      out[i + 1] = g * v * k1 + ln;
      out[i + 2] = b * v * k2 + ln + ((h >>> 24) - 127.5) * chromaGrain;
    }
  }
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}
