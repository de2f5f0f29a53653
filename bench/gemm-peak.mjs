// How fast a 1×1 convolution's GEMM runs on one core, four ways, on the same shapes in the same run:
// PyTorch's forward (oneDNN, whatever vector width the CPU has: bench/torch_conv1x1.py, Debian's
// /usr/bin/python3; skipped with a message where absent), XNNPACK's forward on the tfjs wasm backend
// (WebAssembly SIMD128: 4 lanes, no fused multiply-add), a forward pass written with podium's tiles
// (bench/kernels/conv1x1-forward.as.ts, bench-only; checked bit for bit against XNNPACK's output),
// podium's GEMM (the filter gradient's kernel, stages/tf/kernels/filter-grad.as.ts: the same
// arithmetic, 2·P·C·Co flops), and that kernel rebuilt with WebAssembly's relaxed SIMD multiply-add (f32x4.relaxed_madd: one fused
// instruction on CPUs with FMA, so it rounds once where podium's kernels round twice — a different
// result, which is why podium does not ship it; in Node 20 it also needs V8's
// --experimental-wasm-relaxed-simd, set here with v8.setFlagsFromString).
// It answers one question: how far the convolutions — 70% of a training step on wasm
// (bench/train.mjs's profile) — are from what the CPU can do, and so what bounds podium's ratio
// to PyTorch in bench/train.mjs. One thread each, so the figures are per core.
//   npm run build && node bench/gemm-peak.mjs [--size 224|128]
// Shapes: MobileNetV2's 1×1 layers at that image size, batch 32 (a few of each kind).
// See docs/performance.md.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';

import asc from 'assemblyscript/asc';

import { selectBackend } from '../dist/stages/tf/backend.js';

const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const SIZE = Number(arg('--size') ?? 224);
const s = SIZE / 224;
// [N, H, C, Co]: expansion, projection, and the widest layers.
const SHAPES = [
  [32, Math.round(56 * s), 24, 144],
  [32, Math.round(56 * s), 144, 24],
  [32, Math.round(28 * s), 192, 32],
  [32, Math.round(14 * s), 64, 384],
  [32, Math.round(14 * s), 576, 96],
  [32, Math.round(7 * s), 960, 320],
];
const key = (shape) => shape.join(',');
const flops = ([N, H, C, Co]) => 2 * N * H * H * C * Co;
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

