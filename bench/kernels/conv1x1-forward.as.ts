// AssemblyScript, bench-only (compiled by bench/gemm-peak.mjs, never part of podium's build): a 1×1
// convolution's forward pass as podium would write it with the filter gradient's tiles
// (stages/tf/kernels/filter-grad.as.ts), to see whether an own forward kernel — the place where batch
// norm's statistics could be summed as the output is made — would cost more than XNNPACK's:
//   Y[p, o] = Σ_c X[p, c] · W[c, o]
// over c in order from +0 (XNNPACK's order: the bench checks the two agree bit for bit), W packed
// as bands of 8 outputs (wp[band][c][8], zero-padded), tiles of 4 positions × 8 outputs.

/** W [C, Co] → wp [⌈Co/8⌉][C][8]. */
export function packW(w: usize, wp: usize, C: i32, Co: i32): void {
  const bands = (Co + 7) >> 3;
  for (let b = 0; b < bands; b++) {
    for (let c = 0; c < C; c++) {
      const dst = wp + ((<usize>(b * C + c)) << 5);
      for (let k = 0; k < 8; k++) {
        const o = b * 8 + k;
        store<f32>(dst + (<usize>k << 2), o < Co ? load<f32>(w + ((<usize>(c * Co + o)) << 2)) : 0);
      }
    }
  }
}

/** Rows [p0, p1) of Y [P, Co] (Co a multiple of 8, as in every MobileNetV2 layer). */
export function gemmRows(x: usize, wp: usize, y: usize, p0: i32, p1: i32, C: i32, Co: i32): void {
  const xStride = <usize>C << 2;
  const yStride = <usize>Co << 2;
  const bands = Co >> 3;
  let p = p0;
  for (; p + 4 <= p1; p += 4) {
    const xr = x + <usize>p * xStride;
    const yr = y + <usize>p * yStride;
    for (let b = 0; b < bands; b++) tile4x8(xr, xStride, wp + (<usize>(b * C) << 5), yr + (<usize>b << 5), yStride, C);
  }
  for (; p < p1; p++) {
    const xr = x + <usize>p * xStride;
    const yr = y + <usize>p * yStride;
    for (let b = 0; b < bands; b++) tile1x8(xr, wp + (<usize>(b * C) << 5), yr + (<usize>b << 5), C);
  }
}

/** 4 positions × 8 outputs: 8 accumulators, each x value broadcast once per input channel. */
function tile4x8(x0: usize, xStride: usize, wp: usize, y0: usize, yStride: usize, C: i32): void {
  const x1 = x0 + xStride, x2 = x1 + xStride, x3 = x2 + xStride;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), b0 = f32x4.splat(0), b1 = f32x4.splat(0);
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), e0 = f32x4.splat(0), e1 = f32x4.splat(0);
  const end = <usize>C << 2;
  for (let k: usize = 0; k < end; k += 4) {
    const d0 = v128.load(wp);
    const d1 = v128.load(wp, 16);
    let s = v128.load32_splat(x0 + k);
    a0 = f32x4.add(a0, f32x4.mul(s, d0));
    a1 = f32x4.add(a1, f32x4.mul(s, d1));
    s = v128.load32_splat(x1 + k);
    b0 = f32x4.add(b0, f32x4.mul(s, d0));
    b1 = f32x4.add(b1, f32x4.mul(s, d1));
    s = v128.load32_splat(x2 + k);
    c0 = f32x4.add(c0, f32x4.mul(s, d0));
    c1 = f32x4.add(c1, f32x4.mul(s, d1));
    s = v128.load32_splat(x3 + k);
    e0 = f32x4.add(e0, f32x4.mul(s, d0));
    e1 = f32x4.add(e1, f32x4.mul(s, d1));
    wp += 32;
  }
  v128.store(y0, a0); v128.store(y0, a1, 16);
  const y1 = y0 + yStride, y2 = y1 + yStride, y3 = y2 + yStride;
  v128.store(y1, b0); v128.store(y1, b1, 16);
  v128.store(y2, c0); v128.store(y2, c1, 16);
  v128.store(y3, e0); v128.store(y3, e1, 16);
}

/** The positions left over after groups of 4. */
function tile1x8(x0: usize, wp: usize, y0: usize, C: i32): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
  const end = <usize>C << 2;
  for (let k: usize = 0; k < end; k += 4) {
    const s = v128.load32_splat(x0 + k);
    a0 = f32x4.add(a0, f32x4.mul(s, v128.load(wp)));
    a1 = f32x4.add(a1, f32x4.mul(s, v128.load(wp, 16)));
    wp += 32;
  }
  v128.store(y0, a0); v128.store(y0, a1, 16);
}
