// The `backend` param shared by the TensorFlow.js stage kinds. Kept apart from backend.ts,
// which imports TensorFlow.js: the registry must load without it.
import { AUTO_ORDER, BACKEND_NAMES } from './backend-names.js';

export const backendSchema = {
  enum: [...BACKEND_NAMES, null],
  default: null,
  description: `TensorFlow.js backend; null takes --backend or the pipeline's backend (auto: ${AUTO_ORDER}).`,
};
