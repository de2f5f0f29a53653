// The fit search of the `fuse` kind's fitted methods (see fusion.ts for what each method does):
// the objective they maximise on the fit part (the metric, then log-loss as the tie-break),
// Caruana's greedy forward selection and the coordinate search of the `weighted` method.
import type { FuseParams } from '../fuse.js';
import { scoreRows } from './metrics.js';

type FuseMetric = FuseParams['metric'];

export interface Scores {
  n: number;
  top1: number | null;
  top3: number | null;
  logloss: number | null;
}

/** data/metrics.ts's scores of rows `rows` (indices into labels) of an n × k matrix, in the report's shape (nulls when no row is labelled). */
export function fusionScores(
  probs: ArrayLike<number>,
  k: number,
  labels: Array<number | null>,
  rows: number[],
): Scores {
  const s = scoreRows(probs, k, labels, rows);
  return s
    ? { n: s.n, top1: s.top1, top3: s.top3, logloss: s.logLoss }
    : { n: 0, top1: null, top3: null, logloss: null };
}

/** Bigger is better: [the metric, minus log-loss as the tie-break]. */
export function objective(s: Scores, metric: FuseMetric): [number, number] {
  const ll = -(s.logloss ?? Infinity);
  return metric === 'logloss' ? [ll, 0] : [metric === 'top1' ? (s.top1 ?? 0) : (s.top3 ?? 0), ll];
}

export const TOL = 1e-12;
export function better(a: [number, number], b: [number, number]): boolean {
  return a[0] > b[0] + TOL || (Math.abs(a[0] - b[0]) <= TOL && a[1] > b[1] + TOL);
}

export interface FitData {
  k: number;
  labels: Array<number | null>;
  rows: number[];
  mats: Float32Array[];
}

/** Caruana forward selection with replacement over the allowed members; returns counts per member. */
export function greedySelect(
  d: FitData,
  allowed: number[],
  init: number,
  maxRounds: number,
  metric: FuseMetric,
): { counts: number[]; order: number[] } {
  const counts = new Array<number>(d.mats.length).fill(0);
  const order: number[] = [];
  const len = d.mats[0]!.length;
  const sum = new Float64Array(len);
  const scratch = new Float64Array(len);
  const obj = (mat: ArrayLike<number>): [number, number] => objective(fusionScores(mat, d.k, d.labels, d.rows), metric);
  const ranked = allowed
    .map((i) => ({ i, o: obj(d.mats[i]!) }))
    .sort((a, b) => (better(a.o, b.o) ? -1 : better(b.o, a.o) ? 1 : a.i - b.i));
  let total = 0;
  for (const { i } of ranked.slice(0, Math.min(init, ranked.length))) {
    counts[i]!++;
    order.push(i);
    total++;
    const m = d.mats[i]!;
    for (const r of d.rows) for (let c = 0; c < d.k; c++) sum[r * d.k + c]! += m[r * d.k + c]!;
  }
  const meanOf = (extra: Float32Array | undefined, n: number): Float64Array => {
    for (const r of d.rows)
      for (let c = 0; c < d.k; c++) {
        const j = r * d.k + c;
        scratch[j] = (sum[j]! + (extra ? extra[j]! : 0)) / n;
      }
    return scratch;
  };
  let current = obj(meanOf(undefined, total));
  for (let round = 0; round < maxRounds; round++) {
    let best: { i: number; o: [number, number] } | undefined;
    for (const i of allowed) {
      const o = obj(meanOf(d.mats[i], total + 1));
      if (!best || better(o, best.o)) best = { i, o };
    }
    // Stop when the metric itself does not improve (the log-loss tie-break only ranks candidates).
    if (!best || !(best.o[0] > current[0] + TOL)) break;
    counts[best.i]!++;
    order.push(best.i);
    total++;
    const m = d.mats[best.i]!;
    for (const r of d.rows) for (let c = 0; c < d.k; c++) sum[r * d.k + c]! += m[r * d.k + c]!;
    current = best.o;
  }
  return { counts, order };
}

/** Coordinate search on unnormalised weights; returns weights summing to 1. */
export function fitWeights(d: FitData, maxRounds: number, metric: FuseMetric): number[] {
  const n = d.mats.length;
  const w = new Array<number>(n).fill(1 / n);
  let s = 1;
  const len = d.mats[0]!.length;
  const u = new Float64Array(len);
  for (const m of d.mats) for (const r of d.rows) for (let c = 0; c < d.k; c++) u[r * d.k + c]! += m[r * d.k + c]! / n;
  const scratch = new Float64Array(len);
  const trial = (i: number, delta: number): [number, number] => {
    const m = d.mats[i]!;
    for (const r of d.rows)
      for (let c = 0; c < d.k; c++) {
        const j = r * d.k + c;
        scratch[j] = (u[j]! + delta * m[j]!) / (s + delta);
      }
    return objective(fusionScores(scratch, d.k, d.labels, d.rows), metric);
  };
  let current = objective(
    fusionScores(
      u.map((v) => v / s),
      d.k,
      d.labels,
      d.rows,
    ),
    metric,
  );
  for (let round = 0; round < maxRounds; round++) {
    let best: { i: number; delta: number; o: [number, number] } | undefined;
    for (let i = 0; i < n; i++) {
      for (const f of [0.5, 0.1, -0.1, -0.5]) {
        let delta = (f * s) / n;
        if (w[i]! + delta < 0) delta = -w[i]!;
        if (delta === 0 || s + delta <= 0) continue;
        const o = trial(i, delta);
        if (!best || better(o, best.o)) best = { i, delta, o };
      }
    }
    if (!best || !better(best.o, current)) break;
    const m = d.mats[best.i]!;
    for (const r of d.rows) for (let c = 0; c < d.k; c++) u[r * d.k + c]! += best.delta * m[r * d.k + c]!;
    w[best.i]! += best.delta;
    s += best.delta;
    current = best.o;
  }
  return w.map((x) => x / s);
}
