// Micro-benchmark for stages/tf/wasm-gradients.ts on the tfjs 'wasm' backend.
//
//   npx tsc -p tsconfig.json && node bench/wasm-gradients.mjs [repeats]
//
// Times each gradient kernel call (runKernel + dataSync, so the work is
// really done) and prints min / median milliseconds. Compares our
// Conv2DBackpropInput against wasm's own kernel, and one full conv2d
// training-step gradient (tf.grads) with either input-gradient kernel.
// Timings are noisy on a shared 2-core machine: trust the min column.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers the gradient functions (tf.grads)
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmGradientKernels, unregisterWasmGradientKernels } from '../dist/stages/tf/wasm-gradients.js';

const repeats = Number(process.argv[2] ?? 5);

registerWasmGradientKernels();
await tf.setBackend('wasm');

function time(label, fn) {
  const once = () => {
    const t0 = performance.now();
    tf.tidy(() => {
      const out = fn();
      (Array.isArray(out) ? out : [out]).forEach((t) => t.dataSync());
    });
    return performance.now() - t0;
  };
  once(); // warm-up (XNNPACK operator creation, heap growth)
  const ts = Array.from({ length: repeats }, once).sort((a, b) => a - b);
  const med = ts[Math.floor(ts.length / 2)];
  console.log(`${label.padEnd(58)} min ${ts[0].toFixed(1).padStart(7)} ms   median ${med.toFixed(1).padStart(7)} ms`);
}

const run = (name, inputs, attrs) => tf.engine().runKernel(name, inputs, attrs);

// --- Conv2D, x [8,56,56,64], 64 3×3 filters --------------------------------
const x = tf.randomUniform([8, 56, 56, 64], -1, 1, 'float32', 1);
const w = tf.randomUniform([3, 3, 64, 64], -1, 1, 'float32', 2);
for (const s of [1, 2]) {
  const dy = tf.randomUniform(tf.conv2d(x, w, s, 'same').shape, -1, 1, 'float32', 3);
  const common = { strides: s, pad: 'same', dataFormat: 'NHWC' };
  time(`conv2d forward s=${s}`, () => tf.conv2d(x, w, s, 'same'));
  time(`Conv2DBackpropFilter (ours) s=${s}`, () =>
    run('Conv2DBackpropFilter', { x, dy }, { ...common, filterShape: w.shape }),
  );
  time(`Conv2DBackpropInput (ours) s=${s}`, () =>
    run('Conv2DBackpropInput', { dy, filter: w }, { ...common, inputShape: x.shape }),
  );
  time(`grads conv2d x+filter (ours) s=${s}`, () => tf.grads((a, b) => tf.conv2d(a, b, s, 'same'))([x, w], dy));
  dy.dispose();
}

// --- Depthwise 3×3 on [8,56,56,144] ----------------------------------------
const xd = tf.randomUniform([8, 56, 56, 144], -1, 1, 'float32', 4);
for (const m of [1, 2]) {
  const wd = tf.randomUniform([3, 3, 144, m], -1, 1, 'float32', 5);
  for (const s of [1, 2]) {
    const dy = tf.randomUniform(tf.depthwiseConv2d(xd, wd, s, 'same').shape, -1, 1, 'float32', 6);
    const common = { strides: s, pad: 'same', dilations: 1 };
    time(`depthwise forward M=${m} s=${s}`, () => tf.depthwiseConv2d(xd, wd, s, 'same'));
    time(`DepthwiseBackpropFilter M=${m} s=${s}`, () =>
      run('DepthwiseConv2dNativeBackpropFilter', { x: xd, dy }, { ...common, filterShape: wd.shape }),
    );
    time(`DepthwiseBackpropInput M=${m} s=${s}`, () =>
      run('DepthwiseConv2dNativeBackpropInput', { dy, filter: wd }, { ...common, inputShape: xd.shape }),
    );
    dy.dispose();
  }
  wd.dispose();
}

// --- wasm's own Conv2DBackpropInput, for comparison --------------------------
unregisterWasmGradientKernels();
registerWasmGradientKernels({ replaceConv2DBackpropInput: false });
for (const s of [1, 2]) {
  const dy = tf.randomUniform(tf.conv2d(x, w, s, 'same').shape, -1, 1, 'float32', 3);
  const common = { strides: s, pad: 'same', dataFormat: 'NHWC' };
  time(`Conv2DBackpropInput (wasm native) s=${s}`, () =>
    run('Conv2DBackpropInput', { dy, filter: w }, { ...common, inputShape: x.shape }),
  );
  time(`grads conv2d x+filter (wasm native dx) s=${s}`, () =>
    tf.grads((a, b) => tf.conv2d(a, b, s, 'same'))([x, w], dy),
  );
  dy.dispose();
}
