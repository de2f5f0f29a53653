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
  bilinear(
    src: number,
    w: number,
    h: number,
    dst: number,
    W: number,
    H: number,
    xi: number,
    xw: number,
    xb: number,
    xm: number,
    yi: number,
    yw: number,
    tmp: number,
  ): void;
  boxShrink(src: number, w: number, h: number, k: number, dst: number, acc: number): void;
}

/** The kernels' static data (none today) stays below this; images are placed above it. */
const BASE = 65536;
let kernels: Kernels | undefined;

function load(): Kernels {
  kernels ??= instantiateWasm(import.meta.url, 'kernels/image.wasm') as unknown as Kernels;
  return kernels;
}

/**
 * Source index × `stride` and right-hand weight (fixed point, 0..256) of each destination pixel.
 * Exported for the tests' plain-JS model of the kernel.
 */
export function bilinearTaps(src: number, dst: number, stride: number): { i0: Int32Array; w1: Int32Array } {
  const i0 = new Int32Array(dst);
  const w1 = new Int32Array(dst);
  const scale = src / dst;
  for (let d = 0; d < dst; d++) {
    let f = (d + 0.5) * scale - 0.5;
    if (f < 0) f = 0;
    let i = Math.floor(f);
    if (i >= src - 1) {
      i = Math.max(src - 2, 0);
      f = src - 1;
    }
    i0[d] = i * stride;
    w1[d] = src === 1 ? 0 : Math.round((f - i) * 256);
  }
  return { i0, w1 };
}

/** The tables `bilinear` (kernels/image.as.ts, which describes them) reads to resize w × h to W × H. */
interface Tables {
  key: string;
  xi: Int32Array;
  xw: Uint16Array;
  xb: Int32Array;
  xm: Uint8Array;
  yi: Int32Array;
  yw: Int32Array;
}
/** The decode stage resizes image after image between the same sizes: the last tables are kept. */
let lastTables: Tables | undefined;

function tables(w: number, h: number, W: number, H: number): Tables {
  const key = `${w}×${h}→${W}×${H}`;
  if (lastTables?.key === key) return lastTables;
  const { i0, w1 } = bilinearTaps(w, W, 3);
  const n = W * 3;
  // Per output byte: its left source byte in the row and its right weight.
  const xi = new Int32Array(n);
  const xw = new Uint16Array(n);
  for (let k = 0; k < n; k++) {
    const x = Math.floor(k / 3);
    xi[k] = i0[x]! + (k % 3);
    xw[k] = w1[x]!;
  }
  // Per block of 8 output bytes: the windows holding their 16 source bytes and the swizzle masks
  // gathering them. Unused windows are −1 and unused mask lanes 0x80 (a zero lane); the partial
  // block at the row's end, and blocks that do not fit two windows, keep −1: byte by byte.
  const blocks = Math.ceil(n / 8);
  const xb = new Int32Array(blocks * 2).fill(-1);
  const xm = new Uint8Array(blocks * 32).fill(0x80);
  const dx = w === 1 ? 0 : 3;
  for (let b = 0; b < Math.floor(n / 8); b++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let k = 8 * b; k < 8 * b + 8; k++) {
      lo = Math.min(lo, xi[k]!);
      hi = Math.max(hi, xi[k]! + dx);
    }
    // The first window starts at the lowest byte; the second, if needed, ends at the highest.
    const second = hi - lo < 16 ? -1 : hi - 15;
    // Where byte `at` of the row is in the windows: 0–15 in the first, 16–31 in the second, −1
    // in neither.
    const slot = (at: number): number => (at - lo < 16 ? at - lo : at >= second ? 16 + at - second : -1);
    let fits = true;
    for (let k = 8 * b; k < 8 * b + 8; k++) fits &&= slot(xi[k]!) >= 0 && slot(xi[k]! + dx) >= 0;
    if (!fits) continue;
    xb[2 * b] = lo;
    xb[2 * b + 1] = second;
    // Lane j gathers the left byte of output byte 8b + j, lane 8 + j its right byte; mask bytes
    // 0–15 index the first window, 16–31 the second.
    for (let j = 0; j < 8; j++) {
      const left = slot(xi[8 * b + j]!);
      const right = slot(xi[8 * b + j]! + dx);
      xm[32 * b + (left < 16 ? j : 16 + j)] = left % 16;
      xm[32 * b + (right < 16 ? 8 + j : 24 + j)] = right % 16;
    }
  }
  const ys = bilinearTaps(h, H, 1);
  lastTables = { key, xi, xw, xb, xm, yi: ys.i0, yw: ys.w1 };
  return lastTables;
}

/** Bump allocation in the kernel's memory for one call, growing it when needed. */
function layout(k: Kernels, sizes: number[]): number[] {
  let end = BASE;
  const offsets = sizes.map((n) => {
    const at = end;
    end += (n + 15) & ~15;
    return at;
  });
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
  const t = tables(sw, sh, W, H);
  // The kernel's 16-byte windows may read up to 15 bytes past the source image: padded.
  const [pSrc, pShrunk, pAcc, pDst, pTmp, pXi, pXw, pXb, pXm, pYi, pYw] = layout(k, [
    w * h * 3 + 16,
    factor > 1 ? sw * sh * 3 + 16 : 0,
    factor > 1 ? sw * factor * 3 * 4 : 0,
    W * H * 3,
    sh * W * 3 * 2,
    t.xi.byteLength,
    t.xw.byteLength,
    t.xb.byteLength,
    t.xm.byteLength,
    t.yi.byteLength,
    t.yw.byteLength,
  ]) as [number, number, number, number, number, number, number, number, number, number, number];
  const mem = k.memory.buffer;
  let from = pSrc;
  if (factor > 1) {
    k.boxShrink(pSrc, w, h, factor, pShrunk, pAcc);
    if (sw === W && sh === H) return new Uint8Array(mem, pShrunk, W * H * 3);
    from = pShrunk;
  }
  new Int32Array(mem, pXi, t.xi.length).set(t.xi);
  new Uint16Array(mem, pXw, t.xw.length).set(t.xw);
  new Int32Array(mem, pXb, t.xb.length).set(t.xb);
  new Uint8Array(mem, pXm, t.xm.length).set(t.xm);
  new Int32Array(mem, pYi, H).set(t.yi);
  new Int32Array(mem, pYw, H).set(t.yw);
  k.bilinear(from, sw, sh, pDst, W, H, pXi, pXw, pXb, pXm, pYi, pYw, pTmp);
  return new Uint8Array(mem, pDst, W * H * 3);
}

/** `src` (w × h × 3) resized to W × H × 3, in a new array. */
export function resizeU8(src: Uint8Array, w: number, h: number, W: number, H: number): Uint8Array {
  if (src.length !== w * h * 3) throw new Error(`image has ${src.length} bytes, expected ${w}×${h}×3`);
  sourceBuffer(src.length).set(src);
  return resizeSource(w, h, W, H).slice();
}
