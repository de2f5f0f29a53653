// Pipeline validators. Compiling the schemas with ajv took ~80 ms of a ~150 ms no-op run, so
// `npm run build` precompiles them into dist/runner/validators.generated.cjs (ajv's standalone
// code, same options). At run time that file is used when its schema digest matches the
// schemas in the code; otherwise (running from source, or a stale build) they are compiled here.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ErrorObject } from 'ajv';
import { digestOf } from '../cache/canonical.js';
import { stageKinds } from '../stages/registry.js';
import { baseSchema } from './pipeline-schema.js';

export interface Validator {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

// verbose: errors carry the offending data and schema, for messages like "expected array, got string".
const AJV_OPTIONS = { allErrors: true, useDefaults: true, strict: false, verbose: true } as const;
const GENERATED = 'validators.generated.cjs';

function schemas(): Record<string, object> {
  const out: Record<string, object> = { pipeline: baseSchema };
  for (const [name, kind] of stageKinds) out[`kind:${name}`] = kind.params;
  return out;
}

let loaded: { get(name: string): Validator } | undefined;

/** The validator for the pipeline structure ('pipeline') or a kind's params ('kind:<name>'). */
export function validator(name: string): Validator {
  loaded ??= load();
  return loaded.get(name);
}

function load(): { get(name: string): Validator } {
  const all = schemas();
  const digest = digestOf(all);
  try {
    const mod = createRequire(import.meta.url)(`./${GENERATED}`) as {
      schemaDigest: string;
      validators: Record<string, Validator>;
    };
    if (mod.schemaDigest === digest) return { get: (name) => mod.validators[name]! };
  } catch {
    /* not built: compile below */
  }
  const ajv = newAjv(false);
  const compiled = new Map<string, Validator>();
  return {
    get(name) {
      let v = compiled.get(name);
      if (!v) compiled.set(name, (v = ajv.compile(all[name]!)));
      return v;
    },
  };
}

function newAjv(source: boolean) {
  const require = createRequire(import.meta.url);
  const { Ajv } = require('ajv') as typeof import('ajv');
  return new Ajv({ ...AJV_OPTIONS, code: { source, esm: false } });
}

/** Build step: write the standalone validators beside this module. */
export function writeGenerated(): string {
  const require = createRequire(import.meta.url);
  const standaloneCode = (
    require('ajv/dist/standalone') as { default: (ajv: unknown, refs: Record<string, string>) => string }
  ).default;
  const all = schemas();
  const ajv = newAjv(true);
  const refs: Record<string, string> = {};
  Object.values(all).forEach((schema, i) => {
    ajv.addSchema(schema, `s${i}`);
    refs[`v${i}`] = `s${i}`;
  });
  const code = standaloneCode(ajv, refs);
  const names = Object.keys(all)
    .map((name, i) => `${JSON.stringify(name)}: module.exports.v${i}`)
    .join(',\n  ');
  const path = join(dirname(fileURLToPath(import.meta.url)), GENERATED);
  writeFileSync(
    path,
    `${code}\nmodule.exports.schemaDigest = ${JSON.stringify(digestOf(all))};\nmodule.exports.validators = {\n  ${names}\n};\n`,
  );
  return path;
}
