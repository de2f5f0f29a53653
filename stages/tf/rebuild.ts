/**
 * Rebuilding a saved LayersModel the way loadModel needs it: topology surgery on the Keras JSON
 * (cut at a layer, set the input size), building it and assigning the weights by name, and
 * cutting an already built model at a layer.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type LayersModel = tfl.LayersModel;

// ---------------------------------------------------------------------------
// Topology surgery: cut at a layer and set the input size, on the Keras JSON
// ---------------------------------------------------------------------------

type Json = Record<string, unknown>;

interface LayerJson {
  class_name: string;
  name?: string;
  config: Json;
  inbound_nodes?: unknown;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function layerName(l: LayerJson): string {
  const n = l.name ?? l.config['name'];
  if (typeof n !== 'string') throw new Error(`a ${l.class_name} layer in the topology has no name`);
  return n;
}

/** Names of the layers feeding `layer`, from Keras 2 inbound_nodes [[[name, node, tensor, kwargs], …], …]. */
function inboundNames(layer: LayerJson, source: string): string[] {
  const nodes = layer.inbound_nodes ?? [];
  if (!Array.isArray(nodes)) throw new Error(`${source}: layer '${layerName(layer)}' has malformed inbound_nodes`);
  const names: string[] = [];
  for (const node of nodes) {
    if (!Array.isArray(node))
      throw new Error(`${source}: layer '${layerName(layer)}' uses an inbound_nodes format tfjs-layers cannot read`);
    for (const entry of node) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string') {
        throw new Error(`${source}: layer '${layerName(layer)}' uses an inbound_nodes format tfjs-layers cannot read`);
      }
      names.push(entry[0]);
    }
  }
  return names;
}

/**
 * Returns a copy of a Keras/tfjs topology cut at `cutAt` (only it and its ancestors are kept; it
 * becomes the output) and with every rank-4 input set to [null, size, size, channels].
 * Handles functional models ('Model' / 'Functional') and 'Sequential', in both the tfjs-layers
 * save format ({class_name, config}) and the Keras-converter one ({model_config: {…}}).
 */
function rewriteTopology(topology: Json, cutAt: string | undefined, inputSize: number, source: string): Json {
  const copy = structuredClone(topology);
  const modelConfig = isObject(copy['model_config']) ? copy['model_config'] : copy;
  const className = modelConfig['class_name'];
  const rawConfig = modelConfig['config'];
  if (className === 'Sequential') {
    // Old Keras saved a Sequential's config as the bare layer list.
    const holder: Json = Array.isArray(rawConfig) ? { layers: rawConfig } : isObject(rawConfig) ? rawConfig : {};
    if (Array.isArray(rawConfig)) modelConfig['config'] = holder;
    const layers = holder['layers'];
    if (!Array.isArray(layers) || layers.length === 0) throw new Error(`${source}: Sequential model without layers`);
    const typed = layers as LayerJson[];
    if (cutAt !== undefined) {
      const at = typed.findIndex((l) => layerName(l) === cutAt);
      if (at < 0)
        throw new Error(`${source}: no layer named '${cutAt}' (cutAt); layers: ${typed.map(layerName).join(', ')}`);
      holder['layers'] = typed.slice(0, at + 1);
    }
    const first = typed[0];
    if (first !== undefined) resizeInput(first.config, inputSize, source);
    return copy;
  }
  if (className !== 'Model' && className !== 'Functional')
    throw new Error(`${source}: unsupported model class '${String(className)}'`);
  if (!isObject(rawConfig) || !Array.isArray(rawConfig['layers']))
    throw new Error(`${source}: functional model without layers`);
  let layers = rawConfig['layers'] as LayerJson[];
  if (cutAt !== undefined) {
    const byName = new Map(layers.map((l) => [layerName(l), l]));
    if (!byName.has(cutAt))
      throw new Error(
        `${source}: no layer named '${cutAt}' (cutAt); the last layers are ${layers.slice(-8).map(layerName).join(', ')}`,
      );
    const keep = new Set<string>();
    const stack = [cutAt];
    while (stack.length > 0) {
      const name = stack.pop() as string;
      if (keep.has(name)) continue;
      keep.add(name);
      const l = byName.get(name);
      if (l === undefined) throw new Error(`${source}: layer '${name}' is referenced but not defined`);
      stack.push(...inboundNames(l, source));
    }
    layers = layers.filter((l) => keep.has(layerName(l)));
    rawConfig['layers'] = layers;
    rawConfig['output_layers'] = [[cutAt, 0, 0]];
    const inputs = rawConfig['input_layers'];
    if (Array.isArray(inputs))
      rawConfig['input_layers'] = inputs.filter((e) => Array.isArray(e) && keep.has(String(e[0])));
  }
  let resized = 0;
  for (const l of layers) if (l.class_name === 'InputLayer' && resizeInput(l.config, inputSize, source)) resized++;
  if (resized === 0) throw new Error(`${source}: no image InputLayer (rank 4) to set the input size on`);
  return copy;
}

