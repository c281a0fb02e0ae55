import 'reflect-metadata';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { satisfies } from 'semver';
import { packPackages, requireRegistry, ROOT, run, type PackedPackage } from './support/packaging';

// The packaging check: `npm run pack`'s script packs EVERY package (each `prepack` builds it);
// publint and Are The Types Wrong find nothing wrong with any tarball; every source map in them
// resolves; the tarballs install together in one `npm i` (as the README says) with their peers
// from the registry into an empty project, each @rollgate dependency resolved to a tarball; then
// `require()` and `import()` of each public entry point work and expose the same runtime names as
// the sources (which each package's exports.spec.ts pins), including the names the README and
// docs use; and the `rollgate` bin runs. Without the registry it FAILS; it never skips.
// (Nest 12 with an ESM app: packages/nest/test/nest12-esm.pack.spec.ts; the README's quick
// starts against these tarballs: test/quickstarts.spec.ts.)

jest.setTimeout(240_000);

const PACKAGES = ['core', 'redis', 'rollouts', 'server', 'express', 'nest', 'web', 'cli', 'dashboard'] as const;

/** Names the README, docs and examples import from each package: they must be there. */
const DOCUMENTED: Record<(typeof PACKAGES)[number], string[]> = {
  core: ['compileFlagSet', 'changedFlagKeys', 'FlagSnapshot', 'FlagValidationError', 'RollgateError', 'formatIssue', 'RegressionTest'],
  redis: ['RedisFlagStore', 'MemoryFlagStore', 'RollgateProvider', 'VersionConflictError', 'NotFoundError', 'ConfigError', 'SAFE_REDIS_OPTIONS', 'WriteOutcomeUnknownError'],
  rollouts: ['OutcomeRecorder', 'Rollouts', 'RolloutController', 'registerRolloutMetrics'],
  server: ['AdminApi', 'OfrepEvaluator', 'ChangeStream', 'createIdentityResolver', 'decideFeature', 'IdentityError', 'recordExposure'],
  express: ['identity', 'requireFeature', 'ofrep', 'adminRouter', 'getRequestIdentity', 'recordOutcomes'],
  nest: ['RollgateModule', 'RequireFeature', 'RequireFeatureGuard', 'FeatureValue', 'InjectFeatureClient', 'getRequestIdentity', 'FEATURE_CLIENT'],
  web: ['RollgateWebProvider', 'WebConfigError'],
  cli: ['runCli', 'createProgram', 'EXIT'],
  dashboard: ['dashboardDir', 'openDashboard', 'DashboardError'],
};

/**
 * What publint and attw may say. @rollgate/web sets no "type": its dist/esm build (the "module"
 * condition, for bundlers only) is ES modules in .js files, and webpack reads .js under
 * "type": "commonjs" as CommonJS only (javascript/dynamic), so publint's "add type: commonjs"
 * would break webpack users; without it their bundlers detect the format.
 */
const ACCEPTED_LINT: Record<string, RegExp[]> = { web: [/^suggestion: USE_TYPE: /] };

/** The runtime names of each package as its sources export them (jest maps @rollgate/* to src). */
function sourceNames(): Record<string, string[]> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const modules: Record<string, object> = {
    core: require('@rollgate/core'),
    redis: require('@rollgate/redis'),
    rollouts: require('@rollgate/rollouts'),
    server: require('@rollgate/server'),
    express: require('@rollgate/express'),
    nest: require('@rollgate/nest'),
    web: require('@rollgate/web'),
    cli: require('@rollgate/cli'),
    dashboard: require('@rollgate/dashboard'),
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
  return Object.fromEntries(Object.entries(modules).map(([k, m]) => [`@rollgate/${k}`, Object.keys(m).filter((n) => n !== '__esModule').sort()]));
}

// Run inside the installed project: the names each entry point exposes through require() and import().
const CHECK_CJS = `
require('reflect-metadata');
const names = {};
for (const name of JSON.parse(process.argv[2])) {
  const m = require(name);
  names[name] = Object.keys(m).filter((n) => n !== '__esModule').sort();
}
console.log(JSON.stringify(names));
`;
const CHECK_ESM = `
import 'reflect-metadata';
const names = {};
for (const name of JSON.parse(process.argv[2])) {
  const m = await import(name);
  names[name] = { named: Object.keys(m).filter((n) => n !== 'default' && n !== 'module.exports' && n !== '__esModule').sort(), default: Object.keys(m.default ?? {}).filter((n) => n !== '__esModule').sort() };
}
console.log(JSON.stringify(names));
`;

