// `podium dag <pipeline> [--format text|mermaid|dot]`: the stage graph, as `dvc dag` and
// `snakemake --dag` show theirs. Data first (dag), rendering apart (formatDag), so the three
// formats cannot disagree about what the graph is. Matrix points are grouped under their stage.
import { analyze } from './analyze.js';
import { UsageError } from './diagnostics.js';

export interface DagStage {
  /** The id as written in the file. */
  id: string;
  kind: string;
  /** Concrete ids: one for a plain stage, one per matrix point (index = the `id@N` alias). */
  points: string[];
  /** Base ids of the stages it reads, in input order. */
  needs: string[];
  /** Longest path from a stage without inputs: the text format's indentation. */
  depth: number;
}

export interface Dag {
  pipeline: string;
  /** In topological order. */
  stages: DagStage[];
  /** Edges between concrete ids. */
  edges: Array<[from: string, to: string]>;
}

export type DagFormat = 'text' | 'mermaid' | 'dot';

export function dag(file: string, opts: { backend?: string; set?: string[] } = {}): Dag {
  const result = analyze(file, process.cwd(), opts.backend, opts.set);
  if (!result.ok)
    throw new UsageError(
      `${file}: invalid pipeline (${result.errors.length} problem${result.errors.length > 1 ? 's' : ''})`,
      result.errors,
    );
  const p = result.value;
  const stages = new Map<string, DagStage>();
  const edges: Array<[string, string]> = [];
  for (const node of p.stages) {
    const ups = Object.values(node.inputs).flatMap((i) => i.ids);
    for (const up of ups) edges.push([up, node.id]);
    const needs = [...new Set(ups.map((u) => p.byId.get(u)!.baseId))];
    const depth = Math.max(-1, ...needs.map((b) => stages.get(b)!.depth)) + 1;
    const s = stages.get(node.baseId);
    if (s) s.points.push(node.id);
    else stages.set(node.baseId, { id: node.baseId, kind: node.kind.name, points: [node.id], needs, depth });
  }
  for (const s of stages.values()) {
    const byPoint = new Map(s.points.map((id) => [id, p.byId.get(id)!.point ?? 0]));
    s.points.sort((a, b) => byPoint.get(a)! - byPoint.get(b)!);
  }
  return { pipeline: p.name, stages: [...stages.values()], edges };
}

export function formatDag(d: Dag, format: DagFormat): string {
  switch (format) {
    case 'text':
      return text(d);
    case 'mermaid':
      return mermaid(d);
    case 'dot':
      return dot(d);
  }
}

const isMatrix = (s: DagStage): boolean => s.points.length > 1 || s.points[0] !== s.id;

/** One line per stage, indented by depth, with what it reads; matrix points listed under it with their alias. */
function text(d: Dag): string {
  const lines = [
    `${d.pipeline}: ${d.stages.length} stages, ${d.stages.reduce((n, s) => n + s.points.length, 0)} with matrix points`,
  ];
  for (const s of d.stages) {
    const pad = '  '.repeat(s.depth);
    lines.push(
      `${pad}${s.id} (${s.kind}${isMatrix(s) ? `, ${s.points.length} points` : ''})${s.needs.length ? ` ← ${s.needs.join(', ')}` : ''}`,
    );
    if (isMatrix(s)) s.points.forEach((id, i) => lines.push(`${pad}    ${s.id}@${i}  ${id}`));
  }
  return `${lines.join('\n')}\n`;
}

/** Mermaid flowchart: node names are generated (ids hold quotes and braces), labels escaped. */
function mermaid(d: Dag): string {
  const name = names(d);
  const label = (s: string): string => `"${s.replace(/"/g, '#quot;')}"`;
  const lines = ['flowchart TD'];
  for (const s of d.stages) {
    if (!isMatrix(s)) {
      lines.push(`  ${name.get(s.id)}[${label(`${s.id} (${s.kind})`)}]`);
      continue;
    }
    lines.push(`  subgraph ${name.get(`group:${s.id}`)}[${label(`${s.id} (${s.kind})`)}]`);
    s.points.forEach((id, i) =>
      lines.push(`    ${name.get(id)}[${label(`${s.id}@${i}: ${id.slice(s.id.length + 1)}`)}]`),
    );
    lines.push('  end');
  }
  for (const [a, b] of d.edges) lines.push(`  ${name.get(a)} --> ${name.get(b)}`);
  return `${lines.join('\n')}\n`;
}

/** Graphviz DOT: a matrix is a cluster; ids are quoted strings. */
function dot(d: Dag): string {
  // DOT strings: backslash and quote escaped, a line break as the two characters \n.
  const q = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
  const lines = [`digraph ${q(d.pipeline)} {`, '  rankdir=TB;', '  node [shape=box, fontname="Helvetica"];'];
  for (const s of d.stages) {
    if (!isMatrix(s)) {
      lines.push(`  ${q(s.id)} [label=${q(`${s.id}\n(${s.kind})`)}];`);
      continue;
    }
    lines.push(`  subgraph ${q(`cluster_${s.id}`)} {`, `    label=${q(`${s.id} (${s.kind})`)};`);
    s.points.forEach((id, i) => lines.push(`    ${q(id)} [label=${q(`${s.id}@${i}\n${id.slice(s.id.length + 1)}`)}];`));
    lines.push('  }');
  }
  for (const [a, b] of d.edges) lines.push(`  ${q(a)} -> ${q(b)};`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

function names(d: Dag): Map<string, string> {
  const m = new Map<string, string>();
  for (const s of d.stages) {
    if (isMatrix(s)) m.set(`group:${s.id}`, `g${m.size}`);
    for (const id of s.points) m.set(id, `n${m.size}`);
  }
  return m;
}
