// `podium verify`: re-execute stages without using their cached records and compare each output
// with the lock file, byte for byte (by digest). Every blob the lock names is re-hashed first: a
// tampered cache is reported and the bad blob removed, never used.
import { availableParallelism } from 'node:os';

import type { Digest } from '../cache/canonical.js';
import { stageStoreOf } from '../cache/local-stage-store.js';
import { stageKey } from '../cache/fingerprint.js';
import { CacheCorruption, type StageRecord } from '../cache/store.js';
import { resolve } from 'node:path';
import { canonicalJson } from '../cache/canonical.js';
import { lockOf, loadPipeline, openRegistered, type CommonOptions } from './context.js';
import { UsageError } from './diagnostics.js';
import { executeStage, jobFor } from './execute-stage.js';
import { fingerprintOf } from './fingerprints.js';
import { resolveIds } from './plan.js';

export interface VerifyStage {
  id: string;
  result: 'identical' | 'different' | 'failed' | 'stale';
  detail: string;
  differing: Array<{ name: string; locked: string | null; now: string | null }>;
}
export interface VerifyReport {
  pipeline: string;
  ok: boolean;
  stages: VerifyStage[];
  corruptBlobs: Array<{ digest: string; message: string }>;
  /** Project files whose content differed from the lock before verify ran (edited in place): put back. */
  repaired: Array<{ stage: string; path: string }>;
}

