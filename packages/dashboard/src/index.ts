import { resolve } from 'node:path';
import { DashboardError } from './errors';
import { DashboardFiles, type DashboardOptions } from './dashboard-files';

// The Node side of @rollgate/dashboard: where the built app is, and how to serve it. No React
// here: the app is static files, loaded by @rollgate/express and @rollgate/nest only when their
// `dashboard` option is on.

/** Absolute path of the built dashboard (index.html and assets/). */
export const dashboardDir: string = resolve(__dirname, '..', 'dist', 'app');

/**
 * The files for a `dashboard` option (`true` or `{ path?, dir? }`) of the admin router or
 * controller; `option` names it in errors. Throws DashboardError when the option is wrong or the
 * files are not built.
 */
export function openDashboard(value: true | DashboardOptions, option = 'dashboard'): DashboardFiles {
  if (value !== true && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw new DashboardError(`${option} must be true or { path?, dir? }, got ${JSON.stringify(value)}`);
  }
  const given = value === true ? {} : value;
  for (const key of Object.keys(given)) if (key !== 'path' && key !== 'dir') throw new DashboardError(`${option}: unknown option "${key}" (allowed: path, dir)`);
  if (given.dir !== undefined && (typeof given.dir !== 'string' || given.dir === '')) throw new DashboardError(`${option}.dir must be a directory path, got ${JSON.stringify(given.dir)}`);
  return new DashboardFiles({ dir: given.dir ?? dashboardDir, path: given.path ?? '/rollgate', option });
}

export { DashboardFiles, DASHBOARD_CSP, ADMIN_API_PATH } from './dashboard-files';
export type { DashboardOptions, DashboardRequest, DashboardResponse } from './dashboard-files';
export { DashboardError } from './errors';
