import 'reflect-metadata';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { ConfigError, MemoryFlagStore, RollgateProvider } from '@rollgate/redis';
import { RollgateModule, type RollgateModuleOptions } from '@rollgate/nest';
import { bearer, jwtOptions, recordingLogger, token } from '../../server/test/support/pilot-scenario';

// The admin controller answers as @rollgate/express's adminRouter() does (the same cases as
// packages/express/test/admin.router.spec.ts): authorization, If-Match versions, validation
// errors, prototype-pollution payloads, audit and revert, over the store's one write path.

const flagAdmin = bearer(token({ sub: 'alice', roles: ['flag-admin'] }));
const agent = bearer(token({ sub: 'bob', roles: ['agent'] }));
const theme = { state: 'ENABLED', variants: { classic: 'classic', bold: 'bold' }, defaultVariant: 'classic' };
const isFlagAdmin = (who: { context: Record<string, unknown> }) => (who.context.roles as string[]).includes('flag-admin');

@Controller()
class PingController {
  @Get('ping')
  ping() {
    return { pong: true };
  }
}

let store: MemoryFlagStore;
const apps: INestApplication[] = [];

async function boot(rollgate: ReturnType<typeof RollgateModule.forRoot>): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [rollgate], controllers: [PingController] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  apps.push(app);
  await app.init();
  return app;
}

function options(admin: RollgateModuleOptions['admin'], extra: Partial<RollgateModuleOptions> = {}): RollgateModuleOptions {
  return { store, jwt: jwtOptions, logger: recordingLogger(), admin, ...extra };
}

let app: INestApplication;
const api = () => request(app.getHttpServer());

beforeEach(async () => {
  store = new MemoryFlagStore();
  await store.putFlag('checkout-theme', theme, { actor: 'seed' });
  app = await boot(RollgateModule.forRoot(options({ authorize: isFlagAdmin })));
});
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
  await store.close();
});

it('refuses to be defined without an authorize callback, or without a store to write to', async () => {
  expect(() => RollgateModule.forRoot(options({} as never))).toThrow(ConfigError);
  expect(() => RollgateModule.forRoot(options({} as never))).toThrow('admin.authorize(identity) is required; without it nobody may change flags');
  expect(() => RollgateModule.forRoot(options(null as never))).toThrow('admin must be an object');
  const provider = new RollgateProvider({ store });
  expect(() => RollgateModule.forRoot({ provider, jwt: jwtOptions, admin: { authorize: () => true } })).toThrow('admin needs `store`');
  // forRootAsync: registered, but the factory gives no authorize → the app does not start
  await expect(boot(RollgateModule.forRootAsync({ useFactory: () => ({ store, jwt: jwtOptions, logger: recordingLogger() }), admin: true }))).rejects.toThrow(
    'the factory returned no `admin: { authorize(identity) }`',
  );
  await expect(boot(RollgateModule.forRootAsync({ useFactory: () => options({ authorize: () => true }) }))).rejects.toThrow('add `admin: true`');
});

