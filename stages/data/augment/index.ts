// Deterministic training-time augmentation on raw RGB uint8 images (HWC), producing NHWC float32
// batches in [0,1] for the model. Plain typed-array loops: this runs on the training process's CPU
// between steps, so it has to be a small, predictable cost (no tfjs kernels, no sharp round trips).
//
// Design:
// - Every random choice for sample `index` in `epoch` comes from one PRNG seeded by a hash of
//   (seed, epoch, index). A sample's augmentation therefore does not depend on batch composition,
//   worker count or iteration order, and a rerun reproduces the exact same floats.
// - All geometry (scale jitter / upscaling, random-resized-crop, rotation, shear, aspect change,
//   crop offset, mirror) is folded into ONE affine map from output pixel to source position, which
//   is sampled once per output pixel (bilinear, constant fill outside the source). When that map is
//   an integer translation, optionally mirrored (levels 0 and 1), a plain copy is used instead, so
//   those levels reproduce source bytes exactly (value/255) and cost almost nothing.
// - Colour jitter (MXNet's HSL shift) is a second, in-place pass over each output row right after
//   it is written (still in L1 cache), so it adds arithmetic but no extra trip through memory.
//   Like MXNet it runs after the warp, so the fill colour is jittered too.
//
// MXNet reference semantics (example/image-classification/common/data.py `set_data_aug_level`
// and src/io/image_aug_default.cc `DefaultImageAugmenter::Process`):
//   level 1: rand_crop + rand_mirror; level 2: + random_h 36, random_s 50, random_l 50;
//   level 3: + max_rotate_angle 10, max_shear_ratio 0.1, max_aspect_ratio 0.25; fill_value 127.
// There the affine warp keeps the (scaled) image size as its canvas and rotates about the centre,
// then a crop of the output size is cut from that canvas, so rotated corners show the fill value.
// The colour step converts to OpenCV 8-bit HLS (H in 0..180, i.e. 2 degrees per unit; L and S in
// 0..255), adds ONE random offset per image per channel, clamps, and converts back.
//
// Units chosen here (kept identical to MXNet's so its numbers can be copied unchanged):
//   hue        — OpenCV 8-bit hue units, 1 unit = 2 degrees. `hue: 36` (level 2) means a shift
//                uniform in ±36 units = ±72 degrees, exactly what MXNet's random_h=36 does.
//                For ±36 degrees use `hue: 18`.
//   saturation — additive offset on the 0..255 HLS saturation scale (±50 → ±0.196 on a 0..1 scale).
//   lightness  — additive offset on the 0..255 HLS lightness scale.
// Deliberate differences from MXNet (documented, all small):
//   - offsets are continuous floats, not truncated to int, and the maths is in float (no 8-bit
//     HLS quantisation);
//   - hue wraps around the colour circle instead of being clamped to [0,180] (MXNet's clamp makes
//     reds stick at the ends of the range);
//   - achromatic pixels (r = g = b) keep saturation 0: their hue is undefined and OpenCV reports 0
//     (red), so MXNet's additive saturation tints greys and whites red. Here greys stay grey;
//   - rotation angle is continuous (MXNet draws an integer number of degrees);
//   - pixels outside the source get a hard-edged fill (no blending with the fill across the edge);
//     positions inside the image's pixel area but past the outermost pixel centres replicate the
//     edge pixel, so pure scaling never darkens borders with the fill;
//   - the mirror is drawn from the same per-sample PRNG (MXNet draws it in the iterator).
//
// Source smaller than the crop: the image is scaled UP (bilinear, preserving aspect ratio) so its
// shorter side equals the crop, rather than padded with fill — padding would teach the model that
// small images come with grey borders. Scale jitter is likewise clamped so the scaled image always
// covers the crop.
//
// Downscaling (scale jitter < 1, or a random-resized-crop region much larger than the crop) is plain
// bilinear with no prefilter, which aliases beyond ~2x reduction. The cache is expected to hold
// images near training resolution (e.g. shorter side 256 for crop 224), where this is irrelevant.
//
// Layout: ./policy.ts (AugmentPolicy, levels, validation), ../random.ts (the per-sample PRNG),
// ./geometry.ts (affine maps and the per-sample plan), ./sample.ts (integer copy, bilinear warp,
// edge sampling), ./colour.ts (HSL jitter), ./image.ts (RawImage and buffer checks); this file is
// the public API.

import { planSample } from './geometry.js';
import { validateImage, validateOut, type RawImage } from './image.js';
import { policyForLevel, validatePolicy, type AugmentPolicy } from './policy.js';
import { hashInts, Rng, STREAM } from '../random.js';
import { render } from './sample.js';

export type { RawImage } from './image.js';
export type { AugmentLevel, AugmentPolicy } from './policy.js';
export { policyForLevel, validatePolicy };

/**
 * The PRNG for one sample: depends on (seed, epoch, index) only, so augmentation does not depend
 * on batch composition or order.
 */
