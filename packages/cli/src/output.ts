import type { ErrorReport } from './exit-codes';

// Data goes to stdout, messages to stderr. With --json, stdout carries one JSON document per
// command (or one JSON object per line for streams) and stderr one JSON object per message, so
// a script never has to parse prose.
//
// Everything printed may hold strings from the store (keys, actors, reasons, values), and the
// store may hold anything someone wrote to Redis by hand. Nothing unprintable reaches the
// terminal: human output writes such characters as escapes (\x1b, \u202e), JSON output as JSON
// escapes (\u001b, \u202e: the same JSON value).

/**
 * What must not reach a terminal as is: C0 and C1 controls and DEL (ESC starts terminal escape
 * sequences, CR overwrites the line), Unicode format characters (bidi overrides such as U+202E
 * that reorder what is shown, zero-width characters that hide text), line and paragraph
 * separators, and lone surrogates.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

function hex(code: number, width: number): string {
  return code.toString(16).padStart(width, '0');
}

/**
 * `text` with every unprintable character written as an escape: `\x1b` up to U+00FF, `\u202e` up
 * to U+FFFF, `\u{e0001}` beyond. Newlines are escaped too unless `keepNewlines` (for text whose
 * line breaks are the CLI's own).
 */
export function printable(text: string, keepNewlines = false): string {
  return text.replace(UNPRINTABLE, (ch) => {
    if (ch === '\n' && keepNewlines) return ch;
    const code = ch.codePointAt(0)!;
    return code <= 0xff ? `\\x${hex(code, 2)}` : code <= 0xffff ? `\\u${hex(code, 4)}` : `\\u{${hex(code, 1)}}`;
  });
}

/**
 * JSON text (from JSON.stringify) with what JSON.stringify leaves raw — DEL, C1 controls, bidi and
 * other format characters, U+2028/2029 — as \uXXXX escapes: the same JSON value, nothing
 * unprintable on the terminal. Raw newlines are JSON.stringify's indentation (in strings they are
 * already escaped) and stay.
 */
export function escapeJson(text: string): string {
  return text.replace(UNPRINTABLE, (ch) => {
    if (ch === '\n') return ch;
    let out = '';
    for (let i = 0; i < ch.length; i++) out += `\\u${hex(ch.charCodeAt(i), 4)}`; // astral: its surrogate pair
    return out;
  });
}

/** JSON.stringify, safe for a terminal (see escapeJson). */
export function toJson(value: unknown, indent?: number): string {
  const text = JSON.stringify(value, null, indent) as string | undefined;
  return text === undefined ? 'undefined' : escapeJson(text);
}

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export class Output {
  constructor(
    private readonly io: CliIo,
    readonly json: boolean,
  ) {}

  /** The command's result: `data` as JSON with --json, else the human lines (made printable; their own line breaks stay). */
  result(data: unknown, human: () => string | readonly string[]): void {
    if (this.json) {
      this.io.stdout(`${toJson(data, 2)}\n`);
      return;
    }
    const text = human();
    const lines = typeof text === 'string' ? [text] : text;
    if (lines.length > 0) this.io.stdout(`${lines.map((line) => printable(line, true)).join('\n')}\n`);
  }

  /** JSON text to stdout, in both modes (e.g. a pulled flag set). */
  raw(text: string): void {
    const safe = escapeJson(text);
    this.io.stdout(safe.endsWith('\n') ? safe : `${safe}\n`);
  }

  /** One record of a stream (`watch`): a compact JSON line with --json, else the human line. */
  record(data: unknown, human: string): void {
    this.io.stdout(this.json ? `${toJson(data)}\n` : `${printable(human)}\n`);
  }

  /** Progress and outcome messages for people: stderr, and silent with --json. */
  info(message: string): void {
    if (!this.json) this.io.stderr(`${printable(message, true)}\n`);
  }

  /** A status change a script may wait for (e.g. `watch` ready): stderr, as JSON with --json. */
  status(data: Record<string, unknown>, human: string): void {
    this.io.stderr(this.json ? `${toJson(data)}\n` : `${printable(human)}\n`);
  }

  warn(message: string): void {
    this.io.stderr(this.json ? `${toJson({ warning: message })}\n` : `warning: ${printable(message)}\n`);
  }

  error(report: ErrorReport): void {
    if (this.json) {
      const { exitCode, code, message, issues } = report;
      this.io.stderr(`${toJson({ error: { exitCode, code, message, ...(issues ? { issues } : {}) } })}\n`);
    } else {
      // an error message may list issues on lines of its own
      this.io.stderr(`rollgate: ${printable(report.message, true)}\n`);
    }
  }
}

/** Left-aligned columns; the last column is not padded. Cells are made printable (on one line) before they are measured. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const cells = rows.map((row) => row.map((cell) => printable(cell)));
  const widths: number[] = [];
  for (const row of cells) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return cells.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** JSON for a human line (terminal-safe, see escapeJson), cut to `max` characters. */
export function brief(value: unknown, max = 100): string {
  const text = value === undefined ? 'undefined' : toJson(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
