import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { RedisFlagStore } from '@rollgate/redis';
import { startRedis, type TestRedis } from '../../../packages/redis/test/support/redis-server';
import { AppModule } from '../src/app.module';
import { bookingsThisMonth, DEMO_BOOKINGS_THIS_MONTH } from '../src/bookings';
import { DemoRuntime } from '../src/demo-runtime';
import { DEMO_JWT, DEMO_ONLY_JWT_SECRET, demoToken, signDemoToken } from '../src/demo-users';
import { seedIfEmpty } from '../src/flag-store';

// The demo's behaviour segment: "agents with more than 50 bookings this month" (busy-agents in
// flags.json) get priority support. The count is the app's data, added on the server by the
// identity's enrich step — never from the token or the browser — and the API module's OFREP
// serves it like any other flag. Runs the demo's AppModule over a throwaway redis-server.

let redis: TestRedis;
let store: RedisFlagStore;
let app: INestApplication;

beforeAll(async () => {
  redis = await startRedis();
  store = new RedisFlagStore({ redis: redis.url, env: `behaviour-${process.pid}` });
  await seedIfEmpty(store);
  app = await NestFactory.create(AppModule.register(store, new DemoRuntime('redis', undefined, undefined)), { logger: false });
  await app.init();
});

afterAll(async () => {
  await app?.close();
  await store?.close();
  await redis?.stop();
});

async function prioritySupport(token: string, context?: Record<string, unknown>): Promise<unknown> {
  const res = await request(app.getHttpServer())
    .post('/ofrep/v1/evaluate/flags/priority-support')
    .set('Authorization', `Bearer ${token}`)
    .send(context ? { context } : {})
    .expect(200);
  return (res.body as { value?: unknown }).value;
}

it('agents with more than 50 bookings this month get priority support; others, and non-agents, do not', async () => {
  expect(DEMO_BOOKINGS_THIS_MONTH.bo).toBeGreaterThan(50);
  expect(await prioritySupport(demoToken('bo')!)).toBe(true); // agent, 64 bookings
  expect(await prioritySupport(demoToken('ada')!)).toBe(false); // admin, not an agent
  expect(await prioritySupport(demoToken('carol')!)).toBe(false); // customer
  // simulated agents on both sides of the line
  const agents = Array.from({ length: 40 }, (_, i) => `agent-${i}`);
  for (const sub of agents) {
    const busy = (await bookingsThisMonth(sub)) > 50;
    expect([sub, await prioritySupport(signDemoToken({ sub, roles: ['agent'], tenant: 'smallco' }))]).toEqual([sub, busy]);
  }
  expect(new Set(await Promise.all(agents.map(async (s) => (await bookingsThisMonth(s)) > 50))).size).toBe(2); // both kinds were tried
});

it('a browser cannot claim the bookings, and a token cannot either', async () => {
  let few = 'agent-0';
  for (let i = 1; (await bookingsThisMonth(few)) > 50; i++) few = `agent-${i}`; // an agent with 50 bookings or fewer
  const token = signDemoToken({ sub: few, roles: ['agent'], tenant: 'smallco' });
  expect(await prioritySupport(token, { bookingsThisMonth: 1000 })).toBe(false);
  const claiming = jwt.sign({ sub: few, roles: ['agent'], tenant: 'smallco', bookingsThisMonth: 1000 }, DEMO_ONLY_JWT_SECRET, { algorithm: 'HS256', issuer: DEMO_JWT.issuer, audience: DEMO_JWT.audience, expiresIn: '5m' });
  expect(await prioritySupport(claiming)).toBe(false);
});