export function sampleRng(seed: number, epoch: number, index: number): () => number {
  for (const [name, n] of [
    ['seed', seed],
    ['epoch', epoch],
    ['index', index],
  ] as const) {
    if (!Number.isSafeInteger(n)) throw new RangeError(`${name} must be a safe integer, got ${n}`);
  }
  const rng = new Rng(hashInts(STREAM.augment, seed, epoch, index));
  return () => rng.next();
}

/**
 * Augments one sample into `out[outOffset .. outOffset + crop·crop·3)` (HWC, [0,1]). The result
 * depends only on (img, policy, seed, epoch, index).
 */
export function augmentSample(
  img: RawImage,
  policy: AugmentPolicy,
  seed: number,
  epoch: number,
  index: number,
  out: Float32Array,
  outOffset: number,
): void {
  validatePolicy(policy);
  validateImage(img);
  validateOut(out, outOffset, policy.crop);
  const plan = planSample(img, policy, sampleRng(seed, epoch, index));
  const colour =
    plan.dHue !== 0 || plan.dSat !== 0 || plan.dLight !== 0
      ? { dHue: plan.dHue, dSat: plan.dSat, dLight: plan.dLight }
      : null;
  render(img, plan.map, policy.crop, policy.fill, { out, off: outOffset, colour });
}

/**
 * Augments `imgs[k]` as dataset sample `indices[k]` (the dataset index, not the batch position, so
 * a sample's augmentation is independent of shuffling and batch size). Returns NHWC
 * [n, crop, crop, 3] float32 in [0,1].
 *
 * `out` (optional, length ≥ n·crop·crop·3) is filled and returned instead of a new array. A fresh
 * batch at crop 224 is ~19 MB for 32 images, and zeroing/faulting that in costs about as much as
 * level-1 augmentation itself, so a loader that double-buffers should pass its buffer. Only reuse
 * a buffer once nothing references it any more: tfjs tensors built from a Float32Array may keep
 * that very array as their storage.
 */
export function augmentBatch(
  imgs: RawImage[],
  indices: number[],
  policy: AugmentPolicy,
  seed: number,
  epoch: number,
  out?: Float32Array,
): Float32Array {
  if (imgs.length !== indices.length) {
    throw new RangeError(`augmentBatch got ${imgs.length} images but ${indices.length} indices`);
  }
  validatePolicy(policy);
  const per = policy.crop * policy.crop * 3;
  const batch = out ?? new Float32Array(imgs.length * per);
  if (batch.length < imgs.length * per) {
    throw new RangeError(`augmentBatch out has ${batch.length} floats, needs ${imgs.length * per}`);
  }
  for (let k = 0; k < imgs.length; k++) {
    augmentSample(imgs[k]!, policy, seed, epoch, indices[k]!, batch, k * per);
  }
  return batch;
}

/**
 * Eval path: centre crop of size×size (floor((W − size)/2) like MXNet), exact bytes/255. A source
 * smaller than `size` is scaled up so its shorter side equals `size` (bilinear), as in training.
 */
export function centerCrop(img: RawImage, size: number, out: Float32Array, outOffset: number): void {
  const policy = policyForLevel(0, size);
  validateImage(img);
  validateOut(out, outOffset, size);
  // Level 0 draws are unused (all amplitudes 0), so any seed gives the same plan.
  const plan = planSample(img, policy, sampleRng(0, 0, 0));
  render(img, plan.map, size, policy.fill, { out, off: outOffset, colour: null });
}

/**
 * Preview grid for humans: row r is imgs[r], column c its augmentation in epoch c (index r), so a
 * row shows what one image looks like across epochs. Cells are separated by `gap` white pixels.
 */
export function contactSheet(
  imgs: RawImage[],
  policy: AugmentPolicy,
  seed: number,
  perImage: number,
  gap = 2,
): RawImage {
  validatePolicy(policy);
  if (!Number.isInteger(perImage) || perImage < 1)
    throw new RangeError(`perImage must be a positive integer, got ${perImage}`);
  if (!Number.isInteger(gap) || gap < 0) throw new RangeError(`gap must be a non-negative integer, got ${gap}`);
  const crop = policy.crop;
  const rows = Math.max(1, imgs.length);
  const width = perImage * crop + (perImage - 1) * gap;
  const height = rows * crop + (rows - 1) * gap;
  const data = new Uint8Array(width * height * 3).fill(255);
  const cell = new Float32Array(crop * crop * 3);
  imgs.forEach((img, r) => {
    for (let c = 0; c < perImage; c++) {
      augmentSample(img, policy, seed, c, r, cell, 0);
      const x0 = c * (crop + gap);
      const y0 = r * (crop + gap);
      for (let v = 0; v < crop; v++) {
        let o = ((y0 + v) * width + x0) * 3;
        let i = v * crop * 3;
        for (let k = 0; k < crop * 3; k++) data[o++] = Math.round(cell[i++]! * 255);
      }
    }
  });
  return { data, width, height };
}
