// A job that fails, one killed by its time limit and one cancelled with scancel each fail their
// stage with SLURM's state and the log's tail, while independent stages finish.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandPipeline, Project, waitUntil } from '../rig.js';
import { Cluster, slurmMissing } from './cluster.js';

const missing = slurmMissing();
if (missing) console.log(missing);

describe.skipIf(!!missing)('failed, timed-out and cancelled jobs', () => {
  let cluster: Cluster;
  let project: Project;
  let store: string;
  beforeAll(() => {
    cluster = new Cluster(7331, { cpus: 8 });
    project = new Project();
    store = mkdtempSync(join(tmpdir(), 'podium-store-'));
  });
  afterAll(() => {
    cluster?.stop();
    project?.cleanup();
    rmSync(store, { recursive: true, force: true });
  });

  it('each fails its stage with a clear reason; the rest of the pipeline finishes', async () => {
    project.write('package.json', '{"name":"t"}');
    // SLURM's smallest time limit is a minute, enforced every 30 s or so.
    project.write('podium.config.json', { remote: store, slurm: { pollMs: 300, stages: { slow: { time: '1' } } } });
    project.write(
      'p.json',
      commandPipeline({
        ok: { run: 'echo fine > ok.txt', outs: ['ok.txt'] },
        after: { run: 'cat ok.txt > after.txt', inputs: { x: 'ok' }, outs: ['after.txt'] },
        broken: { run: 'echo "about to fail" >&2; exit 3' },
        slow: { run: 'echo "starting a long one"; sleep 600' },
        doomed: { run: 'echo "waiting to be cancelled"; sleep 600' },
        below: { run: 'true', inputs: { x: 'broken' } },
      }),
    );
    const run = project.spawn(['run', 'p.json', '--executor', 'slurm', '--json'], cluster.env);
    const spool = join(project.dir, '.podium', 'slurm');
    // Cancel `doomed` once its command runs: podium has started on the node (its first line is in
    // the job's log), plus a moment for the command to start.
    let doomed: string | undefined;
    const logOf = (id: string): string => {
      for (const k of readdirSync(spool)) {
        try {
          return readFileSync(join(spool, k, `log-${id}.txt`), 'utf8');
        } catch {
          /* not this one */
        }
      }
      return '';
    };
    await waitUntil(
      () => {
        doomed = cluster.jobs().find((j) => j.name === 'podium:doomed' && j.state === 'RUNNING')?.id;
        return !!doomed && logOf(doomed).includes('podium exec-stage doomed');
      },
      60_000,
      'the doomed job to start',
    );
    await new Promise((res) => setTimeout(res, 3000));
    cluster.scancel(doomed!);
    const r = await run;
    expect(r.exitCode, String(r.stderr)).toBe(1);
    const byId = Object.fromEntries(
      (JSON.parse(String(r.stdout)).stages as Array<{ id: string; status: string; reason: string }>).map((s) => [
        s.id,
        s,
      ]),
    );
    expect(byId.ok!.status).toBe('ran');
    expect(byId.after!.status).toBe('ran');
    expect(byId.below!.status).toBe('skipped');
    expect(byId.broken!.status).toBe('failed');
    expect(byId.broken!.reason).toMatch(/^command exited with code 3: about to fail \(slurm job \d+ FAILED on \S+\)$/);
    expect(byId.slow!.status).toBe('failed');
    expect(byId.slow!.reason).toMatch(
      /^slurm job \d+ TIMEOUT on \S+: exceeded its time limit \(--time=1\); log .*log-\d+\.txt$/,
    );
    expect(byId.doomed!.status).toBe('failed');
    expect(byId.doomed!.reason).toMatch(new RegExp(`^slurm job ${doomed} CANCELLED on \\S+: was cancelled`));
    // The human output shows each failure's log tail.
    const human = String(r.stderr);
    expect(human).toMatch(/✗ failed\s+slow[^\n]*\n(\s+\|[^\n]*\n)*\s+\|[^\n]*starting a long one/);
    expect(human).toMatch(/✗ failed\s+doomed[^\n]*\n(\s+\|[^\n]*\n)*\s+\|[^\n]*waiting to be cancelled/);
    expect(human).toMatch(/✗ failed\s+broken[^\n]*\n(\s+\|[^\n]*\n)*\s+\|[^\n]*about to fail/);
    // Every job had its log in the spool.
    const logs = readdirSync(spool)
      .filter((k) => /^[0-9a-f]{64}$/.test(k))
      .flatMap((k) =>
        readdirSync(join(spool, k))
          .filter((f) => f.startsWith('log-'))
          .map((f) => readFileSync(join(spool, k, f), 'utf8')),
      );
    expect(logs).toHaveLength(5);
  });
});
