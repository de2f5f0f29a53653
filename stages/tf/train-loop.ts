/**
 * The training loop: one readable recipe, top to bottom, in the spirit of timm's train.py.
 *
 *   for epoch in startEpoch … epochs−1:
 *     lr = lr₀ × lrFactor^(number of lrSteps ≤ epoch)            (MXNet fine-tune.py)
 *     for each batch:                                             (batchSource, next one prefetched)
 *       logits = model(x, training)                               (BN uses batch statistics;
 *                                                                  runForward, forward.ts)
 *       loss   = mean cross-entropy(softmax(logits), smoothed one-hot)
 *       grads  = d loss / d trainable weights                     (tf.variableGrads; train-step.ts)
 *         (with `workers` W > 1: each of W replicas on its shard of the batch, grads and loss
 *          combined as Σ_k (n_k/n)·g_k; BN statistics per shard: data-parallel.ts)
 *       SGD:  g += wd·w (kernels only); buf = momentum·buf + g; w −= lr·buf
 *       Adam: g += wd·w (kernels only); Adam moments; w −= lr·m̂/(√v̂ + ε)   (optimizer.ts)
 *     onEpochEnd(epoch, {loss, acc, lr, seconds, imagesPerSecond}, model, optimizer state)
 *
 * The factories it calls, each in its own module with its reasons: the forward executor
 * (forward.ts), the optimizer and its state (optimizer.ts), the patches it puts on layers for the
 * length of a run or a step — frozen BatchNormalization, per-step Dropout seeds (layer-patches.ts).
 *
 * Choices made here, and why:
 * - Loss from logits: models from models.ts end in Activation(softmax) named head_softmax; we
 *   train on its input (head_logits) with log-softmax, which is stable where log(softmax) is not.
 * - Layers that are not trained (`trainable: 'head'` or `{from}`) are frozen completely, their
 *   BatchNormalization included (layer-patches.ts says why).
 * - Determinism: nothing here reads the clock or Math.random; given the same weights, optimizer
 *   state and batches, the same backend computes the same bits. Resuming at startEpoch with the
 *   weights and optimizer state of the end of epoch startEpoch−1 therefore reproduces the
 *   uninterrupted run exactly.
 * - Memory: every step's tensors are disposed in the step; the optimizer's buffers are created
 *   at the start of `train` and disposed at its end, so tf.memory().numTensors is the same
 *   before and after, and constant from epoch to epoch. Peak memory matters as much (the wasm
 *   heap cannot exceed 4 GB): the forward pass frees each activation after its last reader
 *   (forward.ts) and the layers models.ts installs free gradients as the backward pass goes.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { currentBackendThreads, MAX_WORKERS, Replicas, shardSizes } from './data-parallel.js';
import { freezeBatchNorm, seedDropouts } from './layer-patches.js';
import { accelerateLayers } from './models.js';
import { Optimizer, type OptimizerConfig, type OptimizerState } from './optimizer.js';
import { crossEntropyFromLogProbs, planStep, stepGradients, type StepResult, type Trainable } from './train-step.js';

export type { Trainable } from './train-step.js';

/** One batch from the data pipeline. */
export interface Batch {
  /** NHWC float32 pixels in [0, 1]; at least n·H·W·C values (extra ones are ignored). */
  x: Float32Array;
  /** Class indices in [0, numClasses); at least n values. */
  y: Int32Array;
  /** Number of samples, 1 ≤ n ≤ batchSize (the last batch of an epoch may be smaller). */
  n: number;
}

export interface EpochMetrics {
  /** Mean training loss over the epoch's samples (with label smoothing applied). */
  loss: number;
  /** Training top-1 accuracy (on the augmented batches, in training mode). */
  acc: number;
  lr: number;
  /** Wall time of the epoch's batches, including waiting for data; excludes onEpochEnd. */
  seconds: number;
  imagesPerSecond: number;
}

export interface TrainContext {
  /** A copy of the optimizer's state now (after the epoch's last update). */
  /** Async: webgpu reads back only asynchronously. */
  getOptimizerState(): Promise<OptimizerState>;
}

