import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, commandPipeline, Project, waitUntil } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

async function waitFor(path: string, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${path}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('crashes and concurrency', () => {
  it('a runner killed with SIGKILL mid-stage leaves no record and no orphan, and the rerun succeeds', async () => {
    project = new Project();
    // The first attempt blocks until killed; the second finds started.txt and finishes at once.
    project.write(
      'p.json',
      commandPipeline({
        quick: { run: 'echo q > q.txt', outs: ['q.txt'] },
        slow: {
          run: 'if [ ! -f started.txt ]; then echo $$ > started.txt; sleep 60; fi; echo done > slow.txt',
          inputs: { after: 'quick' },
          outs: ['slow.txt'],
        },
      }),
    );
    const child = project.spawn(['run', 'p.json', '--json']);
    await waitFor(join(project.dir, 'started.txt'));
    child.kill('SIGKILL');
    await child;
    // The stage's shell (and its sleep) must not outlive the runner: its launcher stops the group.
    const shell = Number(readFileSync(join(project.dir, 'started.txt'), 'utf8'));
    await waitUntil(() => !alive(shell), 5_000, `the stage's shell (pid ${shell}) outlived its runner`);

    const status = JSON.parse((await project.cli('status', 'p.json', '--json')).stdout);
    expect(status.stages.map((s: { id: string; status: string }) => `${s.id}:${s.status}`)).toEqual([
      'quick:fresh',
      'slow:stale',
    ]);
    const rerun = await project.run();
    expect(rerun.exitCode).toBe(0);
    // quick's record was committed before the kill: finished work is not lost.
    expect(rerun.status).toEqual({ quick: 'cached', slow: 'ran' });
    expect(project.read('slow.txt')).toBe('done\n');
  });

  it('a stage process killed by SIGKILL fails the stage and leaves no record', async () => {
    project = new Project();
    project.write('p.json', commandPipeline({ k: { run: 'echo partial > k.txt; kill -9 $$', outs: ['k.txt'] } }));
    const r = await project.run();
    expect(r.exitCode).toBe(1);
    expect(r.out.stages[0].failure).toEqual({ reason: 'stage' });
    expect(r.out.stages[0].reason).toBe('command was killed by SIGKILL');
    expect((await project.run()).status).toEqual({ k: 'failed' }); // not cached: it runs (and fails) again
  });

  it('two concurrent runs of one pipeline both succeed and compute each key once', async () => {
    project = new Project();
    project.write(
      'p.json',
      commandPipeline({
        a: { run: 'echo a >> count.txt; sleep 1; echo A > a.txt', outs: ['a.txt'] },
        b: { run: 'echo b >> count.txt; sleep 1; cat a.txt > b.txt', inputs: { x: 'a' }, outs: ['b.txt'] },
      }),
    );
    const [r1, r2] = await Promise.all([
      project.spawn(['run', 'p.json', '--json']),
      project.spawn(['run', 'p.json', '--json']),
    ]);
    expect([r1.exitCode, r2.exitCode]).toEqual([0, 0]);
    expect(project.read('count.txt').split('\n').filter(Boolean).sort()).toEqual(['a', 'b']);
    const reasons = [r1, r2].flatMap((r) =>
      JSON.parse(String(r.stdout)).stages.map((s: { status: string; reason: string }) => `${s.status}`),
    );
    expect(reasons.filter((s: string) => s === 'ran')).toHaveLength(2);
    expect(project.read('b.txt')).toBe('A\n');
  });
});
