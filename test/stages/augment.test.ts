import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../cache/lmdb-store.js';
import { Project } from '../rig.js';

let project: Project;
afterEach(() => project?.cleanup());

async function outputs(stage: string): Promise<{ policy: any; preview: Buffer }> {
  const o = project.json('p.lock.json').stages[stage].outputs;
  const store = new LmdbStore(join(project.dir, '.podium/cache'));
  try {
    return { policy: JSON.parse(store.getBlob(o.policy)!.toString()), preview: store.getBlob(o.preview)! };
  } finally {
    await store.close();
  }
}

describe('augment stage', () => {
  it('writes the policy (level defaults, explicit values win) and a deterministic preview of decoded images', async () => {
    project = new Project();
    for (let i = 0; i < 3; i++) {
      mkdirSync(join(project.dir, 'data/train/c'), { recursive: true });
      await sharp({ create: { width: 48, height: 40, channels: 3, background: { r: 40 * i, g: 120, b: 200 } } })
        .jpeg()
        .toFile(join(project.dir, `data/train/c/${i}.jpg`));
    }
    const pipeline = (aug: object, seed = 1): object => ({
      name: 'aug',
      seed,
      stages: {
        images: { uses: 'dataset', params: { root: 'data' } },
        decoded: { uses: 'decode', inputs: { dataset: 'images' }, params: { shortSide: 40 } },
        aug: { uses: 'augment', inputs: { images: 'decoded' }, params: aug },
      },
    });
    project.write('p.json', pipeline({ level: 3, crop: 32, rotate: 5, previewAugmentations: 4 }));
    expect((await project.run()).exitCode).toBe(0);
    const first = await outputs('aug');
    expect(first.policy.policy).toMatchObject({
      crop: 32,
      randomCrop: true,
      mirror: true,
      hue: 36,
      rotate: 5,
      shear: 0.1,
      fill: 127,
    });
    const meta = await sharp(first.preview).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 4 * 32 + 3 * 2, 3 * 32 + 2 * 2]);

    // Same seed → the same bytes even when recomputed; another seed → other augmentations.
    expect((await project.run('p.json', '--force', 'aug')).status.aug).toBe('ran');
    expect((await outputs('aug')).preview.equals(first.preview)).toBe(true);
    project.write('p.json', pipeline({ level: 3, crop: 32, rotate: 5, previewAugmentations: 4 }, 2));
    await project.run();
    expect((await outputs('aug')).preview.equals(first.preview)).toBe(false);
  });
});