export interface TrainOptions extends OptimizerConfig {
  /** Total number of epochs; epochs are numbered 0 … epochs−1. */
  epochs: number;
  batchSize: number;
  lr: number;
  /** Epochs (0-based) from which lr is multiplied by lrFactor once more, e.g. [20]. */
  lrSteps: number[];
  /** Default 0.1. */
  lrFactor?: number;
  /** ε of label smoothing: target = (1−ε)·one-hot + ε/numClasses. 0 disables it. */
  labelSmoothing: number;
  trainable: Trainable;
  seed: number;
  /** First epoch to run (0 for a fresh run); the model must hold the weights at its start. */
  startEpoch?: number;
  /** Samples per epoch; the epoch has ceil(numTrain / batchSize) batches. */
  numTrain: number;
  /**
   * Batch `batchIndex` of `epoch`; must be a pure function of its arguments for determinism.
   * May return a promise: the loop asks for batch b+1 before running step b, so an asynchronous
   * source (e.g. augmenting in a worker) overlaps with training. At most two batches are alive
   * at once, so a source may recycle buffers in a ring of two.
   */
  batchSource: (epoch: number, batchIndex: number) => Batch | Promise<Batch>;
  onEpochEnd?: (
    epoch: number,
    metrics: EpochMetrics,
    model: tfl.LayersModel,
    context: TrainContext,
  ) => void | Promise<void>;
  /**
   * After each step, for progress display. `running()` reads the epoch's mean loss and accuracy
   * so far back from the backend: call it sparingly (the display throttles), it syncs.
   */
  onBatchEnd?: (
    epoch: number,
    batchesDone: number,
    batchesPerEpoch: number,
    running: () => Promise<{ loss: number; acc: number }>,
  ) => void | Promise<void>;
  /** Restores the optimizer (from getOptimizerState at the end of epoch startEpoch−1). */
  optimizerState?: OptimizerState;
  /**
   * Data-parallel replicas (data-parallel.ts), the caller's thread included; default 1. Results
   * depend on it (batch normalization sees each shard's statistics), bit-identically for a fixed
   * value. Only on the CPU backends (wasm, cpu).
   */
  workers?: number;
  /** Backend threads of each worker replica; default the current backend's (wasm's pool, else 1). */
  replicaThreads?: number;
}

export interface TrainResult {
  /** Metrics of the epochs this call ran (startEpoch … epochs−1). */
  history: EpochMetrics[];
  /** Optimizer state after the last epoch (to resume later). */
  optimizerState: OptimizerState;
  /**
   * With workers > 1: the main thread's seconds on the replicas' exchange (shards in, gradients
   * combined, weights out) and waiting for them after its own shard, over the whole call.
   */
  dataParallel?: { exchange: number; waiting: number };
}

/** lr of an epoch under MXNet fine-tune.py's step schedule (lr × factor at each step epoch reached). */
export function learningRateAt(epoch: number, lr: number, lrSteps: readonly number[], lrFactor = 0.1): number {
  let out = lr;
  for (const s of lrSteps) if (epoch >= s) out *= lrFactor;
  return out;
}

/**
 * Mean softmax cross-entropy with label smoothing, from logits [n, K] and int32 labels [n]:
 * −mean_i Σ_k t_ik·log softmax(z_i)_k with t = (1−ε)·one-hot + ε/K.
 */
export function smoothedCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, labelSmoothing: number): tf.Scalar {
  return tf.tidy(() => crossEntropyFromLogProbs(tf.logSoftmax(logits), labels, labelSmoothing));
}

/** A copy of every weight of the model by name (for tests, checkpoints, resuming). */
export function snapshotWeights(model: tfl.LayersModel): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const w of model.weights) out.set(w.originalName, w.read().dataSync() as Float32Array);
  return out;
}

