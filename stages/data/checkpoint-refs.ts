// Checkpoints as stage inputs, shared by checkpoint-sweep and multicrop-predict: which ones a
// `models` input names (a finetune stage's epochs, a checkpoint-sweep's selection), the selection
// format the sweep writes and the predict stage reads, and the scores both tabulate.
import type { Digest } from '../../cache/canonical.js';
import { InputError, type InputArtifact, type InputValue, type StageStore } from '../contract.js';
import { readJson } from './artifacts.js';
import type { DecodedSet } from './decoded.js';
import { scoreRows } from './metrics.js';

/** One checkpoint to predict with. */
export interface CheckpointRef {
  stageId: string;
  epoch: string;
  checkpoint: Digest;
  inputSize: number;
  classes: string[];
}

/** How a checkpoint scores on a labelled split, as sweep tables, selections and predict tables write it. */
export interface CheckpointMetrics {
  top1: number;
  top3: number;
  loss: number;
}

/** What checkpoint-sweep writes as its `selection` output (a JSON list). */
export interface SelectionEntry extends CheckpointRef {
  metrics: CheckpointMetrics;
}

/** data/metrics.ts's scores of probability rows, in the artifacts' field names; null when no row is labelled. */
export function scoreCheckpoint(
  probs: Float32Array,
  labels: ReadonlyArray<number | null>,
  classes: number,
): CheckpointMetrics | null {
  const s = scoreRows(probs, classes, labels);
  return s ? { top1: s.top1, top3: s.top3, loss: s.logLoss } : null;
}

/**
 * The checkpoints named by a `models` input: a finetune stage gives its last epoch, a
 * checkpoint-sweep stage every entry of its selection. Duplicates are dropped; order is the
 * inputs' order, then epoch order / selection order.
 */
export function checkpointsOf(store: StageStore, value: InputValue): CheckpointRef[] {
  const out: CheckpointRef[] = [];
  const seen = new Set<string>();
  const add = (r: CheckpointRef): void => {
    const id = `${r.stageId}:${r.epoch}`;
    if (!seen.has(id)) {
      seen.add(id);
      out.push(r);
    }
  };
  for (const a of Array.isArray(value) ? value : [value]) {
    if (a.outputs.selection) {
      for (const e of readJson<SelectionEntry[]>(store, a.outputs.selection))
        add({
          stageId: e.stageId,
          epoch: e.epoch,
          checkpoint: e.checkpoint,
          inputSize: e.inputSize,
          classes: e.classes,
        });
    } else if (a.outputs.history) {
      const last = epochsOf(a).at(-1);
      if (!last) throw new InputError(`${a.stageId} has no checkpoints`);
      add(finetuneCheckpoints(store, a, [last])[0]!);
    } else {
      throw new InputError(
        `${a.stageId} is neither a finetune stage (no history output) nor a checkpoint-sweep stage (no selection output)`,
      );
    }
  }
  return out;
}

/** The given epoch outputs of a finetune stage as checkpoints (classes and input size from its history). */
export function finetuneCheckpoints(store: StageStore, a: InputArtifact, epochs: readonly string[]): CheckpointRef[] {
  if (!a.outputs.history) throw new InputError(`${a.stageId} is not a finetune stage (it has no history output)`);
  const h = readJson<{ classes: string[]; inputSize: number }>(store, a.outputs.history);
  return epochs.map((epoch) => ({
    stageId: a.stageId,
    epoch,
    checkpoint: a.outputs[epoch]!,
    inputSize: h.inputSize,
    classes: h.classes,
  }));
}

/** A finetune stage's checkpoint output names, in epoch order. */
export function epochsOf(a: InputArtifact): string[] {
  return Object.keys(a.outputs)
    .filter((n) => /^epoch-\d+$/.test(n))
    .sort((x, y) => Number(x.slice(6)) - Number(y.slice(6)));
}

export function checkClasses(ref: CheckpointRef, set: DecodedSet): void {
  if (ref.classes.length !== set.classes.length || ref.classes.some((c, i) => c !== set.classes[i])) {
    throw new InputError(
      `${ref.stageId} ${ref.epoch} was trained on classes [${ref.classes.slice(0, 5).join(', ')}${ref.classes.length > 5 ? ', …' : ''}], the images have [${set.classes.slice(0, 5).join(', ')}${set.classes.length > 5 ? ', …' : ''}]`,
    );
  }
}
