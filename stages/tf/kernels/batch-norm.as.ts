// AssemblyScript (compiled to WebAssembly with SIMD by `npm run build`, see runner/build.ts): the
// element-wise passes of batch norm and ReLU6 in training, as jobs for the threads of
// kernels/pool.ts, on the tfjs wasm backend's heap (imported, like filter-grad.as.ts: no data
// segments, no allocation).
//
// Why threads: these passes were ~20% of a MobileNetV2 training step (docs/performance.md, session
// 7) and ran on the caller's thread alone while the other core idled. How they stay bit-identical
// to the single-threaded loops they replace, whatever the thread count: a unit is one image (the
// statistics: each image's sums are formed on their own, in row order, then the images are added
// in order by one unit of meansOverImagesJob) or a fixed range of elements (the element-wise maps);
// which thread runs a unit never changes an operation or its order.

// Each image's sums run over its rows in order, in float32, so how they are scheduled only
// changes the speed. Two schedules, each the faster for its pass (node bench/batch-norm-kernels.mjs
// on MobileNetV2's activations, docs/performance.md session 9):
// - The statistics (one array read) hold running sums in registers: a block of 16 channels (one
//   cache line of a row) is summed down a run of rows, then the next block (4, then 1 channel at
//   the tails). Summing into memory row by row is bound by its loads and stores here (two per
//   vector read). The runs are short (ROWS_BYTES): a block walking down all of an image's rows
//   (up to 4.8 MB at 112 × 112 × 96) touched one cache line per row, and the next block found
//   them evicted from the 2 MB L2; a run stays in cache for all its blocks, each channel's sum
//   going on from the run before.
// - The gradient sums (dy and x read; two sums per channel) go row by row, adding into the
//   image's sums in memory (L1: at most 2 × 1280 floats): contiguous reads. ~1.35× the block
//   schedule's speed (session 9, when the ReLU gate's y was a third array read), which walks the
//   arrays with a stride; in runs of rows (as the statistics) blocks were no faster (session 10).
// Both gradient passes recompute a fused ReLU's gate from x (`preClip`) instead of reading the
// BN's output y: one array less to read. In a 224-px step's profile that took ~40% off the
// input gradient; the gradient sums, bound by their loads and stores of the sums, did not move.

/**
 * Unit u = image u of x [N, rows, C]: sums[u·stride + c] = Σ_r x[u, r, c], over r in order.
 * (stride leaves a gap between the images' sums: threads that accumulate into neighbouring cache
 * lines slowed these passes down by up to 2× on our 2-core machine.)
 */
export function channelSumsJob(x: usize, sums: usize, stride: i32, rows: i32, C: i32, u: i32, thread: i32): void {
  sumRows(x + <usize>u * <usize>rows * (<usize>C << 2), 0, sums + (<usize>u * <usize>stride << 2), rows, C);
}

/**
 * Unit u = image u of x [N, rows, C]: sums[u·stride + c] = Σ_r (x[u, r, c] − mean[c])², over r in
 * order (the second pass of a two-pass variance: exact even when |mean| ≫ std).
 */
export function channelSquaredDeviationsJob(x: usize, mean: usize, sums: usize, stride: i32, rows: i32, C: i32, u: i32, thread: i32): void {
  sumRows(x + <usize>u * <usize>rows * (<usize>C << 2), mean, sums + (<usize>u * <usize>stride << 2), rows, C);
}

/**
 * Unit u = image u of dy and x [N, rows, C]: what batch norm's gradient needs, per channel,
 * sums[u·stride + c] = Σ_r dy and sums[u·stride + C + c] = Σ_r dy·x, over r in order.
 * With scale ≠ 0 (a ReLU(max) fused into the BN, lean-batch-norm.ts), dy is first gated as
 * relu6GradJob does, in registers, by the BN's output y = clip(shift + x·scale, 0, max)
 * recomputed from x (see `preClip`): the same values, without reading y or writing them out.
 */
