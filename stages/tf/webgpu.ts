/**
 * The `webgpu` backend on Dawn: npm `webgpu` (Dawn's Node bindings) provides `navigator.gpu`,
 * `@tensorflow/tfjs-backend-webgpu` runs tfjs on it. Both are optional dependencies: an install
 * without the prebuilt `dawn.node` (another platform, a failed download) must still work, so they
 * are imported by a variable name and every failure comes back as a sentence, not a throw.
 *
 * Why podium requests the adapter itself instead of letting tfjs-backend-webgpu do it: the
 * backend's factory asks `navigator.gpu.requestAdapter()` for whatever adapter Dawn offers, and
 * `auto` must refuse a software one (lavapipe, SwiftShader: correctness only, 26 s per batch-8
 * 128-px MobileNetV2 step on 2 cores: docs/gpu.md). We pick the adapter, describe it for the record, and shim `navigator.gpu`
 * with a requestAdapter that hands tfjs exactly that adapter.
 *
 * Quirk (Dawn 0.6.2 on Mesa 25 lavapipe): requestAdapter({forceFallbackAdapter: true}) returns
 * null while a plain requestAdapter() returns the software adapter with isFallbackAdapter true,
 * so we never ask for the fallback adapter; we read the flag of what we get.
 *
 * Dawn options: PODIUM_DAWN_OPTIONS (space-separated, e.g. "backend=vulkan adapter=NVIDIA") is
 * passed to create() as is; without it Dawn picks its default backend (Vulkan on Linux).
 */
import type * as tfc from '@tensorflow/tfjs-core';

type Tf = typeof tfc;

/** What the record says about the adapter, and whether it is a software one. */
export interface WebgpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Software rasteriser / CPU implementation (lavapipe, SwiftShader, WARP). */
  fallback: boolean;
  /** e.g. "webgpu (mesa software llvmpipe-…, fallback adapter)". */
  detail: string;
}

/** Minimal views of the WebGPU objects we touch (the full types come from @webgpu/types). */
interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface AdapterLike {
  info?: AdapterInfoLike;
  isFallbackAdapter?: boolean;
}
interface GpuLike {
  requestAdapter(options?: object): Promise<AdapterLike | null>;
}
interface DawnModule {
  create(options: string[]): GpuLike;
  globals: Record<string, unknown>;
}

async function importOptional(name: string): Promise<unknown> {
  return import(name);
}

function errorText(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (code === 'ERR_MODULE_NOT_FOUND') return 'not installed (an optional dependency)';
  if (err instanceof Error) return err.message.split('\n')[0] ?? err.message;
  return String(err);
}

export function describeAdapter(adapter: AdapterLike): WebgpuAdapter {
  const info = adapter.info ?? {};
  const fallback = info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false;
  const vendor = info.vendor || 'unknown vendor';
  const architecture = info.architecture || 'unknown architecture';
  const device = info.device || info.description || 'unknown device';
  const kind = fallback ? 'fallback adapter' : 'hardware adapter';
  return {
    vendor,
    architecture,
    device,
    description: info.description ?? '',
    fallback,
    detail: `webgpu (${vendor} ${architecture} ${device}, ${kind})`,
  };
}

/** One Dawn instance and adapter per process: tfjs keeps the device for the process's life. */
let loaded: Promise<{ adapter: WebgpuAdapter } | string> | undefined;
/**
 * The Dawn instance, held for the process's life: the adapter and device do not keep it alive,
 * and once it was garbage-collected the next pipeline compilation crashed (SIGSEGV, seen on the
 * first conv2d after a GC).
 */
let instance: GpuLike | undefined;

