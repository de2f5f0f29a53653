/**
 * The convolution gradients of wasm-gradients.ts, each a composition of kernels the wasm backend
 * does ship and that are fast there: Conv2D and DepthwiseConv2dNative (XNNPACK), rank ≤ 4
 * Transpose, PadV2, Slice, Reshape, Reverse, Sum, Fill — plus podium's own SIMD loops, on the
 * threads of kernels/pool.ts, for both depthwise gradients with channel multiplier 1
 * (kernels/depthwise-grad.as.ts) and for every Conv2D filter gradient (kernels/filter-grad.as.ts).
 * The attributes' checks and the dimensions each algorithm needs are conv-geometry.ts's.
 *
 * Performance facts that chose the algorithms below, measured on our 2-core machines when the
 * backend still ran the package's single-threaded build (under Node it now runs the threaded SIMD
 * build, wasm-threads.ts; the ratios are what chose the forms, not current timings):
 *  - Conv2D is XNNPACK GEMM: ~5 GMAC/s, also with dilation > 1. So a big
 *    "correlate x with dy" conv is cheap, whatever its shape.
 *  - DepthwiseConv2dNative is fast only for small kernels (≤ 5×5) with channel
 *    multiplier 1. Large kernels fall back to a grouped GEMM that packs the
 *    filter into 8-wide column blocks, so a multiplier-1 filter costs 8× its
 *    size in packing; fewer, larger groups and smaller filters are faster.
 *  - Transposes of rank > 4 are slow; wasm-ops.ts plans them as rank ≤ 4 ones.
 *  - DepthToSpace, SpaceToBatchND and StridedSlice with strides > 1 are slow
 *    (90+ ms for 1.6 M floats), so phase shuffles are done with reshape + rank ≤ 4
 *    transposes instead. (The package's Slice was a JS loop then too; podium's
 *    own Slice, wasm-slice.ts, now copies inside the heap.)
 *  - Forward Conv2D/DepthwiseConv2dNative with numeric or explicit padding is
 *    broken in tfjs-backend-wasm 4.22 (wrong values, heap corruption), so we
 *    only ever call them with 'valid' padding and pad explicitly with PadV2.
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';

import { separatedStride, type UnitPool } from './kernels/pool.js';
import { ceilDiv, windowArgs, type GradientDims, type Shape4 } from './conv-geometry.js';
import type { WasmOps } from './wasm-ops.js';

/**
 * One gradient's algorithm, given its two tensor inputs (x and dy, or dy and the filter), the
 * shape it is asked for, its checked dimensions (never empty: wasm-gradients.ts answers those with
 * zeros) and the kernel threads.
 */
export type GradientImpl = (
  ops: WasmOps,
  first: TensorInfo,
  second: TensorInfo,
  shape: Shape4,
  d: GradientDims,
  pool: () => UnitPool,
) => TensorInfo;

/**
 * Positions per chunk of the filter gradient's reduction (kernels/filter-grad.as.ts): each chunk's
 * sum runs over its positions in order, then the chunks are added in order. The only parameter
 * of the kernel that changes its bytes, so it is fixed (finetune's version pins it).
 */
export const FILTER_GRAD_CHUNK = 4096;

/** MAX_TAPS in kernels/depthwise-grad.as.ts: larger depthwise kernels take the composed path. */
const DEPTHWISE_MAX_TAPS = 64;

/** Positions per packed block: BLOCK in kernels/filter-grad.as.ts (sizes each thread's scratch). */
const FILTER_GRAD_BLOCK = 64;

/** `total` split into ⌈total / most⌉ near-equal groups, each a multiple of `multiple`. */
function evenGroups(total: number, most: number, multiple: number): number {
  const groups = Math.ceil(total / most);
  return Math.ceil(total / groups / multiple) * multiple;
}

/**
 * Conv2D filter gradient, podium's own kernel (kernels/filter-grad.as.ts) on the backend's heap:
 *   dW[i, j, c, co] = Σ_{n,y,x} x[n, sh·y + i − padTop, sw·x + j − padLeft, c] · dy[n, y, x, co]
 * a matrix product whose reduction runs over the P = N·OH·OW output positions, read in place
 * (XNNPACK would pack one operand, all P rows of it, afresh on every call: docs/performance.md).
 * Threads take units of (chunk of positions, tap, input-channel group, output band); the result
 * depends on FILTER_GRAD_CHUNK only, not on the thread count.
 */
