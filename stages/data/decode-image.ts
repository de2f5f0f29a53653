// One image of the `decode` stage, start to finish: read the file, check it is the file the
// dataset stage listed, decode it (EXIF orientation, sRGB 8-bit RGB, resize, centre crop) and
// encode it as a decoded-image blob. Plain JPEGs go through libjpeg-turbo and the wasm resize
// (jpeg-turbo.ts, resize.ts): with the default `decoder: "exact"` those that need no shrink
// (their bytes are then sharp's: the same accurate IDCT and fancy upsampling, and the same wasm
// upscale the sharp path applies after libvips), with `decoder: "fast"` all of them; everything
// else, and every image with `decoder: "sharp"`, through sharp. Runs inside the decode worker
// threads (decode-workers.ts), so it is a plain function of its arguments.
import { readFileSync } from 'node:fs';

import { sha256 } from '../../cache/canonical.js';
import type { DecodeImageParams } from '../decode.js';
import { encodeDecoded } from './decoded.js';
import * as turbo from './jpeg-turbo.js';
import { resizeSource, resizeU8, sourceBuffer } from './resize.js';

type Pixels = { data: Uint8Array; width: number; height: number };

/** The image is unusable; the message says why (the stage lists it, or skips it). */
export class BadImage extends Error {}

type Sharp = typeof import('sharp').default;
let sharpModule: Sharp | undefined;

/**
 * sharp, loaded on first use: importing it costs ~250 ms of CPU per worker thread, which the
 * libjpeg-turbo path never needs.
 */
async function loadSharp(): Promise<Sharp> {
  if (!sharpModule) {
    const sharp = (await import('sharp')).default;
    // Many small images: parallelism across images (the worker threads), not inside one. The
    // operation cache only costs time: no two images share an operation.
    sharp.concurrency(1);
    sharp.cache(false);
    sharpModule = sharp;
  }
  return sharpModule;
}

/** The encoded blob (header + raw RGB), its size and which decoder ran. Throws BadImage. */
export async function decodeImage(
  path: string,
  expectedSha256: string,
  p: DecodeImageParams,
): Promise<{ blob: Buffer; width: number; height: number; via: 'libjpeg-turbo' | 'sharp' }> {
  const bytes = readImage(path);
  if (bytes.length === 0) throw new BadImage('empty file (0 bytes)');
  if (sha256(bytes) !== expectedSha256)
    throw new BadImage('file changed since the dataset stage listed it (rerun the dataset stage)');
  const jpeg = bytes[0] === 0xff && bytes[1] === 0xd8;
  const fast = p.decoder !== 'sharp' && jpeg ? decodeFast(bytes, p) : undefined;
  if (!fast && jpeg) {
    // libjpeg's warnings are verdicts on the sharp path too: libvips does not see them all
    // (jpeg-turbo.ts), and the two decoders must reject the same files for the same reason.
    const warning = turbo.jpegWarning(bytes, p.maxPixels);
    if (warning) throw new BadImage(warning);
  }
  let { data, width, height } = fast ?? (await decodeWithSharp(bytes, p, jpeg));
  if (p.centerCrop) ({ data, width, height } = centreCrop(data, width, height, p.centerCrop));
  return { blob: encodeDecoded({ data, width, height }), width, height, via: fast ? 'libjpeg-turbo' : 'sharp' };
}

/**
 * libjpeg-turbo + the wasm resize, or undefined when the image or the params need sharp: with
 * `decoder: "exact"` also when the image would be shrunk, as only sharp gives sharp's shrinks.
 * With "fast", a shrink by 2× or more starts inside the IDCT (1/2, 1/4 or 1/8, never below the
 * target), as sharp's shrink-on-load does. The pixels are decoded into the resize kernel's memory and
 * returned as a view on it: valid until the next decode, so the caller copies them (into the
 * blob) before anything else runs.
 */
