/**
 * Threads for podium's own wasm kernels on the tfjs wasm backend's heap. The backend's pthreads
 * belong to XNNPACK and run only its code; while one of podium's kernels runs they are idle, so
 * this pool's threads (worker_threads with the same kernel module, instantiated on the same
 * shared memory) take their place: the caller's thread and `threads − 1` workers.
 *
 * A job is a wasm export called once per unit number 0 … units − 1 with the same arguments and the
 * unit last. Whoever is free takes the next number (the caller's thread included, so a job
 * completes even before a worker has started, or when the machine's other load has descheduled
 * it): a kernel whose units write disjoint outputs, each computed in one fixed order, gives the
 * same bytes for every thread count and every schedule.
 *
 * The kernel call is synchronous (tfjs kernels are), so the caller's thread blocks with
 * Atomics.wait until the last unit is done; workers sleep in Atomics.wait between jobs.
 */
import { Worker } from 'node:worker_threads';

import { compiledPath } from '../../compiled-path.js';

/** Control words (Int32Array over a SharedArrayBuffer). */
export const CLAIM = 0; // job generation << 24 | next unit number
export const DONE = 1; // units finished in this job
export const UNITS = 2; // units in this job
export const EXPORT = 3; // which export (index into the names the pool was made with)
export const ARGC = 4; // how many arguments
export const FAILED = 5; // set when a unit threw on a worker
export const BY_WORKERS = 6; // units done by workers since the pool started (for tests and benches)
export const ARGS = 8; // the arguments, as int32
export const MAX_ARGS = 32;
export const UNIT_BITS = 24;
export const UNIT_MASK = (1 << UNIT_BITS) - 1;

export interface WorkerSetup {
  /** This worker's number, 1 … threads − 1 (the caller's thread is 0), passed to every unit. */
  thread: number;
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  exports: readonly string[];
}

type UnitFunction = (...args: number[]) => void;

/**
 * Floats between the partial results of consecutive units that hold `floats` values each: a whole
 * number of 64-byte cache lines and at least one line of gap. Units on two threads writing into
 * neighbouring cache lines slowed podium's batch-norm statistics down 2× (kernels/batch-norm.as.ts).
 */
export function separatedStride(floats: number): number {
  return Math.ceil(floats / 16) * 16 + 16;
}

/** Claims the next unit of the job in `word`'s generation; -1 when there is none. */
export function claim(control: Int32Array): number {
  for (;;) {
    const word = Atomics.load(control, CLAIM);
    const unit = word & UNIT_MASK;
    // UNITS may already be the next job's; then the exchange below fails, as the word changed.
    if (unit >= Atomics.load(control, UNITS)) return -1;
    if (Atomics.compareExchange(control, CLAIM, word, word + 1) === word) return unit;
  }
}

/** Runs claimed units until none is left. The arguments are read after a claim, while they are stable. */
export function work(
  control: Int32Array,
  functions: readonly UnitFunction[],
  onError: (e: unknown) => void,
  thread: number,
): void {
  for (let unit = claim(control); unit >= 0; unit = claim(control)) {
    if (thread > 0) Atomics.add(control, BY_WORKERS, 1);
    try {
      const fn = functions[control[EXPORT]!]!;
      const args = Array.from(control.subarray(ARGS, ARGS + control[ARGC]!));
      fn(...args, unit, thread);
    } catch (e) {
      Atomics.store(control, FAILED, 1);
      onError(e);
    } finally {
      if (Atomics.add(control, DONE, 1) + 1 === Atomics.load(control, UNITS)) Atomics.notify(control, DONE);
    }
  }
}

export class UnitPool {
  private readonly control = new Int32Array(new SharedArrayBuffer((ARGS + MAX_ARGS) * 4));
  private readonly functions: UnitFunction[];
  private generation = 0;
  private workerError: unknown;
  /** Resolves when every worker has instantiated the module (or failed to start). */
  readonly ready: Promise<void>;

  /**
   * `instance` is the kernel module's instance on this thread; with `threads` > 1 and a shared
   * `memory`, `threads − 1` workers instantiate `module` on the same memory.
   */
  constructor(
    module: WebAssembly.Module,
    instance: WebAssembly.Instance,
    memory: WebAssembly.Memory,
    private readonly names: readonly string[],
    threads: number,
  ) {
    this.functions = names.map((name) => instance.exports[name] as UnitFunction);
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const started: Array<Promise<void>> = [];
    if (shared && threads > 1) {
      const script = compiledPath(import.meta.url, 'pool-worker.js');
      for (let i = 1; i < threads; i++) {
        const setup: WorkerSetup = {
          thread: i,
          module,
          memory,
          control: this.control.buffer as SharedArrayBuffer,
          exports: names,
        };
        const worker = new Worker(script, { workerData: setup });
        // A worker that cannot start leaves its units to the others; one that failed a unit says why.
        // Referenced until it has started (so `ready` can resolve), then never keeps Node alive:
        // it sleeps in Atomics.wait between jobs for as long as the process lives.
        started.push(
          new Promise((resolve) => {
            worker.on('message', (m: { ready?: boolean; error?: string }) => {
              if (m.ready) {
                worker.unref();
                resolve();
              }
              if (m.error !== undefined) this.workerError = m.error;
            });
            worker.on('error', () => {
              worker.unref();
              resolve();
            });
          }),
        );
      }
    }
    this.threads = 1 + started.length;
    this.ready = Promise.all(started).then(() => {});
  }

  /** The caller's thread and the workers. */
  readonly threads: number;

  /** Units that workers (not the caller's thread) have done since the pool started. */
  get unitsByWorkers(): number {
    return Atomics.load(this.control, BY_WORKERS);
  }

  /**
   * Calls export `name`(...args, u, thread) for u = 0 … units − 1 on the pool's threads (`thread`
   * is the caller's 0 or a worker's number, for per-thread scratch); returns when all are done.
   */
  run(name: string, args: readonly number[], units: number): void {
    const fn = this.names.indexOf(name);
    if (fn < 0 || args.length > MAX_ARGS || units > UNIT_MASK)
      throw new Error(`podium kernel pool: cannot run ${name} with ${args.length} arguments over ${units} units`);
    if (units <= 0) return;
    const c = this.control;
    Atomics.store(c, DONE, 0);
    Atomics.store(c, FAILED, 0);
    Atomics.store(c, EXPORT, fn);
    Atomics.store(c, ARGC, args.length);
    for (let i = 0; i < args.length; i++) Atomics.store(c, ARGS + i, args[i]! | 0);
    Atomics.store(c, UNITS, units);
    this.generation = (this.generation + 1) & 0xff;
    Atomics.store(c, CLAIM, this.generation << UNIT_BITS);
    Atomics.notify(c, CLAIM);
    let error: unknown;
    work(
      c,
      this.functions,
      (e) => {
        error ??= e;
      },
      0,
    );
    for (let done = Atomics.load(c, DONE); done < units; done = Atomics.load(c, DONE)) Atomics.wait(c, DONE, done);
    if (error !== undefined) throw error;
    if (Atomics.load(c, FAILED))
      throw new Error(
        `podium kernel pool: ${name} failed on a worker thread${this.workerError ? `: ${String(this.workerError)}` : ''}`,
      );
  }
}
