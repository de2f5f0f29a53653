// The executor accepts only an analyzed pipeline and a plan. It walks the DAG, up to `jobs`
// stages at once: a stage whose key has a record is cached (its outs restored if needed);
// otherwise it runs under a lease, so a second podium process waits for the first instead of
// computing the same key twice, and its record is committed in one transaction on success.
import { availableParallelism } from 'node:os';

import { stageKey, type Fingerprint } from '../cache/fingerprint.js';
import type { LockFile } from '../cache/lockfile.js';
import type { StageRecord, Store } from '../cache/store.js';
import type { Pipeline, StageNode } from './analyze.js';
import type { EventSink, StageReport } from './events.js';
import { executeStage, StageFailure } from './execute-stage.js';
import { explainChange, fingerprintOf, inputValues } from './fingerprints.js';
import type { Plan } from './plan.js';

export interface ExecuteOptions {
  jobs: number;
  gpus?: string[];
  dryRun: boolean;
  lock: LockFile | undefined;
  onEvent: EventSink;
  signal: AbortSignal;
}

export interface Outcome {
  reports: StageReport[];
  /** Stages that have a record now, with the fingerprint it was found or made under. */
  done: Map<string, { fingerprint: Fingerprint; record: StageRecord }>;
}

const LEASE_POLL_MS = 200;

