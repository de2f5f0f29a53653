// End-to-end rig: a temporary project directory and the real, compiled CLI run as a process.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';

export const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'runner', 'cli.js');

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export class Project {
  readonly dir = mkdtempSync(join(tmpdir(), 'podium-test-'));

  write(rel: string, content: string | object): string {
    const p = join(this.dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    return p;
  }

  read(rel: string): string {
    return readFileSync(join(this.dir, rel), 'utf8');
  }
  json<T = any>(rel: string): T {
    return JSON.parse(this.read(rel)) as T;
  }

  /** Starts the CLI without waiting (for kill and concurrency tests). */
  spawn(
    args: string[],
    env: Record<string, string> = {},
  ): ResultPromise<{ reject: false; cwd: string; env: Record<string, string>; all: false }> {
    // The report after each run costs ~1 s; tests that want it unset PODIUM_NO_REPORT.
    return execa('node', [CLI, ...args], {
      cwd: this.dir,
      reject: false,
      env: { PODIUM_NO_REPORT: '1', ...env },
      all: false,
    });
  }

  async cli(...args: string[]): Promise<CliResult> {
    const r = await this.spawn(args);
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  /** `podium run --json`, parsed; statuses by stage id. */
  async run(
    pipeline = 'p.json',
    ...extra: string[]
  ): Promise<{ exitCode: number; status: Record<string, string>; out: any; stderr: string }> {
    const r = await this.cli('run', pipeline, '--json', ...extra);
    let out: any;
    try {
      out = JSON.parse(r.stdout);
    } catch {
      throw new Error(`run printed no JSON (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
    }
    const status = Object.fromEntries(
      (out.stages as Array<{ id: string; status: string }>).map((s) => [s.id, s.status]),
    );
    return { exitCode: r.exitCode, status, out, stderr: r.stderr };
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A pipeline of command stages: id → [command, inputs?, extra params?]. */
export function commandPipeline(
  stages: Record<
    string,
    {
      run: string | string[];
      inputs?: Record<string, string | string[]>;
      outs?: string[];
      deps?: string[];
      metrics?: string;
      matrix?: Record<string, unknown[]>;
      env?: Record<string, string>;
    }
  >,
  seed = 1,
): object {
  return {
    name: 'test',
    seed,
    stages: Object.fromEntries(
      Object.entries(stages).map(([id, s]) => [
        id,
        {
          uses: 'command',
          ...(s.inputs ? { inputs: s.inputs } : {}),
          params: {
            run: s.run,
            ...(s.outs ? { outs: s.outs } : {}),
            ...(s.deps ? { deps: s.deps } : {}),
            ...(s.env ? { env: s.env } : {}),
            ...(s.metrics ? { metrics: s.metrics } : {}),
          },
          ...(s.matrix ? { matrix: s.matrix } : {}),
        },
      ]),
    ),
  };
}

/** Whether a process still runs. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls until ok() holds, or fails naming what it waited for. */
export async function waitUntil(ok: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