export function channelDyDyXSumsJob(
  dy: usize, x: usize, scale: usize, shift: usize, maxBits: i32, sums: usize, stride: i32, rows: i32, C: i32, u: i32, thread: i32,
): void {
  const start = <usize>u * <usize>rows * (<usize>C << 2);
  const out = sums + (<usize>u * <usize>stride << 2);
  const gate = scale != 0;
  const maxValue = reinterpret<f32>(maxBits);
  const rowBytes = <usize>C << 2;
  const out2 = out + rowBytes;
  memory.fill(out, 0, rowBytes << 1);
  const M = f32x4.splat(maxValue);
  const vecBytes = rowBytes & ~(<usize>15);
  for (let r: i32 = 0; r < rows; r++) {
    const row = start + <usize>r * rowBytes;
    const p = dy + row;
    const q = x + row;
    let at: usize = 0;
    for (; at < vecBytes; at += 16) {
      let v = v128.load(p + at);
      const xv = v128.load(q + at);
      if (gate) v = gated(v, preClip(xv, scale + at, shift + at), M);
      v128.store(out + at, f32x4.add(v128.load(out + at), v));
      v128.store(out2 + at, f32x4.add(v128.load(out2 + at), f32x4.mul(v, xv)));
    }
    for (; at < rowBytes; at += 4) {
      let v = load<f32>(p + at);
      const xv = load<f32>(q + at);
      if (gate) v = gated1(v, preClip1(xv, scale + at, shift + at), maxValue);
      store<f32>(out + at, load<f32>(out + at) + v);
      store<f32>(out2 + at, load<f32>(out2 + at) + v * xv);
    }
  }
}

/**
 * The BN's output before its clip, shift + x·scale, rounded as the forward pass rounded it (the
 * 1×1 depthwise convolution with bias, XNNPACK: the product, then the sum; wasm has no fused
 * multiply-add). The gate below only asks whether it lies strictly inside (0, max), which is
 * whether the clipped output y did: y·(max − y) > 0 gives the same answer for the unclipped value.
 */
// @ts-ignore: decorator
@inline
function preClip(x: v128, scale: usize, shift: usize): v128 {
  return f32x4.add(v128.load(shift), f32x4.mul(x, v128.load(scale)));
}

// @ts-ignore: decorator
@inline
function preClip1(x: f32, scale: usize, shift: usize): f32 {
  return load<f32>(shift) + x * load<f32>(scale);
}

/** ReLU(max)'s gradient of dy where the output was y: dy · step(y·(max − y)), as relu6GradJob. */
// @ts-ignore: decorator
@inline
function gated(dy: v128, y: v128, M: v128): v128 {
  return f32x4.mul(dy, v128.and(f32x4.gt(f32x4.mul(y, f32x4.sub(M, y)), f32x4.splat(0)), f32x4.splat(1)));
}

// @ts-ignore: decorator
@inline
function gated1(dy: f32, y: f32, maxValue: f32): f32 {
  return dy * (y * (maxValue - y) > 0 ? <f32>1 : <f32>0);
}

/**
 * Per channel c < C of `rows` rows of C floats at a, each sum from +0 over r in order, in float32:
 *   mean = 0:   out[c] = Σ_r a[r, c]
 *   mean ≠ 0:   out[c] = Σ_r (a[r, c] − mean[c])²
 */
function sumRows(a: usize, mean: usize, out: usize, rows: i32, C: i32): void {
  const rowBytes = <usize>C << 2;
  const run = max<i32>(1, <i32>(ROWS_BYTES / rowBytes));
  for (let r0: i32 = 0; r0 < rows; r0 += run) {
    const n = min<i32>(run, rows - r0);
    const ra = a + <usize>r0 * rowBytes;
    const first = r0 == 0;
    let c: i32 = 0;
    for (; c + 16 <= C; c += 16) block16(ra, mean, out, n, rowBytes, <usize>c << 2, first);
    for (; c + 4 <= C; c += 4) block4(ra, mean, out, n, rowBytes, <usize>c << 2, first);
    for (; c < C; c++) block1(ra, mean, out, n, rowBytes, <usize>c << 2, first);
  }
}

