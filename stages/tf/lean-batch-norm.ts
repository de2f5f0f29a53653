/**
 * The lean BatchNormalization of accelerateLayers (lean-layers.ts): channels-last only.
 *
 * - Per-channel means over N·H·W are a global average pooling (XNNPACK, one pass) and a mean
 *   over N: tf.moments and Sum over non-innermost axes transpose first (~10× slower), and a GEMM
 *   with a row of ones is slower still (XNNPACK packs the activation as a weight matrix).
 * - The per-channel affine map a·x + b is one 1×1 depthwise convolution with bias (one XNNPACK
 *   pass) on wasm; broadcasting mul/add elsewhere. The training-mode gradient is closed-form:
 *     dβ = Σdy,  dγ = Σ dy·x̂,  dx = a·dy − (a/M)·dβ − (a/M)·x̂·dγ    (a = γ/√(σ²+ε), M = N·H·W)
 *   computed as dx = a·dy + k·x + c. Moving statistics are updated as tfjs-layers does
 *   (moving −= (moving − batch)·(1 − momentum)), except that the variance fed to the moving
 *   average is the unbiased one (× M/(M−1)), as TensorFlow's fused batch norm and PyTorch do;
 *   normalisation uses the biased one, as all of them do.
 * - Inference mode is the same single affine pass, from the moving statistics.
 * - Followed by ReLU(6) (MobileNetV2: 35 of its 52 BN layers), the training-mode call applies the
 *   clip in the same pass (XNNPACK's clamp on the affine map: one pass over the activation less)
 *   and marks its output; the ReLU layer then passes a marked tensor through (lean-layers.ts), and
 *   BN's gradient applies the clip's first (on wasm inside its two gradient kernels, as they read dy,
 *   from the output recomputed from x; elsewhere from y).
 * Training saves only x (and, when clipped off wasm, y) and per-channel vectors for the gradient.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { type CallFn, type LayerVariableLike, leanOp } from './lean-op.js';
import { BN_GRAD_STATS, BN_INPUT_GRAD, BN_STATS, hasWasmTrainOp, RELU6_GRAD } from './wasm-train-ops.js';

export interface BatchNormInternals {
  axis: number;
  scale: boolean;
  center: boolean;
  momentum: number;
  epsilon: number;
  gamma?: { read(): tf.Tensor } | null;
  beta?: { read(): tf.Tensor } | null;
  movingMean?: LayerVariableLike & { shape: number[] };
  movingVariance?: LayerVariableLike;
  dispose(): { refCountAfterDispose: number; numDisposedVariables: number };
}

/**
 * Outputs of a training-mode BN call that are already clipped to [0, max], with that max: the
 * ReLU(max) layer after it passes them through instead of clipping again.
 */
export const clippedOutputs = new WeakMap<tf.Tensor, number>();

/**
 * The fast call of a BatchNormalization layer; other axes and missing weights keep its own call.
 * `clipAt`: the max of the ReLU that reads this layer's output alone, fused into training mode.
 */
export function batchNormCall(
  layer: tfl.layers.Layer,
  original: CallFn,
  clipAt: number | null,
): (x: tf.Tensor, training: boolean) => tf.Tensor | tf.Tensor[] {
  const bn = layer as unknown as BatchNormInternals;
  addMissingBatchNormConstants(bn, layer);
  return (x, training) => {
    const axis = bn.axis < 0 ? bn.axis + x.rank : bn.axis;
    const { gamma, beta, movingMean, movingVariance } = bn;
    if (
      axis !== x.rank - 1 ||
      gamma == null ||
      beta == null ||
      movingMean === undefined ||
      movingVariance === undefined
    ) {
      return original(x, { training });
    }
    if (training) {
      const y = batchNormTraining(bn, x, gamma.read(), beta.read(), clipAt);
      if (clipAt !== null) clippedOutputs.set(y, clipAt);
      return y;
    }
    return tf.tidy(() => {
      const a = tf.mul(gamma.read(), tf.rsqrt(tf.add(movingVariance.read(), bn.epsilon))) as tf.Tensor1D;
      const b = tf.sub(beta.read(), tf.mul(movingMean.read(), a)) as tf.Tensor1D;
      return affinePerChannel(x, a, b);
    });
  };
}

/**
 * BatchNormalization with scale: false or center: false (all of InceptionV3's BN layers have
 * scale: false) crashes in tfjs-layers 4.22 in training mode: its call reads `this.gamma.read()`
 * unconditionally. We give such layers a constant γ = 1 (β = 0) that is not a weight — exactly
 * what the missing parameter means — so the config, the weight list and checkpoints stay
 * Keras-compatible. The constants are freed with the layer.
 */
