/**
 * The training loop: one readable recipe, top to bottom, in the spirit of timm's train.py.
 *
 *   for epoch in startEpoch … epochs−1:
 *     lr = lr₀ × lrFactor^(number of lrSteps ≤ epoch)            (MXNet fine-tune.py)
 *     for each batch:                                             (batchSource, next one prefetched)
 *       logits = model(x, training)                               (BN uses batch statistics)
 *                                                                 (runForward, below)
 *       loss   = mean cross-entropy(softmax(logits), smoothed one-hot)
 *       grads  = d loss / d trainable weights                     (tf.variableGrads)
 *       SGD:  g += wd·w (kernels only); buf = momentum·buf + g; w −= lr·buf
 *       Adam: g += wd·w (kernels only); Adam moments; w −= lr·m̂/(√v̂ + ε)
 *     onEpochEnd(epoch, {loss, acc, lr, seconds, imagesPerSecond}, model, optimizer state)
 *
 * Choices, and why:
 * - The update is hand-written with tfjs ops instead of tf.train optimizers, so its state is
 *   plain named buffers we can hand out and restore exactly (resume must be bit-identical), and
 *   weight decay can skip the parameters it should skip.
 * - Momentum follows PyTorch / tf.train.momentum: the buffer accumulates raw gradients and lr
 *   multiplies the step, so an lr drop takes effect at once. (MXNet keeps lr inside the
 *   momentum buffer; the two agree except for a few steps after each lr change.) The PyTorch
 *   reference this project measures itself against uses this form.
 * - Weight decay is L2 added to the gradient of conv / depthwise / dense kernels (weights named
 *   …kernel), not of biases or BatchNorm γ/β: decaying γ/β pulls normalised activations towards
 *   zero and biases gain nothing from it (the usual "no_weight_decay" list of timm). PyTorch's
 *   plain `SGD(weight_decay=…)` decays everything; `weightDecayOn: 'all'` reproduces that for
 *   parity experiments.
 * - Loss from logits: models from models.ts end in Activation(softmax) named head_softmax; we
 *   train on its input (head_logits) with log-softmax, which is stable where log(softmax) is not.
 * - Layers that are not trained (`trainable: 'head'` or `{from}`) are frozen completely: their
 *   BatchNormalization runs in inference mode (moving statistics neither used from the batch nor
 *   updated), as Keras ≥ 2.1.3 does for non-trainable BN. Otherwise a "frozen" backbone would
 *   still drift.
 * - Dropout: tfjs's Dropout layer draws from Math.random unless it has a seed, and with a fixed
 *   seed it draws the same mask every step. We set each Dropout layer's seed per step from
 *   (seed, epoch, batch, layer), so masks differ per step yet a rerun — or a resumed run —
 *   draws exactly the same ones. The layers' own seeds are restored after every step, so saved
 *   topologies do not change.
 * - Determinism: nothing here reads the clock or Math.random; given the same weights, optimizer
 *   state and batches, the same backend computes the same bits. Resuming at startEpoch with the
 *   weights and optimizer state of the end of epoch startEpoch−1 therefore reproduces the
 *   uninterrupted run exactly.
 * - Memory: every step's tensors are disposed in the step; the optimizer's buffers are created
 *   at the start of `train` and disposed at its end, so tf.memory().numTensors is the same
 *   before and after, and constant from epoch to epoch. Peak memory matters as much: the wasm
 *   heap cannot exceed 4 GB. The forward pass here (runForward) frees each activation after its
 *   last reader instead of keeping them all as tfjs-layers does in training mode, and the layers
 *   models.ts installs free gradients as the backward pass goes. MobileNetV2 at batch 32 then
 *   needs a ~1.0 GB heap at 128 px and ~2.6–3.0 GB at 224 px (3.7 GB, and out of memory at
 *   224 px, with tfjs-layers' own forward pass and layers).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import { accelerateLayers, HEAD_PREFIX } from './models.js';
import { hasWasmTrainOp, SGD_MOMENTUM } from './wasm-train-ops.js';

type Layer = tfl.layers.Layer;
type LayerVariable = tfl.LayerVariable;

export type Trainable = 'all' | 'head' | { from: string };

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

export interface OptimizerState {
  optimizer: 'sgd' | 'adam';
  /** Updates applied so far (Adam's bias correction depends on it). */
  step: number;
  /**
   * Optimizer buffers by `${weightName}/${slot}`: slot 'momentum' for SGD (absent when
   * momentum is 0), 'm' and 'v' for Adam. Weight names are the model's (e.g. 'Conv1/kernel').
   */
  slots: Record<string, { shape: number[]; values: Float32Array }>;
}

