/**
 * The optimizer of the training loop (train-loop.ts): SGD with momentum or Adam, L2 weight decay,
 * and its state as plain named buffers, with the blob format finetune checkpoints it in.
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
 * - Memory: the buffers are created with the optimizer and freed by dispose(), so a training run
 *   leaves tf.memory().numTensors as it found it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { hasWasmTrainOp, SGD_MOMENTUM } from './wasm-train-ops.js';

type LayerVariable = tfl.LayerVariable;

/** The optimizer's settings (the same fields of TrainOptions). */
export interface OptimizerConfig {
  optimizer: 'sgd' | 'adam';
  momentum: number;
  weightDecay: number;
  /** Which parameters weight decay applies to; default 'kernels' (see the file header). */
  weightDecayOn?: 'kernels' | 'all';
  /** Adam's β₁, β₂, ε; defaults 0.9, 0.999, 1e-8 (PyTorch). */
  adam?: { beta1?: number; beta2?: number; epsilon?: number };
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

interface Param {
  name: string;
  variable: tf.Variable;
  decay: boolean;
  slots: Map<string, tf.Variable>;
}

export class Optimizer {
  private readonly params: Param[];
  private step = 0;
  private readonly kind: 'sgd' | 'adam';
  private readonly slotNames: readonly string[];

  constructor(
    weights: readonly LayerVariable[],
    private readonly opts: OptimizerConfig,
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
      const slots = new Map(
        this.slotNames.map((s) => [s, tf.tidy(() => tf.variable(tf.zeros(w.shape as number[]), false))]),
      );
      return {
        name: w.originalName,
        variable: w.read() as tf.Variable,
        decay: opts.weightDecay > 0 && (decayAll || leaf.endsWith('kernel')),
        slots,
      };
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
          const [w1, b1] = tf
            .engine()
            .runKernel(
              SGD_MOMENTUM,
              { w, g: raw, buf },
              { lr, momentum, decay: p.decay ? weightDecay : 0 },
            ) as tf.Tensor[];
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
      for (const [s, v] of p.slots)
        slots[`${p.name}/${s}`] = { shape: [...v.shape], values: (await v.data()) as Float32Array };
    }
    return { optimizer: this.kind, step: this.step, slots };
  }

  /** Restores a state exactly; it must hold a buffer for every trained weight, and nothing else. */
  setState(state: OptimizerState): void {
    if (state.optimizer !== this.kind)
      throw new Error(`train: optimizerState is for '${state.optimizer}', this run uses '${this.kind}'`);
    const expected = new Set<string>();
    for (const p of this.params) {
      for (const [s, v] of p.slots) {
        const key = `${p.name}/${s}`;
        expected.add(key);
        const saved = state.slots[key];
        if (saved === undefined) throw new Error(`train: optimizerState has no '${key}'`);
        if (!tf.util.arraysEqual(saved.shape, v.shape) || saved.values.length !== v.size) {
          throw new Error(
            `train: optimizerState '${key}' has shape [${saved.shape.join(',')}], expected [${v.shape.join(',')}]`,
          );
        }
        const t = tf.tensor(saved.values, v.shape, 'float32');
        v.assign(t);
        t.dispose();
      }
    }
    const extra = Object.keys(state.slots).filter((k) => !expected.has(k));
    if (extra.length > 0)
      throw new Error(
        `train: optimizerState has buffers for weights this run does not train: ${extra.slice(0, 5).join(', ')}`,
      );
    this.step = state.step;
  }

  dispose(): void {
    for (const p of this.params) for (const v of p.slots.values()) v.dispose();
  }
}

/** The state as one blob: a little-endian u32 header length, the JSON header, then every buffer's float32 bytes in header order. */
export function encodeOptimizer(state: OptimizerState): Buffer {
  const slots = Object.entries(state.slots).map(([name, s]) => ({ name, shape: s.shape, length: s.values.length }));
  const header = Buffer.from(JSON.stringify({ optimizer: state.optimizer, step: state.step, slots }));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  return Buffer.concat([
    len,
    header,
    ...Object.values(state.slots).map((s) => Buffer.from(s.values.buffer, s.values.byteOffset, s.values.byteLength)),
  ]);
}

/** The inverse of encodeOptimizer, bit for bit. */
export function decodeOptimizer(buf: Buffer): OptimizerState {
  const len = buf.readUInt32LE(0);
  const header = JSON.parse(buf.subarray(4, 4 + len).toString()) as {
    optimizer: 'sgd' | 'adam';
    step: number;
    slots: Array<{ name: string; shape: number[]; length: number }>;
  };
  let offset = 4 + len;
  const slots: OptimizerState['slots'] = {};
  for (const s of header.slots) {
    const bytes = buf.subarray(offset, offset + s.length * 4);
    slots[s.name] = {
      shape: s.shape,
      values: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)),
    };
    offset += s.length * 4;
  }
  return { optimizer: header.optimizer, step: header.step, slots };
}
