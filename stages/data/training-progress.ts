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
import type { Store } from '../../cache/store.js';

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
  constructor(private readonly store: Store, private readonly key: Digest, private readonly line: Digest, private readonly lrs: readonly number[], private readonly stageId: string) {}

  /** Epoch e (0-based) as this run saved it, else as a run of its line with the same rates did. */
  get(e: number): SavedEpoch | undefined {
    const own = /^(\S+) (\S+) (.*)$/.exec(this.store.getIndex(this.ownKey(e)) ?? '');
    if (own) return { weights: own[1] as Digest, opt: own[2] as Digest, row: JSON.parse(own[3]!) as Record<string, number> };
    const other = /^(\S+) (\S+) (\S+) (.*)$/.exec(this.store.getIndex(this.lineKey(e)) ?? '');
    return other ? { weights: other[1] as Digest, opt: other[2] as Digest, from: decodeURIComponent(other[3]!), row: JSON.parse(other[4]!) as Record<string, number> } : undefined;
  }

  put(e: number, weights: Digest, opt: Digest, row: Record<string, number>): void {
    const json = JSON.stringify(row);
    this.store.setIndex(this.ownKey(e), `${weights} ${opt} ${json}`);
    // The id may hold spaces (a matrix value): encoded, so the entry still splits on them.
    this.store.setIndex(this.lineKey(e), `${weights} ${opt} ${encodeURIComponent(this.stageId)} ${json}`);
  }

  private ownKey(e: number): string { return `finetune:${this.key}:${e}`; }
  private lineKey(e: number): string { return `finetune-line:${digestOf({ line: this.line, lrs: this.lrs.slice(0, e + 1) })}`; }
}
