import http from 'node:http';
import express from 'express';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { MemoryFlagStore, RedisFlagStore } from '@rollgate/redis';
import { OutcomeRecorder } from '@rollgate/rollouts';
import { defineIdentity, adminRouter, type AdminRouter } from '@rollgate/express';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';

// The admin API beyond flags: rollout plans and their actions and series, explain, the event
// stream the dashboard follows, idempotent writes — over a real Redis.

const SECRET = 'admin-test-secret-that-is-32-bytes!!';
const jwtOptions = { secret: SECRET, algorithms: ['HS256' as const] };
const sign = (claims: Record<string, unknown>) => jwt.sign(claims, SECRET, { algorithm: 'HS256', expiresIn: 300 });
const ada = { Authorization: `Bearer ${sign({ sub: 'ada', roles: ['flag-admin'] })}` };
const bob = { Authorization: `Bearer ${sign({ sub: 'bob', roles: ['agent'] })}` };
const fastPayment = {
  state: 'ENABLED',
  variants: { on: true, off: false },
  defaultVariant: 'off',
  targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { $ref: 'vip' }, 'on', { fractional: [['on', 0], ['off', 100]] }] },
};
const plan = { flag: 'fast-payment', treatment: 'on', control: 'off', stages: [{ percent: 5 }, { percent: 50 }, { percent: 100, absolute: { maxErrorRate: 0.05 } }], guards: [{ metric: 'errors' }] };

let redis: TestRedis;
let store: RedisFlagStore;
let router: AdminRouter;
let app: express.Express;
let envCounter = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  store = new RedisFlagStore({ redis: redis.url, env: `admin-plans-${++envCounter}`, pollIntervalMs: 100 });
  await store.apply(
    [
      { kind: 'evaluator', key: 'vip', definition: { in: [{ var: 'tenant' }, ['atlas']] } },
      { kind: 'flag', key: 'fast-payment', definition: fastPayment },
    ],
    { actor: 'seed' },
  );
  router = adminRouter({ store, identity: defineIdentity({ jwt: jwtOptions }), authorize: (who) => who.context.roles.includes('flag-admin') });
  app = express().use(router);
});
afterEach(async () => {
  router.close();
  await store.close();
});

const splitOf = async () => (((await store.load()).flags['fast-payment'] as typeof fastPayment).targeting.if[4] as { fractional: [string, number][] }).fractional;

it('creates a plan (400 with the field for a bad one, nothing written), starts it, and acts on it; each step attributed to the caller', async () => {
  const bad = await request(app).post('/rollgate/admin/plans').set(ada).send({ ...plan, stages: [{ percent: 50 }, { percent: 5 }] }).expect(400);
  expect(bad.body).toEqual({ error: 'invalid', message: "stages[1].percent: must be above the previous stage's 50%: a plan only ramps up (rollback is its own action)" });
  await request(app).get('/rollgate/admin/plans').set(ada).expect(200, { plans: [] });
  await request(app).post('/rollgate/admin/plans').set(bob).send(plan).expect(403);

  const created = await request(app).post('/rollgate/admin/plans').set(ada).set('Rollgate-Reason', 'pilot went well').send(plan).expect(201);
  expect(created.body.plan).toMatchObject({ flag: 'fast-payment', state: 'draft', planVersion: 1 });
  expect(created.headers.etag).toBe('"1"');
  const started = await request(app).post('/rollgate/admin/plans/fast-payment/start').set(ada).set('If-Match', '"1"').expect(200);
  expect(started.body.plan).toMatchObject({ state: 'running', stage: 0, applied: true });
  expect(await splitOf()).toEqual([
    ['on', 5],
    ['off', 95],
  ]);
  // pinned to a version the caller no longer has: 409 with the current one, nothing done
  const stale = await request(app).post('/rollgate/admin/plans/fast-payment/advance').set(ada).set('If-Match', '"1"').expect(409);
  expect(stale.body).toMatchObject({ error: 'version_conflict', currentPlanVersion: started.body.plan.planVersion });
  // a rollback works from a stale page: If-Match is optional for plan actions
  await request(app).post('/rollgate/admin/plans/fast-payment/rollback').set(ada).set('Rollgate-Reason', 'support tickets').expect(200);
  expect(await splitOf()).toEqual([
    ['on', 0],
    ['off', 100],
  ]);
  const state = await request(app).post('/rollgate/admin/plans/fast-payment/resume').set(ada).expect(409);
  expect(state.body).toEqual({ error: 'plan_state', message: 'cannot resume the plan of "fast-payment": it is rolled_back (resume needs paused)' });
  const got = await request(app).get('/rollgate/admin/plans/fast-payment').set(ada).expect(200);
  expect(got.body.plan).toMatchObject({ state: 'rolled_back', last: { action: 'rollback', actor: 'ada', reason: 'support tickets' } });
  const trail = (await store.audit('fast-payment', { limit: 20 })).filter((e) => e.kind === 'plan').map((e) => [e.action, e.actor]);
  expect(trail).toEqual([
    ['rollback', 'ada'],
    ['start', 'ada'],
    ['create', 'ada'],
  ]);
});

