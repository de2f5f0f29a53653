// A JSON file with its source positions available, so any JSON pointer can be turned into
// file:line:col. The value comes from the native JSON.parse (fast: a no-op run parses a
// 5000-stage file); jsonc-parser's visitor checks what JSON.parse lets through silently
// (a duplicate key keeps the last value, "__proto__" is accepted), and its position tree is
// built only when there is an error to place.
//
// Shared by the runner (pipeline files) and stages that read JSON a user wrote (the dataset
// kind's annotation files), so it lives below both; runner/source.ts re-exports it.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { JSONPath, Node, ParseError } from 'jsonc-parser';
import type { Diagnostic } from '../../runner/diagnostics.js';

// Required, not imported: jsonc-parser is CommonJS (see cache/canonical.ts).
const { findNodeAtLocation, parseTree, printParseErrorCode, visit } = createRequire(import.meta.url)(
  'jsonc-parser',
) as typeof import('jsonc-parser');

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const PARSE_OPTIONS = { disallowComments: true, allowTrailingComma: false } as const;

export class JsonSource {
  private lineStarts: number[] | undefined;
  private treeCache: Node | undefined | null = null;

  private constructor(
    readonly file: string,
    readonly text: string,
  ) {}

  /** Parses a file; syntax errors, duplicate keys and prototype keys come back as diagnostics. */
  static read(file: string): { source: JsonSource; value: unknown; errors: Diagnostic[] } {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT'
          ? 'file not found'
          : code === 'EISDIR'
            ? 'is a directory, expected a JSON file'
            : (e as Error).message;
      return {
        source: new JsonSource(file, ''),
        value: undefined,
        errors: [{ file, pointer: '', line: 1, column: 1, length: 0, message: why }],
      };
    }
    const source = new JsonSource(file, text);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      const parseErrors: ParseError[] = [];
      parseTree(text, parseErrors, PARSE_OPTIONS);
      // The first error only: the parser's later ones are mostly its confusion after the first.
      const first = parseErrors[0];
      return {
        source,
        value: undefined,
        errors: [first ? source.syntaxError(first) : source.at(0, 0, '', 'invalid JSON')],
      };
    }
    const errors = source.checkKeys();
    return { source, value: errors.length ? undefined : value, errors };
  }

  /**
   * A syntax error in words, placed where the mistake is: the parser reports a missing comma at
   * the token after it (often on the next line), so it is moved back to the end of the value it
   * should follow: `missing comma after "epochs": 3`.
   */
  syntaxError(e: ParseError): Diagnostic {
    const text = this.text;
    let end = e.offset;
    while (end > 0 && /\s/.test(text[end - 1]!)) end--;
    const lineStart = text.lastIndexOf('\n', end - 1) + 1;
    const before = text.slice(lineStart, end).trim();
    const previous = before.length > 40 ? `…${before.slice(-40)}` : before;
    const at = (message: string, offset = e.offset, length = Math.max(e.length, 1)): Diagnostic =>
      this.at(offset, length, '', `invalid JSON: ${message}`);
    const trailingComma = text[end - 1] === ',';
    const found =
      text[e.offset] === undefined
        ? 'the end of the file'
        : JSON.stringify(text.slice(e.offset, e.offset + Math.max(1, Math.min(e.length, 20))));
    switch (printParseErrorCode(e.error)) {
      case 'CommaExpected':
        return at(`missing comma after ${previous}`, end - 1, 1);
      case 'ColonExpected':
        return at(`missing colon after the key ${previous}`, end - 1, 1);
      case 'CloseBraceExpected':
        return at(`missing "}" after ${previous || 'this'}`, Math.max(end - 1, 0), 1);
      case 'CloseBracketExpected':
        return at(`missing "]" after ${previous || 'this'}`, Math.max(end - 1, 0), 1);
      case 'PropertyNameExpected':
      case 'ValueExpected':
        if (trailingComma)
          return at('a comma before a closing bracket or brace (JSON allows no trailing comma)', end - 1, 1);
        return at(
          `expected ${printParseErrorCode(e.error) === 'ValueExpected' ? 'a value' : 'a property name in double quotes'}, found ${found}`,
        );
      case 'InvalidSymbol':
        return at(
          text[e.offset] === "'" ? 'strings and keys need double quotes, not single quotes' : `unexpected ${found}`,
        );
      case 'InvalidCommentToken':
        return at('comments are not allowed in JSON');
      case 'UnexpectedEndOfString':
        return at('a string is not closed (missing ")');
      case 'UnexpectedEndOfComment':
        return at('a comment is not closed (and JSON allows none)');
      case 'EndOfFileExpected':
        return at(`unexpected ${found} after the end of the JSON value`);
      default:
        return at(
          printParseErrorCode(e.error)
            .replace(/([a-z])([A-Z])/g, '$1 $2')
            .toLowerCase(),
        );
    }
  }

  /** Duplicate keys and prototype keys, found in one streaming pass without building a tree. */
  private checkKeys(): Diagnostic[] {
    const errors: Diagnostic[] = [];
    const open: Array<Set<string>> = [];
    visit(
      this.text,
      {
        onObjectBegin: () => {
          open.push(new Set());
        },
        onObjectEnd: () => {
          open.pop();
        },
        onObjectProperty: (
          key: string,
          offset: number,
          length: number,
          _l: number,
          _c: number,
          path: () => JSONPath,
        ) => {
          const seen = open[open.length - 1]!;
          if (!FORBIDDEN_KEYS.has(key) && !seen.has(key)) {
            seen.add(key);
            return;
          }
          const pointer = [...path(), key].map((s) => `/${escapePointer(String(s))}`).join('');
          errors.push(
            this.at(
              offset,
              length,
              pointer,
              FORBIDDEN_KEYS.has(key) ? `key "${key}" is not allowed` : `duplicate key "${key}"`,
            ),
          );
        },
      },
      PARSE_OPTIONS,
    );
    return errors;
  }

  private get tree(): Node | undefined {
    if (this.treeCache === null) this.treeCache = parseTree(this.text, [], PARSE_OPTIONS);
    return this.treeCache;
  }

  /** A diagnostic at the value a JSON pointer names, or at its nearest existing parent. */
  diagnostic(pointer: string, message: string, { key = false } = {}): Diagnostic {
    const path = pointer
      .split('/')
      .slice(1)
      .map(unescapePointer)
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    let node: Node | undefined;
    for (let n = path.length; n >= 0 && !node; n--) node = this.tree && findNodeAtLocation(this.tree, path.slice(0, n));
    // For errors about a key (unknown/duplicate property), point at the key rather than its value.
    if (node && key && node.parent?.type === 'property') node = node.parent.children?.[0] ?? node;
    return this.at(node?.offset ?? 0, node?.length ?? 0, pointer, message);
  }

  at(offset: number, length: number, pointer: string, message: string): Diagnostic {
    if (!this.lineStarts) {
      this.lineStarts = [0];
      for (let i = 0; i < this.text.length; i++) if (this.text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
    }
    const starts = this.lineStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    const start = starts[lo]!;
    const end = starts[lo + 1] ?? this.text.length + 1;
    const sourceLine = this.text.slice(start, end - 1).replace(/\r$/, '');
    // Long values (a whole stage object) squiggle only to the end of their first line.
    return {
      file: this.file,
      pointer,
      line: lo + 1,
      column: offset - start + 1,
      length: Math.min(length, sourceLine.length),
      message,
      sourceLine,
    };
  }
}

export function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}
function unescapePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}
