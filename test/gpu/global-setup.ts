// Probes for a WebGPU adapter once, in a child process (the environment the test workers and the
// CLI will have), and tells the tests what it found. No adapter: every gpu test skips, and this
// prints the one message saying why and how to get one.
import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';

const PROBE = `
import('webgpu').then(async ({ create, globals }) => {
  Object.assign(globalThis, globals);
  const gpu = create((process.env.PODIUM_DAWN_OPTIONS ?? '').split(/\\s+/).filter(Boolean));
  const a = await gpu.requestAdapter();
  const i = a?.info;
  console.log(JSON.stringify(a ? { vendor: i.vendor, architecture: i.architecture, device: i.device, fallback: i.isFallbackAdapter ?? a.isFallbackAdapter ?? false } : null));
  process.exit(0);
}, (e) => { console.log(JSON.stringify({ error: String(e.message ?? e) })); process.exit(0); });
`;

export default function setup(project: TestProject): void {
  let found: { vendor: string; architecture: string; device: string; fallback: boolean } | null = null;
  let why = 'Dawn found no adapter';
  try {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', PROBE], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 60_000,
    });
    const parsed = JSON.parse(out.trim().split('\n').at(-1) ?? 'null') as typeof found | { error: string };
    if (parsed && 'error' in parsed) why = `Dawn (npm webgpu) did not load: ${parsed.error}`;
    else found = parsed;
  } catch (err) {
    why = `the adapter probe failed: ${(err as Error).message.split('\n')[0]}`;
  }
  if (found === null) {
    console.warn(
      `\n[test:gpu] SKIPPING every webgpu test: ${why}. On a CPU machine: eval "$(.ci/setup-vulkan.sh)" (software Vulkan); see docs/gpu.md.\n`,
    );
  } else {
    console.warn(
      `\n[test:gpu] adapter: ${found.vendor} ${found.architecture} ${found.device}${found.fallback ? ' (software/fallback)' : ''}\n`,
    );
  }
  project.provide('webgpuAdapter', found === null ? '' : `${found.vendor} ${found.architecture} ${found.device}`);
}

declare module 'vitest' {
  export interface ProvidedContext {
    webgpuAdapter: string;
  }
}
