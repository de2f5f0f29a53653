// What a user sees while podium runs: live bars with rate and ETA on a terminal (checked under a
// real pseudo-terminal from util-linux's `script`), clean lines through a pipe or in CI, --quiet.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, Project } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

const hasScript = ((): boolean => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** Enough training (a few hundred small batches) for the live view to draw several frames. */
function pipeline(): object {
  return {
    name: 'progress',
    seed: 3,
    stages: {
      images: {
        uses: 'dataset',
        params: { format: 'synthetic', classes: 3, perClass: { train: 80, val: 4, test: 0 }, size: 40 },
      },
      decoded: { uses: 'decode', inputs: { dataset: 'images' }, params: { shortSide: 36 } },
      tiny: {
        uses: 'finetune',
        inputs: { images: 'decoded' },
        params: { model: 'tiny', inputSize: 32, epochs: 4, batchSize: 2, lr: 0.01, backend: 'wasm' },
      },
    },
  };
}

describe('progress', () => {
  it.skipIf(!hasScript)('on a terminal: a bar per running stage with rate and ETA, and one line per epoch', () => {
    project = new Project();
    project.write('p.json', pipeline());
    const log = join(project.dir, 'tty.log');
    // A pseudo-terminal of a real size (script's own reports 0 rows); CI unset, colour forced off.
    const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', PODIUM_NO_REPORT: '1' };
    delete env.CI;
    execFileSync('script', ['-qec', `stty rows 40 cols 160; node ${CLI} run p.json`, log], {
      cwd: project.dir,
      env,
      stdio: 'ignore',
    });
    const out = readFileSync(log, 'utf8');
    expect(out).toMatch(
      /… tiny +▕█*░*▏ +\d+% +\d+\/120 batches +[\d.]+\/s +ETA \d+:\d\d +epoch \d\/4 · loss [\d.]+ · acc [\d.]+/,
    );
    expect(out).toMatch(/tiny\| epoch 4\/4: loss /);
    expect(out).toContain('progress: 3 ran');
    expect(out).toContain('\x1b['); // it did draw
  });

  it('through a pipe: plain lines, one per stage event and per epoch, no control characters; --quiet: the summary', async () => {
    project = new Project();
    project.write('p.json', pipeline());
    const r = await project.cli('run', 'p.json');
    expect(r.exitCode).toBe(0);
    expect(r.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
    expect(r.stderr.split('\n').filter((l) => /^ {4}tiny\| epoch \d\/4: /.test(l))).toHaveLength(4);
    expect(r.stderr).toMatch(/^✓ ran {7}tiny \(/m);
    // The train loop's speed is in the record (show, report), not in the lock: timings vary.
    expect((await project.cli('show', 'p.json', 'tiny')).stdout).toMatch(
      /^timing {2}imagesPerSec [\d.]+, secondsPerEpoch [\d.]+$/m,
    );
    expect(project.read('p.lock.json')).not.toMatch(/imagesPerSec|secondsPerEpoch/);
    // With --verbose the epoch lines come once each, as log lines (the note is not logged twice).
    const verbose = await project.cli('run', 'p.json', '--force', 'tiny', '--verbose');
    expect(verbose.stderr.split('\n').filter((l) => /^ {4}tiny\| epoch \d\/4: /.test(l))).toHaveLength(4);
    project.write('p.json', { ...pipeline(), seed: 4 });
    const quiet = await project.cli('run', 'p.json', '--quiet');
    expect(quiet.stderr.trim()).toBe('progress: 3 ran');
  });
});