export async function verify(
  file: string | undefined,
  opts: CommonOptions & { stages?: string[] },
  signal: AbortSignal,
): Promise<VerifyReport> {
  const pipeline = loadPipeline(file, opts);
  const { path: lockPath, lock } = lockOf(pipeline);
  if (!lock) throw new UsageError(`${lockPath}: no lock file; run the pipeline first (podium run ${file})`);
  const chosen = new Set(
    opts.stages?.length ? resolveIds(pipeline, opts.stages, '--stages') : pipeline.stages.map((s) => s.id),
  );
  const runId = `verify-${new Date().toISOString()}-${process.pid}`;
  const store = await openRegistered(
    opts,
    pipeline.projectDir,
    runId,
    `podium verify ${pipeline.file}`,
    () => {},
    signal,
  );
  if (!store) throw new UsageError('interrupted');
  try {
    const corruptBlobs: VerifyReport['corruptBlobs'] = [];
    const lockedRecords = new Map<string, StageRecord>();
    for (const [id, entry] of Object.entries(lock.stages)) {
      const rec = store.getRecord(entry.key);
      if (!rec) continue;
      let intact = true;
      for (const d of new Set<Digest>([...Object.values(rec.outputs), ...rec.refs])) {
        try {
          store.getBlob(d, { verify: true });
        } catch (e) {
          if (!(e instanceof CacheCorruption)) throw e;
          corruptBlobs.push({ digest: d, message: `${e.message} (stage ${id})` });
          store.deleteBlob(d);
          intact = false;
        }
      }
      if (intact) lockedRecords.set(id, rec);
      else store.deleteRecord(rec.key);
    }

    // Outs on disk are checked by content, not by the stat memo, which an in-place edit that
    // keeps size, mtime and inode would fool; whatever differs from the lock is put back.
    const repaired: VerifyReport['repaired'] = [];
    for (const node of pipeline.stages) {
      const rec = lockedRecords.get(node.id);
      if (!rec || !chosen.has(node.id) || !node.kind.restore) continue;
      for (const f of node.kind.files?.(node.params, rec) ?? []) store.deleteStat(resolve(pipeline.projectDir, f));
      for (const path of node.kind.restore(
        { projectDir: pipeline.projectDir, store: stageStoreOf(store) },
        node.params,
        rec,
      ))
        repaired.push({ stage: node.id, path });
    }

    const stages: VerifyStage[] = [];
    for (const node of pipeline.stages) {
      if (!chosen.has(node.id)) continue;
      const locked = lock.stages[node.id];
      const none = { differing: [] };
      if (!locked) {
        stages.push({ id: node.id, result: 'stale', detail: 'not in the lock file; run the pipeline first', ...none });
        continue;
      }
      // Inputs come from the locked results, so each stage is checked on exactly what it saw.
      const fp = fingerprintOf(pipeline, node, store, (id) => lockedRecords.get(id));
      if (!fp.ok) {
        stages.push({
          id: node.id,
          result: 'stale',
          detail: `input "${fp.input}": stage ${fp.upstream} has no intact cached result`,
          ...none,
        });
        continue;
      }
      const key = stageKey(fp.fingerprint);
      if (key !== locked.key) {
        stages.push({
          id: node.id,
          result: 'stale',
          detail: 'the pipeline or its deps changed since the lock was written; run it first',
          ...none,
        });
        continue;
      }
      let record: StageRecord;
      try {
        const job = jobFor(pipeline, node, key, (id) => lockedRecords.get(id), {
          resume: false,
          slot: 0,
          gpu: undefined,
          threads: availableParallelism(),
        });
        const outcome = await executeStage(job, store, signal, { log: () => {}, note: () => {}, progress: () => {} });
        if (!outcome.ok) {
          stages.push({ id: node.id, result: 'failed', detail: outcome.failure.message, ...none });
          continue;
        }
        record = outcome.record;
      } catch (e) {
        stages.push({ id: node.id, result: 'failed', detail: String(e), ...none });
        continue;
      } finally {
        // Leave the workspace as the lock describes it, whatever the re-execution wrote.
        const rec = lockedRecords.get(node.id);
        if (rec) node.kind.restore?.({ projectDir: pipeline.projectDir, store: stageStoreOf(store) }, node.params, rec);
      }
      const names = [...new Set([...Object.keys(locked.outputs), ...Object.keys(record.outputs)])].sort();
      const differing: VerifyStage['differing'] = names
        .filter((n) => locked.outputs[n] !== record.outputs[n])
        .map((name) => ({ name, locked: locked.outputs[name] ?? null, now: record.outputs[name] ?? null }));
      // Metrics go into the lock too, so they must be reproducible like the outputs.
      const metricNames = [...new Set([...Object.keys(locked.metrics ?? {}), ...Object.keys(record.metrics)])].sort();
      for (const m of metricNames) {
        const [was, now] = [canonicalJson(locked.metrics?.[m] ?? null), canonicalJson(record.metrics[m] ?? null)];
        if (was !== now) differing.push({ name: `metric ${m}`, locked: was, now });
      }
      stages.push({
        id: node.id,
        result: differing.length ? 'different' : 'identical',
        detail: differing.length
          ? `${differing.length} of ${names.length} outputs and ${metricNames.length} metrics differ`
          : `${names.length} outputs and ${metricNames.length} metrics identical`,
        differing,
      });
    }
    const ok = corruptBlobs.length === 0 && stages.every((s) => s.result === 'identical');
    return { pipeline: pipeline.name, ok, stages, corruptBlobs, repaired };
  } finally {
    try {
      store.endRun(runId);
    } catch {
      /* a dead verify's registration is ignored by gc anyway */
    }
    await store.close();
  }
}

export function formatVerify(r: VerifyReport): string {
  const lines: string[] = [];
  for (const c of r.corruptBlobs) lines.push(`corrupt cache: ${c.message}; removed`);
  for (const f of r.repaired)
    lines.push(
      `repaired   ${f.path} (stage ${f.stage}): its content on disk differed from the lock; restored from the cache`,
    );
  for (const s of r.stages) {
    lines.push(`${s.result.padEnd(9)}  ${s.id}: ${s.detail}`);
    for (const d of s.differing) {
      const show = (v: string | null): string =>
        v === null ? '(none)' : d.name.startsWith('metric ') ? v : v.slice(0, 12);
      lines.push(`    ${d.name}: locked ${show(d.locked)}, now ${show(d.now)}`);
    }
  }
  lines.push(
    r.ok ? `${r.pipeline}: reproducible (${r.stages.length} stages byte-identical)` : `${r.pipeline}: NOT reproducible`,
  );
  return lines.join('\n');
}
