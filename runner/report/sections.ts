// One function per section of the report: data in, HTML out. Every section is always present (a
// reader, and the browser test, find the same headings on every report); one with nothing to
// show says why.
import type { Cell, Section } from './html.js';
import { chart, duration, esc, num, pct, table } from './html.js';
import type { Gallery, MulticropRow, ReportData } from './data.js';

/** Rendered SVG per chart id (see specsOf in index.ts), thumbnails per image blob digest. */
export interface Rendered {
  svgs: Map<string, string>;
  thumbs: Map<string, string>;
  previews: Map<string, string>;
}

const none = (what: string): string => `<p class="note">${esc(what)}</p>`;
const n = (html: string, best = false, title?: string): Cell => ({
  html,
  cls: best ? 'n best' : 'n',
  ...(title ? { title } : {}),
});
/** A section whose body is one block per item; with no items, a note saying why. */
const section = (id: string, title: string, body: string, emptyNote: string): Section => ({
  id,
  title,
  body: body || none(emptyNote),
});
const svgOf = (r: Rendered, id: string, caption: string): string =>
  r.svgs.has(id) ? chart(r.svgs.get(id)!, caption) : '';

export function curvesSection(d: ReportData, r: Rendered): Section {
  const body = d.curves
    .map((set) => {
      const steps = [...new Set(set.points.flatMap((p) => p.lrSteps))].sort((a, b) => a - b);
      const rows = set.points.map((p) => {
        const last = p.rows.at(-1);
        const bestVal = Math.max(...p.rows.map((x) => x.valTop1 ?? -1));
        return [
          p.label,
          String(p.rows.length),
          num(last?.loss),
          pct(last?.acc),
          num(last?.valLoss),
          pct(last?.valTop1),
          pct(last?.valTop3),
          bestVal >= 0 ? `${pct(bestVal)} (epoch ${p.rows.find((x) => x.valTop1 === bestVal)?.epoch})` : '–',
        ];
      });
      return (
        `<h3>${esc(set.stage)}</h3>${svgOf(r, `curves:${set.stage}`, `train (solid) and val (dashed) per epoch, one colour per matrix point; dotted rules: learning-rate steps${steps.length ? ` (from epoch ${steps.join(', ')})` : ' (none)'}`)}` +
        table(
          ['point', 'epochs', 'train loss', 'train acc', 'val loss', 'val top-1', 'val top-3', 'best val top-1'],
          rows,
        )
      );
    })
    .join('');
  return section('curves', 'Training curves', body, 'No finetune stage with a training history in the cache.');
}

export function sweepSection(d: ReportData, r: Rendered): Section {
  const body = d.sweeps
    .map((t) => {
      const best = (f: 'top1' | 'top3' | 'loss'): number =>
        (f === 'loss' ? Math.min : Math.max)(...t.rows.map((x) => x[f]));
      const [b1, b3, bl] = [best('top1'), best('top3'), best('loss')];
      const rows = t.rows.map((x) => [
        x.stageId,
        x.epoch.replace(/^epoch-0*/, ''),
        n(pct(x.top1), x.top1 === b1),
        n(pct(x.top3), x.top3 === b3),
        n(num(x.loss), x.loss === bl),
        x.selected ? '✓ selected' : '',
      ]);
      return (
        `<h3>${esc(t.stage)}</h3><p class="meta">${esc(t.split)} split, ${esc(t.crops)} crop(s) at scale ${esc(t.scale)}, selected by ${esc(t.metric)}. Highlighted: the best value of each column.</p>` +
        svgOf(r, `sweep:${t.stage}`, 'config × epoch; each metric coloured over its own range, darker is better') +
        table(['config', 'epoch', 'top-1', 'top-3', 'loss', ''], rows)
      );
    })
    .join('');
  return section('sweep', 'Checkpoint sweep', body, 'No checkpoint-sweep stage with a table in the cache.');
}

const scaleName = (s: MulticropRow['scale']): string =>
  s === null ? 'full image' : s === 'all' ? 'all scales' : String(s);

