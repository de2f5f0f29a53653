/**
 * Convolution gradient kernels for the TensorFlow.js 'wasm' backend.
 *
 * Why this file exists: @tensorflow/tfjs-backend-wasm 4.22 registers no
 * `Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropFilter` or
 * `DepthwiseConv2dNativeBackpropInput` kernel (tfjs#8474), so `model.fit` of
 * any convnet dies with "Kernel 'Conv2DBackpropFilter' not registered for
 * backend 'wasm'". Its own `Conv2DBackpropInput` exists but is a naive loop
 * (1.1–2.2 s for x [8,56,56,64] × 64 3×3 filters on our 2-core machine).
 *
 * This file registers them: it checks each kernel's inputs and attributes and runs the
 * computation (wasm-conv-gradients.ts, which says how each is composed and why) in an op scope
 * (wasm-ops.ts) that calls the wasm kernel functions directly and frees every intermediate, so
 * only the result's reference survives.
 */
import {
  backend_util,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  DepthwiseConv2dNativeBackpropFilter,
  DepthwiseConv2dNativeBackpropInput,
  getKernel,
  registerKernel,
  unregisterKernel,
} from '@tensorflow/tfjs-core';
import type {
  KernelBackend,
  Conv2DBackpropInputAttrs,
  KernelConfig,
  KernelFunc,
  NamedTensorInfoMap,
  TensorInfo,
} from '@tensorflow/tfjs-core';

import {
  conv2DBackpropFilterImpl,
  conv2DBackpropInputImpl,
  depthwiseBackpropFilterImpl,
  depthwiseBackpropInputImpl,
  type GradientImpl,
} from './wasm-conv-gradients.js';
import { as4D, filterGradientDims, inputGradientDims, type GradGeometry } from './conv-geometry.js';
import { kernelPool } from './wasm-kernels.js';
import { fail, withOps } from './wasm-ops.js';

const WASM = 'wasm';

// ---------------------------------------------------------------------------
// Checks of what a caller passes (attrs/inputs exactly as in tfjs-core kernel_names.ts).
// ---------------------------------------------------------------------------

function requireInput(kernel: string, inputs: NamedTensorInfoMap, name: string): TensorInfo {
  const t = inputs[name];
  if (t === undefined) fail(kernel, `missing input '${name}'`);
  return t;
}

function requireNHWC(kernel: string, dataFormat: string | undefined): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    fail(kernel, `only dataFormat 'NHWC' is supported on the wasm backend, got '${dataFormat}'`);
  }
}

function requireUnitDilations(kernel: string, dilations: [number, number] | number | undefined): void {
  // tfjs-core's DepthwiseConv2dNative gradient asserts dilations == 1 before
  // it ever calls these kernels; only direct runKernel callers can get here.
  if (dilations !== undefined && !backend_util.tupleValuesAreOne(dilations)) {
    fail(kernel, `dilations must be 1, got ${String(dilations)}`);
  }
}

/**
 * What a gradient kernel takes and is asked for: a filter gradient takes x and dy and the filter's
 * shape, an input gradient dy and the filter and the input's shape.
 */
const GRADIENTS = {
  filter: { inputNames: ['x', 'dy'], shapeAttr: 'filterShape', dimsOf: filterGradientDims },
  input: { inputNames: ['dy', 'filter'], shapeAttr: 'inputShape', dimsOf: inputGradientDims },
} as const;

/** The attributes of all four gradients: Conv2D's have a data format, the depthwise ones dilations. */
type GradientAttrs = GradGeometry & {
  dataFormat?: string;
  dilations?: [number, number] | number;
  filterShape?: number[];
  inputShape?: number[];
};

/**
 * A kernel function for one gradient: checks the attributes, takes its two tensor inputs by name
 * and its 4-D shape attribute, and computes `impl` in a fresh op scope (an empty gradient is all
 * zeros without it).
 */
function gradientKernel(
  kernel: string,
  conv: 'conv2d' | 'depthwise',
  of: 'filter' | 'input',
  impl: GradientImpl,
): KernelFunc {
  const { inputNames, shapeAttr, dimsOf } = GRADIENTS[of];
  const depthwise = conv === 'depthwise';
  return ({ inputs, backend, attrs }) => {
    const a = attrs as unknown as GradientAttrs;
    if (depthwise) requireUnitDilations(kernel, a.dilations);
    else requireNHWC(kernel, a.dataFormat);
    const first = requireInput(kernel, inputs, inputNames[0]);
    const second = requireInput(kernel, inputs, inputNames[1]);
    const shape = as4D(kernel, shapeAttr, a[shapeAttr]!);
    return withOps(backend, kernel, (ops) => {
      const dims = dimsOf(kernel, first, second, shape, a, depthwise);
      if (dims.empty) return ops.zeros(shape);
      return impl(ops, first, second, shape, dims, () => kernelPool(backend as KernelBackend));
    });
  };
}

