import 'reflect-metadata';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packPackages, requireRegistry, run, tarballDependencies } from './support/packaging';

// The packaging check: `npm pack` EVERY package, install the tarballs with their peers from the
// registry into an empty project (as a user would), then check that `require()` and `import()`
// of each public entry point work and expose the same runtime names as the sources (which each
// package's exports.spec.ts pins), including the names the README and docs use; and that the
// `rollgate` bin runs. Without the registry it FAILS; it never skips.
// (Nest 12 with an ESM app: packages/nest/test/nest12-esm.pack.spec.ts.)

jest.setTimeout(180_000);

const PACKAGES = ['core', 'redis', 'rollouts', 'server', 'express', 'nest', 'web', 'cli'] as const;

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
};

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

it('packs every package, installs the tarballs with their peers, and require() / import() expose the documented names; the rollgate bin runs', async () => {
  dir = await mkdtemp(join(tmpdir(), 'rollgate-packaging-'));
  await requireRegistry(dir, 'the packaging check installs the peer dependencies from it');
  const started = Date.now();
  const packed = await packPackages([...PACKAGES], join(dir, 'tarballs'));
  const packedAt = Date.now();

  const names = PACKAGES.map((p) => `@rollgate/${p}`);
  expect(packed.map((p) => p.name).sort()).toEqual([...names].sort());
  for (const p of packed) {
    expect(p.files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts']));
    expect(p.files.filter((f) => /(^|\/)(src|test)\/|\.tsbuildinfo$|\.spec\./.test(f))).toEqual([]); // only what users need
  }
  expect(packed.find((p) => p.name === '@rollgate/web')!.files).toContain('dist/esm/index.js'); // the bundlers' build
  expect(packed.find((p) => p.name === '@rollgate/cli')!.files).toEqual(expect.arrayContaining(['bin/rollgate.js', 'dist/bin.js']));

  const local = tarballDependencies(packed, dir);
  const manifest = {
    name: 'rollgate-packaging-check',
    private: true,
    dependencies: {
      ...local.dependencies,
      // the peers, as a user installs them
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
    overrides: local.overrides,
  };
  await writeFile(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
  await writeFile(join(dir, 'check.cjs'), CHECK_CJS);
  await writeFile(join(dir, 'check.mjs'), CHECK_ESM);
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], dir, 150_000);
  const installedAt = Date.now();

  // npm resolved every @rollgate/* dependency to a tarball (no registry copy), without peer problems
  const tree = JSON.parse(await run('npm', ['ls', '--all', '--json'], dir, 60_000)) as { problems?: string[] };
  expect(tree.problems ?? []).toEqual([]);

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

  console.log(`packaging: built + packed in ${packedAt - started} ms, installed in ${installedAt - packedAt} ms, checked in ${Date.now() - installedAt} ms`);
});
