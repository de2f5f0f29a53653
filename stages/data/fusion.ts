// Fusion of several Predictions (epochs of one run, matrix points, architectures) into one: the
// algorithms of the `fuse` stage kind, pure (members in, fused predictions and a report out).
//
// Methods (all weights sum to 1):
// - mean: arithmetic mean of probabilities.
// - geometric: normalised geometric mean of probabilities, i.e. softmax of the mean log-probability.
//   This is also the mean of softmax logits (log p up to a per-row constant, which softmax drops).
// - logit-mean: mean of per-class log-odds log(p / (1 - p)), mapped back with the sigmoid and
//   renormalised per row (so it differs from `geometric` and damps one member's overconfidence).
// - weighted: arithmetic mean with weights fitted on the fit part by coordinate search: start from
//   equal weights; each round try moving one member's weight by ±10% or ±50% of an equal share and
//   keep the best move while it improves (metric, then log-loss as the tie-break: top-1 alone is
//   flat almost everywhere, so a search on it stalls at once).
// - greedy: Caruana et al. 2004 ensemble selection: start from the `init` best members, add (with
//   replacement) the member whose addition most improves the metric on the fit part, stop when
//   nothing improves or after maxRounds; weights are the selection counts normalised. Optional
//   bagging repeats it on random member subsets and averages the normalised counts.
//
// Guard against fitting val by luck: the fit split is cut in two by a hash of (seed, image id);
// fitting sees only the fit part, and the report gives the fused score on both parts and whole.
// The fit search itself (objective, greedy selection, coordinate search) is in fusion-fit.ts.
import { sha256 } from '../../cache/canonical.js';
import { InputError } from '../contract.js';
import type { FuseParams } from '../fuse.js';
import { better, fitWeights, type FitData, fusionScores, greedySelect, objective, type Scores } from './fusion-fit.js';
import { LOG_EPS } from './metrics.js';
import type { Predictions } from './predictions.js';
import { Rng } from './random.js';

export type FuseMethod = FuseParams['method'];
export type FuseMetric = FuseParams['metric'];

export interface Member {
  name: string;
  predictions: Predictions;
}

export type { Scores };

export interface FuseReport {
  method: FuseMethod;
  metric: FuseMetric;
  fitSplit: string;
  holdout: number;
  seed: number;
  members: Array<{ name: string; fit: Scores; holdout: Scores; val: Scores }>;
  /** Members with a non-zero weight, in member order. */
  chosen: string[];
  weights: Record<string, number>;
  /**
   * Set when the fitted fusion (weighted, greedy) scored below its best member on the whole fit
   * split, so that member alone was chosen: selection uses that split only, and a fusion is never
   * worse there than the best candidate it was given. Scores are the metric's (log-loss as is).
   */
  fallback?: { member: string; memberScore: number; fusedScore: number };
  /** greedy: selection counts (summed over bags); the order members were added. */
  counts?: Record<string, number>;
  selection?: string[][];
  fused: { fit: Scores; holdout: Scores; val: Scores };
}

export function checkAgreement(members: Member[]): void {
  if (!members.length) throw new InputError('fuse needs at least one predictions input');
  const first = members[0]!;
  const splits = Object.keys(first.predictions.splits).sort();
  for (const m of members.slice(1)) {
    const mp = m.predictions;
    if (JSON.stringify(mp.classes) !== JSON.stringify(first.predictions.classes)) {
      throw new InputError(
        `members disagree on classes: "${first.name}" has ${first.predictions.classes.length} (${first.predictions.classes.slice(0, 5).join(', ')}…), "${m.name}" has ${mp.classes.length} (${mp.classes.slice(0, 5).join(', ')}…)`,
      );
    }
    const ms = Object.keys(mp.splits).sort();
    if (JSON.stringify(ms) !== JSON.stringify(splits))
      throw new InputError(
        `members disagree on splits: "${first.name}" has [${splits.join(', ')}], "${m.name}" has [${ms.join(', ')}]`,
      );
    for (const s of splits) {
      const a = first.predictions.splits[s]!;
      const b = mp.splits[s]!;
      if (a.ids.length !== b.ids.length)
        throw new InputError(
          `members disagree on split "${s}": "${first.name}" has ${a.ids.length} images, "${m.name}" has ${b.ids.length}`,
        );
      const i = a.ids.findIndex((id, j) => id !== b.ids[j]);
      if (i >= 0)
        throw new InputError(
          `members disagree on split "${s}" at row ${i}: "${first.name}" has id "${a.ids[i]}", "${m.name}" has "${b.ids[i]}"`,
        );
      const l = a.labels.findIndex((y, j) => y !== b.labels[j]);
      if (l >= 0)
        throw new InputError(
          `members disagree on the label of "${a.ids[l]}" in split "${s}": ${a.labels[l]} in "${first.name}", ${b.labels[l]} in "${m.name}"`,
        );
    }
  }
}

