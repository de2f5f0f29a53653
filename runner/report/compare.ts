// `podium report <pipeline> --compare <lock|git-rev>`: two runs side by side, as `dvc plots diff`
// does: each run's training curves (read through its lock file's history digests, so they show
// as long as the cache still holds them) and every metric that differs, with its delta. The
// other lock is read like `podium diff` reads it (a path, or a git revision of this lock file).
import { existsSync } from 'node:fs';
import type { LockFile } from '../../cache/lockfile.js';
import type { Store } from '../../cache/store.js';
import { directionOf } from '../metrics.js';
import { diffLocks, lockAtRevision, readLockArg, type StageDiff } from '../diff.js';
import type { CurveSet, HistoryRow } from './data.js';
import { lrStepEpochs } from './data.js';
import type { Section } from './html.js';
import { chart, esc, table } from './html.js';

export interface CompareData {
  /** Labels of the two runs: the other one first (the older, usually), then this one. */
  runs: [string, string];
  curves: Array<{ stage: string; runs: Array<{ run: string; set: CurveSet }> }>;
  stages: StageDiff[];
  missing: string[];
}

export async function gatherCompare(
  store: Store,
  lockPath: string,
  current: LockFile,
  arg: string,
): Promise<CompareData> {
  const other = existsSync(arg) ? readLockArg(arg) : await lockAtRevision(lockPath, arg);
  const runs: [string, string] = [arg, 'this run'];
  const missing: string[] = [];
  const byStage = new Map<string, Array<{ run: string; set: CurveSet }>>();
  for (const [run, lock] of [
    [runs[0], other],
    [runs[1], current],
  ] as const) {
    for (const [id, s] of Object.entries(lock.stages)) {
      if (s.kind !== 'finetune' || !s.outputs.history) continue;
      let b: Buffer | undefined;
      try {
        b = store.getBlob(s.outputs.history, { verify: true });
      } catch (e) {
        missing.push(`${run}: the history of ${id}: ${(e as Error).message}`);
        continue;
      }
      if (!b) {
        missing.push(`${run}: the history of ${id} is no longer in the cache`);
        continue;
      }
      const rows = (JSON.parse(b.toString()) as { epochs: HistoryRow[] }).epochs;
      const stage = id.split('@')[0]!;
      const list = byStage.get(stage) ?? [];
      byStage.set(stage, list);
      let entry = list.find((x) => x.run === run);
      if (!entry) list.push((entry = { run, set: { stage, points: [] } }));
      entry.set.points.push({
        id,
        label: id.includes('@') ? id.slice(id.indexOf('@') + 1) : id,
        rows,
        lrSteps: lrStepEpochs(rows),
      });
    }
  }
  return {
    runs,
    curves: [...byStage].map(([stage, r]) => ({ stage, runs: r })),
    stages: diffLocks(other, current),
    missing,
  };
}

export function compareSection(c: CompareData, svgs: Map<string, string>): Section {
  const curves = c.curves
    .map(
      (x) =>
        `<h3>${esc(x.stage)}</h3>${svgs.has(`compare:${x.stage}`) ? chart(svgs.get(`compare:${x.stage}`)!, `${c.runs[0]} (left) and ${c.runs[1]} (right): train solid, val dashed`) : ''}`,
    )
    .join('');
  const rows = c.stages.flatMap((s) =>
    s.metrics.map((m) => {
      // Green for better, red for worse, where the metric has a direction (not for counts or epochs).
      const dir = directionOf(m.name);
      const cls =
        m.delta === null || m.delta === 0 || !dir ? '' : m.delta > 0 === (dir === 'max') ? 'delta-up' : 'delta-down';
      return [
        s.id,
        m.name,
        { html: fmt(m.a), cls: 'n' },
        { html: fmt(m.b), cls: 'n' },
        {
          html:
            m.delta === null
              ? ''
              : `<span class="${cls}">${m.delta >= 0 ? '+' : ''}${Number(m.delta.toPrecision(4))}</span>`,
          cls: 'n',
        },
      ];
    }),
  );
  const changed = c.stages
    .filter((s) => s.change !== 'changed' || s.params.length)
    .map(
      (s) =>
        `<li><code>${esc(s.id)}</code>: ${s.change === 'changed' ? s.params.map(esc).join('; ') : esc(s.change)}</li>`,
    )
    .join('');
  return {
    id: 'compare',
    title: `Compared with ${c.runs[0]}`,
    body:
      (curves || '<p class="note">Neither run has a finetune history in the cache.</p>') +
      `<h3>Metrics that differ</h3>${rows.length ? table(['stage', 'metric', c.runs[0], c.runs[1], 'delta'], rows) : '<p class="note">No metric differs.</p>'}` +
      (changed ? `<h3>Stages added, removed or with other params</h3><ul>${changed}</ul>` : '') +
      (c.missing.length ? `<ul class="missing">${c.missing.map((m) => `<li>${esc(m)}</li>`).join('')}</ul>` : ''),
  };
}

function fmt(v: unknown): string {
  if (v === null || v === undefined) return '–';
  return esc(typeof v === 'number' ? String(Number(v.toPrecision(6))) : JSON.stringify(v));
}
