// The executor accepts only an analyzed pipeline and a plan. It walks the DAG, up to `jobs`
// stages at once: a stage whose key has a record is cached (its outs restored if needed);
// otherwise it runs under a lease, so a second podium process waits for the first instead of
// computing the same key twice, and its record is committed in one transaction on success.
import { availableParallelism } from 'node:os';

import { stageKey, type Fingerprint } from '../cache/fingerprint.js';
import type { LockFile } from '../cache/lockfile.js';
import type { Digest } from '../cache/canonical.js';
import { stageStoreOf } from '../cache/local-stage-store.js';
import { CacheCorruption, CacheUnavailable, type StageRecord, type Store } from '../cache/store.js';
import type { Pipeline, StageNode } from './analyze.js';
import type { EventSink, StageReport } from './events.js';
import { executeStage, jobFor, type StageRunner } from './execute-stage.js';
import { explainChange, fingerprintOf, ownChanges } from './fingerprints.js';
import type { Plan } from './plan.js';
import { stageFailure, type StageFailure } from './stage-failure.js';
import { stageState } from './state.js';

export interface ExecuteOptions {
  jobs: number;
  gpus?: string[];
  dryRun: boolean;
  lock: LockFile | undefined;
  onEvent: EventSink;
  signal: AbortSignal;
  /** How long to wait for a stage another live process is computing before failing it. */
  leaseTimeoutMs: number;
  /** Where a stage runs: in this process or a worker (default), or as a cluster job (--executor slurm). */
  runStage?: StageRunner;
}

export interface Outcome {
  reports: StageReport[];
  /** Stages that have a record now, with the fingerprint it was found or made under. */
  done: Map<string, { fingerprint: Fingerprint; record: StageRecord }>;
}

const LEASE_POLL_MS = 200;
/** Corrupt inputs repaired per stage before giving up (each repair re-executes their producer). */
const MAX_REPAIRS = 3;

interface Obtained { fingerprint: Fingerprint; record: StageRecord; computed: boolean; restored: string[] }
/** A stage that must run, waiting for a slot. */
interface Runnable { node: StageNode; fingerprint: Fingerprint; reason: string }
/** Where a running stage sits: its slot (and GPU) and its share of the cores. */
interface Seat { slot: number; threads: number }

export async function execute(pipeline: Pipeline, plan: Plan, store: Store, opts: ExecuteOptions): Promise<Outcome> {
  return new Walk(pipeline, plan, store, opts).run();
}

/**
 * One execution's state. Every stage moves from pending (upstream stages unfinished) to ready,
 * then to one of the reports through a named transition: cached, ran, failed or skipped (or, in a
 * dry run, would-run/may-run). Runnable stages wait in `toStart` for a free slot.
 */
class Walk {
  private readonly selected: Set<string>;
  private readonly done: Outcome['done'] = new Map();
  private readonly reports = new Map<string, StageReport>();
  /** Selected upstream stages not finished yet, per stage. */
  private readonly pendingUp = new Map<string, number>();
  private readonly ready: string[];
  private readonly toStart: Runnable[] = [];
  private readonly running = new Map<string, Promise<void>>();
  private readonly freeSlots: number[];
  /** Failed stage → itself; skipped stage → the failed stage that caused it. */
  private readonly failedRoot = new Map<string, string>();
  /** Producers being re-executed after a corrupt blob, so that stages meeting it together repair it once. */
  private readonly repairing = new Map<string, Promise<StageFailure | undefined>>();
  /** A cache that cannot be written ends the run once running stages have stopped. */
  private fatal: CacheUnavailable | undefined;
  private readonly cores = availableParallelism();

  constructor(private readonly pipeline: Pipeline, private readonly plan: Plan, private readonly store: Store, private readonly opts: ExecuteOptions) {
    this.selected = new Set(plan.ids);
    for (const id of plan.ids) this.pendingUp.set(id, (pipeline.graph.predecessors(id) ?? []).filter((p) => this.selected.has(p)).length);
    this.ready = plan.ids.filter((id) => this.pendingUp.get(id) === 0);
    this.freeSlots = Array.from({ length: opts.jobs }, (_, i) => i);
  }

