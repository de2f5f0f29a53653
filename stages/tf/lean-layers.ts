/**
 * Lean, fast layers for training on the wasm backend (accelerateLayers).
 *
 * Why: a first profile of one MobileNetV2 training step (batch 8, 128 px, wasm) spent 2.3 s of
 * 6.2 s in Tile and ~1 s more in Sum/Mean/Multiply, nearly all from tfjs-layers'
 * BatchNormalization in training mode (tf.moments reduces over N·H·W by transposing, the
 * FusedBatchNorm gradient tiles per-channel factors to the activation's full shape, the Mean/Sum
 * gradients multiply by full-size ones), and the tensors peaked at 1.6 GB: batch 32 ran the wasm
 * heap (4 GB at most) out of memory.
 *
 * Memory: tfjs's backward pass (tape.ts backpropagateGradients) keeps every gradient it computes
 * and every tensor saved for the backward pass until the very end, and a gradient function's
 * intermediates live as long (customGrad gradFuncs run outside any per-node tidy). So the peak
 * is about "all saved activations + one gradient per op output + intermediates".
 *
 * What replaces them, per layer instance (config, weights and checkpoints are unchanged):
 * - Conv2D, DepthwiseConv2D, ZeroPadding2D, BatchNormalization and ReLU(max) run in training
 *   mode as single tf.customGrad ops ("lean ops"). Their gradient runs in a tidy and then
 *   disposes its incoming gradient and its saved tensors: each is used by exactly this one node,
 *   and the engine's own later dispose of them is a no-op. Memory then falls as the backward
 *   pass proceeds instead of rising. They save only what their gradient needs (a conv: x and
 *   the kernel; BN: x and per-channel vectors; ReLU: its output).
 *   The conv gradients call the very kernels tfjs's own conv gradients call (Conv2DBackpropInput,
 *   Conv2DBackpropFilter, DepthwiseConv2dNative* — on wasm, those of wasm-gradients.ts).
 * - BN per-channel means over N·H·W are a global average pooling (XNNPACK, one pass) and a mean
 *   over N: tf.moments and Sum over non-innermost axes transpose first (~10× slower), and a GEMM
 *   with a row of ones is slower still (XNNPACK packs the activation as a weight matrix).
 * - BN's per-channel affine map a·x + b is one 1×1 depthwise convolution with bias (one XNNPACK
 *   pass) on wasm; broadcasting mul/add elsewhere. The training-mode gradient is closed-form:
 *     dβ = Σdy,  dγ = Σ dy·x̂,  dx = a·dy − (a/M)·dβ − (a/M)·x̂·dγ    (a = γ/√(σ²+ε), M = N·H·W)
 *   computed as dx = a·dy + k·x + c. Moving statistics are updated as tfjs-layers does
 *   (moving −= (moving − batch)·(1 − momentum)), except that the variance fed to the moving
 *   average is the unbiased one (× M/(M−1)), as TensorFlow's fused batch norm and PyTorch do;
 *   normalisation uses the biased one, as all of them do.
 * - ReLU(maxValue) is one clip whose gradient is dy·step(y·(max − y)): 2 passes instead of 7.
 * Inference mode: BN becomes the same single affine pass (from the moving statistics), ReLU the
 * single clip; convolutions and padding keep tfjs-layers' own call.
 * Everything is deterministic; results differ from the stock layers by float rounding only
 * (checked in test/tf/backend-models.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { BN_GRAD_STATS, BN_STATS, hasWasmTrainOp, RELU6_GRAD } from './wasm-train-ops.js';

type LayersModel = tfl.LayersModel;
type Layer = tfl.layers.Layer;

interface LayerVariableLike {
  read(): tf.Tensor;
  write(value: tf.Tensor): unknown;
}

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

type CallFn = (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor | tf.Tensor[];

/** Marks layers whose call accelerateLayers replaced, so doing it twice is harmless. */
const ACCELERATED = Symbol.for('podium.acceleratedLayer');

type Save = (tensors: tf.Tensor[]) => void;

/**
 * A differentiable op whose gradient frees memory as it goes (see above): `backward` runs in a
 * tidy, then the incoming gradient and the saved tensors are disposed.
 */
