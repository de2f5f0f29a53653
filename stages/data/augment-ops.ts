// Deprecated alias of ./augment/index.js, kept only because stages/data/decoded.ts still imports
// RawImage from here (that file is being changed elsewhere); import ./augment/index.js instead.
// Delete this file once decoded.ts's import line points there.
export type { RawImage } from './augment/index.js';
