import http from 'node:http';
import { gzipSync } from 'node:zlib';
import express, { type Express } from 'express';
import request from 'supertest';
import type { BulkEvaluationSuccessResponse } from '@openfeature/ofrep-core';
import { ProviderEvents } from '@openfeature/server-sdk';
import { RollgateProvider, type RedisFlagStore } from '@rollgate/redis';
import { defineIdentity, identity, ofrep, requireFeature, type OfrepRouter } from '@rollgate/express';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { bearer, customer, jwtOptions, nextEvent, openStream, seed, serve, vipAgent, type OpenStream } from '../../server/test/support/pilot-scenario';
import { checkOfrepEvent, sseEvents } from '../../server/test/support/ofrep-schema';

// Many browsers on one instance (docs/operations.md): the router announces only changes browsers
// can see (as the store's change notices name them), resumes streams by what browsers can see
// (Last-Event-ID, across a restart), and frontOf() answers the bulk evaluation and the stream in
// front of Express with the router's own answers. Real redis-server, real HTTP.

let redis: TestRedis;
let writer: RedisFlagStore;
let provider: RollgateProvider;
const env = `express-fanout-${process.pid}`;
const callers = defineIdentity({ jwt: jwtOptions });
const TICKETS = 'fanout-ticket-secret-of-32-bytes-ok';
const REFETCH = /id: ([\w-]+)\nevent: message\ndata: (.+)\n\n/;
const actor = { actor: 'ops' };
const open: OpenStream[] = [];
const track = (s: OpenStream) => (open.push(s), s);

beforeAll(async () => {
  redis = await startRedis();
  writer = await seed(redis.url, env);
  // a segment only a server-only flag uses
  await writer.apply(
    [
      { kind: 'evaluator', key: 'staff', definition: { in: [{ var: 'tenant' }, ['internal']] } },
      { kind: 'flag', key: 'max-seats', definition: { state: 'ENABLED', variants: { few: 2, many: 9 }, defaultVariant: 'few', targeting: { if: [{ $ref: 'staff' }, 'many', null] } } },
    ],
    actor,
  );
  provider = new RollgateProvider({ store: { redis: redis.url, env } });
  await provider.initialize();
});

afterEach(() => {
  for (const s of open.splice(0)) s.destroy();
});

afterAll(async () => {
  await provider.onClose();
  await writer.close();
  await redis.stop();
});

/** A write, once this process's provider has adopted it. */
async function heard(write: () => Promise<unknown>): Promise<void> {
  const changed = nextEvent(provider, ProviderEvents.ConfigurationChanged);
  await write();
  await changed;
}

async function flipCheckout(): Promise<void> {
  const current = (await writer.load()).flags['checkout-variant'] as { defaultVariant: string };
  await heard(() => writer.patchFlag('checkout-variant', { defaultVariant: current.defaultVariant === 'fast' ? 'classic' : 'fast' }, actor));
}

async function streamUri(target: Express | http.RequestListener, token = customer): Promise<string> {
  const res = await request(target).post('/ofrep/v1/evaluate/flags').set(bearer(token)).send({}).expect(200);
  return (res.body as BulkEvaluationSuccessResponse).eventStreams![0]!.endpoint!.requestUri!;
}

const messages = (s: OpenStream) => s.text().match(/event: message/g)?.length ?? 0;

describe('announcements', () => {
  it('a change to a server-only flag, or to a segment only server-only flags use, sends nothing; a visible change one refetch', async () => {
    const router = ofrep({ provider, identity: callers });
    const { port, close } = await serve(express().use(router));
    try {
      const s = track(await openStream(port, await streamUri(express().use(router))));
      await s.waitFor(/: connected\n\n/);
      const before = router.streamStats()!;
      await heard(() => writer.patchFlag('max-seats', { defaultVariant: 'many' }, actor));
      await heard(() => writer.apply([{ kind: 'evaluator', key: 'staff', definition: { in: [{ var: 'tenant' }, ['internal', 'ops']] } }], actor));
      expect(router.streamStats()).toMatchObject({ announced: before.announced, skipped: before.skipped + 2 });

      await flipCheckout();
      const [, id] = await s.waitFor(REFETCH);
      expect(messages(s)).toBe(1); // the visible change's only
      expect(checkOfrepEvent(sseEvents(s.text()).at(-1)!)).toEqual([]);
      expect(router.streamStats()).toMatchObject({ announced: before.announced + 1, streams: 1, pending: 0 });
      // the segment a visible flag uses is announced too
      await heard(() => writer.apply([{ kind: 'evaluator', key: 'vip-agencies', definition: { in: [{ var: 'tenant' }, ['atlas', 'nordic', 'blue']] } }], actor));
      await s.waitFor(new RegExp(`${REFETCH.source}[\\s\\S]*${REFETCH.source}`));
      expect(messages(s)).toBe(2);
      expect(id).not.toBe(sseEvents(s.text()).at(-1)!.id);
    } finally {
      router.close();
      await close();
    }
  });
});