export async function execute(pipeline: Pipeline, plan: Plan, store: Store, opts: ExecuteOptions): Promise<Outcome> {
  const selected = new Set(plan.ids);
  const done: Outcome['done'] = new Map();
  const reports = new Map<string, StageReport>();
  const pendingUp = new Map<string, number>();
  for (const id of plan.ids) pendingUp.set(id, (pipeline.graph.predecessors(id) ?? []).filter((p) => selected.has(p)).length);

  const upstream = (id: string): StageRecord | undefined => done.get(id)?.record ?? (selected.has(id) ? undefined : lockedRecord(id));
  // A stage outside the selection (--only/--from) is read from the cache via the lock file.
  const lockedRecord = (id: string): StageRecord | undefined => {
    const key = opts.lock?.stages[id]?.key;
    return key ? store.getRecord(key) : undefined;
  };

  const ready: string[] = plan.ids.filter((id) => pendingUp.get(id) === 0);
  const toStart: Array<{ node: StageNode; fingerprint: Fingerprint; reason: string }> = [];
  const running = new Map<string, Promise<void>>();
  const freeSlots = Array.from({ length: opts.jobs }, (_, i) => i);

  const finish = (report: StageReport): void => {
    reports.set(report.id, report);
    opts.onEvent({ type: 'stage-done', report });
    for (const next of pipeline.graph.successors(report.id) ?? []) {
      if (!selected.has(next)) continue;
      const left = pendingUp.get(next)! - 1;
      pendingUp.set(next, left);
      if (left === 0) ready.push(next);
    }
  };

  /** Failed stage → itself; skipped stage → the failed stage that caused it. */
  const failedRoot = new Map<string, string>();

  /** Handles a stage that can be decided without a slot; returns false when it must run. */
  const decide = (node: StageNode): { fingerprint: Fingerprint; reason: string } | undefined => {
    const fp = fingerprintOf(pipeline, node, store, upstream);
    if (!fp.ok) {
      const root = failedRoot.get(fp.upstream);
      const base = { id: node.id, kind: node.kind.name, key: null, durationMs: 0 };
      if (root) {
        failedRoot.set(node.id, root);
        finish({ ...base, status: 'skipped', reason: `upstream stage ${root} failed` });
      } else if (opts.dryRun) finish({ ...base, status: 'would-run', reason: `input "${fp.input}" will change (stage ${fp.upstream} would run)` });
      else finish({ id: node.id, kind: node.kind.name, status: 'failed', key: null, reason: `input "${fp.input}": stage ${fp.upstream} has no cached result (run it first, or drop --only/--from)`, durationMs: 0 });
      return undefined;
    }
    const key = stageKey(fp.fingerprint);
    const forced = plan.forced.has(node.id);
    const record = forced ? undefined : store.getRecord(key);
    if (record) {
      const restored = opts.dryRun ? [] : node.kind.restore?.({ projectDir: pipeline.projectDir, store }, node.params, record) ?? [];
      done.set(node.id, { fingerprint: fp.fingerprint, record });
      finish({ id: node.id, kind: node.kind.name, status: 'cached', key, reason: 'fresh', durationMs: 0, ...(restored.length ? { restored } : {}) });
      return undefined;
    }
    const reason = forced ? 'forced' : explainChange(fp.fingerprint, node, opts.lock?.stages[node.id]).join('; ');
    if (opts.dryRun) {
      finish({ id: node.id, kind: node.kind.name, status: 'would-run', key, reason, durationMs: 0 });
      return undefined;
    }
    return { fingerprint: fp.fingerprint, reason };
  };

  /**
   * Cores for a stage about to start: the machine's cores shared among the stages that will run
   * side by side — those running, this one, and those already waiting for a slot. (A stage started
   * alone keeps its share if another starts later; results never depend on the thread count.)
   */
  const cores = availableParallelism();
  const threadsFor = (): number => Math.max(1, Math.floor(cores / Math.min(opts.jobs, running.size + 1 + toStart.length)));

  const runOne = async (node: StageNode, fingerprint: Fingerprint, reason: string, slot: number, threads: number): Promise<void> => {
    const key = stageKey(fingerprint);
    const started = Date.now();
    opts.onEvent({ type: 'stage-start', id: node.id, kind: node.kind.name, reason, slot });
    try {
      // Another podium process may be computing this very key: wait for its record instead.
      // The record is checked again once the lease is ours, in case it finished in between.
      for (;;) {
        const leased = store.tryLease(key);
        const theirs = plan.forced.has(node.id) ? undefined : store.getRecord(key);
        if (theirs) {
          if (leased) store.releaseLease(key);
          const restored = node.kind.restore?.({ projectDir: pipeline.projectDir, store }, node.params, theirs) ?? [];
          done.set(node.id, { fingerprint, record: theirs });
          finish({ id: node.id, kind: node.kind.name, status: 'cached', key, reason: 'computed by another podium process', durationMs: Date.now() - started, ...(restored.length ? { restored } : {}) });
          return;
        }
        if (leased) break;
        await new Promise((r) => setTimeout(r, LEASE_POLL_MS));
      }
      try {
        const gpu = opts.gpus?.length ? opts.gpus[slot % opts.gpus.length] : undefined;
        const record = await executeStage({
          kind: node.kind, stageId: node.id, key, resume: true, params: node.params, inputs: inputValues(node, upstream),
          seed: pipeline.seed, projectDir: pipeline.projectDir, slot, gpu, threads,
        }, store, opts.signal, (line) => opts.onEvent({ type: 'stage-log', id: node.id, line }));
        store.commitRecord(record);
        done.set(node.id, { fingerprint, record });
        finish({ id: node.id, kind: node.kind.name, status: 'ran', key, reason, durationMs: record.durationMs, metrics: record.metrics });
      } finally {
        store.releaseLease(key);
      }
    } catch (e) {
      const f = e instanceof StageFailure ? e : new StageFailure((e as Error).message, []);
      failedRoot.set(node.id, node.id);
      finish({ id: node.id, kind: node.kind.name, status: 'failed', key, reason: f.message, durationMs: Date.now() - started, logTail: f.logTail, ...(f.inputError ? { inputError: true } : {}) });
    }
  };

  while (ready.length || toStart.length || running.size) {
    // Decide everything decidable first: cached stages need no slot, and deciding them may free more.
    while (ready.length) {
      const node = pipeline.byId.get(ready.shift()!)!;
      const toRun = decide(node);
      if (toRun) toStart.push({ node, ...toRun });
    }
    if (opts.signal.aborted) {
      // Interrupted: let running stages wind down, start nothing new.
      for (const { node } of toStart.splice(0)) {
        failedRoot.set(node.id, node.id);
        finish({ id: node.id, kind: node.kind.name, status: 'skipped', key: null, reason: 'interrupted', durationMs: 0 });
      }
    }
    while (toStart.length && running.size < opts.jobs) {
      const { node, fingerprint, reason } = toStart.shift()!;
      const slot = freeSlots.shift()!;
      const p = runOne(node, fingerprint, reason, slot, threadsFor()).finally(() => { running.delete(node.id); freeSlots.push(slot); freeSlots.sort((a, b) => a - b); });
      running.set(node.id, p);
    }
    if (running.size) await Promise.race(running.values());
  }

  return { reports: plan.ids.map((id) => reports.get(id)!).filter(Boolean), done };
}
