// What the report shows, gathered from the cache and the lock file into plain data (no HTML, no
// charts), so the HTML, the charts and `bench/quality.mjs` all read the same numbers. Each stage's
// record is the current one when the stage is fresh, else the one the lock file names (the last
// successful run), like `podium show`; a stage with neither is listed as missing and its section
// says so rather than disappearing.
import type { Digest } from '../../cache/canonical.js';
import type { LockFile, LockStage } from '../../cache/lockfile.js';
import type { StageRecord, Store } from '../../cache/store.js';
import type { FuseReport } from '../../stages/fuse.js';
import { splitMetrics, type Misclassified } from '../../stages/data/metrics.js';
import { decodePredictions } from '../../stages/data/predictions.js';
import type { DecodedSet } from '../../stages/data/decoded.js';
import type { Pipeline, StageNode } from '../analyze.js';
import { pipelineState } from '../state.js';

export interface StageEntry {
  node: StageNode;
  fresh: boolean;
  /** Why it is stale (empty when fresh). */
  reasons: string[];
  record: StageRecord | undefined;
  /** 'current': the record of the pipeline as it is; 'lock': the lock file's (older params). */
  source: 'current' | 'lock' | null;
  lock: LockStage | undefined;
}

export interface HistoryRow {
  epoch: number;
  loss?: number;
  acc?: number;
  lr?: number;
  valTop1?: number;
  valTop3?: number;
  valLoss?: number;
}
export interface CurveSet {
  stage: string;
  points: Array<{ id: string; label: string; rows: HistoryRow[]; lrSteps: number[] }>;
}

export interface SweepRow {
  stageId: string;
  epoch: string;
  top1: number;
  top3: number;
  loss: number;
  selected: boolean;
}
export interface SweepTable {
  stage: string;
  split: string;
  crops: string;
  scale: number | string;
  metric: string;
  rows: SweepRow[];
}

export interface MulticropRow {
  split: string;
  stageId: string;
  epoch: string;
  crops: string;
  scale: number | 'all' | null;
  top1: number;
  top3: number;
  loss: number;
  averaged?: boolean;
}
export interface MulticropTable {
  stage: string;
  average: string;
  rows: MulticropRow[];
}

export interface Gallery {
  title: string;
  stage: string;
  /** Where the predictions came from (`stage:output`). */
  source: string;
  split: string;
  classes: string[];
  confusion: number[][];
  top1: number | null;
  topK: number | null;
  k: number;
  labelled: number;
  misclassified: Array<Misclassified & { blob: Digest | null }>;
}

export interface RunRow {
  id: string;
  kind: string;
  state: 'fresh' | 'stale' | 'missing';
  /** Whether the record was computed by the pipeline's most recent run that executed anything. */
  ranInLastRun: boolean | null;
  startedAt: string | null;
  durationMs: number | null;
  backend: string | null;
  /** "slurm job 42 on node1 (GPU 2)" for a stage a cluster job computed; null when it ran here. */
  where: string | null;
  throughput: string | null;
  key: string | null;
}

export interface ReportData {
  pipeline: { name: string; file: string; seed: number; generatedAt: string };
  lastRunAt: string | null;
  stages: StageEntry[];
  run: RunRow[];
  curves: CurveSet[];
  sweeps: SweepTable[];
  multicrop: MulticropTable[];
  fusions: Array<{ stage: string; report: FuseReport }>;
  galleries: Gallery[];
  previews: Array<{ stage: string; png: Buffer }>;
  /** What a section could not show and why (a blob gone from the cache, a stage never run). */
  missing: string[];
}

type BlobReader = (digest: Digest | undefined) => Buffer | undefined;

/**
 * Reads the blobs the report needs, always verified: a report must not show corrupt bytes as
 * data. A corrupt blob (getBlob throws) becomes a "not shown" line, and the rest of the report is
 * still written.
 */
function blobReader(store: Store, missing: string[]): BlobReader {
  return (digest) => {
    if (!digest) return undefined;
    try {
      return store.getBlob(digest, { verify: true });
    } catch (e) {
      missing.push(`blob ${digest.slice(0, 12)}: ${(e as Error).message}`);
      return undefined;
    }
  };
}
function json<T>(blob: BlobReader, digest: Digest | undefined): T | undefined {
  const b = blob(digest);
  return b ? (JSON.parse(b.toString()) as T) : undefined;
}

export function stageEntries(pipeline: Pipeline, store: Store, lock: LockFile | undefined): StageEntry[] {
  return pipelineState(pipeline, store, lock).map((s) => {
    const lockStage = lock?.stages[s.node.id];
    const fromLock = !s.record && lockStage ? store.getRecord(lockStage.key) : undefined;
    const record = s.record ?? fromLock;
    return {
      node: s.node,
      fresh: s.fresh,
      reasons: s.reasons,
      record,
      source: s.record ? 'current' : fromLock ? 'lock' : null,
      lock: lockStage,
    };
  });
}