export const conv2DBackpropFilterImpl: GradientImpl = (ops, x, dy, filterShape, d, pool) => {
  const { N, H, W, C, kh, kw, OH, OW, dyC: Co, sh, sw, padTop, padLeft } = d;
  const P = N * OH * OW;
  // A 1×1 stride-1 convolution that reads every pixel is one run of P rows: no row boundaries.
  const flat = kh === 1 && kw === 1 && sh === 1 && sw === 1 && padTop === 0 && padLeft === 0 && OH === H && OW === W;
  const [h, w, oh, ow] = flat ? [1, P, 1, P] : [H, W, OH, OW];
  const K = kh * kw * C;
  const chunks = Math.ceil(P / FILTER_GRAD_CHUNK);
  const out = ops.empty(filterShape);
  const parts = chunks === 1 ? out : ops.empty([chunks * K * Co]);
  // Group and band sizes change only which thread computes what, never a sum's order.
  const cGroup = evenGroups(C, 64, 4);
  const oBand = evenGroups(Co, 128, 8);
  const units = chunks * Math.ceil(C / cGroup) * Math.ceil(Co / oBand);
  const threads = pool();
  // Each thread packs a block of x and of dy into its own scratch (kernels/filter-grad.as.ts).
  const scratchFloats = FILTER_GRAD_BLOCK * (Math.ceil(cGroup / 4) * 4 + Math.ceil(oBand / 8) * 8);
  const scratch = ops.empty([threads.threads * scratchFloats]);
  threads.run(
    'filterGradJob',
    [
      ops.offset(x),
      ops.offset(dy),
      ops.offset(parts),
      ops.offset(scratch),
      scratchFloats,
      h,
      w,
      C,
      oh,
      ow,
      Co,
      ...windowArgs(d),
      P,
      FILTER_GRAD_CHUNK,
      cGroup,
      oBand,
    ],
    units,
  );
  if (chunks > 1) {
    const perUnit = 4096;
    threads.run(
      'sumChunksJob',
      [ops.offset(parts), ops.offset(out), K * Co, K * Co, chunks, perUnit],
      Math.ceil((K * Co) / perUnit),
    );
  }
  return out;
};

/**
 * Conv2D input gradient (transposed convolution) as ONE stride-1 Conv2D,
 * the "sub-pixel convolution" form: output phase (p,q) of dx only receives
 * filter taps i ≡ p (mod sh), j ≡ q (mod sw), so
 *   dxpad[n, sh·u+p, sw·v+q, ci] = Σ_{t,r,co} dy[n, u-t, v-r, co] · w[p+sh·t, q+sw·r, ci, co].
 * All sh·sw phase filters (spatially flipped, in/out swapped) are stacked
 * into the output channels of one conv over dy padded by ⌈k/s⌉-1; the phases
 * are then interleaved with a rank-4 transpose (DepthToSpace is slow on wasm)
 * and the forward padding is cropped off. No zeros are inserted into dy.
 */
