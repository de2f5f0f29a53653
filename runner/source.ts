// A JSON file parsed with its source positions kept (jsonc-parser), so any JSON pointer can be
// turned into file:line:col. JSON.parse would also silently keep the last of two duplicate keys
// and let "__proto__" through; this parser sees both.
import { readFileSync } from 'node:fs';
import { findNodeAtLocation, getNodeValue, parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';
import type { Diagnostic } from './diagnostics.js';

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export class JsonSource {
  private readonly lineStarts: number[] = [0];

  private constructor(readonly file: string, readonly text: string, readonly tree: Node | undefined) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
  }

  /** Parses a file; syntax errors, duplicate keys and prototype keys come back as diagnostics. */
  static read(file: string): { source: JsonSource; value: unknown; errors: Diagnostic[] } {
    let text: string;
    try { text = readFileSync(file, 'utf8'); } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory, expected a JSON file' : (e as Error).message;
      return { source: new JsonSource(file, '', undefined), value: undefined, errors: [{ file, pointer: '', line: 1, column: 1, length: 0, message: why }] };
    }
    const parseErrors: ParseError[] = [];
    const tree = parseTree(text, parseErrors, { disallowComments: true, allowTrailingComma: false });
    const source = new JsonSource(file, text, tree);
    const errors = parseErrors.map((e) => source.at(e.offset, e.length, '', `invalid JSON: ${printParseErrorCode(e.error)}`));
    if (tree) source.checkKeys(tree, '', errors);
    const value = errors.length === 0 && tree ? getNodeValue(tree) : undefined;
    return { source, value, errors };
  }

  private checkKeys(node: Node, pointer: string, errors: Diagnostic[]): void {
    if (node.type === 'object') {
      const seen = new Set<string>();
      for (const prop of node.children ?? []) {
        const keyNode = prop.children?.[0];
        const valueNode = prop.children?.[1];
        if (!keyNode) continue;
        const key = String(keyNode.value);
        const p = `${pointer}/${escapePointer(key)}`;
        if (FORBIDDEN_KEYS.has(key)) errors.push(this.at(keyNode.offset, keyNode.length, p, `key "${key}" is not allowed`));
        else if (seen.has(key)) errors.push(this.at(keyNode.offset, keyNode.length, p, `duplicate key "${key}"`));
        seen.add(key);
        if (valueNode) this.checkKeys(valueNode, p, errors);
      }
    } else if (node.type === 'array') {
      (node.children ?? []).forEach((child, i) => this.checkKeys(child, `${pointer}/${i}`, errors));
    }
  }

  /** A diagnostic at the value a JSON pointer names, or at its nearest existing parent. */
  diagnostic(pointer: string, message: string, { key = false } = {}): Diagnostic {
    const path = pointer.split('/').slice(1).map(unescapePointer).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    let node: Node | undefined;
    for (let n = path.length; n >= 0 && !node; n--) node = this.tree && findNodeAtLocation(this.tree, path.slice(0, n));
    // For errors about a key (unknown/duplicate property), point at the key rather than its value.
    if (node && key && node.parent?.type === 'property') node = node.parent.children?.[0] ?? node;
    return this.at(node?.offset ?? 0, node?.length ?? 0, pointer, message);
  }

  at(offset: number, length: number, pointer: string, message: string): Diagnostic {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid; else hi = mid - 1;
    }
    const start = this.lineStarts[lo]!;
    const end = this.lineStarts[lo + 1] ?? this.text.length + 1;
    const sourceLine = this.text.slice(start, end - 1).replace(/\r$/, '');
    // Long values (a whole stage object) squiggle only to the end of their first line.
    return { file: this.file, pointer, line: lo + 1, column: offset - start + 1, length: Math.min(length, sourceLine.length), message, sourceLine };
  }
}

export function escapePointer(s: string): string { return s.replace(/~/g, '~0').replace(/\//g, '~1'); }
function unescapePointer(s: string): string { return s.replace(/~1/g, '/').replace(/~0/g, '~'); }
