// `--executor slurm`: each stage the executor decides to run becomes one sbatch job running
// `podium exec-stage` on a node. The executor is unchanged: it still decides what runs (keys,
// early cutoff), holds the lease, and commits the record; this module only replaces "run the
// stage here" with "ship its inputs to the shared store, submit, wait, fetch its outputs".
//
// Dependencies stay podium's: a stage is submitted once its inputs are committed, never with
// `--dependency=afterok`. SLURM would start a dependent job whenever its upstream job succeeds,
// but whether it must run at all is known only then: an upstream stage that reproduces the same
// bytes leaves it cached (early cutoff), and its key needs the upstream outputs' digests.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Digest } from '../../cache/canonical.js';
import type { RemoteStore } from '../../cache/remote-store.js';
import { CacheCorruption, type StageRecord, type Store } from '../../cache/store.js';
import { stageStoreOf } from '../../cache/local-stage-store.js';
import type { Pipeline } from '../analyze.js';
import type { EventSink } from '../events.js';
import type { StageOutcome } from '../execute-stage.js';
import { stageFailure, type StageFailure } from '../stage-failure.js';
import type { StageJob, StageListener } from '../stage-job.js';
import { settingsFor, type SlurmConfig, type SlurmSettings } from '../project-config.js';
import { blobsOf, pullBlobs, pushBlobs } from '../push-pull.js';
import { sbatch, scancel, squeue, FINISHED, type QueueEntry } from './commands.js';
import type { JobResult, JobSpec } from './job-spec.js';
import { QueuePoller } from './poller.js';

/** What the spool remembers of a submitted job, beside its log: a rerun adopts it from here. */
export interface JobTicket { jobId: string; key: string; stageId: string; submittedAt: string; host: string; pid: number; attempt: number }

export interface SlurmBackendOptions {
  pipeline: Pipeline;
  set: string[];
  backend: string | undefined;
  remote: RemoteStore;
  config: SlurmConfig;
  /** Folder on shared storage for job scripts, logs, results and tickets. */
  spool: string;
  onEvent: EventSink;
  /** On interrupt: cancel the jobs in flight (true), leave them (false), or ask (a function). */
  onInterrupt: boolean | ((jobs: string[]) => Promise<boolean>);
}

const REQUEUE_STATES = new Set(['NODE_FAIL', 'PREEMPTED']);
const LOG_TAIL = 30;

export interface SlurmBackend {
  runStage(job: StageJob, store: Store, signal: AbortSignal, listener: StageListener, inputBlobs: Digest[]): Promise<StageOutcome>;
  /** After the run: what became of the jobs still in flight when it was interrupted. */
  afterInterrupt(): Promise<void>;
}

