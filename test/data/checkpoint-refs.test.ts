import { describe, expect, it } from 'vitest';
import type { Digest } from '../../cache/canonical.js';
import { checkClasses, epochsOf, scoreCheckpoint } from '../../stages/data/checkpoint-refs.js';
import type { DecodedSet } from '../../stages/data/decoded.js';

describe('checkpoint refs', () => {
  it('scores checkpoints with the one scorer: a label tied with a lower-indexed class is not top-1', () => {
    // Row 0: label 1 ties with class 0 at 0.5. Row 1: label 0 is clearly first. Row 2: unlabelled.
    const probs = Float32Array.from([0.5, 0.5, 0, 0.9, 0.05, 0.05, 1, 0, 0]);
    const s = scoreCheckpoint(probs, [1, 0, null], 3)!;
    expect(Object.keys(s)).toEqual(['top1', 'top3', 'loss']); // the field names sweep tables and selections carry
    expect(s.top1).toBe(0.5);
    expect(s.top3).toBe(1);
    expect(s.loss).toBeCloseTo(-(Math.log(0.5) + Math.log(Math.fround(0.9))) / 2, 12);
    expect(scoreCheckpoint(probs, [null, null, null], 3)).toBeNull();
  });

  it("lists a finetune stage's epochs in number order and refuses a checkpoint trained on other classes", () => {
    const d = 'd' as Digest;
    expect(
      epochsOf({ stageId: 't', outputs: { 'epoch-010': d, history: d, 'epoch-002': d, 'epoch-001': d } } as never),
    ).toEqual(['epoch-001', 'epoch-002', 'epoch-010']);
    const set = { classes: ['a', 'b'], splits: {} } as unknown as DecodedSet;
    const ref = { stageId: 't', epoch: 'epoch-001', checkpoint: d, inputSize: 32, classes: ['a', 'c'] };
    expect(() => checkClasses(ref, set)).toThrow(
      /t epoch-001 was trained on classes \[a, c\], the images have \[a, b\]/,
    );
    expect(() => checkClasses({ ...ref, classes: ['a', 'b'] }, set)).not.toThrow();
  });
});
