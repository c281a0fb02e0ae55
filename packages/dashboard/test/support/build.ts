import path from 'node:path';
import { run, withBuildLock } from '../../../../test/support/packaging';

// The dashboard's built files for the tests that serve them: scripts/build-app.mjs under the
// build lock (a hash check, no bundling, once `npm run build` has built them).

const ROOT = path.resolve(__dirname, '../../../..');

export async function buildDashboard(): Promise<void> {
  await withBuildLock(() => run(process.execPath, [path.join(ROOT, 'packages/dashboard/scripts/build-app.mjs')], ROOT, 180_000));
}
