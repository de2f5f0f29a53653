// Test-time crops (pure, no TensorFlow): from a decoded RGB image, resize so the shorter side
// equals `scale` (bilinear, half-pixel centres) and cut
//   '1'    the centre crop (origin floor((W − size)/2), like the training eval path),
//   '5'    the centre and the four corners,
//   '10'   those 5 and their horizontal mirror images,
//   'full' the whole image resized to size × size (aspect not kept; `scale` plays no part).
// Crop order is fixed and nested: centre, top-left, top-right, bottom-left, bottom-right, then
// the same five mirrored. So the first 1 of the '10' crops are the '1' crops and the first 5 the
// '5' crops: a caller that computed '10' has '1' and '5' for free.
// Output: NHWC float32 in [0, 1], written into a caller's buffer (one crop after another).
import type { RawImage } from './augment/index.js';

export type CropSet = '1' | '5' | '10' | 'full';

export function cropCount(c: CropSet): number {
  switch (c) {
    case '1':
      return 1;
    case '5':
      return 5;
    case '10':
      return 10;
    case 'full':
      return 1;
  }
}

/** The image as float RGB in [0, 1] (HWC), possibly resized. */
export interface FloatImage {
  data: Float32Array;
  width: number;
  height: number;
}

/**
 * Bilinear resize to width × height with half-pixel centres (src = (dst + 0.5)·in/out − 0.5,
 * clamped to the edge): what sharp/PIL/torchvision do without antialiasing. Same size = exact copy.
 */
export function resizeBilinear(img: RawImage, width: number, height: number): FloatImage {
  const { width: w, height: h, data: src } = img;
  if (img.data.length !== w * h * 3) throw new Error(`image data has ${img.data.length} bytes, expected ${w}×${h}×3`);
  if (!(width >= 1 && height >= 1 && Number.isInteger(width) && Number.isInteger(height)))
    throw new Error(`bad resize target ${width}×${height}`);
  const out = new Float32Array(width * height * 3);
  const k = 1 / 255;
  if (width === w && height === h) {
    for (let i = 0; i < out.length; i++) out[i] = src[i]! * k;
    return { data: out, width, height };
  }
  // Per output column: the two source columns and the weight of the right one.
  const x0s = new Int32Array(width);
  const x1s = new Int32Array(width);
  const fxs = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    const sx = Math.min(Math.max((x + 0.5) * (w / width) - 0.5, 0), w - 1);
    const x0 = Math.floor(sx);
    x0s[x] = x0;
    x1s[x] = Math.min(x0 + 1, w - 1);
    fxs[x] = sx - x0;
  }
  for (let y = 0; y < height; y++) {
    const sy = Math.min(Math.max((y + 0.5) * (h / height) - 0.5, 0), h - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, h - 1);
    const fy = sy - y0;
    const r0 = y0 * w * 3;
    const r1 = y1 * w * 3;
    let o = y * width * 3;
    for (let x = 0; x < width; x++) {
      const a = x0s[x]! * 3;
      const b = x1s[x]! * 3;
      const fx = fxs[x]!;
      for (let c = 0; c < 3; c++) {
        const top = src[r0 + a + c]! + (src[r0 + b + c]! - src[r0 + a + c]!) * fx;
        const bottom = src[r1 + a + c]! + (src[r1 + b + c]! - src[r1 + a + c]!) * fx;
        out[o++] = (top + (bottom - top) * fy) * k;
      }
    }
  }
  return { data: out, width, height };
}

/** Resize so the shorter side is `scale` (the longer one rounded, aspect kept). */
export function resizeShorter(img: RawImage, scale: number): FloatImage {
  const short = Math.min(img.width, img.height);
  const width = img.width === short ? scale : Math.max(scale, Math.round((img.width * scale) / short));
  const height = img.height === short ? scale : Math.max(scale, Math.round((img.height * scale) / short));
  return resizeBilinear(img, width, height);
}

/** Origins (x, y) of the five crops in the fixed order: centre, TL, TR, BL, BR. */
export function cropOrigins(width: number, height: number, size: number): Array<[number, number]> {
  const dx = width - size;
  const dy = height - size;
  return [
    [dx >> 1, dy >> 1],
    [0, 0],
    [dx, 0],
    [0, dy],
    [dx, dy],
  ];
}

