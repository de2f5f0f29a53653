/**
 * One training step's forward pass, loss and gradients on one batch (or one shard of a batch):
 * the part of a step that train-loop.ts runs on the main thread and every data-parallel replica
 * (data-parallel-worker.ts) runs on its own shard, so both compute exactly the same thing.
 *
 *   logits = model(x, training)      (BN uses this batch's statistics; runForward, forward.ts)
 *   loss   = mean cross-entropy(softmax(logits), smoothed one-hot)
 *   grads  = d loss / d trained weights                 (tf.variableGrads)
 *
 * The optimizer step is not here: it runs once per batch, on the main thread (optimizer.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { runForward, trainingGraph, type TrainingGraph } from './forward.js';
import { HEAD_PREFIX } from './models.js';

type Layer = tfl.layers.Layer;
export type Trainable = 'all' | 'head' | { from: string };

/** What a step needs of a model, worked out once per run. */
export interface StepPlan {
  graph: TrainingGraph;
  /** The trained weights, in model.layers order (the order replicas exchange them in). */
  params: tfl.LayerVariable[];
  /** Layers that are not trained: their BatchNormalization runs in inference mode (layer-patches.ts). */
  frozen: Layer[];
  dropouts: Layer[];
  /** [H, W, C] of the model's input. */
  pixelShape: [number, number, number];
}

export function planStep(model: tfl.LayersModel, trainable: Trainable): StepPlan {
  const { trained, frozen } = splitLayers(model, trainable);
  const params = trained.flatMap((l) => l.trainableWeights);
  if (params.length === 0) throw new Error('train: nothing to train (the selected layers have no trainable weights)');
  return {
    graph: trainingGraph(model),
    params,
    frozen,
    dropouts: model.layers.filter((l) => l.getClassName().endsWith('Dropout')),
    pixelShape: inputShape(model),
  };
}

export interface StepResult {
  /** Mean loss over the step's samples. */
  loss: tf.Scalar;
  /** Number of samples whose top-1 class is the label. */
  correct: tf.Scalar;
  /** Gradient of `loss` by variable name; a weight that does not influence the loss has none. */
  grads: tf.NamedTensorMap;
}

/**
 * Loss, accuracy count and gradients of one batch; disposes `x` and `y`. Dropout seeds are the
 * caller's (seedDropouts, per step and shard).
 */
export function stepGradients(plan: StepPlan, x: tf.Tensor4D, y: tf.Tensor1D, labelSmoothing: number): StepResult {
  let correct: tf.Scalar | undefined;
  try {
    const { value, grads } = tf.variableGrads(
      () => {
        const out = runForward(plan.graph, x, true) as tf.Tensor2D;
        correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(out, 1), y), 'float32')));
        const logProbs = plan.graph.outputIsProbabilities ? tf.log(tf.clipByValue(out, 1e-7, 1)) : tf.logSoftmax(out);
        return crossEntropyFromLogProbs(logProbs, y, labelSmoothing);
      },
      plan.params.map((p) => p.read() as tf.Variable),
    );
    return { loss: value, correct: correct as tf.Scalar, grads };
  } catch (err) {
    correct?.dispose();
    throw err;
  } finally {
    tf.dispose([x, y]);
  }
}

export function crossEntropyFromLogProbs(logProbs: tf.Tensor2D, labels: tf.Tensor1D, eps: number): tf.Scalar {
  const k = logProbs.shape[1];
  const oneHot = tf.oneHot(labels, k);
  const target = eps > 0 ? tf.add(tf.mul(oneHot, 1 - eps), eps / k) : oneHot;
  return tf.neg(tf.mean(tf.sum(tf.mul(target, logProbs), 1)));
}

function inputShape(model: tfl.LayersModel): [number, number, number] {
  const shape = model.inputs[0]?.shape;
  if (model.inputs.length !== 1 || shape === undefined || shape.length !== 4)
    throw new Error('train: the model needs one image input [N, H, W, C]');
  const [, h, w, c] = shape;
  if (typeof h !== 'number' || typeof w !== 'number' || typeof c !== 'number')
    throw new Error('train: the model input needs a fixed size');
  return [h, w, c];
}

/** Which layers train, which are frozen (model.layers is in topological order). */
function splitLayers(model: tfl.LayersModel, trainable: Trainable): { trained: Layer[]; frozen: Layer[] } {
  const layers = model.layers;
  let trained: Layer[];
  if (trainable === 'all') {
    trained = layers;
  } else if (trainable === 'head') {
    trained = layers.filter((l) => l.name.startsWith(HEAD_PREFIX));
    if (trained.length === 0)
      throw new Error(`train: trainable 'head' but the model has no '${HEAD_PREFIX}*' layers; use { from: <layer> }`);
  } else {
    const at = layers.findIndex((l) => l.name === trainable.from);
    if (at < 0) throw new Error(`train: trainable.from: no layer named '${trainable.from}'`);
    trained = layers.slice(at);
  }
  const set = new Set(trained);
  return { trained, frozen: layers.filter((l) => !set.has(l)) };
}
