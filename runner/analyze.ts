// Analysis: a pipeline file in, a fully validated graph out. Nothing runs until this succeeds,
// and the executor accepts only its result. Every problem found is reported, with its location.
import { resolve } from 'node:path';
import type { ErrorObject } from 'ajv';
import { Graph, alg } from '@dagrejs/graphlib';
import type { StageKind } from '../stages/contract.js';
import { stageKinds } from '../stages/registry.js';
import { BACKEND_NAMES } from '../stages/tf/backend-names.js';
import { didYouMean, type Diagnostic, type Result } from './diagnostics.js';
import { applyOverride, blameOverride } from './overrides.js';
import { escapePointer, JsonSource } from './source.js';
import { cyclePath, topoOrder } from './stage-order.js';
import { validator } from './validators.js';

export interface StageNode {
  /** Concrete id; matrix points get `base@param=value,…`. */
  readonly id: string;
  /** The id as written in the file. */
  readonly baseId: string;
  readonly kind: StageKind<any>;
  /** Params with defaults filled in and matrix values applied. */
  readonly params: Record<string, unknown>;
  /** Input name → concrete upstream ids, and whether the stage takes a list. */
  readonly inputs: Record<string, { ids: string[]; many: boolean }>;
  readonly pointer: string;
  /** A matrix point's index in expansion order: `baseId@point` is its quoting-free alias. */
  readonly point?: number;
}

export interface Pipeline {
  readonly file: string;
  readonly name: string;
  readonly seed: number;
  readonly projectDir: string;
  /** Stages in a topological order (stable: file order where the graph allows). */
  readonly stages: StageNode[];
  readonly byId: ReadonlyMap<string, StageNode>;
  readonly graph: Graph;
  readonly source: JsonSource;
}

interface RawStage {
  uses: string;
  inputs?: Record<string, string | string[]>;
  params?: Record<string, unknown>;
  matrix?: Record<string, unknown[]>;
}
interface RawPipeline {
  name: string;
  seed: number;
  backend: string;
  stages: Record<string, RawStage>;
}

/**
 * `overrides` are `--set path=value` settings, applied to the file's value before validation so
 * they are checked like the file; an error they cause says which --set did it.
 */
export function analyze(
  file: string,
  projectDir = process.cwd(),
  backendOverride?: string,
  overrides: readonly string[] = [],
): Result<Pipeline> {
  const result = analyzeValue(file, projectDir, backendOverride, overrides);
  return result.ok || !overrides.length
    ? result
    : { ok: false, errors: result.errors.map((d) => blameOverride(d, overrides)) };
}

