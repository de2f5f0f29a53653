// Why a stage ended without a result, as plain data: it crosses the worker's IPC channel as it
// is, lands in the stage's report, and decides the run's exit code (an input failure exits 2).
// Faults of the cache itself (a corrupt blob, a cache that cannot be written) are not stage
// failures: the executor repairs the one and ends the run on the other, so they stay exceptions.
import { InputError, StageError } from '../stages/contract.js';

/**
 * input: the stage found its input data invalid (a missing dataset root, a non-image): the run
 * exits 2, as for an invalid pipeline. stage: a failure the user can act on, told in one line.
 * internal: a bug, with the stack in the log tail for whoever debugs it. interrupted: stopped
 * from outside (Ctrl-C, or the run ending because the cache cannot be written).
 */
export type FailureReason = 'input' | 'stage' | 'internal' | 'interrupted';

export interface StageFailure {
  reason: FailureReason;
  /** The one line the user sees. */
  message: string;
  /** The stage's last log lines, then whatever the failure brought (a command's stderr, a stack). */
  logTail: string[];
  /** The project file at fault, when the stage named one (InputError's path). */
  path?: string;
}

/** Lines of log a failure keeps. */
export const LOG_TAIL = 50;

export function stageFailure(reason: FailureReason, message: string, logTail: string[] = []): StageFailure {
  return { reason, message, logTail };
}

/** What a value thrown by a stage means. Only StageError is anticipated; anything else is a bug. */
export function failureOf(e: unknown): StageFailure {
  if (e instanceof StageError) {
    const reason = e instanceof InputError ? 'input' : 'stage';
    return {
      reason,
      message: e.message,
      logTail: e.logTail,
      ...(e instanceof InputError && e.path !== undefined ? { path: e.path } : {}),
    };
  }
  // Not a failure the stage anticipated: keep the stack for whoever debugs it.
  const err = e instanceof Error ? e : new Error(String(e));
  return { reason: 'internal', message: `internal error: ${err.message}`, logTail: (err.stack ?? '').split('\n') };
}

/** The failure with the runner's log lines of the stage in front of its own tail. */
export function withLog(failure: StageFailure, log: readonly string[]): StageFailure {
  return { ...failure, logTail: [...log, ...failure.logTail].slice(-LOG_TAIL) };
}
