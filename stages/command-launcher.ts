// The process between the runner and a `command` stage's program. It starts the program as the
// leader of a new process group, so that stopping the stage stops everything the program started
// (`sh -c "sleep 20; …"` leaves no `sleep` behind), and it watches its IPC channel to the runner:
// if the runner dies, even by SIGKILL, the channel closes and the launcher stops the group.
//
// argv: <"shell" | "exec"> <command line | program> [args...]. Exits as the program did: with
// its code, or killed by the same signal.
import { spawn } from 'node:child_process';

/** How long a stopped program gets between SIGTERM and SIGKILL. */
const GRACE_MS = 1000;

const [mode, file, ...args] = process.argv.slice(2);
if (!process.send || !file || (mode !== 'shell' && mode !== 'exec')) {
  process.stderr.write('stages/command-launcher.js is started by podium for command stages\n');
  process.exit(2);
}

const child = spawn(file, args, { shell: mode === 'shell', detached: true, stdio: ['ignore', 'inherit', 'inherit'] });
let stopping = false;

function stopGroup(): void {
  if (stopping || child.pid === undefined) return;
  stopping = true;
  const kill = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      /* already gone */
    }
  };
  kill('SIGTERM');
  setTimeout(() => kill('SIGKILL'), GRACE_MS).unref();
}

// The runner is gone (killed, crashed): nobody will read the result, so stop the work.
process.on('disconnect', stopGroup);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, stopGroup);

child.on('error', (e) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(127);
});
child.on('exit', (code, signal) => {
  // Whatever the program left running in its group goes with it.
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    /* the group is empty */
  }
  process.disconnect?.();
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else process.exit(code ?? 1);
});
