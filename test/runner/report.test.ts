// `podium report` end to end: pipelines/ci-small.json (the whole recipe on synthetic data, a few
// seconds) run by the real CLI in a temporary git project, its report written, and then opened
// in headless Chromium (Debian's /usr/bin/chromium through playwright-core; never a downloaded
// browser): every section there, every chart an SVG with data marks, no console error, no
// request other than the file itself. The screenshot goes to out/test-output/ (git-ignored);
// with PODIUM_REPORT_SCREENSHOT=docs/report.png the test also writes it there.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { open } from 'lmdb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../../cache/canonical.js';
import { LmdbStore } from '../../cache/lmdb-store.js';
import { Project } from '../rig.js';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUT_DIR = join(REPO, 'out', 'test-output');
const SECTIONS = ['curves', 'sweep', 'multicrop', 'fusion', 'errors', 'augment', 'run'];

let project: Project;
let reportPath: string;
let compareReport: { path: string; sections: string[]; charts: string[] };
const PIPE = 'pipelines/ci-small.json';

beforeAll(async () => {
  project = new Project();
  const pipeline = JSON.parse(readFileSync(join(REPO, PIPE), 'utf8')) as Record<string, any>;
  delete pipeline.$schema;
  project.write(PIPE, pipeline);
  const git = (...a: string[]) =>
    execa('git', ['-c', 'user.email=t@t', '-c', 'user.name=t', ...a], { cwd: project.dir });
  await git('init', '-q');
  const run = await project.run(PIPE);
  expect(run.exitCode, run.stderr).toBe(0);
  await git('add', '-A', 'pipelines');
  await git('commit', '-qm', 'ci-small');
  const r = await project.cli('report', PIPE, '--json');
  expect(r.exitCode, r.stderr).toBe(0);
  reportPath = JSON.parse(r.stdout).path;

  // A second run with one more epoch, compared with the committed one.
  pipeline.stages.tiny.params.epochs = 4;
  project.write(PIPE, pipeline);
  expect((await project.run(PIPE)).exitCode).toBe(0);
  const c = await project.cli('report', PIPE, '--compare', 'HEAD', '--json');
  expect(c.exitCode, c.stderr).toBe(0);
  compareReport = JSON.parse(c.stdout);
}, 300_000);

afterAll(() => project?.cleanup());

/** A substring check that names the needle, not the whole page, when it fails. */
function has(haystack: string, needle: string): void {
  expect(haystack.includes(needle), `missing: ${needle}`).toBe(true);
}