/** Writes weights by name; every weight of the model must be present with the right size. */
export function restoreWeights(model: tfl.LayersModel, values: ReadonlyMap<string, Float32Array>): void {
  for (const w of model.weights) {
    const v = values.get(w.originalName);
    if (v === undefined) throw new Error(`restoreWeights: no values for '${w.originalName}'`);
    const t = tf.tensor(v, w.shape as number[], 'float32');
    w.write(t); // shares t's data with the variable
    t.dispose();
  }
}

/** Trains `model` in place (see the file header for the recipe). */
export async function train(model: tfl.LayersModel, opts: TrainOptions): Promise<TrainResult> {
  checkOptions(opts);
  const startEpoch = opts.startEpoch ?? 0;
  const workers = opts.workers ?? 1;
  accelerateLayers(model); // no-op for models from loadModel
  const plan = planStep(model, opts.trainable);
  const [H, W, C] = plan.pixelShape;
  const numClasses = plan.graph.numClasses;
  const stepsPerEpoch = Math.ceil(opts.numTrain / opts.batchSize);

  const optimizer = new Optimizer(plan.params, opts);
  const unfreeze = freezeBatchNorm(plan.frozen);
  const history: EpochMetrics[] = [];
  let replicas: Replicas | undefined;
  try {
    if (opts.optimizerState !== undefined) optimizer.setState(opts.optimizerState);
    if (workers > 1)
      replicas = await Replicas.start(model, plan, {
        workers,
        threads: opts.replicaThreads ?? currentBackendThreads(),
        trainable: opts.trainable,
        labelSmoothing: opts.labelSmoothing,
        seed: opts.seed,
        batchSize: opts.batchSize,
      });
    for (let epoch = startEpoch; epoch < opts.epochs; epoch++) {
      const lr = learningRateAt(epoch, opts.lr, opts.lrSteps, opts.lrFactor ?? 0.1);
      const started = performance.now();
      // Running sums stay on the backend (no read-back per step on asynchronous backends).
      let lossSum: tf.Scalar = tf.scalar(0);
      let correctSum: tf.Scalar = tf.scalar(0);
      let images = 0;
      try {
        let next = prefetch(opts.batchSource, epoch, 0);
        for (let b = 0; b < stepsPerEpoch; b++) {
          const batch = checkBatch(await next, opts.batchSize, H * W * C, numClasses, epoch, b);
          // With replicas, shards 1… go to them first (copied into shared memory), so they work
          // while this thread computes shard 0.
          const sizes = replicas ? shardSizes(batch.n, workers) : [batch.n];
          const others = replicas?.dispatch(batch.x, batch.y, sizes, epoch, b);
          const n0 = sizes[0] as number;
          // Upload before asking for the next batch: the source may then reuse these arrays'
          // buffer once the step has run (at most two batches alive, see batchSource).
          const x = tf.tensor4d(batch.x.subarray(0, n0 * H * W * C), [n0, H, W, C]);
          const y = tf.tensor1d(batch.y.subarray(0, n0), 'int32');
          if (b + 1 < stepsPerEpoch) next = prefetch(opts.batchSource, epoch, b + 1);
          const seeds = seedDropouts(plan.dropouts, opts.seed, epoch, b);
          let step: StepResult;
          try {
            step = stepGradients(plan, x, y, opts.labelSmoothing);
          } finally {
            seeds.restore();
          }
          if (replicas && others) step = replicas.combine(step, await replicas.outcomes(others), sizes);
          const { loss, correct, grads } = step;
          optimizer.apply(grads, lr);
          replicas?.publishWeights();
          const [prevLoss, prevCorrect] = [lossSum, correctSum];
          lossSum = tf.tidy(() => tf.add(prevLoss, tf.mul(loss, batch.n)));
          correctSum = tf.tidy(() => tf.add(prevCorrect, correct));
          tf.dispose([prevLoss, prevCorrect, loss, correct, ...Object.values(grads)]);
          images += batch.n;
          const seen = images;
          if (opts.onBatchEnd) {
            const [l, c] = [lossSum, correctSum];
            // Read asynchronously (webgpu has no synchronous read-back under Node), before the sums move on.
            await opts.onBatchEnd(epoch, b + 1, stepsPerEpoch, async () => {
              const [lv, cv] = await Promise.all([l.data(), c.data()]);
              return { loss: lv[0]! / seen, acc: cv[0]! / seen };
            });
          }
        }
        const [loss, correct] = [(await lossSum.data())[0] ?? NaN, (await correctSum.data())[0] ?? NaN];
        const seconds = (performance.now() - started) / 1000;
        const metrics: EpochMetrics = {
          loss: loss / images,
          acc: correct / images,
          lr,
          seconds,
          imagesPerSecond: images / seconds,
        };
        history.push(metrics);
      } finally {
        tf.dispose([lossSum, correctSum]);
      }
      const metrics = history[history.length - 1] as EpochMetrics;
      if (opts.onEpochEnd !== undefined)
        await opts.onEpochEnd(epoch, metrics, model, { getOptimizerState: () => optimizer.getState() });
    }
    return {
      history,
      optimizerState: await optimizer.getState(),
      ...(replicas ? { dataParallel: { ...replicas.seconds } } : {}),
    };
  } finally {
    unfreeze();
    optimizer.dispose();
    await replicas?.close();
  }
}