function leanOp(
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

interface ConvInternals {
  kernel?: LayerVariableLike | null;
  depthwiseKernel?: LayerVariableLike | null;
  bias?: LayerVariableLike | null;
  strides: number[];
  padding: string;
  dilationRate: number[] | number;
  dataFormat: string;
  useBias: boolean;
}

/**
 * Replaces the call of the model's Conv2D, DepthwiseConv2D, ZeroPadding2D, BatchNormalization
 * (channels-last) and ReLU(maxValue) layers by the lean, fast implementations above (and gives
 * BN layers without γ or β constants for them); layers with other settings keep their own call.
 * Idempotent; loadModel does it, and train() does it again for models built elsewhere.
 *
 * Caveat of the lean ops: their gradient disposes the gradient it receives. tfjs's own backward
 * pass never reuses it, but a caller of tf.grads(f)(x, dy) whose f ends in one of these layers
 * would see its own `dy` disposed; pass a clone.
 */
export function accelerateLayers(model: LayersModel): void {
  for (const layer of model.layers) {
    const target = layer as unknown as { call: CallFn; [ACCELERATED]?: boolean };
    if (target[ACCELERATED] === true) continue;
    const original: CallFn = target.call.bind(layer);
    const replacement = fastCall(layer, original);
    if (replacement === undefined) continue;
    target.call = (inputs, kwargs) => {
      const x = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
      return x === undefined ? original(inputs, kwargs) : replacement(x, kwargs['training'] === true);
    };
    target[ACCELERATED] = true;
  }
}

/** The fast call for one layer, or undefined when its settings are not supported. */
function fastCall(layer: Layer, original: CallFn): ((x: tf.Tensor, training: boolean) => tf.Tensor | tf.Tensor[]) | undefined {
  const config = layer.getConfig() as { activation?: unknown; dataFormat?: unknown; data_format?: unknown };
  const channelsLast = (config.dataFormat ?? config.data_format ?? 'channelsLast') !== 'channelsFirst';
  switch (layer.getClassName()) {
    case 'BatchNormalization': {
      const bn = layer as unknown as BatchNormInternals;
      addMissingBatchNormConstants(bn, layer);
      return (x, training) => {
        const axis = bn.axis < 0 ? bn.axis + x.rank : bn.axis;
        const { gamma, beta, movingMean, movingVariance } = bn;
        if (axis !== x.rank - 1 || gamma == null || beta == null || movingMean === undefined || movingVariance === undefined) {
          return original(x, { training });
        }
        if (training) return batchNormTraining(bn, x, gamma.read(), beta.read());
        return tf.tidy(() => {
          const a = tf.mul(gamma.read(), tf.rsqrt(tf.add(movingVariance.read(), bn.epsilon))) as tf.Tensor1D;
          const b = tf.sub(beta.read(), tf.mul(movingMean.read(), a)) as tf.Tensor1D;
          return affinePerChannel(x, a, b);
        });
      };
    }
    case 'ReLU': {
      const maxValue = (layer as unknown as { maxValue?: number | null }).maxValue;
      if (maxValue === undefined || maxValue === null || !(maxValue > 0)) return undefined;
      return (x, training) => (training ? clippedRelu(x, maxValue) : tf.clipByValue(x, 0, maxValue));
    }
    case 'Conv2D':
    case 'DepthwiseConv2D': {
      const conv = layer as unknown as ConvInternals;
      const dilations = Array.isArray(conv.dilationRate) ? conv.dilationRate : [conv.dilationRate, conv.dilationRate];
      const supported =
        channelsLast && config.activation === 'linear' && dilations.every((d) => d === 1) && (conv.padding === 'same' || conv.padding === 'valid');
      if (!supported) return undefined;
      const depthwise = layer.getClassName() === 'DepthwiseConv2D';
      return (x, training) => {
        const kernel = depthwise ? conv.depthwiseKernel : conv.kernel;
        if (!training || x.rank !== 4 || kernel == null) return original(x, { training });
        const bias = conv.useBias && conv.bias != null ? conv.bias.read() : null;
        return convTraining(x as tf.Tensor4D, kernel.read() as tf.Tensor4D, bias, conv, depthwise);
      };
    }
    case 'ZeroPadding2D': {
      const padding = (layer as unknown as { padding: [[number, number], [number, number]] }).padding;
      if (!channelsLast) return undefined;
      return (x, training) => {
        if (!training || x.rank !== 4) return original(x, { training });
        return zeroPadTraining(x as tf.Tensor4D, padding);
      };
    }
    default:
      return undefined;
  }
}

/**
 * BatchNormalization with scale: false or center: false (all of InceptionV3's BN layers have
 * scale: false) crashes in tfjs-layers 4.22 in training mode: its call reads `this.gamma.read()`
 * unconditionally. We give such layers a constant γ = 1 (β = 0) that is not a weight — exactly
 * what the missing parameter means — so the config, the weight list and checkpoints stay
 * Keras-compatible. The constants are freed with the layer.
 */
function addMissingBatchNormConstants(bn: BatchNormInternals, layer: Layer): void {
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

function convTraining(x: tf.Tensor4D, kernel: tf.Tensor4D, bias: tf.Tensor | null, conv: ConvInternals, depthwise: boolean): tf.Tensor {
  const strides: [number, number] = [conv.strides[0] ?? 1, conv.strides[1] ?? 1];
  const pad = conv.padding as 'same' | 'valid';
  const inputs = bias === null ? [x, kernel] : [x, kernel, bias];
  return leanOp(
    inputs,
    ([input, filter, b], save) => {
      const x4 = input as tf.Tensor4D;
      const f4 = filter as tf.Tensor4D;
      save([x4, f4]);
      return tf.tidy(() => {
        const y = depthwise ? tf.depthwiseConv2d(x4, f4, strides, pad) : tf.conv2d(x4, f4, strides, pad);
        return b === undefined ? y : tf.add(y, b);
      });
    },
    (dy, [sx, sf]) => {
      const x4 = sx as tf.Tensor4D;
      const f4 = sf as tf.Tensor4D;
      const engine = tf.engine();
      let dx: tf.Tensor;
      let df: tf.Tensor;
      if (depthwise) {
        const attrs = { strides, pad, dilations: [1, 1] };
        dx = engine.runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: f4 }, { ...attrs, inputShape: x4.shape }) as tf.Tensor;
        df = engine.runKernel('DepthwiseConv2dNativeBackpropFilter', { x: x4, dy }, { ...attrs, filterShape: f4.shape }) as tf.Tensor;
      } else {
        const attrs = { strides, pad, dataFormat: 'NHWC' };
        dx = engine.runKernel('Conv2DBackpropInput', { dy, filter: f4 }, { ...attrs, inputShape: x4.shape }) as tf.Tensor;
        df = engine.runKernel('Conv2DBackpropFilter', { x: x4, dy }, { ...attrs, filterShape: f4.shape }) as tf.Tensor;
      }
      if (bias === null) return [dx, df];
      const m = dy.size / (dy.shape[3] as number);
      return [dx, df, tf.mul(meanPerChannel(dy), m)];
    },
  );
}

