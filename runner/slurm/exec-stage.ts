// `podium exec-stage`: one stage, run as a cluster job. The job never sees the runner's LMDB (it
// gets no path to it): its stage gets a StageStore over the shared store (cache/shared-stage-
// store.ts), whose blobs the job fetches by digest (hash-checked) into a mirror on its own disk.
// It checks that it computes the key the runner asked for, runs the stage, makes sure the store
// holds every blob the record names, and writes the record to the result file. Only the runner
// commits records.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stageKey } from '../../cache/fingerprint.js';
import type { Digest } from '../../cache/canonical.js';
import { openRemote, type RemoteStore } from '../../cache/remote-store.js';
import { writeFileAtomic } from '../../cache/write-atomic.js';
import { openStageStore, type SharedStageStore } from '../../cache/shared-stage-store.js';
import { CacheCorruption, type IndexEntry, type StageRecord, type StatEntry } from '../../cache/store.js';
import type { InputArtifact } from '../../stages/contract.js';
import { loadPipeline } from '../context.js';
import { executeStage } from '../execute-stage.js';
import { failureOf, stageFailure, type StageFailure } from '../stage-failure.js';
import { fingerprintOf } from '../fingerprints.js';
import { blobsOf } from '../push-pull.js';
import type { JobFacts, JobResult, JobSpec } from './job-spec.js';

export interface ExecStageArgs {
  pipeline: string;
  stageId: string;
  key: string;
  spec: string;
  result: string;
  remote: string;
}

/** Runs the job; returns the exit code (0 when the record was written). */
export async function execStage(args: ExecStageArgs, signal: AbortSignal): Promise<number> {
  const spec = JSON.parse(readFileSync(args.spec, 'utf8')) as JobSpec;
  if (spec.key !== args.key || spec.stageId !== args.stageId)
    throw new Error(
      `${args.spec} is for stage ${spec.stageId} key ${spec.key.slice(0, 12)}, not ${args.stageId} ${args.key.slice(0, 12)}`,
    );
  const scratch = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'podium-job-'));
  mkdirSync(spec.filesDir, { recursive: true });
  const facts: JobFacts = {
    host: hostname(),
    cudaVisibleDevices: process.env.CUDA_VISIBLE_DEVICES ?? null,
    slurmJobId: process.env.SLURM_JOB_ID ?? null,
    scratch,
  };
  const say = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  say(
    `podium exec-stage ${spec.stageId} key ${spec.key.slice(0, 12)} on ${facts.host}, CUDA_VISIBLE_DEVICES=${facts.cudaVisibleDevices ?? ''}, blobs mirrored in ${scratch}`,
  );
  const store = openStageStore({
    remote: args.remote,
    mirror: join(scratch, 'blobs'),
    index: join(scratch, 'index.jsonl'),
    filesDir: spec.filesDir,
  });
  let result: JobResult;
  /** A failure of the job itself (not of the stage): said in the log, and saved progress kept. */
  const failed = async (failure: StageFailure, corruptDigest?: string): Promise<JobResult> => {
    say(`failed: ${failure.message}`);
    // Stopped by its time limit, scancel or an error: what it finished is kept for the next job.
    await saveProgress(store, openRemote(args.remote), spec.key, say);
    return { ok: false, failure, ...(corruptDigest ? { corruptDigest } : {}), ...facts };
  };
  try {
    const remote = openRemote(args.remote);
    await store.prefetch(spec.inputBlobs);
    const pipeline = loadPipeline(args.pipeline, { set: spec.set, ...(spec.backend ? { backend: spec.backend } : {}) });
    const node = pipeline.byId.get(spec.stageId);
    // The same pipeline, podium and deps on the node as on the runner: otherwise the record
    // would be filed under a key it was not computed for.
    const upstream = upstreamFromInputs(spec);
    const stats = new Map<string, StatEntry>();
    const memo = {
      getStat: (p: string) => stats.get(p),
      setStat: (p: string, e: StatEntry) => {
        stats.set(p, e);
      },
    };
    const fp = node && fingerprintOf(pipeline, node, memo, (id) => upstream.get(id));
    if (!node || !fp)
      result = await failed(
        stageFailure('stage', `stage ${spec.stageId} is not in ${args.pipeline} as the node sees it`),
      );
    else if (!fp.ok || stageKey(fp.fingerprint) !== spec.key) {
      result = await failed(
        stageFailure(
          'stage',
          `the node computes another key for ${spec.stageId} (${fp.ok ? stageKey(fp.fingerprint).slice(0, 12) : `input ${fp.input} missing`} against ${spec.key.slice(0, 12)}): is the project on shared storage, and the same podium installed?`,
        ),
      );
    } else {
      if (spec.resume) await restoreProgress(store, remote, spec.key, say);
      const outcome = await executeStage(
        {
          kind: node.kind,
          stageId: node.id,
          key: spec.key,
          resume: spec.resume,
          params: node.params,
          inputs: spec.inputs,
          seed: pipeline.seed,
          projectDir: pipeline.projectDir,
          slot: 0,
          gpu: facts.cudaVisibleDevices ?? undefined,
          threads: spec.threads,
        },
        store,
        signal,
        { log: say, note: say, progress: () => {} },
      );
      if (outcome.ok) {
        await store.publish(blobsOf(outcome.record));
        result = { ok: true, record: outcome.record, index: indexOfOwn(store, outcome.record), ...facts };
      } else result = await failed(outcome.failure);
    }
  } catch (e) {
    result =
      e instanceof CacheCorruption
        ? await failed(stageFailure('stage', e.message), e.digest)
        : await failed(failureOf(e));
  } finally {
    await store.close().catch(() => {});
    rmSync(scratch, { recursive: true, force: true });
  }
  writeFileAtomic(args.result, `${JSON.stringify(result)}\n`);
  return result.ok ? 0 : 1;
}

