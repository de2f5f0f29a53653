// AssemblyScript (compiled to WebAssembly with SIMD by `npm run build`, see runner/build.ts): the
// filter gradient of a Conv2D (NHWC), on the tfjs wasm backend's heap (imported, like train.as.ts:
// no data segments, no allocation), reading x and dy where the backend keeps them.
//
//   dW[t, c, o] = Σ_p x[n, oy·sh + i − padTop, ox·sw + j − padLeft, c] · dy[p, o]
//
// for tap t = (i, j), output position p = (n, oy, ox); taps outside x count as zero. It is a
// matrix product whose reduction runs over the long dimension P = N·OH·OW, so the work is cut
// into units (a fixed chunk of P, a tap, a group of input channels, a band of output channels)
// that threads take in any order: each unit writes its own part of its chunk's partial sum, and
// every sum runs over p in increasing order whoever computes it. The caller then adds the chunks'
// partials in chunk order (sumChunks), so the result depends on the shapes only, never on the
// thread count or the schedule. wasm has no fused multiply-add: each product is rounded, then
// added.

/** Positions per block: each block's rows of x and dy are read once per register tile. */
const BLOCK: i32 = 128;

/**
 * One unit of work: output positions [p0, p1) (one chunk), tap offsets (ty, tx) = (i − padTop,
 * j − padLeft), input channels [c0, c1), output channels [o0, o1). Writes
 * part[(tapRow + c)·Co + o] = Σ_{p in [p0, p1)} x·dy for those c and o (it overwrites, so the
 * partial needs no clearing). Geometry: x [·, H, W, C], dy [·, OH, OW, Co], strides sh, sw. A 1×1
 * stride-1 convolution may pass H = OH = 1 and W = OW = P: then every block is one run of rows.
 */
export function filterGradUnit(
  x: usize, dy: usize, part: usize,
  H: i32, W: i32, C: i32, OH: i32, OW: i32, Co: i32, sh: i32, sw: i32, ty: i32, tx: i32, tapRow: i32,
  p0: i32, p1: i32, c0: i32, c1: i32, o0: i32, o1: i32,
): void {
  const accStride = <usize>Co << 2;
  const xStep = <usize>(sw * C) << 2;
  const dStep = accStride;
  for (let c = c0; c < c1; c++) memory.fill(part + ((<usize>(tapRow + c) * <usize>Co + <usize>o0) << 2), 0, <usize>(o1 - o0) << 2);
  // ox range that reads inside x for this tap: ox·sw + tx in [0, W).
  const qLow = tx < 0 ? (sw - 1 - tx) / sw : 0;
  const qHigh = W - 1 - tx < 0 ? 0 : min((W - 1 - tx) / sw + 1, OW);
  for (let pb = p0; pb < p1; pb += BLOCK) {
    const pe = min(pb + BLOCK, p1);
    let p = pb;
    while (p < pe) {
      const r = p / OW;
      const q = p - r * OW;
      const rowEnd = min(OW, q + (pe - p));
      const n = r / OH;
      const iy = (r - n * OH) * sh + ty;
      if (iy >= 0 && iy < H) {
        const qa = max(q, qLow);
        const qb = min(rowEnd, qHigh);
        if (qa < qb) {
          const xs = x + (<usize>(((n * H + iy) * W + qa * sw + tx) * C) << 2);
          const ds = dy + (<usize>(r * OW + qa) * <usize>Co << 2);
          segment(xs, ds, part + (<usize>tapRow * <usize>Co << 2), qb - qa, xStep, dStep, accStride, c0, c1, o0, o1);
        }
      }
      p += rowEnd - q;
    }
  }
}

/** Adds `len` positions (x rows `xStep` bytes apart, dy rows `dStep` apart) into every tile. */
// @ts-ignore: decorator
@inline function segment(xs: usize, ds: usize, acc: usize, len: i32, xStep: usize, dStep: usize, accStride: usize, c0: i32, c1: i32, o0: i32, o1: i32): void {
  let c = c0;
  for (; c + 4 <= c1; c += 4) {
    const xc = xs + (<usize>c << 2);
    const ac = acc + <usize>c * accStride;
    let o = o0;
    for (; o + 8 <= o1; o += 8) tile4x8(xc, ds + (<usize>o << 2), ac + (<usize>o << 2), len, xStep, dStep, accStride);
    for (; o < o1; o++) for (let k = 0; k < 4; k++) tile1x1(xc + (<usize>k << 2), ds + (<usize>o << 2), ac + <usize>k * accStride + (<usize>o << 2), len, xStep, dStep);
  }
  for (; c < c1; c++) {
    const xc = xs + (<usize>c << 2);
    const ac = acc + <usize>c * accStride;
    let o = o0;
    for (; o + 8 <= o1; o += 8) tile1x8(xc, ds + (<usize>o << 2), ac + (<usize>o << 2), len, xStep, dStep);
    for (; o < o1; o++) tile1x1(xc, ds + (<usize>o << 2), ac + (<usize>o << 2), len, xStep, dStep);
  }
}