/** Sets a layer config's batch input shape to [null, size, size, C]; false if it has none of rank 4. */
function resizeInput(config: Json, size: number, source: string): boolean {
  for (const key of ['batch_input_shape', 'batch_shape', 'batchInputShape']) {
    const shape = config[key];
    if (!Array.isArray(shape)) continue;
    if (shape.length !== 4) return false;
    const channels = shape[3];
    if (typeof channels !== 'number') throw new Error(`${source}: input has an unknown channel count`);
    config[key] = [null, size, size, channels];
    return true;
  }
  return false;
}

/**
 * Builds the (cut, resized) model and assigns its weights by name. Every weight of the built
 * model must come from the artifacts with the same shape; weights of cut-off layers are ignored.
 */
export async function buildFromArtifacts(
  artifacts: tf.io.ModelArtifacts,
  cutAt: string | undefined,
  inputSize: number,
  source: string,
): Promise<LayersModel> {
  const topology = artifacts.modelTopology;
  if (!isObject(topology))
    throw new Error(`${source}: the topology is not a LayersModel JSON (a GraphModel cannot be fine-tuned)`);
  const model = await tfl.models.modelFromJSON({
    modelTopology: rewriteTopology(topology, cutAt, inputSize, source) as Parameters<
      typeof tfl.models.modelFromJSON
    >[0]['modelTopology'],
  });
  if (artifacts.weightSpecs === undefined || artifacts.weightData === undefined) {
    model.dispose();
    throw new Error(`${source}: the model has no weights`);
  }
  // decodeWeights dequantizes (nsfwjs ships uint8-quantized weights) into float32 tensors.
  const named = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  try {
    for (const w of model.weights) {
      const value = named[w.originalName];
      if (value === undefined) throw new Error(`${source}: no weights for '${w.originalName}'`);
      if (!tf.util.arraysEqual(value.shape, w.shape as number[])) {
        throw new Error(
          `${source}: weight '${w.originalName}' has shape [${value.shape.join(',')}], the model needs [${w.shape.join(',')}]`,
        );
      }
      w.write(value);
    }
  } catch (err) {
    model.dispose();
    throw err;
  } finally {
    // write() shares the decoded tensor's data (refcounted), so disposing here frees only the
    // weights nothing took: those of the cut-off layers.
    tf.dispose(Object.values(named));
  }
  if (isObject(artifacts.userDefinedMetadata)) model.setUserDefinedMetadata(artifacts.userDefinedMetadata);
  return model;
}

/**
 * The sub-model from the inputs to layer `cutAt`, sharing layers and weights with `model`; the
 * layers left out are disposed (nothing else references them).
 */
export function cutModel(model: LayersModel, cutAt: string): LayersModel {
  const layer = model.layers.find((l) => l.name === cutAt);
  if (layer === undefined)
    throw new Error(`no layer named '${cutAt}' (cutAt); layers: ${model.layers.map((l) => l.name).join(', ')}`);
  const cut = tfl.model({ inputs: model.inputs, outputs: layer.output as tfl.SymbolicTensor, name: model.name });
  const kept = new Set(cut.layers);
  for (const l of model.layers) if (!kept.has(l)) l.dispose();
  return cut;
}