/** The saved progress of an earlier job of this key (finetune's finished epochs), blobs checked. */
async function restoreProgress(
  store: SharedStageStore,
  remote: RemoteStore,
  key: Digest,
  say: (l: string) => void,
): Promise<void> {
  let entries: Array<[string, IndexEntry]> | undefined;
  try {
    entries = await remote.getProgress(key);
  } catch (e) {
    if (e instanceof CacheCorruption) {
      say(e.message);
      return;
    }
    throw e;
  }
  let kept = 0;
  for (const [k, v] of entries ?? []) {
    try {
      await store.prefetch(v.blobs);
    } catch {
      continue; /* a blob gone or damaged: that entry is not used */
    }
    store.setIndex(k, v);
    kept++;
  }
  await store.flush();
  if (kept) say(`restored ${kept} saved-progress entr${kept === 1 ? 'y' : 'ies'} of an earlier job from the store`);
}

/** Publishes the job's index (and the blobs it names) under the stage key; never fails the job further. */
async function saveProgress(
  store: SharedStageStore,
  remote: RemoteStore,
  key: Digest,
  say: (l: string) => void,
): Promise<void> {
  try {
    const entries = store.indexEntries().filter(([, v]) => v.blobs.every((d) => store.blobInfo(d)));
    if (!entries.length) return;
    await store.publish(entries.flatMap(([, v]) => v.blobs));
    await remote.putProgress(key, entries);
    say(
      `saved ${entries.length} progress entr${entries.length === 1 ? 'y' : 'ies'} to the store: the next job of this stage resumes from them`,
    );
  } catch (e) {
    say(`could not save progress: ${(e as Error).message}`);
  }
}

/** Upstream records as far as the job knows them: the outputs and metrics the runner sent. */
function upstreamFromInputs(spec: JobSpec): Map<string, StageRecord> {
  const out = new Map<string, StageRecord>();
  for (const value of Object.values(spec.inputs)) {
    for (const art of (Array.isArray(value) ? value : [value]) as InputArtifact[]) {
      const seen = out.get(art.stageId);
      // One upstream stage may feed two inputs that read different outputs: keep the union.
      out.set(art.stageId, {
        ...(seen ?? {
          key: '' as Digest,
          kind: '',
          version: 0,
          stageId: art.stageId,
          refs: [],
          startedAt: '',
          durationMs: 0,
          backend: null,
          logTail: [],
        }),
        outputs: { ...seen?.outputs, ...art.outputs },
        metrics: art.metrics,
      });
    }
  }
  return out;
}

/** Index entries whose blobs the record keeps: memos the runner can adopt (decode's per-image entries). */
function indexOfOwn(store: SharedStageStore, record: StageRecord): Array<[string, IndexEntry]> {
  const kept = new Set(blobsOf(record));
  return store.indexEntries().filter(([, v]) => v.blobs.length > 0 && v.blobs.every((d) => kept.has(d)));
}
