// The intel6 training images the decode benches read: ../shared/datasets/intel6/train, in a
// fixed order (class folders, then files, sorted) so every run measures the same images.
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const INTEL6_TRAIN = resolve(import.meta.dirname, '..', '..', 'shared', 'datasets', 'intel6', 'train');

/** The first `count` training images' paths, class by class in sorted order. */
export function intel6TrainFiles(count) {
  return readdirSync(INTEL6_TRAIN)
    .sort()
    .flatMap((c) =>
      readdirSync(join(INTEL6_TRAIN, c))
        .sort()
        .map((f) => join(INTEL6_TRAIN, c, f)),
    )
    .slice(0, count);
}