it('serves a plan\'s per-arm series from the instances\' buckets, and refuses a bad window', async () => {
  await request(app).post('/rollgate/admin/plans').set(ada).send(plan).expect(201);
  // an instance recorded 20 s ago (the series covers complete seconds up to now)
  const recorder = new OutcomeRecorder({ store, now: () => Date.now() - 20_000, flushIntervalMs: 2 ** 31 - 1 });
  for (let i = 0; i < 40; i++) recorder.recordRequest([{ flagKey: 'fast-payment', variant: 'off', split: true, unit: `u${i}` }], { error: i < 2, durationMs: 30 });
  for (let i = 0; i < 10; i++) recorder.recordRequest([{ flagKey: 'fast-payment', variant: 'on', split: true, unit: `u${i}` }], { error: i < 3, durationMs: 300 });
  await recorder.close();
  const series = await request(app).get('/rollgate/admin/plans/fast-payment/series?seconds=60&step=10').set(ada).expect(200);
  expect(series.body).toMatchObject({ flag: 'fast-payment', step: 10, thresholds: null });
  expect(series.body.to - series.body.from).toBe(59);
  expect(series.body.points).toHaveLength(6);
  const withData = series.body.points.filter((p: { treatment: { requests: number } }) => p.treatment.requests > 0);
  expect(withData).toHaveLength(1);
  expect(withData[0]).toMatchObject({ treatment: { requests: 10, errors: 3 }, control: { requests: 40, errors: 2 }, targeted: { requests: 0, p99Ms: null } });
  expect(withData[0].treatment.p99Ms).toBeGreaterThanOrEqual(300);
  expect(withData[0].treatment.p99Ms).toBeLessThanOrEqual(375);
  const bad = await request(app).get('/rollgate/admin/plans/fast-payment/series?seconds=999999').set(ada).expect(400);
  expect(bad.body.message).toBe('seconds must be an integer from 10 to 3600, got "999999"');
  await request(app).get('/rollgate/admin/plans/nope/series').set(ada).expect(404);
});

it('explains a decision for a context, as `rollgate explain` does', async () => {
  const res = await request(app).post('/rollgate/admin/flags/fast-payment/explain').set(ada).send({ context: { targetingKey: 'bo', tenant: 'atlas' } }).expect(200);
  expect(res.body).toMatchObject({ version: 1, key: 'fast-payment', explanation: { result: { value: true, variant: 'on', reason: 'TARGETING_MATCH' }, summary: expect.any(String) } });
  expect(res.body.explanation.steps.length).toBeGreaterThan(0);
  await request(app).post('/rollgate/admin/flags/fast-payment/explain').set(ada).send({ context: ['not', 'an', 'object'] }).expect(400);
  await request(app).post('/rollgate/admin/flags/nope/explain').set(ada).send({ context: {} }).expect(404);
});

it('lists evaluators, and answers 404 / 405 for routes it does not have', async () => {
  const res = await request(app).get('/rollgate/admin/evaluators').set(ada).expect(200);
  expect(res.body).toEqual({ version: 1, $evaluators: { vip: { in: [{ var: 'tenant' }, ['atlas']] } } });
  await request(app).get('/rollgate/admin/nothing-here').set(ada).expect(404);
  const wrong = await request(app).delete('/rollgate/admin/plans').set(ada).expect(405);
  expect(wrong.headers.allow).toBe('GET, POST');
  await request(app).get('/rollgate/admin/nothing-here').expect(401); // and nothing without a caller
});

it('applies a write sent twice with the same Idempotency-Key once', async () => {
  const patch = () => request(app).patch('/rollgate/admin/flags/fast-payment').set(ada).set('If-Match', '"1"').set('Idempotency-Key', 'dashboard-kill-7').send({ state: 'DISABLED' });
  const first = await patch().expect(200, { version: 2 });
  const again = await patch().expect(200, { version: 2 }); // pinned to version 1, yet not a conflict: it already happened
  expect(again.headers.etag).toBe(first.headers.etag);
  expect((await store.audit('fast-payment')).filter((e) => e.writeId === 'dashboard-kill-7')).toHaveLength(1);
});

