// What the gpu tests share: whether an adapter was found (global-setup.ts probes once), and a
// describe that skips without one.
import { describe, inject } from 'vitest';

/** "vendor architecture device" of the adapter Dawn offers, or '' when there is none. */
export const ADAPTER = inject('webgpuAdapter');

/** describe(), skipped when no WebGPU adapter was found (global-setup.ts printed why). */
export const describeGpu = describe.skipIf(ADAPTER === '');
