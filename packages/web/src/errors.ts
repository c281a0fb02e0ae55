// Same shape as @rollgate/core's RollgateError (a stable `code`), defined here because this
// package must not pull @rollgate/core (and its rules engine) into browser bundles.

/** Options given to `new RollgateWebProvider(...)` are invalid. The message names the option. */
export class WebConfigError extends Error {
  readonly code = 'ERR_ROLLGATE_WEB_CONFIG';

  constructor(message: string) {
    super(`@rollgate/web: ${message}`);
    this.name = 'WebConfigError';
    Object.setPrototypeOf(this, new.target.prototype);
  }
}
