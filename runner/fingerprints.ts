// Computing a stage's fingerprint from its upstream records, and explaining in words why a
// fingerprint differs from the one in the lock file. Shared by run, status, diff and verify.
import type { Digest } from '../cache/canonical.js';
import { hashDeps, outputsDigest, type Fingerprint } from '../cache/fingerprint.js';
import type { LockStage } from '../cache/lockfile.js';
import type { StageRecord, Store } from '../cache/store.js';
import type { StatMemo } from '../cache/hash-files.js';
import type { InputValue } from '../stages/contract.js';
import type { Pipeline, StageNode } from './analyze.js';

export type UpstreamLookup = (id: string) => StageRecord | undefined;

export type FingerprintResult = { ok: true; fingerprint: Fingerprint } | { ok: false; input: string; upstream: string };

export function fingerprintOf(
  pipeline: Pipeline,
  node: StageNode,
  store: StatMemo,
  upstream: UpstreamLookup,
): FingerprintResult {
  const inputs: Record<string, Digest | Digest[]> = {};
  for (const [name, { ids, many }] of Object.entries(node.inputs)) {
    const digests: Digest[] = [];
    for (const id of ids) {
      const rec = upstream(id);
      if (!rec) return { ok: false, input: name, upstream: id };
      digests.push(outputsDigest(readOutputs(node, name, rec.outputs)));
    }
    inputs[name] = many ? digests : digests[0]!;
  }
  const deps = hashDeps(store, pipeline.projectDir, node.kind.deps?.(node.params) ?? []);
  return {
    ok: true,
    fingerprint: {
      kind: node.kind.name,
      version: node.kind.version,
      params: node.params,
      inputs,
      deps,
      seed: pipeline.seed,
    },
  };
}

/** The upstream outputs an input reads (InputSpec.reads), all when it names none. */
function readOutputs(node: StageNode, input: string, outputs: StageRecord['outputs']): StageRecord['outputs'] {
  const reads = node.kind.inputs === 'any' ? undefined : node.kind.inputs[input]?.reads;
  if (!reads) return outputs;
  return Object.fromEntries(Object.entries(outputs).filter(([name]) => reads.includes(name)));
}

/** What a stage receives from its upstream records. */
export function inputValues(node: StageNode, upstream: UpstreamLookup): Record<string, InputValue> {
  const out: Record<string, InputValue> = {};
  for (const [name, { ids, many }] of Object.entries(node.inputs)) {
    const arts = ids.map((id) => {
      const rec = upstream(id)!;
      return { stageId: id, outputs: readOutputs(node, name, rec.outputs), metrics: rec.metrics };
    });
    out[name] = many ? arts : arts[0]!;
  }
  return out;
}

/**
 * Why a stage would run whatever its inputs turn out to be: its own kind, version, params, deps
 * or seed differ from the lock (or it has no entry). Empty when only its inputs can change it.
 */
export function ownChanges(pipeline: Pipeline, node: StageNode, store: Store, locked: LockStage | undefined): string[] {
  if (!locked) return ['new stage, not in cache'];
  const deps = hashDeps(store, pipeline.projectDir, node.kind.deps?.(node.params) ?? []);
  const now: Fingerprint = {
    kind: node.kind.name,
    version: node.kind.version,
    params: node.params,
    inputs: locked.inputs ?? {},
    deps,
    seed: pipeline.seed,
  };
  const why = explainChange(now, node, locked);
  return why.length === 1 && why[0] === 'not in cache' ? [] : why;
}

/** Why `now` differs from what the lock recorded; 'not in cache' when it does not. */
export function explainChange(now: Fingerprint, node: StageNode, locked: LockStage | undefined): string[] {
  if (!locked) return ['new stage, not in cache'];
  const why: string[] = [];
  if (locked.kind !== now.kind) why.push(`kind changed ${locked.kind} → ${now.kind}`);
  else if (locked.version !== now.version) why.push(`kind version changed ${locked.version} → ${now.version}`);
  for (const path of changedPaths(locked.params, now.params, 'params')) why.push(path);
  for (const name of new Set([...Object.keys(locked.inputs ?? {}), ...Object.keys(now.inputs)])) {
    if (JSON.stringify(locked.inputs?.[name]) !== JSON.stringify(now.inputs[name])) {
      const ids = node.inputs[name]?.ids ?? [];
      why.push(`input "${name}" changed (stage ${ids.join(', ') || 'removed'})`);
    }
  }
  for (const p of new Set([...Object.keys(locked.deps ?? {}), ...Object.keys(now.deps)])) {
    const [a, b] = [locked.deps?.[p], now.deps[p]];
    if (a === b) continue;
    why.push(
      b === undefined
        ? `deps entry ${p} removed`
        : b === null
          ? `deps file ${p} is missing`
          : a === undefined
            ? `deps entry ${p} added`
            : `deps file ${p} changed`,
    );
  }
  if (locked.seed !== now.seed) why.push(`seed changed ${locked.seed} → ${now.seed}`);
  return why.length ? why : ['not in cache'];
}

/** `params.lr changed 0.01 → 0.005` for every leaf that differs. */
export function changedPaths(a: unknown, b: unknown, path: string): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])]
      .sort()
      .flatMap((k) => changedPaths(a[k], b[k], `${path}.${k}`));
  }
  if (a === undefined) return [`${path} added ${JSON.stringify(b)}`];
  if (b === undefined) return [`${path} removed (was ${JSON.stringify(a)})`];
  return [`${path} changed ${JSON.stringify(a)} → ${JSON.stringify(b)}`];
}