export function slurmBackend(o: SlurmBackendOptions): SlurmBackend {
  const poller = new QueuePoller(o.config.pollMs ?? 500);
  const inFlight = new Set<string>();
  const cli = cliScript();

  const runStage = async (job: StageJob, store: Store, signal: AbortSignal, listener: StageListener, inputBlobs: Digest[]): Promise<StageOutcome> => {
    try {
      return { ok: true, record: await runJob(job, store, signal, listener, inputBlobs) };
    } catch (e) {
      if (e instanceof JobFailed) return { ok: false, failure: e.failure };
      throw e;
    }
  };

  const runJob = async (job: StageJob, store: Store, signal: AbortSignal, listener: StageListener, inputBlobs: Digest[]): Promise<StageRecord> => {
    const dir = join(o.spool, job.key);
    mkdirSync(dir, { recursive: true });
    const settings = settingsFor(o.config, { id: job.stageId, baseId: job.stageId.split('@')[0]!, kind: job.kind.name });
    const published = job.resume ? await fromStore(job.key, job, store) : undefined;
    if (published) { listener.note(`found in the shared store (computed by another runner): no job submitted`); return published; }
    const found = await adoptable(dir, job.key);
    // A finished job's result is reused unless this run recomputes from scratch (--force, --from).
    if (found === 'done' && job.resume) return collect(dir, job, store, listener);
    let ticket = found === 'done' ? undefined : found;
    if (ticket) listener.note(`adopted slurm job ${ticket.jobId} (submitted ${ticket.submittedAt} by pid ${ticket.pid}), not submitting it again`);
    for (let attempt = ticket?.attempt ?? 0; ; attempt++) {
      ticket ??= await submit(dir, job, store, settings, attempt, listener, inputBlobs);
      const end = await waitFor(ticket.jobId, signal, listener);
      inFlight.delete(ticket.jobId);
      const state = end?.state ?? (existsSync(join(dir, 'result.json')) ? 'COMPLETED' : 'VANISHED');
      if (REQUEUE_STATES.has(state) && attempt < (o.config.requeueLimit ?? 2)) {
        listener.note(`slurm job ${ticket.jobId} ended ${state} on ${end?.node || '?'}: submitting it again (${attempt + 1} of ${o.config.requeueLimit ?? 2})`);
        ticket = undefined;
        continue;
      }
      if (state === 'COMPLETED') return collect(dir, job, store, listener, ticket.jobId, end?.node);
      throw failure(dir, ticket.jobId, state, end, settings);
    }
  };

  /**
   * A record another runner published for this key (Bazel's remote cache): its blobs fetched,
   * hash-checked, so this runner commits it without a job. A damaged entry is a miss.
   */
  const fromStore = async (key: Digest, job: StageJob, store: Store): Promise<StageRecord | undefined> => {
    try {
      const record = await o.remote.getRecord(key);
      if (record) { await pullBlobs(store, o.remote, blobsOf(record)); restoreOuts(job, store, record); }
      return record;
    } catch (e) {
      if (e instanceof CacheCorruption) { o.onEvent({ type: 'warning', message: `${e.message}; the stage runs again` }); return undefined; }
      throw e;
    }
  };

  /** A ticket whose job is still queued or running ('done' when it finished with a result to collect). */
  const adoptable = async (dir: string, key: Digest): Promise<JobTicket | 'done' | undefined> => {
    const ticket = readJson<JobTicket>(join(dir, 'job.json'));
    if (!ticket || ticket.key !== key) return undefined;
    const result = readJson<JobResult>(join(dir, 'result.json'));
    const entry = (await squeue([ticket.jobId]))?.get(ticket.jobId);
    if (entry && !FINISHED.has(entry.state)) return ticket;
    return result?.ok && result.record.key === key ? 'done' : undefined;
  };

  const submit = async (dir: string, job: StageJob, store: Store, settings: SlurmSettings, attempt: number, listener: StageListener, inputBlobs: Digest[]): Promise<JobTicket> => {
    // Inputs reach the node only through the store, hash-checked on both sides.
    await pushBlobs(store, o.remote, inputBlobs);
    const spec: JobSpec = { pipeline: resolve(o.pipeline.file), stageId: job.stageId, key: job.key, resume: job.resume, set: o.set, backend: o.backend ?? null, inputs: job.inputs, inputBlobs, threads: settings.cpusPerTask ?? 1, filesDir: join(o.spool, 'files') };
    writeAtomic(join(dir, 'spec.json'), JSON.stringify(spec));
    rmSync(join(dir, 'result.json'), { force: true });
    const script = join(dir, 'job.sh');
    writeFileSync(script, jobScript(cli, o.pipeline.file, job, dir, o.remote.location), { mode: 0o755 });
    const jobId = await sbatch([
      `--job-name=podium:${job.stageId}`, `--output=${join(dir, 'log-%j.txt')}`, `--chdir=${o.pipeline.projectDir}`,
      ...(settings.partition ? [`--partition=${settings.partition}`] : []), ...(settings.time ? [`--time=${settings.time}`] : []),
      ...(settings.account ? [`--account=${settings.account}`] : []), ...(settings.gres ? [`--gres=${settings.gres}`] : []),
      ...(settings.cpusPerTask ? [`--cpus-per-task=${settings.cpusPerTask}`] : []), ...(settings.mem ? [`--mem=${settings.mem}`] : []),
      ...(settings.sbatchArgs ?? []),
    ], script);
    const ticket: JobTicket = { jobId, key: job.key, stageId: job.stageId, submittedAt: new Date().toISOString(), host: hostname(), pid: process.pid, attempt };
    writeAtomic(join(dir, 'job.json'), JSON.stringify(ticket));
    // The job id beside the stage's lease too (the lease is ours: this re-takes it with a longer
    // description), so a second podium on this cache says which job it is waiting for.
    store.tryLease(job.key, `stage ${job.stageId} of ${o.pipeline.file} (slurm job ${jobId})`);
    listener.note(`slurm job ${jobId} submitted${settings.gres ? ` (--gres=${settings.gres})` : ''}`);
    return ticket;
  };

  const waitFor = async (jobId: string, signal: AbortSignal, listener: StageListener): Promise<QueueEntry | undefined> => {
    inFlight.add(jobId);
    const onAbort = (): void => poller.forget(jobId);
    const ended = poller.wait(jobId, (e) => { if (e.state === 'RUNNING') listener.note(`slurm job ${jobId} running on ${e.node}`); });
    const aborted = new Promise<'aborted'>((res) => {
      if (signal.aborted) res('aborted');
      signal.addEventListener('abort', () => { onAbort(); res('aborted'); }, { once: true });
    });
    const first = await Promise.race([ended, aborted]);
    if (first === 'aborted') throw new JobFailed(stageFailure('interrupted', 'interrupted'));
    return first;
  };

  /** The job's record: its blobs fetched (hash-checked) into the local cache, ready to commit. */
  const collect = async (dir: string, job: StageJob, store: Store, listener: StageListener, jobId?: string, node?: string): Promise<StageRecord> => {
    const result = readJson<JobResult>(join(dir, 'result.json'));
    if (!result) throw new JobFailed(stageFailure('stage', `slurm job ${jobId ?? '?'} completed but wrote no result (${join(dir, 'result.json')})`, logTail(dir, jobId)));
    for (const line of logLines(dir, jobId ?? result.slurmJobId ?? undefined)) listener.log(line);
    if (!result.ok) throw resultFailure(result, jobId ?? result.slurmJobId ?? '?', 'COMPLETED');
    if (result.record.key !== job.key) throw new JobFailed(stageFailure('internal', `slurm job ${jobId} returned a record for another key (${result.record.key.slice(0, 12)})`));
    await pullBlobs(store, o.remote, blobsOf(result.record));
    for (const [k, v] of result.index) if (v.blobs.every((d) => store.blobInfo(d))) store.setIndex(k, v);
    const where = `slurm job ${result.slurmJobId ?? jobId} on ${node || result.host} (CUDA_VISIBLE_DEVICES=${result.cudaVisibleDevices ?? ''})`;
    const record = { ...result.record, logTail: [where, ...result.record.logTail].slice(-50) };
    restoreOuts(job, store, record);
    // Published for other runners sharing the store; the local commit is the executor's.
    await o.remote.putRecord(record);
    return record;
  };

  const failure = (dir: string, jobId: string, state: string, end: QueueEntry | undefined, settings: SlurmSettings): Error => {
    const result = readJson<JobResult>(join(dir, 'result.json'));
    // A stage that failed by itself says why; one SLURM stopped (time limit, scancel) only saw a signal.
    if (state === 'FAILED' && result && !result.ok && result.slurmJobId === jobId) return resultFailure(result, jobId, state, end?.node);
    const why: Record<string, string> = {
      TIMEOUT: `exceeded its time limit${settings.time ? ` (--time=${settings.time})` : ''}`,
      OUT_OF_MEMORY: `ran out of memory${settings.mem ? ` (--mem=${settings.mem})` : ''}`,
      CANCELLED: 'was cancelled (scancel, or by an administrator)',
      NODE_FAIL: `its node failed (resubmitted ${o.config.requeueLimit ?? 2} times already)`,
      PREEMPTED: `was preempted (resubmitted ${o.config.requeueLimit ?? 2} times already)`,
      VANISHED: 'left the queue without writing a result',
      FAILED: 'exited with an error before the stage could report',
    };
    return new JobFailed(stageFailure('stage', `slurm job ${jobId} ${state}${end?.node ? ` on ${end.node}` : ''}: ${why[state] ?? end?.reason ?? 'ended'}; log ${join(dir, `log-${jobId}.txt`)}`, logTail(dir, jobId)));
  };

  const afterInterrupt = async (): Promise<void> => {
    const jobs = [...inFlight];
    if (!jobs.length) return;
    const cancel = typeof o.onInterrupt === 'function' ? await o.onInterrupt(jobs) : o.onInterrupt;
    if (cancel) {
      await scancel(jobs);
      o.onEvent({ type: 'warning', message: `cancelled ${jobs.length} slurm job${jobs.length === 1 ? '' : 's'}: ${jobs.join(' ')}` });
    } else {
      o.onEvent({ type: 'warning', message: `left ${jobs.length} slurm job${jobs.length === 1 ? '' : 's'} queued or running: ${jobs.join(' ')}; \`podium run\` again adopts them (scancel ${jobs.join(' ')} cancels them)` });
    }
  };

  return { runStage, afterInterrupt };
}

