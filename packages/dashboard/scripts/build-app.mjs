// Builds the dashboard app with Vite into dist/app, unless dist/app was built from exactly these
// inputs (a hash of the sources, the config and the locked versions): `npm run build` then costs
// a hash, not a bundle, on every run after the first. FORCE=1 always builds.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(pkg, '../..');
const out = join(pkg, 'dist/app');
const stamp = join(pkg, 'dist/app.inputs');

function files(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? files(path) : [path];
    });
}

// What the bundle is made of: the app, core's split edit it compiles in, the build config, and
// the installed versions of what it bundles.
const inputs = [
  ...files(join(pkg, 'src/app')),
  join(pkg, 'index.html'),
  join(pkg, 'vite.config.mts'),
  join(pkg, 'package.json'),
  join(root, 'packages/core/src/split-edit.ts'),
  join(root, 'packages/core/src/errors.ts'),
  ...['react', 'react-dom', 'uplot', 'vite', 'scheduler'].map((name) => {
    const local = join(pkg, 'node_modules', name, 'package.json');
    return existsSync(local) ? local : join(root, 'node_modules', name, 'package.json');
  }),
  join(existsSync(join(pkg, 'node_modules/@vitejs/plugin-react')) ? pkg : root, 'node_modules/@vitejs/plugin-react/package.json'),
].filter((f) => existsSync(f));
const hash = createHash('sha256');
for (const file of inputs) hash.update(relative(root, file)).update('\0').update(readFileSync(file)).update('\0');
const digest = hash.digest('hex');

if (!process.env.FORCE && existsSync(join(out, 'index.html')) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === digest) {
  process.exit(0); // up to date
}

const vite = [join(pkg, 'node_modules/vite/bin/vite.js'), join(root, 'node_modules/vite/bin/vite.js')].find((f) => existsSync(f));
if (!vite) {
  console.error('@rollgate/dashboard: vite is not installed; run `npm install` (or `npm ci`) at the repository root first');
  process.exit(1);
}
// NODE_ENV=production whatever the caller's (jest sets `test`): React's production build, never
// its development one (StrictMode's double effects, 2x the size) under a stamp that says up to date
const result = spawnSync(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: pkg, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'production', VITE_CONFIG_NATIVE_IGNORE_WARNING: 'true' } });
if (result.status !== 0) process.exit(result.status ?? 1);
writeFileSync(stamp, `${digest}\n`);