async function load(tf: Tf): Promise<{ adapter: WebgpuAdapter } | string> {
  let dawn: DawnModule;
  try {
    dawn = (await importOptional('webgpu')) as DawnModule;
  } catch (err) {
    return `webgpu: Dawn (npm webgpu): ${errorText(err)}`;
  }
  // Dawn's globals (GPUBufferUsage, GPUMapMode, …) are what tfjs-backend-webgpu's kernels read.
  Object.assign(globalThis, dawn.globals);
  const options = (process.env.PODIUM_DAWN_OPTIONS ?? '').split(/\s+/).filter(Boolean);
  let gpu: GpuLike;
  let adapter: AdapterLike | null;
  try {
    gpu = dawn.create(options);
    instance = gpu;
    adapter = await gpu.requestAdapter();
  } catch (err) {
    return `webgpu: Dawn failed to start (${errorText(err)})`;
  }
  if (adapter === null) {
    return 'webgpu: Dawn found no adapter (no Vulkan driver: on a CPU machine run .ci/setup-vulkan.sh and export what it prints; on NVIDIA check vulkaninfo)';
  }
  const chosen = adapter;
  // tfjs-backend-webgpu registers its backend only if navigator.gpu exists when it is imported.
  // Node 20 has no navigator; Node 21+ has one without gpu.
  // `instance` rides along so that navigator.gpu (a global) keeps the Dawn instance reachable.
  const shim: GpuLike & { instance: GpuLike | undefined } = { requestAdapter: async () => chosen, instance };
  const nav = (globalThis as { navigator?: object }).navigator;
  if (nav === undefined)
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: shim }, configurable: true, writable: true });
  else Object.defineProperty(nav, 'gpu', { value: shim, configurable: true });
  try {
    await importOptional('@tensorflow/tfjs-backend-webgpu');
  } catch (err) {
    return `webgpu: @tensorflow/tfjs-backend-webgpu: ${errorText(err)}`;
  }
  // Its tfjs-core must be ours (backend.ts: one tfjs-core instance), else the backend is invisible.
  if (tf.findBackendFactory('webgpu') === null) {
    return `webgpu: @tensorflow/tfjs-backend-webgpu loaded, but its backend is not registered in podium's @tensorflow/tfjs-core ${tf.version_core} (install @tensorflow/tfjs-backend-webgpu@${tf.version_core})`;
  }
  return { adapter: describeAdapter(chosen) };
}

/**
 * Loads Dawn and tfjs-backend-webgpu and makes `webgpu` the active backend.
 * `acceptSoftware`: false for `auto` (a software adapter is refused, with the reason), true for
 * an explicit `backend: "webgpu"` (used, and the caller warns).
 */
export async function tryWebgpu(tf: Tf, acceptSoftware: boolean): Promise<WebgpuAdapter | string> {
  loaded ??= load(tf);
  const got = await loaded;
  if (typeof got === 'string') return got;
  if (got.adapter.fallback && !acceptSoftware) {
    return `webgpu: only a software adapter (${got.adapter.vendor} ${got.adapter.architecture} ${got.adapter.device}): auto never trains on one; name backend "webgpu" to use it`;
  }
  try {
    if (!(await tf.setBackend('webgpu'))) return 'webgpu: the backend failed to initialise (requestDevice failed?)';
    await tf.ready();
  } catch (err) {
    return `webgpu: ${errorText(err)}`;
  }
  guardErrors(tf);
  // Determinism: for a matrix product with a small output and a long inner dimension (a 1×1
  // filter gradient: Cin×Cout outputs summed over N·H·W) tfjs-backend-webgpu picks its split-K
  // program, which adds partial sums with atomicAdd — in whatever order the GPU runs workgroups,
  // so two runs differ in the last bits and `podium verify` would fail. The packed program sums
  // in a fixed order; it may be slower on such shapes (bench/gpu-device.sh measures a real GPU).
  tf.env().set('WEBGPU_MATMUL_PROGRAM_TYPE', MATMUL_PACKED);
  return got.adapter;
}

/** tfjs-backend-webgpu's MatMulProgramType.MatMulPackedProgram (4.22.0). */
const MATMUL_PACKED = 3;

/** The first error the GPU reported for this process's work (sticky: later results build on it). */
let gpuError: string | undefined;

interface GuardedBackend {
  device: { onuncapturederror: ((event: { error: { message: string } }) => void) | null };
  read(dataId: object): Promise<unknown>;
  podiumGuarded?: true;
}

/**
 * Makes GPU errors fail the stage. WebGPU reports a rejected command (e.g. a buffer larger than
 * maxStorageBufferBindingSize: 128 MiB on lavapipe, which a batch-32, 224-px MobileNetV2 exceeds)
 * only as an event, and tfjs-backend-webgpu neither listens nor throws: the op's output is left
 * as zeros and training goes on, silently wrong. We record the first such error and throw it from
 * the next read-back — every stage reads back (losses, predictions), so it fails with the reason.
 */
function guardErrors(tf: Tf): void {
  const backend = tf.findBackend('webgpu') as unknown as GuardedBackend | null;
  if (backend === null || backend.podiumGuarded) return;
  backend.device.onuncapturederror = (event) => {
    gpuError ??= event.error.message.split('\n')[0];
  };
  const read = backend.read.bind(backend);
  backend.read = async (dataId) => {
    const values = await read(dataId);
    if (gpuError !== undefined) throw new Error(`webgpu: the GPU rejected work, so results are invalid: ${gpuError}`);
    return values;
  };
  backend.podiumGuarded = true;
}
