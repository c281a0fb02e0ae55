import { existsSync } from 'node:fs';
import path from 'node:path';
import * as dashboard from '@rollgate/dashboard';

// The Node entry: what the Express and Nest adapters load when `dashboard` is on. No React.

it('exports exactly these names', () => {
  expect(Object.keys(dashboard).sort()).toEqual(['ADMIN_API_PATH', 'DASHBOARD_CSP', 'DashboardError', 'DashboardFiles', 'dashboardDir', 'openDashboard']);
  expect(dashboard.dashboardDir).toBe(path.resolve(__dirname, '../dist/app'));
  expect(new dashboard.DashboardError('x').code).toBe('ERR_ROLLGATE_DASHBOARD');
});

it('the package ships the built app and the entry (with the entry’s sources, for its source maps), no React at run time', () => {
  const pkg = require('../package.json') as { files: string[]; dependencies: Record<string, string>; main: string }; // eslint-disable-line @typescript-eslint/no-require-imports
  expect(pkg.files).toEqual(['dist', 'src/*.ts', 'README.md']); // src/*.ts: the Node entry only, not the app's sources
  expect(Object.keys(pkg.dependencies)).toEqual(['@rollgate/core']);
  expect(pkg.main).toBe('dist/index.js');
  expect(existsSync(path.resolve(__dirname, '../scripts/build-app.mjs'))).toBe(true);
});