export function gatherReport(pipeline: Pipeline, store: Store, lock: LockFile | undefined): ReportData {
  const stages = stageEntries(pipeline, store, lock);
  const missing: string[] = [];
  const blob = blobReader(store, missing);
  const byId = new Map(stages.map((s) => [s.node.id, s]));
  const need = (s: StageEntry, output: string, what: string): Buffer | undefined => {
    const d = s.record?.outputs[output];
    if (!s.record) {
      missing.push(`${s.node.id}: no result in the cache (${s.reasons[0] ?? 'never run'}), so no ${what}`);
      return undefined;
    }
    const before = missing.length;
    const b = blob(d);
    // A corrupt blob has its own line already; name the stage and output in it.
    if (!b && missing.length > before)
      missing[missing.length - 1] =
        `${s.node.id}: output "${output}" is corrupt in the cache (${missing.at(-1)}), so no ${what}`;
    else if (!b) missing.push(`${s.node.id}: output "${output}" is not in the cache, so no ${what}`);
    return b;
  };
  const ofKind = (k: string): StageEntry[] => stages.filter((s) => s.node.kind.name === k);
  const lastRun = store
    .runs()
    .filter((r) => r.pipeline === pipeline.file)
    .sort((a, b) => a.at.localeCompare(b.at));

  // Training curves: one set per finetune stage as written in the file (its matrix points together).
  const curves: CurveSet[] = [];
  for (const s of ofKind('finetune')) {
    const h = need(s, 'history', 'training curve');
    if (!h) continue;
    const rows = (JSON.parse(h.toString()) as { epochs: HistoryRow[] }).epochs;
    let set = curves.find((c) => c.stage === s.node.baseId);
    if (!set) curves.push((set = { stage: s.node.baseId, points: [] }));
    set.points.push({ id: s.node.id, label: pointLabel(s.node), rows, lrSteps: lrStepEpochs(rows) });
  }

  const sweeps: SweepTable[] = [];
  for (const s of ofKind('checkpoint-sweep')) {
    const t = need(s, 'table', 'sweep table');
    if (t) sweeps.push({ stage: s.node.id, ...(JSON.parse(t.toString()) as Omit<SweepTable, 'stage'>) });
  }

  const multicrop: MulticropTable[] = [];
  for (const s of ofKind('multicrop-predict')) {
    const t = need(s, 'table', 'crops × scales table');
    if (t) multicrop.push({ stage: s.node.id, ...(JSON.parse(t.toString()) as Omit<MulticropTable, 'stage'>) });
  }

  const fusions: ReportData['fusions'] = [];
  const galleries: Gallery[] = [];
  for (const s of ofKind('fuse')) {
    const r = need(s, 'report', 'fusion table');
    if (!r) continue;
    const report = JSON.parse(r.toString()) as FuseReport;
    fusions.push({ stage: s.node.id, report });
    // The fused predictions on the split the fusion was fitted and scored on.
    const p = need(s, 'predictions', 'confusion matrix');
    if (!p) continue;
    const preds = decodePredictions(p);
    const sp = preds.splits[report.fitSplit];
    if (!sp) continue;
    const m = splitMetrics(sp, preds.classes, 3);
    galleries.push(
      withThumbs(blob, pipeline, byId, s.node, {
        title: `fusion (${s.node.id}), ${report.fitSplit}`,
        stage: s.node.id,
        source: `${s.node.id}:predictions`,
        split: report.fitSplit,
        classes: preds.classes,
        ...scoresOf(m),
      }),
    );
  }
  for (const s of ofKind('export')) {
    if (!s.record) {
      need(s, 'metrics', 'final confusion matrix');
      continue;
    }
    if (!s.record.outputs.metrics) {
      missing.push(`${s.node.id}: its split has no labels, so no confusion matrix of the final predictions`);
      continue;
    }
    const m = json<{
      split: string;
      source: string;
      confusion: number[][];
      top1: number | null;
      topK: number | null;
      k: number;
      labelled: number;
      perClass: Array<{ class: string }>;
      misclassified: Misclassified[];
    }>(blob, s.record.outputs.metrics);
    if (!m) {
      need(s, 'metrics', 'final confusion matrix');
      continue;
    }
    galleries.push(
      withThumbs(blob, pipeline, byId, s.node, {
        title: `final predictions (${s.node.id}), ${m.split}`,
        stage: s.node.id,
        source: m.source,
        split: m.split,
        classes: m.perClass.map((c) => c.class),
        ...scoresOf(m),
      }),
    );
  }

  const previews: ReportData['previews'] = [];
  for (const s of ofKind('augment')) {
    const png = need(s, 'preview', 'augmentation preview');
    if (png) previews.push({ stage: s.node.id, png });
  }

  const last = lastRun.at(-1);
  const previous = lastRun.at(-2);
  const run: RunRow[] = stages.map((s) => {
    const r = s.record;
    return {
      id: s.node.id,
      kind: s.node.kind.name,
      state: !r ? 'missing' : s.fresh ? 'fresh' : 'stale',
      // The run log holds every key a run finished (ran or cached); a record that started after
      // the run before it was computed by it.
      ranInLastRun: r && last ? last.keys.includes(r.key) && (!previous || r.startedAt > previous.at) : null,
      startedAt: r?.startedAt ?? null,
      durationMs: r?.durationMs ?? null,
      backend: r?.backend ?? null,
      where: r?.where
        ? `slurm job ${r.where.jobId} on ${r.where.node}${r.where.gpus ? ` (GPU ${r.where.gpus})` : ''}`
        : null,
      throughput: r ? throughputOf(r) : null,
      key: r?.key ?? s.lock?.key ?? null,
    };
  });

  return {
    pipeline: { name: pipeline.name, file: pipeline.file, seed: pipeline.seed, generatedAt: new Date().toISOString() },
    lastRunAt: last?.at ?? null,
    stages,
    run,
    curves,
    sweeps,
    multicrop,
    fusions,
    galleries,
    previews,
    missing,
  };
}