export const conv2DBackpropInputImpl: GradientImpl = (ops, dy, filter, _inputShape, d) => {
  const { N, H, W, C: Ci, kh, kw, out: Co, OH, OW, sh, sw, padTop, padLeft } = d;
  const A = ceilDiv(kh, sh);
  const B = ceilDiv(kw, sw);
  // Phase rows u cover padded rows sh·u .. sh·u+sh-1; skip the u0 rows that
  // lie entirely in the forward top padding, stop after the last real row.
  const u0 = Math.floor(padTop / sh);
  const v0 = Math.floor(padLeft / sw);
  const U = Math.floor((padTop + H - 1) / sh) + 1 - u0;
  const V = Math.floor((padLeft + W - 1) / sw) + 1 - v0;
  const dyp = ops.padOrCrop(dy, [
    [0, 0],
    [A - 1 - u0, U + u0 - OH],
    [B - 1 - v0, V + v0 - OW],
    [0, 0],
  ]);

  // Phase filters: w [kh,kw,Ci,Co] → pad to [A·sh, B·sw] → [A, p, B, q, Ci, Co]
  // → flip t, r → [A, B, Co, p, q, Ci] → [A, B, Co, sh·sw·Ci].
  const wp = ops.padOrCrop(filter, [
    [0, A * sh - kh],
    [0, B * sw - kw],
    [0, 0],
    [0, 0],
  ]);
  const flipped = ops.reverse(ops.reshape(wp, [A, sh, B, sw, Ci, Co]), [0, 2]);
  const phaseFilter = ops.reshape(ops.transpose(flipped, [0, 2, 5, 1, 3, 4]), [A, B, Co, sh * sw * Ci]);
  const out = ops.conv2d(dyp, phaseFilter); // [N, U, V, sh·sw·Ci]

  let full = out; // rows/cols of the padded dx starting at (sh·u0, sw·v0)
  if (sh !== 1 || sw !== 1) {
    // [N, U, V, p, q·Ci] → [N, U, p, V, q·Ci] (one rank-4 transpose)
    const inter = ops.transpose(ops.reshape(out, [N, U, V, sh, sw * Ci]), [0, 1, 3, 2, 4]);
    full = ops.reshape(inter, [N, U * sh, V * sw, Ci]);
  }
  return ops.slice(full, [0, padTop - sh * u0, padLeft - sw * v0, 0], [N, H, W, Ci]);
};

/**
 * Depthwise input gradient. Multiplier 1 (MobileNet's depthwise layers): podium's kernel gathers
 * each pixel's taps from dy in place, one row of dx per unit (kernels/depthwise-grad.as.ts).
 * Otherwise: zero-stuff dy at the stride, pad so that it
 * lines up with the forward padding, and correlate with the spatially
 * flipped filter as a stride-1 depthwise conv over the C·M dy channels;
 * then sum the channel multiplier away. Depthwise convs are cheap (k² MACs
 * per element), so the s² zero-stuffing overhead is acceptable here and
 * keeps the channel-multiplier bookkeeping to a single innermost Sum.
 */
export const depthwiseBackpropInputImpl: GradientImpl = (ops, dy, filter, inputShape, d, pool) => {
  const { N, H, W, C, kh, kw, out: M, OH, OW, dyC: CM, sh, sw, padTop, padLeft } = d;
  if (M === 1 && kh * kw <= DEPTHWISE_MAX_TAPS) {
    const threads = pool();
    const dx = ops.empty(inputShape);
    const taps = ops.empty([threads.threads * 2 * DEPTHWISE_MAX_TAPS]); // each thread's tap list
    threads.run(
      'depthwiseInputGradJob',
      [ops.offset(dy), ops.offset(filter), ops.offset(dx), ops.offset(taps), H, W, C, OH, OW, ...windowArgs(d)],
      N * H,
    );
    return dx;
  }
  // Zero-stuffing with two cheap rank-3/4 pads instead of a rank-6 pad:
  // [N·OH, OW, 1, CM] → [N·OH, OW, sw, CM], then [N·OH, 1, OW·sw·CM] → [N·OH, sh, …].
  let stuffed = dy;
  if (sw > 1)
    stuffed = ops.padOrCrop(ops.reshape(stuffed, [N * OH, OW, 1, CM]), [
      [0, 0],
      [0, 0],
      [0, sw - 1],
      [0, 0],
    ]);
  if (sh > 1)
    stuffed = ops.padOrCrop(ops.reshape(stuffed, [N * OH, 1, OW * sw * CM]), [
      [0, 0],
      [0, sh - 1],
      [0, 0],
    ]);
  const Hz = OH * sh; // includes sh-1 trailing zero rows, harmless
  const Wz = OW * sw;
  stuffed = ops.reshape(stuffed, [N, Hz, Wz, CM]);
  // dx[h] = Σ_i' zpad[h + i'] · wflip[i'] with zpad[k] = z[k + padTop - (kh-1)].
  const zp = ops.padOrCrop(stuffed, [
    [0, 0],
    [kh - 1 - padTop, H + padTop - Hz],
    [kw - 1 - padLeft, W + padLeft - Wz],
    [0, 0],
  ]);
  const flipped = ops.reshape(ops.reverse(filter, [0, 1]), [kh, kw, C * M, 1]);
  const out = ops.depthwise(zp, flipped); // [N, H, W, C·M]
  if (M === 1) return out;
  return ops.sumLast(ops.reshape(out, [N, H, W, C, M]));
};