it('streams every change from anywhere — flag writes and plan writes — to an admin, and refuses the stream to others', async () => {
  const server = app.listen(0, '127.0.0.1');
  try {
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const port = (server.address() as { port: number }).port;
    const refused = await new Promise<number>((resolve) => http.get({ port, path: '/rollgate/admin/events', headers: bob }, (res) => resolve(res.statusCode!)).end());
    expect(refused).toBe(403);
    const events: string[] = [];
    let waiting: (() => void) | undefined;
    const response = await new Promise<http.IncomingMessage>((resolve) => http.get({ port, path: '/rollgate/admin/events', headers: ada }, resolve).end());
    expect([response.statusCode, response.headers['content-type']]).toEqual([200, 'text/event-stream; charset=utf-8']);
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      for (const m of chunk.matchAll(/^event: (\w+)\ndata: (.*)$/gm)) events.push(`${m[1]} ${m[2]}`);
      waiting?.();
    });
    const next = async (pattern: RegExp) => {
      while (!events.some((e) => pattern.test(e))) await new Promise<void>((resolve) => (waiting = resolve));
      return events.find((e) => pattern.test(e))!;
    };
    // on connecting: the state as it is
    expect(await next(/^flags /)).toMatch(/^flags \{"version":1,"revision":"[0-9a-f-]{36}"\}$/);
    // a write from elsewhere (the CLI, another instance): the store's change events
    const other = new RedisFlagStore({ redis: redis.url, env: store.keys.flags.split('{')[1]!.split('}')[0]!, pollIntervalMs: 60_000 });
    await other.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'cli' });
    await other.close();
    expect(await next(/^flags \{"version":2,/)).toMatch(/^flags \{"version":2,"revision":"[0-9a-f-]{36}"\}$/);
    await request(app).post('/rollgate/admin/plans').set(ada).send(plan).expect(201);
    expect(await next(/^plan /)).toBe('plan {"flag":"fast-payment","planVersion":1}');
    // a stream opened now announces the state as it is, as GET /flags and GET /plans answer it: a
    // client that read before its stream was open compares, and reads again only what moved
    const listed = (await request(app).get('/rollgate/admin/flags').set(ada).expect(200)).body as { version: number; revision: string };
    const late = await new Promise<http.IncomingMessage>((resolve) => http.get({ port, path: '/rollgate/admin/events', headers: ada }, resolve).end());
    const announced: string[] = [];
    late.setEncoding('utf8');
    await new Promise<void>((resolve) =>
      late.on('data', (chunk: string) => {
        for (const m of chunk.matchAll(/^event: (\w+)\ndata: (.*)$/gm)) announced.push(`${m[1]} ${m[2]}`);
        if (announced.some((e) => e.startsWith('flags ')) && announced.some((e) => e.startsWith('plan '))) resolve();
      }),
    );
    expect(announced.sort()).toEqual([`flags ${JSON.stringify({ version: listed.version, revision: listed.revision })}`, 'plan {"flag":"fast-payment","planVersion":1}']);
    router.close(); // ends the streams
    await Promise.all([response, late].map((r) => new Promise<void>((resolve) => r.once('end', () => resolve()))));
  } finally {
    server.close();
  }
});

it('answers 501 for plans over a store that is not Redis', async () => {
  const memory = express().use(adminRouter({ store: new MemoryFlagStore(), identity: defineIdentity({ jwt: jwtOptions }), authorize: () => true }));
  const res = await request(memory).get('/rollgate/admin/plans').set(ada).expect(501);
  expect(res.body.message).toBe('rollout plans live in Redis: this admin API runs over another store');
});

it("serves users' feedback per variant to admins (counts, negative share with its interval, latest comments as sent)", async () => {
  const recorder = new OutcomeRecorder({ store, flushIntervalMs: 2 ** 31 - 1 });
  recorder.recordFeedback({ flagKey: 'fast-payment', variant: 'on', split: true, sentiment: 'negative', comment: '<script>alert(1)</script>' });
  recorder.recordFeedback({ flagKey: 'fast-payment', variant: 'off', split: true, sentiment: 'positive' });
  await recorder.close();
  await request(app).get('/rollgate/admin/feedback/fast-payment').set(bob).expect(403);
  const res = await request(app).get('/rollgate/admin/feedback/fast-payment?variant=on&limit=10').set(ada).expect(200);
  expect(res.body).toMatchObject({ flag: 'fast-payment', reports: 2, latest: [{ variant: 'on', sentiment: 'negative', comment: '<script>alert(1)</script>' }] });
  expect(res.body.variants).toEqual([
    expect.objectContaining({ variant: 'off', positive: 1, negative: 0, total: 1 }),
    expect.objectContaining({ variant: 'on', positive: 0, negative: 1, total: 1, negativeShare: expect.objectContaining({ status: 'ok', share: 1 }) }),
  ]);
  await request(app).get('/rollgate/admin/feedback/fast-payment?limit=-1').set(ada).expect(400);
});