/** Whether an image of the fit split is held out of fitting: a hash of (seed, id) below the fraction. */
export function isHeldOut(seed: number, id: string, fraction: number): boolean {
  if (fraction <= 0) return false;
  return parseInt(sha256(`${seed}:${id}`).slice(0, 8), 16) / 0x100000000 < fraction;
}

/** Combines one split of every member with the given weights (summing to 1). */
export function combine(method: FuseMethod, mats: Float32Array[], weights: number[], k: number): Float32Array {
  const len = mats[0]?.length ?? 0;
  const acc = new Float64Array(len);
  const kind = method === 'geometric' ? 'log' : method === 'logit-mean' ? 'logit' : 'prob';
  mats.forEach((m, i) => {
    const w = weights[i]!;
    if (w === 0) return;
    for (let j = 0; j < len; j++) {
      const v = m[j]!;
      if (kind === 'prob') acc[j]! += w * v;
      else {
        const q = Math.min(1 - LOG_EPS, Math.max(LOG_EPS, v));
        acc[j]! += w * (kind === 'log' ? Math.log(q) : Math.log(q / (1 - q)));
      }
    }
  });
  const out = new Float32Array(len);
  if (kind === 'prob') {
    out.set(acc);
    return out;
  }
  for (let r = 0; r * k < len; r++) {
    const base = r * k;
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, acc[base + c]!);
    let sum = 0;
    for (let c = 0; c < k; c++) {
      const z = acc[base + c]!;
      const e = kind === 'log' ? Math.exp(z - max) : 1 / (1 + Math.exp(-z));
      acc[base + c] = e;
      sum += e;
    }
    for (let c = 0; c < k; c++) out[base + c] = acc[base + c]! / sum;
  }
  return out;
}

