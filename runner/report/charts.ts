// The report's charts as Vega-Lite specs, compiled by vega-lite and rendered to SVG by vega in
// Node (renderer 'none': no canvas, no DOM), then inlined: the page needs no script to draw
// them, works offline and prints. vega and vega-lite are imported here only, by the report verb,
// so no other verb pays for loading them.
import type { TopLevelSpec } from 'vega-lite';
import type { FuseReport } from '../../stages/fuse.js';
import type { CurveSet, Gallery, MulticropTable, SweepTable } from './data.js';

// Sizes for a laptop screen: the page's column is ~1100 px wide.
const CONFIG = {
  font: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  header: { labelFontSize: 12, titleFontSize: 12 },
};

const CROP_ORDER = ['1', '5', '10', 'full'];

/** One SVG string per spec, in order. */
export async function renderSvgs(specs: TopLevelSpec[]): Promise<string[]> {
  const vega = await import('vega');
  const { compile } = await import('vega-lite');
  const out: string[] = [];
  for (const spec of specs) {
    const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
    try {
      out.push(await view.toSVG());
    } finally {
      view.finalize();
    }
  }
  return out;
}

interface CurveDatum {
  run?: string;
  point: string;
  epoch: number;
  series: string;
  metric: string;
  value: number;
}

function curveData(
  set: CurveSet,
  run?: string,
): { curves: CurveDatum[]; steps: Array<{ run?: string; point: string; at: number; metric: string }> } {
  const curves: CurveDatum[] = [];
  const steps: Array<{ run?: string; point: string; at: number; metric: string }> = [];
  const series: Array<[string, string, 'acc' | 'valTop1' | 'loss' | 'valLoss']> = [
    ['accuracy (top-1)', 'train', 'acc'],
    ['accuracy (top-1)', 'val', 'valTop1'],
    ['loss', 'train', 'loss'],
    ['loss', 'val', 'valLoss'],
  ];
  for (const p of set.points) {
    for (const r of p.rows) {
      for (const [metric, s, field] of series) {
        const v = r[field];
        if (typeof v === 'number' && Number.isFinite(v))
          curves.push({ ...(run ? { run } : {}), point: p.label, epoch: r.epoch, series: s, metric, value: v });
      }
    }
    // A rule half an epoch before the first epoch trained at the new rate.
    for (const e of p.lrSteps)
      for (const metric of ['accuracy (top-1)', 'loss'])
        steps.push({ ...(run ? { run } : {}), point: p.label, at: e - 0.5, metric });
  }
  return { curves, steps };
}

// The specs are built as plain data and typed once, as TopLevelSpec, where they are returned.
function curveLayers(colorTitle: string): unknown[] {
  return [
    {
      transform: [{ filter: 'datum.kind === "curve"' }],
      mark: { type: 'line', point: { size: 30 }, strokeWidth: 2 },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
        color: { field: 'point', type: 'nominal', title: colorTitle },
        strokeDash: {
          field: 'series',
          type: 'nominal',
          title: 'split',
          sort: ['train', 'val'],
          legend: {
            symbolType: 'stroke',
            symbolStrokeWidth: 2,
            symbolSize: 300,
            encode: { symbols: { update: { stroke: { value: '#333' } } } },
          },
        },
        tooltip: [{ field: 'point' }, { field: 'series' }, { field: 'epoch' }, { field: 'value', format: '.4f' }],
      },
    },
    {
      transform: [{ filter: 'datum.kind === "step"' }],
      mark: { type: 'rule', strokeDash: [2, 3], color: '#888' },
      encoding: { x: { field: 'at', type: 'quantitative' }, tooltip: [{ field: 'point', title: 'lr step of' }] },
    },
  ];
}

/** Train and val accuracy and loss per epoch, one line per matrix point, lr steps as dotted rules. */
export function curvesSpec(set: CurveSet): TopLevelSpec {
  const { curves, steps } = curveData(set);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CONFIG,
    data: { values: [...curves.map((c) => ({ kind: 'curve', ...c })), ...steps.map((s) => ({ kind: 'step', ...s }))] },
    facet: { column: { field: 'metric', type: 'nominal', title: null, sort: ['accuracy (top-1)', 'loss'] } },
    resolve: { scale: { y: 'independent' } },
    spec: { width: 420, height: 240, layer: curveLayers(set.stage) },
  } as TopLevelSpec;
}