function zeroPadTraining(x: tf.Tensor4D, padding: [[number, number], [number, number]]): tf.Tensor {
  const [[top, bottom], [left, right]] = padding;
  const shape = x.shape;
  return leanOp(
    [x],
    ([input]) => tf.pad(input as tf.Tensor4D, [[0, 0], [top, bottom], [left, right], [0, 0]]),
    (dy) => [tf.slice(dy, [0, top, left, 0], shape)],
  );
}

/**
 * a·x + b per channel (last axis); a and b have shape [C]. On wasm, b must also have been
 * *computed* as a [C] tensor, not reshaped to it: the wasm FusedDepthwiseConv2D checks the rank
 * of the bias's underlying buffer, which keeps the shape it was created with.
 */
function affinePerChannel(x: tf.Tensor, a: tf.Tensor1D, b: tf.Tensor1D | null): tf.Tensor {
  return tf.tidy(() => {
    const c = x.shape[x.rank - 1] as number;
    if (tf.getBackend() !== 'wasm') {
      const scaled = tf.mul(x, a);
      return b === null ? scaled : tf.add(scaled, b);
    }
    const x4 = (x.rank === 4 ? x : tf.reshape(x, [1, 1, x.size / c, c])) as tf.Tensor4D;
    const filter = tf.reshape(a, [1, 1, c, 1]) as tf.Tensor4D;
    const y = b === null ? tf.depthwiseConv2d(x4, filter, 1, 'valid') : tf.fused.depthwiseConv2d({ x: x4, filter, strides: 1, pad: 'valid', bias: b });
    return x.rank === 4 ? y : tf.reshape(y, x.shape);
  });
}

