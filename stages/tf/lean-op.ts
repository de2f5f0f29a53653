/**
 * The lean op under every accelerated layer (lean-layers.ts, lean-batch-norm.ts).
 *
 * Memory: tfjs's backward pass (tape.ts backpropagateGradients) keeps every gradient it computes
 * and every tensor saved for the backward pass until the very end, and a gradient function's
 * intermediates live as long (customGrad gradFuncs run outside any per-node tidy). So the peak
 * is about "all saved activations + one gradient per op output + intermediates". A lean op's
 * gradient runs in a tidy and then disposes its incoming gradient and its saved tensors: each is
 * used by exactly this one node, and the engine's own later dispose of them is a no-op. Memory
 * then falls as the backward pass proceeds instead of rising.
 */
import * as tf from '@tensorflow/tfjs-core';

export type CallFn = (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor | tf.Tensor[];

export interface LayerVariableLike {
  read(): tf.Tensor;
  write(value: tf.Tensor): unknown;
}

export type Save = (tensors: tf.Tensor[]) => void;

/**
 * A differentiable op whose gradient frees memory as it goes (see above): `backward` runs in a
 * tidy, then the incoming gradient and the saved tensors are disposed.
 */
export function leanOp(
  inputs: tf.Tensor[],
  forward: (inputs: tf.Tensor[], save: Save) => tf.Tensor,
  backward: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[],
): tf.Tensor {
  const op = tf.customGrad((...args: Array<tf.Tensor | Save>) => {
    const save = args[args.length - 1] as Save;
    const value = forward(args.slice(0, -1) as tf.Tensor[], save);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const grads = tf.tidy(() => backward(dy, saved));
        tf.dispose([dy, ...saved]);
        return grads;
      },
    };
  });
  return op(...inputs);
}