function analyzeValue(
  file: string,
  projectDir: string,
  backendOverride: string | undefined,
  overrides: readonly string[],
): Result<Pipeline> {
  const path = resolve(file);
  const { source, value, errors } = JsonSource.read(file);
  if (errors.length) return { ok: false, errors };
  const err = (pointer: string, message: string, key = false): Diagnostic =>
    source.diagnostic(pointer, message, { key });
  const overrideErrors = overrides.flatMap((o) => applyOverride(value, o, err));
  if (overrideErrors.length) return { ok: false, errors: overrideErrors };

  if (backendOverride !== undefined && !(BACKEND_NAMES as readonly string[]).includes(backendOverride)) {
    return {
      ok: false,
      errors: [
        {
          file,
          pointer: '',
          line: 1,
          column: 1,
          length: 0,
          message: `--backend ${backendOverride}: expected one of ${BACKEND_NAMES.join(', ')}`,
        },
      ],
    };
  }
  const validatePipeline = validator('pipeline');
  if (!validatePipeline(value)) return { ok: false, errors: ajvErrors(validatePipeline.errors ?? [], '', source) };
  const raw = value as RawPipeline;

  const diags: Diagnostic[] = [];
  const nodes: StageNode[] = [];
  const pointsOf = new Map<string, string[]>(); // base id → concrete ids
  for (const [baseId, stage] of Object.entries(raw.stages)) {
    const sp = `/stages/${escapePointer(baseId)}`;
    const kind = stageKinds.get(stage.uses);
    if (!kind) {
      diags.push(
        err(
          `${sp}/uses`,
          `unknown stage kind "${stage.uses}"${didYouMean(stage.uses, stageKinds.keys())} (expected one of: ${[...stageKinds.keys()].join(', ')})`,
        ),
      );
      continue;
    }
    const points = expandMatrix(baseId, stage, kind, sp, err, diags);
    pointsOf.set(
      baseId,
      points.map((p) => p.id),
    );
    for (const [index, p] of points.entries()) {
      const params = structuredClone({ ...(stage.params ?? {}), ...p.values });
      const validate = validator(`kind:${kind.name}`);
      if (!validate(params)) {
        // A bad matrix value is reported at the matrix entry, anything else at the params.
        for (const d of ajvErrors(validate.errors ?? [], `${sp}/params`, source)) {
          const param = d.pointer.slice(`${sp}/params/`.length).split('/')[0] ?? '';
          const index = param in p.values ? stage.matrix![param]!.indexOf(p.values[param]) : -1;
          diags.push(
            index >= 0
              ? err(
                  `${sp}/matrix/${escapePointer(param)}/${index}`,
                  `matrix value ${JSON.stringify(p.values[param])}: ${d.message}`,
                )
              : d,
          );
        }
        break; // one report per stage, not one per matrix point
      }
      // A stage's backend: its own, else --backend, else the pipeline's. Resolved here so that
      // it is part of the key: another backend may give other bytes.
      if ('backend' in params && params.backend === null) params.backend = backendOverride ?? raw.backend;
      nodes.push({
        id: p.id,
        baseId,
        kind,
        params,
        inputs: {},
        pointer: sp,
        ...(stage.matrix ? { point: index } : {}),
      });
      for (const problem of kind.check?.(params, projectDir) ?? [])
        diags.push(err(`${sp}/params/${escapePointer(problem.param)}`, problem.message));
    }
  }

  // Inputs: resolve references (a matrix id stands for all its points) and check them against the kind.
  for (const node of nodes) {
    const stage = raw.stages[node.baseId]!;
    const sp = node.pointer;
    const declared = node.kind.inputs;
    for (const [name, ref] of Object.entries(stage.inputs ?? {})) {
      const ip = `${sp}/inputs/${escapePointer(name)}`;
      const spec = declared === 'any' ? { many: true } : declared[name];
      if (!spec) {
        diags.push(
          err(
            ip,
            `stage kind "${node.kind.name}" has no input "${name}" (expected one of: ${Object.keys(declared).join(', ') || 'none'})`,
            true,
          ),
        );
        continue;
      }
      const refs = Array.isArray(ref) ? ref : [ref];
      const ids: string[] = [];
      refs.forEach((r, i) => {
        const points = pointsOf.get(r);
        if (!points)
          diags.push(
            err(
              Array.isArray(ref) ? `${ip}/${i}` : ip,
              `unknown input reference "${r}": no stage with that id${
                r === node.baseId
                  ? ' (a stage cannot take its own output)'
                  : didYouMean(
                      r,
                      [...pointsOf.keys()].filter((id) => id !== node.baseId),
                    )
              }`,
            ),
          );
        else ids.push(...points);
      });
      const many = Array.isArray(ref) || ids.length > 1;
      if (many && !spec.many)
        diags.push(
          err(ip, `input "${name}" takes one stage, got ${ids.length}${ids.length > 1 ? ` (${ids.join(', ')})` : ''}`),
        );
      node.inputs[name] = { ids, many: spec.many };
    }
    if (declared !== 'any') {
      for (const [name, spec] of Object.entries(declared)) {
        if (spec.required && !(stage.inputs && name in stage.inputs))
          diags.push(err(sp, `stage "${node.baseId}" (${node.kind.name}) needs input "${name}": ${spec.description}`));
      }
    }
  }
  if (diags.length) return { ok: false, errors: dedupe(diags) };

  const graph = new Graph({ directed: true });
  for (const n of nodes) graph.setNode(n.id);
  for (const n of nodes) for (const { ids } of Object.values(n.inputs)) for (const up of ids) graph.setEdge(up, n.id);
  const byId = new Map(nodes.map((n) => [n.id, n]));

  const cycles = alg.findCycles(graph);
  if (cycles.length) {
    return {
      ok: false,
      errors: cycles.map((scc) => {
        const path = cyclePath(graph, scc);
        const first = byId.get(path[0]!)!;
        return err(`${first.pointer}/inputs`, `cycle: ${path.join(' → ')}`);
      }),
    };
  }

  return {
    ok: true,
    value: {
      file: path,
      name: raw.name,
      seed: raw.seed,
      projectDir: resolve(projectDir),
      stages: topoOrder(graph, nodes),
      byId,
      graph,
      source,
    },
  };
}

