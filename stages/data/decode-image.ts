// One image of the `decode` stage, start to finish: read the file, check it is the file the
// dataset stage listed, decode with sharp (EXIF orientation, sRGB 8-bit RGB, resize, centre crop)
// and encode it as a decoded-image blob. Runs inside the decode worker threads
// (decode-workers.ts), so it is a plain function of its arguments.
import { readFileSync } from 'node:fs';

import sharp from 'sharp';

import { sha256 } from '../../cache/canonical.js';
import { encodeDecoded } from './decoded.js';
import { resizeBilinearU8 } from './resize.js';

export interface DecodeImageParams {
  shortSide: number | null;
  size: [number, number] | null;
  fit: 'cover' | 'contain' | 'fill';
  centerCrop: number | null;
  kernel: 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3';
  maxPixels: number;
}

/** The image is unusable; the message says why (the stage lists it, or skips it). */
export class BadImage extends Error {}

// Many small images: parallelism across images (the worker threads), not inside one. The
// operation cache only costs time: no two images share an operation.
sharp.concurrency(1);
sharp.cache(false);

/** The encoded blob (header + raw RGB) and its size. Throws BadImage. */
export async function decodeImage(path: string, expectedSha256: string, p: DecodeImageParams): Promise<{ blob: Buffer; width: number; height: number }> {
  const bytes = readImage(path);
  if (bytes.length === 0) throw new BadImage('empty file (0 bytes)');
  if (sha256(bytes) !== expectedSha256) throw new BadImage('file changed since the dataset stage listed it (rerun the dataset stage)');
  let pipeline = sharp(bytes, { failOn: 'truncated', limitInputPixels: p.maxPixels, sequentialRead: true }).autoOrient();
  if (p.size) pipeline = pipeline.resize({ width: p.size[0], height: p.size[1], fit: p.fit, kernel: p.kernel });
  // With the linear kernel, libvips only shrinks (where shrink-on-load makes it fast) and
  // upscales are done in JS below: libvips' upscale was most of the cost on small images.
  else if (p.shortSide) pipeline = pipeline.resize({ width: p.shortSide, height: p.shortSide, fit: 'outside', kernel: p.kernel, withoutEnlargement: p.kernel === 'linear' });
  let out;
  try {
    out = await pipeline.toColourspace('srgb').removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new BadImage((err as Error).message.replace(/\s+/g, ' ').trim());
  }
  let { width, height } = out.info;
  let data: Uint8Array = out.data;
  if (out.info.channels !== 3) throw new BadImage(`decoded to ${out.info.channels} channels, expected 3`);
  if (!p.size && p.shortSide && Math.min(width, height) < p.shortSide) {
    const s = p.shortSide / Math.min(width, height);
    const [W, H] = width <= height ? [p.shortSide, Math.round(height * s)] : [Math.round(width * s), p.shortSide];
    data = resizeBilinearU8(data, width, height, W, H);
    [width, height] = [W, H];
  }
  if (p.centerCrop) ({ data, width, height } = centreCrop(data, width, height, p.centerCrop));
  return { blob: encodeDecoded({ data, width, height }), width, height };
}

/**
 * Synchronous on purpose: images are small and usually in the page cache, and fs/promises'
 * readFile costs several thread-pool round trips each, competing with sharp for those threads.
 */
function readImage(path: string): Buffer {
  try { return readFileSync(path); } catch (err) {
    throw new BadImage((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file is missing' : (err as Error).message);
  }
}

function centreCrop(data: Uint8Array, width: number, height: number, size: number): { data: Uint8Array; width: number; height: number } {
  if (size > width || size > height) throw new BadImage(`centerCrop ${size} is larger than the resized image ${width}×${height}`);
  const x0 = (width - size) >> 1;
  const y0 = (height - size) >> 1;
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) out.set(data.subarray(((y0 + y) * width + x0) * 3, ((y0 + y) * width + x0 + size) * 3), y * size * 3);
  return { data: out, width: size, height: size };
}
