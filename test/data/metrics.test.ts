import { describe, expect, it } from 'vitest';
import {
  confusionMatrix,
  labelledCount,
  LOG_EPS,
  logLoss,
  misclassified,
  perClassAccuracy,
  rankOf,
  scoreRows,
  splitMetrics,
  top1Accuracy,
  topClasses,
  topKAccuracy,
} from '../../stages/data/metrics.js';
import type { SplitPredictions } from '../../stages/data/predictions.js';

const classes = ['cat', 'dog', 'fox', 'owl'];
// Four classes; labels: 0 right, 1 wrong (top-2), 2 right, 3 wrong (top-3), null, 1 wrong (rank 4).
const sp: SplitPredictions = {
  ids: ['a', 'b', 'c', 'd', 'e', 'f'],
  labels: [0, 1, 2, 3, null, 1],
  probs: new Float32Array([
    0.7, 0.1, 0.1, 0.1, 0.5, 0.4, 0.05, 0.05, 0.1, 0.1, 0.6, 0.2, 0.5, 0.05, 0.3, 0.15, 0.25, 0.25, 0.25, 0.25, 0.3,
    0.1, 0.3, 0.3,
  ]),
};

describe('metrics', () => {
  it('ranks best first, ties to the lower class index', () => {
    expect(topClasses(sp.probs, 0, 4, 3)).toEqual([0, 1, 2]);
    expect(topClasses(sp.probs, 3, 4, 3)).toEqual([0, 2, 3]);
    expect(topClasses(sp.probs, 4, 4, 4)).toEqual([0, 1, 2, 3]);
    expect(topClasses(sp.probs, 5, 4, 2)).toEqual([0, 2]);
    expect(rankOf(sp.probs, 4 * 4, 4, 2)).toBe(2);
    expect(rankOf(sp.probs, 5 * 4, 4, 1)).toBe(3);
  });

  it('top-1, top-k and log-loss skip unlabelled rows', () => {
    expect(labelledCount(sp)).toBe(5);
    expect(top1Accuracy(sp)).toBeCloseTo(2 / 5);
    expect(topKAccuracy(sp, 2)).toBeCloseTo(3 / 5);
    expect(topKAccuracy(sp, 3)).toBeCloseTo(4 / 5);
    expect(topKAccuracy(sp, 4)).toBeCloseTo(1);
    const expected = -(Math.log(0.7) + Math.log(0.4) + Math.log(0.6) + Math.log(0.15) + Math.log(0.1)) / 5;
    expect(logLoss(sp)).toBeCloseTo(expected, 5);
    expect(top1Accuracy({ ids: ['x'], labels: [null], probs: new Float32Array([1, 0]) })).toBeNull();
    expect(logLoss({ ids: ['x'], labels: [0], probs: new Float32Array([0, 1]) })).toBeCloseTo(-Math.log(1e-7), 3);
  });

  it('confusion matrix and per-class accuracy', () => {
    expect(confusionMatrix(sp, 4)).toEqual([
      [1, 0, 0, 0],
      [2, 0, 0, 0],
      [0, 0, 1, 0],
      [1, 0, 0, 0],
    ]);
    expect(perClassAccuracy(sp, classes)).toEqual([
      { class: 'cat', n: 1, correct: 1, accuracy: 1 },
      { class: 'dog', n: 2, correct: 0, accuracy: 0 },
      { class: 'fox', n: 1, correct: 1, accuracy: 1 },
      { class: 'owl', n: 1, correct: 0, accuracy: 0 },
    ]);
  });

  it('lists misclassified items with their true label and top-3 predictions', () => {
    const m = misclassified(sp, classes);
    expect(m.map((x) => x.id)).toEqual(['b', 'd', 'f']);
    expect(m[0]).toMatchObject({ id: 'b', label: 1, labelName: 'dog' });
    expect(m[0]!.predicted.map((p) => [p.label, p.name])).toEqual([
      [0, 'cat'],
      [1, 'dog'],
      [2, 'fox'],
    ]);
    expect(m[0]!.predicted[0]!.prob).toBeCloseTo(0.5);
    expect(m[1]!.predicted.map((p) => p.label)).toEqual([0, 2, 3]);
  });

  it('splitMetrics gathers them all', () => {
    const s = splitMetrics(sp, classes, 3);
    expect(s).toMatchObject({ n: 6, labelled: 5, k: 3 });
    expect(s.top1).toBeCloseTo(0.4);
    expect(s.topK).toBeCloseTo(0.8);
    expect(s.misclassified).toHaveLength(3);
    expect(s.confusion).toHaveLength(4);
  });

  it('scores a tie against the label: a label tied with a lower-indexed class is not top-1', () => {
    // Row 0: the label (1) ties with class 0 at the top. Row 1: the label (2) ties with classes 0
    // and 1. Row 2: every class ties, label 0: the export's top-1 is class 0, so it counts.
    const probs = Float32Array.from([0.4, 0.4, 0.2, 0.3, 0.3, 0.3, 1 / 3, 1 / 3, 1 / 3]);
    const labels = [1, 2, 0];
    expect(rankOf(probs, 0, 3, 1)).toBe(1);
    expect(rankOf(probs, 3, 3, 2)).toBe(2);
    expect(rankOf(probs, 6, 3, 0)).toBe(0);
    const s = scoreRows(probs, 3, labels)!;
    expect(s.n).toBe(3);
    expect(s.top1).toBe(1 / 3);
    expect(s.top3).toBe(1);
    // Every class equal: only label-0 rows are top-1, as the exported top-K would have them.
    const uniform = new Float32Array(4 * 4).fill(0.25);
    expect(scoreRows(uniform, 4, [0, 1, 2, 3])!.top1).toBe(0.25);
    expect(topKAccuracy({ ids: ['a'], labels: [1], probs: Float32Array.from([0.4, 0.4, 0.2]) }, 1)).toBe(0);
    expect(topClasses(probs, 0, 3, 1)).toEqual([0]);
  });

  it('scores only the labelled rows asked for, in their order, with the loss clipped at LOG_EPS', () => {
    const probs = Float32Array.from([0.7, 0.2, 0.1, 0.2, 0.3, 0.5, 0.1, 0.1, 0.8, 0, 1, 0]);
    const labels = [0, 0, null, 0];
    const all = scoreRows(probs, 3, labels)!;
    expect(all.n).toBe(3);
    expect(all.top1).toBe(1 / 3);
    expect(all.top3).toBe(1); // every label is within the 3 classes, even row 3's at probability 0
    expect(all.logLoss).toBeCloseTo(-(Math.log(0.7) + Math.log(0.2) + Math.log(LOG_EPS)) / 3, 6);
    const some = scoreRows(probs, 3, labels, [1, 2])!;
    expect(some).toEqual({ n: 1, top1: 0, top3: 1, logLoss: -Math.log(Math.fround(0.2)) });
    expect(scoreRows(probs, 3, labels, [2])).toBeNull();
    expect(scoreRows(new Float32Array(3), 3, [null])).toBeNull();
    expect(logLoss({ ids: ['a'], labels: [null], probs: new Float32Array(2) })).toBeNull();
  });
});
