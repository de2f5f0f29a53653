// Errors are values with a location. Analysis collects every problem it can find, and the CLI
// prints each as `file:line:col pointer: message` with the offending line underneath.

export interface Diagnostic {
  file: string;
  /** JSON pointer of the offending value, e.g. /stages/train/params/lr. */
  pointer: string;
  line: number;
  column: number;
  /** Length of the offending text, for the squiggle. */
  length: number;
  message: string;
  /** The source line, when known. */
  sourceLine?: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; errors: Diagnostic[] };

export function formatDiagnostic(d: Diagnostic, withSource = true): string {
  const head = `${d.file}:${d.line}:${d.column} ${d.pointer || '/'}: ${d.message}`;
  if (!withSource || d.sourceLine === undefined) return head;
  const width = Math.max(1, Math.min(d.length, d.sourceLine.length - d.column + 1));
  return `${head}\n    ${d.sourceLine}\n    ${' '.repeat(Math.max(0, d.column - 1))}${'~'.repeat(width)}`;
}

/** Usage errors and invalid input: exit code 2, nothing executed or written. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly diagnostics: Diagnostic[] = [],
  ) {
    super(message);
  }
}

/**
 * ` (did you mean "lr"?)` when a candidate is within a typo's reach of `name`, else ''. Reach grows
 * with length (one edit for short names, up to a third of a longer one), so a short name is not
 * "corrected" into an unrelated one.
 */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const best = closest(name, candidates);
  return best === undefined ? '' : ` (did you mean "${best}"?)`;
}

export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const score = likeness(name, c);
    if (score < bestScore) {
      bestScore = score;
      best = c;
    }
  }
  return best;
}

/** Lower is closer; Infinity when `c` is not a plausible meaning of `name`. */
function likeness(name: string, c: string): number {
  if (c === name) return Infinity;
  const a = name.toLowerCase();
  const b = c.toLowerCase();
  const d = editDistance(a, b);
  if (d <= Math.max(1, Math.floor(Math.max(a.length, b.length) / 3))) return d;
  // An abbreviation spelled out (learningRate → lr) or a truncated name (batch → batchSize).
  if (initials(name) === b || (b.length >= 3 && a.startsWith(b)) || (a.length >= 3 && b.startsWith(a))) return 100 + d;
  return Infinity;
}

/** "learningRate" → "lr", "weight_decay" → "wd": the first letter of each word. */
function initials(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[\s_.-]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toLowerCase())
    .join('');
}

/** Edit distance counting a swap of neighbours as one edit (--jbos → --jobs), as typos go. */
function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2]! + 1);
      row.push(d);
    }
    before = prev;
    prev = row;
  }
  return prev[b.length]!;
}
