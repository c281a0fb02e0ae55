import type { ErrorReport } from './exit-codes';

// Data goes to stdout, messages to stderr. With --json, stdout carries one JSON document per
// command (or one JSON object per line for streams) and stderr one JSON object per message, so
// a script never has to parse prose.

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export class Output {
  constructor(
    private readonly io: CliIo,
    readonly json: boolean,
  ) {}

  /** The command's result: `data` as JSON with --json, else the human lines. */
  result(data: unknown, human: () => string | readonly string[]): void {
    if (this.json) {
      this.io.stdout(`${JSON.stringify(data, null, 2)}\n`);
      return;
    }
    const text = human();
    const lines = typeof text === 'string' ? [text] : text;
    if (lines.length > 0) this.io.stdout(`${lines.join('\n')}\n`);
  }

  /** Raw data to stdout, in both modes (e.g. a pulled flag set). */
  raw(text: string): void {
    this.io.stdout(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** One record of a stream (`watch`): a compact JSON line with --json, else the human line. */
  record(data: unknown, human: string): void {
    this.io.stdout(this.json ? `${JSON.stringify(data)}\n` : `${human}\n`);
  }

  /** Progress and outcome messages for people: stderr, and silent with --json. */
  info(message: string): void {
    if (!this.json) this.io.stderr(`${message}\n`);
  }

  /** A status change a script may wait for (e.g. `watch` ready): stderr, as JSON with --json. */
  status(data: Record<string, unknown>, human: string): void {
    this.io.stderr(this.json ? `${JSON.stringify(data)}\n` : `${human}\n`);
  }

  warn(message: string): void {
    this.io.stderr(this.json ? `${JSON.stringify({ warning: message })}\n` : `warning: ${message}\n`);
  }

  error(report: ErrorReport): void {
    if (this.json) {
      const { exitCode, code, message, issues } = report;
      this.io.stderr(`${JSON.stringify({ error: { exitCode, code, message, ...(issues ? { issues } : {}) } })}\n`);
    } else {
      this.io.stderr(`rollgate: ${report.message}\n`);
    }
  }
}

/** Left-aligned columns; the last column is not padded. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** JSON for a human line, cut to `max` characters. */
export function brief(value: unknown, max = 100): string {
  const text = value === undefined ? 'undefined' : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
