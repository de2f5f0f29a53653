/**
 * Models for fine-tuning: pretrained backbones that work offline, any tfjs LayersModel on disk,
 * and a tiny CNN for tests — each cut at a feature layer and given a fresh classification head.
 *
 * Every model returned by `loadModel` has the same shape of graph:
 *
 *   input [N, S, S, 3] (pixels in [0, 1]) → backbone … cutAt → head_pool (GlobalAveragePooling2D)
 *     → head_dropout (optional) → head_logits (Dense, linear) → head_softmax (Activation softmax)
 *
 * The output is probabilities (rows sum to 1), which is what prediction, multi-crop averaging and
 * fusion consume. The logits are a separate layer so that training (train-loop.ts) can compute a
 * numerically stable log-softmax cross-entropy from `head_logits` instead of log(softmax).
 * Layer names starting with `head_` (HEAD_PREFIX) are the head: `trainable: 'head'` trains those.
 *
 * Input size: the backbones are fully convolutional, so the model is rebuilt from its topology at
 * the requested input size (the InputLayer's batch_input_shape is rewritten) and the pretrained
 * weights are copied by name. Global average pooling replaces nsfwjs's AveragePooling2D(7×7) +
 * Flatten, which only fit 224 px.
 *
 * Weights are assigned by name and every backbone weight must be found with the right shape, so
 * a topology/weights mismatch is an error rather than a silently random layer.
 *
 * Training speed and memory: loadModel also replaces, per layer instance, the training-mode call
 * of Conv2D, DepthwiseConv2D, ZeroPadding2D, BatchNormalization and ReLU(max) with lean, faster
 * equivalents (accelerateLayers); configs, weights and saved checkpoints are unchanged.
 *
 * Where the parts live: artifacts.ts reads nsfwjs's bundled models and model.json files,
 * rebuild.ts rewrites a topology (cut, input size) and assigns the weights by name,
 * lean-layers.ts holds accelerateLayers; this file assembles them and adds the head.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import { fileSystemHandler, nsfwjsArtifacts } from './model-files.js';
import { accelerateLayers, type BatchNormInternals } from './lean-layers.js';
import { buildFromArtifacts, cutModel } from './rebuild.js';
import type { HeadInit } from './head-init-param.js';
import { hashInts, Rng, STREAM } from '../data/random.js';

export { accelerateLayers } from './lean-layers.js';
export { fileSystemHandler, type FileSystemHandler } from './model-files.js';

export type LayersModel = tfl.LayersModel;
type Layer = tfl.layers.Layer;

/** Names of the layers loadModel adds; `trainable: 'head'` means the layers with this prefix. */
export const HEAD_PREFIX = 'head_';
export const HEAD_LOGITS = 'head_logits';

export type BuiltinModel = 'mobilenet_v2' | 'inception_v3' | 'tiny';

export interface ModelSpec {
  /** 'mobilenet_v2' | 'inception_v3' (nsfwjs, offline) | 'tiny' | a path or file:// URL of a model.json. */
  model: BuiltinModel | (string & {});
  /** Square input size in pixels, e.g. 128 or 224. */
  inputSize: number;
  numClasses: number;
  /**
   * Layer whose output feeds the new head. Defaults: mobilenet_v2 'out_relu', inception_v3
   * 'mixed10'. For a model.json path: when given, the model is cut there and gets a new head;
   * when omitted, the model is loaded as it is (e.g. a podium checkpoint) and its output must
   * already have `numClasses` units.
   */
  cutAt?: string;
  /** Seeds every weight that is initialised rather than loaded (the head; all of 'tiny'). */
  seed: number;
  /** Dropout rate before the logits; 0 or undefined = no dropout layer. */
  headDropout?: number;
  /** The new logits layer's initial kernel (head-init-param.ts); default 'normal-0.01'. */
  headInit?: HeadInit;
  /**
   * Overrides the momentum of every BatchNormalization layer (Keras semantics: moving =
   * moving·momentum + batch·(1 − momentum); PyTorch's momentum 0.1 is Keras 0.9). nsfwjs's
   * MobileNetV2 uses 0.999, so its moving statistics follow a fine-tuning run only slowly.
   */
  batchNormMomentum?: number;
}