  async run(): Promise<Outcome> {
    while (this.ready.length || this.toStart.length || this.running.size) {
      // Decide everything decidable first: cached stages need no slot, and deciding them may free more.
      while (this.ready.length) {
        const toRun = this.decide(this.pipeline.byId.get(this.ready.shift()!)!);
        if (toRun) this.toStart.push(toRun);
      }
      if (this.opts.signal.aborted || this.fatal) {
        // Interrupted, or the cache cannot be written: let running stages wind down, start nothing new.
        for (const { node } of this.toStart.splice(0)) this.skipped(node, node.id, this.fatal ? 'the cache cannot be written' : 'interrupted');
      }
      while (this.toStart.length && this.running.size < this.opts.jobs) this.start(this.toStart.shift()!);
      if (this.running.size) await Promise.race(this.running.values());
    }
    if (this.fatal) throw this.fatal;
    return { reports: this.plan.ids.map((id) => this.reports.get(id)!).filter(Boolean), done: this.done };
  }

  // --- transitions: each ends a stage with its report and releases the stages waiting on it ---

  private finish(report: StageReport): void {
    this.reports.set(report.id, report);
    this.opts.onEvent({ type: 'stage-done', report });
    for (const next of this.pipeline.graph.successors(report.id) ?? []) {
      if (!this.selected.has(next)) continue;
      const left = this.pendingUp.get(next)! - 1;
      this.pendingUp.set(next, left);
      if (left === 0) this.ready.push(next);
    }
  }

  /** Its record was in the cache, or another podium process committed it while this one waited. */
  private cached(node: StageNode, got: Omit<Obtained, 'computed'>, reason: string, durationMs: number): void {
    this.done.set(node.id, { fingerprint: got.fingerprint, record: got.record });
    this.finish({ id: node.id, kind: node.kind.name, status: 'cached', key: got.record.key, reason, durationMs, ...(got.restored.length ? { restored: got.restored } : {}) });
  }

  private ran(node: StageNode, got: Obtained, reason: string): void {
    this.done.set(node.id, { fingerprint: got.fingerprint, record: got.record });
    this.finish({ id: node.id, kind: node.kind.name, status: 'ran', key: got.record.key, reason, durationMs: got.record.durationMs, metrics: got.record.metrics });
  }

  /** The stages below it are skipped, naming it. */
  private failed(node: StageNode, key: Digest | null, failure: StageFailure, durationMs: number): void {
    this.failedRoot.set(node.id, node.id);
    this.finish({ id: node.id, kind: node.kind.name, status: 'failed', key, reason: failure.message, durationMs, failure });
  }

  private skipped(node: StageNode, root: string, reason: string): void {
    this.failedRoot.set(node.id, root);
    this.finish({ id: node.id, kind: node.kind.name, status: 'skipped', key: null, reason, durationMs: 0 });
  }

  // --- deciding and running ---

  private upstream = (id: string): StageRecord | undefined => this.done.get(id)?.record ?? (this.selected.has(id) ? undefined : this.lockedRecord(id));

  /** A stage outside the selection (--only/--from) is read from the cache via the lock file. */
  private lockedRecord(id: string): StageRecord | undefined {
    const key = this.opts.lock?.stages[id]?.key;
    return key ? this.store.getRecord(key) : undefined;
  }

  /** Ends a stage that needs no slot (cached, skipped, dry run); returns it when it must run. */
  private decide(node: StageNode): Runnable | undefined {
    const locked = this.opts.lock?.stages[node.id];
    const state = stageState(this.pipeline, node, this.store, this.upstream, locked, this.plan.forced.has(node.id));
    if (state.staleInput) { this.decideWithoutKey(node, state.staleInput); return undefined; }
    const fingerprint = state.fingerprint!;
    const restored = state.record && this.restoreOrDrop(node, state.record);
    if (state.record && restored) { this.cached(node, { fingerprint, record: state.record, restored }, 'fresh', 0); return undefined; }
    // A record whose blob was corrupt was dropped: the stage runs again, as for any other miss.
    const reason = (state.record ? explainChange(fingerprint, node, locked) : state.reasons).join('; ');
    if (!this.opts.dryRun) return { node, fingerprint, reason };
    this.finish({ id: node.id, kind: node.kind.name, status: 'would-run', key: state.key!, reason, durationMs: 0 });
    return undefined;
  }

