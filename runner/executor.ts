// The executor accepts only an analyzed pipeline and a plan. It walks the DAG, up to `jobs`
// stages at once: a stage whose key has a record is cached (its outs restored if needed);
// otherwise it runs under a lease, so a second podium process waits for the first instead of
// computing the same key twice, and its record is committed in one transaction on success.
import { availableParallelism } from 'node:os';

import { stageKey, type Fingerprint } from '../cache/fingerprint.js';
import type { LockFile } from '../cache/lockfile.js';
import type { Digest } from '../cache/canonical.js';
import { CacheCorruption, CacheUnavailable, type StageRecord, type Store } from '../cache/store.js';
import type { Pipeline, StageNode } from './analyze.js';
import type { StageReport } from './events.js';
import { explainChange, ownChanges } from './fingerprints.js';
import { RecordObtainer, type DoneRecords, type ObtainOptions, type Obtained, type Seat } from './obtain-record.js';
import type { Plan } from './plan.js';
import { stageFailure, type StageFailure } from './stage-failure.js';
import { stageState } from './state.js';

export interface ExecuteOptions extends ObtainOptions {
  jobs: number;
  lock: LockFile | undefined;
}

export interface Outcome {
  reports: StageReport[];
  /** Stages that have a record now, with the fingerprint it was found or made under. */
  done: DoneRecords;
}

/** A stage that must run, waiting for a slot. */
interface Runnable {
  node: StageNode;
  fingerprint: Fingerprint;
  reason: string;
}

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
  private readonly done: DoneRecords = new Map();
  private readonly reports = new Map<string, StageReport>();
  /** Selected upstream stages not finished yet, per stage. */
  private readonly pendingUp = new Map<string, number>();
  private readonly ready: string[];
  private readonly toStart: Runnable[] = [];
  private readonly running = new Map<string, Promise<void>>();
  private readonly freeSlots: number[];
  /** Failed stage → itself; skipped stage → the failed stage that caused it. */
  private readonly failedRoot = new Map<string, string>();
  /** A cache that cannot be written ends the run once running stages have stopped. */
  private fatal: CacheUnavailable | undefined;
  private readonly cores = availableParallelism();
  private readonly obtainer: RecordObtainer;

  constructor(
    private readonly pipeline: Pipeline,
    private readonly plan: Plan,
    private readonly store: Store,
    private readonly opts: ExecuteOptions,
  ) {
    this.selected = new Set(plan.ids);
    for (const id of plan.ids)
      this.pendingUp.set(id, (pipeline.graph.predecessors(id) ?? []).filter((p) => this.selected.has(p)).length);
    this.ready = plan.ids.filter((id) => this.pendingUp.get(id) === 0);
    this.freeSlots = Array.from({ length: opts.jobs }, (_, i) => i);
    this.obtainer = new RecordObtainer(pipeline, store, opts, this.done, this.upstream);
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
        for (const { node } of this.toStart.splice(0))
          this.skipped(node, node.id, this.fatal ? 'the cache cannot be written' : 'interrupted');
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
    this.finish({
      id: node.id,
      kind: node.kind.name,
      status: 'cached',
      key: got.record.key,
      reason,
      durationMs,
      ...(got.restored.length ? { restored: got.restored } : {}),
    });
  }

  private ran(node: StageNode, got: Obtained, reason: string): void {
    this.done.set(node.id, { fingerprint: got.fingerprint, record: got.record });
    this.finish({
      id: node.id,
      kind: node.kind.name,
      status: 'ran',
      key: got.record.key,
      reason,
      durationMs: got.record.durationMs,
      metrics: got.record.metrics,
    });
  }

  /** The stages below it are skipped, naming it. */
  private failed(node: StageNode, key: Digest | null, failure: StageFailure, durationMs: number): void {
    this.failedRoot.set(node.id, node.id);
    this.finish({
      id: node.id,
      kind: node.kind.name,
      status: 'failed',
      key,
      reason: failure.message,
      durationMs,
      failure,
    });
  }

  private skipped(node: StageNode, root: string, reason: string): void {
    this.failedRoot.set(node.id, root);
    this.finish({ id: node.id, kind: node.kind.name, status: 'skipped', key: null, reason, durationMs: 0 });
  }

  // --- deciding and running ---

  private upstream = (id: string): StageRecord | undefined =>
    this.done.get(id)?.record ?? (this.selected.has(id) ? undefined : this.lockedRecord(id));

  /** A stage outside the selection (--only/--from) is read from the cache via the lock file. */
  private lockedRecord(id: string): StageRecord | undefined {
    const key = this.opts.lock?.stages[id]?.key;
    return key ? this.store.getRecord(key) : undefined;
  }

  /** Ends a stage that needs no slot (cached, skipped, dry run); returns it when it must run. */
  private decide(node: StageNode): Runnable | undefined {
    const locked = this.opts.lock?.stages[node.id];
    const state = stageState(this.pipeline, node, this.store, this.upstream, locked, this.plan.forced.has(node.id));
    if (state.staleInput) {
      this.decideWithoutKey(node, state.staleInput);
      return undefined;
    }
    const fingerprint = state.fingerprint!;
    const restored = state.record && this.obtainer.restoreOrDrop(node, state.record);
    if (state.record && restored) {
      this.cached(node, { fingerprint, record: state.record, restored }, 'fresh', 0);
      return undefined;
    }
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
      const own = this.plan.forced.has(node.id)
        ? ['forced']
        : ownChanges(this.pipeline, node, this.store, this.opts.lock?.stages[node.id]);
      this.finish(
        own.length
          ? { ...base, status: 'would-run', reason: own.join('; ') }
          : { ...base, status: 'may-run', reason: `if the output of ${stale.upstream} changes` },
      );
    } else
      this.failed(
        node,
        null,
        stageFailure(
          'stage',
          `input "${stale.input}": stage ${stale.upstream} has no cached result (run it first, or drop --only/--from)`,
        ),
        0,
      );
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
      got = await this.obtainer.obtain(node, fingerprint, seat, this.plan.forced.has(node.id));
    } catch (e) {
      if (e instanceof CacheUnavailable) this.fatal ??= e;
      // The run ends with the cache's own one-line message; the stage just says it stopped.
      got =
        e instanceof CacheUnavailable
          ? stageFailure('interrupted', 'stopped: the cache cannot be written')
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
}