describe('resume with Last-Event-ID', () => {
  it('a restarted instance with the same flags resumes the stream without a refetch; after a change it missed, with one', async () => {
    const first = ofrep({ provider, identity: callers, stream: { ticketSecret: TICKETS } });
    const before = await serve(express().use(first));
    const uri = await streamUri(express().use(first));
    const s = track(await openStream(before.port, uri));
    const [, seen] = await s.waitFor(/id: ([\w-]+)\n: connected/);
    first.close(); // shut down: its streams end
    await before.close();

    const restarted = ofrep({ provider, identity: callers, stream: { ticketSecret: TICKETS } });
    const after = await serve(express().use(restarted));
    try {
      // EventSource reconnects to the same URL with the last id it saw
      const back = track(await openStream(after.port, uri, { 'Last-Event-ID': seen! }));
      await back.waitFor(/: connected\n\n/);
      await flipCheckout();
      const [, id] = await back.waitFor(REFETCH);
      expect(messages(back)).toBe(1); // nothing on connect: the change's message only
      back.destroy();

      await flipCheckout(); // while it is away
      const late = track(await openStream(after.port, uri, { 'Last-Event-ID': id! }));
      await late.waitFor(REFETCH);
      expect(sseEvents(late.text()).at(-1)!.id).toBe(sseEvents(late.text())[0]!.id); // at the current position
    } finally {
      restarted.close();
      await after.close();
    }
  });
});

