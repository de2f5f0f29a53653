/**
 * Convolution gradient kernels for the TensorFlow.js 'wasm' backend.
 *
 * Why this file exists: @tensorflow/tfjs-backend-wasm 4.22 registers no
 * `Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropFilter` or
 * `DepthwiseConv2dNativeBackpropInput` kernel (tfjs#8474), so `model.fit` of
 * any convnet dies with "Kernel 'Conv2DBackpropFilter' not registered for
 * backend 'wasm'". Its own `Conv2DBackpropInput` exists but is a naive loop
 * (1.1–2.2 s for x [8,56,56,64] × 64 3×3 filters on our 2-core machine).
 *
 * Every kernel here is a composition of kernels the wasm backend does ship and
 * that are fast there: Conv2D and DepthwiseConv2dNative (XNNPACK), rank ≤ 4
 * Transpose, PadV2, Slice, Reshape, Reverse, Sum, Fill.
 *
 * Performance facts measured on wasm (single-threaded under Node, 2 cores)
 * that shape the algorithms below:
 *  - Conv2D is XNNPACK GEMM: ~5 GMAC/s, also with dilation > 1. So a big
 *    "correlate x with dy" conv is cheap, whatever its shape.
 *  - DepthwiseConv2dNative is fast only for small kernels (≤ 5×5) with channel
 *    multiplier 1. Large kernels fall back to a grouped GEMM that packs the
 *    filter into 8-wide column blocks, so a multiplier-1 filter costs 8× its
 *    size in packing; fewer, larger groups and smaller filters are faster.
 *  - Transpose of effective rank ≤ 4 runs at memcpy-like speed (~10 ms for
 *    1.7 M floats); rank 5+ falls back to a generic loop that is ~15× slower.
 *    `transpose()` below merges adjacent axes and, if the permutation still
 *    needs rank > 4, splits it into a minimal sequence of rank ≤ 4 transposes.
 *  - DepthToSpace, SpaceToBatchND and StridedSlice with strides > 1 are slow
 *    (90+ ms for 1.6 M floats) and Slice is a JS loop, so phase shuffles are
 *    done with reshape + rank ≤ 4 transposes instead.
 *  - Forward Conv2D/DepthwiseConv2dNative with numeric or explicit padding is
 *    broken in tfjs-backend-wasm 4.22 (wrong values, heap corruption), so we
 *    only ever call them with 'valid' padding and pad explicitly with PadV2.
 *
 * Memory: kernels run on TensorInfos, calling the wasm kernel functions
 * directly (as the wasm backend itself does for composite kernels). Nothing
 * goes through the engine, so no tape recording and no tidy scopes are
 * involved; every intermediate is released with `backend.disposeData` in a
 * `finally`, and only the result's reference survives.
 */
import {
  backend_util,
  BatchMatMul,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  DepthwiseConv2dNative,
  DepthwiseConv2dNativeBackpropFilter,
  DepthwiseConv2dNativeBackpropInput,
  Fill,
  getKernel,
  PadV2,
  registerKernel,
  Reshape,
  Reverse,
  Slice,
  Sum,
  Transpose,
  unregisterKernel,
  util,
} from '@tensorflow/tfjs-core';
import type {
  Conv2DBackpropFilterAttrs,
  Conv2DBackpropInputAttrs,
  DepthwiseConv2dNativeBackpropFilterAttrs,
  DepthwiseConv2dNativeBackpropInputAttrs,
  KernelBackend,
  KernelConfig,
  KernelFunc,
  NamedAttrMap,
  NamedTensorInfoMap,
  TensorInfo,
} from '@tensorflow/tfjs-core';

import { heapOffset, heapOutput, trainKernels, type TrainKernels } from './wasm-kernels.js';

const WASM = 'wasm';

type Shape4 = [number, number, number, number];
type Pad = Conv2DBackpropFilterAttrs['pad'];
type RoundingMode = Conv2DBackpropFilterAttrs['dimRoundingMode'];

/** Common attributes of all four gradient kernels, already validated. */
interface GradGeometry {
  strides: [number, number] | number;
  pad: Pad;
  dimRoundingMode?: RoundingMode;
}

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

