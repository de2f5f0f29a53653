/**
 * Data-parallel replicas inside one training run (train-loop.ts's `workers` option), on the CPU
 * backends (wasm, cpu).
 *
 * Why: a wasm training step has single-threaded stretches (tfjs's own element-wise kernels, JS
 * between kernels) during which XNNPACK's second thread idles. Two replicas of one thread each,
 * each on half the batch, keep both cores busy: on 2 cores, two 1-thread processes trained
 * MobileNetV2 at 128 px ~1.27× faster combined than one 2-thread process.
 *
 * How a step runs with W replicas:
 * - The batch is cut into W contiguous shards, sizes ⌈n/W⌉ first then ⌊n/W⌋ (shardSizes).
 * - Replica 0 is the main thread's model: the real one (checkpoints, evaluation, BN moving
 *   statistics). Replicas 1…W−1 are worker_threads (data-parallel-worker.ts), each with its own
 *   backend of the same name and its own copy of the model, loaded from the model's weights
 *   at the start of the run.
 * - Each replica computes its shard's mean loss and gradients (train-step.ts, the code the main
 *   thread runs too), with its own Dropout masks (the shard index is part of their seed).
 * - The main thread combines them in a fixed order, g = Σ_k (n_k/n)·g_k for k = 0…W−1 (the mean
 *   over the whole batch), applies the optimizer once, and publishes the new trained weights in
 *   shared memory, which every replica copies into its model before its next shard.
 * - Batch normalization uses each shard's own batch statistics, as PyTorch's
 *   DistributedDataParallel does without SyncBatchNorm; the moving averages are replica 0's (as
 *   DDP's broadcast_buffers makes rank 0's the ones that count). So results depend on W (BN
 *   sees smaller batches), and W is part of a finetune's key when it is not 1.
 *
 * Determinism: every replica computes its shard the same way each run (same backend, same
 * bits), and the sum runs in one order, so a fixed W gives byte-identical weights.
 *
 * Data moves through SharedArrayBuffers, no copies in messages: one for the trained weights
 * (main writes, replicas read), and per replica one for its shard's pixels and labels (main
 * writes) and one for its gradients (the replica writes). Messages only say "go" and "done".
 * Replicas are terminated when the run ends or fails; between steps they are unref'd, so an
 * abandoned run never keeps Node alive.
 */
import { Worker } from 'node:worker_threads';

import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { StageError } from '../contract.js';
import { compiledPath } from '../compiled-path.js';
import { modelToBlob } from './checkpoint.js';
import { MAX_WORKERS, workersBackendProblem } from './data-parallel-param.js';
import type { StepPlan, StepResult, Trainable } from './train-step.js';

export { MAX_WORKERS } from './data-parallel-param.js';

/** Sizes of the W contiguous shards of a batch of n: they differ by at most one, larger first. */
export function shardSizes(n: number, workers: number): number[] {
  const base = Math.floor(n / workers);
  const extra = n % workers;
  return Array.from({ length: workers }, (_, k) => base + (k < extra ? 1 : 0));
}

/** What a replica worker gets at start (workerData). */
export interface ReplicaInit {
  index: number;
  workers: number;
  backend: string;
  threads: number;
  /** The model as a checkpoint blob (checkpoint.ts): topology and every weight. */
  model: Uint8Array;
  /** layer.trainable of every layer of the main model, in model.layers order. */
  layerTrainable: boolean[];
  trainable: Trainable;
  labelSmoothing: number;
  seed: number;
  /** Shapes of the trained weights, in StepPlan.params order: the replica checks its own against them. */
  shapes: number[][];
  weights: SharedArrayBuffer;
  x: SharedArrayBuffer;
  y: SharedArrayBuffer;
  grads: SharedArrayBuffer;
}

/** Main → replica: compute shard `shard` (n samples, already in the x/y buffers) of a step. */
export interface ShardRequest {
  epoch: number;
  batch: number;
  shard: number;
  n: number;
}

/** Replica → main. */
export type ReplicaMessage =
  | { type: 'ready'; detail: string }
  | { type: 'done'; loss: number; correct: number; present: boolean[] }
  | { type: 'error'; message: string };

interface ShardOutcome {
  loss: number;
  correct: number;
  present: boolean[];
}

interface Replica {
  index: number;
  worker: Worker;
  x: Float32Array;
  y: Int32Array;
  grads: Float32Array;
  pending?: { resolve(m: ReplicaMessage): void; reject(e: Error): void };
  failure?: Error;
}

export interface ReplicaOptions {
  /** Replicas in all, the main thread's included (2…MAX_WORKERS). */
  workers: number;
  /** Backend threads of each worker replica. */
  threads: number;
  trainable: Trainable;
  labelSmoothing: number;
  seed: number;
  /** The largest batch a step will have. */
  batchSize: number;
}