/** Two runs' curves side by side: one column per run, accuracy and loss as rows. */
export function curvesCompareSpec(stage: string, runs: Array<{ run: string; set: CurveSet }>): TopLevelSpec {
  const values = runs.flatMap(({ run, set }) => {
    const { curves, steps } = curveData(set, run);
    return [...curves.map((c) => ({ kind: 'curve', ...c })), ...steps.map((s) => ({ kind: 'step', ...s }))];
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CONFIG,
    data: { values },
    facet: {
      column: { field: 'run', type: 'nominal', title: null, sort: runs.map((r) => r.run) },
      row: { field: 'metric', type: 'nominal', title: null },
    },
    resolve: { scale: { y: 'independent' } },
    spec: { width: 400, height: 200, layer: curveLayers(stage) },
  } as TopLevelSpec;
}

/**
 * Config × epoch heat maps of val top-1 and top-3, each coloured over its own range (checkpoints
 * of one recipe differ by a few points, which a 0–1 scale would not show); the value is written in
 * each cell unless there are too many epochs for it to fit.
 */
export function sweepSpec(t: SweepTable): TopLevelSpec {
  const epoch = (e: string): number => Number(e.replace(/^epoch-0*/, ''));
  const values = t.rows.flatMap((r) => [
    { config: r.stageId, epoch: epoch(r.epoch), metric: 'top-1', value: r.top1 },
    { config: r.stageId, epoch: epoch(r.epoch), metric: 'top-3', value: r.top3 },
  ]);
  // White text on the darker half of each metric's range.
  const mid = (m: string): number => {
    const v = values.filter((x) => x.metric === m).map((x) => x.value);
    return (Math.min(...v) + Math.max(...v)) / 2;
  };
  const wide = new Set(t.rows.map((r) => r.epoch)).size > 12;
  const enc = {
    x: { field: 'epoch', type: 'ordinal', title: 'epoch', axis: { labelAngle: 0 } },
    y: { field: 'config', type: 'nominal', title: null },
  } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CONFIG,
    data: { values },
    facet: {
      column: {
        field: 'metric',
        type: 'nominal',
        title: `${t.split} accuracy (${t.crops} crop${t.crops === '1' ? '' : 's'})`,
      },
    },
    resolve: { scale: { color: 'independent' } },
    spec: {
      width: { step: wide ? 22 : 56 },
      height: { step: wide ? 20 : 30 },
      layer: [
        {
          mark: { type: 'rect', stroke: 'white' },
          encoding: {
            ...enc,
            color: {
              field: 'value',
              type: 'quantitative',
              title: 'accuracy',
              scale: { scheme: 'blues' },
              legend: { format: '.3f' },
            },
          },
        },
        ...(wide
          ? []
          : [
              {
                mark: { type: 'text', fontSize: 11 },
                encoding: {
                  ...enc,
                  text: { field: 'value', format: '.3f' },
                  color: {
                    condition: {
                      test: `datum.metric === 'top-1' ? datum.value > ${mid('top-1')} : datum.value > ${mid('top-3')}`,
                      value: 'white',
                    },
                    value: 'black',
                  },
                },
              },
            ]),
      ],
    },
  } as TopLevelSpec;
}

