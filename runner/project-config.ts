// The project's own settings for running beyond one machine: `podium.config.json` at the project
// root (found as the cache is, runner/cache-path.ts). Only the cluster verbs read it, so a plain
// `podium run` never opens it. Every value has a command-line override.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from './diagnostics.js';

export const CONFIG_FILE = 'podium.config.json';

/** sbatch settings; `stages` overrides them per stage id, matrix family (`tiny` for `tiny@lr=…`) or kind. */
export interface SlurmSettings {
  partition?: string;
  /** sbatch --time, e.g. "02:00:00". */
  time?: string;
  account?: string;
  /** sbatch --gres, e.g. "gpu:1". */
  gres?: string;
  cpusPerTask?: number;
  /** sbatch --mem, e.g. "8G". */
  mem?: string;
  /** Further sbatch arguments, passed as given. */
  sbatchArgs?: string[];
}

export interface SlurmConfig extends SlurmSettings {
  /** Jobs queued or running at once (--max-jobs). */
  maxJobs?: number;
  /** Resubmissions of a job that ended NODE_FAIL or PREEMPTED. */
  requeueLimit?: number;
  /** Folder on shared storage for job scripts, logs and results (default .podium/slurm). */
  spool?: string;
  /** How often the queue is polled, in milliseconds. */
  pollMs?: number;
  stages?: Record<string, SlurmSettings>;
}

export interface ProjectConfig {
  /** The shared store (a folder every node can reach). */
  remote?: string;
  slurm?: SlurmConfig;
}

const SETTING_KEYS = ['partition', 'time', 'account', 'gres', 'cpusPerTask', 'mem', 'sbatchArgs'];
const SLURM_KEYS = [...SETTING_KEYS, 'maxJobs', 'requeueLimit', 'spool', 'pollMs', 'stages'];

/** The project's config, checked; {} when there is none. Paths in it are resolved against the project. */
export function readProjectConfig(projectDir: string): ProjectConfig {
  const file = join(projectDir, CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const bad = (what: string): never => {
    throw new UsageError(`${file}: ${what}`);
  };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) bad('expected an object');
  const cfg = raw as ProjectConfig & Record<string, unknown>;
  for (const k of Object.keys(cfg))
    if (k !== 'remote' && k !== 'slurm' && k !== '$schema') bad(`unknown field "${k}" (known: remote, slurm)`);
  if (cfg.remote !== undefined && typeof cfg.remote !== 'string') bad('"remote" must be a folder path');
  if (cfg.slurm !== undefined) {
    checkSettings(cfg.slurm, 'slurm', SLURM_KEYS, bad);
    for (const [id, s] of Object.entries(cfg.slurm.stages ?? {}))
      checkSettings(s, `slurm.stages.${id}`, SETTING_KEYS, bad);
  }
  return {
    ...(cfg.remote ? { remote: resolve(projectDir, cfg.remote) } : {}),
    ...(cfg.slurm
      ? { slurm: { ...cfg.slurm, ...(cfg.slurm.spool ? { spool: resolve(projectDir, cfg.slurm.spool) } : {}) } }
      : {}),
  };
}

function checkSettings(s: unknown, where: string, keys: string[], bad: (w: string) => never): void {
  if (!s || typeof s !== 'object' || Array.isArray(s)) bad(`"${where}" must be an object`);
  const o = s as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) {
    if (!keys.includes(k)) bad(`unknown field "${where}.${k}" (known: ${keys.join(', ')})`);
    const ok =
      k === 'sbatchArgs'
        ? Array.isArray(v) && v.every((x) => typeof x === 'string')
        : k === 'stages'
          ? typeof v === 'object' && v !== null
          : ['cpusPerTask', 'maxJobs', 'requeueLimit', 'pollMs'].includes(k)
            ? Number.isInteger(v) && (v as number) >= (k === 'requeueLimit' ? 0 : 1)
            : typeof v === 'string' && v !== '';
    if (!ok) bad(`"${where}.${k}" has the wrong type (${JSON.stringify(v)})`);
  }
}

/** --remote, else PODIUM_REMOTE, else the project config's "remote"; undefined when none is named. */
export function remoteLocation(flag: string | undefined, projectDir: string): string | undefined {
  if (flag) return resolve(flag);
  if (process.env.PODIUM_REMOTE) return resolve(process.env.PODIUM_REMOTE);
  return readProjectConfig(projectDir).remote;
}

/** The sbatch settings of one stage: defaults, then its kind's, its matrix family's, its own. */
export function settingsFor(cfg: SlurmConfig, stage: { id: string; baseId: string; kind: string }): SlurmSettings {
  const pick = ({ partition, time, account, gres, cpusPerTask, mem, sbatchArgs }: SlurmSettings): SlurmSettings =>
    Object.fromEntries(
      Object.entries({ partition, time, account, gres, cpusPerTask, mem, sbatchArgs }).filter(
        ([, v]) => v !== undefined,
      ),
    );
  let out = pick(cfg);
  for (const name of [stage.kind, stage.baseId, stage.id]) {
    const own = cfg.stages?.[name];
    if (own) out = { ...out, ...pick(own), sbatchArgs: [...(out.sbatchArgs ?? []), ...(own.sbatchArgs ?? [])] };
  }
  return out;
}
