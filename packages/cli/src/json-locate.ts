// Where things are in a JSON text, for error messages that point at a line and column. The
// parsing is jsonc-parser's (VS Code's JSON scanner, in strict mode: no comments, no trailing
// commas); this file maps its nodes to the dotted paths core uses in its issues
// (`flags.x.variants`, `a[2]`) and its error codes to messages.

import { parse, parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';

export interface Position {
  /** 1-based */
  line: number;
  /** 1-based, in UTF-16 code units */
  column: number;
}

/** Offsets where each line starts. */
export function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

/** Line and column of an offset (binary search over {@link lineStarts}). */
export function positionAt(starts: readonly number[], offset: number): Position {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, column: offset - starts[lo]! + 1 };
}

/** Standard JSON: jsonc-parser's extensions off. */
const STRICT = { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false } as const;

/**
 * Maps each path in a (valid) JSON text to the offset of its key, or of the element for array
 * items. Returns what it could map when the text is malformed, and nothing for text nested too
 * deeply to walk (the parser recurses).
 */
export function jsonPathOffsets(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (node: Node, path: string): void => {
    if (node.type === 'object') {
      for (const property of node.children ?? []) {
        const [key, value] = property.children ?? [];
        if (key?.type !== 'string') continue;
        const child = path ? `${path}.${String(key.value)}` : String(key.value);
        out.set(child, key.offset);
        if (value) walk(value, child);
      }
    } else if (node.type === 'array') {
      (node.children ?? []).forEach((element, n) => {
        const child = `${path}[${n}]`;
        out.set(child, element.offset);
        walk(element, child);
      });
    }
  };
  try {
    const root = parseTree(text, [], STRICT);
    if (root) walk(root, '');
  } catch {
    // RangeError: nested deeper than the stack; the caller reports issues without a line
  }
  return out;
}

/**
 * The position of the element at `path`, or of its nearest enclosing element that the text has
 * (an issue about a missing field points at the object that lacks it).
 */
export function locatePath(starts: readonly number[], offsets: Map<string, number>, path: string): Position | undefined {
  let p = path;
  for (;;) {
    const offset = offsets.get(p);
    if (offset !== undefined) return positionAt(starts, offset);
    const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
    if (cut <= 0) return undefined;
    p = p.slice(0, cut);
  }
}

function messageFor(error: ParseError, text: string): string {
  const at = error.offset >= text.length ? 'end of input' : JSON.stringify(text.slice(error.offset, error.offset + Math.max(1, error.length)));
  // by name: the codes are a const enum, which isolated transpilation cannot inline
  switch (printParseErrorCode(error.error)) {
    case 'ValueExpected':
    case 'InvalidSymbol':
      return `unexpected ${at}, expected a value`;
    case 'PropertyNameExpected':
      return `unexpected ${at}, expected a property name in double quotes`;
    case 'ColonExpected':
      return `unexpected ${at}, expected ':'`;
    case 'CommaExpected':
      return `unexpected ${at}, expected ','`;
    case 'CloseBraceExpected':
      return `unexpected ${at}, expected ',' or '}'`;
    case 'CloseBracketExpected':
      return `unexpected ${at}, expected ',' or ']'`;
    case 'EndOfFileExpected':
      return `unexpected ${at} after the JSON value`;
    case 'InvalidCommentToken':
    case 'UnexpectedEndOfComment':
      return 'comments are not allowed in JSON';
    case 'UnexpectedEndOfString':
      return 'unterminated string';
    case 'UnexpectedEndOfNumber':
      return `incomplete number ${at}`;
    case 'InvalidUnicode':
      return 'bad \\u escape in string';
    case 'InvalidEscapeCharacter':
      return 'bad escape in string';
    case 'InvalidCharacter':
      return 'control character in string (escape it)';
    default:
      return `unexpected ${at}`;
  }
}

/**
 * Finds the first syntax error in a JSON text: its offset and what was expected. For messages
 * with a line and column (V8's own message has no position for some errors on Node 20).
 */
export function jsonSyntaxError(text: string): { offset: number; message: string } | undefined {
  const errors: ParseError[] = [];
  try {
    // a byte-order mark is not JSON, but the file reader accepts one
    parse(text.charCodeAt(0) === 0xfeff ? ` ${text.slice(1)}` : text, errors, STRICT);
  } catch {
    return undefined; // RangeError: nested deeper than the stack; V8's message stands
  }
  const first = errors[0];
  return first ? { offset: first.offset, message: messageFor(first, text) } : undefined;
}
