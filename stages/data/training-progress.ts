// Where finetune keeps each finished epoch (weights, optimizer state, history row) in the cache's
// index, so that work is never done twice:
//
// - under the stage key: a killed run resumes after its last finished epoch;
// - under its "line": the same recipe (every param but `epochs` and `lrSteps`, the same inputs,
//   seed and kind version) *and* the same learning rate in every epoch so far. Raising `epochs`
//   12 → 16 changes the key, but epochs 1–12 of the new run are those of the old one, byte for
//   byte: training is deterministic, and nothing before epoch e depends on the total. So the new
//   run continues from the old run's epoch 12, as the seed's author did by hand when a curve was
//   still rising. Keying each epoch by the learning rates up to it means an entry can only be
//   taken by a run whose schedule agrees up to there (a new step at epoch 8 shares epochs 1–8).
import { digestOf, type Digest } from '../../cache/canonical.js';
import type { IndexEntry, StageStore } from '../contract.js';

export interface SavedEpoch {
  weights: Digest;
  opt: Digest;
  row: Record<string, number>;
  /** The stage that trained it, when it is taken from another run of the line. */
  from?: string;
}

export class TrainingProgress {
  /**
   * @param line digest of the recipe without its length and schedule (see above)
   * @param lrs the learning rate of every epoch of this run
   */
  constructor(
    private readonly store: StageStore,
    private readonly key: Digest,
    private readonly line: Digest,
    private readonly lrs: readonly number[],
    private readonly stageId: string,
  ) {}

  /** Epoch e (0-based) as this run saved it, else as a run of its line with the same rates did. */
  get(e: number): SavedEpoch | undefined {
    const own = savedEpoch(this.store.getIndex(this.ownKey(e)));
    if (own) return own;
    const other = savedEpoch(this.store.getIndex(this.lineKey(e)));
    return other?.from !== undefined ? other : undefined;
  }

  put(e: number, weights: Digest, opt: Digest, row: Record<string, number>): void {
    // Both blobs in `blobs`: gc keeps an entry only while all of them survive.
    this.store.setIndex(this.ownKey(e), { blobs: [weights, opt], meta: { row } });
    this.store.setIndex(this.lineKey(e), { blobs: [weights, opt], meta: { row, from: this.stageId } });
  }

  private ownKey(e: number): string {
    return `finetune:${this.key}:${e}`;
  }
  private lineKey(e: number): string {
    return `finetune-line:${digestOf({ line: this.line, lrs: this.lrs.slice(0, e + 1) })}`;
  }
}

/** An entry as put() wrote it; anything else (an older podium's string, damage) is a miss. */
function savedEpoch(entry: IndexEntry | undefined): SavedEpoch | undefined {
  if (entry?.blobs.length !== 2) return undefined;
  const { row, from } = entry.meta;
  if (typeof row !== 'object' || row === null || Array.isArray(row)) return undefined;
  return {
    weights: entry.blobs[0]!,
    opt: entry.blobs[1]!,
    row: row as Record<string, number>,
    ...(typeof from === 'string' ? { from } : {}),
  };
}
