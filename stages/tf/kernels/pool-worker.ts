// A worker thread of kernels/pool.ts: instantiates the kernel module on the shared heap, then
// takes units of each job until none is left and sleeps until the next job is published.
import { parentPort, workerData } from 'node:worker_threads';

import { CLAIM, work, type WorkerSetup } from './pool.js';

const { thread, module, memory, control: buffer, exports: names } = workerData as WorkerSetup;
const instance = new WebAssembly.Instance(module, { env: { memory } });
const functions = names.map((name) => instance.exports[name] as (...args: number[]) => void);
const control = new Int32Array(buffer);
parentPort?.postMessage({ ready: true });
for (;;) {
  const word = Atomics.load(control, CLAIM);
  work(
    control,
    functions,
    (e) => parentPort?.postMessage({ error: e instanceof Error ? e.message : String(e) }),
    thread,
  );
  Atomics.wait(control, CLAIM, word);
}