export interface TrainContext {
  /** A copy of the optimizer's state now (after the epoch's last update). Async: webgpu reads back only asynchronously. */
  getOptimizerState(): Promise<OptimizerState>;
}

export interface TrainOptions {
  /** Total number of epochs; epochs are numbered 0 … epochs−1. */
  epochs: number;
  batchSize: number;
  lr: number;
  /** Epochs (0-based) from which lr is multiplied by lrFactor once more, e.g. [20]. */
  lrSteps: number[];
  /** Default 0.1. */
  lrFactor?: number;
  momentum: number;
  weightDecay: number;
  /** Which parameters weight decay applies to; default 'kernels' (see the file header). */
  weightDecayOn?: 'kernels' | 'all';
  optimizer: 'sgd' | 'adam';
  /** Adam's β₁, β₂, ε; defaults 0.9, 0.999, 1e-8 (PyTorch). */
  adam?: { beta1?: number; beta2?: number; epsilon?: number };
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
  onEpochEnd?: (epoch: number, metrics: EpochMetrics, model: tfl.LayersModel, context: TrainContext) => void | Promise<void>;
  /** Restores the optimizer (from getOptimizerState at the end of epoch startEpoch−1). */
  optimizerState?: OptimizerState;
}

export interface TrainResult {
  /** Metrics of the epochs this call ran (startEpoch … epochs−1). */
  history: EpochMetrics[];
  /** Optimizer state after the last epoch (to resume later). */
  optimizerState: OptimizerState;
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

function crossEntropyFromLogProbs(logProbs: tf.Tensor2D, labels: tf.Tensor1D, eps: number): tf.Scalar {
  const k = logProbs.shape[1];
  const oneHot = tf.oneHot(labels, k);
  const target = eps > 0 ? tf.add(tf.mul(oneHot, 1 - eps), eps / k) : oneHot;
  return tf.neg(tf.mean(tf.sum(tf.mul(target, logProbs), 1)));
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
  accelerateLayers(model); // no-op for models from loadModel
  const { trained, frozen } = splitLayers(model, opts.trainable);
  const params = trained.flatMap((l) => l.trainableWeights);
  if (params.length === 0) throw new Error('train: nothing to train (the selected layers have no trainable weights)');
  const graph = trainingGraph(model);
  const [, H, W, C] = inputShape(model);
  const numClasses = graph.numClasses;
  const stepsPerEpoch = Math.ceil(opts.numTrain / opts.batchSize);
  const dropouts = model.layers.filter((l) => l.getClassName().endsWith('Dropout'));

  const optimizer = new Optimizer(params, opts);
  const unfreeze = freezeBatchNorm(frozen);
  const history: EpochMetrics[] = [];
  try {
    if (opts.optimizerState !== undefined) optimizer.setState(opts.optimizerState);
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
          // Upload before asking for the next batch: the source may then reuse these arrays'
          // buffer once the step has run (at most two batches alive, see batchSource).
          const x = tf.tensor4d(batch.x.subarray(0, batch.n * H * W * C), [batch.n, H, W, C]);
          const y = tf.tensor1d(batch.y.subarray(0, batch.n), 'int32');
          if (b + 1 < stepsPerEpoch) next = prefetch(opts.batchSource, epoch, b + 1);
          const seeds = seedDropouts(dropouts, opts.seed, epoch, b);
          let loss: tf.Scalar;
          let correct: tf.Scalar | undefined;
          let grads: tf.NamedTensorMap;
          try {
            ({ value: loss, grads } = tf.variableGrads(() => {
              const out = runForward(graph, x, true) as tf.Tensor2D;
              correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(out, 1), y), 'float32')));
              const logProbs = graph.outputIsProbabilities ? tf.log(tf.clipByValue(out, 1e-7, 1)) : tf.logSoftmax(out);
              return crossEntropyFromLogProbs(logProbs, y, opts.labelSmoothing);
            }, params.map((p) => p.read() as tf.Variable)));
          } finally {
            seeds.restore();
            tf.dispose([x, y]);
          }
          optimizer.apply(grads, lr);
          const [prevLoss, prevCorrect] = [lossSum, correctSum];
          lossSum = tf.tidy(() => tf.add(prevLoss, tf.mul(loss, batch.n)));
          correctSum = tf.tidy(() => tf.add(prevCorrect, correct ?? 0));
          tf.dispose([prevLoss, prevCorrect, loss, ...(correct === undefined ? [] : [correct]), ...Object.values(grads)]);
          images += batch.n;
        }
        const [loss, correct] = [(await lossSum.data())[0] ?? NaN, (await correctSum.data())[0] ?? NaN];
        const seconds = (performance.now() - started) / 1000;
        const metrics: EpochMetrics = { loss: loss / images, acc: correct / images, lr, seconds, imagesPerSecond: images / seconds };
        history.push(metrics);
      } finally {
        tf.dispose([lossSum, correctSum]);
      }
      const metrics = history[history.length - 1] as EpochMetrics;
      if (opts.onEpochEnd !== undefined) await opts.onEpochEnd(epoch, metrics, model, { getOptimizerState: () => optimizer.getState() });
    }
    return { history, optimizerState: await optimizer.getState() };
  } finally {
    unfreeze();
    optimizer.dispose();
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
  if (!Number.isInteger(start) || start < 0 || start > o.epochs) throw new Error(`train: startEpoch must be in [0, epochs], got ${start}`);
  if (!(o.lr > 0)) throw new Error(`train: lr must be > 0, got ${o.lr}`);
  if (!(o.momentum >= 0 && o.momentum < 1)) throw new Error(`train: momentum must be in [0, 1), got ${o.momentum}`);
  if (!(o.weightDecay >= 0)) throw new Error(`train: weightDecay must be ≥ 0, got ${o.weightDecay}`);
  if (!(o.labelSmoothing >= 0 && o.labelSmoothing < 1)) throw new Error(`train: labelSmoothing must be in [0, 1), got ${o.labelSmoothing}`);
  if (!Number.isInteger(o.seed)) throw new Error(`train: seed must be an integer, got ${o.seed}`);
  if (start > 0 && o.optimizerState === undefined && (o.momentum > 0 || o.optimizer === 'adam')) {
    throw new Error('train: resuming (startEpoch > 0) needs optimizerState, or the run would not match an uninterrupted one');
  }
}