// ---------------------------------------------------------------------------
// Pieces of the loop
// ---------------------------------------------------------------------------

function checkOptions(o: TrainOptions): void {
  const positiveInt = (name: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1) throw new Error(`train: ${name} must be a positive integer, got ${v}`);
  };
  positiveInt('epochs', o.epochs);
  positiveInt('batchSize', o.batchSize);
  positiveInt('numTrain', o.numTrain);
  const start = o.startEpoch ?? 0;
  if (!Number.isInteger(start) || start < 0 || start > o.epochs)
    throw new Error(`train: startEpoch must be in [0, epochs], got ${start}`);
  if (!(o.lr > 0)) throw new Error(`train: lr must be > 0, got ${o.lr}`);
  if (!(o.momentum >= 0 && o.momentum < 1)) throw new Error(`train: momentum must be in [0, 1), got ${o.momentum}`);
  if (!(o.weightDecay >= 0)) throw new Error(`train: weightDecay must be ≥ 0, got ${o.weightDecay}`);
  if (!(o.labelSmoothing >= 0 && o.labelSmoothing < 1))
    throw new Error(`train: labelSmoothing must be in [0, 1), got ${o.labelSmoothing}`);
  if (!Number.isInteger(o.seed)) throw new Error(`train: seed must be an integer, got ${o.seed}`);
  const workers = o.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS)
    throw new Error(`train: workers must be an integer in [1, ${MAX_WORKERS}], got ${workers}`);
  if (start > 0 && o.optimizerState === undefined && (o.momentum > 0 || o.optimizer === 'adam')) {
    throw new Error(
      'train: resuming (startEpoch > 0) needs optimizerState, or the run would not match an uninterrupted one',
    );
  }
}

function prefetch(source: TrainOptions['batchSource'], epoch: number, b: number): Promise<Batch> {
  const p = Promise.resolve().then(() => source(epoch, b));
  p.catch(() => undefined); // surfaced when awaited; avoid an unhandled rejection meanwhile
  return p;
}

function checkBatch(
  batch: Batch,
  batchSize: number,
  pixels: number,
  numClasses: number,
  epoch: number,
  b: number,
): Batch {
  const where = `batchSource(${epoch}, ${b})`;
  const { x, y, n } = batch;
  if (!Number.isInteger(n) || n < 1 || n > batchSize)
    throw new Error(`${where}: n must be in [1, ${batchSize}], got ${n}`);
  if (!(x instanceof Float32Array) || x.length < n * pixels)
    throw new Error(`${where}: x must be a Float32Array of ≥ ${n * pixels} values`);
  if (!(y instanceof Int32Array) || y.length < n) throw new Error(`${where}: y must be an Int32Array of ≥ ${n} labels`);
  for (let i = 0; i < n; i++) {
    const label = y[i] as number;
    if (label < 0 || label >= numClasses) throw new Error(`${where}: label ${label} outside [0, ${numClasses})`);
  }
  return batch;
}
