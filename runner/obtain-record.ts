// How the executor gets a stage's record once it has decided the stage must run: under the key's
// lease, so a second podium process waits for the first instead of computing the same key twice;
// or the record that process committed meanwhile. Corrupt input blobs are repaired here (their
// producers re-executed), and a cached record's outs are restored here, for both ways of hitting.
import { stageKey, type Fingerprint } from '../cache/fingerprint.js';
import type { Digest } from '../cache/canonical.js';
import { stageStoreOf } from '../cache/local-stage-store.js';
import { CacheCorruption, CacheUnavailable, type StageRecord, type Store } from '../cache/store.js';
import type { Pipeline, StageNode } from './analyze.js';
import type { EventSink } from './events.js';
import { executeStage, jobFor, type StageRunner } from './execute-stage.js';
import { fingerprintOf } from './fingerprints.js';
import { stageFailure, type StageFailure } from './stage-failure.js';

/** What obtaining a record needs of the run's options; the executor's add the slot count and the lock file. */
export interface ObtainOptions {
  gpus?: string[];
  dryRun: boolean;
  onEvent: EventSink;
  signal: AbortSignal;
  /** How long to wait for a stage another live process is computing before failing it. */
  leaseTimeoutMs: number;
  /** Where a stage runs: in this process or a worker (default), or as a cluster job (--executor slurm). */
  runStage?: StageRunner;
}

/** A stage's record: computed by this process, or found (with the outs that were restored for it). */
export interface Obtained {
  fingerprint: Fingerprint;
  record: StageRecord;
  computed: boolean;
  restored: string[];
}
/** Where a running stage sits: its slot (and GPU) and its share of the cores. */
export interface Seat {
  slot: number;
  threads: number;
}
/** The records of finished stages, shared with the executor: a repair replaces its producers' entries. */
export type DoneRecords = Map<string, { fingerprint: Fingerprint; record: StageRecord }>;

const LEASE_POLL_MS = 200;
/** Corrupt inputs repaired per stage before giving up (each repair re-executes their producer). */
const MAX_REPAIRS = 3;

export class RecordObtainer {
  /** Producers being re-executed after a corrupt blob, so that stages meeting it together repair it once. */
  private readonly repairing = new Map<string, Promise<StageFailure | undefined>>();

  constructor(
    private readonly pipeline: Pipeline,
    private readonly store: Store,
    private readonly opts: ObtainOptions,
    private readonly done: DoneRecords,
    /** An upstream stage's record: finished in this run, or read via the lock file. */
    private readonly upstream: (id: string) => StageRecord | undefined,
  ) {}

  /**
   * The stage's record: computed under its lease, or the one another podium process committed
   * while this one waited. An input blob found corrupt while the stage reads it is never used:
   * the blob is removed, the stage that produced it is re-executed, and the stage tries again.
   */
  async obtain(
    node: StageNode,
    fingerprint: Fingerprint,
    seat: Seat,
    forced: boolean,
  ): Promise<Obtained | StageFailure> {
    for (let repairs = 0; ; repairs++) {
      const key = stageKey(fingerprint);
      const lease = await this.acquireLease(node, key, forced);
      if (lease.got === 'failure') return lease.failure;
      if (lease.got === 'record')
        return { fingerprint, record: lease.record, computed: false, restored: lease.restored };
      try {
        const gpu = this.opts.gpus?.length ? this.opts.gpus[seat.slot % this.opts.gpus.length] : undefined;
        // --force and --from mean from scratch; saved progress is for a stage never finished.
        const job = jobFor(this.pipeline, node, key, this.upstream, {
          resume: !forced,
          slot: seat.slot,
          gpu,
          threads: seat.threads,
        });
        const outcome = await (this.opts.runStage ?? executeStage)(
          job,
          this.store,
          this.opts.signal,
          {
            log: (line) => this.opts.onEvent({ type: 'stage-log', id: node.id, line }),
            note: (line) => this.opts.onEvent({ type: 'stage-note', id: node.id, line }),
            progress: (update) => this.opts.onEvent({ type: 'stage-progress', id: node.id, update }),
          },
          this.inputBlobsOf(node),
        );
        if (!outcome.ok) return outcome.failure;
        this.store.commitRecord(outcome.record);
        return { fingerprint, record: outcome.record, computed: true, restored: [] };
      } catch (e) {
        if (!(e instanceof CacheCorruption) || repairs >= MAX_REPAIRS || this.opts.signal.aborted) throw e;
        const failure = await this.repairInput(node, e, seat);
        if (failure) return failure;
        const fp = fingerprintOf(this.pipeline, node, this.store, this.upstream);
        if (!fp.ok) throw e;
        fingerprint = fp.fingerprint;
      } finally {
        this.releaseQuietly(key);
      }
    }
  }

