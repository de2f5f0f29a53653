// The pipeline file's JSON Schema. The base part is what the analyzer validates the file's
// structure with; the full schema (written to schema/pipeline.schema.json by `npm run schema`)
// adds every kind's params so editors complete and check them too.
import type { JsonSchema, StageKind } from '../stages/contract.js';
import { AUTO_ORDER, BACKEND_NAMES } from '../stages/tf/backend-names.js';

export const STAGE_ID_PATTERN = '^[A-Za-z_][A-Za-z0-9_.-]*$';

export const stageSchema: JsonSchema = {
  type: 'object',
  required: ['uses'],
  additionalProperties: false,
  properties: {
    uses: { type: 'string', description: 'The stage kind.' },
    description: { type: 'string' },
    inputs: {
      type: 'object',
      description: 'Input name → upstream stage id, or a list of ids. A matrix stage id stands for all its points.',
      additionalProperties: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }] },
    },
    params: { type: 'object', description: "The kind's parameters; defaults are filled in." },
    matrix: {
      type: 'object',
      description: 'Param → list of values; the stage expands into one stage per combination.',
      minProperties: 1,
      additionalProperties: { type: 'array', minItems: 1 },
    },
  },
};

export const baseSchema: JsonSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'podium pipeline',
  type: 'object',
  required: ['name', 'stages'],
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' },
    description: { type: 'string' },
    seed: {
      type: 'integer',
      minimum: 0,
      maximum: 4294967295,
      default: 0,
      description: 'Part of every stage key; stages derive their randomness from it.',
    },
    backend: {
      enum: [...BACKEND_NAMES],
      default: 'auto',
      description: `TensorFlow.js backend for stages that do not set their own (auto: ${AUTO_ORDER}). --backend overrides it.`,
    },
    stages: {
      type: 'object',
      minProperties: 1,
      propertyNames: { pattern: STAGE_ID_PATTERN },
      additionalProperties: { $ref: '#/definitions/stage' },
    },
  },
  definitions: { stage: stageSchema },
};

/** The schema for editors: the base plus, per kind, `uses` constants and their params schemas. */
export function fullSchema(kinds: Iterable<StageKind<unknown>>): JsonSchema {
  const list = [...kinds];
  const stage: JsonSchema = {
    ...stageSchema,
    properties: {
      ...(stageSchema.properties as object),
      uses: { enum: list.map((k) => k.name), description: 'The stage kind.' },
    },
    allOf: list.map((k) => ({
      if: { properties: { uses: { const: k.name } } },
      then: { properties: { params: k.params } },
    })),
  };
  return { ...baseSchema, definitions: { stage } };
}
