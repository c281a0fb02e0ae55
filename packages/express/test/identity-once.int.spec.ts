import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import request from 'supertest';
import { OpenFeature } from '@openfeature/server-sdk';
import { MemoryFlagStore, RollgateProvider, type RedisFlagStore } from '@rollgate/redis';
import { adminRouter, defineIdentity, identity, ofrep, requireFeature, type OfrepRouter } from '@rollgate/express';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { callers, identityOptions, jwtOptions, seedIdentityScenario, tokenOf, type Caller } from '../../server/test/support/identity-scenario';

// Identity is defined once: for the same token, requireFeature (the API) and OFREP (what the
// browser shows) give the same decision, in every set-up docs/express.md describes — and the
// set-up that could make them disagree (a second copy of the identity config) does not start.

let redis: TestRedis;
let writer: RedisFlagStore;
let provider: RollgateProvider;
const routers: OfrepRouter[] = [];

beforeAll(async () => {
  redis = await startRedis();
  const env = `identity-once-${process.pid}`;
  writer = await seedIdentityScenario(redis.url, env);
  provider = new RollgateProvider({ store: { redis: redis.url, env } });
  await OpenFeature.setProviderAndWait(provider);
});

afterAll(async () => {
  for (const r of routers) r.close();
  await OpenFeature.close();
  await writer.close();
  await redis.stop();
});

function routes(app: Express): Express {
  app.post('/payments/fast', requireFeature('fast-payment'), (_req, res) => res.json({ paid: true }));
  app.post('/support/priority', requireFeature('priority-support'), (_req, res) => res.json({ queued: true }));
  return app;
}

function router(options: Parameters<typeof ofrep>[0]): OfrepRouter {
  const r = ofrep(options);
  routers.push(r);
  return r;
}

/** What the API lets this caller do, and what OFREP tells their browser (single and bulk), for both flags. */
async function decisions(app: Express, caller: Caller) {
  const auth = { Authorization: `Bearer ${tokenOf(caller)}` };
  const api = async (path: string) => {
    const res = await request(app).post(path).set(auth);
    expect([200, 403]).toContain(res.status);
    return res.status === 200;
  };
  const single = async (key: string) => {
    const res = await request(app).post(`/ofrep/v1/evaluate/flags/${key}`).set(auth).send({});
    expect(res.status).toBe(200);
    return (res.body as { value?: unknown }).value === true;
  };
  const bulk = await request(app).post('/ofrep/v1/evaluate/flags').set(auth).send({ context: { bookingsThisMonth: 1000, tenant: 'atlas' } });
  expect(bulk.status).toBe(200);
  const inBulk = (key: string) => (bulk.body as { flags: { key: string; value?: unknown }[] }).flags.find((f) => f.key === key)?.value === true;
  return {
    fast: { api: await api('/payments/fast'), ofrep: await single('fast-payment'), bulk: inBulk('fast-payment') },
    busy: { api: await api('/support/priority'), ofrep: await single('priority-support'), bulk: inBulk('priority-support') },
  };
}

async function expectAgreement(app: Express): Promise<void> {
  for (const caller of callers) {
    const got = await decisions(app, caller);
    // same decision everywhere, and the right one (6 VIP agents get the button AND the API)
    expect({ caller: caller.name, ...got }).toEqual({
      caller: caller.name,
      fast: { api: caller.fast, ofrep: caller.fast, bulk: caller.fast },
      busy: { api: caller.busy, ofrep: caller.busy, bulk: caller.busy },
    });
  }
}

describe('the guard and OFREP decide the same for the same token', () => {
  it('with the identity defined once and given to ofrep() (mounted first) and identity()', async () => {
    const loads = { count: 0 };
    const who = defineIdentity(identityOptions(loads));
    const app = express();
    app.use(router({ provider, identity: who }));
    app.use(identity(who));
    await expectAgreement(routes(app));
    // one cache for both: each caller's bookings were read once, whether OFREP or the API asked first
    expect(loads.count).toBe(callers.length);
  });

  it('with identity() mounted before ofrep(), which then uses the request identity', async () => {
    const app = express();
    app.use(identity(identityOptions()));
    // this router cannot know the enriched names at start-up; each request's identity still owns them
    app.use(router({ provider, clientAttributes: ['bookingsThisMonth'] }));
    await expectAgreement(routes(app));
  });

  it('with a definition given to identity() before a router that has the same one (identified once)', async () => {
    const loads = { count: 0 };
    const who = defineIdentity(identityOptions(loads));
    const app = express();
    app.use(identity(who));
    app.use(router({ provider, identity: who }));
    await expectAgreement(routes(app));
    expect(loads.count).toBe(callers.length);
  });
});

describe('a second copy of the identity config is refused', () => {
  it('at start-up: ofrep() and adminRouter() take a definition, not options of their own', () => {
    // the README's old quick start: claims on identity(), none on ofrep()
    expect(() => ofrep({ provider, identity: { jwt: jwtOptions } } as never)).toThrow(/ofrep: options\.identity must be the identity defined once with defineIdentity/);
    expect(() => adminRouter({ store: new MemoryFlagStore(), identity: { jwt: jwtOptions }, authorize: () => true } as never)).toThrow(/adminRouter: options\.identity must be the identity defined once/);
  });

  it('at start-up: a client may not send an attribute the identity owns, enriched ones included', () => {
    expect(() => ofrep({ provider, identity: defineIdentity(identityOptions()), clientAttributes: ['bookingsThisMonth'] })).toThrow('clientAttributes may not include "bookingsThisMonth"');
  });

  it('at the first request: a router whose definition differs from the one that identified the request answers with an error, never a decision', async () => {
    const errors: string[] = [];
    const app = express();
    app.use(identity(defineIdentity({ jwt: jwtOptions, claims: { tenant: 'agency_id' } })));
    app.use(router({ provider, identity: defineIdentity({ jwt: jwtOptions }) }));
    routes(app);
    app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
      errors.push(err.message);
      res.status(500).json({ error: 'internal' });
    });
    const vip = callers.find((c) => c.name === 'v1')!;
    const auth = { Authorization: `Bearer ${tokenOf(vip)}` };
    const res = await request(app).post('/ofrep/v1/evaluate/flags/fast-payment').set(auth).send({});
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'internal' });
    expect(errors).toEqual([expect.stringMatching(/^ofrep\(\): this request was already identified by another identity definition\. Define the identity once/)]);
    // the API itself is unaffected
    await request(app).post('/payments/fast').set(auth).expect(200);
  });

  it('two identity() middlewares with different options on one route: an error, not a second identity', async () => {
    const errors: string[] = [];
    const app = express();
    app.use(identity({ jwt: jwtOptions }));
    app.post('/payments/fast', identity({ jwt: jwtOptions, claims: { tenant: 'agency_id' } }), requireFeature('fast-payment'), (_req, res) => res.json({ paid: true }));
    app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
      errors.push(err.message);
      res.status(500).end();
    });
    await request(app).post('/payments/fast').set({ Authorization: `Bearer ${tokenOf(callers[0]!)}` }).expect(500);
    expect(errors[0]).toMatch(/^identity\(\): this request was already identified by another identity definition/);
  });
});