/** Every URL-like string of the page, less the SVG namespace names (identifiers, never fetched). */
function urlsIn(html: string): string[] {
  return (html.match(/\b(?:https?|ftp|file|wss?):\/\/[^\s"'<>)]+/g) ?? []).filter(
    (u) => !/^http:\/\/www\.w3\.org\/(2000\/svg|1999\/xlink)$/.test(u),
  );
}

describe('podium report', () => {
  it('writes one self-contained file at the default place, with every section and chart', async () => {
    expect(reportPath).toBe(join(project.dir, '.podium', 'reports', 'ci-small.html'));
    const html = readFileSync(reportPath, 'utf8');
    expect(urlsIn(html)).toEqual([]);
    // Nothing that loads: no script, stylesheet, frame or import, no url() but local #fragments
    // (vega's clip paths). Matches are listed, not the page, when this fails.
    expect(html.match(/<script|<link|<iframe|@import|url\((?!#)/gi) ?? []).toEqual([]);
    for (const id of SECTIONS) has(html, `<section id="${id}"`);
    expect(html.match(/<figure class="chart"><svg/g)).toHaveLength(6);
    const rev = (await execa('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: project.dir })).stdout;
    has(html, `Pipeline revision: ${rev}.`);
    expect(html.includes('not in the cache'), 'a stage is reported missing').toBe(false);
  });

  it('shows the numbers the cache holds: best sweep cells, the misclassified images, the fused score', async () => {
    const html = readFileSync(reportPath, 'utf8');
    // That report is of the first run, whose lock file is the committed one (the compare run
    // has replaced the lock on disk since).
    const lock = JSON.parse(
      (await execa('git', ['show', `HEAD:${PIPE.replace('.json', '.lock.json')}`], { cwd: project.dir })).stdout,
    );
    const table = await blobJson<{ rows: Array<{ top1: number }> }>(lock.stages.sweep.outputs.table);
    const best = Math.max(...table.rows.map((x) => x.top1));
    const sweepHtml = html.slice(html.indexOf('<section id="sweep"'), html.indexOf('<section id="multicrop"'));
    has(sweepHtml, `<td class="n best">${(best * 100).toFixed(1)}%</td>`);

    const exported = await blobJson<{ misclassified: Array<{ id: string }> }>(lock.stages.submit.outputs.metrics);
    const errors = html.slice(html.indexOf('<section id="errors"'), html.indexOf('<section id="augment"'));
    const final = errors.slice(errors.indexOf('final predictions (submit)'));
    expect(exported.misclassified.length).toBeGreaterThan(0);
    expect(final.match(/<figure><img src="data:image\/jpeg;base64,/g)).toHaveLength(
      Math.min(60, exported.misclassified.length),
    );
    for (const m of exported.misclassified.slice(0, 60)) has(final, `<code>${m.id}</code>`);
    const fused = lock.stages.fused.metrics as { top1: number };
    const fusedRow = /<tr class="fused">.*?<\/tr>/.exec(html)?.[0] ?? '';
    expect(fusedRow.match(/<td[^>]*>[^<]*<\/td>/g)?.[5]).toContain(`${(fused.top1 * 100).toFixed(1)}%`);
  });

  it('--compare puts the two runs side by side with the metric deltas; --out writes where asked', async () => {
    expect(compareReport.path).toBe(join(project.dir, '.podium', 'reports', 'ci-small.vs-HEAD.html'));
    expect(compareReport.sections).toEqual(['compare', ...SECTIONS]);
    expect(compareReport.charts[0]).toBe('compare:tiny');
    const html = readFileSync(compareReport.path, 'utf8');
    const section = html.slice(html.indexOf('<section id="compare"'), html.indexOf('<section id="curves"'));
    has(section, '<h2>Compared with HEAD</h2>');
    // The epoch metric of each finetune point went from 3 to 4.
    has(
      section,
      '<td>tiny@lr=0.05</td><td>epoch</td><td class="n">3</td><td class="n">4</td><td class="n"><span class="">+1</span></td>',
    );
    has(section, 'params.epochs');
    // Deltas coloured by direction: lower loss and higher accuracy are better.
    const deltas = [
      ...section.matchAll(
        /<td>([^<]+)<\/td><td>([^<]+)<\/td><td class="n">[^<]*<\/td><td class="n">[^<]*<\/td><td class="n"><span class="([^"]*)">([-+][\d.e-]+)<\/span>/g,
      ),
    ].map(([, stage, metric, cls, delta]) => ({ stage, metric: metric!, cls, delta: Number(delta) }));
    const scored = deltas.filter((d) => /loss|top\d|acc/i.test(d.metric) && d.delta !== 0);
    expect(scored.length).toBeGreaterThan(3);
    for (const d of scored)
      expect(d.cls, `${d.stage} ${d.metric} ${d.delta}`).toBe(
        d.delta > 0 !== /loss/i.test(d.metric) ? 'delta-up' : 'delta-down',
      );

    const out = await project.cli('report', PIPE, '--out', 'elsewhere/r.html');
    expect(out.exitCode).toBe(0);
    expect(out.stdout).toMatch(/^report of ci-small: elsewhere\/r\.html \(\d+ KiB, 6 charts\)/);
    expect(existsSync(join(project.dir, 'elsewhere', 'r.html'))).toBe(true);
  });
});

describe('reportAfterRun', () => {
  it('writes the report and names it, and turns a failure into one line instead of an error', async () => {
    const { reportAfterRun } = await import('../../runner/report/after-run.js');
    const lines: string[] = [];
    const out = join(project.dir, 'after-run.html');
    const path = await reportAfterRun(
      join(project.dir, PIPE),
      { cache: join(project.dir, '.podium', 'cache'), out },
      (l) => lines.push(l),
    );
    expect(path).toBe(out);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^report: .*after-run\.html$/);
    expect(readFileSync(out, 'utf8').match(/<figure class="chart"><svg/g)).toHaveLength(6);

    // `podium run` itself ends by writing it, at the default place, and names it.
    const run = await project.spawn(['run', PIPE, '--force', 'submit', '--json'], { PODIUM_NO_REPORT: '' });
    expect(run.exitCode, String(run.stderr)).toBe(0);
    expect(String(run.stderr)).toMatch(/^report: \.podium\/reports\/ci-small\.html$/m);
    expect(JSON.parse(String(run.stdout)).report).toBe(join(project.dir, '.podium', 'reports', 'ci-small.html'));
    const noReport = await project.spawn(['run', PIPE, '--force', 'submit', '--no-report'], { PODIUM_NO_REPORT: '' });
    expect(String(noReport.stderr)).not.toContain('report:');

    lines.length = 0;
    expect(
      await reportAfterRun(join(project.dir, 'nope.json'), { cache: join(project.dir, '.podium', 'cache') }, (l) =>
        lines.push(l),
      ),
    ).toBeUndefined();
    expect(lines).toEqual([expect.stringMatching(/^report not written: .*nope\.json/)]);
  });
});

/** A JSON blob straight from the test project's cache, verified. */
async function blobJson<T>(digest: Digest): Promise<T> {
  const store = new LmdbStore(join(project.dir, '.podium', 'cache'));
  try {
    return JSON.parse(store.getBlob(digest, { verify: true })!.toString()) as T;
  } finally {
    await store.close();
  }
}

describe.skipIf(!HAS_CHROMIUM)(
  `in Chromium${HAS_CHROMIUM ? '' : ` (skipped: no ${CHROMIUM}; apt-get install -y chromium)`}`,
  () => {
    it('renders every chart and section, with no console error and no network request', async () => {
      const { chromium } = await import('playwright-core');
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      try {
        for (const [file, shot] of [
          [reportPath, 'report-ci-small.png'],
          [compareReport.path, 'report-ci-small-compare.png'],
        ] as const) {
          const url = pathToFileURL(file).href;
          const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
          const problems: string[] = [];
          const requests: string[] = [];
          page.on('console', (m) => {
            if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
          });
          page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
          await page.route('**/*', (route) => {
            const u = route.request().url();
            if (u === url || u.startsWith('data:')) return route.continue();
            requests.push(u);
            return route.abort();
          });
          page.on('requestfailed', (r) => {
            if (!r.url().startsWith('data:')) problems.push(`request failed: ${r.url()}`);
          });
          await page.goto(url, { waitUntil: 'load' });

          const sections = await page.$$eval('main > section', (els) =>
            els.map((e) => ({
              id: e.id,
              title: e.querySelector('h2')?.textContent ?? '',
              height: e.getBoundingClientRect().height,
            })),
          );
          expect(sections.map((s) => s.id)).toEqual(file === reportPath ? SECTIONS : ['compare', ...SECTIONS]);
          for (const s of sections) {
            expect(s.title).not.toBe('');
            expect(s.height).toBeGreaterThan(60);
          }

          const charts = await page.$$eval('figure.chart svg', (svgs) =>
            svgs.map((svg) => {
              const box = svg.getBoundingClientRect();
              const count = (sel: string): number => svg.querySelectorAll(sel).length;
              return {
                section: svg.closest('section')?.id,
                width: box.width,
                height: box.height,
                marks: count(
                  'g.role-mark > path, g.role-mark > line, g.role-mark > text, g.role-mark > rect, g.role-mark > circle',
                ),
                lines: count('g.mark-line.role-mark > path'),
                rules: count('g.mark-rule.role-mark > line'),
                rects: count('g.mark-rect.role-mark > path'),
              };
            }),
          );
          expect(charts).toHaveLength(file === reportPath ? 6 : 7);
          for (const c of charts) {
            expect(c.width, `${c.section} chart`).toBeGreaterThan(150);
            expect(c.height).toBeGreaterThan(80);
            expect(c.marks, `${c.section} chart has data marks`).toBeGreaterThan(0);
          }
          const curves = charts.find((c) => c.section === 'curves')!;
          // 2 learning rates × train/val × accuracy/loss; the lr step after epoch 2 in both panels.
          expect(curves.lines).toBe(8);
          expect(curves.rules).toBeGreaterThanOrEqual(2);
          // 4 synthetic classes: 16 cells in each confusion matrix.
          expect(charts.filter((c) => c.section === 'errors').map((c) => c.rects)).toEqual([16, 16]);

          const images = await page.$$eval('img', (imgs) =>
            imgs.map((i) => ({ ok: i.complete && i.naturalWidth > 0, src: i.getAttribute('src')!.slice(0, 22) })),
          );
          expect(images.length).toBeGreaterThan(1);
          for (const i of images) {
            expect(i.ok).toBe(true);
            expect(i.src).toMatch(/^data:image\/(png|jpeg);base64/);
          }

          expect(requests).toEqual([]);
          expect(problems).toEqual([]);
          mkdirSync(OUT_DIR, { recursive: true });
          await page.screenshot({ path: join(OUT_DIR, shot), fullPage: true });
          if (file === reportPath && process.env.PODIUM_REPORT_SCREENSHOT) {
            // For the docs: a palette PNG, a quarter of the size, for the repository.
            const sharp = (await import('sharp')).default;
            await sharp(await page.screenshot({ fullPage: true }))
              .png({ palette: true, quality: 90, compressionLevel: 9 })
              .toFile(resolve(REPO, process.env.PODIUM_REPORT_SCREENSHOT));
          }
          // Printable: print media keeps every section, and a PDF comes out.
          await page.emulateMedia({ media: 'print' });
          expect(
            await page.$$eval(
              'main > section',
              (els) => els.filter((e) => e.getBoundingClientRect().height > 0).length,
            ),
          ).toBe(sections.length);
          const pdf = await page.pdf({ format: 'A4' });
          expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
          await page.close();
        }
      } finally {
        await browser.close();
      }
    });
  },
);

describe('a corrupt blob', () => {
  // Last in the file: it damages the project's cache.
  it('is left out of the report with a line saying so, and the report is still written', async () => {
    const digest = project.json(PIPE.replace('.json', '.lock.json')).stages.aug.outputs.preview as string;
    const env = open({ path: join(project.dir, '.podium', 'cache'), maxDbs: 8 });
    env.openDB({ name: 'blob-data', encoding: 'binary' }).putSync(digest, Buffer.from('not a png'));
    await env.close();
    const r = await project.cli('report', PIPE, '--out', 'corrupt.html');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `not shown: aug: output "preview" is corrupt in the cache (blob ${digest.slice(0, 12)}:`,
    );
    const html = project.read('corrupt.html');
    has(html, 'No augment stage with a preview in the cache.');
    has(html, `<li>aug: output &quot;preview&quot; is corrupt in the cache`);
    expect(html.match(/<figure class="chart"><svg/g)).toHaveLength(6);
  });
});
