// The dataset manifest: what a `dataset` stage outputs and `decode` reads. Class list, and per
// split the images with their label (null in an unlabelled test split) and content digest.
import type { Digest } from '../../cache/canonical.js';

export interface ManifestEntry {
  /** Stable id within the split: the contest's image_id, or the path under the split folder. */
  id: string;
  /** Project-relative (or absolute, for data outside the project) path of the image file. */
  path: string;
  label: number | null;
  sha256: Digest;
}

export interface Manifest {
  format: string;
  classes: string[];
  splits: Record<string, ManifestEntry[]>;
}

const MAGIC: Array<[string, (b: Buffer) => boolean]> = [
  ['jpeg', (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ['png', (b) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))],
  ['gif', (b) => b.subarray(0, 4).toString('latin1') === 'GIF8'],
  ['webp', (b) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP'],
  ['bmp', (b) => b.subarray(0, 2).toString('latin1') === 'BM'],
  ['tiff', (b) => ['II*\0', 'MM\0*'].includes(b.subarray(0, 4).toString('latin1'))],
  ['avif/heif', (b) => b.subarray(4, 8).toString('latin1') === 'ftyp'],
];

/** The image format a file's first bytes announce, or undefined for anything else. */
export function sniffImage(head: Buffer): string | undefined {
  return MAGIC.find(([, test]) => test(head))?.[0];
}

export const IMAGE_EXTENSIONS = /\.(jpe?g|png|gif|webp|bmp|tiff?|avif|heic|heif)$/i;