/** Top-1 per crop set, one bar per scale, per model (rows) and split (columns). */
export function multicropSpec(t: MulticropTable): TopLevelSpec {
  const values = t.rows
    .filter((r) => !r.averaged)
    .map((r) => ({
      model: `${r.stageId} ${r.epoch}`,
      split: r.split,
      crops: r.crops,
      scale: r.scale === null ? 'full image' : r.scale === 'all' ? 'all, averaged' : String(r.scale),
      top1: r.top1,
      top3: r.top3,
    }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CONFIG,
    data: { values },
    facet: {
      row: { field: 'model', type: 'nominal', title: null, header: { labelAngle: 0, labelAlign: 'left' } },
      column: { field: 'split', type: 'nominal', title: null, sort: ['val', 'test'] },
    },
    spec: {
      width: 300,
      height: 90,
      mark: 'bar',
      encoding: {
        x: { field: 'crops', type: 'ordinal', sort: CROP_ORDER, title: 'crops', axis: { labelAngle: 0 } },
        xOffset: { field: 'scale', type: 'nominal' },
        y: { field: 'top1', type: 'quantitative', title: 'top-1', scale: { domain: [0, 1] } },
        color: { field: 'scale', type: 'nominal', title: 'scale (short side)' },
        tooltip: [
          { field: 'model' },
          { field: 'split' },
          { field: 'crops' },
          { field: 'scale' },
          { field: 'top1', format: '.4f' },
          { field: 'top3', format: '.4f' },
        ],
      },
    },
  } as TopLevelSpec;
}

/** Each member's top-1 on the fit part and the held-out part, with the fused result as the last row. */
export function fusionSpec(r: FuseReport): TopLevelSpec {
  const rows = [
    ...r.members.map((m) => ({
      name: `${r.chosen.includes(m.name) ? '● ' : ''}${m.name}`,
      fit: m.fit.top1,
      holdout: m.holdout.top1,
    })),
    { name: 'FUSED', fit: r.fused.fit.top1, holdout: r.fused.holdout.top1 },
  ];
  const values = rows
    .flatMap((x) => [
      { name: x.name, part: 'fit', top1: x.fit },
      { name: x.name, part: 'held out', top1: x.holdout },
    ])
    .filter((v) => v.top1 !== null);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CONFIG,
    data: { values },
    width: 420,
    height: { step: 12 },
    mark: 'bar',
    encoding: {
      y: { field: 'name', type: 'nominal', title: null, sort: rows.map((x) => x.name), axis: { labelLimit: 420 } },
      yOffset: { field: 'part', type: 'nominal' },
      x: { field: 'top1', type: 'quantitative', title: `${r.fitSplit} top-1`, scale: { domain: [0, 1] } },
      color: { field: 'part', type: 'nominal', title: null, scale: { range: ['#4c78a8', '#f58518'] } },
      tooltip: [{ field: 'name' }, { field: 'part' }, { field: 'top1', format: '.4f' }],
    },
  } as TopLevelSpec;
}

/** Confusion matrix as a heat map: true class down, predicted across, counts written in. */
export function confusionSpec(g: Gallery): TopLevelSpec {
  const values = g.confusion.flatMap((row, t) =>
    row.map((count, p) => ({
      truth: g.classes[t] ?? String(t),
      predicted: g.classes[p] ?? String(p),
      count,
      rate:
        count /
        Math.max(
          1,
          row.reduce((a, b) => a + b, 0),
        ),
    })),
  );
  const big = g.classes.length > 20;
  const enc = {
    x: {
      field: 'predicted',
      type: 'nominal',
      sort: g.classes,
      title: 'predicted',
      axis: { labelAngle: -45, labels: !big },
    },
    y: { field: 'truth', type: 'nominal', sort: g.classes, title: 'true', axis: { labels: !big } },
  } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: CONFIG,
    data: { values },
    width: { step: big ? 8 : 40 },
    height: { step: big ? 8 : 40 },
    layer: [
      {
        mark: { type: 'rect', stroke: big ? null : 'white' },
        encoding: {
          ...enc,
          color: {
            field: 'rate',
            type: 'quantitative',
            title: 'row share',
            scale: { scheme: 'oranges', domain: [0, 1] },
          },
          tooltip: [{ field: 'truth' }, { field: 'predicted' }, { field: 'count' }],
        },
      },
      ...(big
        ? []
        : [
            {
              mark: { type: 'text', fontSize: 11 },
              encoding: {
                ...enc,
                text: { field: 'count' },
                color: { condition: { test: 'datum.rate > 0.5', value: 'white' }, value: 'black' },
              },
            },
          ]),
    ],
  } as TopLevelSpec;
}
