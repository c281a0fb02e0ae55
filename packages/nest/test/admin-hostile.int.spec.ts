import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { RedisFlagStore } from '@rollgate/redis';
import { RollgateModule } from '@rollgate/nest';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { bearer, jwtOptions, recordingLogger, token } from '../../server/test/support/pilot-scenario';

// The admin controller against hostile bodies, as the Express router (packages/express/test/
// admin-hostile.int.spec.ts), over a real redis-server: 400 before the store sees them, nothing
// written (same version, same audit).

const flagAdmin = bearer(token({ sub: 'alice', roles: ['flag-admin'] }));
const theme = { state: 'ENABLED', variants: { classic: 'classic', bold: 'bold' }, defaultVariant: 'classic' };
const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
const env = `nest-admin-hostile-${process.pid}`;

let redis: TestRedis;
let store: RedisFlagStore;
let app: INestApplication;

beforeAll(async () => {
  redis = await startRedis();
  store = new RedisFlagStore({ redis: redis.url, env });
  await store.putFlag('checkout-theme', theme, { actor: 'seed' });
  const moduleRef = await Test.createTestingModule({
    imports: [RollgateModule.forRoot({ store: { redis: redis.url, env }, jwt: jwtOptions, logger: recordingLogger(), admin: { authorize: (who) => (who.context.roles as string[]).includes('flag-admin') } })],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
});
afterAll(async () => {
  await app?.close();
  await store?.close();
  await redis?.stop();
});

async function observed() {
  const set = await store.load();
  return { version: set.version, flags: set.flags, evaluators: set.evaluators, audit: await store.audit(undefined, { limit: 1000 }) };
}

it('answers 400 to a deeply nested body (was 500: re-serializing what Nest parsed overflowed), writing nothing', async () => {
  const before = await observed();
  // 40 000 levels: within Nest's own 100 kB parser limit, far beyond what JSON.stringify can recurse
  const put = `{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on","metadata":{"x":${nested(40_000)}}}`;
  for (const type of ['application/json', 'text/plain']) {
    for (const [method, path, body] of [
      ['put', '/rollgate/admin/flags/checkout-theme', put],
      ['patch', '/rollgate/admin/flags/checkout-theme', `{"targeting":${nested(40_000)}}`],
      ['put', '/rollgate/admin/evaluators/deep', `{"in":${nested(40_000)}}`],
    ] as const) {
      const res = await request(app.getHttpServer())[method](path).set(flagAdmin).set('If-Match', '"1"').set('Content-Type', type).send(body);
      expect({ type, path, status: res.status, body: res.body as unknown }).toEqual({ type, path, status: 400, body: { error: 'invalid', message: 'the request body nests objects or arrays deeper than 64 levels' } });
    }
  }
  expect(await observed()).toEqual(before);
});

it('refuses PUT with the JSON body null, writing nothing: deleting is DELETE only', async () => {
  const before = await observed();
  for (const type of ['application/json', 'text/plain']) {
    await request(app.getHttpServer()).put('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '"1"').set('Content-Type', type).send('null').expect(400);
  }
  expect(await observed()).toEqual(before);
});