function inputShape(model: tfl.LayersModel): [number, number, number, number] {
  const shape = model.inputs[0]?.shape;
  if (model.inputs.length !== 1 || shape === undefined || shape.length !== 4) throw new Error('train: the model needs one image input [N, H, W, C]');
  const [, h, w, c] = shape;
  if (typeof h !== 'number' || typeof w !== 'number' || typeof c !== 'number') throw new Error('train: the model input needs a fixed size');
  return [-1, h, w, c];
}

/** Which layers train, which are frozen (model.layers is in topological order). */
function splitLayers(model: tfl.LayersModel, trainable: Trainable): { trained: Layer[]; frozen: Layer[] } {
  const layers = model.layers;
  let trained: Layer[];
  if (trainable === 'all') {
    trained = layers;
  } else if (trainable === 'head') {
    trained = layers.filter((l) => l.name.startsWith(HEAD_PREFIX));
    if (trained.length === 0) throw new Error(`train: trainable 'head' but the model has no '${HEAD_PREFIX}*' layers; use { from: <layer> }`);
  } else {
    const at = layers.findIndex((l) => l.name === trainable.from);
    if (at < 0) throw new Error(`train: trainable.from: no layer named '${trainable.from}'`);
    trained = layers.slice(at);
  }
  const set = new Set(trained);
  return { trained, frozen: layers.filter((l) => !set.has(l)) };
}

interface TrainingGraph {
  /** The layer calls from the input to `target`, in a topological order. */
  steps: Array<{ layer: Layer; inputs: tfl.SymbolicTensor[]; outputs: tfl.SymbolicTensor[] }>;
  input: tfl.SymbolicTensor;
  /** The logits (or, see below, the probabilities). */
  target: tfl.SymbolicTensor;
  /** How many step inputs read each symbolic tensor (by id). */
  uses: Map<number, number>;
  /** True when no logits layer could be found and the loss must use log(probabilities). */
  outputIsProbabilities: boolean;
  numClasses: number;
}

