import { RollgateError } from '@rollgate/core';

/**
 * The dashboard cannot be served: its built files are missing (run the build), or the
 * `dashboard` option of the admin router / controller is wrong. The message names the option or
 * the directory, and what to do.
 */
export class DashboardError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_DASHBOARD';
}
