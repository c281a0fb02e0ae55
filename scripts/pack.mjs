#!/usr/bin/env node
// `npm run pack`: one installable tarball per @rollgate package, in packs/ (gitignored), until
// the packages are on npm. `npm pack` runs each package's `prepack` (its build), so a tarball is
// never empty or stale. The packages depend on each other by version, which the registry cannot
// serve yet: install a package's tarball TOGETHER with those of the @rollgate packages it needs
// (printed below), in one `npm i`, and npm resolves them to each other.
//
//   node scripts/pack.mjs [--out <dir>] [--json] [core redis …]   (default: every package, into packs/)
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function usage(message) {
  console.error(`pack: ${message}\nusage: node scripts/pack.mjs [--out <dir>] [--json] [package …]`);
  process.exit(2);
}

const args = process.argv.slice(2);
let out = join(root, 'packs');
let json = false;
const wanted = [];
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--out') {
    if (!args[i + 1]) usage('--out needs a directory');
    out = resolve(args[++i]);
  } else if (arg === '--json') json = true;
  else if (arg.startsWith('-')) usage(`unknown option ${arg}`);
  else wanted.push(arg.replace(/^@rollgate\//, ''));
}

/** Every publishable workspace package under packages/: short name → manifest. */
const manifests = new Map(
  readdirSync(join(root, 'packages'))
    .filter((dir) => statSync(join(root, 'packages', dir, 'package.json'), { throwIfNoEntry: false }))
    .map((dir) => JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')))
    .filter((m) => !m.private && m.name?.startsWith('@rollgate/'))
    .map((m) => [m.name.slice('@rollgate/'.length), m]),
);
const names = wanted.length ? wanted : [...manifests.keys()];
for (const name of names) if (!manifests.has(name)) usage(`no package @rollgate/${name} (there are: ${[...manifests.keys()].join(', ')})`);

/** The @rollgate packages `name` needs installed beside it (its dependencies, transitively), itself last. */
function needs(name, seen = new Set()) {
  for (const dep of Object.keys(manifests.get(name).dependencies ?? {})) {
    const short = dep.startsWith('@rollgate/') ? dep.slice('@rollgate/'.length) : undefined;
    if (short && manifests.has(short) && !seen.has(short)) needs(short, seen);
  }
  seen.add(name);
  return [...seen];
}

function npm(argv) {
  return new Promise((done, fail) => {
    const child = spawn('npm', argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => (code === 0 ? done(stdout) : fail(new Error(`npm ${argv.join(' ')} failed (exit ${code}):\n${`${stdout}\n${stderr}`.trim()}`))));
  });
}

mkdirSync(out, { recursive: true });
// an older version's tarball left beside the new one would be installed by a glob
for (const file of readdirSync(out)) if (names.some((n) => file.startsWith(`rollgate-${n}-`) && file.endsWith('.tgz'))) rmSync(join(out, file));

let report;
try {
  // one `npm pack` for all: each package's prepack builds it (tsc -b is a no-op when up to date)
  const stdout = await npm(['pack', '--json', '--pack-destination', out, ...names.flatMap((n) => ['-w', `@rollgate/${n}`])]);
  // a build may print before npm's JSON report, which is the last thing written
  report = JSON.parse(stdout.slice(stdout.search(/^\[\s*$/m)));
} catch (e) {
  console.error(e.message);
  process.exit(1);
}

const packed = report.map((p) => {
  const short = p.name.slice('@rollgate/'.length);
  return { name: p.name, version: p.version, tarball: join(out, p.filename.replace(/^.*[\\/]/, '')), size: p.size, files: p.files.map((f) => f.path), needs: needs(short) };
});

if (json) {
  console.log(JSON.stringify(packed, null, 2));
} else {
  const shown = relative(process.cwd(), out) || '.';
  for (const p of packed) console.log(`${join(shown, p.tarball.slice(out.length + 1)).padEnd(44)} ${(p.size / 1024).toFixed(0).padStart(4)} kB  ${p.files.length} files`);
  console.log(`\nInstall a package's tarball together with those of the @rollgate packages it needs, in one \`npm i\`:`);
  for (const p of packed) {
    const versions = new Set(p.needs.map((n) => manifests.get(n).version));
    const paths =
      versions.size === 1 && p.needs.length > 1
        ? join(out, `rollgate-{${p.needs.join(',')}}-${[...versions][0]}.tgz`) // bash/zsh brace expansion
        : p.needs.map((n) => join(out, `rollgate-${n}-${manifests.get(n).version}.tgz`)).join(' ');
    console.log(`  ${p.name.padEnd(20)} npm i ${paths}`);
  }
}
