import express, { type Express } from 'express';
import request from 'supertest';
import { RedisFlagStore } from '@rollgate/redis';
import { defineIdentity, adminRouter } from '@rollgate/express';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { bearer, jwtOptions, token } from '../../server/test/support/pilot-scenario';

// Hostile request bodies at the admin API, over a real redis-server: refused with 400 before the
// store sees them, and nothing is written (same version, same audit).

const flagAdmin = bearer(token({ sub: 'alice', roles: ['flag-admin'] }));
const theme = { state: 'ENABLED', variants: { classic: 'classic', bold: 'bold' }, defaultVariant: 'classic' };
/** JSON text nesting `levels` arrays: a few thousand overflow JSON.stringify's stack. */
const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;

let redis: TestRedis;
let store: RedisFlagStore;
let app: Express;
let envCounter = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  store = new RedisFlagStore({ redis: redis.url, env: `express-admin-hostile-${process.pid}-${++envCounter}` });
  await store.putFlag('checkout-theme', theme, { actor: 'seed' });
  app = express().use(adminRouter({ store, identity: defineIdentity({ jwt: jwtOptions }), authorize: (who) => who.context.roles.includes('flag-admin') }));
});
afterEach(async () => {
  await store.close();
});

/** The store's state as a caller could observe it: version, definitions, audit. */
async function observed() {
  const set = await store.load();
  return { version: set.version, flags: set.flags, evaluators: set.evaluators, audit: await store.audit(undefined, { limit: 1000 }) };
}

it('answers 400 to a deeply nested body (was 500: JSON.stringify overflowed), writing nothing', async () => {
  const before = await observed();
  const put = `{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on","metadata":{"x":${nested(50_000)}}}`;
  for (const [method, path, body] of [
    ['put', '/rollgate/admin/flags/deep', put],
    ['put', '/rollgate/admin/flags/checkout-theme', put],
    ['patch', '/rollgate/admin/flags/checkout-theme', `{"targeting":${nested(50_000)}}`],
    ['put', '/rollgate/admin/evaluators/deep', `{"in":${nested(50_000)}}`],
  ] as const) {
    const res = await request(app)[method](path).set(flagAdmin).set('If-Match', '"1"').set('Content-Type', 'application/json').send(body);
    expect({ path, status: res.status, body: res.body as unknown }).toEqual({ path, status: 400, body: { error: 'invalid', message: 'the request body nests objects or arrays deeper than 64 levels' } });
  }
  expect(await observed()).toEqual(before);
});

it('refuses PUT with the JSON body null (it deleted the flag, audited as "put"): deleting is DELETE only', async () => {
  const before = await observed();
  for (const path of ['/rollgate/admin/flags/checkout-theme', '/rollgate/admin/evaluators/none']) {
    const kind = path.includes('/flags/') ? 'flag' : 'evaluator';
    const res = await request(app).put(path).set(flagAdmin).set('If-Match', '"1"').set('Content-Type', 'application/json').send('null').expect(400);
    expect(res.body).toEqual({ error: 'invalid', message: `PUT needs the ${kind} definition as its JSON body (got null); to delete the ${kind}, send DELETE` });
  }
  // an empty body reads as {}: an invalid definition, refused by validation
  await request(app).put('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '"1"').expect(400);
  expect(await observed()).toEqual(before);
  // an anonymous caller still gets 401 first, and DELETE still deletes
  await request(app).put('/rollgate/admin/flags/checkout-theme').set('Content-Type', 'application/json').send('null').expect(401);
  await request(app).delete('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '"1"').expect(200, { version: 2 });
  expect((await store.audit('checkout-theme', { limit: 1 }))[0]).toMatchObject({ action: 'remove', actor: 'alice', after: null });
});
