import { RollgateError } from '@rollgate/core';

// Errors of the CLI's own checks. Pure: no I/O, no Redis (the pure edit helpers use them).

/** Bad arguments or options. Exit 2. */
export class UsageError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_USAGE';
}

/**
 * The requested edit does not fit the definition it would change (e.g. `rollout` on targeting
 * with no percentage split at its tail, `segment` on an evaluator of another shape). Exit 3.
 */
export class EditRefusedError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_EDIT_REFUSED';
}

/** Redis could not be used; the message says where and why ("Redis at redis://host:6379 is unreachable: connection refused"), never a password. Exit 6. */
export class RedisUnreachableError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_STORE_UNAVAILABLE';
}

/** A flag or evaluator a command names does not exist. Exit 5. */
export class MissingError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_NOT_FOUND';
}

/** A flag-set file failed validation; `issues` carry the file and, where found, the line. Exit 3. */
export class FileValidationError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_FLAG_VALIDATION';
  constructor(
    readonly file: string,
    readonly issues: readonly FileIssue[],
  ) {
    super(`${file} is invalid, nothing was written:\n${issues.map((i) => `  ${formatFileIssue(file, i)}`).join('\n')}`);
  }
}

export interface FileIssue {
  /** Dotted path inside the file, as core reports it ('' for the whole file). */
  path: string;
  message: string;
  /** 1-based line of the offending element (or of the nearest enclosing one), when found. */
  line?: number;
  column?: number;
}

export function formatFileIssue(file: string, issue: FileIssue): string {
  const where = issue.line === undefined ? file : issue.column === undefined ? `${file}:${issue.line}` : `${file}:${issue.line}:${issue.column}`;
  return `${where}: ${issue.path ? `${issue.path}: ` : ''}${issue.message}`;
}
