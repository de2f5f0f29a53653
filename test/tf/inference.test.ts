/**
 * stages/tf/inference.ts: folding batch normalisation (and ReLU6) into the convolutions gives
 * the predictions of model.predict, up to float rounding, with fewer kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from '../../stages/tf/backend.js';
import { foldedPredictor } from '../../stages/tf/inference.js';
import { loadModel } from '../../stages/tf/models.js';

beforeAll(async () => {
  await selectBackend('wasm');
});
afterAll(() => tf.disposeVariables());

function kernelCount(run: () => tf.Tensor): Promise<number> {
  return tf
    .profile(() => {
      const y = run();
      y.dataSync();
      y.dispose();
    })
    .then((p) => p.kernels.length);
}

describe('foldedPredictor', () => {
  it('matches model.predict on MobileNetV2 with trained-looking BN statistics, in fewer kernels', async () => {
    const model = await loadModel({ model: 'mobilenet_v2', inputSize: 64, numClasses: 5, seed: 1 });
    const x = tf.randomUniform([3, 64, 64, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
    const predictor = foldedPredictor(tf, model);
    try {
      const expected = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
      const actual = tf.tidy(() => predictor.predict(x).dataSync());
      expect(actual.length).toBe(expected.length);
      let maxDiff = 0;
      for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(expected[i]! - actual[i]!));
      expect(maxDiff).toBeLessThan(1e-4); // probabilities
      expect(Array.from(actual).some((v) => v > 0)).toBe(true);
      const before = await kernelCount(() => model.predict(x) as tf.Tensor);
      const after = await kernelCount(() => predictor.predict(x));
      expect(after).toBeLessThan(before * 0.75);
      // No tensor is left behind by a prediction.
      const n = tf.memory().numTensors;
      predictor.predict(x).dispose();
      expect(tf.memory().numTensors).toBe(n);
    } finally {
      predictor.dispose();
      model.dispose();
      x.dispose();
    }
  }, 120_000);

  it('runs a model without batch normalisation layer by layer, as predict does', async () => {
    const model = await loadModel({ model: 'tiny', inputSize: 16, numClasses: 3, seed: 2 });
    const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const predictor = foldedPredictor(tf, model);
    const expected = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
    const actual = tf.tidy(() => predictor.predict(x).dataSync());
    expect(actual.length).toBe(expected.length);
    // The same kernels; only the op grouping can differ in the last bit.
    for (let i = 0; i < expected.length; i++) expect(actual[i]).toBeCloseTo(expected[i]!, 6);
    predictor.dispose();
    model.dispose();
    x.dispose();
  });
});