/**
 * Mean over all axes but the last, as [C]. For [N, H, W, C] on wasm: a global average pooling
 * and a mean over the N rows left (see above).
 */
function meanPerChannel(x: tf.Tensor): tf.Tensor1D {
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

function batchNormTraining(bn: BatchNormInternals, x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const c = x.shape[x.rank - 1] as number;
  const m = x.size / c;
  return leanOp(
    [x, tf.reshape(gamma, [c]), tf.reshape(beta, [c])],
    ([input, g, b], save) => {
      const x0 = input as tf.Tensor;
      // Two-pass variance (exact even when |mean| ≫ std, unlike E[x²] − E[x]²); on wasm both
      // statistics come from one kernel (wasm-train-ops.ts).
      const [mean, variance] = hasWasmTrainOp(BN_STATS)
        ? tf.engine().runKernel(BN_STATS, { x: x0 }, {}) as [tf.Tensor1D, tf.Tensor1D]
        : meanAndVariance(x0);
      const inv = tf.rsqrt(tf.add(variance, bn.epsilon)) as tf.Tensor1D;
      const a = tf.mul(g as tf.Tensor1D, inv) as tf.Tensor1D;
      const shift = tf.sub(b as tf.Tensor1D, tf.mul(mean, a)) as tf.Tensor1D;
      updateMovingAverage(bn.movingMean as LayerVariableLike, mean, bn.momentum);
      updateMovingAverage(bn.movingVariance as LayerVariableLike, m > 1 ? tf.mul(variance, m / (m - 1)) : variance, bn.momentum);
      save([x0, mean, inv, a]);
      return affinePerChannel(x0, a, shift);
    },
    (dy, [sx, sMean, sInv, sA]) => {
      const x0 = sx as tf.Tensor;
      const mean = sMean as tf.Tensor1D;
      const inv = sInv as tf.Tensor1D;
      const a = sA as tf.Tensor1D;
      // dβ / M and E[dy·x]; on wasm from one kernel (wasm-train-ops.ts).
      const [meanDy, meanDyX] = hasWasmTrainOp(BN_GRAD_STATS)
        ? tf.engine().runKernel(BN_GRAD_STATS, { dy, x: x0 }, {}) as [tf.Tensor1D, tf.Tensor1D]
        : [meanPerChannel(dy), meanPerChannel(tf.mul(dy, x0))];
      const cov = tf.sub(meanDyX, tf.mul(mean, meanDy)); // E[dy·(x − mean)]
      // dγ = Σ dy·x̂ = M·inv·cov;  dx = a·dy + k·x + c with k = −a·inv²·cov, c = −a·E[dy] − k·mean.
      const k = tf.neg(tf.mul(tf.mul(a, tf.square(inv)), cov)) as tf.Tensor1D;
      const cst = tf.sub(tf.neg(tf.mul(a, meanDy)), tf.mul(k, mean)) as tf.Tensor1D;
      const dx = tf.add(affinePerChannel(dy, a, null), affinePerChannel(x0, k, cst));
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

function clippedRelu(x: tf.Tensor, maxValue: number): tf.Tensor {
  return leanOp(
    [x],
    ([input], save) => {
      const y = tf.clipByValue(input as tf.Tensor, 0, maxValue);
      save([y]);
      return y;
    },
    // 0 < y < max ⇔ y·(max − y) > 0: the gradient passes exactly there (as TF's Relu6Grad).
    // On wasm one pass of podium's kernel, bit-identical to the four ops (wasm-train-ops.ts).
    (dy, [y]) => [hasWasmTrainOp(RELU6_GRAD)
      ? tf.engine().runKernel(RELU6_GRAD, { dy, y: y as tf.Tensor }, { maxValue }) as tf.Tensor
      : tf.mul(dy, tf.step(tf.mul(y as tf.Tensor, tf.sub(maxValue, y as tf.Tensor))))],
  );
}