// `podium cat <pipeline> <stage> [output] [--out FILE]`: one output's bytes out of the cache, to
// stdout or a file, so any artifact (a checkpoint, a history, the preview PNG, predictions) can be
// taken out without code. The record is the stage's current one, else the one its lock entry
// names (like `podium show`); the bytes are verified against their digest on the way out.
import type { Digest } from '../cache/canonical.js';
import { lockOf, loadPipeline, openStore, type CommonOptions } from './context.js';
import { UsageError } from './diagnostics.js';
import { resolveIds } from './plan.js';
import { pipelineState } from './state.js';

export interface CatResult {
  id: string;
  output: string;
  digest: Digest;
  bytes: Buffer;
  source: 'current' | 'lock';
}

export async function cat(
  file: string | undefined,
  stage: string | undefined,
  output: string | undefined,
  opts: CommonOptions,
): Promise<CatResult> {
  const pipeline = loadPipeline(file, opts);
  if (!stage) throw new UsageError('missing the stage argument: podium cat <pipeline> <stage> [output] [--out FILE]');
  const ids = resolveIds(pipeline, [stage], 'cat');
  if (ids.length > 1) throw new UsageError(`stage "${stage}" is a matrix; name one point: ${ids.join(', ')}`);
  const id = ids[0]!;
  const { lock } = lockOf(pipeline);
  const store = openStore(opts, pipeline.projectDir, 'read');
  try {
    const s = pipelineState(pipeline, store, lock).find((x) => x.node.id === id)!;
    const lockedKey = lock?.stages[id]?.key;
    const record = s.record ?? (lockedKey ? store.getRecord(lockedKey) : undefined);
    if (!record)
      throw new UsageError(
        `${id} has no result in the cache (${s.reasons[0] ?? 'not run yet'}); run the pipeline first`,
      );
    const names = Object.keys(record.outputs);
    let name = output;
    if (name === undefined) {
      if (names.length !== 1) throw new UsageError(`${id} has ${names.length} outputs; name one: ${names.join(', ')}`);
      name = names[0]!;
    }
    const digest = record.outputs[name];
    if (!digest) throw new UsageError(`${id} has no output "${name}" (outputs: ${names.join(', ') || 'none'})`);
    let bytes: Buffer | undefined;
    try {
      bytes = store.getBlob(digest, { verify: true });
    } catch (e) {
      throw new UsageError(`${id} ${name}: ${(e as Error).message}`);
    }
    if (!bytes)
      throw new UsageError(
        `${id} ${name}: blob ${digest.slice(0, 12)} is no longer in the cache (gc?); rerun the stage`,
      );
    // A copy: the store closes below, and its buffers may point into the memory map.
    return { id, output: name, digest, bytes: Buffer.from(bytes), source: s.record ? 'current' : 'lock' };
  } finally {
    await store.close();
  }
}
