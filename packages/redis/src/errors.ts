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
  readonly code = 'ERR_ROLLGATE_STORE_UNAVAILABLE';
}

/** A revert or patch named something the store does not have. */
export class NotFoundError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_NOT_FOUND';
}

/** A write's own input is wrong (unknown kind, duplicate key, unpatchable field…); nothing was written. */
export class InvalidWriteError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_INVALID_WRITE';
}