export function multicropSection(d: ReportData, r: Rendered): Section {
  const body = d.multicrop
    .map((t) => {
      const splits = [...new Set(t.rows.map((x) => x.split))];
      const tables = splits
        .map((split) => {
          const rows = t.rows.filter((x) => x.split === split && !x.averaged);
          const scales = [...new Set(rows.map((x) => scaleName(x.scale)))];
          const models = [...new Set(rows.map((x) => `${x.stageId} ${x.epoch}`))];
          const crops = [...new Set(rows.map((x) => x.crops))];
          const b1 = Math.max(...rows.map((x) => x.top1));
          const body = models.flatMap((m) =>
            crops
              .map((c) => [
                m,
                c,
                ...scales.map((s): Cell => {
                  const x = rows.find(
                    (y) => `${y.stageId} ${y.epoch}` === m && y.crops === c && scaleName(y.scale) === s,
                  );
                  return x ? n(`${pct(x.top1)} / ${pct(x.top3)}`, x.top1 === b1) : n('');
                }),
              ])
              .filter((row) => row.slice(2).some((c) => typeof c === 'object' && c.html)),
          );
          const avg = t.rows
            .filter((x) => x.split === split && x.averaged)
            .map((x) => [`${x.stageId} ${x.epoch}`, x.crops, n(pct(x.top1)), n(pct(x.top3)), n(num(x.loss))]);
          return (
            `<h3>${esc(t.stage)}: ${esc(split)}</h3>${table(['model', 'crops', ...scales.map((s) => `${s}: top-1 / top-3`)], body)}` +
            (avg.length
              ? `<p class="meta">What the stage outputs (crops ${esc(t.rows.find((x) => x.averaged)?.crops ?? '')} at every scale, averaged as ${esc(t.average)}):</p>${table(['model', 'crops', 'top-1', 'top-3', 'loss'], avg)}`
              : '')
          );
        })
        .join('');
      return (
        svgOf(
          r,
          `multicrop:${t.stage}`,
          `${t.stage}: top-1 per crop set and scale (shorter side), per model and split`,
        ) + tables
      );
    })
    .join('');
  return section('multicrop', 'Multi-crop prediction', body, 'No multicrop-predict stage with a table in the cache.');
}

export function fusionSection(d: ReportData, r: Rendered): Section {
  const body = d.fusions
    .map(({ stage, report: f }) => {
      const bestVal = Math.max(...f.members.map((m) => m.val.top1 ?? -1));
      const rows: Cell[][] = f.members.map((m) => [
        { html: esc(m.name) },
        { html: f.chosen.includes(m.name) ? '✓' : '' },
        n(f.weights[m.name] ? f.weights[m.name]!.toFixed(3) : ''),
        n(pct(m.fit.top1)),
        n(pct(m.holdout.top1)),
        n(pct(m.val.top1), m.val.top1 === bestVal),
        n(pct(m.val.top3)),
        n(num(m.val.logloss)),
      ]);
      const fused = `<tr class="fused"><td>fused (${esc(f.method)})</td><td></td><td class="n">1.000</td><td class="n">${pct(f.fused.fit.top1)}</td><td class="n">${pct(f.fused.holdout.top1)}</td><td class="n${(f.fused.val.top1 ?? -1) >= bestVal ? ' best' : ''}">${pct(f.fused.val.top1)}</td><td class="n">${pct(f.fused.val.top3)}</td><td class="n">${num(f.fused.val.logloss)}</td></tr>`;
      const t = table(
        [
          'member',
          'chosen',
          'weight',
          `fit top-1 (n=${f.fused.fit.n})`,
          `held-out top-1 (n=${f.fused.holdout.n})`,
          `${f.fitSplit} top-1`,
          `${f.fitSplit} top-3`,
          'log-loss',
        ],
        rows,
      ).replace('</tbody>', `${fused}</tbody>`);
      const order =
        (f.selection?.length
          ? `<p class="meta">Order of selection: ${f.selection.map((bag) => bag.map(esc).join(' → ')).join('; ')}</p>`
          : '') +
        (f.fallback
          ? `<p class="meta">The fitted fusion scored ${num(f.fallback.fusedScore)} ${esc(f.metric)} on the whole of ${esc(f.fitSplit)}, below ${esc(f.fallback.member)} alone (${num(f.fallback.memberScore)}): that member was kept.</p>`
          : '');
      return (
        `<h3>${esc(stage)}</h3><p class="meta">${esc(f.method)} on ${esc(f.metric)}, fitted on ${pct(1 - f.holdout, 0)} of ${esc(f.fitSplit)} (chosen by a hash of seed and image id); the held-out part was not used for fitting.</p>` +
        svgOf(
          r,
          `fusion:${stage}`,
          '● chosen member; each member and the fused result on the fit part and the held-out part',
        ) +
        t +
        order
      );
    })
    .join('');
  return section('fusion', 'Fusion', body, 'No fuse stage with a report in the cache.');
}

/** Misclassified images shown per gallery (index.ts makes thumbnails for these only). */
export const GALLERY_LIMIT = 60;

