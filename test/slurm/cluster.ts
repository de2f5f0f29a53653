// A real one-node SLURM per test file (slurm-wlm + munge, started as root by start-slurm.sh on a
// port of its own, 4 fake GPUs), stopped after the file. Where slurm-wlm is not installed the
// file is skipped with one line saying so (.ci/run installs it).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

/** Why SLURM tests cannot run here, or undefined when they can. */
export function slurmMissing(): string | undefined {
  for (const bin of ['slurmctld', 'slurmd', 'munged', 'sbatch']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0)
      return `${bin} not found: SLURM tests skipped (apt-get install -y slurm-wlm munge, as .ci/run does)`;
  }
  if (process.getuid?.() !== 0) return 'not root: the test cluster runs its daemons as root; SLURM tests skipped';
  return undefined;
}

export interface JobRow {
  id: string;
  name: string;
  state: string;
  node: string;
}

export class Cluster {
  readonly dir: string;
  readonly env: Record<string, string>;

  constructor(port: number, opts: { cpus?: number; gpus?: number } = {}) {
    const parent = mkdtempSync(join(tmpdir(), 'podium-slurm-'));
    // munged refuses a socket below a folder others cannot traverse; mkdtemp makes 0700.
    chmodSync(parent, 0o755);
    this.dir = join(parent, 'cluster');
    this.env = { SLURM_CONF: join(this.dir, 'etc', 'slurm.conf') };
    execFileSync(join(HERE, 'start-slurm.sh'), [this.dir], {
      env: {
        ...process.env,
        SLURM_TEST_PORT: String(port),
        SLURM_TEST_CPUS: String(opts.cpus ?? 4),
        SLURM_TEST_GPUS: String(opts.gpus ?? 4),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** Every job the controller remembers (finished ones for MinJobAge, 300 s), oldest first. */
  jobs(): JobRow[] {
    const out = execFileSync('squeue', ['--noheader', '--states=all', '--format=%i|%j|%T|%N'], {
      env: { ...process.env, ...this.env },
    }).toString();
    return out
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [id, name, state, node] = l.trim().split('|');
        return { id: id!, name: name!, state: state!, node: node ?? '' };
      })
      .sort((a, b) => Number(a.id) - Number(b.id));
  }

  scancel(id: string): void {
    execFileSync('scancel', [id], { env: { ...process.env, ...this.env } });
  }

  /** The controller's log, for a failing test's message. */
  log(): string {
    try {
      return readFileSync(join(this.dir, 'log', 'slurmctld.log'), 'utf8')
        .split('\n')
        .slice(-30)
        .join('\n');
    } catch {
      return '';
    }
  }

  stop(): void {
    spawnSync(join(HERE, 'stop-slurm.sh'), [this.dir], { stdio: 'ignore' });
    rmSync(dirname(this.dir), { recursive: true, force: true });
  }
}

/** The result files the jobs of a spool wrote: one per stage key. */
export function spoolResults(spool: string): Array<Record<string, any>> {
  let keys: string[];
  try {
    keys = readdirSync(spool).filter((k) => /^[0-9a-f]{64}$/.test(k));
  } catch {
    return [];
  }
  return keys.flatMap((k) => {
    try {
      return [JSON.parse(readFileSync(join(spool, k, 'result.json'), 'utf8'))];
    } catch {
      return [];
    }
  });
}