function fail(kernel: string, message: string): never {
  throw new Error(`${kernel} (podium wasm-gradients): ${message}`);
}

function at(values: readonly number[], index: number): number {
  const v = values[index];
  if (v === undefined) throw new Error(`internal: index ${index} out of range for [${values.join(',')}]`);
  return v;
}

function as4D(kernel: string, name: string, shape: readonly number[]): Shape4 {
  if (shape.length !== 4) fail(kernel, `${name} must be rank 4, got shape [${shape.join(',')}]`);
  return [at(shape, 0), at(shape, 1), at(shape, 2), at(shape, 3)];
}

function requireInput(kernel: string, inputs: NamedTensorInfoMap, name: string): TensorInfo {
  const t = inputs[name];
  if (t === undefined) fail(kernel, `missing input '${name}'`);
  return t;
}

function requireNHWC(kernel: string, dataFormat: string | undefined): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    fail(kernel, `only dataFormat 'NHWC' is supported on the wasm backend, got '${dataFormat}'`);
  }
}

function requireUnitDilations(kernel: string, dilations: [number, number] | number | undefined): void {
  // tfjs-core's DepthwiseConv2dNative gradient asserts dilations == 1 before
  // it ever calls these kernels; only direct runKernel callers can get here.
  if (dilations !== undefined && !backend_util.tupleValuesAreOne(dilations)) {
    fail(kernel, `dilations must be 1, got ${String(dilations)}`);
  }
}

function ceilDiv(a: number, b: number): number {
  return Math.ceil(a / b);
}

// ---------------------------------------------------------------------------
// Transpose planning: express any permutation as few rank ≤ 4 transposes.
// ---------------------------------------------------------------------------

/**
 * Drops size-1 axes and merges runs of axes that stay adjacent and in order
 * under `perm`. Returns the reduced input shape and permutation.
 */
function collapsePermutation(shape: readonly number[], perm: readonly number[]): { shape: number[]; perm: number[] } {
  const kept = perm.filter((axis) => at(shape, axis) !== 1);
  // Groups in output order: consecutive kept axes a, a+1 (skipping size-1 axes
  // in between, which carry no data) belong to the same group.
  const groups: number[][] = [];
  for (const axis of kept) {
    const last = groups[groups.length - 1];
    const prev = last?.[last.length - 1];
    let adjacent = prev !== undefined;
    if (prev !== undefined) {
      for (let a = prev + 1; a < axis; a++) if (at(shape, a) !== 1) adjacent = false;
      if (axis <= prev) adjacent = false;
    }
    if (adjacent && last !== undefined) last.push(axis);
    else groups.push([axis]);
  }
  // Order groups by their position in the input to get the reduced input shape.
  const byInput = groups.map((g, outPos) => ({ first: at(g, 0), outPos, size: g.reduce((p, a) => p * at(shape, a), 1) }));
  const inputOrder = [...byInput].sort((a, b) => a.first - b.first);
  const reducedShape = inputOrder.map((g) => g.size);
  const reducedPerm = byInput.map((g) => inputOrder.indexOf(g));
  return { shape: reducedShape, perm: reducedPerm };
}

const planCache = new Map<string, number[][]>();

/**
 * Breadth-first search for the shortest sequence of block permutations (each
 * moving at most 4 contiguous blocks, hence a rank ≤ 4 transpose after
 * collapsing) that turns the identity arrangement into `perm`. Each returned
 * entry is an intermediate arrangement (a list of original axes). Ranks here
 * are ≤ 7, so the search space is tiny and the result is cached.
 */
