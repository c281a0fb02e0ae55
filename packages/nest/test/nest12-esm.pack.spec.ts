import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packPackages, requireRegistry, run, tarballDependencies } from '../../../test/support/packaging';

// Packaging smoke test for Nest 12 (ESM-only): `npm pack` core, redis, server and nest, install
// the tarballs with Nest 12 from the npm registry into a "type": "module" project, boot an app
// written in plain ESM JavaScript and check 200 / 403 / 401 with fetch. Runs in CI with the rest
// of the suite (~20-40 s, npm install dominates). Without the registry it FAILS; it never skips.
// Exclude it locally with: npx jest --selectProjects nest --testPathIgnorePatterns nest12
// (Every package, CommonJS and ESM, with Nest 11: test/packaging.spec.ts.)

const PACKAGES = ['core', 'redis', 'rollouts', 'server', 'nest'];

const flags = {
  beta: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ in: ['pilot', { var: 'roles' }] }, 'on', 'off'] } },
  'checkout-variant': {
    state: 'ENABLED',
    variants: { classic: 'classic', fast: 'fast' },
    defaultVariant: 'classic',
    targeting: { if: [{ '==': [{ var: 'tenant' }, 'atlas'] }, 'fast', null] },
    metadata: { clientVisible: true },
  },
};

// Plain JavaScript: decorators applied with Reflect.decorate, as compiled TypeScript does.
const APP = `
import 'reflect-metadata';
import { Controller, Get, Module, UseGuards } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import jwt from 'jsonwebtoken';
import { MemoryFlagStore } from '@rollgate/redis';
import { FeatureValue, RequireFeature, RollgateModule } from '@rollgate/nest';

const secret = 'smoke-test-secret-that-is-32-bytes-or-more';
const flags = ${JSON.stringify(flags)};

class AppController {
  open() { return { open: true }; }
  gated() { return { gated: true }; }
  variant(variant) { return { variant }; }
}
const decorate = (key, decorators) =>
  Object.defineProperty(AppController.prototype, key, Reflect.decorate(decorators, AppController.prototype, key, Object.getOwnPropertyDescriptor(AppController.prototype, key)));
decorate('open', [Get('open')]);
decorate('gated', [Get('gated'), RequireFeature('beta')]);
FeatureValue('checkout-variant', 'classic')(AppController.prototype, 'variant', 0);
decorate('variant', [Get('variant')]);
Reflect.decorate([Controller()], AppController);

class AppModule {}
Reflect.decorate(
  [Module({ imports: [RollgateModule.forRoot({ store: new MemoryFlagStore({ initial: { flags } }), jwt: { secret, algorithms: ['HS256'] }, ofrep: {} })], controllers: [AppController] })],
  AppModule,
);

const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
await app.listen(0, '127.0.0.1');
const url = await app.getUrl();
const token = (claims) => jwt.sign(claims, secret, { algorithm: 'HS256', expiresIn: 60 });
const call = async (path, claims, init = {}) => {
  const headers = { ...(claims ? { authorization: 'Bearer ' + token(claims) } : {}), ...(init.headers ?? {}) };
  const res = await fetch(url + path, { ...init, headers });
  return [res.status, await res.json()];
};
const results = {
  nest: (await import('@nestjs/core/package.json', { with: { type: 'json' } })).default.version,
  open: await call('/open'),
  pilot: await call('/gated', { sub: 'ada', roles: ['pilot'] }),
  customer: await call('/gated', { sub: 'bo', roles: ['customer'] }),
  anonymous: await call('/gated'),
  variant: await call('/variant', { sub: 'cy', tenant: 'atlas' }),
  ofrep: await call('/ofrep/v1/evaluate/flags', { sub: 'cy', tenant: 'atlas' }, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }),
};
await app.close();
console.log(JSON.stringify(results));
`;

jest.setTimeout(150_000);

it('packs core, redis, server and nest, installs them with Nest 12 (ESM) and guards a route: 200 / 403 / 401', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rollgate-nest12-'));
  try {
    await requireRegistry(dir, 'this packaging test installs Nest 12 from it');
    const packed = await packPackages(PACKAGES, join(dir, 'tarballs'));
    expect(packed.map((p) => p.name).sort()).toEqual(PACKAGES.map((p) => `@rollgate/${p}`).sort());
    for (const p of packed) expect(p.files).toContain('dist/index.js');

    const local = tarballDependencies(packed, dir);
    const manifest = {
      name: 'rollgate-nest12-smoke',
      private: true,
      type: 'module',
      dependencies: {
        ...local.dependencies,
        '@nestjs/common': '^12.0.0',
        '@nestjs/core': '^12.0.0',
        '@nestjs/platform-express': '^12.0.0',
        '@openfeature/server-sdk': '^1.23.0',
        ioredis: '^6.0.0',
        jsonwebtoken: '^9.0.3',
        'reflect-metadata': '^0.2.2',
        rxjs: '^7.8.0',
      },
      // the packages depend on each other by version: use these tarballs, never the registry
      overrides: local.overrides,
    };
    await writeFile(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
    await writeFile(join(dir, 'app.mjs'), APP);
    await run('npm', ['install', '--no-audit', '--no-fund'], dir, 120_000);

    const out = await run(process.execPath, ['app.mjs'], dir, 30_000);
    const results = JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(results.nest).toMatch(/^12\./);
    expect(results.open).toEqual([200, { open: true }]);
    expect(results.pilot).toEqual([200, { gated: true }]);
    expect(results.customer).toEqual([403, { error: 'feature_not_enabled' }]);
    expect(results.anonymous).toEqual([401, { error: 'unauthorized' }]);
    expect(results.variant).toEqual([200, { variant: 'fast' }]);
    expect(results.ofrep).toEqual([200, expect.objectContaining({ flags: [{ key: 'checkout-variant', value: 'fast', variant: 'fast', reason: 'TARGETING_MATCH' }] })]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