/**
 * Bytes of x a run of rows spans: inside the 48 KB L1. At 224 px the blocks walking whole images
 * cost this pass (and the gradient sums, then on the same schedule) 1.3–1.5× more time.
 */
const ROWS_BYTES: usize = 8192;

/** A block's running sums: +0 on the first run, else where the run before left them. */
// @ts-ignore: decorator
@inline
function start(at: usize, first: bool): v128 {
  return first ? f32x4.splat(0) : v128.load(at);
}

// @ts-ignore: decorator
@inline
function term(v: v128, m: v128, squared: bool): v128 {
  if (!squared) return v;
  const d = f32x4.sub(v, m);
  return f32x4.mul(d, d);
}

function block16(a: usize, mean: usize, out: usize, rows: i32, rowBytes: usize, at: usize, first: bool): void {
  const squared = mean != 0;
  const m0 = squared ? v128.load(mean + at) : f32x4.splat(0);
  const m1 = squared ? v128.load(mean + at + 16) : f32x4.splat(0);
  const m2 = squared ? v128.load(mean + at + 32) : f32x4.splat(0);
  const m3 = squared ? v128.load(mean + at + 48) : f32x4.splat(0);
  let s0 = start(out + at, first), s1 = start(out + at + 16, first);
  let s2 = start(out + at + 32, first), s3 = start(out + at + 48, first);
  let p = a + at;
  for (let r = 0; r < rows; r++, p += rowBytes) {
    s0 = f32x4.add(s0, term(v128.load(p), m0, squared));
    s1 = f32x4.add(s1, term(v128.load(p + 16), m1, squared));
    s2 = f32x4.add(s2, term(v128.load(p + 32), m2, squared));
    s3 = f32x4.add(s3, term(v128.load(p + 48), m3, squared));
  }
  v128.store(out + at, s0);
  v128.store(out + at + 16, s1);
  v128.store(out + at + 32, s2);
  v128.store(out + at + 48, s3);
}

function block4(a: usize, mean: usize, out: usize, rows: i32, rowBytes: usize, at: usize, first: bool): void {
  const squared = mean != 0;
  const m0 = squared ? v128.load(mean + at) : f32x4.splat(0);
  let s0 = start(out + at, first);
  let p = a + at;
  for (let r = 0; r < rows; r++, p += rowBytes) s0 = f32x4.add(s0, term(v128.load(p), m0, squared));
  v128.store(out + at, s0);
}

function block1(a: usize, mean: usize, out: usize, rows: i32, rowBytes: usize, at: usize, first: bool): void {
  const m0: f32 = mean != 0 ? load<f32>(mean + at) : 0;
  let s0: f32 = first ? 0 : load<f32>(out + at);
  let p = a + at;
  for (let r = 0; r < rows; r++, p += rowBytes) {
    const v0 = load<f32>(p);
    if (mean != 0) {
      const d = v0 - m0;
      s0 += d * d;
    } else s0 += v0;
  }
  store<f32>(out + at, s0);
}

/**
 * out[c] = (Σ_n sums[n·stride + c]) / count for c < C, the images added in order, every sum and
 * the quotient rounded to float32 (count = N·rows, passed as its float32 bits). One unit.
 */
export function meansOverImagesJob(sums: usize, stride: i32, out: usize, N: i32, C: i32, countBits: i32, u: i32, thread: i32): void {
  const count = reinterpret<f32>(countBits);
  const rowBytes = <usize>C << 2;
  const strideBytes = <usize>stride << 2;
  memory.fill(out, 0, rowBytes);
  let s = sums;
  for (let n = 0; n < N; n++, s += strideBytes) {
    for (let b: usize = 0; b < rowBytes; b += 4) store<f32>(out + b, load<f32>(out + b) + load<f32>(s + b));
  }
  for (let b: usize = 0; b < rowBytes; b += 4) store<f32>(out + b, load<f32>(out + b) / count);
}