/** 4 input channels × 8 output channels: 8 accumulators, each x value broadcast once per row. */
function tile4x8(xp: usize, dp: usize, acc: usize, len: i32, xStep: usize, dStep: usize, accStride: usize): void {
  const r1 = acc + accStride;
  const r2 = r1 + accStride;
  const r3 = r2 + accStride;
  let a0 = v128.load(acc), a1 = v128.load(acc, 16);
  let b0 = v128.load(r1), b1 = v128.load(r1, 16);
  let c0 = v128.load(r2), c1 = v128.load(r2, 16);
  let e0 = v128.load(r3), e1 = v128.load(r3, 16);
  for (let k = 0; k < len; k++) {
    const d0 = v128.load(dp);
    const d1 = v128.load(dp, 16);
    let s = v128.load32_splat(xp);
    a0 = f32x4.add(a0, f32x4.mul(s, d0));
    a1 = f32x4.add(a1, f32x4.mul(s, d1));
    s = v128.load32_splat(xp, 4);
    b0 = f32x4.add(b0, f32x4.mul(s, d0));
    b1 = f32x4.add(b1, f32x4.mul(s, d1));
    s = v128.load32_splat(xp, 8);
    c0 = f32x4.add(c0, f32x4.mul(s, d0));
    c1 = f32x4.add(c1, f32x4.mul(s, d1));
    s = v128.load32_splat(xp, 12);
    e0 = f32x4.add(e0, f32x4.mul(s, d0));
    e1 = f32x4.add(e1, f32x4.mul(s, d1));
    xp += xStep;
    dp += dStep;
  }
  v128.store(acc, a0); v128.store(acc, a1, 16);
  v128.store(r1, b0); v128.store(r1, b1, 16);
  v128.store(r2, c0); v128.store(r2, c1, 16);
  v128.store(r3, e0); v128.store(r3, e1, 16);
}

/** 1 input channel × 8 output channels (the input channels left over after groups of 4). */
function tile1x8(xp: usize, dp: usize, acc: usize, len: i32, xStep: usize, dStep: usize): void {
  let a0 = v128.load(acc), a1 = v128.load(acc, 16);
  for (let k = 0; k < len; k++) {
    const s = v128.load32_splat(xp);
    a0 = f32x4.add(a0, f32x4.mul(s, v128.load(dp)));
    a1 = f32x4.add(a1, f32x4.mul(s, v128.load(dp, 16)));
    xp += xStep;
    dp += dStep;
  }
  v128.store(acc, a0);
  v128.store(acc, a1, 16);
}

/** One input × one output channel (output channels left over after groups of 8). */
function tile1x1(xp: usize, dp: usize, acc: usize, len: i32, xStep: usize, dStep: usize): void {
  let a = load<f32>(acc);
  for (let k = 0; k < len; k++) {
    a += load<f32>(xp) * load<f32>(dp);
    xp += xStep;
    dp += dStep;
  }
  store<f32>(acc, a);
}

/**
 * out[e] = Σ_k parts[k·count + e] over chunks k = 0 … chunks − 1 in that order, for elements
 * [e0, e1) (so threads can split the elements; each element's sum has one order).
 */
function sumChunks(parts: usize, out: usize, count: i32, chunks: i32, e0: i32, e1: i32): void {
  const stride = <usize>count << 2;
  let e = e0;
  for (; e + 4 <= e1; e += 4) {
    let p = parts + (<usize>e << 2);
    let s = v128.load(p);
    for (let k = 1; k < chunks; k++) {
      p += stride;
      s = f32x4.add(s, v128.load(p));
    }
    v128.store(out + (<usize>e << 2), s);
  }
  for (; e < e1; e++) {
    let p = parts + (<usize>e << 2);
    let s = load<f32>(p);
    for (let k = 1; k < chunks; k++) {
      p += stride;
      s += load<f32>(p);
    }
    store<f32>(out + (<usize>e << 2), s);
  }
}

/**
 * The work of one filter gradient as numbered units, for threads that take numbers in any order
 * (kernels/pool.ts): unit u is chunk ⌊u / (taps·cGroups·oBands)⌋ (positions [chunk·chunkP, …)),
 * then tap, input-channel group (cGroup wide) and output band (oBand wide), chunk-major so one
 * thread's consecutive units share their rows of dy. Chunk k's partial is
 * parts + k·(kh·kw·C·Co) floats.
 */
export function filterGradJob(
  x: usize, dy: usize, parts: usize,
  H: i32, W: i32, C: i32, OH: i32, OW: i32, Co: i32, kh: i32, kw: i32, sh: i32, sw: i32, padTop: i32, padLeft: i32,
  P: i32, chunkP: i32, cGroup: i32, oBand: i32, u: i32,
): void {
  const cGroups = (C + cGroup - 1) / cGroup;
  const oBands = (Co + oBand - 1) / oBand;
  const ob = u % oBands;
  let rest = u / oBands;
  const cg = rest % cGroups;
  rest /= cGroups;
  const tap = rest % (kh * kw);
  const chunk = rest / (kh * kw);
  const i = tap / kw;
  const j = tap - i * kw;
  const p0 = chunk * chunkP;
  const part = parts + (<usize>chunk * <usize>(kh * kw * C) * <usize>Co << 2);
  filterGradUnit(
    x, dy, part, H, W, C, OH, OW, Co, sh, sw, i - padTop, j - padLeft, tap * C,
    p0, min(p0 + chunkP, P), cg * cGroup, min((cg + 1) * cGroup, C), ob * oBand, min((ob + 1) * oBand, Co),
  );
}

/** sumChunks for elements [u·perUnit, (u+1)·perUnit) ∩ [0, count): unit u of the final sum. */
export function sumChunksJob(parts: usize, out: usize, count: i32, chunks: i32, perUnit: i32, u: i32): void {
  const e0 = u * perUnit;
  sumChunks(parts, out, count, chunks, e0, min(e0 + perUnit, count));
}