/**
 * If the model ends in Activation(softmax) (models.ts's head_softmax), train on its input (the
 * logits). A Dense with a built-in softmax (e.g. a Keras model loaded as is) leaves only the
 * probabilities; the loss then takes their clipped log.
 */
function trainingGraph(model: tfl.LayersModel): TrainingGraph {
  const out = model.outputs[0];
  const input = model.inputs[0];
  if (model.outputs.length !== 1 || out === undefined || out.shape.length !== 2) throw new Error('train: the model needs one output [N, numClasses]');
  if (input === undefined) throw new Error('train: the model has no input');
  const numClasses = out.shape[1];
  if (typeof numClasses !== 'number') throw new Error('train: the model output needs a fixed number of classes');
  const last = out.sourceLayer;
  const activation = (last.getConfig() as { activation?: unknown }).activation;
  let target = out;
  let outputIsProbabilities = activation === 'softmax';
  if (last.getClassName() === 'Activation' && activation === 'softmax') {
    const logits = last.input;
    if (Array.isArray(logits)) throw new Error('train: the softmax layer has several inputs');
    target = logits;
    outputIsProbabilities = false;
  }
  return { ...planForward(input, target), input, target, outputIsProbabilities, numClasses };
}

interface NodeLike {
  inputTensors: tfl.SymbolicTensor[];
  outputTensors: tfl.SymbolicTensor[];
}

/**
 * Orders the layer calls between `input` and `target` (depth-first from the target, so the
 * order is deterministic) and counts how often each tensor is read.
 */
function planForward(input: tfl.SymbolicTensor, target: tfl.SymbolicTensor): Pick<TrainingGraph, 'steps' | 'uses'> {
  const steps: TrainingGraph['steps'] = [];
  const uses = new Map<number, number>();
  const done = new Set<NodeLike>();
  const visit = (t: tfl.SymbolicTensor): void => {
    if (t.id === input.id) return;
    const layer = t.sourceLayer;
    const node = (layer as unknown as { inboundNodes: NodeLike[] }).inboundNodes[t.nodeIndex];
    if (node === undefined) throw new Error(`train: tensor '${t.name}' has no producing node`);
    if (done.has(node)) return;
    done.add(node);
    if (node.inputTensors.length === 0 || layer.getClassName() === 'InputLayer') {
      throw new Error(`train: the model has an input other than '${input.name}' ('${t.name}')`);
    }
    for (const i of node.inputTensors) visit(i);
    for (const i of node.inputTensors) uses.set(i.id, (uses.get(i.id) ?? 0) + 1);
    steps.push({ layer, inputs: node.inputTensors, outputs: node.outputTensors });
  };
  visit(target);
  return { steps, uses };
}

/**
 * The forward pass, disposing every intermediate tensor after its last reader. tfjs-layers'
 * executor keeps them all in training mode (to be safe for gradients), but the engine keeps its
 * own reference to whatever a backward pass needs (saved tensors), so freeing ours is safe — and
 * it lowers the forward pass's peak from "every activation" to "the saved ones".
 */
function runForward(graph: TrainingGraph, x: tf.Tensor, training: boolean): tf.Tensor {
  const values = new Map<number, tf.Tensor>([[graph.input.id, x]]);
  const remaining = new Map(graph.uses);
  // A layer may return its input object itself (linear Activation, Dropout at rate 0): only
  // dispose a tensor object no live entry still holds.
  const release = (v: tf.Tensor): void => {
    for (const live of values.values()) if (live === v) return;
    v.dispose();
  };
  for (const step of graph.steps) {
    const inputs = step.inputs.map((t) => {
      const v = values.get(t.id);
      if (v === undefined) throw new Error(`internal: '${t.name}' was not computed`);
      return v;
    });
    const result = step.layer.apply(inputs, { training }) as tf.Tensor | tf.Tensor[];
    const outs = Array.isArray(result) ? result : [result];
    const unused: tf.Tensor[] = [];
    step.outputs.forEach((t, i) => {
      const v = outs[i];
      if (v === undefined) throw new Error(`internal: layer '${step.layer.name}' returned too few outputs`);
      if (t.id !== graph.target.id && (remaining.get(t.id) ?? 0) === 0) unused.push(v);
      else values.set(t.id, v);
    });
    for (const t of step.inputs) {
      const left = (remaining.get(t.id) ?? 0) - 1;
      remaining.set(t.id, left);
      const v = values.get(t.id);
      if (left === 0 && t.id !== graph.input.id && v !== undefined) {
        values.delete(t.id);
        unused.push(v);
      }
    }
    for (const v of unused) if (v !== x) release(v);
  }
  const y = values.get(graph.target.id);
  if (y === undefined) throw new Error('internal: the forward pass did not reach its target');
  return y;
}

