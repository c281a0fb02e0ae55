import { compileFlagSet } from '@rollgate/core';
import { FileValidationError, type FileIssue } from './errors';
import { jsonPathOffsets, jsonSyntaxError, lineStarts, locatePath, positionAt } from './json-locate';

// Flag-set files in flagd's format: read and validated before anything is written (push,
// diff), and written by pull.

export const FLAGD_SCHEMA = 'https://flagd.dev/schema/v0/flags.json';

export interface FlagFile {
  file: string;
  flags: Record<string, unknown>;
  evaluators: Record<string, unknown>;
  /** The file has flag-set `metadata`, which the store does not keep. */
  hasSetMetadata: boolean;
}

function own(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, configurable: true, writable: true });
}

/**
 * Parses a JSON file the CLI reads (a flag set, a plan): the text without a BOM, and its value.
 * Text that is not JSON is FileValidationError, with the line and column where it goes wrong.
 */
export function parseJsonFile(file: string, input: string): { text: string; parsed: unknown } {
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input; // a BOM is not JSON
  try {
    return { text, parsed: JSON.parse(text) as unknown };
  } catch (e) {
    const found = jsonSyntaxError(text);
    const message = found ? found.message : (e as Error).message.replace(/\s+/g, ' ');
    const pos = found ? positionAt(lineStarts(text), found.offset) : undefined;
    throw new FileValidationError(file, [{ path: '', message: `not valid JSON: ${message}`, ...(pos ?? {}) }]);
  }
}

/**
 * Validates the text of a flag-set file as a whole with core's schema and compiler. Every issue
 * (a flag left out, an unknown `$ref`, invalid JSON) refuses the file: FileValidationError, with
 * the line of the element each issue is about, or of the nearest enclosing one.
 */
export function parseFlagFile(file: string, input: string): FlagFile {
  const { text, parsed } = parseJsonFile(file, input);
  const { errors } = compileFlagSet(parsed as object);
  if (errors.length > 0) {
    const offsets = jsonPathOffsets(text);
    const starts = lineStarts(text);
    const issues: FileIssue[] = errors.map((issue) => {
      const pos = locatePath(starts, offsets, issue.path) ?? (issue.flagKey !== undefined ? locatePath(starts, offsets, `flags.${issue.flagKey}`) : undefined);
      return { path: issue.path, message: issue.message, ...(pos ? { line: pos.line } : {}) };
    });
    throw new FileValidationError(file, issues);
  }
  const top = parsed as { flags: Record<string, unknown>; $evaluators?: Record<string, unknown>; metadata?: unknown };
  // copies with own properties only (validation has refused __proto__ and friends already)
  const flags: Record<string, unknown> = {};
  for (const key of Object.keys(top.flags)) own(flags, key, top.flags[key]);
  const evaluators: Record<string, unknown> = {};
  for (const key of Object.keys(top.$evaluators ?? {})) own(evaluators, key, top.$evaluators![key]);
  return { file, flags, evaluators, hasSetMetadata: top.metadata !== undefined && Object.keys(top.metadata as object).length > 0 };
}

function sorted(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(record).sort()) own(out, key, record[key]);
  return out;
}

/** A stored flag set as a flagd flag-set document, keys sorted (stable diffs in git). */
export function toFlagdDocument(set: { flags: Record<string, unknown>; evaluators: Record<string, unknown> }): Record<string, unknown> {
  return { $schema: FLAGD_SCHEMA, $evaluators: sorted(set.evaluators), flags: sorted(set.flags) };
}