function copyCrop(
  img: FloatImage,
  x0: number,
  y0: number,
  size: number,
  mirror: boolean,
  out: Float32Array,
  offset: number,
): void {
  const row = size * 3;
  for (let y = 0; y < size; y++) {
    const s = ((y0 + y) * img.width + x0) * 3;
    const o = offset + y * row;
    if (!mirror) {
      out.set(img.data.subarray(s, s + row), o);
      continue;
    }
    for (let x = 0; x < size; x++) {
      const si = s + (size - 1 - x) * 3;
      out[o + x * 3] = img.data[si]!;
      out[o + x * 3 + 1] = img.data[si + 1]!;
      out[o + x * 3 + 2] = img.data[si + 2]!;
    }
  }
}

/**
 * Writes the crops of `crops` (see the header for order) of size × size into out at offset, one
 * after another; returns how many. `resized` lets a caller reuse one resize for several crop sets.
 */
export function writeCrops(
  img: RawImage,
  crops: CropSet,
  scale: number,
  size: number,
  out: Float32Array,
  offset = 0,
  resized?: FloatImage,
): number {
  const n = cropCount(crops);
  const per = size * size * 3;
  if (offset < 0 || offset + n * per > out.length)
    throw new Error(
      `crop buffer too small: ${n} crops of ${size}² at offset ${offset} need ${offset + n * per} floats, it has ${out.length}`,
    );
  if (crops === 'full') {
    out.set(resizeBilinear(img, size, size).data, offset);
    return 1;
  }
  if (scale < size) throw new Error(`scale ${scale} is smaller than the crop size ${size}`);
  const r = resized ?? resizeShorter(img, scale);
  const origins = cropOrigins(r.width, r.height, size);
  for (let i = 0; i < n; i++) {
    const [x, y] = origins[i % 5]!;
    copyCrop(r, x, y, size, i >= 5, out, offset + i * per);
  }
  return n;
}

/** Convenience: the crops as a fresh buffer. */
export function crops(img: RawImage, set: CropSet, scale: number, size: number): Float32Array {
  const out = new Float32Array(cropCount(set) * size * size * 3);
  writeCrops(img, set, scale, size, out);
  return out;
}

/** Row-wise softmax of n × k logits into out (float64 arithmetic, so every backend agrees). */
export function softmaxRows(
  logits: ArrayLike<number>,
  n: number,
  k: number,
  out = new Float32Array(n * k),
  outOffset = 0,
): Float32Array {
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, logits[i * k + j]!);
    let sum = 0;
    for (let j = 0; j < k; j++) sum += Math.exp(logits[i * k + j]! - max);
    for (let j = 0; j < k; j++) out[outOffset + i * k + j] = Math.exp(logits[i * k + j]! - max) / sum;
  }
  return out;
}

/**
 * Averages per-crop logits into one probability row per image. `views` lists, per image, where
 * its crops' logits are: each view is an n × stride × k array of which the first `crops` of each
 * image's `stride` rows are used;
 * all crops of all views count equally. 'probs': mean of the crops' softmax; 'logits': softmax of
 * the mean logit (= the normalised geometric mean of the crops' probabilities).
 */
export function averageCrops(
  views: ReadonlyArray<{ logits: Float32Array; stride: number; crops: number }>,
  n: number,
  k: number,
  mode: 'probs' | 'logits',
): Float32Array {
  const out = new Float32Array(n * k);
  const acc = new Float64Array(k);
  const p = new Float32Array(k);
  for (let i = 0; i < n; i++) {
    acc.fill(0);
    let m = 0;
    for (const v of views) {
      for (let c = 0; c < v.crops; c++) {
        const row = v.logits.subarray((i * v.stride + c) * k, (i * v.stride + c + 1) * k);
        if (mode === 'logits') for (let j = 0; j < k; j++) acc[j] = acc[j]! + row[j]!;
        else {
          softmaxRows(row, 1, k, p);
          for (let j = 0; j < k; j++) acc[j] = acc[j]! + p[j]!;
        }
        m++;
      }
    }
    if (mode === 'logits')
      softmaxRows(
        acc.map((v) => v / m),
        1,
        k,
        out,
        i * k,
      );
    else for (let j = 0; j < k; j++) out[i * k + j] = acc[j]! / m;
  }
  return out;
}