/** `lr=0.05` for a matrix point, the id for a plain stage. */
export function pointLabel(node: StageNode): string {
  const at = node.id.indexOf('@');
  return at < 0 ? node.id : node.id.slice(at + 1);
}

/** Epochs (1-based) whose learning rate differs from the epoch before: where the schedule stepped. */
export function lrStepEpochs(rows: HistoryRow[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < rows.length; i++) {
    const [a, b] = [rows[i - 1]!.lr, rows[i]!.lr];
    if (a !== undefined && b !== undefined && Math.abs(a - b) > 1e-12 * Math.max(Math.abs(a), Math.abs(b)))
      out.push(rows[i]!.epoch);
  }
  return out;
}

/**
 * The stage's own throughput: the record's timing (finetune: imagesPerSec of the train loop and
 * seconds per epoch), else the rate its log tail reports last (sweep and predict: crops/s).
 */
export function throughputOf(r: StageRecord): string | null {
  const m = r.timing?.imagesPerSec;
  if (typeof m === 'number')
    return `${m.toFixed(1)} img/s${r.timing?.secondsPerEpoch ? `, ${r.timing.secondsPerEpoch.toFixed(1)} s/epoch` : ''}`;
  for (let i = r.logTail.length - 1; i >= 0; i--) {
    const hit = /([\d.]+) (img|crops|images)\/s/.exec(r.logTail[i]!);
    if (hit) return `${hit[1]} ${hit[2]}/s`;
  }
  return null;
}

/**
 * The decoded images of the predictions' split, found by walking the stage's inputs upstream to a
 * decode stage: the gallery shows the very pixels the models saw.
 */
function withThumbs(
  blob: BlobReader,
  pipeline: Pipeline,
  byId: Map<string, StageEntry>,
  from: StageNode,
  g: Gallery,
): Gallery {
  const seen = new Set<string>();
  const queue = [from.id];
  let decode: StageEntry | undefined;
  while (queue.length && !decode) {
    const id = queue.shift()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const e = byId.get(id);
    if (e?.node.kind.name === 'decode') decode = e;
    else for (const i of Object.values(pipeline.byId.get(id)?.inputs ?? {})) queue.push(...i.ids);
  }
  const set = decode?.record ? json<DecodedSet>(blob, decode.record.outputs.images) : undefined;
  if (!set) return g;
  const blobs = new Map((set.splits[g.split] ?? []).map((r) => [r.id, r.blob]));
  return { ...g, misclassified: g.misclassified.map((x) => ({ ...x, blob: blobs.get(x.id) ?? null })) };
}

/** The scores and misclassified rows a gallery shows, from split metrics (fuse) or export's metrics blob. */
function scoresOf(m: {
  confusion: number[][];
  top1: number | null;
  topK: number | null;
  k: number;
  labelled: number;
  misclassified: Misclassified[];
}): Pick<Gallery, 'confusion' | 'top1' | 'topK' | 'k' | 'labelled' | 'misclassified'> {
  const { confusion, top1, topK, k, labelled } = m;
  return { confusion, top1, topK, k, labelled, misclassified: m.misclassified.map((x) => ({ ...x, blob: null })) };
}
