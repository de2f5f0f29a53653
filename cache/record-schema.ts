// Records are checked when read: a record from an older podium, or one damaged on disk, is
// reported and treated as a miss instead of crashing a run or feeding a stage garbage.
import { isDigest } from './canonical.js';

/** Undefined when the value is a well-formed StageRecord, else what is wrong with it. */
export function checkRecord(value: unknown): string | undefined {
  if (!value || typeof value !== 'object') return 'not an object';
  const r = value as Record<string, unknown>;
  if (!isDigest(r.key)) return 'key is not a digest';
  if (typeof r.kind !== 'string' || typeof r.stageId !== 'string') return 'kind/stageId missing';
  if (typeof r.version !== 'number' || typeof r.durationMs !== 'number') return 'version/durationMs missing';
  if (!r.outputs || typeof r.outputs !== 'object' || !Object.values(r.outputs).every(isDigest))
    return 'outputs malformed';
  if (!Array.isArray(r.refs) || !r.refs.every(isDigest)) return 'refs malformed';
  if (!r.metrics || typeof r.metrics !== 'object') return 'metrics malformed';
  if (!Array.isArray(r.logTail)) return 'logTail malformed';
  return undefined;
}