describe('frontOf(app)', () => {
  let router: OfrepRouter;
  let app: Express;
  let front: http.RequestListener;

  beforeAll(() => {
    router = ofrep({ provider, identity: callers, cors: { origins: ['https://app.test'] }, clientAttributes: ['locale'], stream: { ticketSecret: TICKETS } });
    app = express().use(router).use(identity(callers));
    app.get('/api/pay', requireFeature('fast-payment'), (_req, res) => res.json({ ok: true }));
    front = router.frontOf(app);
  });
  afterAll(() => router.close());

  const big = JSON.stringify({ context: { locale: 'x'.repeat(20_000) } });
  const cases: [string, (r: request.Agent | ReturnType<typeof request>) => request.Test][] = [
    ['bulk', (r) => (r as ReturnType<typeof request>).post('/ofrep/v1/evaluate/flags').set(bearer(vipAgent)).send({})],
    ['bulk with a client attribute, from an allowed origin', (r) => (r as ReturnType<typeof request>).post('/ofrep/v1/evaluate/flags').set(bearer(vipAgent)).set('Origin', 'https://app.test').send({ context: { locale: 'fr' } })],
    ['bulk from another origin', (r) => (r as ReturnType<typeof request>).post('/ofrep/v1/evaluate/flags?flagConfigEtag=abc').set(bearer(customer)).set('Origin', 'https://evil.test').send({})],
    ['bulk without a token', (r) => (r as ReturnType<typeof request>).post('/ofrep/v1/evaluate/flags').send({})],
    ['bulk with a forged token', (r) => (r as ReturnType<typeof request>).post('/ofrep/v1/evaluate/flags').set('Authorization', 'Bearer a.b.c').send({})],
    ['bulk, a body that is not JSON', (r) => (r as ReturnType<typeof request>).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).set('Content-Type', 'application/json').send('nope')],
    ['bulk, a JSON body that is not an object', (r) => (r as ReturnType<typeof request>).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).set('Content-Type', 'application/json').send('"text"')],
    ['bulk, an array body', (r) => (r as ReturnType<typeof request>).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).send([1])],
    ['bulk, a body too large', (r) => (r as ReturnType<typeof request>).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).set('Content-Type', 'application/json').send(big)],
    ['bulk, an empty body', (r) => (r as ReturnType<typeof request>).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).set('Content-Length', '0')],
    ['bulk, no body', (r) => (r as ReturnType<typeof request>).post('/ofrep/v1/evaluate/flags').set(bearer(customer))],
    ['bulk, a gzip body (left to the app)', (r) => (r as ReturnType<typeof request>).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).set('Content-Type', 'application/json').set('Content-Encoding', 'gzip').send(gzipSync('{"context":{"locale":"fr"}}'))],
    ['bulk, a Latin-1 body (left to the app)', (r) => (r as ReturnType<typeof request>).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).set('Content-Type', 'application/json; charset=latin1').send('{}')],
    ['a single flag (left to the app)', (r) => (r as ReturnType<typeof request>).post('/ofrep/v1/evaluate/flags/fast-payment').set(bearer(vipAgent)).send({})],
    ['a preflight (left to the app)', (r) => (r as ReturnType<typeof request>).options('/ofrep/v1/evaluate/flags').set('Origin', 'https://app.test')],
    ['a stream with a forged ticket', (r) => (r as ReturnType<typeof request>).get('/ofrep/v1/events?ticket=9999999999.AAAAAAAAAAAAAAAA.x&since=x')],
    ['a stream with two tickets', (r) => (r as ReturnType<typeof request>).get('/ofrep/v1/events?ticket=a&ticket=b')],
    ['the app’s own route', (r) => (r as ReturnType<typeof request>).get('/api/pay').set(bearer(vipAgent))],
  ];

  /** What a client can tell apart: status, headers (but the date, and Express's X-Powered-By) and body; stream tickets carry a time. */
  const answer = (res: request.Response) => {
    const { date: _d, 'x-powered-by': _x, connection: _c, 'keep-alive': _k, ...headers } = res.headers;
    return { status: res.status, headers, body: res.text.replace(/ticket=\d+\.[\w-]+\.[\w-]+/g, 'ticket=…') };
  };

  it.each(cases)('answers as the router: %s', async (name, send) => {
    const through = await send(request(app));
    const inFront = await send(request(front));
    expect(answer(inFront)).toEqual(answer(through));
    // who answered: Express marks its answers (X-Powered-By); the front takes only the bulk evaluation and the stream
    const leftToApp = name.includes('left to the app') || name === 'the app’s own route';
    expect(inFront.headers['x-powered-by'] !== undefined).toBe(leftToApp);
  });

  it('answers a revalidation with 304, as the router', async () => {
    const first = await request(front).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).send({}).expect(200);
    await request(front).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).set('If-None-Match', first.headers.etag!).send({}).expect(304);
    await request(app).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).set('If-None-Match', first.headers.etag!).send({}).expect(304);
  });

  it('serves the stream: a change reaches a browser connected through the front', async () => {
    const { port, close } = await serve(front);
    try {
      const s = track(await openStream(port, await streamUri(front)));
      expect(s.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      await s.waitFor(/: connected\n\n/);
      await flipCheckout();
      await s.waitFor(REFETCH);
    } finally {
      await close();
    }
  });

  it('takes the paths under the mount path', async () => {
    const mounted = express().use('/flags', router);
    const listener = router.frontOf(mounted, { mountPath: '/flags/' });
    const uri = await (async () => {
      const res = await request(listener).post('/flags/ofrep/v1/evaluate/flags').set(bearer(customer)).send({}).expect(200);
      return (res.body as BulkEvaluationSuccessResponse).eventStreams![0]!.endpoint!.requestUri!;
    })();
    expect(uri).toMatch(/^\/flags\/ofrep\/v1\/events\?ticket=/);
    expect(answer(await request(listener).post('/flags/ofrep/v1/evaluate/flags').send({}))).toEqual(answer(await request(mounted).post('/flags/ofrep/v1/evaluate/flags').send({})));
  });

  it('needs the router’s own identity, an app to hand the rest to, and a mount path that is a path', () => {
    const bare = ofrep({ provider, stream: false });
    try {
      expect(() => bare.frontOf(express())).toThrow("ofrep: frontOf() needs the router's own identity (options.identity, from defineIdentity()): no identity() middleware runs in front of the app");
      expect(() => router.frontOf(undefined as never)).toThrow(TypeError);
      expect(() => router.frontOf(express(), { mountPath: 'flags' })).toThrow('ofrep: the mount path must start with "/", got "flags"');
    } finally {
      bare.close();
    }
  });

  it('with the stream turned off, leaves its path to the app (as the router does)', async () => {
    const noStream = ofrep({ provider, identity: callers, stream: false });
    try {
      const withoutFront = express().use(noStream);
      const res = await request(noStream.frontOf(withoutFront)).get('/ofrep/v1/events?ticket=x').expect(404);
      expect(answer(res)).toEqual(answer(await request(withoutFront).get('/ofrep/v1/events?ticket=x')));
      expect(res.headers['x-powered-by']).toBe('Express');
    } finally {
      noStream.close();
    }
  });
});