/** Facts of the pretrained models bundled by nsfwjs 4.4.0. */
export const PRETRAINED = {
  mobilenet_v2: {
    cutAt: 'out_relu',
    nativeInputSize: 224,
    /** nsfwjs divides pixels by 255 and subtracts no mean. */
    pixelRange: [0, 1] as const,
  },
  inception_v3: {
    // Last block of Keras InceptionV3; nsfwjs's head follows it (AveragePooling2D 8×8 + Dense).
    cutAt: 'mixed10',
    nativeInputSize: 299,
    // Keras' own InceptionV3 ImageNet weights expect [-1, 1], but nsfwjs feeds this fine-tuned
    // model [0, 1], with the same /255 as for every model (nsfwjs core.js, normalizationOffset).
    pixelRange: [0, 1] as const,
  },
} satisfies Record<string, { cutAt: string; nativeInputSize: number; pixelRange: readonly [number, number] }>;

/** Loads or builds the model described by `spec` (see the file header for the graph). */
export async function loadModel(spec: ModelSpec): Promise<LayersModel> {
  checkSpec(spec);
  let model: LayersModel;
  const name = spec.model;
  if (isPretrained(name)) {
    const artifacts = await nsfwjsArtifacts(name);
    const base = await buildFromArtifacts(artifacts, spec.cutAt ?? PRETRAINED[name].cutAt, spec.inputSize, name);
    model = addHead(base, spec);
  } else if (spec.model === 'tiny') {
    const base = buildTinyBackbone(spec);
    model = addHead(spec.cutAt === undefined ? base : cutModel(base, spec.cutAt), spec);
  } else {
    const artifacts = await fileSystemHandler(spec.model).load();
    if (spec.cutAt !== undefined) {
      model = addHead(await buildFromArtifacts(artifacts, spec.cutAt, spec.inputSize, spec.model), spec);
    } else {
      model = await buildFromArtifacts(artifacts, undefined, spec.inputSize, spec.model);
      const shape = model.outputs[0]?.shape ?? [];
      const units = shape[shape.length - 1];
      if (model.outputs.length !== 1 || units !== spec.numClasses) {
        model.dispose();
        throw new Error(
          `${spec.model}: the model's output has ${String(units)} units, not numClasses ${spec.numClasses}; ` +
            'give cutAt (a feature layer) to replace its head',
        );
      }
    }
  }
  prepareForTraining(model, spec.batchNormMomentum);
  return model;
}

function isPretrained(name: string): name is keyof typeof PRETRAINED {
  return Object.hasOwn(PRETRAINED, name);
}

function checkSpec(spec: ModelSpec): void {
  if (!Number.isInteger(spec.inputSize) || spec.inputSize < 8)
    throw new Error(`inputSize must be an integer ≥ 8, got ${spec.inputSize}`);
  if (!Number.isInteger(spec.numClasses) || spec.numClasses < 2)
    throw new Error(`numClasses must be an integer ≥ 2, got ${spec.numClasses}`);
  if (!Number.isInteger(spec.seed)) throw new Error(`seed must be an integer, got ${spec.seed}`);
  const d = spec.headDropout ?? 0;
  if (!(d >= 0 && d < 1)) throw new Error(`headDropout must be in [0, 1), got ${d}`);
  const m = spec.batchNormMomentum;
  if (m !== undefined && !(m >= 0 && m < 1)) throw new Error(`batchNormMomentum must be in [0, 1), got ${m}`);
}

// ---------------------------------------------------------------------------
// The head
// ---------------------------------------------------------------------------

/**
 * base → GlobalAveragePooling2D → [Dropout] → Dense(numClasses) logits → softmax.
 * Dense init: `spec.headInit` (HEAD_INITS) for the kernel, seeded by `spec.seed`; zero bias.
 */
