// The `backend` param shared by the TensorFlow.js stage kinds. Kept apart from backend.ts,
// which imports TensorFlow.js: the registry must load without it.
export const backendSchema = {
  enum: ['auto', 'tensorflow', 'wasm', 'cpu', null],
  default: null,
  description: "TensorFlow.js backend; null takes --backend or the pipeline's backend (auto: tfjs-node-gpu, tfjs-node, wasm, cpu — the first that loads).",
};
