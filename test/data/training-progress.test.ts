import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256 } from '../../cache/canonical.js';
import { LmdbStore } from '../../cache/lmdb-store.js';
import { stageStoreOf } from '../../cache/local-stage-store.js';
import { TrainingProgress } from '../../stages/data/training-progress.js';

let dir: string;
let store: LmdbStore | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('TrainingProgress in the typed index', () => {
  it("keeps weights and optimizer state as the entry's two blobs; a run of the same line finds them, a malformed entry is a miss", async () => {
    dir = mkdtempSync(join(tmpdir(), 'podium-progress-'));
    store = new LmdbStore(join(dir, 'cache'));
    const s = stageStoreOf(store);
    const [key, otherKey, line] = [sha256('key'), sha256('other key'), sha256('line')];
    const [weights, opt] = [sha256('w'), sha256('o')];
    const row = { epoch: 1, loss: 0.5 };
    new TrainingProgress(s, key, line, [0.1, 0.1], 'tiny@lr=0.1 x').put(0, weights, opt, row);
    await s.flush(); // index writes are queued, as finetune flushes after each epoch
    expect(s.getIndex(`finetune:${key}:0`)).toEqual({ blobs: [weights, opt], meta: { row } });

    expect(new TrainingProgress(s, key, line, [0.1, 0.1], 'tiny@lr=0.1 x').get(0)).toEqual({ weights, opt, row });
    // Another run of the line (more epochs: another key, the same rates so far) continues from it.
    expect(new TrainingProgress(s, otherKey, line, [0.1, 0.1, 0.01], 'longer').get(0)).toEqual({
      weights,
      opt,
      row,
      from: 'tiny@lr=0.1 x',
    });
    // Other rates: another line entry, so nothing to take.
    expect(new TrainingProgress(s, otherKey, line, [0.2], 'other').get(0)).toBeUndefined();

    s.setIndex(`finetune:${key}:1`, { blobs: [weights], meta: { row } });
    await s.flush();
    expect(new TrainingProgress(s, key, line, [0.1, 0.1], 'x').get(1)).toBeUndefined();
  });
});
