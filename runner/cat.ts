// `podium cat <pipeline> <stage> [output] [--out FILE]`: one output's bytes out of the cache, to
// stdout or a file, so any artifact (a checkpoint, a history, the preview PNG, predictions) can be
// taken out without code. The record is the stage's current one, else the one its lock entry
// names (like `podium show`); the bytes are verified against their digest on the way out.
import type { Digest } from '../cache/canonical.js';
import type { CommonOptions } from './context.js';
import { UsageError } from './diagnostics.js';
import { readNamedStage } from './named-stage.js';

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
  const usage = 'podium cat <pipeline> <stage> [output] [--out FILE]';
  return readNamedStage(file, stage, opts, 'cat', usage, ({ store, state: s, record, source }) => {
    const id = s.node.id;
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
    // A copy: the store closes once this returns, and its buffers may point into the memory map.
    return { id, output: name, digest, bytes: Buffer.from(bytes), source: source === 'current' ? 'current' : 'lock' };
  });
}
