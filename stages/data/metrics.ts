// Classification metrics, the only scorer in podium: every stage that reports top-1, top-3 or a
// log-loss (finetune's per-epoch evaluation, checkpoint-sweep, multicrop-predict, fuse, export)
// computes it here, so the same "valTop1" means the same thing in every stage. Pure functions;
// rows whose label is null are skipped everywhere. Ranking is by probability, ties broken by the
// lower class index, so a label that ties with a lower-indexed class is NOT top-1: every metric
// here agrees with the top-K an export writes.
import type { SplitPredictions } from './predictions.js';

/** Probabilities are clipped to this before the log, so one zero does not make the loss infinite. */
export const LOG_EPS = 1e-7;

/** Class indices of one row, best first (ties: lower index first), at most k of them. */
export function topClasses(probs: ArrayLike<number>, row: number, classes: number, k: number): number[] {
  const base = row * classes;
  const best: number[] = [];
  for (let c = 0; c < classes; c++) {
    const v = probs[base + c]!;
    // Insertion into a short sorted list: k is small (≤ 5 in practice).
    let i = best.length;
    while (i > 0 && probs[base + best[i - 1]!]! < v) i--;
    if (i < k) {
      best.splice(i, 0, c);
      if (best.length > k) best.pop();
    }
  }
  return best;
}

/** 0-based rank of class y in a row (0 = top-1), with the same tie rule as topClasses. */
export function rankOf(probs: ArrayLike<number>, base: number, classes: number, y: number): number {
  const py = probs[base + y]!;
  let rank = 0;
  for (let c = 0; c < classes; c++) {
    const v = probs[base + c]!;
    if (v > py || (v === py && c < y)) rank++;
  }
  return rank;
}

function numClasses(sp: SplitPredictions): number {
  return sp.ids.length === 0 ? 0 : sp.probs.length / sp.ids.length;
}

/** Labelled row count. */
export function labelledCount(sp: SplitPredictions): number {
  let n = 0;
  for (const l of sp.labels) if (l !== null) n++;
  return n;
}

/** Fraction of labelled rows whose label is among the k best classes; null when none is labelled. */
export function topKAccuracy(sp: SplitPredictions, k: number): number | null {
  const classes = numClasses(sp);
  let n = 0;
  let hit = 0;
  sp.labels.forEach((y, i) => {
    if (y === null) return;
    n++;
    if (rankOf(sp.probs, i * classes, classes, y) < k) hit++;
  });
  return n ? hit / n : null;
}

export function top1Accuracy(sp: SplitPredictions): number | null {
  return topKAccuracy(sp, 1);
}

/** Mean of -log p(true class), p clipped to [LOG_EPS, 1]; null when none is labelled. */
export function logLoss(sp: SplitPredictions): number | null {
  return scoreRows(sp.probs, numClasses(sp), sp.labels)?.logLoss ?? null;
}

/** Top-1, top-3 and mean log-loss of some rows of a probability matrix. */
export interface RowScores {
  /** Labelled rows scored. */
  n: number;
  top1: number;
  top3: number;
  /** Mean of -log p(true class), p clipped to [LOG_EPS, 1]. */
  logLoss: number;
}

/**
 * Scores the labelled rows among `rows` (indices into `labels`; default every row) of an
 * n × classes probability matrix, with rankOf's tie rule; null when none of them is labelled.
 * Rows are summed in the order given, so a caller that passes the same rows gets the same bits.
 */
export function scoreRows(
  probs: ArrayLike<number>,
  classes: number,
  labels: ReadonlyArray<number | null>,
  rows?: readonly number[],
): RowScores | null {
  let n = 0;
  let top1 = 0;
  let top3 = 0;
  let loss = 0;
  const count = rows === undefined ? labels.length : rows.length;
  for (let i = 0; i < count; i++) {
    const r = rows === undefined ? i : rows[i]!;
    const y = labels[r];
    if (y === null || y === undefined) continue;
    n++;
    const rank = rankOf(probs, r * classes, classes, y);
    if (rank < 1) top1++;
    if (rank < 3) top3++;
    loss -= Math.log(Math.max(LOG_EPS, probs[r * classes + y]!));
  }
  return n ? { n, top1: top1 / n, top3: top3 / n, logLoss: loss / n } : null;
}

/** confusion[true][predicted] = count of labelled rows (predicted = top-1). */
export function confusionMatrix(sp: SplitPredictions, classes: number): number[][] {
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  sp.labels.forEach((y, i) => {
    if (y === null) return;
    const pred = topClasses(sp.probs, i, classes, 1)[0]!;
    m[y]![pred]!++;
  });
  return m;
}

export interface ClassAccuracy {
  class: string;
  n: number;
  correct: number;
  accuracy: number | null;
}

/** Top-1 accuracy per true class (accuracy null for a class with no labelled rows). */
export function perClassAccuracy(sp: SplitPredictions, classNames: string[]): ClassAccuracy[] {
  const cm = confusionMatrix(sp, classNames.length);
  return classNames.map((name, c) => {
    const n = cm[c]!.reduce((a, b) => a + b, 0);
    const correct = cm[c]![c]!;
    return { class: name, n, correct, accuracy: n ? correct / n : null };
  });
}

export interface Misclassified {
  id: string;
  label: number;
  labelName: string;
  /** The three best classes, best first. */
  predicted: Array<{ label: number; name: string; prob: number }>;
}

/** Labelled rows whose top-1 is wrong, in split order. */
export function misclassified(sp: SplitPredictions, classNames: string[], top = 3): Misclassified[] {
  const classes = classNames.length;
  const out: Misclassified[] = [];
  sp.labels.forEach((y, i) => {
    if (y === null) return;
    const best = topClasses(sp.probs, i, classes, Math.min(top, classes));
    if (best[0] === y) return;
    out.push({
      id: sp.ids[i]!,
      label: y,
      labelName: classNames[y] ?? String(y),
      predicted: best.map((c) => ({ label: c, name: classNames[c] ?? String(c), prob: sp.probs[i * classes + c]! })),
    });
  });
  return out;
}

export interface SplitMetrics {
  n: number;
  labelled: number;
  top1: number | null;
  /** Top-k accuracy for the k asked for (the key is `top${k}` in summaries). */
  topK: number | null;
  k: number;
  logLoss: number | null;
  perClass: ClassAccuracy[];
  /** confusion[true][predicted] */
  confusion: number[][];
  misclassified: Misclassified[];
}

/** Every metric above for one split. */
export function splitMetrics(sp: SplitPredictions, classNames: string[], k = 3): SplitMetrics {
  return {
    n: sp.ids.length,
    labelled: labelledCount(sp),
    top1: top1Accuracy(sp),
    topK: topKAccuracy(sp, k),
    k,
    logLoss: logLoss(sp),
    perClass: perClassAccuracy(sp, classNames),
    confusion: confusionMatrix(sp, classNames.length),
    misclassified: misclassified(sp, classNames),
  };
}