/**
 * Elements [u·perUnit, (u + 1)·perUnit) ∩ [0, n) of ReLU6's gradient: out = dy · step(y·(max − y)),
 * the product, difference and comparison in float32 as tfjs computes them (so dy·0 = −0 for a
 * negative dy). perUnit is a multiple of 4.
 */
export function relu6GradJob(dy: usize, y: usize, out: usize, n: i32, maxBits: i32, perUnit: i32, u: i32, thread: i32): void {
  const maxValue = reinterpret<f32>(maxBits);
  const e0 = u * perUnit;
  const e1 = min(e0 + perUnit, n);
  const vecEnd = <usize>(e0 + ((e1 - e0) & ~3)) << 2;
  const M = f32x4.splat(maxValue);
  const Z = f32x4.splat(0);
  const ONE = f32x4.splat(1);
  let b = <usize>e0 << 2;
  for (; b < vecEnd; b += 16) {
    const yv = v128.load(y + b);
    const pass = f32x4.gt(f32x4.mul(yv, f32x4.sub(M, yv)), Z);
    v128.store(out + b, f32x4.mul(v128.load(dy + b), v128.and(pass, ONE)));
  }
  for (; b < <usize>e1 << 2; b += 4) {
    const yi = load<f32>(y + b);
    store<f32>(out + b, load<f32>(dy + b) * (yi * (maxValue - yi) > 0 ? <f32>1 : <f32>0));
  }
}

/**
 * Rows [u·perUnit, (u + 1)·perUnit) ∩ [0, rows) of batch norm's input gradient, dy and x
 * [rows, C]: dx = (0 + a·dy) + (c + k·x) per channel. The zero and the order are those of the
 * passes it replaces (two 1×1 depthwise convolutions, XNNPACK's accumulator starting at the bias,
 * zero without one, then an Add), so the result is theirs bit for bit.
 * With scale ≠ 0, dy is gated first (as in channelDyDyXSumsJob).
 */
export function batchNormInputGradJob(
  dy: usize, x: usize, scale: usize, shift: usize, maxBits: i32, a: usize, k: usize, c: usize, out: usize,
  rows: i32, C: i32, perUnit: i32, u: i32, thread: i32,
): void {
  const rowBytes = <usize>C << 2;
  const vec = <usize>(C & ~3) << 2;
  const r0 = u * perUnit;
  const r1 = min(r0 + perUnit, rows);
  const Z = f32x4.splat(0);
  const maxValue = reinterpret<f32>(maxBits);
  const M = f32x4.splat(maxValue);
  const gate = scale != 0;
  let at = <usize>r0 * rowBytes;
  for (let r = r0; r < r1; r++, at += rowBytes) {
    const d = dy + at;
    const xr = x + at;
    const o = out + at;
    let b: usize = 0;
    for (; b < vec; b += 16) {
      const xv = v128.load(xr + b);
      const dv = gate ? gated(v128.load(d + b), preClip(xv, scale + b, shift + b), M) : v128.load(d + b);
      const scaled = f32x4.add(Z, f32x4.mul(dv, v128.load(a + b)));
      const shifted = f32x4.add(v128.load(c + b), f32x4.mul(xv, v128.load(k + b)));
      v128.store(o + b, f32x4.add(scaled, shifted));
    }
    for (; b < rowBytes; b += 4) {
      const xv = load<f32>(xr + b);
      const dv = gate ? gated1(load<f32>(d + b), preClip1(xv, scale + b, shift + b), maxValue) : load<f32>(d + b);
      const scaled = <f32>0 + dv * load<f32>(a + b);
      const shifted = load<f32>(c + b) + xv * load<f32>(k + b);
      store<f32>(o + b, scaled + shifted);
    }
  }
}