function addMissingBatchNormConstants(bn: BatchNormInternals, layer: tfl.layers.Layer): void {
  const shape = bn.movingMean?.shape;
  if (shape === undefined) return;
  const constants: tf.Tensor[] = [];
  if (!bn.scale && bn.gamma == null) {
    const ones = tf.ones(shape);
    constants.push(ones);
    bn.gamma = { read: () => ones };
  }
  if (!bn.center && bn.beta == null) {
    const zeros = tf.zeros(shape);
    constants.push(zeros);
    bn.beta = { read: () => zeros };
  }
  if (constants.length === 0) return;
  const dispose = bn.dispose.bind(layer);
  bn.dispose = () => {
    const result = dispose();
    if (result.refCountAfterDispose === 0) tf.dispose(constants);
    return result;
  };
}

/**
 * a·x + b per channel (last axis); a and b have shape [C]. On wasm, b must also have been
 * *computed* as a [C] tensor, not reshaped to it: the wasm FusedDepthwiseConv2D checks the rank
 * of the bias's underlying buffer, which keeps the shape it was created with.
 */
function affinePerChannel(
  x: tf.Tensor,
  a: tf.Tensor1D,
  b: tf.Tensor1D | null,
  clipAt: number | null = null,
): tf.Tensor {
  return tf.tidy(() => {
    const c = x.shape[x.rank - 1] as number;
    // XNNPACK clamps in the same pass, but only to [0, 6] among the activations tfjs passes it.
    if (tf.getBackend() !== 'wasm' || (clipAt !== null && (clipAt !== 6 || b === null))) {
      const scaled = tf.mul(x, a);
      const y = b === null ? scaled : tf.add(scaled, b);
      return clipAt === null ? y : tf.clipByValue(y, 0, clipAt);
    }
    const x4 = (x.rank === 4 ? x : tf.reshape(x, [1, 1, x.size / c, c])) as tf.Tensor4D;
    const filter = tf.reshape(a, [1, 1, c, 1]) as tf.Tensor4D;
    // The kernel itself for the clip: under a gradient tape tf.fused.depthwiseConv2d runs any
    // activation but 'linear' as separate ops (a depthwise pass, an Add, a Relu6), and the
    // gradient here is our own anyway.
    const y =
      b === null
        ? tf.depthwiseConv2d(x4, filter, 1, 'valid')
        : clipAt === null
          ? tf.fused.depthwiseConv2d({ x: x4, filter, strides: 1, pad: 'valid', bias: b })
          : (tf
              .engine()
              .runKernel(
                'FusedDepthwiseConv2D',
                { x: x4, filter, bias: b },
                { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1], activation: 'relu6' },
              ) as tf.Tensor4D);
    return x.rank === 4 ? y : tf.reshape(y, x.shape);
  });
}

/**
 * The gradient of y = clip(x, 0, max) from y: dy where 0 < y < max, else 0 (as TF's Relu6Grad;
 * 0 < y < max ⇔ y·(max − y) > 0). On wasm one pass of podium's kernel, bit-identical to the ops.
 */
export function clippedReluGrad(dy: tf.Tensor, y: tf.Tensor, maxValue: number): tf.Tensor {
  return hasWasmTrainOp(RELU6_GRAD)
    ? (tf.engine().runKernel(RELU6_GRAD, { dy, y }, { maxValue }) as tf.Tensor)
    : tf.mul(dy, tf.step(tf.mul(y, tf.sub(maxValue, y))));
}

/**
 * Mean over all axes but the last, as [C]. For [N, H, W, C] on wasm: a global average pooling
 * and a mean over the N rows left (see above).
 */
export function meanPerChannel(x: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const c = x.shape[x.rank - 1] as number;
    if (x.rank === 4 && tf.getBackend() === 'wasm') {
      const [n, h, w] = x.shape as [number, number, number, number];
      return tf.mean(tf.reshape(tf.avgPool(x as tf.Tensor4D, [h, w], 1, 'valid'), [n, c]), 0) as tf.Tensor1D;
    }
    return tf.mean(tf.reshape(x, [x.size / c, c]), 0) as tf.Tensor1D;
  });
}

function meanAndVariance(x: tf.Tensor): [tf.Tensor1D, tf.Tensor1D] {
  const mean = meanPerChannel(x);
  return [mean, meanPerChannel(tf.squaredDifference(x, mean))];
}

