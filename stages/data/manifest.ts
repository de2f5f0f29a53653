// The dataset manifest: what a `dataset` stage outputs and `decode` reads. Class list, and per
// split the images with their label (null in an unlabelled test split) and content digest.
//
// The manifest is an artifact, so it must not depend on where the project or the cache is on
// this machine: image paths are relative to a root that is either the dataset's `root` param as
// the pipeline writes it (resolved against the project) or the store's files folder beside
// the cache (StageStore.filesDir: the synthetic set). Were they project-relative, `--cache elsewhere` or a checkout in another
// folder would change the manifest's digest, and so every key downstream of it.
import { posix, resolve, sep } from 'node:path';
import type { Digest } from '../../cache/canonical.js';

export interface ManifestEntry {
  /** Stable id within the split: the contest's image_id, or the path under the split folder. */
  id: string;
  /** Path of the image file relative to the manifest's root, with '/' separators. */
  path: string;
  label: number | null;
  sha256: Digest;
}

/** Where entry paths start: the project (`path` as the pipeline gives it) or the cache's folder. */
export interface ManifestRoot {
  in: 'project' | 'cache';
  path: string;
}

export interface Manifest {
  format: string;
  root: ManifestRoot;
  classes: string[];
  splits: Record<string, ManifestEntry[]>;
}

/** The image file of `entry` on this machine; `filesDir` is the store's (StageStore.filesDir). */
export function imageFile(manifest: Manifest, entry: ManifestEntry, projectDir: string, filesDir: string): string {
  const base = manifest.root.in === 'cache' ? filesDir : projectDir;
  return resolve(base, manifest.root.path, entry.path);
}

/** How reports name an entry's file: the same on every machine. */
export function imageLabel(manifest: Manifest, entry: ManifestEntry): string {
  return posix.join(manifest.root.in === 'cache' ? '(cache)' : '', manifest.root.path.split(sep).join('/'), entry.path);
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
