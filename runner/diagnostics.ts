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
  constructor(message: string, readonly diagnostics: Diagnostic[] = []) { super(message); }
}
