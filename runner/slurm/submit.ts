// Submitting one stage as an sbatch job: its inputs pushed to the shared store, its spec and
// script written to the spool, the job queued with the project's SLURM settings for the stage,
// and a ticket left behind so that a rerun adopts the job instead of submitting it again.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Digest } from '../../cache/canonical.js';
import type { Store } from '../../cache/store.js';
import { writeFileAtomic } from '../../cache/write-atomic.js';
import type { SlurmSettings } from '../project-config.js';
import { copyBlobs } from '../push-pull.js';
import type { StageJob, StageListener } from '../stage-job.js';
import { sbatch } from './commands.js';
import type { JobSpec } from './job-spec.js';
import type { SlurmBackendOptions } from './options.js';
import type { JobTicket } from './spool.js';

export async function submitJob(
  o: SlurmBackendOptions,
  dir: string,
  job: StageJob,
  store: Store,
  settings: SlurmSettings,
  attempt: number,
  listener: StageListener,
  inputBlobs: Digest[],
): Promise<JobTicket> {
  // Inputs reach the node only through the store, hash-checked on both sides.
  await copyBlobs('push', store, o.remote, inputBlobs);
  const spec: JobSpec = {
    pipeline: resolve(o.pipeline.file),
    stageId: job.stageId,
    key: job.key,
    resume: job.resume,
    set: o.set,
    backend: o.backend ?? null,
    inputs: job.inputs,
    inputBlobs,
    threads: settings.cpusPerTask ?? 1,
    filesDir: join(o.spool, 'files'),
  };
  writeFileAtomic(join(dir, 'spec.json'), JSON.stringify(spec));
  rmSync(join(dir, 'result.json'), { force: true });
  const script = join(dir, 'job.sh');
  writeFileSync(script, jobScript(cliScript(), o.pipeline.file, job, dir, o.remote.location), { mode: 0o755 });
  const jobId = await sbatch(
    [
      `--job-name=podium:${job.stageId}`,
      `--output=${join(dir, 'log-%j.txt')}`,
      `--chdir=${o.pipeline.projectDir}`,
      ...(settings.partition ? [`--partition=${settings.partition}`] : []),
      ...(settings.time ? [`--time=${settings.time}`] : []),
      ...(settings.account ? [`--account=${settings.account}`] : []),
      ...(settings.gres ? [`--gres=${settings.gres}`] : []),
      ...(settings.cpusPerTask ? [`--cpus-per-task=${settings.cpusPerTask}`] : []),
      ...(settings.mem ? [`--mem=${settings.mem}`] : []),
      ...(settings.sbatchArgs ?? []),
    ],
    script,
  );
  const ticket: JobTicket = {
    jobId,
    key: job.key,
    stageId: job.stageId,
    submittedAt: new Date().toISOString(),
    host: hostname(),
    pid: process.pid,
    attempt,
  };
  writeFileAtomic(join(dir, 'job.json'), JSON.stringify(ticket));
  // The job id beside the stage's lease too (the lease is ours: this re-takes it with a longer
  // description), so a second podium on this cache says which job it is waiting for.
  store.tryLease(job.key, `stage ${job.stageId} of ${o.pipeline.file} (slurm job ${jobId})`);
  listener.note(`slurm job ${jobId} submitted${settings.gres ? ` (--gres=${settings.gres})` : ''}`);
  return ticket;
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