function planTranspose(perm: readonly number[]): number[][] {
  const key = perm.join(',');
  const cached = planCache.get(key);
  if (cached !== undefined) return cached;
  const rank = perm.length;
  const start = Array.from({ length: rank }, (_, i) => i);
  const parent = new Map<string, { prev: string; arr: number[] } | null>([[start.join(','), null]]);
  const blockPerms = [permutations(2), permutations(3), permutations(4)];
  let frontier = [start];
  let found: number[] | undefined;
  while (frontier.length > 0 && found === undefined) {
    const next: number[][] = [];
    for (const arr of frontier) {
      for (const cuts of cutPoints(rank)) {
        const blocks: number[][] = [];
        let from = 0;
        for (const c of [...cuts, rank]) {
          blocks.push(arr.slice(from, c));
          from = c;
        }
        const candidates = blockPerms[blocks.length - 2];
        if (candidates === undefined) continue;
        for (const bp of candidates) {
          const cand = bp.flatMap((b) => blocks[b] ?? []);
          const ck = cand.join(',');
          if (parent.has(ck)) continue;
          parent.set(ck, { prev: arr.join(','), arr: cand });
          if (ck === key) found = cand;
          next.push(cand);
        }
      }
    }
    frontier = next;
  }
  if (found === undefined) throw new Error(`internal: no transpose plan for [${key}]`);
  const steps: number[][] = [];
  for (let k: string | undefined = key; k !== undefined && k !== start.join(','); ) {
    const p = parent.get(k);
    if (p === undefined || p === null) break;
    steps.unshift(p.arr);
    k = p.prev;
  }
  planCache.set(key, steps);
  return steps;
}

function permutations(n: number): number[][] {
  if (n === 1) return [[0]];
  const out: number[][] = [];
  for (const p of permutations(n - 1)) {
    for (let i = 0; i <= p.length; i++) out.push([...p.slice(0, i), n - 1, ...p.slice(i)]);
  }
  return out;
}

