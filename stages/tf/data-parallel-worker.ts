/**
 * A data-parallel replica (data-parallel.ts says how a step is shared out): its own tfjs backend
 * and copy of the model; per shard, it takes the trained weights and its samples from shared
 * memory, runs the step's forward pass, loss and gradients (train-step.ts, as the main thread
 * does) and writes the gradients back to shared memory.
 *
 * Its BatchNormalization layers normalise with the shard's own batch statistics; the moving
 * averages it updates are never read (the main thread's model keeps the ones that count).
 */
import { parentPort, workerData } from 'node:worker_threads';

import type * as tfCore from '@tensorflow/tfjs-core';

import type { ReplicaInit, ReplicaMessage, ShardRequest } from './data-parallel.js';

const init = workerData as ReplicaInit;
const port = parentPort;
const say = (m: ReplicaMessage): void => port?.postMessage(m);
const firstLine = (err: unknown): string =>
  (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? String(err);

async function start(): Promise<(request: ShardRequest) => ReplicaMessage> {
  const { selectBackend } = await import('./backend.js');
  const backend = await selectBackend(init.backend as 'wasm' | 'cpu', init.threads);
  const tf = backend.tf;
  const tfl = await import('@tensorflow/tfjs-layers');
  const { modelFromBlob } = await import('./checkpoint.js');
  const { accelerateLayers } = await import('./models.js');
  const { freezeBatchNorm, seedDropouts } = await import('./layer-patches.js');
  const { planStep, stepGradients } = await import('./train-step.js');

  const model = await modelFromBlob(tf, tfl, init.model);
  if (model.layers.length !== init.layerTrainable.length)
    throw new Error(`the model copy has ${model.layers.length} layers, the main one ${init.layerTrainable.length}`);
  model.layers.forEach((l, i) => {
    l.trainable = init.layerTrainable[i] as boolean;
  });
  accelerateLayers(model);
  const plan = planStep(model, init.trainable);
  const shapes = plan.params.map((p) => [...p.shape] as number[]);
  if (JSON.stringify(shapes) !== JSON.stringify(init.shapes))
    throw new Error('the model copy trains other weights than the main model (shapes differ)');
  freezeBatchNorm(plan.frozen); // for the worker's lifetime: it trains this one run only
  const offsets: number[] = [];
  let total = 0;
  for (const s of shapes) {
    offsets.push(total);
    total += s.reduce((a, b) => a * b, 1);
  }
  const weights = new Float32Array(init.weights);
  const xs = new Float32Array(init.x);
  const ys = new Int32Array(init.y);
  const grads = new Float32Array(init.grads);
  const [h, w, c] = plan.pixelShape;
  const variables = plan.params.map((p) => p.read() as tfCore.Variable);

  say({ type: 'ready', detail: backend.detail });
  return (request) => {
    // Copies, not views: the cpu backend would otherwise keep the shared buffer inside a tensor.
    // Variable.assign, not LayerVariable.write, which would apply a constraint the main
    // thread's optimizer does not (optimizer.ts assigns too).
    variables.forEach((v, j) => {
      const at = offsets[j] as number;
      const t = tf.tensor(weights.slice(at, at + v.size), v.shape);
      v.assign(t);
      t.dispose();
    });
    const n = request.n;
    const x = tf.tensor4d(xs.slice(0, n * h * w * c), [n, h, w, c]);
    const y = tf.tensor1d(ys.slice(0, n), 'int32');
    const seeds = seedDropouts(plan.dropouts, init.seed, request.epoch, request.batch, request.shard);
    let result;
    try {
      result = stepGradients(plan, x, y, init.labelSmoothing);
    } finally {
      seeds.restore();
    }
    try {
      const present = variables.map((v, j) => {
        const g = result.grads[v.name];
        if (g === undefined || g === null) return false;
        grads.set(g.dataSync() as Float32Array, offsets[j]);
        return true;
      });
      const loss = result.loss.dataSync()[0] as number;
      const correct = result.correct.dataSync()[0] as number;
      return { type: 'done', loss, correct, present };
    } finally {
      tf.dispose([result.loss, result.correct, ...Object.values(result.grads)]);
    }
  };
}

start().then(
  (step) => {
    port?.on('message', (request: ShardRequest) => {
      try {
        say(step(request));
      } catch (err) {
        say({ type: 'error', message: firstLine(err) });
      }
    });
  },
  (err: unknown) => say({ type: 'error', message: `could not start: ${firstLine(err)}` }),
);