let dir: string;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Source maps and `sourceMappingURL`s in an installed package whose target is not in it. */
async function unresolvedMaps(pkgDir: string, files: string[]): Promise<string[]> {
  const present = new Set(files.map((f) => normalize(f)));
  const missing: string[] = [];
  for (const file of files.filter((f) => /\.(js|d\.ts)$/.test(f))) {
    const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(await readFile(join(pkgDir, file), 'utf8'))?.[1];
    if (url && !url.startsWith('data:') && !present.has(normalize(join(dirname(file), url)))) missing.push(`${file} → ${url}`);
  }
  for (const map of files.filter((f) => f.endsWith('.map'))) {
    const { sources, sourceRoot } = JSON.parse(await readFile(join(pkgDir, map), 'utf8')) as { sources: string[]; sourceRoot?: string };
    for (const source of sources) if (!present.has(normalize(join(dirname(map), sourceRoot ?? '', source)))) missing.push(`${map} → ${source}`);
  }
  return missing;
}

it('packs every package (each built by its prepack), lint-free; installs the tarballs together with their peers; require() / import() expose the documented names; source maps resolve; the rollgate bin runs', async () => {
  dir = await mkdtemp(join(tmpdir(), 'rollgate-packaging-'));
  await requireRegistry(dir, 'the packaging check installs the peer dependencies from it');
  const started = Date.now();
  const packed: PackedPackage[] = await packPackages([], join(dir, 'tarballs')); // all of them, as `npm run pack`
  const packedAt = Date.now();

  const names = PACKAGES.map((p) => `@rollgate/${p}`);
  expect(packed.map((p) => p.name).sort()).toEqual([...names].sort());
  for (const p of packed) {
    expect(p.files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', 'src/index.ts']));
    expect(p.files.filter((f) => /(^|\/)test\/|\.tsbuildinfo$|\.spec\.|^src\/app\//.test(f))).toEqual([]); // only what users need (src: for the source maps)
    // what `npm run pack` tells users to install with it: its @rollgate dependencies, transitively
    const manifest = JSON.parse(await readFile(join(ROOT, 'packages', p.name.slice('@rollgate/'.length), 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const dep of Object.keys(manifest.dependencies ?? {}).filter((d) => d.startsWith('@rollgate/'))) expect({ name: p.name, needs: p.needs }).toEqual({ name: p.name, needs: expect.arrayContaining([dep.slice('@rollgate/'.length)]) });
  }
  expect(packed.find((p) => p.name === '@rollgate/web')!.files).toContain('dist/esm/index.js'); // the bundlers' build
  expect(packed.find((p) => p.name === '@rollgate/cli')!.files).toEqual(expect.arrayContaining(['bin/rollgate.js', 'dist/bin.js']));
  expect(packed.find((p) => p.name === '@rollgate/dashboard')!.files).toContain('dist/app/index.html'); // the built app

  // publint and Are The Types Wrong on every tarball (types conditions, ESM/CJS entries, files)
  const lint = JSON.parse(await run(process.execPath, [join(__dirname, 'support/lint-tarballs.mjs'), ...packed.map((p) => p.tarball)], ROOT, 120_000)) as Record<string, { publint: string[]; attw: string[] }>;
  for (const p of packed) {
    const short = p.name.slice('@rollgate/'.length);
    const { publint, attw } = lint[p.tarball.replace(/^.*[\\/]/, '')]!;
    expect({ name: p.name, publint: publint.filter((m) => !(ACCEPTED_LINT[short] ?? []).some((ok) => ok.test(m))), attw }).toEqual({ name: p.name, publint: [], attw: [] });
  }
  const lintedAt = Date.now();

  // one `npm i` of every tarball, as the README tells users (no overrides: npm resolves the
  // packages' dependencies on each other to the tarballs given with them), peers as a user adds them
  const manifest = {
    name: 'rollgate-packaging-check',
    private: true,
    dependencies: {
      '@openfeature/server-sdk': '^1.23.0',
      '@openfeature/web-sdk': '^1.10.0',
      '@openfeature/core': '^1.12.0',
      ioredis: '^6.0.0',
      express: '^5.0.0',
      '@nestjs/common': '^11.0.0',
      '@nestjs/core': '^11.0.0',
      'reflect-metadata': '^0.2.2',
      rxjs: '^7.8.0',
    },
  };
  await writeFile(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
  await writeFile(join(dir, 'check.cjs'), CHECK_CJS);
  await writeFile(join(dir, 'check.mjs'), CHECK_ESM);
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...packed.map((p) => p.tarball)], dir, 150_000);
  const installedAt = Date.now();

  // npm resolved every @rollgate/* dependency to a tarball (no registry copy), without peer problems
  type Tree = { problems?: string[]; dependencies?: Record<string, Tree & { resolved?: string; version?: string }> };
  const tree = JSON.parse(await run('npm', ['ls', '--all', '--json', '--long'], dir, 60_000)) as Tree;
  expect(tree.problems ?? []).toEqual([]);
  const fromRegistry: string[] = [];
  const walk = (t: Tree) => {
    for (const [name, child] of Object.entries(t.dependencies ?? {})) {
      if (name.startsWith('@rollgate/') && child.resolved && !child.resolved.startsWith('file:')) fromRegistry.push(`${name} ${child.resolved}`);
      walk(child);
    }
  };
  walk(tree);
  expect(fromRegistry).toEqual([]);

  // the tarballs carry src/, so every map (and its sourceMappingURL) resolves inside the package
  for (const p of packed) expect({ name: p.name, unresolved: await unresolvedMaps(join(dir, 'node_modules', p.name), p.files) }).toEqual({ name: p.name, unresolved: [] });

  // one supported Node range, everywhere, and the Node running this test is in it
  const engines = new Set<string>();
  for (const m of [ROOT, ...PACKAGES.map((p) => join(ROOT, 'packages', p))]) engines.add((JSON.parse(await readFile(join(m, 'package.json'), 'utf8')) as { engines?: { node?: string } }).engines?.node ?? 'none');
  expect([...engines]).toEqual(['>=20.19']);
  expect(satisfies(process.version, [...engines][0]!)).toBe(true);

  const expected = sourceNames();
  const cjs = JSON.parse((await run(process.execPath, ['check.cjs', JSON.stringify(names)], dir, 60_000)).trim()) as Record<string, string[]>;
  const esm = JSON.parse((await run(process.execPath, ['check.mjs', JSON.stringify(names)], dir, 60_000)).trim()) as Record<string, { named: string[]; default: string[] }>;
  for (const name of names) {
    const short = name.slice('@rollgate/'.length) as (typeof PACKAGES)[number];
    expect({ name, cjs: cjs[name] }).toEqual({ name, cjs: expected[name] });
    expect({ name, esm: esm[name]!.named }).toEqual({ name, esm: expected[name] }); // named ESM imports work (cjs-module-lexer)
    expect({ name, default: esm[name]!.default }).toEqual({ name, default: expected[name] });
    expect({ name, missing: DOCUMENTED[short].filter((n) => !cjs[name]!.includes(n)) }).toEqual({ name, missing: [] });
  }

  const help = await run(join(dir, 'node_modules/.bin/rollgate'), ['--help'], dir, 30_000);
  expect(help).toMatch(/^Usage: rollgate /m);
  for (const command of ['flags', 'enable', 'disable', 'rollout', 'segment', 'audit', 'revert', 'explain', 'watch']) expect(help).toContain(command);
  const version = await run(join(dir, 'node_modules/.bin/rollgate'), ['--version'], dir, 30_000);
  expect(version.trim()).toBe(require('../packages/cli/package.json').version); // eslint-disable-line @typescript-eslint/no-require-imports

  console.log(`packaging: built + packed in ${packedAt - started} ms, linted in ${lintedAt - packedAt} ms, installed in ${installedAt - lintedAt} ms, checked in ${Date.now() - installedAt} ms`);
});
