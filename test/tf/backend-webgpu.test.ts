/**
 * The webgpu backend's wiring, on any machine (the webgpu computations themselves are tested by
 * `npm run test:gpu`): the backend list is written once and every place reads it; `auto` never
 * takes a software adapter and logs what it passed over; an explicit `webgpu` either works (with
 * a warning on a software adapter) or fails with a sentence saying why.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BACKEND_NAMES } from '../../stages/tf/backend-names.js';
import { selectBackend } from '../../stages/tf/backend.js';
import { Project } from '../rig.js';

describe('the backend list', () => {
  it('is the one in the CLI usage, the analyzer and the pipeline schema (pipeline and stage params)', async () => {
    expect(BACKEND_NAMES).toEqual(['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu']);
    const project = new Project();
    try {
      const usage = await project.cli('run', '--help');
      expect(usage.stdout + usage.stderr).toContain(`--backend ${BACKEND_NAMES.join('|')}`);
      project.write('p.json', { name: 'b', stages: { a: { uses: 'command', params: { run: 'true' } } } });
      const bad = await project.cli('run', 'p.json', '--backend', 'vulkan');
      expect(bad.exitCode).toBe(2);
      expect(bad.stderr + bad.stdout).toContain(`--backend must be one of ${BACKEND_NAMES.join(', ')}`);
    } finally {
      project.cleanup();
    }
    const schema = JSON.parse(readFileSync(new URL('../../schema/pipeline.schema.json', import.meta.url), 'utf8'));
    expect(schema.properties.backend.enum).toEqual([...BACKEND_NAMES]);
    const stageEnums = JSON.stringify(schema).match(/"enum":\["auto"[^\]]*\]/g) ?? [];
    expect(stageEnums.length).toBeGreaterThanOrEqual(4); // the pipeline's and the three TF stage kinds'
    for (const e of stageEnums) expect(e).toMatch(/^"enum":\["auto","tensorflow","webgpu","wasm","cpu"(,null)?\]$/);
  });
});

describe('selectBackend and webgpu', () => {
  it("'auto' never trains on a software adapter and says what it passed over", async () => {
    const selected = await selectBackend('auto');
    // No tfjs-node here. A machine with a GPU gets webgpu on its hardware adapter; one with no
    // adapter, or only a software one (lavapipe), gets wasm, and the log says why.
    if (selected.name === 'webgpu') expect(selected.detail).toMatch(/, hardware adapter\)$/);
    else {
      expect(selected.name).toBe('wasm');
      expect(selected.notes).toContainEqual(
        expect.stringMatching(
          /^auto passed over webgpu: (Dawn found no adapter|only a software adapter|Dawn \(npm webgpu\): not installed)/,
        ),
      );
    }
    expect(selected.notes.at(-1)).toBe(`auto chose ${selected.detail}`);
  });

  it("an explicit 'webgpu' takes a software adapter with a warning, or fails saying why", async () => {
    try {
      const selected = await selectBackend('webgpu');
      expect(selected.name).toBe('webgpu');
      expect(selected.detail).toMatch(/^webgpu \(.+, (fallback|hardware) adapter\)$/);
      if (selected.detail.includes('fallback')) expect(selected.notes[0]).toMatch(/^warning: .* software adapter/);
    } catch (err) {
      expect((err as Error).message).toMatch(
        /^backend 'webgpu' is not available: webgpu: (Dawn found no adapter|Dawn \(npm webgpu\): not installed)/,
      );
    } finally {
      await selectBackend('wasm');
    }
  });
});
