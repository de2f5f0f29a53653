// Who holds a lease. A PID alone is not an identity: after a crash the PID can be reused by an
// unrelated process, and a lease judged by PID only would then be waited on forever. On Linux a
// process is identified by (boot id, PID, start time in clock ticks since boot), read from /proc;
// elsewhere PID liveness is the best available and the waiting side's timeout is the backstop.
import { readFileSync } from 'node:fs';

let bootId: string | undefined | null = null;

function currentBootId(): string | undefined {
  if (bootId === null) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootId = undefined;
    }
  }
  return bootId;
}

/** "<boot id>:<start ticks>" of a live process, or undefined where /proc cannot tell (not Linux, or gone). */
export function processStart(pid: number): string | undefined {
  const boot = currentBootId();
  if (boot === undefined) return undefined;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces: count fields after it.
  // starttime is field 22, i.e. the 20th after the closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = fields[19];
  return ticks === undefined ? undefined : `${boot}:${ticks}`;
}

/** Whether the process that took a lease as (pid, start) on this host still runs. */
export function isSameProcessAlive(pid: number, start: string | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (start === undefined) return true;
  const now = processStart(pid);
  // /proc unreadable for a live PID: trust the PID rather than steal a lease that may be held.
  return now === undefined || now === start;
}
