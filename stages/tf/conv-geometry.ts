// The geometry of the four convolution gradient kernels (wasm-conv-gradients.ts): tfjs's
// attributes checked once and turned into the dimensions each algorithm needs, for a filter
// gradient (x and dy given) or an input gradient (dy and the filter given).
import { backend_util, util } from '@tensorflow/tfjs-core';
import type { Conv2DBackpropFilterAttrs, TensorInfo } from '@tensorflow/tfjs-core';

import { at, fail } from './wasm-ops.js';

export type Shape4 = [number, number, number, number];
type Pad = Conv2DBackpropFilterAttrs['pad'];
type RoundingMode = Conv2DBackpropFilterAttrs['dimRoundingMode'];

/** Common attributes of all four gradient kernels, already validated. */
export interface GradGeometry {
  strides: [number, number] | number;
  pad: Pad;
  dimRoundingMode?: RoundingMode;
}

/** A shape that must be rank 4, as a tuple. */
export function as4D(kernel: string, name: string, shape: readonly number[]): Shape4 {
  if (shape.length !== 4) fail(kernel, `${name} must be rank 4, got shape [${shape.join(',')}]`);
  return [at(shape, 0), at(shape, 1), at(shape, 2), at(shape, 3)];
}

export function ceilDiv(a: number, b: number): number {
  return Math.ceil(a / b);
}

/**
 * The dimensions of a gradient, checked against each other and the forward geometry: x (or the
 * input) [N, H, W, C], filter [kh, kw, C, out], dy [N, OH, OW, dyC]; and whether it is empty (then
 * the gradient is all zeros).
 */
export interface GradientDims {
  N: number;
  H: number;
  W: number;
  C: number;
  kh: number;
  kw: number;
  out: number;
  OH: number;
  OW: number;
  dyC: number;
  sh: number;
  sw: number;
  padTop: number;
  padLeft: number;
  empty: boolean;
}

/** The convolution window in the order podium's wasm kernels take it: kh, kw, sh, sw, padTop, padLeft. */
export function windowArgs(d: GradientDims): [number, number, number, number, number, number] {
  return [d.kh, d.kw, d.sh, d.sw, d.padTop, d.padLeft];
}

/**
 * GradientDims from the three shapes, with the forward pass's strides and top-left padding exactly
 * as tfjs computes them (pads for 'same' follow TF: total = max((out-1)*stride + k - in, 0),
 * top = floor(total / 2)); dy's shape must be the forward output's.
 */
function gradientDims(
  kernel: string,
  xShape: Shape4,
  filterShape: Shape4,
  dyShape: Shape4,
  g: GradGeometry,
  depthwise: boolean,
  empty: boolean,
): GradientDims {
  const info = backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    g.strides,
    1,
    g.pad,
    g.dimRoundingMode,
    depthwise,
    'channelsLast',
  );
  if (
    info.outHeight !== dyShape[1] ||
    info.outWidth !== dyShape[2] ||
    info.outChannels !== dyShape[3] ||
    info.batchSize !== dyShape[0]
  ) {
    fail(
      kernel,
      `dy shape [${dyShape.join(',')}] does not match the forward output [${info.outShape.join(',')}] ` +
        `for x [${xShape.join(',')}], filter [${filterShape.join(',')}], strides ${String(g.strides)}, pad ${JSON.stringify(g.pad)}`,
    );
  }
  const [N, H, W, C] = xShape;
  const [kh, kw, , out] = filterShape;
  const [, OH, OW, dyC] = dyShape;
  const [sh, sw, padTop, padLeft] = [info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left];
  return { N, H, W, C, kh, kw, out, OH, OW, dyC, sh, sw, padTop, padLeft, empty };
}

/**
 * The dimensions of one gradient from its two tensor inputs and the 4-D shape it is asked for:
 * filterGradientDims and inputGradientDims below, between which the gradient kernels choose.
 */
export type GradientDimsOf = (
  kernel: string,
  first: TensorInfo,
  second: TensorInfo,
  shape: Shape4,
  g: GradGeometry,
  depthwise: boolean,
) => GradientDims;

/** For a filter gradient: x and dy are given, the filter's shape is asked for. */
export const filterGradientDims: GradientDimsOf = (kernel, x, dy, filterShape, g, depthwise) => {
  const xShape = as4D(kernel, 'x', x.shape);
  if (filterShape[2] !== xShape[3])
    fail(kernel, `filterShape in-channels ${filterShape[2]} != x channels ${xShape[3]}`);
  const dyShape = as4D(kernel, 'dy', dy.shape);
  const empty = util.sizeFromShape(x.shape) === 0 || util.sizeFromShape(dy.shape) === 0;
  return gradientDims(kernel, xShape, filterShape, dyShape, g, depthwise, empty);
};

/** For an input gradient: dy and the filter are given, the input's shape is asked for. */
export const inputGradientDims: GradientDimsOf = (kernel, dy, filter, inputShape, g, depthwise) => {
  const filterShape = as4D(kernel, 'filter', filter.shape);
  if (filterShape[2] !== inputShape[3])
    fail(kernel, `filter in-channels ${filterShape[2]} != inputShape channels ${inputShape[3]}`);
  const dyShape = as4D(kernel, 'dy', dy.shape);
  const empty =
    util.sizeFromShape(inputShape) === 0 ||
    util.sizeFromShape(dy.shape) === 0 ||
    util.sizeFromShape(filter.shape) === 0;
  return gradientDims(kernel, inputShape, filterShape, dyShape, g, depthwise, empty);
};
