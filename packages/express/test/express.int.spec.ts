import { createHmac, generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import express, { type Express } from 'express';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { EventSource } from 'eventsource';
import { NOOP_PROVIDER, OpenFeature, ProviderEvents } from '@openfeature/server-sdk';
import { OpenFeature as WebOpenFeature, ProviderEvents as WebProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
import type { EvaluationResponse, BulkEvaluationSuccessResponse } from '@openfeature/ofrep-core';
import { MemoryFlagStore, RollgateProvider, type RedisFlagStore } from '@rollgate/redis';
import { defineIdentity, identity, ofrep, requireFeature, type OfrepRouter } from '@rollgate/express';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { admin, AUDIENCE, bearer, customer, eventually, firstMessageAfter, ISSUER, nextEvent, openStream, recordingLogger, SECRET, seed, serve, token, vipAgent } from '../../server/test/support/pilot-scenario';
import { checkOfrepAnswer, checkOfrepEvent, sseEvents } from '../../server/test/support/ofrep-schema';

// Express adapters end to end: a real redis-server, a real provider, real HTTP.

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();

/** Signs a payload given as JSON text, byte for byte (jsonwebtoken refuses an own "__proto__" key). */
function rawToken(payloadJson: string): string {
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  const body = Buffer.from(payloadJson).toString('base64url');
  return `${header}.${body}.${createHmac('sha256', SECRET).update(`${header}.${body}`).digest('base64url')}`;
}

let redis: TestRedis;
let writer: RedisFlagStore;
let provider: RollgateProvider;
let app: Express;
let router: OfrepRouter;
let handlerCalls = 0;

beforeAll(async () => {
  redis = await startRedis();
  const env = `express-${process.pid}`;
  writer = await seed(redis.url, env);
  provider = new RollgateProvider({ store: { redis: redis.url, env } });
  await OpenFeature.setProviderAndWait(provider);

  app = express();
  const jwtOptions = { secret: SECRET, algorithms: ['HS256' as const], issuer: ISSUER, audience: AUDIENCE };
  // the identity defined once; OFREP first, with it: CORS preflights and the SSE stream carry no Authorization
  const callers = defineIdentity({ jwt: jwtOptions });
  router = ofrep({ provider, identity: callers, cors: { origins: ['https://app.test'] }, clientAttributes: ['locale'] });
  app.use(router);
  app.use(identity(callers));
  const handler = (_req: express.Request, res: express.Response) => {
    handlerCalls++;
    res.json({ ok: true });
  };
  app.post('/payments/fast', requireFeature('fast-payment'), handler);
  app.post('/hidden', requireFeature('fast-payment', { hide: true }), handler);
  app.get('/checkout', requireFeature('checkout-variant', { expected: 'fast' }), handler);
  app.get('/any', requireFeature(['admin-tools', 'fast-payment'], { mode: 'any' }), handler);
  app.get('/all', requireFeature(['admin-tools', 'fast-payment'], { mode: 'all' }), handler);
  app.get('/missing-flag', requireFeature('does-not-exist'), handler);
  app.get('/implicit', async (_req, res) => {
    // no context passed: the identity comes from the transaction context
    res.json({ fast: await OpenFeature.getClient().getBooleanValue('fast-payment', false) });
  });
});

afterAll(async () => {
  router.close();
  await OpenFeature.close();
  await writer.close();
  await redis.stop();
});

/** A write that changes what callers get (so the provider announces it), whatever ran before. */
async function flipCheckoutVariant(): Promise<void> {
  const current = (await writer.load()).flags['checkout-variant'] as { defaultVariant: string };
  await writer.patchFlag('checkout-variant', { defaultVariant: current.defaultVariant === 'fast' ? 'classic' : 'fast' }, { actor: 'ops' });
}

beforeEach(() => {
  handlerCalls = 0;
});

describe('requireFeature', () => {
  it('lets pilot users through and refuses everyone else before the handler runs', async () => {
    await request(app).post('/payments/fast').set(bearer(admin)).expect(200, { ok: true });
    await request(app).post('/payments/fast').set(bearer(vipAgent)).expect(200);
    expect(handlerCalls).toBe(2);
    const denied = await request(app).post('/payments/fast').set(bearer(customer)).expect(403);
    expect(denied.body).toEqual({ error: 'feature_not_enabled' });
    await request(app).post('/hidden').set(bearer(customer)).expect(404, { error: 'not_found' });
    expect(handlerCalls).toBe(2);
  });

  it('checks the expected value of a string flag, and all/any of several flags', async () => {
    await request(app).get('/checkout').set(bearer(vipAgent)).expect(200);
    await request(app).get('/checkout').set(bearer(customer)).expect(403);
    await request(app).get('/any').set(bearer(vipAgent)).expect(200); // fast-payment on, admin-tools off
    await request(app).get('/all').set(bearer(vipAgent)).expect(403);
    await request(app).get('/all').set(bearer(admin)).expect(200);
    expect(handlerCalls).toBe(3);
  });

  it('denies a flag that does not exist (fail closed)', async () => {
    await request(app).get('/missing-flag').set(bearer(admin)).expect(403);
    expect(handlerCalls).toBe(0);
  });

  it('follows a flag flipped in Redis on the next request, without a restart', async () => {
    const changed = new Promise<void>((resolve) => {
      const h = () => (OpenFeature.removeHandler(ProviderEvents.ConfigurationChanged, h), resolve());
      OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, h);
    });
    await writer.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'ops', reason: 'kill switch' });
    await changed;
    await request(app).post('/payments/fast').set(bearer(admin)).expect(403);
    const back = new Promise<void>((resolve) => {
      const h = () => (OpenFeature.removeHandler(ProviderEvents.ConfigurationChanged, h), resolve());
      OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, h);
    });
    await writer.patchFlag('fast-payment', { state: 'ENABLED' }, { actor: 'ops' });
    await back;
    await request(app).post('/payments/fast').set(bearer(admin)).expect(200);
  });

  it('ignores tenant and role sent by the client in headers, query or body', async () => {
    await request(app)
      .post('/payments/fast?tenant=atlas&roles=admin')
      .set(bearer(customer))
      .set('X-Tenant', 'atlas')
      .set('X-Role', 'admin')
      .send({ tenant: 'atlas', roles: ['admin'], context: { tenant: 'atlas' } })
      .expect(403);
    expect(handlerCalls).toBe(0);
  });

  it('puts the caller in the OpenFeature transaction context for the handler', async () => {
    await request(app).get('/implicit').set(bearer(vipAgent)).expect(200, { fast: true });
    await request(app).get('/implicit').set(bearer(customer)).expect(200, { fast: false });
  });
});