/** Offsets of each trained weight in the flat buffers, and the total length. */
function layoutOf(shapes: readonly number[][]): { offsets: number[]; sizes: number[]; total: number } {
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const offsets: number[] = [];
  let total = 0;
  for (const size of sizes) {
    offsets.push(total);
    total += size;
  }
  return { offsets, sizes, total };
}

const firstLine = (err: unknown): string =>
  (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? String(err);

/** The worker replicas 1…W−1 of a run (replica 0 is the caller's model). */
export class Replicas {
  private closing = false;
  /**
   * Seconds the main thread spent on the exchange (copying shards in, combining gradients,
   * publishing weights) and waiting for replicas after its own shard, over the run.
   */
  readonly seconds = { exchange: 0, waiting: 0 };

  private constructor(
    private readonly replicas: Replica[],
    private readonly plan: StepPlan,
    private readonly weights: Float32Array,
    private readonly layout: ReturnType<typeof layoutOf>,
    private readonly workers: number,
  ) {}

  /** Starts W−1 replica workers with copies of `model` and waits until each is ready. */
  static async start(model: tfl.LayersModel, plan: StepPlan, o: ReplicaOptions): Promise<Replicas> {
    const backend = tf.getBackend();
    const problem = workersBackendProblem(o.workers, backend);
    if (problem) throw new StageError(problem);
    if (!Number.isInteger(o.workers) || o.workers < 2 || o.workers > MAX_WORKERS)
      throw new Error(`train: workers must be an integer in [1, ${MAX_WORKERS}], got ${o.workers}`);
    const shapes = plan.params.map((p) => [...p.shape] as number[]);
    const layout = layoutOf(shapes);
    const weights = new Float32Array(new SharedArrayBuffer(layout.total * 4));
    const [h, w, c] = plan.pixelShape;
    const maxShard = Math.ceil(o.batchSize / o.workers);
    const blob = await modelToBlob(tf, model);
    const script = compiledPath(import.meta.url, 'data-parallel-worker.js');
    const replicas: Replica[] = [];
    for (let index = 1; index < o.workers; index++) {
      const init: ReplicaInit = {
        index,
        workers: o.workers,
        backend,
        threads: Math.max(1, Math.floor(o.threads)),
        model: blob,
        layerTrainable: model.layers.map((l) => l.trainable),
        trainable: o.trainable,
        labelSmoothing: o.labelSmoothing,
        seed: o.seed,
        shapes,
        weights: weights.buffer as SharedArrayBuffer,
        x: new SharedArrayBuffer(maxShard * h * w * c * 4),
        y: new SharedArrayBuffer(maxShard * 4),
        grads: new SharedArrayBuffer(layout.total * 4),
      };
      const worker = new Worker(script, { workerData: init });
      const replica: Replica = {
        index,
        worker,
        x: new Float32Array(init.x),
        y: new Int32Array(init.y),
        grads: new Float32Array(init.grads),
      };
      replicas.push(replica);
    }
    const set = new Replicas(replicas, plan, weights, layout, o.workers);
    for (const r of replicas) set.listen(r);
    try {
      await Promise.all(replicas.map((r) => set.next(r)));
    } catch (err) {
      await set.close();
      throw err;
    }
    set.publishWeights();
    return set;
  }

  private listen(r: Replica): void {
    const fail = (e: Error): void => {
      r.failure ??= e;
      const p = r.pending;
      r.pending = undefined;
      p?.reject(r.failure);
    };
    const name = `data-parallel replica ${r.index} of ${this.workers} (a worker thread)`;
    r.worker.on('message', (m: ReplicaMessage) => {
      if (m.type === 'error') return fail(new StageError(`${name} failed: ${m.message}`));
      const p = r.pending;
      r.pending = undefined;
      p?.resolve(m);
    });
    r.worker.on('error', (e) => fail(new StageError(`${name} failed: ${firstLine(e)}`)));
    r.worker.on('exit', (code) => {
      if (!this.closing) fail(new StageError(`${name} exited unexpectedly (code ${code})`));
    });
  }

  /** The replica's next message; the worker keeps Node alive only while one is awaited. */
  private next(r: Replica, request?: ShardRequest): Promise<ReplicaMessage> {
    if (r.failure) return Promise.reject(r.failure);
    const done = new Promise<ReplicaMessage>((resolve, reject) => {
      r.pending = { resolve, reject };
    }).finally(() => r.worker.unref());
    r.worker.ref();
    if (request) r.worker.postMessage(request);
    return done;
  }

  /**
   * Copies shards 1…W−1 of the batch into the replicas' buffers and starts them; resolves to
   * their outcomes (in shard order) once all are done. Shards of size 0 are skipped.
   */
  dispatch(
    x: Float32Array,
    y: Int32Array,
    sizes: readonly number[],
    epoch: number,
    batch: number,
  ): Promise<Array<ShardOutcome | undefined>> {
    const t0 = performance.now();
    const pixels = this.plan.pixelShape[0] * this.plan.pixelShape[1] * this.plan.pixelShape[2];
    let start = sizes[0] ?? 0;
    const runs = this.replicas.map((r, i) => {
      const n = sizes[i + 1] ?? 0;
      const from = start;
      start += n;
      if (n === 0) return Promise.resolve(undefined);
      r.x.set(x.subarray(from * pixels, (from + n) * pixels));
      r.y.set(y.subarray(from, from + n));
      return this.next(r, { epoch, batch, shard: i + 1, n }).then((m): ShardOutcome => {
        if (m.type !== 'done') throw new Error(`internal: replica ${r.index} answered '${m.type}' to a step`);
        return m;
      });
    });
    const all = Promise.all(runs);
    all.catch(() => undefined); // surfaced when the caller awaits it; not unhandled meanwhile
    this.seconds.exchange += (performance.now() - t0) / 1000;
    return all;
  }

  /**
   * The whole batch's step from replica 0's result (`own`, disposed here) and the others':
   * gradients g = Σ_k (n_k/n)·g_k and loss likewise, accuracy counts summed, all in shard order.
   */
  combine(own: StepResult, others: ReadonlyArray<ShardOutcome | undefined>, sizes: readonly number[]): StepResult {
    const t0 = performance.now();
    const n = sizes.reduce((a, b) => a + b, 0);
    const share = (k: number): number => (sizes[k] ?? 0) / n;
    try {
      return tf.tidy(() => {
        let loss = tf.mul(own.loss, share(0));
        let correct: tf.Tensor = tf.clone(own.correct);
        others.forEach((o, i) => {
          if (!o) return;
          loss = tf.add(loss, tf.mul(tf.scalar(o.loss), share(i + 1)));
          correct = tf.add(correct, tf.scalar(o.correct));
        });
        // In JS over typed arrays, not with tfjs ops: ~3 kernel calls per weight cost ~40 ms a
        // step for MobileNetV2. Storing into a Float32Array rounds each product and each sum to
        // float32, as float32 kernels do; the order is fixed (k = 0, 1, …), so the bits are too.
        const grads: tf.NamedTensorMap = {};
        this.plan.params.forEach((p, j) => {
          const name = (p.read() as tf.Variable).name;
          const g0 = own.grads[name];
          if (!g0 && !others.some((o) => o?.present[j])) return;
          const size = this.layout.sizes[j] as number;
          const at = this.layout.offsets[j] as number;
          const sum = new Float32Array(size);
          if (g0) {
            const a = g0.dataSync() as Float32Array;
            const s0 = share(0);
            for (let i = 0; i < size; i++) sum[i] = (a[i] as number) * s0;
          }
          others.forEach((o, k) => {
            if (!o?.present[j]) return;
            const b = (this.replicas[k] as Replica).grads.subarray(at, at + size);
            const sk = share(k + 1);
            for (let i = 0; i < size; i++) sum[i] = (sum[i] as number) + Math.fround((b[i] as number) * sk);
          });
          grads[name] = tf.tensor(sum, p.shape as number[], 'float32');
        });
        return { loss: tf.keep(loss) as tf.Scalar, correct: tf.keep(correct) as tf.Scalar, grads };
      });
    } finally {
      tf.dispose([own.loss, own.correct, ...Object.values(own.grads)]);
      this.seconds.exchange += (performance.now() - t0) / 1000;
    }
  }

  /** Writes replica 0's trained weights where the replicas read them before their next shard. */
  publishWeights(): void {
    const t0 = performance.now();
    this.plan.params.forEach((p, j) => {
      this.weights.set(p.read().dataSync() as Float32Array, this.layout.offsets[j]);
    });
    this.seconds.exchange += (performance.now() - t0) / 1000;
  }

  /** The replicas' outcomes of a step started by dispatch, counting the wait. */
  async outcomes<T>(started: Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await started;
    } finally {
      this.seconds.waiting += (performance.now() - t0) / 1000;
    }
  }

  /** Terminates every replica (idempotent). */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.replicas.map((r) => r.worker.terminate()));
  }
}

/** Backend threads of the current backend (wasm: its XNNPACK pool; otherwise 1). */
export function currentBackendThreads(): number {
  const backend = tf.backend() as unknown as { wasm?: { tfjs?: { getThreadsCount?: () => number } } };
  return backend.wasm?.tfjs?.getThreadsCount?.() ?? 1;
}
