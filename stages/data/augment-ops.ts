export * from './augment/index.js';
