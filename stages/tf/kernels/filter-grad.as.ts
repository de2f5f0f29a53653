// AssemblyScript (compiled to WebAssembly with SIMD by `npm run build`, see runner/build.ts): the
// filter gradient of a Conv2D (NHWC), on the tfjs wasm backend's heap (imported, like train.as.ts:
// no data segments, no allocation), reading x and dy where the backend keeps them.
//
//   dW[t, c, o] = Σ_p x[n, oy·sh + i − padTop, ox·sw + j − padLeft, c] · dy[p, o]
//
// for tap t = (i, j), output position p = (n, oy, ox); taps outside x count as zero. It is a
// matrix product whose reduction runs over the long dimension P = N·OH·OW, so the work is cut
// into units (a fixed chunk of P, a group of input channels, a band of output channels)
// that threads take in any order: each unit writes its own part of its chunk's partial sum, and
// every sum runs over p in increasing order whoever computes it. The caller then adds the chunks'
// partials in chunk order (sumChunks), so the result depends on the shapes only, never on the
// thread count or the schedule. wasm has no fused multiply-add: each product is rounded, then
// added.

/**
 * Positions per block. A block's rows of x (one tap, one channel group) and dy (one band) are
 * first packed into the calling thread's scratch as panels of 4 input channels and of 8 output
 * channels, contiguous per position, so that the register tiles read them sequentially from L1
 * whatever the tensors' row strides (a 1280-channel dy row is 5 kB: its rows alias the same few
 * cache sets) and whatever the tap (positions outside x are packed as zeros, which add nothing:
 * a sum that starts at +0 is never −0, and x + ±0 = x).
 */
export const BLOCK: i32 = 64;

/**
 * One unit of work: output positions [p0, p1) (one chunk), every tap, input channels [c0, c1) and
 * output channels [o0, o1). Writes part[(tap·C + c)·Co + o] = Σ_{p in [p0, p1)} x·dy for those
 * taps, c and o (it overwrites, so the partial needs no clearing); each sum runs over p in order.
 * Geometry: x [·, H, W, C], dy [·, OH, OW, Co], filter kh × kw, strides sh, sw, padding padTop,
 * padLeft. `scratch` holds BLOCK·(c1 − c0 + 3 & ~3) + BLOCK·(o1 − o0 + 7 & ~7) floats, this
 * thread's own. A 1×1 stride-1 convolution may pass H = OH = 1 and W = OW = P.
 */
export function filterGradUnit(
  x: usize, dy: usize, part: usize, scratch: usize,
  H: i32, W: i32, C: i32, OH: i32, OW: i32, Co: i32, kh: i32, kw: i32, sh: i32, sw: i32, padTop: i32, padLeft: i32,
  p0: i32, p1: i32, c0: i32, c1: i32, o0: i32, o1: i32,
): void {
  const accStride = <usize>Co << 2;
  const taps = kh * kw;
  for (let r = 0; r < taps * C; r += C) {
    for (let c = c0; c < c1; c++) memory.fill(part + ((<usize>(r + c) * <usize>Co + <usize>o0) << 2), 0, <usize>(o1 - o0) << 2);
  }
  const xPanels = scratch;
  const dPanels = scratch + (<usize>(BLOCK * ((c1 - c0 + 3) & ~3)) << 2);
  for (let pb = p0; pb < p1; pb += BLOCK) {
    const len = min(BLOCK, p1 - pb);
    packDy(dy, dPanels, pb, len, Co, o0, o1);
    for (let tap = 0; tap < taps; tap++) {
      const i = tap / kw;
      if (!packX(x, xPanels, pb, len, H, W, C, OH, OW, sh, sw, i - padTop, tap - i * kw - padLeft, c0, c1)) continue;
      tiles(xPanels, dPanels, part + ((<usize>(tap * C + c0) * <usize>Co + <usize>o0) << 2), len, c1 - c0, o1 - o0, accStride);
    }
  }
}

/** dy's rows [pb, pb + len), channels [o0, o1), as panels of 8 channels ([len][8] each, zero-padded). */
function packDy(dy: usize, panels: usize, pb: i32, len: i32, Co: i32, o0: i32, o1: i32): void {
  const panelBytes = <usize>len << 5;
  let src = dy + ((<usize>pb * <usize>Co + <usize>o0) << 2);
  const rowBytes = <usize>Co << 2;
  const full = (o1 - o0) >> 3;
  const tail = (o1 - o0) & 7;
  for (let k = 0; k < len; k++, src += rowBytes) {
    let dst = panels + (<usize>k << 5);
    let s = src;
    for (let t = 0; t < full; t++, dst += panelBytes, s += 32) {
      v128.store(dst, v128.load(s));
      v128.store(dst, v128.load(s, 16), 16);
    }
    if (tail) {
      v128.store(dst, f32x4.splat(0));
      v128.store(dst, f32x4.splat(0), 16);
      for (let o = 0; o < tail; o++) store<f32>(dst + (<usize>o << 2), load<f32>(s + (<usize>o << 2)));
    }
  }
}

/**
 * x at the positions [pb, pb + len) for one tap (offsets ty, tx: a position (n, oy, ox) reads
 * x[n, oy·sh + ty, ox·sw + tx]), channels [c0, c1), as panels of 4 channels ([len][4] each,
 * zero-padded; zeros where the tap falls outside x). Returns false when the whole block is outside.
 */
