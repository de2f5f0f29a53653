// Where the project and its cache are. Kept apart from the store so the no-op check can find the
// cache without loading LMDB.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export interface CommonOptions {
  cache?: string;
  /** --backend: overrides the pipeline's `backend` for every stage that does not set its own. */
  backend?: string;
}

/**
 * The project a path belongs to: the nearest folder at or above it holding `package.json` or a
 * `.podium` folder, as git and DVC find their roots; the folder itself when there is none. So
 * `cd pipelines && podium run final-submission.json` uses the project's cache, not a new one.
 */
export function projectRoot(startDir: string, fallback = resolve(startDir)): string {
  for (let dir = resolve(startDir); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) || existsSync(join(dir, '.podium'))) return dir;
    if (dirname(dir) === dir) return fallback;
  }
}

/**
 * The project of a pipeline file: found from the file's folder, not from where podium runs.
 * Outside any project, the working directory (where `podium` was typed) is the project.
 */
export function projectOfPipeline(file: string): string {
  return projectRoot(dirname(resolve(file)), process.cwd());
}

/**
 * A pipeline path as typed: relative to the working directory, or, when nothing is there,
 * relative to the project the working directory is in (`pipelines/x.json` typed from `docs/`).
 */
export function pipelinePath(file: string): string {
  const here = resolve(file);
  if (existsSync(here)) return here;
  const fromRoot = resolve(projectRoot(process.cwd()), file);
  return existsSync(fromRoot) ? fromRoot : here;
}

/** --cache, else PODIUM_CACHE (both relative to the working directory), else the project's .podium/cache. */
export function cacheDir(opts: CommonOptions, projectDir: string = projectRoot(process.cwd(), process.cwd())): string {
  if (opts.cache) return resolve(opts.cache);
  if (process.env.PODIUM_CACHE) return resolve(process.env.PODIUM_CACHE);
  return join(projectDir, '.podium', 'cache');
}
