// Every stage kind, one line each. Kind modules must not import TensorFlow.js or sharp at top
// level (they import them inside run()), so loading this registry stays cheap.
import type { StageKind } from './contract.js';
import { command } from './command.js';
import { augment } from './augment.js';
import { dataset } from './dataset.js';
import { decode } from './decode.js';
import { finetune } from './finetune.js';
import { checkpointSweep } from './checkpoint-sweep.js';
import { multicropPredict } from './multicrop-predict.js';
import { fuse } from './fuse.js';
import { exportStage } from './export.js';

export const stageKinds: ReadonlyMap<string, StageKind<any>> = new Map<string, StageKind<any>>([
  [command.name, command],
  [dataset.name, dataset],
  [decode.name, decode],
  [augment.name, augment],
  [finetune.name, finetune],
  [checkpointSweep.name, checkpointSweep],
  [multicropPredict.name, multicropPredict],
  [fuse.name, fuse],
  [exportStage.name, exportStage],
]);