/** The whole fusion, pure: members (already checked to agree), params, seed → fused predictions and report. */
export function fuseMembers(
  members: Member[],
  p: FuseParams,
  seed: number,
): { predictions: Predictions; report: FuseReport } {
  checkAgreement(members);
  const first = members[0]!.predictions;
  const k = first.classes.length;
  const fit = first.splits[p.fitSplit];
  const fitting = p.method === 'weighted' || p.method === 'greedy';
  const labels = fit?.labels ?? [];
  const labelled = labels.flatMap((y, r) => (y === null ? [] : [r]));
  if (fitting && !labelled.length) {
    throw new InputError(
      fit
        ? `fit split "${p.fitSplit}" has no labels: ${p.method} fusion needs a labelled split`
        : `fit split "${p.fitSplit}" is not in the predictions (splits: ${Object.keys(first.splits).join(', ')})`,
    );
  }
  const fitRows = labelled.filter((r) => !isHeldOut(seed, fit!.ids[r]!, p.holdout));
  const holdRows = labelled.filter((r) => isHeldOut(seed, fit!.ids[r]!, p.holdout));
  if (fitting && !fitRows.length)
    throw new InputError(
      `no image of split "${p.fitSplit}" is left for fitting after holding out ${p.holdout} (${labelled.length} labelled); lower holdout`,
    );

  const fitMats = fit ? members.map((m) => m.predictions.splits[p.fitSplit]!.probs) : [];
  const score3 = (mat: ArrayLike<number>): { fit: Scores; holdout: Scores; val: Scores } => ({
    fit: fusionScores(mat, k, labels, fitRows),
    holdout: fusionScores(mat, k, labels, holdRows),
    val: fusionScores(mat, k, labels, labelled),
  });
  const empty: Scores = { n: 0, top1: null, top3: null, logloss: null };

  let weights: number[];
  let counts: number[] | undefined;
  let selection: string[][] | undefined;
  const d: FitData = { k, labels, rows: fitRows, mats: fitMats };
  switch (p.method) {
    case 'mean':
    case 'logit-mean':
    case 'geometric':
      weights = members.map(() => 1 / members.length);
      break;
    case 'weighted':
      weights = fitWeights(d, p.weighted.maxRounds, p.metric);
      break;
    case 'greedy': {
      const g = p.greedy;
      const all = members.map((_, i) => i);
      if (!g.bagging) {
        const r = greedySelect(d, all, g.init, g.maxRounds, p.metric);
        counts = r.counts;
        selection = [r.order.map((i) => members[i]!.name)];
        const total = counts.reduce((a, b) => a + b, 0);
        weights = counts.map((c) => c / total);
      } else {
        const bagRng = new Rng(seed ^ 0x5eed);
        const random = (): number => bagRng.next();
        const size = Math.max(1, Math.round(g.bagging.fraction * members.length));
        counts = members.map(() => 0);
        selection = [];
        const acc = members.map(() => 0);
        for (let b = 0; b < g.bagging.bags; b++) {
          // Partial Fisher-Yates: the first `size` of a seeded shuffle, kept in member order.
          const idx = [...all];
          for (let i = 0; i < size; i++) {
            const j = i + Math.floor(random() * (idx.length - i));
            [idx[i], idx[j]] = [idx[j]!, idx[i]!];
          }
          const subset = idx.slice(0, size).sort((a, c) => a - c);
          const r = greedySelect(d, subset, g.init, g.maxRounds, p.metric);
          const total = r.counts.reduce((a, c) => a + c, 0);
          r.counts.forEach((c, i) => {
            counts![i]! += c;
            acc[i]! += c / total / g.bagging!.bags;
          });
          selection.push(r.order.map((i) => members[i]!.name));
        }
        weights = acc;
      }
      break;
    }
    default: {
      const never: never = p.method;
      throw new Error(`unknown fuse method ${String(never)}`);
    }
  }

  // The guard: fitting saw only the fit part of the split, so on the whole split the fusion can
  // lose to a member (one scale that suits this data, diluted by the others). Then that member
  // alone is the answer. Judged on the whole fit split, the only labels selection may use.
  let fallback: FuseReport['fallback'];
  if (fitting) {
    const whole = (mat: ArrayLike<number>): [number, number] =>
      objective(fusionScores(mat, k, labels, labelled), p.metric);
    const ranked = fitMats
      .map((m, i) => ({ i, o: whole(m) }))
      .sort((a, b) => (better(a.o, b.o) ? -1 : better(b.o, a.o) ? 1 : a.i - b.i));
    const top = ranked[0]!;
    const fusedObj = whole(combine(p.method, fitMats, weights, k));
    if (better(top.o, fusedObj)) {
      const value = (o: [number, number]): number => (p.metric === 'logloss' ? -o[0] : o[0]);
      fallback = { member: members[top.i]!.name, memberScore: value(top.o), fusedScore: value(fusedObj) };
      weights = members.map((_, i) => (i === top.i ? 1 : 0));
    }
  }

  const splits: Predictions['splits'] = {};
  for (const [name, sp] of Object.entries(first.splits)) {
    splits[name] = {
      ids: sp.ids,
      labels: sp.labels,
      probs: combine(
        p.method,
        members.map((m) => m.predictions.splits[name]!.probs),
        weights,
        k,
      ),
    };
  }
  const fused = splits[p.fitSplit];
  const report: FuseReport = {
    method: p.method,
    metric: p.metric,
    fitSplit: p.fitSplit,
    holdout: p.holdout,
    seed,
    members: members.map((m, i) => ({
      name: m.name,
      ...(fit ? score3(fitMats[i]!) : { fit: empty, holdout: empty, val: empty }),
    })),
    chosen: members.filter((_, i) => weights[i]! > 0).map((m) => m.name),
    weights: Object.fromEntries(members.flatMap((m, i) => (weights[i]! > 0 ? [[m.name, weights[i]!]] : []))),
    ...(fallback ? { fallback } : {}),
    ...(counts
      ? { counts: Object.fromEntries(members.flatMap((m, i) => (counts![i]! > 0 ? [[m.name, counts![i]!]] : []))) }
      : {}),
    ...(selection ? { selection } : {}),
    fused: fused ? score3(fused.probs) : { fit: empty, holdout: empty, val: empty },
  };
  return { predictions: { classes: first.classes, splits }, report };
}
