// `augment`: defines how training images are augmented on the fly (it materialises nothing).
// Its outputs are the policy, which the training loader applies per batch with augmentBatch
// (stages/data/augment/), and a contact sheet PNG that shows a user what the policy does.
import type { FromSchema } from 'json-schema-to-ts';
import { defineStage, type InputArtifact, type JsonSchema, type StageStore } from './contract.js';
import type { AugmentPolicy, RawImage } from './data/augment/index.js';
import { decodeDecoded, type DecodedSet } from './data/decoded.js';

const range = { type: 'array', items: { type: 'number', minimum: 0 }, minItems: 2, maxItems: 2 } as const;

const params = {
  type: 'object',
  additionalProperties: false,
  properties: {
    level: {
      enum: [0, 1, 2, 3],
      default: 1,
      description:
        "MXNet's set_data_aug_level: 1 crop+mirror, 2 adds HSL jitter, 3 adds rotation/shear/aspect. Explicit params below override it.",
    },
    crop: { type: 'integer', minimum: 8, default: 224, description: 'Training input size (square).' },
    randomCrop: { type: 'boolean' },
    mirror: { type: 'boolean' },
    randomResizedCrop: {
      oneOf: [
        { type: 'null' },
        {
          type: 'object',
          additionalProperties: false,
          required: ['area', 'ratio'],
          properties: { area: range, ratio: range },
        },
      ],
      description: 'Inception/DPN style, e.g. {"area": [0.08, 1], "ratio": [0.75, 1.333]}.',
    },
    scaleJitter: { oneOf: [{ type: 'null' }, range] },
    hue: { type: 'number', minimum: 0, description: 'OpenCV hue units (1 = 2°); MXNet level 2: 36.' },
    saturation: { type: 'number', minimum: 0 },
    lightness: { type: 'number', minimum: 0 },
    rotate: { type: 'number', minimum: 0, description: 'Max degrees; MXNet level 3: 10.' },
    shear: { type: 'number', minimum: 0 },
    aspect: { type: 'number', minimum: 0 },
    fill: { type: 'number', minimum: 0, maximum: 255 },
    previewImages: { type: 'integer', minimum: 1, maximum: 64, default: 8 },
    previewAugmentations: { type: 'integer', minimum: 1, maximum: 16, default: 6 },
  },
} as const satisfies JsonSchema;

/** The params as run() gets them: the schema's type, every default filled in by ajv. */
export type AugmentParams = FromSchema<typeof params>;

export const augment = defineStage<AugmentParams>({
  name: 'augment',
  version: 2, // 2: the preview's draws come from data/random.ts's PRNG (mulberry32), not augment/rng.ts's splitmix32
  description: 'A training-time augmentation policy (MXNet levels 0-3 as defaults) and a preview contact sheet.',
  params,
  inputs: {
    images: {
      many: false,
      required: false,
      description: 'a decode stage; its first training images make the preview (else synthetic scenes)',
      reads: ['images'],
    },
  },
  isolate: true,

  async run(ctx, p) {
    const { contactSheet, policyForLevel } = await import('./data/augment/index.js');
    const { level, crop, previewImages, previewAugmentations, ...overrides } = p;
    // ajv has checked that every range has exactly two items (minItems = maxItems = 2), which
    // FromSchema types as number[]; the policy's [min, max] tuples say it.
    const policy = policyForLevel(level, crop, overrides as Partial<AugmentPolicy>);
    const sources =
      previewSources(ctx.inputs.images as InputArtifact | undefined, ctx.store, previewImages) ??
      (await syntheticSources(previewImages, Math.max(crop + (crop >> 3), 32), ctx.seed));
    const sheet = contactSheet(sources, policy, ctx.seed, previewAugmentations);
    const sharp = (await import('sharp')).default;
    const png = await sharp(Buffer.from(sheet.data.buffer, sheet.data.byteOffset, sheet.data.byteLength), {
      raw: { width: sheet.width, height: sheet.height, channels: 3 },
    })
      .png()
      .toBuffer();
    ctx.log(`policy ${JSON.stringify(policy)}; preview ${sheet.width}×${sheet.height} from ${sources.length} images`);
    return {
      outputs: {
        policy: await ctx.store.putBlob(Buffer.from(JSON.stringify({ level, seed: ctx.seed, policy }, null, 2))),
        preview: await ctx.store.putBlob(png),
      },
    };
  },
});

function previewSources(input: InputArtifact | undefined, store: StageStore, n: number): RawImage[] | undefined {
  if (!input?.outputs.images) return undefined;
  const set = JSON.parse(store.getBlob(input.outputs.images)!.toString()) as DecodedSet;
  const rows = set.splits.train ?? Object.values(set.splits)[0] ?? [];
  return rows.slice(0, n).map((r) => decodeDecoded(store.getBlob(r.blob)!));
}

async function syntheticSources(n: number, size: number, seed: number): Promise<RawImage[]> {
  const { renderScene, SYNTHETIC_CLASS_NAMES } = await import('./data/synthetic/index.js');
  return Array.from({ length: n }, (_, i) => ({
    width: size,
    height: size,
    data: renderScene(i % SYNTHETIC_CLASS_NAMES.length, seed + i, size),
  }));
}