/** PyTorch's GFLOP/s per shape, or undefined (with a message) when it is not installed. */
function torchFigures() {
  const script = new URL('./torch_conv1x1.py', import.meta.url).pathname;
  try {
    const out = execFileSync('/usr/bin/python3', [script, '--threads', '1', '--shapes', ...SHAPES.map(key)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return JSON.parse(out);
  } catch (e) {
    console.log(`PyTorch reference skipped (/usr/bin/python3 with python3-torch: ${String(e.message).split('\n')[0]})`);
    return undefined;
  }
}

/** AssemblyScript source → a compiled module (in a temporary directory, removed after). */
async function compile(name, text, flags = []) {
  const dir = mkdtempSync(join(os.tmpdir(), 'podium-gemm-'));
  try {
    const file = join(dir, 'kernel.ts');
    writeFileSync(file, text);
    const out = join(dir, 'kernel.wasm');
    const args = [file, '-O3', '--runtime', 'stub', '--noAssert', '--enable', 'simd', ...flags];
    const { error, stderr } = await asc.main([...args, '--importMemory', '--outFile', out]);
    if (error) throw new Error(`compiling ${name}: ${error.message}\n${stderr.toString()}`);
    return await WebAssembly.compile(readFileSync(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The filter gradient's kernel as it ships and with relaxed_madd; the bench-only forward kernel. */
async function podiumKernels() {
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    // newer Node: relaxed SIMD is on without the flag
  }
  const source = readFileSync(new URL('../stages/tf/kernels/filter-grad.as.ts', import.meta.url), 'utf8');
  const fused = source.replace(
    /f32x4\.add\((\w+), f32x4\.mul\((\w+), ([^()]*(?:\([^()]*\))?)\)\)/g,
    'f32x4.relaxed_madd($2, $3, $1)',
  );
  if (!fused.includes('relaxed_madd')) throw new Error('bench/gemm-peak.mjs: found no multiply-add to fuse');
  const forward = readFileSync(new URL('./kernels/conv1x1-forward.as.ts', import.meta.url), 'utf8');
  return {
    forward: await compile('the forward kernel', forward),
    gradient: await compile('the filter gradient', source),
    gradientFused: await compile('the filter gradient with relaxed_madd', fused, ['--enable', 'relaxed-simd']),
  };
}

/** A module's instance on a memory of its own, large enough for `floats`, and that memory's floats. */
async function instance(module, floats) {
  const memory = new WebAssembly.Memory({ initial: Math.ceil((4 * floats) / 65536) + 1 });
  const { exports } = await WebAssembly.instantiate(module, { env: { memory, abort() {} } });
  return { exports, f: new Float32Array(memory.buffer) };
}

/** ms of run(), median of 5 after one untimed call. */
function timed(run) {
  run();
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    run();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** Deterministic inputs of a layer: x [P, C] and w [C, Co]. */
function inputs([N, H, C, Co]) {
  const P = N * H * H;
  return {
    x: Float32Array.from({ length: P * C }, (_, i) => Math.sin(i * 0.37)),
    w: Float32Array.from({ length: C * Co }, (_, i) => Math.cos(i * 0.11)),
  };
}

/** GFLOP/s of the filter gradient's kernel over one layer's whole Xᵀ·dY on this thread. */
async function gradientFigure(module, [N, H, C, Co]) {
  const P = N * H * H;
  const { exports, f } = await instance(module, P * C + P * Co + C * Co + 64 * (C + Co + 16));
  for (let i = 0; i < P * (C + Co); i++) f[i] = Math.sin(i * 0.37);
  const [x, dy] = [0, 4 * P * C];
  const part = dy + 4 * P * Co;
  const scratch = part + 4 * C * Co;
  // As a 1×1 stride-1 convolution over P positions (H = OH = 1, W = OW = P), one unit for all of it.
  const ms = timed(() =>
    exports.filterGradUnit(x, dy, part, scratch, 1, P, C, 1, P, Co, 1, 1, 1, 1, 0, 0, 0, P, 0, C, 0, Co),
  );
  return flops([N, H, C, Co]) / ms / 1e6;
}

/** GFLOP/s of the bench-only forward kernel (packing W included), and its output. */
async function forwardFigure(module, shape, { x, w }) {
  const [N, H, C, Co] = shape;
  const P = N * H * H;
  const { exports, f } = await instance(module, P * C + C * Co + C * (Co + 8) + P * Co);
  f.set(x, 0);
  f.set(w, P * C);
  const wp = 4 * (P * C + C * Co);
  const y = wp + 4 * C * (Co + 8);
  const ms = timed(() => {
    exports.packW(4 * P * C, wp, C, Co);
    exports.gemmRows(0, wp, y, 0, P, C, Co);
  });
  return { gflops: flops(shape) / ms / 1e6, y: f.slice(y / 4, y / 4 + P * Co) };
}

/** GFLOP/s of XNNPACK's 1×1 Conv2D (tfjs wasm, one thread), fresh input each call, fixed weights; its output. */
function xnnpackFigure(tf, [N, H, C, Co], { x: xs, w: ws }) {
  const x0 = tf.tensor4d(xs, [N, H, H, C]);
  const w = tf.tensor4d(ws, [1, 1, C, Co]);
  const times = [];
  let y0;
  for (let i = 0; i < 6; i++) {
    const x = tf.add(x0, 0);
    x.dataSync();
    const t0 = performance.now();
    const y = tf.conv2d(x, w, 1, 'same'); // the wasm backend's kernels finish before returning
    const ms = performance.now() - t0;
    if (i > 0) times.push(ms);
    if (i === 5) y0 = y.dataSync();
    tf.dispose([x, y]);
  }
  tf.dispose([x0, w]);
  return { gflops: flops([N, H, C, Co]) / median(times) / 1e6, y: y0 };
}

const torch = torchFigures();
const kernels = await podiumKernels();
const { tf, detail } = await selectBackend('wasm', 1);
console.log(
  `${os.cpus()[0].model}; load ${os.loadavg()[0].toFixed(2)}; ${detail}; one thread each, GFLOP/s (median of 5)`,
);
const columns = ['PyTorch', 'XNNPACK', 'podium forward', 'podium dW', 'podium dW fused'];
console.log(
  "  columns: PyTorch forward (oneDNN) · XNNPACK forward (wasm) · the forward with podium's tiles · podium's\n" +
    '  filter-gradient GEMM (SIMD128, as shipped) · the same with relaxed_madd (fused: not shipped)',
);
console.log(`  ${'layer [N,H,C,Co]'.padEnd(20)}${columns.map((c) => c.padStart(17)).join('')}`);
const totals = Object.fromEntries(columns.map((c) => [c, 0]));
let identical = true;
for (const shape of SHAPES) {
  const data = inputs(shape);
  const xnn = xnnpackFigure(tf, shape, data);
  const fwd = await forwardFigure(kernels.forward, shape, data);
  const same = fwd.y.length === xnn.y.length && fwd.y.every((v, i) => Object.is(v, xnn.y[i]));
  identical &&= same;
  const row = {
    PyTorch: torch?.[key(shape)],
    XNNPACK: xnn.gflops,
    'podium forward': fwd.gflops,
    'podium dW': await gradientFigure(kernels.gradient, shape),
    'podium dW fused': await gradientFigure(kernels.gradientFused, shape),
  };
  // Totals as time: the seconds the shapes take together at each rate.
  for (const c of columns) totals[c] += row[c] === undefined ? Number.NaN : flops(shape) / row[c];
  console.log(
    `  ${`[${key(shape)}]`.padEnd(20)}${columns.map((c) => (row[c]?.toFixed(1) ?? '—').padStart(17)).join('')}` +
      (same ? '' : '   (forward ≠ XNNPACK)'),
  );
}
const all = SHAPES.reduce((a, shape) => a + flops(shape), 0);
const rate = Object.fromEntries(columns.map((c) => [c, all / totals[c]]));
const shown = (v) => (Number.isNaN(v) ? '—' : v.toFixed(1));
console.log(`  ${'all (time-weighted)'.padEnd(20)}${columns.map((c) => shown(rate[c]).padStart(17)).join('')}`);
console.log(
  `  ratio to XNNPACK: ${columns.map((c) => `${c} ${Number.isNaN(rate[c]) ? '—' : (rate[c] / rate.XNNPACK).toFixed(2)}×`).join(', ')}`,
);
console.log(
  `  the forward with podium's tiles ${identical ? 'equals' : 'DIFFERS FROM'} XNNPACK's output bit for bit on every shape; load ${os.loadavg()[0].toFixed(2)}`,
);
