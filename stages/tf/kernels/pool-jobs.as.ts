// The one WebAssembly module whose exports run as jobs on the threads of kernels/pool.ts (each
// worker instantiates it on the backend's shared heap): the Conv2D and depthwise filter gradients
// and the batch norm / ReLU6 passes. Built by runner/build.ts.
export { filterGradJob, sumChunksJob } from './filter-grad.as';
export { depthwiseFilterGradJob, depthwiseInputGradJob } from './depthwise-grad.as';
export {
  batchNormInputGradJob,
  channelDyDyXSumsJob,
  channelSquaredDeviationsJob,
  channelSumsJob,
  meansOverImagesJob,
  relu6GradJob,
} from './batch-norm.as';
