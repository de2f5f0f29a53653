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
 * What replaces them, per layer instance (config, weights and checkpoints are unchanged):
 * - Conv2D, DepthwiseConv2D, ZeroPadding2D, BatchNormalization and ReLU(max) run in training
 *   mode as single tf.customGrad ops ("lean ops", lean-op.ts). Their gradient runs in a tidy and then
 *   disposes its incoming gradient and its saved tensors: each is used by exactly this one node,
 *   and the engine's own later dispose of them is a no-op. Memory then falls as the backward
 *   pass proceeds instead of rising. They save only what their gradient needs (a conv: x and
 *   the kernel; BN: x and per-channel vectors; ReLU: its output).
 *   The conv gradients call the very kernels tfjs's own conv gradients call (Conv2DBackpropInput,
 *   Conv2DBackpropFilter, DepthwiseConv2dNative* — on wasm, those of wasm-gradients.ts).
 * - BatchNormalization: per-channel statistics by pooling, the affine map as one depthwise pass,
 *   a closed-form gradient (lean-batch-norm.ts).
 * - ReLU(maxValue) is one clip whose gradient is dy·step(y·(max − y)): 2 passes instead of 7;
 *   after a BN layer whose only reader it is, BN clips in its own affine pass (lean-batch-norm.ts).
 * Inference mode: BN becomes the same single affine pass (from the moving statistics), ReLU the
 * single clip; convolutions and padding keep tfjs-layers' own call.
 * Everything is deterministic; results differ from the stock layers by float rounding only
 * (checked in test/tf/backend-models.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { batchNormCall, clippedOutputs, clippedReluGrad, meanPerChannel } from './lean-batch-norm.js';
import { type CallFn, type LayerVariableLike, leanOp } from './lean-op.js';

export type { BatchNormInternals } from './lean-batch-norm.js';

type LayersModel = tfl.LayersModel;
type Layer = tfl.layers.Layer;

/** Marks layers whose call accelerateLayers replaced, so doing it twice is harmless. */
const ACCELERATED = Symbol.for('podium.acceleratedLayer');

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
function fastCall(
  layer: Layer,
  original: CallFn,
): ((x: tf.Tensor, training: boolean) => tf.Tensor | tf.Tensor[]) | undefined {
  const config = layer.getConfig() as { activation?: unknown; dataFormat?: unknown; data_format?: unknown };
  const channelsLast = (config.dataFormat ?? config.data_format ?? 'channelsLast') !== 'channelsFirst';
  switch (layer.getClassName()) {
    case 'BatchNormalization':
      return batchNormCall(layer, original, clippedReluAfter(layer) ?? null);
    case 'ReLU': {
      const maxValue = clipBound(layer);
      if (maxValue === undefined) return undefined;
      return (x, training) => {
        if (!training) return tf.clipByValue(x, 0, maxValue);
        // Clipped already by the BN layer before it (lean-batch-norm.ts), whose gradient clips dy.
        return clippedOutputs.get(x) === maxValue ? passThrough(x) : clippedRelu(x, maxValue);
      };
    }
    case 'Conv2D':
    case 'DepthwiseConv2D': {
      const conv = layer as unknown as ConvInternals;
      const dilations = Array.isArray(conv.dilationRate) ? conv.dilationRate : [conv.dilationRate, conv.dilationRate];
      const supported =
        channelsLast &&
        config.activation === 'linear' &&
        dilations.every((d) => d === 1) &&
        (conv.padding === 'same' || conv.padding === 'valid');
      if (!supported) return undefined;
      const depthwise = layer.getClassName() === 'DepthwiseConv2D';
      return (x, training) => {
        const kernel = depthwise ? conv.depthwiseKernel : conv.kernel;
        if (!training || x.rank !== 4 || kernel == null) return original(x, { training });
        const bias = conv.useBias && conv.bias != null ? conv.bias.read() : null;
        const pad = paddedLater.get(x) === layer ? 'same' : (conv.padding as 'same' | 'valid');
        return convTraining(x as tf.Tensor4D, kernel.read() as tf.Tensor4D, bias, conv, depthwise, pad);
      };
    }
    case 'ZeroPadding2D': {
      const padding = (layer as unknown as { padding: [[number, number], [number, number]] }).padding;
      if (!channelsLast) return undefined;
      const reader = soleReader(layer);
      const conv = reader !== undefined && isValidConv(reader) ? reader : undefined;
      return (x, training) => {
        if (!training || x.rank !== 4) return original(x, { training });
        if (conv !== undefined && samePaddingIs(x.shape as Shape4, conv, padding)) {
          // A new tensor object, so that the mark is for this reader alone.
          const y = passThrough(x);
          paddedLater.set(y, conv);
          return y;
        }
        return zeroPadTraining(x as tf.Tensor4D, padding);
      };
    }
    default:
      return undefined;
  }
}

function convTraining(
  x: tf.Tensor4D,
  kernel: tf.Tensor4D,
  bias: tf.Tensor | null,
  conv: ConvInternals,
  depthwise: boolean,
  pad: 'same' | 'valid',
): tf.Tensor {
  const strides: [number, number] = [conv.strides[0] ?? 1, conv.strides[1] ?? 1];
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
        dx = engine.runKernel(
          'DepthwiseConv2dNativeBackpropInput',
          { dy, filter: f4 },
          { ...attrs, inputShape: x4.shape },
        ) as tf.Tensor;
        df = engine.runKernel(
          'DepthwiseConv2dNativeBackpropFilter',
          { x: x4, dy },
          { ...attrs, filterShape: f4.shape },
        ) as tf.Tensor;
      } else {
        const attrs = { strides, pad, dataFormat: 'NHWC' };
        dx = engine.runKernel(
          'Conv2DBackpropInput',
          { dy, filter: f4 },
          { ...attrs, inputShape: x4.shape },
        ) as tf.Tensor;
        df = engine.runKernel('Conv2DBackpropFilter', { x: x4, dy }, { ...attrs, filterShape: f4.shape }) as tf.Tensor;
      }
      if (bias === null) return [dx, df];
      const m = dy.size / (dy.shape[3] as number);
      return [dx, df, tf.mul(meanPerChannel(dy), m)];
    },
  );
}

