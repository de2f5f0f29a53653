// podium's build id for the no-op memo: the stage kinds and their versions. `npm run build`
// writes it to dist/runner/build-id.txt so the fast path need not load the registry.
import { createHash } from 'node:crypto';
import { stageKinds } from '../stages/registry.js';

export function computeBuildId(): string {
  return createHash('sha256')
    .update(JSON.stringify([...stageKinds.values()].map((k) => [k.name, k.version])))
    .digest('hex');
}
