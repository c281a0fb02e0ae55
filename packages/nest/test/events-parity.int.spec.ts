import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import express from 'express';
import request from 'supertest';
import { RollgateProvider, type RedisFlagStore } from '@rollgate/redis';
import { OutcomeReader, OutcomeRecorder } from '@rollgate/rollouts';
import { defineIdentity, ofrep, type OfrepRouter } from '@rollgate/express';
import { RollgateModule } from '@rollgate/nest';
import type { TrackingOptions } from '@rollgate/server';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { admin, bearer, customer, jwtOptions, recordingLogger, seed, token } from '../../server/test/support/pilot-scenario';

// Browser events through the Nest OFREP controller: counted in the arm the server evaluated (real
// Redis, real OutcomeRecorder), and answered exactly as the Express ofrep() router answers — the
// same status, body bytes and headers — for the same requests, refusals and floods included.

const env = `nest-events-parity-${process.pid}`;
const tracking = (now: () => number): TrackingOptions => ({
  trackedEvents: ['checkout.completed', 'search.done'],
  maxEventsPerRequest: 5,
  perIdentity: { burst: 10, perSecond: 1 },
  now,
});
const ofrepOptions = { cors: { origins: ['https://app.test'] }, clientAttributes: ['locale'], stream: false as const };
const HEADERS = [
  'content-type',
  'content-length',
  'cache-control',
  'vary',
  'www-authenticate',
  'retry-after',
  'etag',
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-expose-headers',
  'access-control-allow-methods',
  'access-control-allow-headers',
];
const splitFlag = {
  state: 'ENABLED',
  variants: { on: true, off: false },
  defaultVariant: 'off',
  targeting: { fractional: [['on', 50], ['off', 50]] },
  metadata: { clientVisible: true },
};

let redis: TestRedis;
let writer: RedisFlagStore;
let provider: RollgateProvider;
let router: OfrepRouter;
let plainRouter: OfrepRouter;
let expressApp: express.Express;
let plainExpressApp: express.Express;
let nestApp: INestApplication;
let plainNestApp: INestApplication;
let expressRecorder: OutcomeRecorder;
let nestRecorder: OutcomeRecorder;
// each adapter counts into its own seconds, so Redis tells their counts apart
const clocks = { express: Date.UTC(2026, 11, 1, 9, 0, 0), nest: Date.UTC(2026, 11, 1, 10, 0, 0) };
const limiter = { express: 0, nest: 0 };

