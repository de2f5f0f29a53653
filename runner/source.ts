// The runner reads pipeline files through JsonSource, which lives with the shared utilities
// (stages/util/json-source.ts) because the dataset stage kind reads user JSON with it too.
export { escapePointer, JsonSource } from '../stages/util/json-source.js';
