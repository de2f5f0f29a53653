import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { SCHEMA_PATH, schemaText } from '../../runner/write-schema.js';

describe('schema/pipeline.schema.json', () => {
  it('is up to date with the registry (run `npm run schema` after changing a kind)', () => {
    expect(readFileSync(SCHEMA_PATH, 'utf8')).toBe(schemaText());
  });

  it('checks params per kind, as an editor would', () => {
    const validate = new Ajv({ strict: false }).compile(JSON.parse(schemaText()));
    const pipeline = (params: object): object => ({ name: 'x', stages: { a: { uses: 'command', params } } });
    expect(validate(pipeline({ run: 'true' }))).toBe(true);
    expect(validate(pipeline({ run: 'true', outs: 'not-a-list' }))).toBe(false);
    expect(validate({ name: 'x', stages: { a: { uses: 'nope' } } })).toBe(false);
  });
});
