// The pipeline's state against the cache, without running anything: per stage its fingerprint
// (when its inputs are known), key, record if cached, and why it is stale. status, show and diff
// (with no second lock) are views of this.
import type { Digest } from '../cache/canonical.js';
import { stageKey, type Fingerprint } from '../cache/fingerprint.js';
import type { LockFile, LockStage } from '../cache/lockfile.js';
import type { StageRecord, Store } from '../cache/store.js';
import type { Pipeline, StageNode } from './analyze.js';
import { explainChange, fingerprintOf } from './fingerprints.js';

export interface StageState {
  node: StageNode;
  fresh: boolean;
  fingerprint?: Fingerprint;
  key?: Digest;
  record?: StageRecord;
  /** The input whose upstream stage has no result yet, so this stage's key is not known. */
  staleInput?: { input: string; upstream: string };
  reasons: string[];
}

export function pipelineState(pipeline: Pipeline, store: Store, lock: LockFile | undefined): StageState[] {
  const records = new Map<string, StageRecord>();
  return pipeline.stages.map((node): StageState => {
    const state = stageState(pipeline, node, store, (id) => records.get(id), lock?.stages[node.id]);
    if (state.record) records.set(node.id, state.record);
    return state;
  });
}

/**
 * One stage's state, its inputs read from the upstream records `upstream` gives. forced (--force,
 * --from): its record does not count, the stage is stale whatever the cache holds.
 */
export function stageState(
  pipeline: Pipeline,
  node: StageNode,
  store: Store,
  upstream: (id: string) => StageRecord | undefined,
  locked: LockStage | undefined,
  forced = false,
): StageState {
  const fp = fingerprintOf(pipeline, node, store, upstream);
  if (!fp.ok)
    return {
      node,
      fresh: false,
      staleInput: { input: fp.input, upstream: fp.upstream },
      reasons: [`input "${fp.input}" is stale (stage ${fp.upstream})`],
    };
  const key = stageKey(fp.fingerprint);
  const record = forced ? undefined : store.getRecord(key);
  if (record) return { node, fresh: true, fingerprint: fp.fingerprint, key, record, reasons: [] };
  return {
    node,
    fresh: false,
    fingerprint: fp.fingerprint,
    key,
    reasons: forced ? ['forced'] : explainChange(fp.fingerprint, node, locked),
  };
}

/** The state as a lock file would record it; stale stages keep what is known of them. */
export function stateAsLock(pipeline: Pipeline, states: StageState[]): LockFile {
  const stages: Record<string, LockStage> = {};
  for (const s of states) {
    if (!s.fingerprint || !s.key) continue;
    stages[s.node.id] = {
      ...s.fingerprint,
      key: s.key,
      outputs: s.record?.outputs ?? {},
      metrics: s.record?.metrics ?? {},
    };
  }
  return { pipeline: pipeline.name, seed: pipeline.seed, stages };
}