interface CallableLayer {
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[];
}

/** Runs the given layers' BatchNormalization in inference mode until the returned undo is called. */
function freezeBatchNorm(frozen: readonly Layer[]): () => void {
  const undo: Array<() => void> = [];
  for (const layer of frozen) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const target = layer as unknown as CallableLayer;
    // The layer may already have an own call (models.ts's accelerateLayers); put back exactly
    // what was there.
    const hadOwn = Object.prototype.hasOwnProperty.call(layer, 'call');
    const original = target.call;
    target.call = (inputs, kwargs) => original.call(layer, inputs, { ...kwargs, training: false });
    undo.push(() => {
      if (hadOwn) target.call = original;
      else delete (layer as unknown as Partial<CallableLayer>).call;
    });
  }
  return () => undo.forEach((f) => f());
}

/** A 32-bit hash of small integers (murmur3 finaliser steps), for per-step dropout seeds. */
function mix(...values: number[]): number {
  let h = 0x9e3779b9;
  for (const v of values) {
    h = Math.imul(h ^ (v | 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

function seedDropouts(layers: readonly Layer[], seed: number, epoch: number, batch: number): { restore(): void } {
  const targets = layers as unknown as Array<{ seed?: number }>;
  const saved = targets.map((l) => l.seed);
  targets.forEach((l, i) => {
    l.seed = mix(seed, epoch, batch, i);
  });
  return {
    restore: () =>
      targets.forEach((l, i) => {
        l.seed = saved[i];
      }),
  };
}

function prefetch(source: TrainOptions['batchSource'], epoch: number, b: number): Promise<Batch> {
  const p = Promise.resolve().then(() => source(epoch, b));
  p.catch(() => undefined); // surfaced when awaited; avoid an unhandled rejection meanwhile
  return p;
}

function checkBatch(batch: Batch, batchSize: number, pixels: number, numClasses: number, epoch: number, b: number): Batch {
  const where = `batchSource(${epoch}, ${b})`;
  const { x, y, n } = batch;
  if (!Number.isInteger(n) || n < 1 || n > batchSize) throw new Error(`${where}: n must be in [1, ${batchSize}], got ${n}`);
  if (!(x instanceof Float32Array) || x.length < n * pixels) throw new Error(`${where}: x must be a Float32Array of ≥ ${n * pixels} values`);
  if (!(y instanceof Int32Array) || y.length < n) throw new Error(`${where}: y must be an Int32Array of ≥ ${n} labels`);
  for (let i = 0; i < n; i++) {
    const label = y[i] as number;
    if (label < 0 || label >= numClasses) throw new Error(`${where}: label ${label} outside [0, ${numClasses})`);
  }
  return batch;
}

// ---------------------------------------------------------------------------
// The optimizer: SGD with momentum or Adam, L2 weight decay, named state
// ---------------------------------------------------------------------------

interface Param {
  name: string;
  variable: tf.Variable;
  decay: boolean;
  slots: Map<string, tf.Variable>;
}

class Optimizer {
  private readonly params: Param[];
  private step = 0;
  private readonly kind: 'sgd' | 'adam';
  private readonly slotNames: readonly string[];

  constructor(
    weights: readonly LayerVariable[],
    private readonly opts: TrainOptions,
  ) {
    this.kind = opts.optimizer;
    this.slotNames = opts.optimizer === 'adam' ? ['m', 'v'] : opts.momentum > 0 ? ['momentum'] : [];
    const seen = new Set<string>();
    const decayAll = (opts.weightDecayOn ?? 'kernels') === 'all';
    this.params = weights.map((w) => {
      if (seen.has(w.originalName)) throw new Error(`train: two weights are named '${w.originalName}'`);
      seen.add(w.originalName);
      const leaf = w.originalName.split('/').pop() ?? '';
      // tidy frees the zeros tensor the variable was initialised from (tidy never frees variables).
      const slots = new Map(this.slotNames.map((s) => [s, tf.tidy(() => tf.variable(tf.zeros(w.shape as number[]), false))]));
      return { name: w.originalName, variable: w.read() as tf.Variable, decay: opts.weightDecay > 0 && (decayAll || leaf.endsWith('kernel')), slots };
    });
  }

  apply(grads: tf.NamedTensorMap, lr: number): void {
    this.step++;
    const { momentum, weightDecay } = this.opts;
    const beta1 = this.opts.adam?.beta1 ?? 0.9;
    const beta2 = this.opts.adam?.beta2 ?? 0.999;
    const epsilon = this.opts.adam?.epsilon ?? 1e-8;
    const t = this.step;
    // One fused kernel per weight on wasm (wasm-train-ops.ts), bit-identical to the ops below.
    const fused = this.kind === 'sgd' && momentum > 0 && hasWasmTrainOp(SGD_MOMENTUM);
    tf.tidy(() => {
      for (const p of this.params) {
        const raw = grads[p.variable.name];
        // No gradient (the weight does not influence the loss): no update, like PyTorch.
        if (raw === undefined || raw === null) continue;
        const w = p.variable;
        if (fused) {
          const buf = p.slots.get('momentum') as tf.Variable;
          const [w1, b1] = tf.engine().runKernel(SGD_MOMENTUM, { w, g: raw, buf }, { lr, momentum, decay: p.decay ? weightDecay : 0 }) as tf.Tensor[];
          buf.assign(b1!);
          w.assign(w1!);
          continue;
        }
        const g = p.decay ? tf.add(raw, tf.mul(w, weightDecay)) : raw;
        if (this.kind === 'adam') {
          const m = p.slots.get('m') as tf.Variable;
          const v = p.slots.get('v') as tf.Variable;
          const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
          const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
          m.assign(m1);
          v.assign(v1);
          const mHat = tf.div(m1, 1 - beta1 ** t);
          const vHat = tf.div(v1, 1 - beta2 ** t);
          w.assign(tf.sub(w, tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), epsilon)), lr)));
        } else if (momentum > 0) {
          const buf = p.slots.get('momentum') as tf.Variable;
          const b1 = tf.add(tf.mul(buf, momentum), g);
          buf.assign(b1);
          w.assign(tf.sub(w, tf.mul(b1, lr)));
        } else {
          w.assign(tf.sub(w, tf.mul(g, lr)));
        }
      }
    });
  }

  // data(), not dataSync(): the webgpu backend cannot read a GPU buffer synchronously under Node.
  async getState(): Promise<OptimizerState> {
    const slots: OptimizerState['slots'] = {};
    for (const p of this.params) {
      for (const [s, v] of p.slots) slots[`${p.name}/${s}`] = { shape: [...v.shape], values: (await v.data()) as Float32Array };
    }
    return { optimizer: this.kind, step: this.step, slots };
  }

  /** Restores a state exactly; it must hold a buffer for every trained weight, and nothing else. */
  setState(state: OptimizerState): void {
    if (state.optimizer !== this.kind) throw new Error(`train: optimizerState is for '${state.optimizer}', this run uses '${this.kind}'`);
    const expected = new Set<string>();
    for (const p of this.params) {
      for (const [s, v] of p.slots) {
        const key = `${p.name}/${s}`;
        expected.add(key);
        const saved = state.slots[key];
        if (saved === undefined) throw new Error(`train: optimizerState has no '${key}'`);
        if (!tf.util.arraysEqual(saved.shape, v.shape) || saved.values.length !== v.size) {
          throw new Error(`train: optimizerState '${key}' has shape [${saved.shape.join(',')}], expected [${v.shape.join(',')}]`);
        }
        const t = tf.tensor(saved.values, v.shape, 'float32');
        v.assign(t);
        t.dispose();
      }
    }
    const extra = Object.keys(state.slots).filter((k) => !expected.has(k));
    if (extra.length > 0) throw new Error(`train: optimizerState has buffers for weights this run does not train: ${extra.slice(0, 5).join(', ')}`);
    this.step = state.step;
  }

  dispose(): void {
    for (const p of this.params) for (const v of p.slots.values()) v.dispose();
  }
}