describe('identity rejects bad tokens with 401 and never runs the handler', () => {
  const noneToken = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'ada', roles: ['admin'], iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url')}.`;
  const [h, p, s] = admin.split('.');
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), roles: ['admin'], sub: 'cy' })).toString('base64url');
  const cases: [string, Record<string, string>][] = [
    ['no Authorization header', {}],
    ['Basic scheme', { Authorization: 'Basic YWRhOnB3' }],
    ['garbage', { Authorization: 'Bearer abc' }],
    ['alg none', { Authorization: `Bearer ${noneToken}` }],
    ['tampered payload', { Authorization: `Bearer ${h}.${forged}.${s}` }],
    ['expired', bearer(token({ sub: 'ada', roles: ['admin'] }, { expiresIn: -60 }))],
    ['no exp', bearer(jwt.sign({ sub: 'ada', roles: ['admin'] }, SECRET, { algorithm: 'HS256', issuer: ISSUER, audience: AUDIENCE }))],
    ['wrong audience', bearer(token({ sub: 'ada', roles: ['admin'] }, { audience: 'other-api' }))],
    ['wrong issuer', bearer(token({ sub: 'ada', roles: ['admin'] }, { issuer: 'https://evil.test/' }))],
    ['wrong secret', bearer(jwt.sign({ sub: 'ada', roles: ['admin'] }, 'another-secret-that-is-32-bytes-long', { algorithm: 'HS256', issuer: ISSUER, audience: AUDIENCE, expiresIn: 300 }))],
    ['RS256 token against an HS256 verifier', bearer(jwt.sign({ sub: 'ada', roles: ['admin'] }, privateKey, { algorithm: 'RS256', issuer: ISSUER, audience: AUDIENCE, expiresIn: 300 }))],
    ['no sub', bearer(token({ roles: ['admin'] }))],
    ['oversized header', { Authorization: `Bearer ${'a'.repeat(9000)}.b.c` }],
  ];
  it.each(cases)('%s', async (_name, headers) => {
    const res = await request(app).post('/payments/fast').set(headers).expect(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(res.body).toEqual({ error: 'unauthorized' });
    expect(handlerCalls).toBe(0);
  });

  it('does not let a __proto__ claim grant a role', async () => {
    const exp = Math.floor(Date.now() / 1000) + 300;
    const forged = rawToken(`{"sub":"mallory","tenant":"smallco","iss":"${ISSUER}","aud":"${AUDIENCE}","exp":${exp},"__proto__":{"roles":["admin"],"tenant":"atlas"}}`);
    await request(app).post('/payments/fast').set(bearer(forged)).expect(403);
    await request(app).get('/implicit').set(bearer(forged)).expect(200, { fast: false });
    expect(({} as Record<string, unknown>).roles).toBeUndefined();
    expect(handlerCalls).toBe(0);
  });

  it('refuses an HS256 token signed with the RSA public key when the verifier pins RS256', async () => {
    const rsApp = express();
    rsApp.use(identity({ jwt: { publicKey: publicPem, algorithms: ['RS256'], issuer: ISSUER, audience: AUDIENCE } }));
    rsApp.get('/', (_req, res) => {
      handlerCalls++;
      res.end();
    });
    const confused = jwt.sign({ sub: 'ada', roles: ['admin'] }, 'x'.repeat(40), { algorithm: 'HS256', issuer: ISSUER, audience: AUDIENCE, expiresIn: 300 });
    // the classic attack signs with the public key PEM as the HMAC secret: craft it by hand
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
    const body = confused.split('.')[1]!;
    const sig = createHmac('sha256', publicPem).update(`${header}.${body}`).digest('base64url');
    await request(rsApp).get('/').set(bearer(`${header}.${body}.${sig}`)).expect(401);
    await request(rsApp).get('/').set(bearer(jwt.sign({ sub: 'ada' }, privateKey, { algorithm: 'RS256', issuer: ISSUER, audience: AUDIENCE, expiresIn: 300 }))).expect(200);
    expect(handlerCalls).toBe(1);
  });

  it('refuses unsafe options at start-up with a message naming the option', () => {
    expect(() => identity({ jwt: { secret: SECRET, algorithms: [] } })).toThrow('jwt.algorithms is required');
    expect(() => identity({ jwt: { secret: 'short', algorithms: ['HS256'] } })).toThrow('at least 32 bytes');
    expect(() => identity({ jwt: { secret: SECRET, algorithms: ['HS256', 'RS256'] } })).toThrow('one family');
    expect(() => identity({ jwt: { secret: SECRET, algorithms: ['RS256'] } })).toThrow('need jwt.publicKey');
    expect(() => identity({})).toThrow('give options.jwt');
    for (const clockTolerance of [301, -1, Number.NaN]) {
      expect(() => identity({ jwt: { secret: SECRET, algorithms: ['HS256'], clockTolerance } })).toThrow(/jwt\.clockTolerance must be a number of seconds from 0 to 300/);
    }
  });

  it('accepts a few seconds of clock skew (default 5 s) on exp and nbf, no more', async () => {
    const a = express().use(identity({ jwt: { secret: SECRET, algorithms: ['HS256'] } }));
    a.get('/x', (_req, res) => res.json({ ok: true }));
    const now = Math.floor(Date.now() / 1000);
    const at = (claims: Record<string, unknown>) => bearer(jwt.sign({ sub: 'bo', ...claims }, SECRET, { algorithm: 'HS256' }));
    await request(a).get('/x').set(at({ exp: now - 2 })).expect(200);
    await request(a).get('/x').set(at({ exp: now - 30 })).expect(401);
    await request(a).get('/x').set(at({ exp: now + 60, nbf: now + 2 })).expect(200);
    await request(a).get('/x').set(at({ exp: now + 60, nbf: now + 30 })).expect(401);
  });
});