  /**
   * Takes the key's lease, waiting (interruptibly, up to the lease timeout) while another live
   * process holds it; or the record that process committed meanwhile.
   */
  private async acquireLease(
    node: StageNode,
    key: Digest,
    forced: boolean,
  ): Promise<
    | { got: 'lease' }
    | { got: 'record'; record: StageRecord; restored: string[] }
    | { got: 'failure'; failure: StageFailure }
  > {
    let waitingSince: number | undefined;
    for (;;) {
      if (this.opts.signal.aborted) return { got: 'failure', failure: stageFailure('interrupted', 'interrupted') };
      const leased = this.store.tryLease(key, `stage ${node.id} of ${this.pipeline.file}`);
      const theirs = forced ? undefined : this.store.getRecord(key);
      if (theirs) {
        if (leased) this.releaseQuietly(key);
        const restored = this.restoreOrDrop(node, theirs);
        if (restored) return { got: 'record', record: theirs, restored };
      }
      if (leased) return { got: 'lease' };
      const holder = this.store.leaseHolder(key);
      const who = holder
        ? `${holder.what ?? `stage ${node.id}`} held by pid ${holder.pid} since ${new Date(holder.since).toISOString()}`
        : `stage ${node.id}`;
      if (waitingSince === undefined) {
        waitingSince = Date.now();
        this.opts.onEvent({
          type: 'warning',
          message: `${node.id}: waiting for ${who} (another podium process is computing it)`,
        });
      } else if (Date.now() - waitingSince > this.opts.leaseTimeoutMs) {
        return {
          got: 'failure',
          failure: stageFailure(
            'stage',
            `gave up after ${Math.round(this.opts.leaseTimeoutMs / 1000)} s waiting for ${who}; stop that process, or wait longer with --lease-timeout SECONDS`,
          ),
        };
      }
      await this.pause(LEASE_POLL_MS);
    }
  }

  /** A waiting or running stage sleeps in steps that an interrupt cuts short. */
  private pause(ms: number): Promise<void> {
    const { signal } = this.opts;
    return new Promise((resolve) => {
      const onAbort = (): void => {
        clearTimeout(t);
        resolve();
      };
      // Removed when the timer fires: a long lease wait polls many times on one signal.
      const t = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Drops the corrupt blob and the records naming it, and re-executes the stages that made them.
   * Returns the failure of a producer that could not be re-executed.
   */
  private async repairInput(node: StageNode, e: CacheCorruption, seat: Seat): Promise<StageFailure | undefined> {
    const inputIds = [...new Set(Object.values(node.inputs).flatMap((i) => i.ids))];
    // Another stage running beside this one may have met the same blob first.
    const inFlight = inputIds.filter((id) => this.repairing.has(id));
    if (inFlight.length) return (await Promise.all(inFlight.map((id) => this.repairing.get(id)))).find(Boolean);
    if (this.blobIntact(e.digest as Digest)) return undefined;
    this.store.deleteBlob(e.digest as Digest);
    const producers = inputIds.filter((id) => {
      const rec = this.upstream(id);
      return (
        !!rec && (Object.values(rec.outputs).includes(e.digest as Digest) || rec.refs.includes(e.digest as Digest))
      );
    });
    this.opts.onEvent({
      type: 'warning',
      message: `${node.id}: ${e.message}; removed it, ${producers.length ? `re-executing ${producers.join(', ')}` : `running ${node.id} again`}`,
    });
    for (const id of producers) {
      const redo = async (): Promise<StageFailure | undefined> => {
        this.store.deleteRecord(this.upstream(id)!.key);
        this.done.delete(id);
        const producer = this.pipeline.byId.get(id)!;
        const fp = fingerprintOf(this.pipeline, producer, this.store, this.upstream);
        if (!fp.ok) throw e;
        const redone = await this.obtain(producer, fp.fingerprint, seat, true);
        if (!('record' in redone)) return redone;
        this.done.set(id, { fingerprint: redone.fingerprint, record: redone.record });
        return undefined;
      };
      this.repairing.set(
        id,
        redo().finally(() => this.repairing.delete(id)),
      );
    }
    return (await Promise.all(producers.map((id) => this.repairing.get(id)))).find(Boolean);
  }

  /** Every blob a stage's inputs are or refer to: a cluster job fetches these from the shared store. */
  private inputBlobsOf(node: StageNode): Digest[] {
    const ids = Object.values(node.inputs).flatMap((i) => i.ids);
    return [
      ...new Set(
        ids.flatMap((id) => {
          const rec = this.upstream(id)!;
          return [...Object.values(rec.outputs), ...rec.refs];
        }),
      ),
    ];
  }

  private blobIntact(digest: Digest): boolean {
    try {
      return this.store.getBlob(digest) !== undefined;
    } catch (err) {
      if (err instanceof CacheCorruption) return false;
      throw err;
    }
  }

  /** A lease left behind by a failed write dies with this process anyway (leases are checked for liveness). */
  private releaseQuietly(key: Digest): void {
    try {
      this.store.releaseLease(key);
    } catch (e) {
      if (!(e instanceof CacheUnavailable)) throw e;
    }
  }

  /**
   * A cached record's outs put back on disk; undefined when a blob they need is corrupt: then the
   * blob and the record are dropped and the stage runs again, as for any other miss.
   */
  restoreOrDrop(node: StageNode, record: StageRecord): string[] | undefined {
    if (this.opts.dryRun) return [];
    try {
      return (
        node.kind.restore?.(
          { projectDir: this.pipeline.projectDir, store: stageStoreOf(this.store) },
          node.params,
          record,
        ) ?? []
      );
    } catch (e) {
      if (!(e instanceof CacheCorruption)) throw e;
      this.store.deleteBlob(e.digest as Digest);
      this.store.deleteRecord(record.key);
      this.opts.onEvent({ type: 'warning', message: `${node.id}: ${e.message}; removed it, the stage runs again` });
      return undefined;
    }
  }
}
