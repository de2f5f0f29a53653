// The pipeline's state against the cache, without running anything: per stage its fingerprint
// (when its inputs are known), key, record if cached, and why it is stale. status, show and diff
// (with no second lock) are views of this.
import { stageKey, type Fingerprint } from '../cache/fingerprint.js';
import type { LockFile, LockStage } from '../cache/lockfile.js';
import type { StageRecord, Store } from '../cache/store.js';
import type { Pipeline, StageNode } from './analyze.js';
import { explainChange, fingerprintOf } from './fingerprints.js';

export interface StageState {
  node: StageNode;
  fresh: boolean;
  fingerprint?: Fingerprint;
  key?: string;
  record?: StageRecord;
  reasons: string[];
}

export function pipelineState(pipeline: Pipeline, store: Store, lock: LockFile | undefined): StageState[] {
  const records = new Map<string, StageRecord>();
  return pipeline.stages.map((node): StageState => {
    const fp = fingerprintOf(pipeline, node, store, (id) => records.get(id));
    if (!fp.ok) return { node, fresh: false, reasons: [`input "${fp.input}" is stale (stage ${fp.upstream})`] };
    const key = stageKey(fp.fingerprint);
    const record = store.getRecord(key);
    if (record) {
      records.set(node.id, record);
      return { node, fresh: true, fingerprint: fp.fingerprint, key, record, reasons: [] };
    }
    return { node, fresh: false, fingerprint: fp.fingerprint, key, reasons: explainChange(fp.fingerprint, node, lock?.stages[node.id]) };
  });
}

/** The state as a lock file would record it; stale stages keep what is known of them. */
export function stateAsLock(pipeline: Pipeline, states: StageState[]): LockFile {
  const stages: Record<string, LockStage> = {};
  for (const s of states) {
    if (!s.fingerprint || !s.key) continue;
    stages[s.node.id] = { ...s.fingerprint, key: s.key as LockStage['key'], outputs: s.record?.outputs ?? {}, metrics: s.record?.metrics ?? {} };
  }
  return { pipeline: pipeline.name, seed: pipeline.seed, stages };
}