interface MatrixPoint {
  id: string;
  values: Record<string, unknown>;
}

function expandMatrix(
  baseId: string,
  stage: RawStage,
  kind: StageKind<unknown>,
  sp: string,
  err: (p: string, m: string, key?: boolean) => Diagnostic,
  diags: Diagnostic[],
): MatrixPoint[] {
  if (!stage.matrix) return [{ id: baseId, values: {} }];
  const known = Object.keys((kind.params.properties as object | undefined) ?? {});
  let points: MatrixPoint[] = [{ id: '', values: {} }];
  for (const [param, values] of Object.entries(stage.matrix)) {
    if (!known.includes(param)) {
      diags.push(
        err(
          `${sp}/matrix/${escapePointer(param)}`,
          `matrix names "${param}", which is not a param of "${kind.name}"${didYouMean(param, known)} (expected one of: ${known.join(', ')})`,
          true,
        ),
      );
      continue;
    }
    const seen = new Set<string>();
    values.forEach((v, i) => {
      const label = typeof v === 'string' ? v : JSON.stringify(v);
      if (seen.has(label))
        diags.push(err(`${sp}/matrix/${escapePointer(param)}/${i}`, `duplicate matrix value ${label}`));
      seen.add(label);
    });
    points = points.flatMap((p) =>
      values.map((v) => ({
        id: `${p.id}${p.id ? ',' : ''}${param}=${typeof v === 'string' ? v : JSON.stringify(v)}`,
        values: { ...p.values, [param]: v },
      })),
    );
  }
  return points.map((p) => ({ id: `${baseId}@${p.id}`, values: p.values }));
}

function ajvErrors(errors: ErrorObject[], prefix: string, source: JsonSource): Diagnostic[] {
  // oneOf failures repeat each branch's error; keep the oneOf summary only.
  const oneOfPaths = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  return dedupe(
    errors
      .filter((e) => e.keyword === 'oneOf' || !oneOfPaths.has(e.instancePath))
      .map((e) => {
        const pointer = prefix + e.instancePath;
        const p = e.params as Record<string, unknown>;
        switch (e.keyword) {
          case 'additionalProperties':
            return source.diagnostic(
              `${pointer}/${escapePointer(String(p.additionalProperty))}`,
              `unknown property "${String(p.additionalProperty)}"${didYouMean(String(p.additionalProperty), Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {}))}${allowed(e)}`,
              { key: true },
            );
          case 'required':
            return source.diagnostic(pointer, `missing required property "${String(p.missingProperty)}"`);
          case 'type':
            return source.diagnostic(pointer, `expected ${String(p.type)}, got ${describe(e.data)}`);
          case 'enum':
            return source.diagnostic(
              pointer,
              `expected one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(e.data)}`,
            );
          case 'propertyNames':
            return source.diagnostic(
              `${pointer}/${escapePointer(String(p.propertyName))}`,
              `invalid name "${String(p.propertyName)}": stage ids are letters, digits, _ . - and start with a letter or _`,
              { key: true },
            );
          case 'oneOf':
            return source.diagnostic(
              pointer,
              `expected ${(e.schema as Array<{ type?: string }>).map((s) => s.type ?? 'value').join(' or ')}, got ${describe(e.data)}`,
            );
          default:
            return source.diagnostic(
              pointer,
              `${e.message ?? 'invalid'}${e.data !== undefined && typeof e.data !== 'object' ? `, got ${JSON.stringify(e.data)}` : ''}`,
            );
        }
      }),
  );
}

function allowed(e: ErrorObject): string {
  const props = (e.parentSchema as { properties?: object } | undefined)?.properties;
  return props ? ` (expected one of: ${Object.keys(props).join(', ')})` : '';
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v === 'object' ? 'object' : `${typeof v} ${JSON.stringify(v)}`;
}

function dedupe(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const k = `${d.line}:${d.column}:${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
