// One squeue call per tick for every job in flight, however many stages wait: a runner with a
// hundred jobs queued must not fork a hundred squeues a second.
import { FINISHED, squeue, type QueueEntry } from './commands.js';

interface Watch {
  last: string | undefined;
  misses: number;
  onChange: (e: QueueEntry) => void;
  resolve: (e: QueueEntry | undefined) => void;
}

/** A job unknown to the controller this many polls in a row has left the queue for good. */
const MISSES_BEFORE_GONE = 3;

export class QueuePoller {
  private readonly watches = new Map<string, Watch>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly intervalMs: number) {}

  /**
   * Resolves with the job's final state once it has finished, or undefined once SLURM no longer
   * knows it (finished longer ago than MinJobAge: the caller looks for its result file).
   */
  wait(id: string, onChange: (e: QueueEntry) => void): Promise<QueueEntry | undefined> {
    return new Promise((resolve) => {
      this.watches.set(id, { last: undefined, misses: 0, onChange, resolve });
      this.timer ??= setTimeout(() => void this.tick(), 0);
    });
  }

  /** Stops watching (the caller stopped waiting: interrupted). */
  forget(id: string): void {
    this.watches.delete(id);
  }

  /** Ids being watched. */
  ids(): string[] {
    return [...this.watches.keys()];
  }

  private async tick(): Promise<void> {
    const ids = this.ids();
    const seen = ids.length ? await squeue(ids).catch(() => undefined) : new Map<string, QueueEntry>();
    // undefined: the controller did not answer; everything is asked again next time.
    if (seen) {
      for (const id of ids) {
        const w = this.watches.get(id);
        if (!w) continue;
        const e = seen.get(id);
        if (!e) {
          if (++w.misses >= MISSES_BEFORE_GONE) {
            this.watches.delete(id);
            w.resolve(undefined);
          }
          continue;
        }
        w.misses = 0;
        if (e.state !== w.last) {
          w.last = e.state;
          w.onChange(e);
        }
        if (FINISHED.has(e.state)) {
          this.watches.delete(id);
          w.resolve(e);
        }
      }
    }
    this.timer = this.watches.size ? setTimeout(() => void this.tick(), this.intervalMs) : undefined;
  }
}