function batchNormTraining(
  bn: BatchNormInternals,
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  clipAt: number | null,
): tf.Tensor {
  const c = x.shape[x.rank - 1] as number;
  const m = x.size / c;
  const kernels = hasWasmTrainOp(BN_GRAD_STATS) && hasWasmTrainOp(BN_INPUT_GRAD);
  return leanOp(
    [x, tf.reshape(gamma, [c]), tf.reshape(beta, [c])],
    ([input, g, b], save) => {
      const x0 = input as tf.Tensor;
      // Two-pass variance (exact even when |mean| ≫ std, unlike E[x²] − E[x]²); on wasm both
      // statistics come from one kernel (wasm-train-ops.ts).
      const [mean, variance] = hasWasmTrainOp(BN_STATS)
        ? (tf.engine().runKernel(BN_STATS, { x: x0 }, {}) as [tf.Tensor1D, tf.Tensor1D])
        : meanAndVariance(x0);
      const inv = tf.rsqrt(tf.add(variance, bn.epsilon)) as tf.Tensor1D;
      const a = tf.mul(g as tf.Tensor1D, inv) as tf.Tensor1D;
      const shift = tf.sub(b as tf.Tensor1D, tf.mul(mean, a)) as tf.Tensor1D;
      updateMovingAverage(bn.movingMean as LayerVariableLike, mean, bn.momentum);
      updateMovingAverage(
        bn.movingVariance as LayerVariableLike,
        m > 1 ? tf.mul(variance, m / (m - 1)) : variance,
        bn.momentum,
      );
      const y = affinePerChannel(x0, a, shift, clipAt);
      // With a fused clip the gradient needs where it was open: the wasm kernels recompute y from
      // x and the two per-channel vectors (one array less to read: the input gradient 10–15%
      // faster, docs/performance.md session 10); elsewhere ReLU(max)'s gradient reads y.
      save(clipAt === null ? [x0, mean, inv, a] : [x0, mean, inv, a, kernels ? shift : y]);
      return y;
    },
    (dyOut, [sx, sMean, sInv, sA, sGate]) => {
      const x0 = sx as tf.Tensor;
      const mean = sMean as tf.Tensor1D;
      const inv = sInv as tf.Tensor1D;
      const a = sA as tf.Tensor1D;
      // On wasm two kernels (wasm-train-ops.ts) do the passes, taking the fused ReLU's gradient
      // as they read dy; elsewhere that gradient is computed first.
      const gate: tf.NamedTensorMap = clipAt === null || !kernels ? {} : { scale: a, shift: sGate as tf.Tensor };
      const attrs: Record<string, number> = clipAt === null ? {} : { maxValue: clipAt };
      const dy = clipAt === null || kernels ? dyOut : clippedReluGrad(dyOut, sGate as tf.Tensor, clipAt);
      // dβ / M and E[dy·x].
      const [meanDy, meanDyX] = kernels
        ? (tf.engine().runKernel(BN_GRAD_STATS, { dy, x: x0, ...gate }, attrs) as [tf.Tensor1D, tf.Tensor1D])
        : [meanPerChannel(dy), meanPerChannel(tf.mul(dy, x0))];
      const cov = tf.sub(meanDyX, tf.mul(mean, meanDy)); // E[dy·(x − mean)]
      // dγ = Σ dy·x̂ = M·inv·cov;  dx = a·dy + k·x + c with k = −a·inv²·cov, c = −a·E[dy] − k·mean.
      const k = tf.neg(tf.mul(tf.mul(a, tf.square(inv)), cov)) as tf.Tensor1D;
      const cst = tf.sub(tf.neg(tf.mul(a, meanDy)), tf.mul(k, mean)) as tf.Tensor1D;
      const dx = kernels
        ? (tf.engine().runKernel(BN_INPUT_GRAD, { dy, x: x0, a, k, c: cst, ...gate }, attrs) as tf.Tensor)
        : tf.add(affinePerChannel(dy, a, null), affinePerChannel(x0, k, cst));
      return [dx, tf.mul(tf.mul(inv, cov), m), tf.mul(meanDy, m)];
    },
  );
}

function updateMovingAverage(variable: LayerVariableLike, value: tf.Tensor, momentum: number): void {
  tf.tidy(() => {
    const current = variable.read();
    variable.write(tf.sub(current, tf.mul(tf.sub(current, value), 1 - momentum)));
  });
}
