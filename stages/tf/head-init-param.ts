// finetune's `headInit` param, apart from models.ts so that the stage's schema does not load
// TensorFlow.js (a no-op run imports every stage's schema).

/**
 * How the new head's kernel starts (its bias starts at zero either way):
 * - 'normal-0.01': N(0, 0.01²), as torchvision initialises its classifiers; small initial logits,
 *   so the first steps' gradients disturb the pretrained layers little.
 * - 'glorot-uniform': Keras's default for Dense, U(±√(6 / (fan_in + fan_out))): for 1280 → 6
 *   classes U(±0.068), std 0.039 (MXNet fine-tune.py's Xavier-in, magnitude 2, has the same std).
 * On intel6 (6 seeds each, bench/parity.mjs) 'normal-0.01' gave +1.4 points of test top-1 and +0.9 of
 * val over 'glorot-uniform', and closed the test gap to PyTorch's same recipe (docs/benchmarks.md, parity).
 */
export const HEAD_INITS = ['normal-0.01', 'glorot-uniform'] as const;
export type HeadInit = (typeof HEAD_INITS)[number];
