// The quality table of a recipe run, like the seed's: per model and config the val/test top-1 and
// top-3 at 1, 5 and 10 crops and each scale, then the fused result, checked against the issue's
// targets and the PyTorch reference measured on this machine.
//
//   node bench/quality.mjs [pipelines/intel6.json] [--no-run]
//
// Runs `podium run <pipeline>` first (everything cached is reused; on intel6 a first run takes
// about 1.5 h on 2 cores), then reads the lock file and the cached artifacts: each finetune's
// per-epoch history, each multicrop-predict table (every labelled split), each fuse report and
// fused predictions (scored here on test, which fuse never looks at).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { LmdbStore } from '../dist/cache/lmdb-store.js';
import { lockPathOf } from '../dist/runner/lock-path.js';
import { cacheDir } from '../dist/runner/cache-path.js';
import { decodePredictions } from '../dist/stages/data/predictions.js';
import { scoreRows } from '../dist/stages/data/metrics.js';

const args = process.argv.slice(2);
const pipeline = args.find((a) => !a.startsWith('--')) ?? 'pipelines/intel6.json';
// The issue's reference: PyTorch 1.13, the same nsfwjs MobileNetV2 weights, 128 px, 12 epochs,
// lr 0.01 ×0.1 after epoch 8, 1 centre crop of the 146-px image.
const REFERENCE = { test1crop: 0.883, test10crop: 0.897, val1crop: 0.888 };
const TARGET_FUSED = 0.93;

if (!args.includes('--no-run')) {
  execFileSync(process.execPath, ['dist/runner/cli.js', 'run', pipeline], { stdio: 'inherit' });
}
const lock = JSON.parse(readFileSync(lockPathOf(pipeline), 'utf8'));
const store = new LmdbStore(`${cacheDir({})}`);
const blob = (d) => {
  const b = store.getBlob(d);
  if (!b) throw new Error(`blob ${d.slice(0, 12)} is not in the cache ${cacheDir({})} (run the pipeline first)`);
  return b;
};
const json = (d) => JSON.parse(blob(d).toString());
const pct = (x) => (x === null || x === undefined ? '   -  ' : `${(100 * x).toFixed(1).padStart(5)}%`);
const stages = Object.entries(lock.stages);

console.log(`quality of ${pipeline} (${new Date().toISOString()})`);
console.log('');
console.log('training (val top-1 after each epoch, centre crop)');
for (const [id, s] of stages.filter(([, s]) => s.kind === 'finetune')) {
  const { epochs } = json(s.outputs.history);
  console.log(`  ${id.padEnd(22)} ${epochs.map((e) => pct(e.valTop1).trim()).join(' ')}`);
}

// Every (checkpoint, crops, scale) row of every predict stage, per split.
const single = [];
for (const [id, s] of stages.filter(([, s]) => s.kind === 'multicrop-predict')) {
  const table = json(s.outputs.table);
  const byCheckpoint = new Map();
  for (const r of table.rows) {
    const name = `${r.stageId} ${r.epoch}`;
    if (!byCheckpoint.has(name)) byCheckpoint.set(name, []);
    byCheckpoint.get(name).push(r);
  }
  console.log('');
  console.log(`${id}: top-1 / top-3 per checkpoint, crops and test scale (${table.average} averaged)`);
  console.log(`  ${'checkpoint'.padEnd(30)} ${'crops'.padEnd(6)} ${'scale'.padEnd(6)} ${'val top-1'.padStart(9)} ${'val top-3'.padStart(9)} ${'test top-1'.padStart(10)} ${'test top-3'.padStart(10)}`);
  for (const [name, rows] of byCheckpoint) {
    const keys = [...new Set(rows.map((r) => `${r.crops}|${r.scale}|${r.averaged ? 1 : 0}`))];
    for (const key of keys) {
      const [crops, scale, averaged] = key.split('|');
      if (averaged === '1') continue; // the stage's output itself; same numbers as its largest set
      const get = (split) => rows.find((r) => r.split === split && `${r.crops}|${r.scale}|0` === key);
      const val = get('val');
      const test = get('test');
      console.log(`  ${name.padEnd(30)} ${crops.padEnd(6)} ${String(scale).padEnd(6)} ${pct(val?.top1).padStart(9)} ${pct(val?.top3).padStart(9)} ${pct(test?.top1).padStart(10)} ${pct(test?.top3).padStart(10)}`);
      single.push({ stage: id, name, crops, scale, val, test });
    }
  }
}

const fused = [];
for (const [id, s] of stages.filter(([, s]) => s.kind === 'fuse')) {
  const report = json(s.outputs.report);
  const preds = decodePredictions(blob(s.outputs.predictions));
  const k = preds.classes.length;
  const score = (split) => (preds.splits[split] ? scoreRows(preds.splits[split].probs, k, preds.splits[split].labels) : null);
  const test = score('test');
  console.log('');
  console.log(`${id}: ${report.method} fusion of ${report.members.length} members, chosen ${report.chosen.length}: ${report.chosen.join(', ')}`);
  console.log(`  members (val top-1): ${report.members.map((m) => `${m.name.replace(/^.*?:/, '')} ${pct(m.val.top1).trim()}`).join(', ')}`);
  console.log(`  fused: val top-1 ${pct(report.fused.val.top1).trim()} (fitted on ${pct(report.fused.fit.top1).trim()}, held out ${pct(report.fused.holdout.top1).trim()}), test top-1 ${pct(test?.top1).trim()}, top-3 ${pct(test?.top3).trim()}`);
  fused.push({ id, test, report });
}

// The issue's targets, on the test split.
console.log('');
console.log('targets (test split)');
const at = (crops, name, scale) => single.find((r) => r.crops === crops && r.name === name && (scale === undefined || String(r.scale) === String(scale)));
const tenCrop = single.filter((r) => r.crops === '10' && r.scale !== 'all' && r.test);
for (const r of tenCrop) {
  const one = at('1', r.name, r.scale);
  if (one?.test) console.log(`  10 crops ≥ 1 crop   ${r.name} @${r.scale}: ${pct(r.test.top1).trim()} vs ${pct(one.test.top1).trim()} ${r.test.top1 >= one.test.top1 ? 'met' : 'NOT met'}`);
}
const bestSingle = Math.max(...single.filter((r) => r.test).map((r) => r.test.top1));
for (const f of fused) {
  if (!f.test) continue;
  console.log(`  fused ≥ best single  ${pct(f.test.top1).trim()} vs ${pct(bestSingle).trim()} ${f.test.top1 >= bestSingle ? 'met' : 'NOT met'}`);
  console.log(`  fused ≥ ${pct(TARGET_FUSED).trim()}        ${pct(f.test.top1).trim()} ${f.test.top1 >= TARGET_FUSED ? 'met' : `NOT met (${(100 * (TARGET_FUSED - f.test.top1)).toFixed(1)} points short)`}`);
}
const parity = single.filter((r) => r.crops === '1' && r.name.endsWith('epoch-012') && r.name.includes('lr=0.01 ') && r.test);
for (const r of parity) {
  console.log(`  parity with PyTorch (lr 0.01, 12 epochs, 1 crop @${r.scale}): val ${pct(r.val?.top1).trim()} vs ${pct(REFERENCE.val1crop).trim()}, test ${pct(r.test.top1).trim()} vs ${pct(REFERENCE.test1crop).trim()} (${(100 * (r.test.top1 - REFERENCE.test1crop)).toFixed(1)} points)`);
}
await store.close();
