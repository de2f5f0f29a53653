/**
 * The training loop's forward pass (train-loop.ts): the layer calls from the model's input to its
 * logits in a fixed order, run so that every activation is freed after its last reader.
 *
 * Why not tfjs-layers' own executor: in training mode it keeps every activation alive until the
 * step ends (to be safe for gradients), but the engine keeps its own reference to whatever a
 * backward pass needs (saved tensors), so freeing ours is safe. That lowers the forward pass's
 * peak from "every activation" to "the saved ones", which matters on wasm, whose heap cannot
 * exceed 4 GB: MobileNetV2 at batch 32 needs a ~1.0 GB heap at 128 px and ~2.6–3.0 GB at 224 px
 * this way (3.7 GB, and out of memory at 224 px, with tfjs-layers' own forward pass and layers).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

type Layer = tfl.layers.Layer;

export interface TrainingGraph {
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
export function trainingGraph(model: tfl.LayersModel): TrainingGraph {
  const out = model.outputs[0];
  const input = model.inputs[0];
  if (model.outputs.length !== 1 || out === undefined || out.shape.length !== 2)
    throw new Error('train: the model needs one output [N, numClasses]');
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
export function runForward(graph: TrainingGraph, x: tf.Tensor, training: boolean): tf.Tensor {
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
