// Decoded images as cache blobs: raw RGB uint8 (HWC) behind a 12-byte header, so training and
// prediction read pixels straight from LMDB without decoding a JPEG again.
import type { Digest } from '../../cache/canonical.js';
import type { RawImage } from './augment/index.js';

const MAGIC = 0x42475250; // 'PRGB' little-endian
const HEADER = 12;

export function encodeDecoded(img: RawImage): Buffer {
  const out = Buffer.allocUnsafe(HEADER + img.data.length);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(img.width, 4);
  out.writeUInt32LE(img.height, 8);
  out.set(img.data, HEADER);
  return out;
}

/** A view on the blob's bytes (no copy). */
export function decodeDecoded(blob: Uint8Array): RawImage {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (blob.byteLength < HEADER || view.getUint32(0, true) !== MAGIC) throw new Error('not a decoded-image blob');
  const width = view.getUint32(4, true);
  const height = view.getUint32(8, true);
  if (blob.byteLength !== HEADER + width * height * 3)
    throw new Error(`decoded-image blob has ${blob.byteLength - HEADER} bytes, expected ${width}×${height}×3`);
  return { width, height, data: blob.subarray(HEADER) };
}

/** What `decode` outputs: per split the images with their label and decoded blob. */
export interface DecodedSet {
  classes: string[];
  splits: Record<string, Array<{ id: string; label: number | null; blob: Digest; width: number; height: number }>>;
}