  /** An upstream stage has no result: it failed, it would run (dry run), or it was left out of the selection. */
  private decideWithoutKey(node: StageNode, stale: { input: string; upstream: string }): void {
    const root = this.failedRoot.get(stale.upstream);
    const base = { id: node.id, kind: node.kind.name, key: null, durationMs: 0 };
    if (root) this.skipped(node, root, `upstream stage ${root} failed`);
    else if (this.opts.dryRun) {
      // The upstream stage would run, but may well produce the same bytes (early cutoff): this
      // stage certainly runs only if something of its own changed.
      const own = this.plan.forced.has(node.id) ? ['forced'] : ownChanges(this.pipeline, node, this.store, this.opts.lock?.stages[node.id]);
      this.finish(own.length ? { ...base, status: 'would-run', reason: own.join('; ') } : { ...base, status: 'may-run', reason: `if the output of ${stale.upstream} changes` });
    } else this.failed(node, null, stageFailure('stage', `input "${stale.input}": stage ${stale.upstream} has no cached result (run it first, or drop --only/--from)`), 0);
  }

  private start(toRun: Runnable): void {
    const { node } = toRun;
    const seat = { slot: this.freeSlots.shift()!, threads: this.threadsFor() };
    const p = this.runOne(toRun, seat).finally(() => {
      this.running.delete(node.id);
      this.freeSlots.push(seat.slot);
      this.freeSlots.sort((a, b) => a - b);
    });
    this.running.set(node.id, p);
  }

  /**
   * Cores for a stage about to start: the machine's cores shared among the stages that will run
   * side by side — those running, this one, and those already waiting for a slot. (A stage started
   * alone keeps its share if another starts later; results never depend on the thread count.)
   */
  private threadsFor(): number {
    return Math.max(1, Math.floor(this.cores / Math.min(this.opts.jobs, this.running.size + 1 + this.toStart.length)));
  }

  private async runOne({ node, fingerprint, reason }: Runnable, seat: Seat): Promise<void> {
    const started = Date.now();
    this.opts.onEvent({ type: 'stage-start', id: node.id, kind: node.kind.name, reason, slot: seat.slot });
    let got: Obtained | StageFailure;
    try {
      got = await this.obtain(node, fingerprint, seat, this.plan.forced.has(node.id));
    } catch (e) {
      if (e instanceof CacheUnavailable) this.fatal ??= e;
      // The run ends with the cache's own one-line message; the stage just says it stopped.
      got = e instanceof CacheUnavailable ? stageFailure('interrupted', 'stopped: the cache cannot be written')
        : stageFailure(e instanceof CacheCorruption ? 'stage' : 'internal', (e as Error).message);
    }
    if ('record' in got) {
      if (got.computed) this.ran(node, got, reason);
      else this.cached(node, got, 'computed by another podium process', Date.now() - started);
    } else {
      // Whatever a stage stopped by an interrupt says of it is noise beside the interrupt.
      const failure = this.opts.signal.aborted ? stageFailure('interrupted', 'interrupted') : got;
      this.failed(node, stageKey(fingerprint), failure, Date.now() - started);
    }
  }

