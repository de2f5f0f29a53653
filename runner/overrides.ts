// `--set STAGE.FIELD...=VALUE` overrides: parsed, applied to the raw pipeline value before
// analysis validates it, and named in any diagnostic they cause.
import { didYouMean, type Diagnostic } from './diagnostics.js';
import { escapePointer } from './source.js';

/** `stage.params.lr=0.02` → the pointer it sets and the value: JSON when it parses, else the string. */
export function parseOverride(text: string): { pointer: string; segments: string[]; value: unknown } | undefined {
  const eq = text.indexOf('=');
  if (eq <= 0) return undefined;
  const segments = text.slice(0, eq).split('.');
  if (segments.some((s) => !s)) return undefined;
  const raw = text.slice(eq + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    /* a bare word is a string: method=mean */
  }
  return { pointer: segments.map((s) => `/${escapePointer(s)}`).join(''), segments, value };
}

/**
 * Sets one override in the raw pipeline. The first segment names a stage (under /stages), or a
 * top-level field (seed, backend, name) when no stage has that id.
 */
export function applyOverride(
  doc: unknown,
  text: string,
  err: (pointer: string, message: string) => Diagnostic,
): Diagnostic[] {
  const o = parseOverride(text);
  if (!o) return [err('', `--set ${text}: expected STAGE.FIELD...=VALUE, e.g. --set train.params.lr=0.02`)];
  if (!isObject(doc)) return []; // the schema reports a file that is not an object
  const stages = isObject(doc.stages) ? doc.stages : {};
  const first = o.segments[0]!;
  const topLevel = ['name', 'seed', 'backend'];
  if (!(first in stages) && !(o.segments.length === 1 && topLevel.includes(first))) {
    return [
      err(
        '/stages',
        `--set ${text}: no stage "${first}"${didYouMean(first, [...Object.keys(stages), ...topLevel])} (stages: ${Object.keys(stages).join(', ')})`,
      ),
    ];
  }
  const segments = first in stages ? ['stages', ...o.segments] : o.segments;
  let target: Record<string, unknown> = doc;
  for (let i = 0; i < segments.length - 1; i++) {
    const next = target[segments[i]!] ?? (target[segments[i]!] = {});
    if (!isObject(next)) {
      const at = segments
        .slice(0, i + 1)
        .map((s) => `/${escapePointer(s)}`)
        .join('');
      return [
        err(
          at,
          `--set ${text}: ${at} is ${Array.isArray(next) ? 'an array' : JSON.stringify(next)}, not an object to set "${segments[i + 1]}" in`,
        ),
      ];
    }
    target = next;
  }
  target[segments[segments.length - 1]!] = o.value;
  return [];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A diagnostic at or under a value some --set changed names that --set. */
export function blameOverride(d: Diagnostic, overrides: readonly string[]): Diagnostic {
  if (d.message.startsWith('--set ')) return d;
  const culprit = overrides.find((text) => {
    const o = parseOverride(text);
    if (!o) return false;
    return [o.pointer, `/stages${o.pointer}`].some(
      (p) => d.pointer === p || d.pointer.startsWith(`${p}/`) || p.startsWith(`${d.pointer}/`),
    );
  });
  if (!culprit) return d;
  // The value was parsed as JSON: a string that looks like a number needs JSON quotes.
  const raw = culprit.slice(culprit.indexOf('=') + 1);
  const quoteHint = /^expected string, got (number|boolean|null)/.test(d.message)
    ? `; for the string write --set '${culprit.slice(0, culprit.indexOf('=') + 1)}"${raw}"'`
    : '';
  return { ...d, message: `${d.message} (set by --set ${culprit}${quoteHint})` };
}