it('answers 401 without a token and 403 for callers authorize() rejects, changing nothing', async () => {
  await api().get('/rollgate/admin/flags').expect(401, { error: 'unauthorized' }).expect('WWW-Authenticate', 'Bearer');
  await api().put('/rollgate/admin/flags/checkout-theme').set('If-Match', '"1"').send(theme).expect(401);
  await api().put('/rollgate/admin/flags/checkout-theme').set(agent).set('If-Match', '"1"').send(theme).expect(403, { error: 'forbidden' });
  await api().get('/rollgate/admin/audit').set(agent).expect(403);
  const throwing = await boot(RollgateModule.forRoot(options({ authorize: () => { throw new Error('db down'); } })));
  await request(throwing.getHttpServer()).delete('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '1').expect(403);
  const asyncNo = await boot(RollgateModule.forRoot(options({ authorize: async () => false })));
  await request(asyncNo.getHttpServer()).get('/rollgate/admin/flags').set(flagAdmin).expect(403);
  expect((await store.load()).version).toBe(1);
  await api().get('/ping').expect(200, { pong: true }); // the rest of the app is untouched
});

it('reads flags with their version as ETag, and writes with If-Match, attributed to the caller', async () => {
  const got = await api().get('/rollgate/admin/flags/checkout-theme').set(flagAdmin).expect(200);
  expect(got.body).toEqual({ version: 1, key: 'checkout-theme', definition: theme });
  expect(got.headers.etag).toBe('"1"');
  expect(got.headers['cache-control']).toBe('no-store');
  const patched = await api()
    .patch('/rollgate/admin/flags/checkout-theme')
    .set(flagAdmin)
    .set('If-Match', got.headers.etag!)
    .set('Rollgate-Reason', 'bold for the sale')
    .send({ defaultVariant: 'bold' })
    .expect(200, { version: 2 });
  expect(patched.headers.etag).toBe('"2"');
  const [entry] = await store.audit('checkout-theme', { limit: 1 });
  expect(entry).toMatchObject({ actor: 'alice', action: 'patch', reason: 'bold for the sale', version: 2 });
  const list = await api().get('/rollgate/admin/flags').set(flagAdmin).expect(200);
  expect(list.body).toMatchObject({ version: 2, $evaluators: {} });
  expect(list.body.flags['checkout-theme'].defaultVariant).toBe('bold');
  await api().get('/rollgate/admin/flags/nope').set(flagAdmin).expect(404);
});

it('answers 409 to a stale If-Match and 428 without one, writing nothing', async () => {
  await store.patchFlag('checkout-theme', { defaultVariant: 'bold' }, { actor: 'someone-else' }); // now v2
  const stale = await api().put('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '"1"').send(theme).expect(409);
  expect(stale.body).toMatchObject({ error: 'version_conflict', currentVersion: 2 });
  expect(stale.headers.etag).toBe('"2"');
  await api().patch('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '"1"').send({ state: 'DISABLED' }).expect(409);
  await api().post('/rollgate/admin/revert').set(flagAdmin).set('If-Match', '1').send({ key: 'checkout-theme' }).expect(409);
  await api().put('/rollgate/admin/flags/checkout-theme').set(flagAdmin).send(theme).expect(428);
  await api().put('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', 'yesterday').send(theme).expect(400);
  expect((await store.load()).flags['checkout-theme']).toMatchObject({ defaultVariant: 'bold', state: 'ENABLED' });
  expect((await store.load()).version).toBe(2);
});

it('answers 400 with the path-qualified message for invalid input, writing nothing', async () => {
  const res = await api()
    .put('/rollgate/admin/flags/fast-payment')
    .set(flagAdmin)
    .set('If-Match', '1')
    .send({ state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'nope' })
    .expect(400);
  expect(res.body.issues).toEqual(['flags.fast-payment.defaultVariant: "nope" is not one of the variants on, off']);
  // malformed JSON: refused by Nest's body parser (application/json) or by the controller (other types)
  await api().put('/rollgate/admin/flags/x').set(flagAdmin).set('If-Match', '1').set('Content-Type', 'application/json').send('{"state":').expect(400, { error: 'invalid', message: 'request body is not valid JSON' });
  await api().put('/rollgate/admin/flags/x').set(flagAdmin).set('If-Match', '1').set('Content-Type', 'text/plain').send('{"state":').expect(400, { error: 'invalid', message: 'request body is not valid JSON' });
  await api().post('/rollgate/admin/revert').set(flagAdmin).set('If-Match', '1').send({ toVersion: 1 }).expect(400);
  await api().post('/rollgate/admin/revert').set(flagAdmin).set('If-Match', '1').send({ key: 'checkout-theme', toVersion: 'one' }).expect(400);
  await api().get('/rollgate/admin/audit?limit=5000').set(flagAdmin).expect(400);
  expect((await store.load()).version).toBe(1);
});

it('refuses bodies over the limit with 413', async () => {
  const small = await boot(RollgateModule.forRoot(options({ authorize: isFlagAdmin, bodyLimit: 200 })));
  const big = { ...theme, metadata: { note: 'x'.repeat(500) } };
  await request(small.getHttpServer()).put('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '1').send(big).expect(413, { error: 'too_large', message: 'request body too large' });
  // Nest's own JSON parser (100kb) refuses first, with the same answer
  await api()
    .put('/rollgate/admin/flags/checkout-theme')
    .set(flagAdmin)
    .set('If-Match', '1')
    .send({ ...theme, metadata: { note: 'x'.repeat(200 * 1024) } })
    .expect(413, { error: 'too_large', message: 'request body too large' });
  expect((await store.load()).version).toBe(1);
});

it('refuses prototype-pollution payloads', async () => {
  const body = '{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on","__proto__":{"polluted":true}}';
  for (const type of ['application/json', 'text/plain']) {
    const res = await api().put('/rollgate/admin/flags/evil').set(flagAdmin).set('If-Match', '1').set('Content-Type', type).send(body).expect(400);
    expect(res.body.message).toContain('the key "__proto__" is forbidden');
  }
  await api().patch('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '1').set('Content-Type', 'application/json').send('{"__proto__":{"polluted":true}}').expect(400);
  await api().patch('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '1').set('Content-Type', 'application/json').send('{"constructor":{"prototype":{"polluted":true}}}').expect(400);
  await api().put('/rollgate/admin/evaluators/constructor').set(flagAdmin).set('If-Match', '1').send({ in: [1, [1]] }).expect(400);
  await api().put('/rollgate/admin/flags/__proto__').set(flagAdmin).set('If-Match', '1').send(theme).expect(400);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect((await store.load()).version).toBe(1);
});

it('manages evaluators, shows the audit and reverts', async () => {
  await api().put('/rollgate/admin/evaluators/vip').set(flagAdmin).set('If-Match', '1').send({ in: [{ var: 'tenant' }, ['atlas']] }).expect(200, { version: 2 });
  await api().get('/rollgate/admin/evaluators/vip').set(flagAdmin).expect(200, { version: 2, key: 'vip', definition: { in: [{ var: 'tenant' }, ['atlas']] } });
  await api().delete('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '2').expect(200, { version: 3 });
  await api().get('/rollgate/admin/flags/checkout-theme').set(flagAdmin).expect(404);
  await api().post('/rollgate/admin/revert').set(flagAdmin).set('If-Match', '3').send({ key: 'checkout-theme', toVersion: 1 }).expect(200, { version: 4 });
  expect((await store.load()).flags['checkout-theme']).toEqual(theme);
  const audit = await api().get('/rollgate/admin/audit?key=checkout-theme&limit=2').set(flagAdmin).expect(200);
  expect(audit.body.entries.map((e: { action: string; actor: string }) => [e.action, e.actor])).toEqual([
    ['revert', 'alice'],
    ['remove', 'alice'],
  ]);
  await api().delete('/rollgate/admin/evaluators/vip').set(flagAdmin).set('If-Match', '4').expect(200, { version: 5 });
});

it('serves under admin.path and a global prefix, registered by forRootAsync', async () => {
  const moduleRef = await Test.createTestingModule({
    imports: [RollgateModule.forRootAsync({ useFactory: () => options({ authorize: isFlagAdmin }), admin: { path: 'ops' } })],
  }).compile();
  const prefixed = moduleRef.createNestApplication({ logger: false });
  apps.push(prefixed);
  prefixed.setGlobalPrefix('api');
  await prefixed.init();
  await request(prefixed.getHttpServer()).get('/api/ops/rollgate/admin/flags/checkout-theme').set(flagAdmin).expect(200);
  await request(prefixed.getHttpServer()).patch('/api/ops/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '1').send({ state: 'DISABLED' }).expect(200, { version: 2 });
  await request(prefixed.getHttpServer()).get('/rollgate/admin/flags').set(flagAdmin).expect(404);
});

describe('over Redis: plans, explain and the event stream, as in Express', () => {
  it('creates and starts a plan, explains a decision, streams changes, and ends the stream when the app closes', async () => {
    const { startRedis } = await import('../../redis/test/support/redis-server');
    const { RedisFlagStore } = await import('@rollgate/redis');
    const redis = await startRedis();
    const redisStore = new RedisFlagStore({ redis: redis.url, env: 'nest-admin-plans', pollIntervalMs: 100 });
    try {
      const fast = { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { fractional: [['on', 0], ['off', 100]] } };
      await redisStore.putFlag('fast-payment', fast, { actor: 'seed' });
      const nest = await boot(RollgateModule.forRoot(options({ authorize: isFlagAdmin }, { store: redisStore })));
      const http = () => request(nest.getHttpServer());
      const plan = { flag: 'fast-payment', treatment: 'on', control: 'off', stages: [{ percent: 10 }, { percent: 100, absolute: { maxErrorRate: 0.05 } }] };
      await http().post('/rollgate/admin/plans').set(agent).send(plan).expect(403);
      expect((await http().post('/rollgate/admin/plans').set(flagAdmin).send(plan).expect(201)).body.plan).toMatchObject({ state: 'draft', planVersion: 1 });
      expect((await http().post('/rollgate/admin/plans/fast-payment/start').set(flagAdmin).expect(200)).body.plan).toMatchObject({ state: 'running', applied: true });
      expect(((await redisStore.load()).flags['fast-payment'] as typeof fast).targeting.fractional).toEqual([
        ['on', 10],
        ['off', 90],
      ]);
      const explained = await http().post('/rollgate/admin/flags/fast-payment/explain').set(flagAdmin).send({ context: { targetingKey: 'u1' } }).expect(200);
      expect(explained.body.explanation.result).toMatchObject({ reason: 'SPLIT' });
      await http().delete('/rollgate/admin/plans').set(flagAdmin).expect(405);

      await new Promise<void>((resolve) => nest.getHttpServer().listen(0, '127.0.0.1', () => resolve()));
      const port = (nest.getHttpServer().address() as { port: number }).port;
      const { get } = await import('node:http');
      const stream = await new Promise<import('node:http').IncomingMessage>((resolve) => get({ port, path: '/rollgate/admin/events', headers: flagAdmin }, resolve).end());
      expect([stream.statusCode, stream.headers['content-type']]).toEqual([200, 'text/event-stream; charset=utf-8']);
      let text = '';
      stream.setEncoding('utf8');
      const heard = new Promise<void>((resolve) => stream.on('data', (chunk: string) => ((text += chunk), /event: plan\n/.test(text) && resolve())));
      await http().post('/rollgate/admin/plans/fast-payment/pause').set(flagAdmin).expect(200);
      await heard;
      expect(text).toMatch(/event: plan\ndata: \{"flag":"fast-payment","planVersion":\d+\}/);
      const ended = new Promise<void>((resolve) => stream.once('end', () => resolve()));
      await nest.close(); // ends open streams: the server can close
      apps.splice(apps.indexOf(nest), 1);
      await ended;
    } finally {
      await redisStore.close();
      await redis.stop();
    }
  });
});
