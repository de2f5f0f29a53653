import { dirname, join, resolve } from 'node:path';

/** `pipelines/final-submission.json` → `pipelines/final-submission.lock.json`. */
export function lockPathOf(pipelineFile: string): string {
  const abs = resolve(pipelineFile);
  return join(dirname(abs), `${abs.slice(dirname(abs).length + 1).replace(/\.json$/i, '')}.lock.json`);
}