// ---------------------------------------------------------------------------
// Kernel functions
// ---------------------------------------------------------------------------

export const conv2DBackpropFilterKernel = gradientKernel(
  Conv2DBackpropFilter,
  'conv2d',
  'filter',
  conv2DBackpropFilterImpl,
);

export const depthwiseConv2dNativeBackpropFilterKernel = gradientKernel(
  DepthwiseConv2dNativeBackpropFilter,
  'depthwise',
  'filter',
  depthwiseBackpropFilterImpl,
);

export const depthwiseConv2dNativeBackpropInputKernel = gradientKernel(
  DepthwiseConv2dNativeBackpropInput,
  'depthwise',
  'input',
  depthwiseBackpropInputImpl,
);

/** wasm's own Conv2DBackpropInput, kept for NCHW (which our version does not do). */
let nativeConv2DBackpropInput: KernelConfig | undefined;

const composedConv2DBackpropInput = gradientKernel(Conv2DBackpropInput, 'conv2d', 'input', conv2DBackpropInputImpl);

export const conv2DBackpropInputKernel: KernelFunc = (args) => {
  const a = args.attrs as unknown as Conv2DBackpropInputAttrs;
  if (a.dataFormat === 'NCHW' && nativeConv2DBackpropInput !== undefined)
    return nativeConv2DBackpropInput.kernelFunc(args);
  return composedConv2DBackpropInput(args);
};

const missingKernels: ReadonlyArray<{ kernelName: string; kernelFunc: KernelFunc }> = [
  { kernelName: Conv2DBackpropFilter, kernelFunc: conv2DBackpropFilterKernel },
  { kernelName: DepthwiseConv2dNativeBackpropFilter, kernelFunc: depthwiseConv2dNativeBackpropFilterKernel },
  { kernelName: DepthwiseConv2dNativeBackpropInput, kernelFunc: depthwiseConv2dNativeBackpropInputKernel },
];

export interface RegisterWasmGradientOptions {
  /**
   * Replace wasm's own Conv2DBackpropInput with the composition above.
   * Default true: ~90–125 ms vs ~1.1–1.5 s (stride 1) and ~50–65 ms vs
   * ~320–430 ms (stride 2) for x [8,56,56,64] with 64 3×3 filters, measured
   * with bench/wasm-gradients.mjs. With false, whatever kernel is currently
   * registered for Conv2DBackpropInput is left alone.
   */
  replaceConv2DBackpropInput?: boolean;
}

/**
 * Registers the missing convolution gradient kernels for the 'wasm' backend
 * (and, by default, a faster Conv2DBackpropInput). Idempotent. May be called
 * before or after `tf.setBackend('wasm')`; kernels are looked up at run time.
 * Does not override a Conv2DBackpropFilter/Depthwise* kernel that some other
 * code (or a future tfjs-backend-wasm) already registered.
 */
export function registerWasmGradientKernels(options: RegisterWasmGradientOptions = {}): void {
  for (const { kernelName, kernelFunc } of missingKernels) {
    if ((getKernel(kernelName, WASM) as KernelConfig | undefined) === undefined) {
      registerKernel({ kernelName, backendName: WASM, kernelFunc });
    }
  }
  if (options.replaceConv2DBackpropInput ?? true) {
    const existing = getKernel(Conv2DBackpropInput, WASM) as KernelConfig | undefined;
    if (existing?.kernelFunc === conv2DBackpropInputKernel) return;
    nativeConv2DBackpropInput = existing;
    if (existing !== undefined) unregisterKernel(Conv2DBackpropInput, WASM);
    const config: KernelConfig = {
      kernelName: Conv2DBackpropInput,
      backendName: WASM,
      kernelFunc: conv2DBackpropInputKernel,
    };
    // The native kernel cwraps its wasm export in setupFunc; keep that hook so
    // the NCHW fallback works even if we register before the backend starts.
    if (existing?.setupFunc !== undefined) config.setupFunc = existing.setupFunc;
    if (existing?.disposeFunc !== undefined) config.disposeFunc = existing.disposeFunc;
    registerKernel(config);
  }
}

/** Undoes registerWasmGradientKernels (restoring wasm's own Conv2DBackpropInput). For tests and benchmarks. */
export function unregisterWasmGradientKernels(): void {
  for (const { kernelName, kernelFunc } of missingKernels) {
    const k = getKernel(kernelName, WASM) as KernelConfig | undefined;
    if (k?.kernelFunc === kernelFunc) unregisterKernel(kernelName, WASM);
  }
  const k = getKernel(Conv2DBackpropInput, WASM) as KernelConfig | undefined;
  if (k?.kernelFunc === conv2DBackpropInputKernel) {
    unregisterKernel(Conv2DBackpropInput, WASM);
    if (nativeConv2DBackpropInput !== undefined) registerKernel(nativeConv2DBackpropInput);
    nativeConv2DBackpropInput = undefined;
  }
}