describe('fail closed', () => {
  it('answers 503 with Retry-After when the provider is not ready, and 403 with whenUnavailable: deny', async () => {
    const down = new RollgateProvider({ store: { redis: { port: 1, host: '127.0.0.1', retryStrategy: () => null }, env: 'down' }, initTimeoutMs: 200 });
    await OpenFeature.setProviderAndWait('down', down).catch(() => undefined);
    const a = express();
    a.use(identity({ jwt: { secret: SECRET, algorithms: ['HS256'] } }));
    a.get('/u', requireFeature('fast-payment', { domain: 'down' }), () => handlerCalls++);
    a.get('/d', requireFeature('fast-payment', { domain: 'down', whenUnavailable: 'deny' }), () => handlerCalls++);
    a.get('/r', requireFeature('fast-payment', { domain: 'down', retryAfterSec: 30 }), () => handlerCalls++);
    const res = await request(a).get('/u').set(bearer(admin)).expect(503);
    expect(res.headers['retry-after']).toBe('5');
    expect((await request(a).get('/r').set(bearer(admin)).expect(503)).headers['retry-after']).toBe('30');
    await request(a).get('/d').set(bearer(admin)).expect(403);
    expect(handlerCalls).toBe(0);
    await OpenFeature.setProviderAndWait('down', NOOP_PROVIDER); // closes `down`
  });

  it('maxStalenessMs: answers 503 once the flags are older than allowed, while routes without a limit keep the last known flags', async () => {
    const own = await startRedis();
    const env = `express-stale-${process.pid}`;
    const ownWriter = await seed(own.url, env);
    const stale = new RollgateProvider({ store: { redis: { host: '127.0.0.1', port: own.port, retryStrategy: () => 100 }, env, pollIntervalMs: 100 } });
    await OpenFeature.setProviderAndWait('stale', stale);
    const a = express();
    a.use(identity({ jwt: { secret: SECRET, algorithms: ['HS256'] } }));
    a.get('/limited', requireFeature('fast-payment', { domain: 'stale', maxStalenessMs: 1000 }), (_req, res) => res.json({ ok: true }));
    a.get('/unlimited', requireFeature('fast-payment', { domain: 'stale' }), (_req, res) => res.json({ ok: true }));
    try {
      await request(a).get('/limited').set(bearer(admin)).expect(200);
      const wentStale = nextEvent(stale, ProviderEvents.Stale);
      await ownWriter.close();
      await own.kill();
      await wentStale;
      await request(a).get('/unlimited').set(bearer(admin)).expect(200);
      // the flags were last confirmed before the kill: refused once that is more than 1 s ago
      let refused: request.Response | undefined;
      while (!refused) {
        const r = await request(a).get('/limited').set(bearer(admin));
        if (r.status === 503) refused = r;
        else await new Promise<void>((resolve) => setTimeout(resolve, 50)); // staleness grows with the clock: poll it
      }
      expect(refused.body).toEqual({ error: 'feature_decision_unavailable' });
      expect(refused.headers['retry-after']).toBe('5');
      await request(a).get('/unlimited').set(bearer(admin)).expect(200);
      const back = nextEvent(stale, ProviderEvents.Ready);
      await own.start();
      await back;
      await request(a).get('/limited').set(bearer(admin)).expect(200);
    } finally {
      await OpenFeature.setProviderAndWait('stale', NOOP_PROVIDER); // closes `stale` while Redis answers
      await own.stop();
    }
  });

  it('logs each refusal once at debug, with the reason and never the token', async () => {
    const logger = recordingLogger();
    const jwtOpts = { secret: SECRET, algorithms: ['HS256' as const], issuer: ISSUER, audience: AUDIENCE };
    const a = express();
    a.use(identity({ jwt: jwtOpts, logger }));
    a.get('/gated', requireFeature('fast-payment', { logger }), () => handlerCalls++);
    await request(a).get('/gated').set(bearer(customer)).expect(403);
    const tampered = `${admin.slice(0, -4)}AAAA`;
    await request(a).get('/gated').set(bearer(tampered)).expect(401);
    expect(handlerCalls).toBe(0);
    expect(logger.lines).toEqual([
      expect.stringMatching(/^debug rollgate: deny GET \/gated for cy: fast-payment: value false \(TARGETING_MATCH\)$/),
      expect.stringMatching(/^debug rollgate: 401 GET \/gated: /),
    ]);
    for (const line of logger.lines) {
      for (const part of [...customer.split('.'), ...tampered.split('.')]) expect(line).not.toContain(part);
    }
  });

  it('onDeny answers instead of the default; if it throws, the app\'s error handler answers and the handler never runs', async () => {
    const seen: string[] = [];
    const a = express();
    a.use(identity({ jwt: { secret: SECRET, algorithms: ['HS256'] } }));
    a.get('/custom', requireFeature('fast-payment', { onDeny: (_req, res, decision) => { seen.push(`${decision.outcome} ${decision.flagKey}`); res.status(402).json({ upgrade: true }); } }), () => handlerCalls++);
    a.get('/throwing', requireFeature('fast-payment', { onDeny: () => { throw new Error('onDeny bug'); } }), () => handlerCalls++);
    a.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => res.status(500).json({ caught: err.message }));
    const unhandled = jest.fn();
    process.on('unhandledRejection', unhandled);
    try {
      await request(a).get('/custom').set(bearer(customer)).expect(402, { upgrade: true });
      expect(seen).toEqual(['deny fast-payment']);
      await request(a).get('/throwing').set(bearer(customer)).timeout(3000).expect(500, { caught: 'onDeny bug' });
      await new Promise((r) => setImmediate(r));
      expect(unhandled).not.toHaveBeenCalled();
      expect(handlerCalls).toBe(0);
    } finally {
      process.off('unhandledRejection', unhandled);
    }
  });

  it('answers 401 when requireFeature runs without identity()', async () => {
    const a = express();
    a.get('/x', requireFeature('fast-payment'), () => handlerCalls++);
    await request(a).get('/x').expect(401);
    expect(handlerCalls).toBe(0);
  });
});

