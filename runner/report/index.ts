// `podium report <pipeline> [--out FILE] [--compare LOCK|REV]`: one self-contained HTML page of
// a pipeline's results, built from the cache and the lock file (see docs/report.md).
//
// Default location: `.podium/reports/<pipeline name>.html` in the project (the directory podium
// runs in). A report is derived data, regenerated from the cache at any time, like the cache
// itself under `.podium/` (ignored by git); `out/` is left to what the pipeline's own stages
// write there (export's submission), which podium restores and checks.
import { execFileSync } from 'node:child_process';
import { dirname, join, relative, resolve } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { Digest } from '../../cache/canonical.js';
import type { Pipeline } from '../analyze.js';
import { lockOf, loadPipeline, openStore, type CommonOptions } from '../context.js';
import { UsageError } from '../diagnostics.js';
import { writeFileAtomic } from '../../cache/write-atomic.js';
import {
  curvesCompareSpec,
  curvesSpec,
  confusionSpec,
  fusionSpec,
  multicropSpec,
  renderSvgs,
  sweepSpec,
} from './charts.js';
import { compareSection, gatherCompare, type CompareData } from './compare.js';
import { gatherReport, type ReportData } from './data.js';
import { esc, page, type Section } from './html.js';
import { dataUrl, thumbnails } from './images.js';
import {
  GALLERY_LIMIT,
  curvesSection,
  errorsSection,
  fusionSection,
  multicropSection,
  previewSection,
  runSection,
  sweepSection,
} from './sections.js';

export interface ReportOptions extends CommonOptions {
  out?: string;
  compare?: string;
}

export interface ReportResult {
  path: string;
  pipeline: string;
  sections: string[];
  charts: string[];
  bytes: number;
  /** What the report could not show, and why. */
  missing: string[];
}

export function defaultReportPath(pipeline: Pipeline, compare?: string): string {
  const suffix = compare ? `.vs-${compare.replace(/[^A-Za-z0-9._-]+/g, '_')}` : '';
  return join(pipeline.projectDir, '.podium', 'reports', `${pipeline.name}${suffix}.html`);
}

export async function report(file: string | undefined, opts: ReportOptions): Promise<ReportResult> {
  const pipeline = loadPipeline(file, opts);
  const { path: lockPath, lock } = lockOf(pipeline);
  if (opts.compare !== undefined && !lock)
    throw new UsageError(`${lockPath}: no lock file to compare with ${opts.compare}; run the pipeline first`);
  const store = openStore(opts, pipeline.projectDir, 'read');
  let data: ReportData;
  let compare: CompareData | undefined;
  let thumbs: Map<string, string>;
  try {
    data = gatherReport(pipeline, store, lock);
    if (opts.compare !== undefined) compare = await gatherCompare(store, lockPath, lock!, opts.compare);
    thumbs = await thumbnails(
      store,
      data.galleries.flatMap((g) =>
        g.misclassified
          .slice(0, GALLERY_LIMIT)
          .map((m) => m.blob)
          .filter((d): d is Digest => d !== null),
      ),
    );
  } finally {
    await store.close();
  }

  const specs = specsOf(data, compare);
  const svgList = await renderSvgs(specs.map((s) => s.spec));
  const svgs = new Map(specs.map((s, i) => [s.id, svgList[i]!]));
  const rendered = {
    svgs,
    thumbs,
    previews: new Map(data.previews.map((p) => [p.stage, dataUrl('image/png', p.png)])),
  };
  const sections: Section[] = [
    ...(compare ? [compareSection(compare, svgs)] : []),
    curvesSection(data, rendered),
    sweepSection(data, rendered),
    multicropSection(data, rendered),
    fusionSection(data, rendered),
    errorsSection(data, rendered),
    previewSection(data, rendered),
    runSection(data, esc(gitRevision(pipeline.file, lockPath))),
  ];
  const header = `<h1>${esc(pipeline.name)}</h1><p class="meta">Pipeline <code>${esc(relative(process.cwd(), pipeline.file))}</code>, seed ${pipeline.seed}, lock <code>${esc(relative(process.cwd(), lockPath))}</code>${lock ? '' : ' (none yet)'}; report written ${esc(data.pipeline.generatedAt)} from the cache.</p>`;
  const html = page(`${pipeline.name}: podium report`, header, sections);

  const out = resolve(opts.out ?? defaultReportPath(pipeline, opts.compare));
  writeFileAtomic(out, html);
  return {
    path: out,
    pipeline: pipeline.name,
    sections: sections.map((s) => s.id),
    charts: specs.map((s) => s.id),
    bytes: Buffer.byteLength(html),
    missing: [...data.missing, ...(compare?.missing ?? [])],
  };
}

/** Every chart of the report, with the id its section looks it up by. */
function specsOf(d: ReportData, c: CompareData | undefined): Array<{ id: string; spec: TopLevelSpec }> {
  return [
    ...(c?.curves.map((x) => ({ id: `compare:${x.stage}`, spec: curvesCompareSpec(x.stage, x.runs) })) ?? []),
    ...d.curves.map((s) => ({ id: `curves:${s.stage}`, spec: curvesSpec(s) })),
    ...d.sweeps.filter((t) => t.rows.length).map((t) => ({ id: `sweep:${t.stage}`, spec: sweepSpec(t) })),
    ...d.multicrop
      .filter((t) => t.rows.some((r) => !r.averaged))
      .map((t) => ({ id: `multicrop:${t.stage}`, spec: multicropSpec(t) })),
    ...d.fusions.map((f) => ({ id: `fusion:${f.stage}`, spec: fusionSpec(f.report) })),
    ...d.galleries.map((g, i) => ({ id: `confusion:${i}`, spec: confusionSpec(g) })),
  ];
}

/** The commit the pipeline file is at, and whether it or its lock differ from it; git is optional. */
function gitRevision(file: string, lockPath: string): string {
  const git = (...args: string[]): string | undefined => {
    try {
      return execFileSync('git', args, {
        cwd: dirname(file),
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      return undefined;
    }
  };
  const rev = git('rev-parse', '--short=12', 'HEAD');
  if (!rev) return 'not in a git repository (or no commit yet)';
  const dirty = git('status', '--porcelain', '--', file, lockPath);
  return `${rev}${dirty ? ' (the pipeline or its lock file has uncommitted changes)' : ''}`;
}

export function formatReport(r: ReportResult): string {
  const lines = [
    `report of ${r.pipeline}: ${relative(process.cwd(), r.path) || r.path} (${(r.bytes / 1024).toFixed(0)} KiB, ${r.charts.length} charts)`,
  ];
  for (const m of r.missing) lines.push(`  not shown: ${m}`);
  return lines.join('\n');
}
