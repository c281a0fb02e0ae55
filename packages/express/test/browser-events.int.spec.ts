import express, { type Express } from 'express';
import request from 'supertest';
import { RedisFlagStore, RollgateProvider } from '@rollgate/redis';
import { OutcomeReader, OutcomeRecorder, type ArmCounts } from '@rollgate/rollouts';
import { defineIdentity, ofrep, type OfrepRouter } from '@rollgate/express';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { bearer, jwtOptions, token } from '../../server/test/support/pilot-scenario';

// Events from browsers through the Express ofrep() router, end to end: a real redis-server, a
// real OutcomeRecorder flushing into per-second buckets, read back with an OutcomeReader. Every
// count asserted is what the SERVER evaluated for the caller — the body cannot move it.

let redis: TestRedis;
let store: RedisFlagStore;
let provider: RollgateProvider;
let recorder: OutcomeRecorder;
let reader: OutcomeReader;
let router: OfrepRouter;
let app: Express;
/** The recorder's clock (which second counts land in) and the rate limiter's. */
let clockMs = Date.UTC(2026, 11, 1, 9, 0, 0);
let limiterMs = 0;

// half the split gets the fast checkout; admins always do (a targeting rule: not randomized)
const fastPayment = {
  state: 'ENABLED',
  variants: { on: true, off: false },
  defaultVariant: 'off',
  targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { fractional: [['on', 50], ['off', 50]] }] },
  metadata: { clientVisible: true },
};
const serverOnly = { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' };

beforeAll(async () => {
  redis = await startRedis();
  const env = `browser-events-${process.pid}`;
  store = new RedisFlagStore({ redis: redis.url, env, pollIntervalMs: 60_000 });
  await store.putFlag('fast-payment', fastPayment as never, { actor: 'ada' });
  await store.putFlag('admin-tools', serverOnly as never, { actor: 'ada' });
  provider = new RollgateProvider({ store });
  await provider.initialize();
  recorder = new OutcomeRecorder({ store, now: () => clockMs, flushIntervalMs: 2 ** 31 - 1 });
  reader = new OutcomeReader(store);
  router = ofrep({
    provider,
    identity: defineIdentity({ jwt: jwtOptions }),
    cors: { origins: ['https://app.test'] },
    outcomes: { sink: recorder },
    tracking: { trackedEvents: ['checkout.completed', 'search.done'], maxEventsPerRequest: 5, perIdentity: { burst: 10, perSecond: 1 }, now: () => limiterMs },
  });
  app = express().use(router);
});

afterAll(async () => {
  router?.close();
  await recorder?.close();
  await provider?.onClose();
  await store?.close();
  await redis?.stop();
});

/** Users the split serves `variant`, found by evaluating the flag as it is stored. */
function usersServed(variant: 'on' | 'off', n: number, from = 0): string[] {
  const out: string[] = [];
  for (let i = from; out.length < n; i++) {
    const r = provider.snapshot.evaluate('fast-payment', { targetingKey: `user-${i}`, roles: ['customer'] });
    if (r.reason === 'SPLIT' && r.variant === variant) out.push(`user-${i}`);
  }
  return out;
}

const as = (sub: string, roles = ['customer']) => bearer(token({ sub, roles }));
const post = (headers: Record<string, string>, body: unknown) => request(app).post('/rollgate/v1/events').set(headers).send(body as object);

/** A fresh second for each test, so its counts are its own. */
function nextSecond(): number {
  clockMs += 10_000;
  return Math.floor(clockMs / 1000);
}

/** Flushes the recorder and reads every arm's counts of `flag` in `second`. */
async function arms(second: number, flag = 'fast-payment'): Promise<Record<string, Pick<ArmCounts, 'requests' | 'events'>>> {
  await recorder.flush();
  const [counts] = await reader.seconds(flag, second, second);
  return Object.fromEntries([...counts!.arms].map(([arm, c]) => [arm, { requests: c.requests, events: { ...c.events } }]));
}

it('counts an event in the arm the server evaluated for each caller: two users in the two split arms, and a pilot apart', async () => {
  const second = nextSecond();
  const [treated] = usersServed('on', 1);
  const [control] = usersServed('off', 1);
  const ok = await post(as(treated!), { events: [{ name: 'checkout.completed', value: 129.5 }] }).expect(202);
  expect(ok.body).toEqual({ accepted: 1, refused: 0, results: [{ status: 'accepted' }] });
  await post(as(control!), { events: [{ name: 'checkout.completed' }, { name: 'search.done' }] }).expect(202);
  await post(as('ada', ['admin']), { events: [{ name: 'checkout.completed' }] }).expect(202);
  expect(await arms(second)).toEqual({
    'split:on': { requests: 0, events: { 'checkout.completed': 1 } },
    'split:off': { requests: 0, events: { 'checkout.completed': 1, 'search.done': 1 } },
    'targeted:on': { requests: 0, events: { 'checkout.completed': 1 } },
  });
  // server-only flags are not attributed by default: what the browser was not served
  expect(await arms(second, 'admin-tools')).toEqual({});
  expect(await reader.units('fast-payment', 'split:off', second, second)).toBe(1);
});

it('a body naming a flag or variant the caller was not served changes nothing: the fields are ignored (and named), the count goes to the served arm', async () => {
  const second = nextSecond();
  const [control] = usersServed('off', 1, 100);
  const claim = await post(as(control!), {
    events: [{ name: 'checkout.completed', flagKey: 'fast-payment', variant: 'on', split: true }],
    flags: { 'fast-payment': 'on' },
    exposures: [{ flagKey: 'fast-payment', variant: 'on', split: true }],
    context: { targetingKey: usersServed('on', 1)[0], roles: ['admin'] },
  }).expect(202);
  expect(claim.body).toEqual({ accepted: 1, refused: 0, results: [{ status: 'accepted', ignored: ['flagKey', 'variant', 'split'] }], ignored: ['flags', 'exposures'] });
  expect(await arms(second)).toEqual({ 'split:off': { requests: 0, events: { 'checkout.completed': 1 } } });
});

it('refuses a name that is not allow-listed and does not count it; the others in the batch are counted', async () => {
  const second = nextSecond();
  const [user] = usersServed('on', 1, 200);
  const res = await post(as(user!), { events: [{ name: 'admin.deleted' }, { name: 'checkout.completed' }, { name: 'checkout.completed', value: 'lots' }] }).expect(202);
  expect(res.body).toEqual({
    accepted: 1,
    refused: 2,
    results: [
      { status: 'refused', reason: 'unknown_event', details: '"admin.deleted" is not an event this server accepts' },
      { status: 'accepted' },
      { status: 'refused', reason: 'invalid_value', details: '"value" must be a finite number' },
    ],
  });
  expect(await arms(second)).toEqual({ 'split:on': { requests: 0, events: { 'checkout.completed': 1 } } });
});

it('answers 401 without a verified token, 413 for a body over the limit, 400 for too many events or a bad body; none of them counted', async () => {
  const second = nextSecond();
  const [user] = usersServed('on', 1, 300);
  const one = { events: [{ name: 'checkout.completed' }] };
  const noToken = await post({}, one).expect(401);
  expect([noToken.body, noToken.headers['www-authenticate']]).toEqual([{ errorDetails: 'unauthorized' }, 'Bearer']);
  await post({ Authorization: 'Bearer nope' }, one).expect(401);
  const big = await post(as(user!), { events: [{ name: 'checkout.completed', note: 'x'.repeat(20_000) }] }).expect(413);
  expect(big.body).toEqual({ errorCode: 'BODY_TOO_LARGE', errorDetails: 'request body too large: send fewer events per request' });
  const many = await post(as(user!), { events: Array.from({ length: 6 }, () => ({ name: 'checkout.completed' })) }).expect(400);
  expect(many.body).toEqual({ errorCode: 'TOO_MANY_EVENTS', errorDetails: '6 events in one request; at most 5: send them in several requests' });
  const notJson = await request(app).post('/rollgate/v1/events').set({ ...as(user!), 'Content-Type': 'application/json' }).send('{"events":').expect(400);
  expect(notJson.body).toEqual({ errorCode: 'INVALID_BODY', errorDetails: 'request body is not valid JSON' });
  const noEvents = await post(as(user!), { event: { name: 'checkout.completed' } }).expect(400);
  expect(noEvents.body.errorDetails).toBe('"events" must be an array of { "name": "...", "value"?: number }');
  expect(await arms(second)).toEqual({});
});

it('a flood from one caller gets 429 with Retry-After; exactly the accepted events are counted, and another caller is not held back', async () => {
  const second = nextSecond();
  const [flooder] = usersServed('on', 1, 400);
  const [other] = usersServed('off', 1, 400);
  const five = { events: Array.from({ length: 5 }, () => ({ name: 'search.done' })) };
  const statuses: number[] = [];
  let refused: request.Response | undefined;
  for (let i = 0; i < 6; i++) {
    const res = await post(as(flooder!), five);
    statuses.push(res.status);
    if (res.status === 429) refused ??= res;
  }
  expect(statuses).toEqual([202, 202, 429, 429, 429, 429]);
  expect([refused!.headers['retry-after'], refused!.body]).toEqual(['5', { errorCode: 'RATE_LIMITED', errorDetails: 'too many events from this caller; none of these were counted: retry after 5 s' }]);
  await post(as(other!), five).expect(202);
  expect(await arms(second)).toEqual({ 'split:on': { requests: 0, events: { 'search.done': 10 } }, 'split:off': { requests: 0, events: { 'search.done': 5 } } });

  limiterMs += 3000; // 3 tokens back: a request of 3 passes, one of 5 does not
  await post(as(flooder!), { events: five.events.slice(0, 3) }).expect(202);
  await post(as(flooder!), five).expect(429);
  expect((await arms(second))['split:on']).toEqual({ requests: 0, events: { 'search.done': 13 } });
});

it('CORS like OFREP for listed origins, with Retry-After readable by the page', async () => {
  const preflight = await request(app).options('/rollgate/v1/events').set({ Origin: 'https://app.test', 'Access-Control-Request-Method': 'POST' }).expect(204);
  expect(preflight.headers).toMatchObject({
    'access-control-allow-origin': 'https://app.test',
    'access-control-allow-credentials': 'true',
    'access-control-allow-methods': 'POST, OPTIONS',
    'access-control-allow-headers': 'Content-Type, Authorization',
  });
  const [user] = usersServed('on', 1, 500);
  const res = await post({ ...as(user!), Origin: 'https://app.test' }, { events: [] }).expect(202);
  expect([res.headers['access-control-expose-headers'], res.headers.vary]).toEqual(['Retry-After', 'Origin, Authorization']);
  const other = await post({ ...as(user!), Origin: 'https://evil.test' }, { events: [] }).expect(202);
  expect(other.headers['access-control-allow-origin']).toBeUndefined();
});

it('without tracking the route answers 404 NOT_CONFIGURED; tracking without an outcome sink refuses to start', async () => {
  const plain = ofrep({ provider, identity: defineIdentity({ jwt: jwtOptions }), stream: false });
  const res = await request(express().use(plain)).post('/rollgate/v1/events').send({ events: [{ name: 'checkout.completed' }] }).expect(404);
  expect(res.body).toEqual({ errorCode: 'NOT_CONFIGURED', errorDetails: 'this server does not accept browser events' });
  expect(() => ofrep({ provider, stream: false, tracking: { trackedEvents: ['checkout.completed'] } })).toThrow('ofrep: tracking needs outcomes: { sink }');
  expect(() => ofrep({ provider, stream: false, outcomes: { sink: recorder }, tracking: { trackedEvents: [] } })).toThrow('tracking.trackedEvents must be a non-empty array');
});

describe("users' signals: page views, page errors, feedback, values", () => {
  it('counts each in the arm the server serves the caller; feedback is about the flag it names, in its served variant, the comment kept as text', async () => {
    const second = nextSecond();
    limiterMs += 60_000; // a full bucket
    const [treated] = usersServed('on', 1, 100);
    const [control] = usersServed('off', 1, 100);
    const ok = await post(as(treated!), {
      events: [
        { type: 'pageview' },
        { type: 'error', fingerprint: '0123456789abcdef', message: 'TypeError: x is undefined', source: 'error' },
        { type: 'error', fingerprint: '0123456789abcdef', message: 'the same again' }, // counted once per caller and window
        { type: 'feedback', flag: 'fast-payment', sentiment: 'negative', comment: '<b>froze</b> \u001b[2J', variant: 'off' },
        { name: 'checkout.completed', value: 4200.4 },
      ],
    }).expect(202);
    expect(ok.body.results.map((r: { status: string; reason?: string }) => r.reason ?? r.status)).toEqual(['accepted', 'accepted', 'duplicate', 'accepted', 'accepted']);
    expect(ok.body.results[3].ignored).toEqual(['variant']); // the client's claim is not used
    await post(as(control!), { events: [{ type: 'pageview' }, { type: 'feedback', flag: 'fast-payment', sentiment: 'positive' }, { name: 'checkout.completed', value: 5000 }] }).expect(202);
    // feedback about a flag this caller is not served from here: refused, not counted
    const notServed = await post(as(control!), { events: [{ type: 'feedback', flag: 'admin-tools', sentiment: 'negative' }, { type: 'feedback', flag: 'fast-payment', sentiment: 'angry' }] }).expect(202);
    expect(notServed.body.results.map((r: { reason: string }) => r.reason)).toEqual(['not_served', 'invalid_feedback']);
    await recorder.flush();

    const [counts] = await reader.seconds('fast-payment', second, second);
    const on = counts!.arms.get('split:on') as ArmCounts;
    const off = counts!.arms.get('split:off') as ArmCounts;
    expect(on.events).toEqual({ $pageview: 1, $client_error: 1, '$feedback.negative': 1, 'checkout.completed': 1 });
    expect(off.events).toEqual({ $pageview: 1, '$feedback.positive': 1, 'checkout.completed': 1 });
    expect(on.values['checkout.completed']).toMatchObject({ n: 1, sum: 4200, sumSquares: 4200 * 4200 });
    const { readFeedback } = await import('@rollgate/rollouts');
    const feedback = await readFeedback(store, 'fast-payment');
    expect(feedback.latest.find((e) => e.variant === 'on')).toMatchObject({ sentiment: 'negative', comment: '<b>froze</b> \u001b[2J', unit: treated });
    expect(feedback.variants.map((v) => [v.variant, v.negative, v.positive])).toEqual([
      ['off', 0, 1],
      ['on', 1, 0],
    ]);
  });
});
