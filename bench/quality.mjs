// The quality table of a recipe run, like the seed's: per checkpoint the val/test top-1 and top-3
// at each crop set and scale, then the fusion and the exported (final) predictions, and the
// issue's relative targets (10 crops ≥ 1 crop, fused ≥ best single). A thin reader of the data
// `podium report` shows (runner/report/data.ts): it computes no metric of its own and holds no
// reference number; a reference or an absolute target comes from the command line.
//
//   node bench/quality.mjs [pipelines/intel6.json] [--no-run] [--cache DIR] [--reference RESULTS.json] [--fused-target 0.93]
//
// --reference: a results JSON written by ../shared/torchref/train.py (its `final` entries, in
// percent), compared with podium's 1-crop rows at the same scale. Without --no-run it runs
// `podium run <pipeline>` first (cached stages are reused; intel6 from scratch ~1.5 h on 2
// cores) and ends with `podium report`, whose HTML holds the same numbers with the charts.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadPipeline, lockOf, openStore } from '../dist/runner/context.js';
import { gatherReport } from '../dist/runner/report/data.js';

const CLI = fileURLToPath(new URL('../dist/runner/cli.js', import.meta.url));
const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const valued = new Set(
  ['--reference', '--fused-target', '--cache'].flatMap((o) => (args.includes(o) ? [args[args.indexOf(o) + 1]] : [])),
);
const file = args.find((a) => !a.startsWith('--') && !valued.has(a)) ?? 'pipelines/intel6.json';
const reference = option('--reference') ? JSON.parse(readFileSync(option('--reference'), 'utf8')) : undefined;
// --cache: the cache folder, as `podium run --cache` takes it (default: the project's).
const cache = option('--cache');
const cacheArgs = cache === undefined ? [] : ['--cache', cache];
const fusedTarget = option('--fused-target') === undefined ? undefined : Number(option('--fused-target'));

if (!args.includes('--no-run')) execFileSync(process.execPath, [CLI, 'run', file, ...cacheArgs], { stdio: 'inherit' });

const pipeline = loadPipeline(file);
const store = openStore({ cache });
let data;
try {
  data = gatherReport(pipeline, store, lockOf(pipeline).lock);
} finally {
  await store.close();
}

const pct = (x) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);
const col = (s, w) => String(s).padStart(w);
console.log(`quality of ${file} (${data.pipeline.generatedAt})`);
for (const m of data.missing) console.log(`  not available: ${m}`);

console.log('\ntraining (val top-1 after each epoch, centre crop)');
for (const set of data.curves)
  for (const p of set.points) console.log(`  ${p.id.padEnd(24)} ${p.rows.map((r) => pct(r.valTop1)).join(' ')}`);

// One line per (checkpoint, crops, scale) with val and test side by side.
const single = [];
for (const t of data.multicrop) {
  console.log(`\n${t.stage}: top-1 / top-3 per checkpoint, crops and test scale (${t.average} averaged)`);
  console.log(
    `  ${'checkpoint'.padEnd(30)} ${'crops'.padEnd(6)} ${'scale'.padEnd(6)} ${col('val top-1', 9)} ${col('val top-3', 9)} ${col('test top-1', 10)} ${col('test top-3', 10)}`,
  );
  const key = (r) => `${r.stageId} ${r.epoch}|${r.crops}|${r.scale}`;
  for (const k of [...new Set(t.rows.filter((r) => !r.averaged).map(key))]) {
    const get = (split) => t.rows.find((r) => !r.averaged && r.split === split && key(r) === k);
    const [name, crops, scale] = k.split('|');
    const [val, test] = [get('val'), get('test')];
    console.log(
      `  ${name.padEnd(30)} ${crops.padEnd(6)} ${scale.padEnd(6)} ${col(pct(val?.top1), 9)} ${col(pct(val?.top3), 9)} ${col(pct(test?.top1), 10)} ${col(pct(test?.top3), 10)}`,
    );
    single.push({ name, crops, scale, val, test });
  }
}

for (const { stage, report: f } of data.fusions) {
  console.log(
    `\n${stage}: ${f.method} fusion of ${f.members.length} members, chosen ${f.chosen.length}: ${f.chosen.map((c) => `${c} ×${f.weights[c].toFixed(3)}`).join(', ')}`,
  );
  console.log(
    `  fused ${f.fitSplit} top-1 ${pct(f.fused.val.top1)} (fit part ${pct(f.fused.fit.top1)}, held out ${pct(f.fused.holdout.top1)}); best member ${pct(Math.max(...f.members.map((m) => m.val.top1 ?? 0)))}`,
  );
}
const finals = data.galleries.filter(
  (g) => data.stages.find((s) => s.node.id === g.stage)?.node.kind.name === 'export',
);
for (const g of finals)
  console.log(
    `\nexported ${g.source} on ${g.split}: top-1 ${pct(g.top1)}${g.k > 1 ? `, top-${g.k} ${pct(g.topK)}` : ''} (${g.labelled} labelled, ${g.misclassified.length} misclassified)`,
  );

console.log('\ntargets (test split)');
for (const r of single.filter((x) => x.crops === '10' && x.scale !== 'all' && x.test)) {
  const one = single.find((x) => x.crops === '1' && x.name === r.name && x.scale === r.scale);
  if (one?.test)
    console.log(
      `  10 crops ≥ 1 crop   ${r.name} @${r.scale}: ${pct(r.test.top1)} vs ${pct(one.test.top1)} ${r.test.top1 >= one.test.top1 ? 'met' : 'NOT met'}`,
    );
}
const bestSingle = Math.max(...single.filter((x) => x.test).map((x) => x.test.top1));
for (const g of finals.filter((x) => x.split === 'test' && x.top1 !== null)) {
  console.log(
    `  final ≥ best single  ${pct(g.top1)} vs ${pct(bestSingle)} ${g.top1 >= bestSingle ? 'met' : 'NOT met'}`,
  );
  if (fusedTarget !== undefined)
    console.log(
      `  final ≥ ${pct(fusedTarget)}        ${pct(g.top1)} ${g.top1 >= fusedTarget ? 'met' : `NOT met (${(100 * (fusedTarget - g.top1)).toFixed(1)} points short)`}`,
    );
}
if (reference) {
  for (const [at, r] of Object.entries(reference.final ?? {})) {
    const scale = /resize (\d+)/.exec(at)?.[1];
    for (const x of single.filter((s) => s.crops === '1' && s.scale === scale && s.test)) {
      console.log(
        `  vs reference ${at}: ${x.name} 1 crop: val ${pct(x.val?.top1)} vs ${r.val_1crop}%, test ${pct(x.test.top1)} vs ${r.test_1crop}% (${(100 * x.test.top1 - r.test_1crop).toFixed(1)} points)`,
      );
    }
  }
}
if (!args.includes('--no-run'))
  execFileSync(process.execPath, [CLI, 'report', file, ...cacheArgs], { stdio: 'inherit' });