function decodeFast(bytes: Buffer, p: DecodeImageParams): Pixels | undefined {
  if (p.size || p.kernel !== 'linear') return undefined;
  const header = turbo.readJpegHeader(bytes);
  if (!header || !turbo.fastPathApplies(header, p.maxPixels)) return undefined;
  // sharp's pipeline resizes with withoutEnlargement: an image whose shorter side is at most
  // shortSide leaves libvips as decoded, and the sharp path upscales it with resizeU8, the code
  // resizeSource runs here.
  if (p.decoder === 'exact' && p.shortSide && Math.min(header.width, header.height) > p.shortSide) return undefined;
  const factor = p.shortSide ? turbo.dctScale(header.width, header.height, p.shortSide) : ([1, 1] as [number, number]);
  let img;
  try {
    img = turbo.decodeJpegRgb(
      bytes,
      sourceBuffer(turbo.scaled(header.width, factor) * turbo.scaled(header.height, factor) * 3),
      factor,
    );
  } catch (err) {
    if (err instanceof turbo.JpegWarning) throw new BadImage(err.message);
    throw err;
  }
  if (!img || !p.shortSide) return img;
  // The target size comes from the stored size, as on the sharp path, not from the scaled one.
  const [W, H] = shortSideSize(header.width, header.height, p.shortSide);
  return W === img.width && H === img.height
    ? img
    : { data: resizeSource(img.width, img.height, W, H), width: W, height: H };
}

async function decodeWithSharp(bytes: Buffer, p: DecodeImageParams, jpeg: boolean): Promise<Pixels> {
  const sharp = await loadSharp();
  // JPEGs: libjpeg's warnings fail the image (what jpegWarning cannot check, e.g. where the
  // library is missing, libvips still does). Other formats stop at truncation: their libraries'
  // warnings are mostly harmless metadata complaints (libpng's "iCCP: known incorrect sRGB
  // profile" is common in real datasets) and are not what this stage judges.
  let pipeline = sharp(bytes, {
    failOn: jpeg ? 'warning' : 'truncated',
    limitInputPixels: p.maxPixels,
    sequentialRead: true,
  }).autoOrient();
  if (p.size) pipeline = pipeline.resize({ width: p.size[0], height: p.size[1], fit: p.fit, kernel: p.kernel });
  // With the linear kernel, libvips only shrinks (where shrink-on-load makes it fast) and
  // upscales are done by resizeU8 below: libvips' upscale was most of the cost on small images.
  else if (p.shortSide)
    pipeline = pipeline.resize({
      width: p.shortSide,
      height: p.shortSide,
      fit: 'outside',
      kernel: p.kernel,
      withoutEnlargement: p.kernel === 'linear',
    });
  let out;
  try {
    out = await pipeline
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    // The first line is this image's error; libvips appends the warnings its thread collected
    // before (other images' among them), so what follows depends on which worker ran what.
    throw new BadImage(
      ((err as Error).message.split('\n').find((line) => line.trim()) ?? 'sharp failed').replace(/\s+/g, ' ').trim(),
    );
  }
  const { width, height } = out.info;
  if (out.info.channels !== 3) throw new BadImage(`decoded to ${out.info.channels} channels, expected 3`);
  if (!p.size && p.shortSide && Math.min(width, height) < p.shortSide) {
    const [W, H] = shortSideSize(width, height, p.shortSide);
    return { data: resizeU8(out.data, width, height, W, H), width: W, height: H };
  }
  return { data: out.data, width, height };
}

/** Width and height with the shorter side `short` and the aspect ratio kept. */
function shortSideSize(width: number, height: number, short: number): [number, number] {
  const s = short / Math.min(width, height);
  return width <= height ? [short, Math.round(height * s)] : [Math.round(width * s), short];
}

/**
 * Synchronous on purpose: images are small and usually in the page cache, and fs/promises'
 * readFile costs several thread-pool round trips each, competing with sharp for those threads.
 */
function readImage(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new BadImage((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file is missing' : (err as Error).message);
  }
}

function centreCrop(
  data: Uint8Array,
  width: number,
  height: number,
  size: number,
): { data: Uint8Array; width: number; height: number } {
  if (size > width || size > height)
    throw new BadImage(`centerCrop ${size} is larger than the resized image ${width}×${height}`);
  const x0 = (width - size) >> 1;
  const y0 = (height - size) >> 1;
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++)
    out.set(data.subarray(((y0 + y) * width + x0) * 3, ((y0 + y) * width + x0 + size) * 3), y * size * 3);
  return { data: out, width: size, height: size };
}
