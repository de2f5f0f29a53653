/**
 * The TensorFlow.js backends a pipeline may name, written out once. The CLI's usage, the analyzer's
 * check of --backend, the pipeline schema and every TF stage's `backend` param read this list.
 * It imports nothing: the runner loads it on every run (also when everything is cached), and that
 * path must not load TensorFlow.js or Dawn.
 *
 * Order is the order `auto` tries them in (backend.ts), `auto` first.
 */
export const BACKEND_NAMES = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;

export type BackendPreference = (typeof BACKEND_NAMES)[number];

/** One-line description of `auto`, shared by the schemas' descriptions. */
export const AUTO_ORDER = 'tfjs-node-gpu, webgpu on a hardware adapter, tfjs-node, wasm, cpu — the first that loads';

/**
 * Keys and `auto` (decided here, documented in docs/gpu.md, "Keys"):
 *
 * The resolved `backend` param (the stage's own, else --backend, else the pipeline's) is part of
 * every TF stage's key. An explicit backend names its family, so results of two families never
 * share a key: `webgpu` (any adapter: a GPU's floats differ from wasm's), `tensorflow`, `wasm`
 * (its thread count stays out of the key: threaded and single-threaded wasm are bit-identical),
 * `cpu`.
 *
 * `auto` stays `auto` in the key. Which family it resolves to is only known by loading the
 * backends (Dawn must enumerate adapters, tfjs-node must load libtensorflow), and the analyzer
 * runs on every `status`/`run`, also when everything is cached, where loading them would cost
 * seconds and load what the no-op path must not. The cache is local to one machine (DESIGN.md:
 * LMDB stays local), and on one machine `auto` resolves the same way until its software or
 * hardware changes; the family that ran is written in the stage's record (`backend`, shown by
 * `podium show`), and `verify` compares against it. Pipelines that must not mix families across
 * such a change name the backend explicitly.
 */