/**
 * x as a new tensor object on the same data, for a layer whose call does nothing: tfjs-layers
 * would clone an input returned as is (an Identity op, whose gradient is a Cast: a copy of the
 * activation per layer). A Reshape to the same shape shares the data both ways.
 */
function passThrough(x: tf.Tensor): tf.Tensor {
  return tf.reshape(x, x.shape);
}

/** The max of a ReLU(maxValue) layer, or undefined for other activations. */
function clipBound(layer: Layer): number | undefined {
  if (layer.getClassName() !== 'ReLU') return undefined;
  const maxValue = (layer as unknown as { maxValue?: number | null }).maxValue;
  return maxValue === undefined || maxValue === null || !(maxValue > 0) ? undefined : maxValue;
}

/** The layer that alone reads this layer's only output, called once, or undefined. */
function soleReader(layer: Layer): Layer | undefined {
  const { inboundNodes, outboundNodes } = layer as unknown as {
    inboundNodes: unknown[];
    outboundNodes: Array<{ outboundLayer: Layer }>;
  };
  const next = outboundNodes.length === 1 ? outboundNodes[0]!.outboundLayer : undefined;
  if (inboundNodes.length !== 1 || next === undefined) return undefined;
  return (next as unknown as { inboundNodes: unknown[] }).inboundNodes.length === 1 ? next : undefined;
}

/**
 * The max of the ReLU(max) that alone reads this layer (MobileNetV2's BN → ReLU6 pairs), or
 * undefined: then BN can clip its own output in training mode.
 */
function clippedReluAfter(layer: Layer): number | undefined {
  const reader = soleReader(layer);
  return reader === undefined ? undefined : clipBound(reader);
}

/**
 * Tensors a ZeroPadding2D layer passed on unpadded, by the convolution that alone reads them and
 * pads them itself, as 'same' (training mode). Why: MobileNetV2's stride-2 layers pad by
 * [[0, 1], [0, 1]] and convolve 'valid', which for even sizes is exactly 'same': the explicit pad
 * (forward) and its Slice (backward) were two copies of the activation, and the convolution read
 * the zeros. XNNPACK's implicit padding adds the same zero products in the same order, and the
 * gradients skip them, so results do not change. (Explicit padding would cover every case, but
 * tfjs-backend-wasm 4.22 computes it wrongly: test/tf/wasm-gradients.test.ts.)
 */
const paddedLater = new WeakMap<tf.Tensor, Layer>();

type Shape4 = [number, number, number, number];

function isValidConv(layer: Layer): boolean {
  const name = layer.getClassName();
  return (name === 'Conv2D' || name === 'DepthwiseConv2D') && (layer as unknown as ConvInternals).padding === 'valid';
}

/** Whether 'same' padding of this convolution's input x pads exactly by `padding`. */
function samePaddingIs(xShape: Shape4, layer: Layer, padding: [[number, number], [number, number]]): boolean {
  const { kernelSize, strides } = layer as unknown as { kernelSize: number[]; strides: number[] };
  return [0, 1].every((axis) => {
    const size = xShape[axis + 1]!;
    const [k, s] = [kernelSize[axis] ?? 1, strides[axis] ?? 1];
    const total = Math.max((Math.ceil(size / s) - 1) * s + k - size, 0);
    const before = Math.floor(total / 2);
    return padding[axis]![0] === before && padding[axis]![1] === total - before;
  });
}

function zeroPadTraining(x: tf.Tensor4D, padding: [[number, number], [number, number]]): tf.Tensor {
  const [[top, bottom], [left, right]] = padding;
  const shape = x.shape;
  return leanOp(
    [x],
    ([input]) =>
      tf.pad(input as tf.Tensor4D, [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ]),
    (dy) => [tf.slice(dy, [0, top, left, 0], shape)],
  );
}

function clippedRelu(x: tf.Tensor, maxValue: number): tf.Tensor {
  return leanOp(
    [x],
    ([input], save) => {
      const y = tf.clipByValue(input as tf.Tensor, 0, maxValue);
      save([y]);
      return y;
    },
    (dy, [y]) => [clippedReluGrad(dy, y as tf.Tensor, maxValue)],
  );
}