/**
 * Depthwise filter gradient as ONE stride-1 depthwise conv. Depthwise
 * channels are independent, so (channel, example) pairs become the depthwise
 * *channels* and dy (transposed to [OH, OW, C·N, M]) is the depthwise
 * *filter*; the sh·sw input phases are the *batch*. The output
 * [sh·sw, A, B, C·N·M] is summed over N and interleaved to [kh, kw, C, M].
 * Why phases and not dilation = stride (as for Conv2D): the depthwise GEMM
 * fallback is dominated by packing dy, and the phase form keeps the filter
 * small and the batch large (the conv alone: 33 ms vs 59 ms for x
 * [8,56,56,144], stride 2).
 * The whole gradient was ~1.7× faster than a per-tap slice/multiply/reduce
 * loop (with the package's Slice, a JS loop; wasm-slice.ts has replaced it since).
 */
export const depthwiseBackpropFilterImpl: GradientImpl = (ops, x, dy, filterShape, d, pool) => {
  const { N, H, W, C, kh, kw, out: M, OH, OW, sh, sw, padTop, padLeft } = d;
  if (M === 1) {
    // Multiplier 1 (MobileNet's depthwise layers): podium's SIMD loop reads x and dy in place,
    // where the composition below packs and shuffles them (30% of a MobileNetV2 step). One unit
    // per image (kernels/depthwise-grad.as.ts), then the images' sums are added in order.
    const taps = kh * kw * C;
    const out = ops.empty(filterShape);
    const stride = separatedStride(taps);
    const parts = ops.empty([N * stride]);
    const threads = pool();
    threads.run(
      'depthwiseFilterGradJob',
      [ops.offset(x), ops.offset(dy), ops.offset(parts), stride, H, W, C, OH, OW, ...windowArgs(d)],
      N,
    );
    const perUnit = 4096;
    threads.run(
      'sumChunksJob',
      [ops.offset(parts), ops.offset(out), taps, stride, N, perUnit],
      Math.ceil(taps / perUnit),
    );
    return out;
  }

  const A = ceilDiv(kh, sh);
  const B = ceilDiv(kw, sw);
  const Hs = OH + A - 1;
  const Ws = OW + B - 1;
  const xp = ops.padOrCrop(x, [
    [0, 0],
    [padTop, sh * Hs - H - padTop],
    [padLeft, sw * Ws - W - padLeft],
    [0, 0],
  ]);
  // [N, Hs, p, Ws, q, C] → [p, q, Hs, Ws, C, N] → [sh·sw, Hs, Ws, C·N]
  const phases = ops.transpose(ops.reshape(xp, [N, Hs, sh, Ws, sw, C]), [2, 4, 1, 3, 5, 0]);
  const convIn = ops.reshape(phases, [sh * sw, Hs, Ws, C * N]);
  // dy [N, OH, OW, C, M] → [OH, OW, C, N, M] → depthwise filter [OH, OW, C·N, M]
  const dyT = ops.transpose(ops.reshape(dy, [N, OH, OW, C, M]), [1, 2, 3, 0, 4]);
  const convFilter = ops.reshape(dyT, [OH, OW, C * N, M]);
  const out = ops.depthwise(convIn, convFilter); // [sh·sw, A, B, C·N·M], channel = (c·N + n)·M + m
  // Sum over n: bring n innermost (tiny tensor) and reduce.
  const perSample = ops.transpose(ops.reshape(out, [sh * sw * A * B * C, N, M]), [0, 2, 1]);
  const summed = ops.sumLast(perSample); // [sh·sw·A·B·C·M]
  // [p, q, A, B, C, M] → [A, p, B, q, C, M] → [A·sh, B·sw, C, M] → crop
  const interleaved = ops.transpose(ops.reshape(summed, [sh, sw, A, B, C, M]), [2, 0, 3, 1, 4, 5]);
  return ops.slice(ops.reshape(interleaved, [A * sh, B * sw, C, M]), [0, 0, 0, 0], [kh, kw, C, M]);
};