  /**
   * The stage's record: computed under its lease, or the one another podium process committed
   * while this one waited. An input blob found corrupt while the stage reads it is never used:
   * the blob is removed, the stage that produced it is re-executed, and the stage tries again.
   */
  private async obtain(node: StageNode, fingerprint: Fingerprint, seat: Seat, forced: boolean): Promise<Obtained | StageFailure> {
    for (let repairs = 0; ; repairs++) {
      const key = stageKey(fingerprint);
      const lease = await this.acquireLease(node, key, forced);
      if (lease.got === 'failure') return lease.failure;
      if (lease.got === 'record') return { fingerprint, record: lease.record, computed: false, restored: lease.restored };
      try {
        const gpu = this.opts.gpus?.length ? this.opts.gpus[seat.slot % this.opts.gpus.length] : undefined;
        // --force and --from mean from scratch; saved progress is for a stage never finished.
        const job = jobFor(this.pipeline, node, key, this.upstream, { resume: !forced, slot: seat.slot, gpu, threads: seat.threads });
        const outcome = await (this.opts.runStage ?? executeStage)(job, this.store, this.opts.signal, {
          log: (line) => this.opts.onEvent({ type: 'stage-log', id: node.id, line }),
          note: (line) => this.opts.onEvent({ type: 'stage-note', id: node.id, line }),
          progress: (update) => this.opts.onEvent({ type: 'stage-progress', id: node.id, update }),
        }, this.inputBlobsOf(node));
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
  private async acquireLease(node: StageNode, key: Digest, forced: boolean): Promise<{ got: 'lease' } | { got: 'record'; record: StageRecord; restored: string[] } | { got: 'failure'; failure: StageFailure }> {
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
      const who = holder ? `${holder.what ?? `stage ${node.id}`} held by pid ${holder.pid} since ${new Date(holder.since).toISOString()}` : `stage ${node.id}`;
      if (waitingSince === undefined) {
        waitingSince = Date.now();
        this.opts.onEvent({ type: 'warning', message: `${node.id}: waiting for ${who} (another podium process is computing it)` });
      } else if (Date.now() - waitingSince > this.opts.leaseTimeoutMs) {
        return { got: 'failure', failure: stageFailure('stage', `gave up after ${Math.round(this.opts.leaseTimeoutMs / 1000)} s waiting for ${who}; stop that process, or wait longer with --lease-timeout SECONDS`) };
      }
      await this.pause(LEASE_POLL_MS);
    }
  }

  /** A waiting or running stage sleeps in steps that an interrupt cuts short. */
  private pause(ms: number): Promise<void> {
    const { signal } = this.opts;
    return new Promise((resolve) => {
      const onAbort = (): void => { clearTimeout(t); resolve(); };
      // Removed when the timer fires: a long lease wait polls many times on one signal.
      const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
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
      return !!rec && (Object.values(rec.outputs).includes(e.digest as Digest) || rec.refs.includes(e.digest as Digest));
    });
    this.opts.onEvent({ type: 'warning', message: `${node.id}: ${e.message}; removed it, ${producers.length ? `re-executing ${producers.join(', ')}` : `running ${node.id} again`}` });
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
      this.repairing.set(id, redo().finally(() => this.repairing.delete(id)));
    }
    return (await Promise.all(producers.map((id) => this.repairing.get(id)))).find(Boolean);
  }

  /** Every blob a stage's inputs are or refer to: a cluster job fetches these from the shared store. */
  private inputBlobsOf(node: StageNode): Digest[] {
    const ids = Object.values(node.inputs).flatMap((i) => i.ids);
    return [...new Set(ids.flatMap((id) => { const rec = this.upstream(id)!; return [...Object.values(rec.outputs), ...rec.refs]; }))];
  }

  private blobIntact(digest: Digest): boolean {
    try { return this.store.getBlob(digest) !== undefined; } catch (err) { if (err instanceof CacheCorruption) return false; throw err; }
  }

  /** A lease left behind by a failed write dies with this process anyway (leases are checked for liveness). */
  private releaseQuietly(key: Digest): void {
    try { this.store.releaseLease(key); } catch (e) { if (!(e instanceof CacheUnavailable)) throw e; }
  }

  /**
   * A cached record's outs put back on disk; undefined when a blob they need is corrupt: then the
   * blob and the record are dropped and the stage runs again, as for any other miss.
   */
  private restoreOrDrop(node: StageNode, record: StageRecord): string[] | undefined {
    if (this.opts.dryRun) return [];
    try {
      return node.kind.restore?.({ projectDir: this.pipeline.projectDir, store: stageStoreOf(this.store) }, node.params, record) ?? [];
    } catch (e) {
      if (!(e instanceof CacheCorruption)) throw e;
      this.store.deleteBlob(e.digest as Digest);
      this.store.deleteRecord(record.key);
      this.opts.onEvent({ type: 'warning', message: `${node.id}: ${e.message}; removed it, the stage runs again` });
      return undefined;
    }
  }
}
