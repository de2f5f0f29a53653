// The SLURM commands podium uses, and nothing else of SLURM: sbatch --parsable to submit, one
// squeue call per poll for every job in flight (accounting, and so sacct, is often disabled on
// small clusters; squeue -t all still lists a finished job for MinJobAge, 300 s by default), and
// scancel. Each runs as a child process with the caller's environment (SLURM_CONF included).
import { execFile } from 'node:child_process';

export interface QueueEntry {
  /** PENDING, RUNNING, COMPLETING, COMPLETED, FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, CANCELLED, PREEMPTED, … */
  state: string;
  node: string;
  reason: string;
}

/** States in which a job will not change any more. */
export const FINISHED = new Set([
  'COMPLETED',
  'FAILED',
  'TIMEOUT',
  'OUT_OF_MEMORY',
  'NODE_FAIL',
  'CANCELLED',
  'PREEMPTED',
  'BOOT_FAIL',
  'DEADLINE',
  'SPECIAL_EXIT',
  'REVOKED',
]);

/** The command's stdout; a failure says which command, and what it printed. */
function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error(`${cmd} not found: is SLURM installed here (the slurm-client package), and on PATH?`));
        return;
      }
      resolve({
        code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
        stdout: String(stdout),
        stderr: String(stderr),
      });
    });
  });
}

/** Submits a batch script; returns the job id. */
export async function sbatch(args: string[], script: string): Promise<string> {
  const r = await run('sbatch', ['--parsable', ...args, script]);
  const id = r.stdout.trim().split(';')[0]!;
  if (r.code !== 0 || !/^\d+(_\d+)?$/.test(id))
    throw new Error(`sbatch refused the job: ${(r.stderr.trim() || r.stdout.trim()).split('\n')[0]}`);
  return id;
}

/**
 * The jobs SLURM still knows, by id; a job missing from the map is unknown to the controller
 * (finished longer ago than MinJobAge, or never existed). Undefined when the controller could
 * not be reached (the caller tries again at the next poll).
 */
export async function squeue(ids: string[]): Promise<Map<string, QueueEntry> | undefined> {
  const out = new Map<string, QueueEntry>();
  if (!ids.length) return out;
  const r = await run('squeue', ['--noheader', '--states=all', `--jobs=${ids.join(',')}`, '--format=%i|%T|%N|%r']);
  if (r.code !== 0) {
    // Every id unknown: squeue says so and fails.
    if (/invalid job id/i.test(r.stderr)) return out;
    return undefined;
  }
  for (const line of r.stdout.split('\n')) {
    const [id, state, node, reason] = line.trim().split('|');
    if (id && state) out.set(id, { state, node: node ?? '', reason: reason ?? '' });
  }
  return out;
}

export async function scancel(ids: string[]): Promise<void> {
  if (!ids.length) return;
  const r = await run('scancel', ids);
  if (r.code !== 0 && !/invalid job id|already completed/i.test(r.stderr))
    throw new Error(`scancel ${ids.join(' ')} failed: ${r.stderr.trim().split('\n')[0]}`);
}

/** Whether sbatch can be found: for a clear message before anything is submitted. */
export async function slurmAvailable(): Promise<string | undefined> {
  try {
    const r = await run('sbatch', ['--version']);
    return r.code === 0 ? undefined : `sbatch --version failed: ${r.stderr.trim().split('\n')[0]}`;
  } catch (e) {
    return (e as Error).message;
  }
}
