// Planning: which stages a run considers and which it must re-execute, from --only, --from and
// --force. Separate from execution so dry runs and real runs agree.
import { alg } from '@dagrejs/graphlib';
import type { Pipeline } from './analyze.js';
import { didYouMean, UsageError } from './diagnostics.js';

export interface PlanOptions {
  only?: string[];
  from?: string;
  force?: string[];
}

export interface Plan {
  /** Stages to consider, in topological order. */
  ids: string[];
  /** Stages to re-execute even when cached. */
  forced: Set<string>;
}

/**
 * A name given on the command line: a concrete id, a base id standing for all its matrix points,
 * or `base@N`, the N-th point of a matrix (from 0, in the order the matrix expands), so that ids
 * like `fit@env={"LR":"0.1"}` can be named without shell quoting.
 */
export function resolveIds(pipeline: Pipeline, names: string[], flag: string): string[] {
  return names.flatMap((name) => {
    if (pipeline.byId.has(name)) return [name];
    const points = pipeline.stages.filter((s) => s.baseId === name).map((s) => s.id);
    if (points.length) return points;
    const alias = /^(.+)@(\d+)$/.exec(name);
    if (alias) {
      const matrix = pointsOf(pipeline, alias[1]!);
      const id = matrix[Number(alias[2])];
      if (id !== undefined) return [id];
      if (matrix.length)
        throw new UsageError(
          `${flag} ${name}: ${alias[1]} has ${matrix.length} matrix points, ${alias[1]}@0 to ${alias[1]}@${matrix.length - 1}`,
        );
      if (pipeline.byId.has(alias[1]!))
        throw new UsageError(`${flag} ${name}: ${alias[1]} has no matrix; name it ${alias[1]}`);
    }
    const bases = [...new Set(pipeline.stages.map((s) => s.baseId))];
    const hint =
      didYouMean(name.split('@')[0]!, bases) ||
      didYouMean(
        name,
        pipeline.stages.map((s) => s.id),
      );
    throw new UsageError(
      `${flag} ${name}: no stage with that id in ${pipeline.name}${hint} (stages: ${bases.join(', ')})`,
    );
  });
}

/** A matrix stage's concrete ids in expansion order (index = the `@N` alias); [] for a plain stage. */
export function pointsOf(pipeline: Pipeline, baseId: string): string[] {
  return pipeline.stages
    .filter((s) => s.baseId === baseId && s.point !== undefined)
    .sort((a, b) => a.point! - b.point!)
    .map((s) => s.id);
}

export function plan(pipeline: Pipeline, opts: PlanOptions): Plan {
  const g = pipeline.graph;
  let selected: Set<string> | undefined;
  const forced = new Set(resolveIds(pipeline, opts.force ?? [], '--force'));
  if (opts.only?.length) {
    // --only: these stages, plus whatever they need (taken from the cache when fresh).
    const targets = resolveIds(pipeline, opts.only, '--only');
    selected = new Set(targets);
    for (const t of targets) for (const a of ancestors(pipeline, t)) selected.add(a);
  }
  if (opts.from) {
    // --from: this stage and everything downstream of it re-execute.
    const starts = resolveIds(pipeline, [opts.from], '--from');
    const below = new Set(alg.preorder(g, starts));
    for (const id of below) forced.add(id);
    const need = new Set(below);
    for (const id of below) for (const a of ancestors(pipeline, id)) need.add(a);
    selected = selected ? new Set([...selected].filter((id) => need.has(id))) : need;
  }
  const ids = pipeline.stages.map((s) => s.id).filter((id) => !selected || selected.has(id));
  return { ids, forced };
}

function ancestors(pipeline: Pipeline, id: string): Set<string> {
  const seen = new Set<string>();
  const stack = [id];
  while (stack.length) {
    for (const p of pipeline.graph.predecessors(stack.pop()!) ?? [])
      if (!seen.has(p)) {
        seen.add(p);
        stack.push(p);
      }
  }
  return seen;
}
