// `command`: wraps any outside tool. Its deps are hashed into the key; its outs are stored as
// blobs after success and restored from the cache when missing or changed on disk.
import type { FromSchema } from 'json-schema-to-ts';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { Digest } from '../cache/canonical.js';
import { listFiles } from '../cache/hash-files.js';
import { defineStage, StageError, type JsonSchema } from './contract.js';
import { writeFileAtomic } from '../cache/write-atomic.js';

const TAIL_LINES = 20;

const params = {
  type: 'object',
  additionalProperties: false,
  required: ['run'],
  properties: {
    run: {
      description: 'A shell command line, or [program, ...args] run without a shell.',
      oneOf: [
        { type: 'string', minLength: 1 },
        { type: 'array', items: { type: 'string' }, minItems: 1 },
      ],
    },
    deps: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: [],
      description: 'Files/folders whose content is part of the key.',
    },
    outs: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: [],
      description:
        'Files/folders the command writes; cached as blobs. ${NAME} is replaced from env, so matrix points can write different files.',
    },
    env: {
      type: 'object',
      additionalProperties: { type: 'string' },
      default: {},
      description: 'Extra environment variables.',
    },
    metrics: {
      type: ['string', 'null'],
      default: null,
      description:
        'A JSON file the command writes (one of its outs; ${NAME} expands as in outs); its top-level numbers become the stage metrics that show and diff report.',
    },
  },
} as const satisfies JsonSchema;

/** The params as run() gets them: the schema's type, every default filled in by ajv. */
export type CommandParams = FromSchema<typeof params>;

export const command = defineStage<CommandParams>({
  name: 'command',
  version: 1,
  description: 'Run a shell command or program; hash its deps, store and restore its outs.',
  params,
  inputs: 'any',
  isolate: false,
  deps: (p) => p.deps,

  async run(ctx, p) {
    const outs = expandedOuts(p).map((o) => insideProject(ctx.projectDir, o, 'outs'));
    // A command that fails to write an out must not leave last run's file to be cached as new.
    for (const o of outs) rmSync(o, { recursive: true, force: true });
    for (const o of outs) mkdirSync(dirname(o), { recursive: true });

    // execa is imported here, not at the top: a no-op run never needs it.
    const { execaNode } = await import('execa');
    const env = {
      ...p.env,
      PODIUM_STAGE: ctx.stageId,
      PODIUM_SEED: String(ctx.seed),
      ...(ctx.gpu !== undefined ? { CUDA_VISIBLE_DEVICES: ctx.gpu } : {}),
    };
    // Through the launcher: the program leads its own process group, stopped as a whole when the
    // stage is cancelled or the runner dies (command-launcher.ts).
    const argv = typeof p.run === 'string' ? ['shell', p.run] : ['exec', ...p.run];
    const result = await execaNode(launcherScript(), argv, {
      cwd: ctx.projectDir,
      env,
      all: true,
      reject: false,
      stdin: 'ignore',
      ipc: true,
      cancelSignal: ctx.signal,
    });
    for (const line of (result.all ?? '').split('\n')) if (line) ctx.log(line);
    if (result.failed) {
      const why = result.isCanceled
        ? 'was stopped (interrupted)'
        : result.signal
          ? `was killed by ${result.signal}`
          : result.exitCode === 127
            ? `could not start (${(result.stderr ?? '').split('\n').filter(Boolean).at(-1) ?? 'command not found'})`
            : result.exitCode !== undefined
              ? `exited with code ${result.exitCode}`
              : `could not start (${result.shortMessage})`;
      const stderrTail = (result.stderr ?? '').split('\n').filter(Boolean).slice(-TAIL_LINES);
      throw new StageError(`command ${why}${stderrTail.length ? `: ${stderrTail.at(-1)}` : ''}`, stderrTail);
    }

    const outputs: Record<string, Digest> = {};
    for (const [i, abs] of outs.entries()) {
      let isDir: boolean;
      try {
        isDir = statSync(abs).isDirectory();
      } catch {
        throw new StageError(`declared out "${expandedOuts(p)[i]}" was not produced`);
      }
      const files = isDir ? listFiles(abs).map((f) => join(abs, f)) : [abs];
      for (const f of files) outputs[relative(ctx.projectDir, f)] = await ctx.store.putBlob(readFileSync(f));
    }
    return { outputs, metrics: p.metrics ? readMetrics(ctx.projectDir, expand(p, p.metrics)) : {} };
  },

  files: (_p, record) => Object.keys(record.outputs),

  restore(ctx, _p, record) {
    const restored: string[] = [];
    for (const [rel, digest] of Object.entries(record.outputs)) {
      const abs = join(ctx.projectDir, rel); // rel comes from a record: already normalised
      if (ctx.store.hashPath(abs) === digest) continue;
      const bytes = ctx.store.getBlob(digest)!; // hash-checked; a missing one throws CacheCorruption
      writeFileAtomic(abs, bytes); // a reader never sees a half-restored file
      restored.push(rel);
    }
    return restored;
  },
});

function launcherScript(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const compiled = join(here, 'command-launcher.js');
  // Under vitest this module runs from source; the launcher always runs compiled.
  return existsSync(compiled) ? compiled : join(here, '..', 'dist', 'stages', 'command-launcher.js');
}

/** ${NAME} taken from the stage's env param (e.g. out/fit-${LR}.json in a matrix over env). */
function expand(p: CommandParams, path: string): string {
  return path.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name: string) => p.env[name] ?? m);
}

function expandedOuts(p: CommandParams): string[] {
  return p.outs.map((o) => expand(p, o));
}

function readMetrics(projectDir: string, path: string): Record<string, number> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(resolve(projectDir, path), 'utf8'));
  } catch (e) {
    throw new StageError(
      `metrics file "${path}": ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not produced' : `not valid JSON (${(e as Error).message})`}`,
    );
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new StageError(`metrics file "${path}" must hold a JSON object`);
  return Object.fromEntries(Object.entries(value).filter((kv): kv is [string, number] => typeof kv[1] === 'number'));
}

/** Outs are written and deleted by podium, so they must stay inside the project. */
export function insideProject(projectDir: string, path: string, what: string): string {
  const abs = resolve(projectDir, path);
  const rel = relative(projectDir, abs);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel))
    throw new StageError(`${what} path "${path}" is outside the project directory`);
  return abs;
}
