// A command the GPU rejects must fail loudly. WebGPU only reports it as an event and tfjs leaves
// the output as zeros; podium (stages/tf/webgpu.ts) turns it into an error on the next read.
// Its own file: the error is sticky for the process, which would spoil other tests.
import type * as tfc from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { selectBackend } from '../../stages/tf/backend.js';
import { describeGpu } from './gpu.js';

describeGpu('GPU errors', () => {
  it('a buffer over maxStorageBufferBindingSize fails the read-back instead of returning zeros', async (ctx) => {
    const { tf } = await selectBackend('webgpu');
    const limit = (tf.backend() as unknown as { device: { limits: { maxStorageBufferBindingSize: number } } }).device
      .limits.maxStorageBufferBindingSize;
    // Only where such a tensor is cheap (lavapipe: 128 MiB); a real GPU's limit is gigabytes.
    if (limit > 2 ** 30) ctx.skip();
    const fine = tf.add(tf.ones([1024]), 1);
    expect((await fine.data())[0]).toBe(2);
    const big = tf.ones([Math.floor(limit / 4) + 1024]);
    const y: tfc.Tensor = tf.add(big, 1);
    await expect(y.data()).rejects.toThrow(
      /webgpu: the GPU rejected work, so results are invalid: .*maximum storage buffer binding size/,
    );
    tf.dispose([fine, big, y]);
  });
});