function addHead(base: LayersModel, spec: ModelSpec): LayersModel {
  const features = base.outputs[0];
  if (base.outputs.length !== 1 || features === undefined)
    throw new Error('the cut model must have exactly one output');
  for (const l of base.layers) {
    if (l.name.startsWith(HEAD_PREFIX))
      throw new Error(`layer '${l.name}' clashes with podium's head layer names (prefix '${HEAD_PREFIX}')`);
  }
  const normalHead = (spec.headInit ?? 'normal-0.01') === 'normal-0.01';
  let x: tfl.SymbolicTensor = features;
  if (x.shape.length === 4) {
    x = tfl.layers.globalAveragePooling2d({ name: `${HEAD_PREFIX}pool` }).apply(x) as tfl.SymbolicTensor;
  } else if (x.shape.length !== 2) {
    throw new Error(`the feature layer's output has shape [${x.shape.join(',')}]; expected [N, H, W, C] or [N, C]`);
  }
  const rate = spec.headDropout ?? 0;
  // The seed here is a placeholder: the training loop sets a fresh seed per step (seedDropouts in layer-patches.ts).
  if (rate > 0)
    x = tfl.layers.dropout({ rate, seed: spec.seed, name: `${HEAD_PREFIX}dropout` }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers
    .dense({
      units: spec.numClasses,
      name: HEAD_LOGITS,
      // normal-0.01's values are set below, from podium's Rng: tfjs's randomNormal takes a seed of
      // 0 for no seed (Math.random), and pipelines may well have seed 0.
      kernelInitializer: normalHead ? 'zeros' : tfl.initializers.glorotUniform({ seed: spec.seed }),
      biasInitializer: 'zeros',
    })
    .apply(x) as tfl.SymbolicTensor;
  const probs = tfl.layers
    .activation({ activation: 'softmax', name: `${HEAD_PREFIX}softmax` })
    .apply(x) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: base.inputs, outputs: probs, name: base.name });
  if (normalHead) {
    const logits = model.getLayer(HEAD_LOGITS);
    // getWeights hands out the variables' own tensors: not disposed here.
    const [kernel, bias] = logits.getWeights() as [tf.Tensor, tf.Tensor];
    const rng = new Rng(hashInts(STREAM.headInit, spec.seed));
    const values = Float32Array.from({ length: kernel.size }, () => 0.01 * rng.normal());
    const seeded = tf.tensor(values, kernel.shape);
    logits.setWeights([seeded, bias]);
    seeded.dispose();
  }
  return model;
}

// ---------------------------------------------------------------------------
// The tiny CNN (tests)
// ---------------------------------------------------------------------------

/**
 * A MobileNetV2-flavoured toy backbone: strided conv → depthwise → pointwise, each with BN and
 * ReLU6, ending in 'out_relu' as MobileNetV2 does (loadModel adds the head). Every initializer
 * gets its own seed derived from `spec.seed`, so the same seed gives bit-identical weights.
 */
function buildTinyBackbone(spec: ModelSpec): LayersModel {
  let k = 0;
  const seeded = (): ReturnType<typeof tfl.initializers.heNormal> =>
    tfl.initializers.heNormal({ seed: spec.seed * 7919 + ++k });
  const bn = (name: string): Layer => tfl.layers.batchNormalization({ name, momentum: 0.9, epsilon: 1e-3 });
  const relu6 = (name: string): Layer => tfl.layers.reLU({ maxValue: 6, name });
  const input = tfl.input({ shape: [spec.inputSize, spec.inputSize, 3], name: 'input_1' });
  let x = tfl.layers
    .conv2d({
      filters: 8,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      useBias: false,
      kernelInitializer: seeded(),
      name: 'conv1',
    })
    .apply(input) as tfl.SymbolicTensor;
  x = relu6('conv1_relu').apply(bn('conv1_bn').apply(x)) as tfl.SymbolicTensor;
  x = tfl.layers
    .depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, depthwiseInitializer: seeded(), name: 'dw' })
    .apply(x) as tfl.SymbolicTensor;
  x = relu6('dw_relu').apply(bn('dw_bn').apply(x)) as tfl.SymbolicTensor;
  x = tfl.layers
    .conv2d({ filters: 16, kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: seeded(), name: 'pw' })
    .apply(x) as tfl.SymbolicTensor;
  x = relu6('out_relu').apply(bn('pw_bn').apply(x)) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: x, name: 'tiny' });
}

// ---------------------------------------------------------------------------
// Making a loaded model trainable
// ---------------------------------------------------------------------------

/**
 * - Every layer becomes trainable: nsfwjs's topology marks 98 backbone layers trainable: false
 *   (its own recipe). What trains is decided per run by train-loop.ts's `trainable` option.
 * - Optionally overrides BN momentum (ModelSpec.batchNormMomentum).
 * - Installs the fast, lean layer implementations (accelerateLayers).
 */
function prepareForTraining(model: LayersModel, batchNormMomentum: number | undefined): void {
  for (const layer of model.layers) {
    layer.trainable = true;
    if (batchNormMomentum !== undefined && layer.getClassName() === 'BatchNormalization') {
      (layer as unknown as BatchNormInternals).momentum = batchNormMomentum;
    }
  }
  accelerateLayers(model);
}