/**
 * The stage's files in the project (a command's outs), from the blobs now in the local cache:
 * the job wrote them on its node, which need not share this project folder.
 */
function restoreOuts(job: StageJob, store: Store, record: StageRecord): void {
  job.kind.restore?.({ projectDir: job.projectDir, store: stageStoreOf(store) }, job.params, record);
}

/** A stage failure met while running a job, carried up to runStage as the outcome. */
class JobFailed extends Error {
  constructor(readonly failure: StageFailure) { super(failure.message); }
}

function resultFailure(result: Extract<JobResult, { ok: false }>, jobId: string, state: string, node?: string): Error {
  if (result.corruptDigest) return new CacheCorruption(result.corruptDigest, result.failure.message);
  return new JobFailed({ ...result.failure, message: `${result.failure.message} (slurm job ${jobId} ${state} on ${node || result.host})` });
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The batch script: podium itself on the node. PODIUM_CACHE points where no cache can be made,
 * so a stage that reached for the runner's LMDB would fail loudly instead of sharing it.
 */
function jobScript(cli: string, pipelineFile: string, job: StageJob, dir: string, remote: string): string {
  return [
    '#!/bin/sh',
    `# podium stage ${job.stageId}, key ${job.key}`,
    'export PODIUM_CACHE=/dev/null/no-cache-on-a-job PODIUM_NO_REPORT=1',
    `exec ${quote(process.execPath)} ${quote(cli)} exec-stage ${quote(resolve(pipelineFile))} ${quote(job.stageId)} --key ${job.key} --spec ${quote(join(dir, 'spec.json'))} --result ${quote(join(dir, 'result.json'))} --remote ${quote(remote)}`,
    '',
  ].join('\n');
}

function cliScript(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const compiled = join(here, '..', 'cli.js');
  // Under vitest this module runs from source; the job always runs compiled.
  return existsSync(compiled) ? compiled : join(here, '..', '..', 'dist', 'runner', 'cli.js');
}

function readJson<T>(path: string): T | undefined {
  try { return JSON.parse(readFileSync(path, 'utf8')) as T; } catch { return undefined; }
}

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function logLines(dir: string, jobId: string | undefined): string[] {
  const name = jobId ? `log-${jobId}.txt` : readdirSync(dir).filter((f) => f.startsWith('log-')).sort().pop();
  if (!name) return [];
  try { return readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean); } catch { return []; }
}

function logTail(dir: string, jobId: string | undefined): string[] {
  return logLines(dir, jobId).slice(-LOG_TAIL);
}
