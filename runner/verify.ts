// `podium verify`: re-execute stages without using their cached records and compare each output
// with the lock file, byte for byte (by digest). Every blob the lock names is re-hashed first: a
// tampered cache is reported and the bad blob removed, never used.
import { availableParallelism } from 'node:os';

import type { Digest } from '../cache/canonical.js';
import { stageKey } from '../cache/fingerprint.js';
import { CacheCorruption, type StageRecord } from '../cache/store.js';
import { lockOf, loadPipeline, openStore, type CommonOptions } from './context.js';
import { UsageError } from './diagnostics.js';
import { executeStage, StageFailure } from './execute-stage.js';
import { fingerprintOf, inputValues } from './fingerprints.js';
import { resolveIds } from './plan.js';

export interface VerifyStage {
  id: string;
  result: 'identical' | 'different' | 'failed' | 'stale';
  detail: string;
  differing: Array<{ name: string; locked: string | null; now: string | null }>;
}
export interface VerifyReport { pipeline: string; ok: boolean; stages: VerifyStage[]; corruptBlobs: Array<{ digest: string; message: string }> }

export async function verify(file: string | undefined, opts: CommonOptions & { stages?: string[] }, signal: AbortSignal): Promise<VerifyReport> {
  const pipeline = loadPipeline(file, opts);
  const { path: lockPath, lock } = lockOf(pipeline);
  if (!lock) throw new UsageError(`${lockPath}: no lock file; run the pipeline first (podium run ${file})`);
  const chosen = new Set(opts.stages?.length ? resolveIds(pipeline, opts.stages, '--stages') : pipeline.stages.map((s) => s.id));
  const store = openStore(opts);
  try {
    const corruptBlobs: VerifyReport['corruptBlobs'] = [];
    const lockedRecords = new Map<string, StageRecord>();
    for (const [id, entry] of Object.entries(lock.stages)) {
      const rec = store.getRecord(entry.key);
      if (!rec) continue;
      let intact = true;
      for (const d of new Set<Digest>([...Object.values(rec.outputs), ...rec.refs])) {
        try { store.getBlob(d, { verify: true }); } catch (e) {
          if (!(e instanceof CacheCorruption)) throw e;
          corruptBlobs.push({ digest: d, message: `${e.message} (stage ${id})` });
          store.deleteBlob(d);
          intact = false;
        }
      }
      if (intact) lockedRecords.set(id, rec); else store.deleteRecord(rec.key);
    }

    const stages: VerifyStage[] = [];
    for (const node of pipeline.stages) {
      if (!chosen.has(node.id)) continue;
      const locked = lock.stages[node.id];
      const none = { differing: [] };
      if (!locked) { stages.push({ id: node.id, result: 'stale', detail: 'not in the lock file; run the pipeline first', ...none }); continue; }
      // Inputs come from the locked results, so each stage is checked on exactly what it saw.
      const fp = fingerprintOf(pipeline, node, store, (id) => lockedRecords.get(id));
      if (!fp.ok) { stages.push({ id: node.id, result: 'stale', detail: `input "${fp.input}": stage ${fp.upstream} has no intact cached result`, ...none }); continue; }
      const key = stageKey(fp.fingerprint);
      if (key !== locked.key) { stages.push({ id: node.id, result: 'stale', detail: 'the pipeline or its deps changed since the lock was written; run it first', ...none }); continue; }
      let record: StageRecord;
      try {
        record = await executeStage({ kind: node.kind, stageId: node.id, key, resume: false, params: node.params, inputs: inputValues(node, (id) => lockedRecords.get(id)), seed: pipeline.seed, projectDir: pipeline.projectDir, slot: 0, gpu: undefined, threads: availableParallelism() }, store, signal, () => {});
      } catch (e) {
        stages.push({ id: node.id, result: 'failed', detail: e instanceof StageFailure ? e.message : String(e), ...none });
        continue;
      } finally {
        // Leave the workspace as the lock describes it, whatever the re-execution wrote.
        const rec = lockedRecords.get(node.id);
        if (rec) node.kind.restore?.({ projectDir: pipeline.projectDir, store }, node.params, rec);
      }
      const names = [...new Set([...Object.keys(locked.outputs), ...Object.keys(record.outputs)])].sort();
      const differing = names.filter((n) => locked.outputs[n] !== record.outputs[n]).map((name) => ({ name, locked: locked.outputs[name] ?? null, now: record.outputs[name] ?? null }));
      stages.push({ id: node.id, result: differing.length ? 'different' : 'identical', detail: differing.length ? `${differing.length} of ${names.length} outputs differ` : `${names.length} outputs identical`, differing });
    }
    const ok = corruptBlobs.length === 0 && stages.every((s) => s.result === 'identical');
    return { pipeline: pipeline.name, ok, stages, corruptBlobs };
  } finally {
    await store.close();
  }
}

export function formatVerify(r: VerifyReport): string {
  const lines: string[] = [];
  for (const c of r.corruptBlobs) lines.push(`corrupt cache: ${c.message}; removed`);
  for (const s of r.stages) {
    lines.push(`${s.result.padEnd(9)}  ${s.id}: ${s.detail}`);
    for (const d of s.differing) lines.push(`    ${d.name}: locked ${d.locked?.slice(0, 12) ?? '(none)'}, now ${d.now?.slice(0, 12) ?? '(none)'}`);
  }
  lines.push(r.ok ? `${r.pipeline}: reproducible (${r.stages.length} stages byte-identical)` : `${r.pipeline}: NOT reproducible`);
  return lines.join('\n');
}