beforeAll(async () => {
  redis = await startRedis();
  writer = await seed(redis.url, env);
  await writer.putFlag('split-checkout', splitFlag as never, { actor: 'test' });
  provider = new RollgateProvider({ store: { redis: redis.url, env } });
  await provider.initialize();
  expressRecorder = new OutcomeRecorder({ store: writer, now: () => clocks.express, flushIntervalMs: 2 ** 31 - 1 });
  nestRecorder = new OutcomeRecorder({ store: writer, now: () => clocks.nest, flushIntervalMs: 2 ** 31 - 1 });

  router = ofrep({ provider, identity: defineIdentity({ jwt: jwtOptions }), ...ofrepOptions, outcomes: { sink: expressRecorder }, tracking: tracking(() => limiter.express) });
  expressApp = express().use(router);
  plainRouter = ofrep({ provider, identity: defineIdentity({ jwt: jwtOptions }), ...ofrepOptions });
  plainExpressApp = express().use(plainRouter);

  const nest = async (options: object) => {
    const moduleRef = await Test.createTestingModule({ imports: [RollgateModule.forRoot({ store: { redis: redis.url, env }, jwt: jwtOptions, logger: recordingLogger(), ...options })] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    return app;
  };
  nestApp = await nest({ ofrep: { ...ofrepOptions, tracking: tracking(() => limiter.nest) }, outcomes: { sink: nestRecorder } });
  plainNestApp = await nest({ ofrep: ofrepOptions, outcomes: { sink: nestRecorder } });
});

afterAll(async () => {
  await nestApp?.close();
  await plainNestApp?.close();
  router?.close();
  plainRouter?.close();
  await expressRecorder?.close();
  await nestRecorder?.close();
  await provider?.onClose();
  await writer?.close();
  await redis?.stop();
});

interface Case {
  name: string;
  method?: 'post' | 'options';
  headers?: Record<string, string>;
  /** JSON text sent as is (Content-Type application/json unless headers say otherwise). */
  body?: string;
}

async function answer(app: Parameters<typeof request>[0], c: Case) {
  let req = request(app)[c.method ?? 'post']('/rollgate/v1/events').set({ 'Content-Type': 'application/json', ...(c.headers ?? {}) });
  if (c.body !== undefined) req = req.send(c.body);
  const res = await req.buffer(true).parse((r, done) => {
    let text = '';
    r.setEncoding('utf8');
    r.on('data', (chunk: string) => (text += chunk));
    r.on('end', () => done(null, text));
  });
  const headers = Object.fromEntries(HEADERS.filter((h) => res.headers[h] !== undefined).map((h) => [h, res.headers[h] as string]));
  return { status: res.status, body: res.body as string, headers };
}

/** A user the split puts in `variant` of split-checkout. */
function splitUser(variant: 'on' | 'off', from = 0): string {
  for (let i = from; ; i++) {
    const r = provider.snapshot.evaluate('split-checkout', { targetingKey: `user-${i}`, roles: ['customer'] });
    if (r.reason === 'SPLIT' && r.variant === variant) return `user-${i}`;
  }
}

const auth = bearer(customer);
const one = JSON.stringify({ events: [{ name: 'checkout.completed' }] });
const big = JSON.stringify({ events: [{ name: 'checkout.completed', note: 'x'.repeat(20_000) }] });
const cases: Case[] = [
  { name: 'no token', body: one },
  { name: 'a bad token', headers: { Authorization: 'Bearer nope' }, body: one },
  { name: 'a token signed with another key', headers: { Authorization: `Bearer ${admin.slice(0, -4)}AAAA` }, body: one },
  { name: 'no token, from an allowed origin', headers: { Origin: 'https://app.test' }, body: one },
  { name: 'preflight from an allowed origin', method: 'options', headers: { Origin: 'https://app.test', 'Access-Control-Request-Method': 'POST' } },
  { name: 'body not JSON', headers: auth, body: '{"events":' },
  { name: 'body not JSON, no token (who first)', body: '{"events":' },
  { name: 'body not JSON, as text/plain', headers: { ...auth, 'Content-Type': 'text/plain' }, body: '{"events":' },
  { name: 'body too large', headers: auth, body: big },
  { name: 'body too large, a bad token (who first)', headers: { Authorization: 'Bearer nope' }, body: big },
  { name: 'unsupported charset', headers: { ...auth, 'Content-Type': 'application/json; charset=koi8-r' }, body: one },
  { name: 'no body', headers: auth },
  { name: 'an empty object', headers: auth, body: '{}' },
  { name: 'a JSON array', headers: auth, body: '[{"name":"checkout.completed"}]' },
  { name: 'events not an array', headers: auth, body: '{"events":{"name":"checkout.completed"}}' },
  { name: 'too many events', headers: auth, body: JSON.stringify({ events: Array.from({ length: 6 }, () => ({ name: 'search.done' })) }) },
  { name: 'context not an object', headers: auth, body: '{"events":[],"context":"fr"}' },
  { name: 'accepted, refused and ignored fields, from an allowed origin', headers: { ...auth, Origin: 'https://app.test' }, body: JSON.stringify({ events: [{ name: 'checkout.completed', value: 3, variant: 'on' }, { name: 'admin.deleted' }, { name: 7 }], flags: ['x'] }) },
  { name: 'sent as text/plain (sendBeacon with a string)', headers: { ...bearer(token({ sub: 'beacon', roles: ['customer'] })), 'Content-Type': 'text/plain;charset=UTF-8' }, body: one },
];

describe('the same request, the same answer, from Express and Nest', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const [fromExpress, fromNest] = [await answer(expressApp, c), await answer(nestApp.getHttpServer(), c)];
    expect(fromNest).toEqual(fromExpress);
    expect(fromExpress.headers.etag).toBeUndefined();
    if (c.method !== 'options') expect(fromExpress.headers['content-type']).toBe('application/json; charset=utf-8');
  });

  it('a flood: the same sequence of 202s and 429s (with Retry-After), then the same after the clock moves', async () => {
    const flooder = { Authorization: `Bearer ${token({ sub: 'flooder', roles: ['customer'] })}` };
    const five = { name: 'five', headers: flooder, body: JSON.stringify({ events: Array.from({ length: 5 }, () => ({ name: 'search.done' })) }) };
    const run = async (app: Parameters<typeof request>[0], clock: 'express' | 'nest') => {
      const out = [];
      for (let i = 0; i < 4; i++) out.push(await answer(app, five));
      limiter[clock] += 5000;
      out.push(await answer(app, five));
      return out;
    };
    const [fromExpress, fromNest] = [await run(expressApp, 'express'), await run(nestApp.getHttpServer(), 'nest')];
    expect(fromNest).toEqual(fromExpress);
    expect(fromExpress.map((a) => a.status)).toEqual([202, 202, 429, 429, 202]);
    expect(fromExpress[2]!.headers['retry-after']).toBe('5');
  });

  it('without ofrep.tracking: 404 NOT_CONFIGURED from both, whatever the body', async () => {
    for (const c of [{ name: 'plain', headers: auth, body: one }, { name: 'not JSON', headers: auth, body: '{"events":' }, { name: 'no token', body: one }]) {
      const [fromExpress, fromNest] = [await answer(plainExpressApp, c), await answer(plainNestApp.getHttpServer(), c)];
      expect(fromNest).toEqual(fromExpress);
      expect([fromExpress.status, JSON.parse(fromExpress.body)]).toEqual([404, { errorCode: 'NOT_CONFIGURED', errorDetails: 'this server does not accept browser events' }]);
    }
  });
});

it('Nest counts each event in the arm the server evaluated (two users, two split arms), whatever the body claims', async () => {
  clocks.nest += 10_000; // a second of its own: the parity cases above counted events too
  const second = Math.floor(clocks.nest / 1000);
  const on = splitUser('on', 1000);
  const off = splitUser('off', 1000);
  const server = nestApp.getHttpServer();
  await request(server).post('/rollgate/v1/events').set(bearer(token({ sub: on, roles: ['customer'] }))).send({ events: [{ name: 'checkout.completed', value: 12 }] }).expect(202);
  const claimed = await request(server)
    .post('/rollgate/v1/events')
    .set(bearer(token({ sub: off, roles: ['customer'] })))
    .send({ events: [{ name: 'checkout.completed', flagKey: 'split-checkout', variant: 'on' }, { name: 'search.done' }], variant: 'on' })
    .expect(202);
  expect(claimed.body).toEqual({ accepted: 2, refused: 0, results: [{ status: 'accepted', ignored: ['flagKey', 'variant'] }, { status: 'accepted' }], ignored: ['variant'] });
  await nestRecorder.flush();
  const arms = await new OutcomeReader(writer).totals('split-checkout', second, second);
  expect(Object.fromEntries([...arms].map(([arm, c]) => [arm, { ...c.events }]))).toEqual({
    'split:on': { 'checkout.completed': 1 },
    'split:off': { 'checkout.completed': 1, 'search.done': 1 },
  });
});