/** All ways to cut [0, rank) into 2–4 non-empty contiguous blocks. */
function cutPoints(rank: number): number[][] {
  const out: number[][] = [];
  for (let a = 1; a < rank; a++) {
    out.push([a]);
    for (let b = a + 1; b < rank; b++) {
      out.push([a, b]);
      for (let c = b + 1; c < rank; c++) out.push([a, b, c]);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// A tiny op layer over the wasm kernels, owning its intermediates.
// ---------------------------------------------------------------------------

class WasmOps {
  private readonly temps: TensorInfo[] = [];

  constructor(
    private readonly backend: KernelBackend,
    private readonly kernelName: string,
  ) {}

  /** Runs a wasm kernel directly; the output is owned by this scope. */
  private run(name: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap): TensorInfo {
    const kernel = getKernel(name, WASM) as KernelConfig | undefined;
    if (kernel === undefined) fail(this.kernelName, `required wasm kernel '${name}' is not registered`);
    const out = kernel.kernelFunc({ inputs, backend: this.backend, attrs });
    if (Array.isArray(out)) fail(this.kernelName, `kernel '${name}' returned several outputs`);
    this.temps.push(out);
    return out;
  }

  /**
   * Releases every intermediate except `result`. Each TensorInfo produced by a
   * kernel holds exactly one backend reference (Reshape shares the buffer but
   * increments its refCount), so one disposeData per TensorInfo is balanced.
   */
  dispose(result?: TensorInfo): void {
    for (const t of this.temps) if (t !== result) this.backend.disposeData(t.dataId);
    this.temps.length = 0;
  }

  /** Makes sure the returned tensor is one this scope created (never an input). */
  own(t: TensorInfo): TensorInfo {
    return this.temps.includes(t) ? t : this.reshape(t, t.shape);
  }

  zeros(shape: readonly number[]): TensorInfo {
    return this.run(Fill, {}, { shape: [...shape], value: 0, dtype: 'float32' });
  }

  reshape(x: TensorInfo, shape: readonly number[]): TensorInfo {
    return this.run(Reshape, { x }, { shape: [...shape] });
  }

  /** Transpose that never hits the slow rank > 4 wasm path (see file header). */
  transpose(x: TensorInfo, perm: readonly number[]): TensorInfo {
    const outShape = perm.map((a) => at(x.shape, a));
    const reduced = collapsePermutation(x.shape, perm);
    if (reduced.perm.every((p, i) => p === i)) return this.reshape(x, outShape);
    if (reduced.perm.length <= 4) {
      const flat = this.reshape(x, reduced.shape);
      const moved = this.run(Transpose, { x: flat }, { perm: reduced.perm });
      return this.reshape(moved, outShape);
    }
    // Rank > 4 even after collapsing: chain rank ≤ 4 block moves.
    let cur = this.reshape(x, reduced.shape);
    let arrangement = reduced.perm.map((_, i) => i);
    for (const step of planTranspose(reduced.perm)) {
      const stepPerm = step.map((axis) => arrangement.indexOf(axis));
      cur = this.transpose(cur, stepPerm);
      arrangement = step;
    }
    return this.reshape(cur, outShape);
  }

  /**
   * Per-axis [before, after] padding where negative amounts crop. Slices
   * first when possible so the pad copies less.
   */
  padOrCrop(x: TensorInfo, spec: ReadonlyArray<readonly [number, number]>): TensorInfo {
    if (spec.every(([b, a]) => b === 0 && a === 0)) return x;
    const target = spec.map(([b, a], i) => at(x.shape, i) + b + a);
    if (target.some((n) => n <= 0)) return this.zeros(target.map((n) => Math.max(n, 0)));
    const sliceFirst = spec.every(([b, a], i) => at(x.shape, i) - Math.max(-b, 0) - Math.max(-a, 0) > 0);
    const padding = spec.map(([b, a]) => [Math.max(b, 0), Math.max(a, 0)]);
    const needsPad = padding.some(([b, a]) => b !== 0 || a !== 0);
    const needsCrop = spec.some(([b, a]) => b < 0 || a < 0);
    if (sliceFirst) {
      let cur = x;
      if (needsCrop) {
        const begin = spec.map(([b]) => Math.max(-b, 0));
        const size = spec.map(([b, a], i) => at(x.shape, i) - Math.max(-b, 0) - Math.max(-a, 0));
        cur = this.run(Slice, { x: cur }, { begin, size });
      }
      if (needsPad) cur = this.run(PadV2, { x: cur }, { paddings: padding, constantValue: 0 });
      return cur;
    }
    const padded = needsPad ? this.run(PadV2, { x }, { paddings: padding, constantValue: 0 }) : x;
    return this.slice(padded, spec.map(([b]) => Math.max(-b, 0)), target);
  }

  slice(x: TensorInfo, begin: readonly number[], size: readonly number[]): TensorInfo {
    if (begin.every((b) => b === 0) && size.every((s, i) => s === at(x.shape, i))) return x;
    return this.run(Slice, { x }, { begin: [...begin], size: [...size] });
  }

  reverse(x: TensorInfo, dims: readonly number[]): TensorInfo {
    const effective = dims.filter((d) => at(x.shape, d) > 1);
    if (effective.length === 0) return x;
    return this.run(Reverse, { x }, { dims: effective });
  }

  /** Sum over the innermost axis (the only reduction wasm does without a transpose). */
  sumLast(x: TensorInfo): TensorInfo {
    if (at(x.shape, x.shape.length - 1) === 1) return this.reshape(x, x.shape.slice(0, -1));
    return this.run(Sum, { x }, { axis: [x.shape.length - 1], keepDims: false });
  }

  /**
   * [M, K] · [K, N] → [M, N]. With batch 1 and no transposes, wasm runs this as an XNNPACK
   * fully-connected operator, which packs `b` (as its weights) on every call with a new `b`.
   */
  matMul(a: TensorInfo, b: TensorInfo): TensorInfo {
    const [m, k] = [at(a.shape, 0), at(a.shape, 1)];
    const out = this.run(BatchMatMul, { a: this.reshape(a, [1, m, k]), b: this.reshape(b, [1, k, at(b.shape, 1)]) }, { transposeA: false, transposeB: false });
    return this.reshape(out, [m, at(b.shape, 1)]);
  }

  /** Stride-1 'valid' Conv2D (XNNPACK). */
  conv2d(x: TensorInfo, filter: TensorInfo, dilations: [number, number] = [1, 1]): TensorInfo {
    return this.run(Conv2D, { x, filter }, { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations });
  }

  /** An uninitialised float32 tensor owned by this scope, for podium's own kernels to fill. */
  empty(shape: readonly number[]): TensorInfo {
    const out = heapOutput(this.backend, shape);
    this.temps.push(out);
    return out;
  }

  /** Byte offset of a tensor in the wasm heap, for podium's own kernels (wasm-kernels.ts). */
  offset(t: TensorInfo): number {
    return heapOffset(this.backend, t);
  }

  get kernels(): TrainKernels {
    return trainKernels(this.backend);
  }

  /** Stride-1, dilation-1, 'valid' DepthwiseConv2dNative. */
  depthwise(x: TensorInfo, filter: TensorInfo): TensorInfo {
    return this.run(DepthwiseConv2dNative, { x, filter }, { strides: [1, 1], pad: 'valid', dilations: [1, 1] });
  }
}

/** Runs `body` with a fresh op scope, returning its result and freeing the rest. */
function withOps(backend: {}, kernelName: string, body: (ops: WasmOps) => TensorInfo): TensorInfo {
  const ops = new WasmOps(backend as KernelBackend, kernelName);
  let result: TensorInfo | undefined;
  try {
    result = ops.own(body(ops));
    return result;
  } finally {
    ops.dispose(result);
  }
}

/**
 * Forward-pass geometry exactly as tfjs computes it (pads for 'same' follow
 * TF: total = max((out-1)*stride + k - in, 0), top = floor(total / 2)).
 */
function geometry(kernel: string, xShape: Shape4, filterShape: Shape4, dyShape: Shape4, g: GradGeometry, depthwise: boolean) {
  const info = backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    g.strides,
    1,
    g.pad,
    g.dimRoundingMode,
    depthwise,
    'channelsLast',
  );
  if (info.outHeight !== dyShape[1] || info.outWidth !== dyShape[2] || info.outChannels !== dyShape[3] || info.batchSize !== dyShape[0]) {
    fail(
      kernel,
      `dy shape [${dyShape.join(',')}] does not match the forward output [${info.outShape.join(',')}] ` +
        `for x [${xShape.join(',')}], filter [${filterShape.join(',')}], strides ${String(g.strides)}, pad ${JSON.stringify(g.pad)}`,
    );
  }
  return {
    sh: info.strideHeight,
    sw: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

// ---------------------------------------------------------------------------
// Pure gradient computations on TensorInfos (backend = the wasm backend).
// ---------------------------------------------------------------------------

/**
 * Conv2D filter gradient as ONE Conv2D over transposed tensors:
 *   dW[i, j, c, co] = Σ_{n,y,x} xpad[n, sh·y+i, sw·x+j, c] · dy[n, y, x, co]
 * is a correlation of xpad with dy dilated by the stride. So the input
 * channels C become the conv *batch*, the examples N become the conv *input
 * channels*, and dy (transposed to [OH, OW, N, Co]) is the conv *filter*
 * with dilation = forward stride; the 'valid' output [C, kh, kw, Co] is
 * transposed to [kh, kw, C, Co]. x is padded (or cropped) explicitly exactly
 * like the forward pass saw it. XNNPACK turns this into one big GEMM
 * (K = N·OH·OW), ~1.1× the forward conv's time for stride 1. For stride 2
 * the dilated conv measured 31 ms vs 80 ms for a polyphase (space-to-batch)
 * variant, because it computes exactly k² taps and needs no rank-6 shuffles.
 */
function conv2DBackpropFilterImpl(ops: WasmOps, x: TensorInfo, dy: TensorInfo, filterShape: Shape4, g: GradGeometry): TensorInfo {
  const K = Conv2DBackpropFilter;
  const [N, H, W, C] = as4D(K, 'x', x.shape);
  const dyShape = as4D(K, 'dy', dy.shape);
  const [kh, kw, fC] = filterShape;
  if (fC !== C) fail(K, `filterShape in-channels ${fC} != x channels ${C}`);
  const { sh, sw, padTop, padLeft } = geometry(K, [N, H, W, C], filterShape, dyShape, g, false);
  const [, OH, OW] = dyShape;
  if (util.sizeFromShape(x.shape) === 0 || util.sizeFromShape(dy.shape) === 0) return ops.zeros(filterShape);

  if (kh === 1 && kw === 1 && sh === 1 && sw === 1 && OH === H && OW === W) {
    // A 1×1 stride-1 convolution is a matrix product over the pixels P = N·H·W, so
    // dW[C, Co] = Xᵀ · dY. XNNPACK packs the product's right operand afresh on every call (dy is
    // new each step), and packing, not arithmetic, is what costs (docs/performance.md): so the
    // smaller of X and dY goes right, untransposed, and the larger is transposed on the left.
    // MobileNetV2's 16→96 expansion at 128 px, batch 32: 200 ms against 590 ms for the
    // conv form below (node bench/filter-gradient.mjs 1, load ~3.5).
    const Co = at(dyShape, 3);
    const P = N * H * W;
    const x2 = ops.reshape(x, [P, C]);
    const dy2 = ops.reshape(dy, [P, Co]);
    const dW = C <= Co ? ops.transpose(ops.matMul(ops.transpose(dy2, [1, 0]), x2), [1, 0]) : ops.matMul(ops.transpose(x2, [1, 0]), dy2);
    return ops.reshape(dW, filterShape);
  }

  // Rows the forward pass actually read: (OH-1)·sh + kh, starting at -padTop.
  const Hp = (OH - 1) * sh + kh;
  const Wp = (OW - 1) * sw + kw;
  const xp = ops.padOrCrop(x, [
    [0, 0],
    [padTop, Hp - H - padTop],
    [padLeft, Wp - W - padLeft],
    [0, 0],
  ]);
  const convIn = ops.transpose(xp, [3, 1, 2, 0]); // [C, Hp, Wp, N]
  const convFilter = ops.transpose(dy, [1, 2, 0, 3]); // [OH, OW, N, Co]
  const out = ops.conv2d(convIn, convFilter, [sh, sw]); // [C, kh, kw, Co]
  return ops.transpose(out, [1, 2, 0, 3]);
}

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
function conv2DBackpropInputImpl(ops: WasmOps, dy: TensorInfo, filter: TensorInfo, inputShape: Shape4, g: GradGeometry): TensorInfo {
  const K = Conv2DBackpropInput;
  const [N, H, W, Ci] = inputShape;
  const filterShape = as4D(K, 'filter', filter.shape);
  const [kh, kw, fCi, Co] = filterShape;
  if (fCi !== Ci) fail(K, `filter in-channels ${fCi} != inputShape channels ${Ci}`);
  const dyShape = as4D(K, 'dy', dy.shape);
  const { sh, sw, padTop, padLeft } = geometry(K, inputShape, filterShape, dyShape, g, false);
  const [, OH, OW] = dyShape;
  if (util.sizeFromShape(inputShape) === 0 || util.sizeFromShape(dy.shape) === 0 || util.sizeFromShape(filter.shape) === 0) {
    return ops.zeros(inputShape);
  }

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
}

/**
 * Depthwise input gradient: zero-stuff dy at the stride, pad so that it
 * lines up with the forward padding, and correlate with the spatially
 * flipped filter as a stride-1 depthwise conv over the C·M dy channels;
 * then sum the channel multiplier away. Depthwise convs are cheap (k² MACs
 * per element), so the s² zero-stuffing overhead is acceptable here and
 * keeps the channel-multiplier bookkeeping to a single innermost Sum.
 */
function depthwiseBackpropInputImpl(ops: WasmOps, dy: TensorInfo, filter: TensorInfo, inputShape: Shape4, g: GradGeometry): TensorInfo {
  const K = DepthwiseConv2dNativeBackpropInput;
  const [N, H, W, C] = inputShape;
  const filterShape = as4D(K, 'filter', filter.shape);
  const [kh, kw, fC, M] = filterShape;
  if (fC !== C) fail(K, `filter in-channels ${fC} != inputShape channels ${C}`);
  const dyShape = as4D(K, 'dy', dy.shape);
  const { sh, sw, padTop, padLeft } = geometry(K, inputShape, filterShape, dyShape, g, true);
  const [, OH, OW, CM] = dyShape;
  if (util.sizeFromShape(inputShape) === 0 || util.sizeFromShape(dy.shape) === 0 || util.sizeFromShape(filter.shape) === 0) {
    return ops.zeros(inputShape);
  }

  // Zero-stuffing with two cheap rank-3/4 pads instead of a rank-6 pad:
  // [N·OH, OW, 1, CM] → [N·OH, OW, sw, CM], then [N·OH, 1, OW·sw·CM] → [N·OH, sh, …].
  let stuffed = dy;
  if (sw > 1) stuffed = ops.padOrCrop(ops.reshape(stuffed, [N * OH, OW, 1, CM]), [[0, 0], [0, 0], [0, sw - 1], [0, 0]]);
  if (sh > 1) stuffed = ops.padOrCrop(ops.reshape(stuffed, [N * OH, 1, OW * sw * CM]), [[0, 0], [0, sh - 1], [0, 0]]);
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
}

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
 * The whole gradient is ~1.7× faster than a per-tap slice/multiply/reduce
 * loop (Slice is a JS loop on wasm).
 */
function depthwiseBackpropFilterImpl(ops: WasmOps, x: TensorInfo, dy: TensorInfo, filterShape: Shape4, g: GradGeometry): TensorInfo {
  const K = DepthwiseConv2dNativeBackpropFilter;
  const [N, H, W, C] = as4D(K, 'x', x.shape);
  const [kh, kw, fC, M] = filterShape;
  if (fC !== C) fail(K, `filterShape in-channels ${fC} != x channels ${C}`);
  const dyShape = as4D(K, 'dy', dy.shape);
  const { sh, sw, padTop, padLeft } = geometry(K, [N, H, W, C], filterShape, dyShape, g, true);
  const [, OH, OW] = dyShape;
  if (util.sizeFromShape(x.shape) === 0 || util.sizeFromShape(dy.shape) === 0) return ops.zeros(filterShape);

  if (M === 1) {
    // Multiplier 1 (MobileNet's depthwise layers): podium's SIMD loop reads x and dy in place,
    // where the composition below packs and shuffles them (30% of a MobileNetV2 step).
    const out = ops.empty(filterShape);
    const scratch = ops.empty([kh * kw * C]);
    ops.kernels.depthwiseFilterGrad(ops.offset(x), ops.offset(dy), ops.offset(out), ops.offset(scratch), N, H, W, C, OH, OW, kh, kw, sh, sw, padTop, padLeft);
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
}

// ---------------------------------------------------------------------------
// Kernel functions (attrs/inputs exactly as in tfjs-core kernel_names.ts).
// ---------------------------------------------------------------------------

export const conv2DBackpropFilterKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const K = Conv2DBackpropFilter;
  const a = attrs as unknown as Conv2DBackpropFilterAttrs;
  requireNHWC(K, a.dataFormat);
  const x = requireInput(K, inputs, 'x');
  const dy = requireInput(K, inputs, 'dy');
  const filterShape = as4D(K, 'filterShape', a.filterShape);
  return withOps(backend, K, (ops) => conv2DBackpropFilterImpl(ops, x, dy, filterShape, a));
};

export const depthwiseConv2dNativeBackpropFilterKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const K = DepthwiseConv2dNativeBackpropFilter;
  const a = attrs as unknown as DepthwiseConv2dNativeBackpropFilterAttrs;
  requireUnitDilations(K, a.dilations);
  const x = requireInput(K, inputs, 'x');
  const dy = requireInput(K, inputs, 'dy');
  const filterShape = as4D(K, 'filterShape', a.filterShape);
  return withOps(backend, K, (ops) => depthwiseBackpropFilterImpl(ops, x, dy, filterShape, a));
};

export const depthwiseConv2dNativeBackpropInputKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const K = DepthwiseConv2dNativeBackpropInput;
  const a = attrs as unknown as DepthwiseConv2dNativeBackpropInputAttrs;
  requireUnitDilations(K, a.dilations);
  const dy = requireInput(K, inputs, 'dy');
  const filter = requireInput(K, inputs, 'filter');
  const inputShape = as4D(K, 'inputShape', a.inputShape);
  return withOps(backend, K, (ops) => depthwiseBackpropInputImpl(ops, dy, filter, inputShape, a));
};

/** wasm's own Conv2DBackpropInput, kept for NCHW (which our version does not do). */
let nativeConv2DBackpropInput: KernelConfig | undefined;

export const conv2DBackpropInputKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const K = Conv2DBackpropInput;
  const a = attrs as unknown as Conv2DBackpropInputAttrs;
  if (a.dataFormat === 'NCHW' && nativeConv2DBackpropInput !== undefined) {
    return nativeConv2DBackpropInput.kernelFunc({ inputs, backend, attrs });
  }
  requireNHWC(K, a.dataFormat);
  const dy = requireInput(K, inputs, 'dy');
  const filter = requireInput(K, inputs, 'filter');
  const inputShape = as4D(K, 'inputShape', a.inputShape);
  return withOps(backend, K, (ops) => conv2DBackpropInputImpl(ops, dy, filter, inputShape, a));
};

const missingKernels: ReadonlyArray<{ kernelName: string; kernelFunc: KernelFunc }> = [
  { kernelName: Conv2DBackpropFilter, kernelFunc: conv2DBackpropFilterKernel },
  { kernelName: DepthwiseConv2dNativeBackpropFilter, kernelFunc: depthwiseConv2dNativeBackpropFilterKernel },
  { kernelName: DepthwiseConv2dNativeBackpropInput, kernelFunc: depthwiseConv2dNativeBackpropInputKernel },
];

export interface RegisterWasmGradientOptions {
  /**
   * Replace wasm's own Conv2DBackpropInput with the composition above.
   * Default true: ~90–125 ms vs ~1.1–1.5 s (stride 1) and ~50–65 ms vs
   * ~320–430 ms (stride 2) for x [8,56,56,64] with 64 3×3 filters, measured
   * with bench/wasm-gradients.mjs. With false, whatever kernel is currently
   * registered for Conv2DBackpropInput is left alone.
   */
  replaceConv2DBackpropInput?: boolean;
}

/**
 * Registers the missing convolution gradient kernels for the 'wasm' backend
 * (and, by default, a faster Conv2DBackpropInput). Idempotent. May be called
 * before or after `tf.setBackend('wasm')`; kernels are looked up at run time.
 * Does not override a Conv2DBackpropFilter/Depthwise* kernel that some other
 * code (or a future tfjs-backend-wasm) already registered.
 */
export function registerWasmGradientKernels(options: RegisterWasmGradientOptions = {}): void {
  for (const { kernelName, kernelFunc } of missingKernels) {
    if ((getKernel(kernelName, WASM) as KernelConfig | undefined) === undefined) {
      registerKernel({ kernelName, backendName: WASM, kernelFunc });
    }
  }
  if (options.replaceConv2DBackpropInput ?? true) {
    const existing = getKernel(Conv2DBackpropInput, WASM) as KernelConfig | undefined;
    if (existing?.kernelFunc === conv2DBackpropInputKernel) return;
    nativeConv2DBackpropInput = existing;
    if (existing !== undefined) unregisterKernel(Conv2DBackpropInput, WASM);
    const config: KernelConfig = { kernelName: Conv2DBackpropInput, backendName: WASM, kernelFunc: conv2DBackpropInputKernel };
    // The native kernel cwraps its wasm export in setupFunc; keep that hook so
    // the NCHW fallback works even if we register before the backend starts.
    if (existing?.setupFunc !== undefined) config.setupFunc = existing.setupFunc;
    if (existing?.disposeFunc !== undefined) config.disposeFunc = existing.disposeFunc;
    registerKernel(config);
  }
}

/** Undoes registerWasmGradientKernels (restoring wasm's own Conv2DBackpropInput). For tests and benchmarks. */
export function unregisterWasmGradientKernels(): void {
  for (const { kernelName, kernelFunc } of missingKernels) {
    const k = getKernel(kernelName, WASM) as KernelConfig | undefined;
    if (k?.kernelFunc === kernelFunc) unregisterKernel(kernelName, WASM);
  }
  const k = getKernel(Conv2DBackpropInput, WASM) as KernelConfig | undefined;
  if (k?.kernelFunc === conv2DBackpropInputKernel) {
    unregisterKernel(Conv2DBackpropInput, WASM);
    if (nativeConv2DBackpropInput !== undefined) registerKernel(nativeConv2DBackpropInput);
    nativeConv2DBackpropInput = undefined;
  }
}

