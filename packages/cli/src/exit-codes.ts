import { FlagValidationError, RollgateError } from '@rollgate/core';
import { ConfigError, InvalidWriteError, NotFoundError, StoreUnavailableError, VersionConflictError, WriteNotAppliedError, WriteOutcomeUnknownError } from '@rollgate/redis';
import { PlanConflictError, PlanStateError, PlanValidationError } from '@rollgate/rollouts';
import { EditRefusedError, FileValidationError, MissingError, RedisUnreachableError, UsageError } from './errors';

/** Exit codes a script can rely on. Documented in README.md, docs/cli.md and `rollgate --help`. */
export const EXIT = Object.freeze({
  ok: 0,
  unexpected: 1,
  usage: 2,
  validation: 3,
  conflict: 4,
  notFound: 5,
  unavailable: 6,
  outcomeUnknown: 7,
});

export const EXIT_CODES_HELP = `
Exit codes:
  0  ok
  1  unexpected error
  2  usage error: bad command, argument or option (nothing written)
  3  validation error: the change was refused as invalid (a flag set or a rollout plan), or
     the definition has no shape this command can edit (nothing written)
  4  version conflict: the store or a rollout plan changed since it was read, or the plan's
     state does not allow the action (nothing written); re-run
  5  not found: no such flag, evaluator or audit entry
  6  Redis unreachable: connection refused, timed out or not authorized (a write that
     got no answer was read back: it was not applied, retrying is safe)
  7  write outcome unknown: Redis stopped answering mid-write and could not be read back;
     the message names the write id: check \`rollgate audit\`, or re-run with --write-id <id>
     (a write id is applied at most once)

Data goes to stdout, messages to stderr. With --json, stdout carries one JSON document
(\`watch\`: one JSON object per line) and stderr one JSON object per message.`;

const UNREACHABLE = /Command timed out|Connection is closed|Reached the max retries per request|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|NOAUTH|WRONGPASS|NOPERM|max number of clients/i;

/** Whether an error means Redis could not be used at all (exit 6), as opposed to a bug. */
export function isUnreachable(error: unknown): boolean {
  if (error instanceof StoreUnavailableError) return true;
  if (!(error instanceof Error)) return false;
  if (error.name === 'MaxRetriesPerRequestError') return true;
  const code = (error as { code?: unknown }).code;
  return UNREACHABLE.test(error.message) || (typeof code === 'string' && UNREACHABLE.test(code));
}

export interface ErrorReport {
  exitCode: number;
  /** Stable code (`ERR_ROLLGATE_…`); `ERR_ROLLGATE_UNEXPECTED` for anything else. */
  code: string;
  message: string;
  issues?: readonly unknown[];
}

/** Maps any error to the exit code and message the CLI reports. */
export function reportOf(error: unknown): ErrorReport {
  if (error instanceof UsageError || error instanceof ConfigError) return { exitCode: EXIT.usage, code: error.code, message: error.message };
  if (error instanceof FileValidationError) return { exitCode: EXIT.validation, code: error.code, message: error.message, issues: error.issues };
  if (error instanceof FlagValidationError) return { exitCode: EXIT.validation, code: error.code, message: error.message, issues: error.issues };
  if (error instanceof EditRefusedError || error instanceof InvalidWriteError) return { exitCode: EXIT.validation, code: error.code, message: error.message };
  if (error instanceof VersionConflictError) {
    return { exitCode: EXIT.conflict, code: error.code, message: `${error.message} (nothing was written)` };
  }
  if (error instanceof PlanValidationError) return { exitCode: EXIT.validation, code: error.code, message: error.message };
  if (error instanceof PlanStateError || error instanceof PlanConflictError) return { exitCode: EXIT.conflict, code: error.code, message: `${error.message} (nothing was written)` };
  if (error instanceof NotFoundError || error instanceof MissingError) return { exitCode: EXIT.notFound, code: error.code, message: error.message };
  // the store read the write back: its message says what happened, not the client's reason alone
  if (error instanceof WriteOutcomeUnknownError) return { exitCode: EXIT.outcomeUnknown, code: error.code, message: error.message };
  if (error instanceof WriteNotAppliedError) return { exitCode: EXIT.unavailable, code: error.code, message: error.message };
  if (error instanceof RedisUnreachableError) return { exitCode: EXIT.unavailable, code: error.code, message: error.message };
  if (isUnreachable(error)) {
    // the store wraps the client's error; name the client's own reason once
    const root = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    const message = root instanceof Error ? root.message : String(root);
    return { exitCode: EXIT.unavailable, code: 'ERR_ROLLGATE_STORE_UNAVAILABLE', message: `Redis is unreachable: ${message}` };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { exitCode: EXIT.unexpected, code: error instanceof RollgateError ? error.code : 'ERR_ROLLGATE_UNEXPECTED', message: `unexpected error: ${message}` };
}