function gallery(g: Gallery, r: Rendered): string {
  if (!g.misclassified.length) return none('No misclassified image.');
  const shown = g.misclassified.slice(0, GALLERY_LIMIT);
  const figs = shown
    .map((m) => {
      const src = m.blob ? r.thumbs.get(m.blob) : undefined;
      const img = src ? `<img src="${src}" alt="${esc(m.id)}">` : '<p class="note">(no thumbnail)</p>';
      const preds = m.predicted.map((p, i) => `${i + 1}. ${esc(p.name)} ${pct(p.prob, 0)}`).join('<br>');
      return `<figure>${img}<figcaption><code>${esc(m.id)}</code><br><span class="truth">true: ${esc(m.labelName)}</span><br><span class="pred">${preds}</span></figcaption></figure>`;
    })
    .join('');
  const more =
    g.misclassified.length > shown.length
      ? `<p class="note">The first ${shown.length} of ${g.misclassified.length} misclassified images, in split order.</p>`
      : '';
  return `<div class="gallery">${figs}</div>${more}`;
}

export function errorsSection(d: ReportData, r: Rendered): Section {
  const body = d.galleries
    .map(
      (g, i) =>
        `<h3>${esc(g.title)}</h3><p class="meta">Predictions <code>${esc(g.source)}</code> on ${esc(g.split)}: top-1 ${pct(g.top1)}${g.k > 1 ? `, top-${g.k} ${pct(g.topK)}` : ''} over ${g.labelled} labelled images; ${g.misclassified.length} misclassified.</p>` +
        svgOf(r, `confusion:${i}`, 'rows: true class, columns: top-1 prediction; colour: share of the true class') +
        `<h3>Misclassified (true class, then the top 3 predicted with probabilities)</h3>${gallery(g, r)}`,
    )
    .join('');
  return section(
    'errors',
    'Confusion matrix and misclassified images',
    body,
    'No labelled final or fused predictions in the cache.',
  );
}

export function previewSection(d: ReportData, r: Rendered): Section {
  const body = d.previews
    .map((p) => {
      const size = pngSize(p.png);
      // Small crops (32 px in ci-small) are enlarged by a whole factor, pixelated, up to ~640 px wide.
      const scale = size ? Math.max(1, Math.floor(640 / size.width)) : 1;
      const dims = size ? ` width="${size.width * scale}" height="${size.height * scale}"` : '';
      return `<h3>${esc(p.stage)}</h3><figure class="preview"><img src="${r.previews.get(p.stage)}"${dims} alt="augmentation preview of ${esc(p.stage)}"><figcaption>Row r: training image r; column c: the policy's draw for it in epoch c${scale > 1 ? ` (shown ×${scale})` : ''}.</figcaption></figure>`;
    })
    .join('');
  return section('augment', 'Augmentation preview', body, 'No augment stage with a preview in the cache.');
}

export function runSection(d: ReportData, git: string): Section {
  const rows = d.run.map((x) => [
    x.id,
    x.kind,
    {
      html:
        x.state === 'fresh'
          ? 'fresh'
          : x.state === 'stale'
            ? '<span class="missing">stale</span> (lock\'s result)'
            : '<span class="missing">not in cache</span>',
    },
    x.ranInLastRun === null ? '–' : x.ranInLastRun ? 'ran' : 'cached',
    x.startedAt ? x.startedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '–',
    n(duration(x.durationMs)),
    x.backend ?? '–',
    x.where ?? 'here',
    x.throughput ?? '–',
    { html: x.key ? `<code>${esc(x.key.slice(0, 12))}</code>` : '–', ...(x.key ? { title: x.key } : {}) },
  ]);
  const notes = d.missing.length
    ? `<h3>Not shown</h3><ul class="missing">${d.missing.map((m) => `<li>${esc(m)}</li>`).join('')}</ul>`
    : '';
  return {
    id: 'run',
    title: 'Run',
    body:
      `<p class="meta">Pipeline revision: ${git}. ${d.lastRunAt ? `Last run that executed a stage: ${esc(d.lastRunAt)}; "ran" marks the stages it computed, "cached" those it reused.` : 'No run of this pipeline is recorded in this cache.'} Throughput: the stage's recorded timing (finetune's train loop), else the last rate in its log.</p>` +
      table(
        [
          'stage',
          'kind',
          'state',
          'last run',
          'computed at',
          'duration',
          'backend',
          'where',
          'throughput',
          'cache key',
        ],
        rows,
      ) +
      notes,
  };
}

/** Width and height from a PNG's IHDR chunk; undefined for anything else. */
function pngSize(png: Buffer): { width: number; height: number } | undefined {
  if (png.length < 24 || png.toString('latin1', 12, 16) !== 'IHDR') return undefined;
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}