describe('OFREP', () => {
  it('bulk: returns values of client-visible flags only, for the verified caller, never rules', async () => {
    const res = await request(app)
      .post('/ofrep/v1/evaluate/flags')
      .set(bearer(vipAgent))
      .send({ context: { targetingKey: 'ada', roles: ['admin'], tenant: 'internal', locale: 'fr' } })
      .expect(200);
    const body = res.body as BulkEvaluationSuccessResponse;
    expect(body.flags).toEqual([
      { key: 'checkout-variant', value: 'fast', variant: 'fast', reason: 'TARGETING_MATCH' },
      { key: 'fast-payment', value: true, variant: 'on', reason: 'TARGETING_MATCH' },
    ]);
    expect(JSON.stringify(body)).not.toContain('atlas'); // no segment lists or rules
    expect(JSON.stringify(body)).not.toContain('admin-tools'); // server-only flags are invisible
    expect(res.headers['cache-control']).toBe('private, no-store');
    expect(res.headers.vary).toContain('Authorization');
    expect(res.headers.etag).toMatch(/^".+"$/);
    expect(body.eventStreams).toEqual([{ type: 'sse', endpoint: { requestUri: expect.stringMatching(/^\/ofrep\/v1\/events\?ticket=\d+\.[\w-]{16}\.[\w-]{43}&since=[\w-]{22}$/) } }]);
    expect(checkOfrepAnswer('bulk', res.status, body).errors).toEqual([]);
  });

  it('bulk: answers 304 to a matching If-None-Match', async () => {
    const first = await request(app).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).send({}).expect(200);
    const again = await request(app).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).set('If-None-Match', first.headers.etag!).send({}).expect(304);
    expect(again.text).toBe('');
    // another user's values differ, so their ETag does not match
    await request(app).post('/ofrep/v1/evaluate/flags').set(bearer(admin)).set('If-None-Match', first.headers.etag!).send({}).expect(200);
  });

  it('bulk: a restarted server (new stream ticket key) answers 200 with a fresh stream URL, not 304', async () => {
    const jwtOpts = { secret: SECRET, algorithms: ['HS256' as const], issuer: ISSUER, audience: AUDIENCE };
    const secret = 's'.repeat(32);
    const routers = [ofrep({ provider, identity: defineIdentity({ jwt: jwtOpts }) }), ofrep({ provider, identity: defineIdentity({ jwt: jwtOpts }), stream: { ticketSecret: secret } }), ofrep({ provider, identity: defineIdentity({ jwt: jwtOpts }), stream: { ticketSecret: secret } })];
    const [restarted, sharedA, sharedB] = routers.map((r) => express().use(r)) as [Express, Express, Express];
    try {
      const first = await request(app).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).send({}).expect(200);
      const after = await request(restarted).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).set('If-None-Match', first.headers.etag!).send({}).expect(200);
      expect((after.body as BulkEvaluationSuccessResponse).eventStreams).toHaveLength(1);
      // instances sharing a ticket key (behind one load balancer) agree on the ETag
      const a = await request(sharedA).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).send({}).expect(200);
      await request(sharedB).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).set('If-None-Match', a.headers.etag!).send({}).expect(304);
    } finally {
      for (const r of routers) r.close();
    }
  });

  it('answers 500 PROVIDER_NOT_READY (no ETag) until the provider has loaded its flags, then the flags', async () => {
    const own = await startRedis();
    const env = `express-ofrep-late-${process.pid}`;
    await own.kill(); // Redis is down when the app starts
    const late = new RollgateProvider({ store: { redis: { host: '127.0.0.1', port: own.port, retryStrategy: () => 50 }, env }, initTimeoutMs: 200, retryIntervalMs: 50 });
    await late.initialize().catch(() => undefined);
    const lateRouter = ofrep({ provider: late, identity: defineIdentity({ jwt: { secret: SECRET, algorithms: ['HS256'] } }), stream: false });
    const a = express().use(lateRouter);
    try {
      const bulk = await request(a).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).send({}).expect(500);
      expect(bulk.body).toEqual({ errorCode: 'PROVIDER_NOT_READY', errorDetails: 'flags are not loaded yet; retry later' });
      expect(bulk.headers.etag).toBeUndefined();
      expect(bulk.headers['retry-after']).toBe('5');
      await request(a).post('/ofrep/v1/evaluate/flags/fast-payment').set(bearer(customer)).send({}).expect(500, { key: 'fast-payment', errorCode: 'PROVIDER_NOT_READY', errorDetails: 'flags are not loaded yet; retry later' });
      await own.start();
      const ownWriter = await seed(own.url, env);
      await ownWriter.close();
      await eventually(() => late.health().syncedAt !== undefined && late.snapshot.keys().length > 0, 5000);
      const loaded = await request(a).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).send({}).expect(200);
      expect((loaded.body as BulkEvaluationSuccessResponse).flags!.map((f) => f.key).sort()).toEqual(['checkout-variant', 'fast-payment']);
    } finally {
      lateRouter.close();
      await late.onClose();
      await own.stop();
    }
  });

  it('client context: allow-listed attributes reach the rules; one the identity mapping owns never does, even when the token lacks it', async () => {
    const set = {
      'pro-reports': { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ '==': [{ var: 'plan' }, 'pro'] }, 'on', null] }, metadata: { clientVisible: true } },
      'french-ui': { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ '==': [{ var: 'locale' }, 'fr'] }, 'on', null] }, metadata: { clientVisible: true } },
    };
    const local = new RollgateProvider({ store: new MemoryFlagStore({ initial: { flags: set } }) });
    await local.initialize();
    // identity() mounted by the app, maps `plan`; the router is told only which client attributes to take
    const jwtOpts = { secret: SECRET, algorithms: ['HS256' as const] };
    const plans = ofrep({ provider: local, clientAttributes: ['plan', 'locale'], stream: false });
    const a = express().use(identity({ jwt: jwtOpts, claims: { attributes: ['plan'] } })).use(plans);
    const values = async (claims: Record<string, unknown>, context: Record<string, unknown>) => {
      const t = jwt.sign({ sub: 'bo', ...claims }, SECRET, { algorithm: 'HS256', expiresIn: 60 });
      const res = await request(a).post('/ofrep/v1/evaluate/flags').set(bearer(t)).send({ context }).expect(200);
      return Object.fromEntries((res.body as BulkEvaluationSuccessResponse).flags!.map((f) => [f.key, 'value' in f ? f.value : undefined]));
    };
    try {
      expect(await values({}, { locale: 'fr' })).toEqual({ 'pro-reports': false, 'french-ui': true });
      expect(await values({}, { plan: 'pro', locale: 'en' })).toEqual({ 'pro-reports': false, 'french-ui': false });
      expect(await values({ plan: 'basic' }, { plan: 'pro' })).toEqual({ 'pro-reports': false, 'french-ui': false });
      expect(await values({ plan: 'pro' }, {})).toEqual({ 'pro-reports': true, 'french-ui': false });
    } finally {
      plans.close();
      await local.onClose();
    }
  });

  it('single: evaluates a visible flag, 404 for server-only or unknown flags', async () => {
    const ok = await request(app).post('/ofrep/v1/evaluate/flags/fast-payment').set(bearer(customer)).send({ context: {} }).expect(200);
    expect(ok.body as EvaluationResponse).toEqual({ key: 'fast-payment', value: false, variant: 'off', reason: 'TARGETING_MATCH' });
    await request(app).post('/ofrep/v1/evaluate/flags/admin-tools').set(bearer(admin)).send({}).expect(404, { key: 'admin-tools', errorCode: 'FLAG_NOT_FOUND', errorDetails: 'flag "admin-tools" not found' });
  });

  it('refuses unauthenticated, malformed and oversized requests with OFREP error bodies', async () => {
    for (const auth of [{}, bearer(`${admin.slice(0, -4)}AAAA`)]) {
      const refused = await request(app).post('/ofrep/v1/evaluate/flags').set(auth).send({}).expect(401, { errorDetails: 'unauthorized' });
      expect(refused.headers).toMatchObject({ 'www-authenticate': 'Bearer', 'cache-control': 'private, no-store', vary: expect.stringContaining('Authorization') });
    }
    await request(app).post('/ofrep/v1/evaluate/flags').set(bearer(admin)).set('Content-Type', 'application/json').send('{"context":').expect(400, { errorCode: 'INVALID_CONTEXT', errorDetails: 'request body is not valid JSON' });
    await request(app).post('/ofrep/v1/evaluate/flags').set(bearer(admin)).set('Content-Type', 'application/json; charset=koi8-r').send('{}').expect(415, { errorDetails: 'request body refused' });
    await request(app).post('/ofrep/v1/evaluate/flags').set(bearer(admin)).send({ context: 'nope' }).expect(400);
    await request(app).post('/ofrep/v1/evaluate/flags').set(bearer(admin)).send({ context: { locale: 'x'.repeat(20_000) } }).expect(413);
  });

  it('single: a refused body still names the flag (OFREP requires `key`; clients report GENERAL without it)', async () => {
    for (const type of ['application/json', 'text/plain']) {
      const res = await request(app).post('/ofrep/v1/evaluate/flags/fast-payment').set(bearer(admin)).set('Content-Type', type).send('{"context":').expect(400);
      expect(res.body).toEqual({ key: 'fast-payment', errorCode: 'INVALID_CONTEXT', errorDetails: 'request body is not valid JSON' });
      expect(checkOfrepAnswer('single', res.status, res.body).errors).toEqual([]);
    }
    const large = await request(app).post('/ofrep/v1/evaluate/flags/fast-payment').set(bearer(admin)).send({ context: { locale: 'x'.repeat(20_000) } }).expect(413);
    expect(large.body).toEqual({ key: 'fast-payment', errorDetails: 'request body too large' });
  });

  it('single: a flag key that is not valid percent-encoding answers 400 with an OFREP body (was 500)', async () => {
    for (const auth of [bearer(admin), {}]) {
      const res = await request(app).post('/ofrep/v1/evaluate/flags/%E0%A4%A').set(auth).send({}).expect(400);
      expect(res.body).toEqual({ key: '%E0%A4%A', errorCode: 'GENERAL', errorDetails: 'the flag key in the path is not valid percent-encoding' });
      expect(res.headers).toMatchObject({ 'content-type': 'application/json; charset=utf-8', 'cache-control': 'private, no-store', vary: 'Authorization' });
      expect(res.headers.etag).toBeUndefined();
      expect(checkOfrepAnswer('single', res.status, res.body).errors).toEqual([]);
    }
    // a well-encoded key is decoded as usual
    await request(app).post('/ofrep/v1/evaluate/flags/fast%2Dpayment').set(bearer(admin)).send({}).expect(200);
  });

  it('answers CORS preflights for allowed origins only, exposing ETag', async () => {
    const ok = await request(app).options('/ofrep/v1/evaluate/flags').set('Origin', 'https://app.test').set('Access-Control-Request-Method', 'POST').expect(204);
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.test');
    expect(ok.headers['access-control-expose-headers']).toBe('ETag');
    expect(ok.headers['access-control-allow-headers']).toContain('If-None-Match');
    const allowed = await request(app).post('/ofrep/v1/evaluate/flags').set('Origin', 'https://app.test').set(bearer(admin)).send({}).expect(200);
    expect(allowed.headers.vary).toBe('Origin, Authorization');
    const other = await request(app).post('/ofrep/v1/evaluate/flags').set('Origin', 'https://evil.test').set(bearer(admin)).send({});
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('SSE: caps concurrent streams (429 + Retry-After), sends heartbeats, frees a slot on disconnect, ends every stream on close()', async () => {
    const jwtOpts = { secret: SECRET, algorithms: ['HS256' as const], issuer: ISSUER, audience: AUDIENCE };
    const capped = ofrep({ provider, identity: defineIdentity({ jwt: jwtOpts }), stream: { maxStreams: 2, heartbeatMs: 40 } });
    const { server, port, close } = await serve(express().use(capped));
    const open = (path: string) => openStream(port, path);
    try {
      const bulk = await request(server).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).send({}).expect(200);
      const uri = (bulk.body as BulkEvaluationSuccessResponse).eventStreams![0]!.endpoint!.requestUri!;
      const first = await open(uri);
      const second = await open(uri);
      expect([first.status, second.status]).toEqual([200, 200]);
      await eventually(() => capped.openStreams() === 2);

      const refused = await open(uri);
      expect(refused.status).toBe(429);
      expect(refused.headers['retry-after']).toBe('30');
      await refused.ended;
      expect(JSON.parse(refused.text())).toEqual({ errorDetails: 'too many open streams' });

      await eventually(() => first.text().includes(': ping'));

      first.destroy();
      await eventually(() => capped.openStreams() === 1);
      const third = await open(uri);
      expect(third.status).toBe(200);
      await eventually(() => capped.openStreams() === 2);

      capped.close();
      await Promise.all([second.ended, third.ended]);
      expect(capped.openStreams()).toBe(0);
      expect((await open(uri)).status).toBe(401); // a closed router opens no new stream
    } finally {
      capped.close();
      await close();
    }
  });

  it('SSE: a client that leaves while the app\'s middleware runs holds no slot; one whose empty body a middleware read keeps its stream', async () => {
    const jwtOpts = { secret: SECRET, algorithms: ['HS256' as const], issuer: ISSUER, audience: AUDIENCE };
    const router = ofrep({ provider, identity: defineIdentity({ jwt: jwtOpts }) });
    let reached = 0;
    const a = express()
      // e.g. an async auth or rate-limit check
      .use('/slow', (_req, _res, next) => void setTimeout(next, 150), (_req, _res, next) => (reached++, next()), router)
      // a middleware that reads every body, even a GET's empty one
      .use('/reading', (req, _res, next) => void req.resume().once('end', () => next()), router);
    const { server, port, close } = await serve(a);
    try {
      const bulk = await request(server).post('/slow/ofrep/v1/evaluate/flags').set(bearer(customer)).send({}).expect(200);
      const uri = (bulk.body as BulkEvaluationSuccessResponse).eventStreams![0]!.endpoint!.requestUri!;
      expect(uri).toMatch(/^\/slow\/ofrep\/v1\/events\?ticket=/);
      const gone = http.get({ port, host: '127.0.0.1', path: uri });
      gone.on('error', () => undefined);
      setTimeout(() => gone.destroy(), 30);
      await eventually(() => reached === 2); // the bulk request, then the stream request: handled in that same tick
      expect(router.openStreams()).toBe(0);

      const message = await firstMessageAfter(port, uri.replace(/^\/slow\//, '/reading/'), flipCheckoutVariant);
      expect(message).toEqual({ status: 200, contentType: expect.stringContaining('text/event-stream'), data: { type: 'refetchEvaluation', etag: expect.any(String) } });
    } finally {
      router.close();
      await close();
    }
  });

  it('SSE: a caller at maxStreamsPerCaller who opens another stream loses its OLDEST one (the newest wins); other callers are unaffected', async () => {
    const jwtOpts = { secret: SECRET, algorithms: ['HS256' as const], issuer: ISSUER, audience: AUDIENCE };
    const capped = ofrep({ provider, identity: defineIdentity({ jwt: jwtOpts }), stream: { maxStreamsPerCaller: 2 } });
    const { server, port, close } = await serve(express().use(capped));
    const streamUri = async (t: string) => {
      const bulk = await request(server).post('/ofrep/v1/evaluate/flags').set(bearer(t)).send({}).expect(200);
      return (bulk.body as BulkEvaluationSuccessResponse).eventStreams![0]!.endpoint!.requestUri!;
    };
    try {
      // the caller's cap held by two streams of an old ticket (e.g. connections left behind, not yet noticed as dead)
      const oldTicket = await streamUri(customer);
      const first = await openStream(port, oldTicket);
      const second = await openStream(port, oldTicket);
      const other = await openStream(port, await streamUri(admin));
      expect([first.status, second.status, other.status]).toEqual([200, 200, 200]);
      await Promise.all([first, second, other].map((s) => s.waitFor(/: connected\n\n/)));
      expect(capped.openStreams()).toBe(3);

      // a fresh ticket of the same caller is served; the oldest stream is ended to make room
      const fresh = await openStream(port, await streamUri(customer));
      expect(fresh.status).toBe(200);
      await first.ended;
      expect(first.text()).toContain(': replaced by a newer stream of this caller');
      expect(capped.openStreams()).toBe(3); // second, other, fresh: never more than 2 for one caller

      // they all still hear changes
      await flipCheckoutVariant();
      await Promise.all([second, other, fresh].map((s) => s.waitFor(/event: message\ndata: .*refetchEvaluation/)));
      // the ticket carries an expiry, a keyed hash standing for the caller, and a signature
      expect(await streamUri(customer)).toMatch(/\?ticket=\d+\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}&since=/);
    } finally {
      capped.close();
      await close();
    }
  });

  describe('SSE positions: every event has an id; a stream opened from an older position starts with a refetch', () => {
    let positions: OfrepRouter;
    let served: Awaited<ReturnType<typeof serve>>;
    const jwtOpts = { secret: SECRET, algorithms: ['HS256' as const], issuer: ISSUER, audience: AUDIENCE };
    const refetch = /id: ([\w-]{22})\nevent: message\ndata: (.+)\n\n/;

    beforeAll(async () => {
      positions = ofrep({ provider, identity: defineIdentity({ jwt: jwtOpts }), stream: { ticketSecret: 'p'.repeat(32) } });
      served = await serve(express().use(positions));
    });
    afterAll(async () => {
      positions.close();
      await served.close();
    });

    /** A change, once this process's provider has heard it (so the stream's position has moved). */
    const changeHeard = async () => {
      const heard = nextEvent(provider, ProviderEvents.ConfigurationChanged);
      await flipCheckoutVariant();
      await heard;
    };
    const streamUri = async () => {
      const bulk = await request(served.server).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).send({}).expect(200);
      return (bulk.body as BulkEvaluationSuccessResponse).eventStreams![0]!.endpoint!.requestUri!;
    };
    it('a client that saw the latest change (Last-Event-ID = current) gets no refetch on connect; the next change has a new id', async () => {
      const uri = await streamUri();
      const first = await openStream(served.port, uri);
      const [, current] = await first.waitFor(/id: ([\w-]{22})\n: connected\n\n/);
      first.destroy();
      const again = await openStream(served.port, uri, { 'Last-Event-ID': current! });
      try {
        await again.waitFor(/: connected\n\n/);
        await flipCheckoutVariant();
        const [, id, data] = await again.waitFor(refetch);
        // the only event is the change's: nothing was sent on connect
        expect(again.text().match(/event: message/g)).toHaveLength(1);
        expect(id).not.toBe(current);
        expect(JSON.parse(data!)).toEqual({ type: 'refetchEvaluation', etag: id });
        expect(checkOfrepEvent(sseEvents(again.text())[0]!)).toEqual([]);
      } finally {
        again.destroy();
      }
    });

    it.each([
      ['an older id of this process', 'older'],
      ['an id from another process (or before a restart)', 'AAAAAAAAAAAA.7'],
      ['garbage', 'x'.repeat(500)],
      ['an empty id', ''],
    ])('a reconnect with %s (Last-Event-ID) gets refetchEvaluation at once, with the current id', async (_name, given) => {
      const uri = await streamUri();
      // a change the client missed while it was away
      const first = await openStream(served.port, uri);
      const [, older] = await first.waitFor(/id: ([\w-]{22})\n: connected\n\n/);
      first.destroy();
      await eventually(() => positions.openStreams() === 0);
      await changeHeard();
      const lastEventId = given === 'older' ? older! : given;
      const back = await openStream(served.port, uri, { 'Last-Event-ID': lastEventId });
      try {
        const [, id, data] = await back.waitFor(refetch); // no write since: it is sent on connect
        expect(id).not.toBe(older);
        expect(back.text()).toContain(`id: ${id}\n: connected`); // the connect block already names the current position
        expect(JSON.parse(data!)).toEqual({ type: 'refetchEvaluation', etag: id });
      } finally {
        back.destroy();
      }
    });

    it('a first connection (no Last-Event-ID) from a bulk answer older than the latest change gets refetchEvaluation (the URL\'s since)', async () => {
      const uri = await streamUri();
      expect(uri).toMatch(/&since=[\w-]{22}$/);
      await changeHeard(); // between the bulk answer and the stream opening
      const stream = await openStream(served.port, uri);
      try {
        await stream.waitFor(refetch);
      } finally {
        stream.destroy();
      }
      // with the URL of a bulk answer made after the change, nothing is sent on connect
      const fresh = await openStream(served.port, await streamUri());
      try {
        await fresh.waitFor(/: connected\n\n/);
        await flipCheckoutVariant();
        await fresh.waitFor(refetch);
        expect(fresh.text().match(/event: message/g)).toHaveLength(1);
      } finally {
        fresh.destroy();
      }
    });
  });

  it('SSE: the official OFREP web provider hears a change made while its stream was down, after EventSource reconnects (Last-Event-ID)', async () => {
    (globalThis as { EventSource?: unknown }).EventSource = EventSource;
    const jwtOpts = { secret: SECRET, algorithms: ['HS256' as const], issuer: ISSUER, audience: AUDIENCE };
    const router = ofrep({ provider, identity: defineIdentity({ jwt: jwtOpts }), stream: { retryMs: 50 } });
    // holds stream requests while closed: the reconnect cannot arrive before the change is made
    let releaseStreams: (() => void) | undefined;
    let held: Promise<void> | undefined;
    const gate = (req: express.Request, _res: express.Response, next: express.NextFunction) => (req.path === '/ofrep/v1/events' && held ? void held.then(() => next()) : next());
    const { port, server, close } = await serve(express().use(gate, router));
    const web = new OFREPWebProvider({ baseUrl: `http://127.0.0.1:${port}`, headers: [['Authorization', `Bearer ${customer}`]], cacheMode: 'disabled' });
    try {
      await WebOpenFeature.setProviderAndWait('reconnect', web);
      const client = WebOpenFeature.getClient('reconnect');
      const configurationChanged = () => new Promise<void>((resolve) => {
        const h = () => (client.removeHandler(WebProviderEvents.ConfigurationChanged, h), resolve());
        client.addHandler(WebProviderEvents.ConfigurationChanged, h);
      });
      await eventually(() => router.openStreams() === 1);
      // a first change over the live stream: the client now holds that event's id
      let changed = configurationChanged();
      await flipCheckoutVariant();
      await changed;
      const before = client.getStringValue('checkout-variant', 'none');

      // the stream drops; while it is down, the flag changes
      held = new Promise<void>((r) => (releaseStreams = r));
      server.closeAllConnections();
      await eventually(() => router.openStreams() === 0);
      const heardByServer = nextEvent(provider, ProviderEvents.ConfigurationChanged);
      await flipCheckoutVariant();
      await heardByServer; // announced to no stream: nobody is connected
      changed = configurationChanged();
      held = undefined;
      releaseStreams!(); // EventSource's reconnect (with Last-Event-ID) goes through now
      // bounded, so that a failure ends the provider and the server instead of leaving them running
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([changed, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('the provider never heard the change made while its stream was down')), 4000)))]).finally(() => clearTimeout(timer));
      expect(client.getStringValue('checkout-variant', 'none')).not.toBe(before);
    } finally {
      await WebOpenFeature.clearProviders();
      router.close();
      await close();
    }
  });

  it('SSE: announces a write with refetchEvaluation, and refuses streams without a valid ticket', async () => {
    const { server, port, close } = await serve(app);
    try {
      const bulk = await request(app).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).send({});
      const uri = (bulk.body as BulkEvaluationSuccessResponse).eventStreams![0]!.endpoint!.requestUri;
      await request(app).get('/ofrep/v1/events?ticket=123.bad').expect(401);

      const message = await firstMessageAfter(port, uri!, flipCheckoutVariant);
      expect(message).toEqual({ status: 200, contentType: expect.stringContaining('text/event-stream'), data: { type: 'refetchEvaluation', etag: expect.any(String) } });
    } finally {
      await close();
    }
  });
});
