import { RollgateError } from '@rollgate/core';

/** A write was based on a version that is no longer current; nothing was written. */
export class VersionConflictError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_VERSION_CONFLICT';
  constructor(
    readonly expectedVersion: number,
    readonly currentVersion: number,
  ) {
    super(`flag store is at version ${currentVersion}, not the expected ${expectedVersion}: someone else wrote first; reload and retry`);
  }
}

/** Options given to a constructor are invalid. The message names the option. */
export class ConfigError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_CONFIG';
}

/** The flag store could not be reached (or answered too slowly). */
export class StoreUnavailableError extends RollgateError {
  readonly code: string = 'ERR_ROLLGATE_STORE_UNAVAILABLE';
}

/**
 * Redis did not answer a write in time, and reading it back proved the write was not applied —
 * and never will be: Redis refuses it past its deadline. It is safe to retry.
 */
export class WriteNotAppliedError extends StoreUnavailableError {
  override readonly code = 'ERR_ROLLGATE_WRITE_NOT_APPLIED';
  constructor(
    readonly writeId: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A revert or patch named something the store does not have. */
export class NotFoundError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_NOT_FOUND';
}

/** A write's own input is wrong (unknown kind, duplicate key, unpatchable field…); nothing was written. */
export class InvalidWriteError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_INVALID_WRITE';
}

/**
 * Redis stopped answering while a write was in flight and could not be read back in time: the
 * write may or may not be applied. If Redis runs it, it does so before `deadline` (ms on Redis'
 * clock) or refuses it. Look for `writeId` in the audit, or retry with the same `writeId`: a write
 * id is applied at most once.
 */
export class WriteOutcomeUnknownError extends StoreUnavailableError {
  override readonly code: string = 'ERR_ROLLGATE_WRITE_OUTCOME_UNKNOWN';
  constructor(
    readonly writeId: string,
    readonly deadline: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * `minReplicas` is set and the write was applied on the master (at `version`), but fewer than
 * `required` replicas confirmed it before the store gave up reading it back (`replicas` is the
 * most that did): a failover now may lose it. It is a WriteOutcomeUnknownError — whether it
 * survives is not known — so callers that retry with the same `writeId` (applied at most once, and
 * its replication checked again) or report "outcome unknown" handle it as they should.
 */
export class WriteNotReplicatedError extends WriteOutcomeUnknownError {
  override readonly code = 'ERR_ROLLGATE_WRITE_NOT_REPLICATED';
  constructor(
    writeId: string,
    deadline: number,
    readonly version: number,
    readonly replicas: number,
    readonly required: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(writeId, deadline, message, options);
  }
}

/**
 * A write made under a rollout controller's lease (`leaseToken`) found another token in the
 * lease: another controller has taken over. Nothing was written.
 */
export class FencedError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_FENCED';
}
