// A job's folder in the spool on shared storage (one per stage key): the ticket, spec and script
// the runner writes, the log and result the job writes. Plain files, so a rerun of podium, on any
// host that sees the spool, can read what an earlier run left there.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** What the spool remembers of a submitted job, beside its log: a rerun adopts it from here. */
export interface JobTicket {
  jobId: string;
  key: string;
  stageId: string;
  submittedAt: string;
  host: string;
  pid: number;
  attempt: number;
}

const LOG_TAIL = 30;

/** Undefined when the file is missing or not JSON: callers treat both as "not there". */
export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The job's log (the newest one when its job id is unknown). */
export function logLines(dir: string, jobId: string | undefined): string[] {
  const name = jobId
    ? `log-${jobId}.txt`
    : readdirSync(dir)
        .filter((f) => f.startsWith('log-'))
        .sort()
        .pop();
  if (!name) return [];
  try {
    return readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

export function logTail(dir: string, jobId: string | undefined): string[] {
  return logLines(dir, jobId).slice(-LOG_TAIL);
}
