// The training loop on webgpu, in-process: the tiny model learns a toy problem, and no tensor
// (nor GPU byte) outlives its epoch — tf.memory() is the same after every epoch.
import type * as tfc from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { selectBackend } from '../../stages/tf/backend.js';
import { loadModel } from '../../stages/tf/models.js';
import { train, type Batch } from '../../stages/tf/train-loop.js';
import { sgdRecipeOptions } from '../../bench/sgd-recipe.mjs';
import { describeGpu } from './gpu.js';

const SIZE = 16,
  CLASSES = 3,
  SAMPLES = 24,
  BATCH = 8;

/** Images whose class is the brighter colour channel, over noise (a fixed LCG: deterministic). */
function toy(): { x: Float32Array; y: Int32Array } {
  let s = 7;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const px = SIZE * SIZE * 3;
  const x = new Float32Array(SAMPLES * px);
  const y = new Int32Array(SAMPLES);
  for (let i = 0; i < SAMPLES; i++) {
    y[i] = i % CLASSES;
    for (let p = 0; p < SIZE * SIZE; p++)
      for (let c = 0; c < 3; c++) x[i * px + p * 3 + c] = 0.6 * u() + (c === y[i] ? 0.3 : 0);
  }
  return { x, y };
}

describeGpu('training on webgpu', () => {
  it('learns, and holds the same tensors and bytes after every epoch (no leaks)', async () => {
    const { tf, name } = await selectBackend('webgpu');
    expect(name).toBe('webgpu');
    const data = toy();
    const px = SIZE * SIZE * 3;
    const batchSource = (_epoch: number, b: number): Batch => {
      const n = Math.min(BATCH, SAMPLES - b * BATCH);
      return { x: data.x.slice(b * BATCH * px, (b * BATCH + n) * px), y: data.y.slice(b * BATCH, b * BATCH + n), n };
    };
    const model = await loadModel({ model: 'tiny', inputSize: SIZE, numClasses: CLASSES, seed: 3 });
    const memory: tfc.MemoryInfo[] = [];
    const { history } = await train(
      model,
      sgdRecipeOptions({
        epochs: 4,
        batchSize: BATCH,
        lr: 0.05,
        seed: 1,
        numTrain: SAMPLES,
        batchSource,
        onEpochEnd: () => {
          memory.push(tf.memory());
        },
      }),
    );
    model.dispose();
    expect(history).toHaveLength(4);
    expect(history.every((h) => Number.isFinite(h.loss))).toBe(true);
    expect(history[3]!.loss).toBeLessThan(history[0]!.loss);
    // Epoch 1 may allocate the optimizer's buffers; from then on every epoch ends where it began.
    const counts = memory.map((m) => [m.numTensors, m.numBytes]);
    console.log(`tf.memory() after each epoch (tensors, bytes): ${JSON.stringify(counts)}`);
    expect(counts.slice(2)).toEqual(counts.slice(1, -1));
  });
});
