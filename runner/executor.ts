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
import { executeStage, StageFailure } from './execute-stage.js';
import { explainChange, fingerprintOf, inputValues, ownChanges } from './fingerprints.js';
import type { Plan } from './plan.js';

export interface ExecuteOptions {
  jobs: number;
  gpus?: string[];
  dryRun: boolean;
  lock: LockFile | undefined;
  onEvent: EventSink;
  signal: AbortSignal;
  /** How long to wait for a stage another live process is computing before failing it. */
  leaseTimeoutMs: number;
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

  /** A cache that cannot be written ends the run once running stages have stopped. */
  let fatal: CacheUnavailable | undefined;

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
      } else if (opts.dryRun) {
        // The upstream stage would run, but may well produce the same bytes (early cutoff): this
        // stage certainly runs only if something of its own changed.
        const own = plan.forced.has(node.id) ? ['forced'] : ownChanges(pipeline, node, store, opts.lock?.stages[node.id]);
        finish(own.length ? { ...base, status: 'would-run', reason: own.join('; ') } : { ...base, status: 'may-run', reason: `if the output of ${fp.upstream} changes` });
      }
      else finish({ id: node.id, kind: node.kind.name, status: 'failed', key: null, reason: `input "${fp.input}": stage ${fp.upstream} has no cached result (run it first, or drop --only/--from)`, durationMs: 0 });
      return undefined;
    }
    const key = stageKey(fp.fingerprint);
    const forced = plan.forced.has(node.id);
    const record = forced ? undefined : store.getRecord(key);
    const restored = record && restoreOrDrop(node, record);
    if (record && restored) {
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

  /** A waiting or running stage sleeps in steps that an interrupt cuts short. */
  const pause = (ms: number): Promise<void> => new Promise((resolve) => {
    const onAbort = (): void => { clearTimeout(t); resolve(); };
    // Removed when the timer fires: a long lease wait polls many times on one signal.
    const t = setTimeout(() => { opts.signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    opts.signal.addEventListener('abort', onAbort, { once: true });
  });

  /**
   * The stage's record: computed under its lease, or the one another podium process committed
   * while this one waited. An input blob found corrupt while the stage reads it is never used:
   * the blob is removed, the stage that produced it is re-executed, and the stage tries again.
   */
  const obtain = async (node: StageNode, fingerprint: Fingerprint, slot: number, threads: number, forced: boolean): Promise<Obtained> => {
    for (let repairs = 0; ; repairs++) {
      const key = stageKey(fingerprint);
      const theirs = await acquireLease(node, key, forced);
      if (theirs) return { fingerprint, record: theirs.record, computed: false, restored: theirs.restored };
      try {
        const gpu = opts.gpus?.length ? opts.gpus[slot % opts.gpus.length] : undefined;
        // --force and --from mean from scratch; saved progress is for a stage never finished.
        const record = await executeStage({
          kind: node.kind, stageId: node.id, key, resume: !forced, params: node.params, inputs: inputValues(node, upstream),
          seed: pipeline.seed, projectDir: pipeline.projectDir, slot, gpu, threads,
        }, store, opts.signal, {
          log: (line) => opts.onEvent({ type: 'stage-log', id: node.id, line }),
          note: (line) => opts.onEvent({ type: 'stage-note', id: node.id, line }),
          progress: (update) => opts.onEvent({ type: 'stage-progress', id: node.id, update }),
        });
        store.commitRecord(record);
        return { fingerprint, record, computed: true, restored: [] };
      } catch (e) {
        if (!(e instanceof CacheCorruption) || repairs >= MAX_REPAIRS || opts.signal.aborted) throw e;
        await repairInput(node, e, slot, threads);
        const fp = fingerprintOf(pipeline, node, store, upstream);
        if (!fp.ok) throw e;
        fingerprint = fp.fingerprint;
      } finally {
        releaseQuietly(key);
      }
    }
  };

  /**
   * Takes the key's lease, waiting (interruptibly, up to the lease timeout) while another live
   * process holds it. Returns that process's record when it committed one meanwhile.
   */
  const acquireLease = async (node: StageNode, key: Digest, forced: boolean): Promise<{ record: StageRecord; restored: string[] } | undefined> => {
    let waitingSince: number | undefined;
    for (;;) {
      if (opts.signal.aborted) throw new StageFailure('interrupted', []);
      const leased = store.tryLease(key, `stage ${node.id} of ${pipeline.file}`);
      const theirs = forced ? undefined : store.getRecord(key);
      if (theirs) {
        if (leased) releaseQuietly(key);
        const restored = restoreOrDrop(node, theirs);
        if (restored) return { record: theirs, restored };
      }
      if (leased) return undefined;
      const holder = store.leaseHolder(key);
      const who = holder ? `${holder.what ?? `stage ${node.id}`} held by pid ${holder.pid} since ${new Date(holder.since).toISOString()}` : `stage ${node.id}`;
      if (waitingSince === undefined) {
        waitingSince = Date.now();
        opts.onEvent({ type: 'warning', message: `${node.id}: waiting for ${who} (another podium process is computing it)` });
      } else if (Date.now() - waitingSince > opts.leaseTimeoutMs) {
        throw new StageFailure(`gave up after ${Math.round(opts.leaseTimeoutMs / 1000)} s waiting for ${who}; stop that process, or wait longer with --lease-timeout SECONDS`, []);
      }
      await pause(LEASE_POLL_MS);
    }
  };

  /** Producers being re-executed after a corrupt blob, so that stages meeting it together repair it once. */
  const repairing = new Map<string, Promise<void>>();

  /** Drops the corrupt blob and the records naming it, and re-executes the stages that made them. */
  const repairInput = async (node: StageNode, e: CacheCorruption, slot: number, threads: number): Promise<void> => {
    const inputIds = [...new Set(Object.values(node.inputs).flatMap((i) => i.ids))];
    // Another stage running beside this one may have met the same blob first.
    const inFlight = inputIds.filter((id) => repairing.has(id));
    if (inFlight.length) { await Promise.all(inFlight.map((id) => repairing.get(id))); return; }
    if (blobIntact(e.digest as Digest)) return;
    store.deleteBlob(e.digest as Digest);
    const producers = inputIds.filter((id) => {
      const rec = upstream(id);
      return !!rec && (Object.values(rec.outputs).includes(e.digest as Digest) || rec.refs.includes(e.digest as Digest));
    });
    opts.onEvent({ type: 'warning', message: `${node.id}: ${e.message}; removed it, ${producers.length ? `re-executing ${producers.join(', ')}` : `running ${node.id} again`}` });
    for (const id of producers) {
      const redo = async (): Promise<void> => {
        store.deleteRecord(upstream(id)!.key);
        done.delete(id);
        const producer = pipeline.byId.get(id)!;
        const fp = fingerprintOf(pipeline, producer, store, upstream);
        if (!fp.ok) throw e;
        const redone = await obtain(producer, fp.fingerprint, slot, threads, true);
        done.set(id, { fingerprint: redone.fingerprint, record: redone.record });
      };
      repairing.set(id, redo().finally(() => repairing.delete(id)));
    }
    await Promise.all(producers.map((id) => repairing.get(id)));
  };

  const blobIntact = (digest: Digest): boolean => {
    try { return store.getBlob(digest) !== undefined; } catch (err) { if (err instanceof CacheCorruption) return false; throw err; }
  };

  const runOne = async (node: StageNode, fingerprint: Fingerprint, reason: string, slot: number, threads: number): Promise<void> => {
    const started = Date.now();
    opts.onEvent({ type: 'stage-start', id: node.id, kind: node.kind.name, reason, slot });
    try {
      const got = await obtain(node, fingerprint, slot, threads, plan.forced.has(node.id));
      done.set(node.id, { fingerprint: got.fingerprint, record: got.record });
      const key = got.record.key;
      if (got.computed) finish({ id: node.id, kind: node.kind.name, status: 'ran', key, reason, durationMs: got.record.durationMs, metrics: got.record.metrics });
      else finish({ id: node.id, kind: node.kind.name, status: 'cached', key, reason: 'computed by another podium process', durationMs: Date.now() - started, ...(got.restored.length ? { restored: got.restored } : {}) });
    } catch (e) {
      if (e instanceof CacheUnavailable) fatal ??= e;
      const interrupted = opts.signal.aborted;
      // The run ends with the cache's own one-line message; the stage just says it stopped.
      const f = e instanceof StageFailure ? e : new StageFailure(e instanceof CacheUnavailable ? 'stopped: the cache cannot be written' : (e as Error).message, []);
      failedRoot.set(node.id, node.id);
      finish({ id: node.id, kind: node.kind.name, status: 'failed', key: stageKey(fingerprint), reason: interrupted ? 'interrupted' : f.message, durationMs: Date.now() - started, logTail: interrupted ? [] : f.logTail, ...(f.inputError ? { inputError: true } : {}) });
    }
  };

  /** A lease left behind by a failed write dies with this process anyway (leases are checked for liveness). */
  const releaseQuietly = (key: Digest): void => {
    try { store.releaseLease(key); } catch (e) { if (!(e instanceof CacheUnavailable)) throw e; }
  };

  /**
   * A cached record's outs put back on disk; undefined when a blob they need is corrupt: then the
   * blob and the record are dropped and the stage runs again, as for any other miss.
   */
  const restoreOrDrop = (node: StageNode, record: StageRecord): string[] | undefined => {
    if (opts.dryRun) return [];
    try {
      return node.kind.restore?.({ projectDir: pipeline.projectDir, store: stageStoreOf(store) }, node.params, record) ?? [];
    } catch (e) {
      if (!(e instanceof CacheCorruption)) throw e;
      store.deleteBlob(e.digest as Digest);
      store.deleteRecord(record.key);
      opts.onEvent({ type: 'warning', message: `${node.id}: ${e.message}; removed it, the stage runs again` });
      return undefined;
    }
  };

  while (ready.length || toStart.length || running.size) {
    // Decide everything decidable first: cached stages need no slot, and deciding them may free more.
    while (ready.length) {
      const node = pipeline.byId.get(ready.shift()!)!;
      const toRun = decide(node);
      if (toRun) toStart.push({ node, ...toRun });
    }
    if (opts.signal.aborted || fatal) {
      // Interrupted, or the cache cannot be written: let running stages wind down, start nothing new.
      for (const { node } of toStart.splice(0)) {
        failedRoot.set(node.id, node.id);
        finish({ id: node.id, kind: node.kind.name, status: 'skipped', key: null, reason: fatal ? 'the cache cannot be written' : 'interrupted', durationMs: 0 });
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

  if (fatal) throw fatal;
  return { reports: plan.ids.map((id) => reports.get(id)!).filter(Boolean), done };
}
