import type { ValidationIssue } from './types';

/** Base class of every error Rollgate throws. `code` is stable and documented in docs/errors.md. */
export abstract class RollgateError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/**
 * A flag set (or one flag) failed validation. `issues` carries every problem found, each with a
 * dotted path; the message lists them as `path: message`.
 */
export class FlagValidationError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_FLAG_VALIDATION';
  readonly issues: readonly ValidationIssue[];

  constructor(issues: readonly ValidationIssue[], context?: string) {
    const head = context ? `${context}: ` : '';
    super(`${head}${issues.map(formatIssue).join('; ')}`);
    this.issues = issues;
  }
}

/** Formats an issue the way every error message in Rollgate shows it: `path: message`. */
export function formatIssue(issue: ValidationIssue): string {
  return issue.path ? `${issue.path}: ${issue.message}` : issue.message;
}
