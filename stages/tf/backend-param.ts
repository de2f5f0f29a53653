// The `backend` param shared by the TensorFlow.js stage kinds. Kept apart from backend.ts,
// which imports TensorFlow.js: the registry must load without it.
import { AUTO_ORDER, BACKEND_NAMES, type BackendPreference } from './backend-names.js';

export const backendSchema = {
  enum: [...BACKEND_NAMES, null],
  default: null,
  description: `TensorFlow.js backend; null takes --backend or the pipeline's backend (auto: ${AUTO_ORDER}).`,
} as const;

/**
 * A TF kind's params as run() gets them: the schema's type, except that the analyzer has already
 * replaced a null `backend` by --backend or the pipeline's (runner/analyze.ts), so it is part of
 * the key.
 */
export type BackendResolved<P extends { backend: unknown }> = Omit<P, 'backend'> & { backend: BackendPreference };