function packX(x: usize, panels: usize, pb: i32, len: i32, H: i32, W: i32, C: i32, OH: i32, OW: i32, sh: i32, sw: i32, ty: i32, tx: i32, c0: i32, c1: i32): bool {
  const panelBytes = <usize>len << 4;
  const full = (c1 - c0) >> 2;
  const tail = (c1 - c0) & 3;
  const zero = f32x4.splat(0);
  let any = false;
  let r = pb / OW;
  let q = pb - r * OW;
  for (let k = 0; k < len; k++) {
    const n = r / OH;
    const iy = (r - n * OH) * sh + ty;
    const ix = q * sw + tx;
    let dst = panels + (<usize>k << 4);
    if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
      any = true;
      let s = x + ((<usize>((n * H + iy) * W + ix) * <usize>C + <usize>c0) << 2);
      for (let t = 0; t < full; t++, dst += panelBytes, s += 16) v128.store(dst, v128.load(s));
      if (tail) {
        v128.store(dst, zero);
        for (let c = 0; c < tail; c++) store<f32>(dst + (<usize>c << 2), load<f32>(s + (<usize>c << 2)));
      }
    } else {
      for (let t = 0; t < full + (tail ? 1 : 0); t++, dst += panelBytes) v128.store(dst, zero);
    }
    if (++q === OW) { q = 0; r++; }
  }
  return any;
}

/** acc[c][o] += Σ_k xPanels·dPanels for rows < rows and columns < cols (the packed widths are padded). */
function tiles(xPanels: usize, dPanels: usize, acc: usize, len: i32, rows: i32, cols: i32, accStride: usize): void {
  const xPanelBytes = <usize>len << 4;
  const dPanelBytes = <usize>len << 5;
  let o = 0;
  for (; o + 8 <= cols; o += 8) {
    const dp = dPanels + <usize>(o >> 3) * dPanelBytes;
    let c = 0;
    for (; c + 4 <= rows; c += 4) tile4x8(xPanels + <usize>(c >> 2) * xPanelBytes, dp, acc + <usize>c * accStride + (<usize>o << 2), len, 16, 32, accStride);
    for (; c < rows; c++) tile1x8(xPanels + <usize>(c >> 2) * xPanelBytes + (<usize>(c & 3) << 2), dp, acc + <usize>c * accStride + (<usize>o << 2), len, 16, 32);
  }
  for (; o < cols; o++) {
    const dp = dPanels + <usize>(o >> 3) * dPanelBytes + (<usize>(o & 7) << 2);
    for (let c = 0; c < rows; c++) tile1x1(xPanels + <usize>(c >> 2) * xPanelBytes + (<usize>(c & 3) << 2), dp, acc + <usize>c * accStride + (<usize>o << 2), len, 16, 32);
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
 * out[e] = Σ_k parts[k·stride + e] over chunks k = 0 … chunks − 1 in that order, for elements
 * [e0, e1) (so threads can split the elements; each element's sum has one order).
 */
function sumChunks(parts: usize, out: usize, stride: i32, chunks: i32, e0: i32, e1: i32): void {
  const strideBytes = <usize>stride << 2;
  let e = e0;
  for (; e + 4 <= e1; e += 4) {
    let p = parts + (<usize>e << 2);
    let s = v128.load(p);
    for (let k = 1; k < chunks; k++) {
      p += strideBytes;
      s = f32x4.add(s, v128.load(p));
    }
    v128.store(out + (<usize>e << 2), s);
  }
  for (; e < e1; e++) {
    let p = parts + (<usize>e << 2);
    let s = load<f32>(p);
    for (let k = 1; k < chunks; k++) {
      p += strideBytes;
      s += load<f32>(p);
    }
    store<f32>(out + (<usize>e << 2), s);
  }
}

/**
 * The work of one filter gradient as numbered units, for threads that take numbers in any order
 * (kernels/pool.ts, which passes the unit and the thread's number last): unit u is chunk
 * ⌊u / (cGroups·oBands)⌋ (positions [chunk·chunkP, …)), then input-channel group (cGroup wide)
 * and output band (oBand wide), chunk-major so that consecutive units share their rows of dy.
 * Chunk k's partial is parts + k·(kh·kw·C·Co) floats; thread t's scratch starts at
 * scratch + t·scratchFloats floats.
 */
export function filterGradJob(
  x: usize, dy: usize, parts: usize, scratch: usize, scratchFloats: i32,
  H: i32, W: i32, C: i32, OH: i32, OW: i32, Co: i32, kh: i32, kw: i32, sh: i32, sw: i32, padTop: i32, padLeft: i32,
  P: i32, chunkP: i32, cGroup: i32, oBand: i32, u: i32, thread: i32,
): void {
  const cGroups = (C + cGroup - 1) / cGroup;
  const oBands = (Co + oBand - 1) / oBand;
  const ob = u % oBands;
  const rest = u / oBands;
  const cg = rest % cGroups;
  const chunk = rest / cGroups;
  const p0 = chunk * chunkP;
  const part = parts + (<usize>chunk * <usize>(kh * kw * C) * <usize>Co << 2);
  filterGradUnit(
    x, dy, part, scratch + (<usize>thread * <usize>scratchFloats << 2), H, W, C, OH, OW, Co, kh, kw, sh, sw, padTop, padLeft,
    p0, min(p0 + chunkP, P), cg * cGroup, min((cg + 1) * cGroup, C), ob * oBand, min((ob + 1) * oBand, Co),
  );
}

/**
 * sumChunks for elements [u·perUnit, (u+1)·perUnit) ∩ [0, count), chunks `stride` floats apart
 * (≥ count): unit u of the final sum.
 */
export function sumChunksJob(parts: usize, out: usize, count: i32, stride: i32, chunks: i32, perUnit: i32, u: i32, thread: i32): void {
  const e0 = u * perUnit;
  sumChunks(parts, out, stride, chunks, e0, min(e0 + perUnit, count));
}
