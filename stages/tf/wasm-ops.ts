/**
 * A small op layer over the TensorFlow.js wasm backend's kernels, for composite kernels (the
 * convolution gradients of wasm-gradients.ts): each op calls a registered wasm kernel function
 * directly on TensorInfos, as the wasm backend itself does for its composite kernels, and the
 * scope owns every intermediate it made.
 *
 * Why not tf ops: nothing here goes through the engine, so there is no tape recording and no
 * tidy scope; `withOps` releases every intermediate with `backend.disposeData` in a `finally`,
 * and only the result's reference survives.
 *
 * Why the transpose planning: on wasm a Transpose of effective rank ≤ 4 runs at memcpy-like
 * speed (~10 ms for 1.7 M floats), while rank 5+ falls back to a generic loop ~15× slower.
 * `transpose()` merges adjacent axes and, if the permutation still needs rank > 4, splits it
 * into a minimal sequence of rank ≤ 4 transposes.
 */
import {
  BatchMatMul,
  Conv2D,
  DepthwiseConv2dNative,
  Fill,
  getKernel,
  PadV2,
  Reshape,
  Reverse,
  Slice,
  Sum,
  Transpose,
} from '@tensorflow/tfjs-core';
import type { KernelBackend, KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

import { heapOffset, heapOutput, trainKernels, type TrainKernels } from './wasm-kernels.js';

const WASM = 'wasm';

/** Throws an error naming the kernel being computed, so a failure inside a gradient says whose. */
export function fail(kernel: string, message: string): never {
  throw new Error(`${kernel} (podium wasm-gradients): ${message}`);
}

/** values[index], which must exist. */
export function at(values: readonly number[], index: number): number {
  const v = values[index];
  if (v === undefined) throw new Error(`internal: index ${index} out of range for [${values.join(',')}]`);
  return v;
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
  const byInput = groups.map((g, outPos) => ({
    first: at(g, 0),
    outPos,
    size: g.reduce((p, a) => p * at(shape, a), 1),
  }));
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
// The op scope
// ---------------------------------------------------------------------------

export class WasmOps {
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

  /** Transpose that never hits the slow rank > 4 wasm path (see the file header). */
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
    return this.slice(
      padded,
      spec.map(([b]) => Math.max(-b, 0)),
      target,
    );
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
    const out = this.run(
      BatchMatMul,
      { a: this.reshape(a, [1, m, k]), b: this.reshape(b, [1, k, at(b.shape, 1)]) },
      { transposeA: false, transposeB: false },
    );
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
export function withOps(backend: {}, kernelName: string, body: (ops: WasmOps) => TensorInfo): TensorInfo {
  const ops = new WasmOps(backend as KernelBackend, kernelName);
  let result: TensorInfo | undefined;
  try {
    result = ops.own(body(ops));
    return result;
  } finally {
    ops.dispose(result);
  }
}
