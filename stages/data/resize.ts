// Resampling of raw RGB uint8 for the decode stage. The loops run in WebAssembly
// (kernels/image.as.ts, compiled by `npm run build`); this module places the image and the tap
// tables in the kernel's memory and copies the result out.
//
// Upscales are bilinear with OpenCV's INTER_LINEAR conventions (pixel centres at +0.5, edge
// pixels clamped). Downscales by 2× or more first shrink by the largest integer factor with a box
// filter (every source pixel counts, as in libvips' shrink and OpenCV's INTER_AREA), then
// finish bilinearly over a factor below 2, so they do not alias.
import { instantiateWasm } from '../compiled-path.js';

interface Kernels {
  memory: WebAssembly.Memory;
  bilinear(src: number, w: number, h: number, dst: number, W: number, H: number, xi: number, xw: number, yi: number, yw: number, tmp: number): void;
  boxShrink(src: number, w: number, h: number, k: number, dst: number, acc: number): void;
}

/** The kernels' static data (none today) stays below this; images are placed above it. */
const BASE = 65536;
let kernels: Kernels | undefined;

function load(): Kernels {
  kernels ??= instantiateWasm(import.meta.url, 'kernels/image.wasm') as unknown as Kernels;
  return kernels;
}

/** Source index × `stride` and right-hand weight (fixed point, 0..256) of each destination pixel. */
function taps(src: number, dst: number, stride: number): { i0: Int32Array; w1: Int32Array } {
  const i0 = new Int32Array(dst);
  const w1 = new Int32Array(dst);
  const scale = src / dst;
  for (let d = 0; d < dst; d++) {
    let f = (d + 0.5) * scale - 0.5;
    if (f < 0) f = 0;
    let i = Math.floor(f);
    if (i >= src - 1) { i = Math.max(src - 2, 0); f = src - 1; }
    i0[d] = i * stride;
    w1[d] = src === 1 ? 0 : Math.round((f - i) * 256);
  }
  return { i0, w1 };
}

/** Bump allocation in the kernel's memory for one call, growing it when needed. */
function layout(k: Kernels, sizes: number[]): number[] {
  let end = BASE;
  const offsets = sizes.map((n) => { const at = end; end += (n + 15) & ~15; return at; });
  const missing = end - k.memory.buffer.byteLength;
  if (missing > 0) k.memory.grow(Math.ceil(missing / 65536));
  return offsets;
}

/**
 * A view on the kernel's memory where `resizeSource` reads its source image: a decoder can write
 * its pixels straight there (no copy, and no fresh pages per image). Valid until the next call
 * into this module.
 */
export function sourceBuffer(bytes: number): Buffer {
  const k = load();
  const [at] = layout(k, [bytes]) as [number];
  return Buffer.from(k.memory.buffer, at, bytes);
}

/**
 * The w × h × 3 image in `sourceBuffer` resized to W × H × 3, as a view on the kernel's memory
 * (valid until the next call into this module; copy it to keep it). Weights are in 1/256ths
 * (OpenCV's INTER_LINEAR uses 1/2048ths); the rounding error is below one grey level.
 */
export function resizeSource(w: number, h: number, W: number, H: number): Uint8Array {
  const k = load();
  const factor = Math.max(1, Math.min(Math.floor(w / W), Math.floor(h / H)));
  // After the box shrink: sw × sh; then the bilinear step to W × H (skipped when they match).
  const [sw, sh] = factor > 1 ? [Math.floor(w / factor), Math.floor(h / factor)] : [w, h];
  const [pSrc, pShrunk, pAcc, pDst, pTmp, pXi, pXw, pYi, pYw] = layout(k, [
    w * h * 3, factor > 1 ? sw * sh * 3 : 0, factor > 1 ? sw * factor * 3 * 4 : 0, W * H * 3, sh * W * 3 * 2, W * 4, W * 4, H * 4, H * 4,
  ]) as [number, number, number, number, number, number, number, number, number];
  const mem = k.memory.buffer;
  let from = pSrc;
  if (factor > 1) {
    k.boxShrink(pSrc, w, h, factor, pShrunk, pAcc);
    if (sw === W && sh === H) return new Uint8Array(mem, pShrunk, W * H * 3);
    from = pShrunk;
  }
  const xs = taps(sw, W, 3);
  const ys = taps(sh, H, 1);
  new Int32Array(mem, pXi, W).set(xs.i0);
  new Int32Array(mem, pXw, W).set(xs.w1);
  new Int32Array(mem, pYi, H).set(ys.i0);
  new Int32Array(mem, pYw, H).set(ys.w1);
  k.bilinear(from, sw, sh, pDst, W, H, pXi, pXw, pYi, pYw, pTmp);
  return new Uint8Array(mem, pDst, W * H * 3);
}

/** `src` (w × h × 3) resized to W × H × 3, in a new array. */
export function resizeU8(src: Uint8Array, w: number, h: number, W: number, H: number): Uint8Array {
  if (src.length !== w * h * 3) throw new Error(`image has ${src.length} bytes, expected ${w}×${h}×3`);
  sourceBuffer(src.length).set(src);
  return resizeSource(w, h, W, H).slice();
}
