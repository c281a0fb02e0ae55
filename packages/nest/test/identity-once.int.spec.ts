import 'reflect-metadata';
import { Controller, Post, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import express from 'express';
import request from 'supertest';
import { RollgateProvider, type RedisFlagStore } from '@rollgate/redis';
import { defineIdentity, ofrep, type OfrepRouter } from '@rollgate/express';
import { RequireFeature, RollgateModule, type RollgateModuleOptions } from '@rollgate/nest';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { recordingLogger } from '../../server/test/support/pilot-scenario';
import { callers, identityOptions, jwtOptions, seedIdentityScenario, tokenOf } from '../../server/test/support/identity-scenario';

// Nest defines the identity once, in the module: @RequireFeature and the OFREP controller give
// the same decision for the same token — and so does an Express OFREP router in the same process
// that shares the module's identity definition.

@Controller()
class PaymentsController {
  @Post('payments/fast')
  @RequireFeature('fast-payment')
  fast() {
    return { paid: true };
  }

  @Post('support/priority')
  @RequireFeature('priority-support')
  priority() {
    return { queued: true };
  }
}

let redis: TestRedis;
let writer: RedisFlagStore;
let env: string;
const apps: INestApplication[] = [];
const routers: OfrepRouter[] = [];
const providers: RollgateProvider[] = [];

beforeAll(async () => {
  redis = await startRedis();
  env = `nest-identity-once-${process.pid}`;
  writer = await seedIdentityScenario(redis.url, env);
});

afterAll(async () => {
  for (const app of apps) await app.close();
  for (const r of routers) r.close();
  for (const p of providers) await p.onClose();
  await writer.close();
  await redis.stop();
});

async function nestApp(options: Partial<RollgateModuleOptions>): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [RollgateModule.forRoot({ store: { redis: redis.url, env }, ofrep: {}, logger: recordingLogger(), ...options } as RollgateModuleOptions)],
    controllers: [PaymentsController],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  apps.push(app);
  return app;
}

const allowed = async (server: unknown, path: string, token: string) => {
  const res = await request(server as never).post(path).set('Authorization', `Bearer ${token}`);
  expect([201, 403]).toContain(res.status);
  return res.status === 201;
};
const shown = async (server: unknown, key: string, token: string) => {
  const res = await request(server as never).post(`/ofrep/v1/evaluate/flags/${key}`).set('Authorization', `Bearer ${token}`).send({ context: { bookingsThisMonth: 1000 } });
  expect(res.status).toBe(200);
  return (res.body as { value?: unknown }).value === true;
};

it('@RequireFeature and the OFREP controller decide the same for every token (jwt, claims and enrich given to the module)', async () => {
  const loads = { count: 0 };
  const app = await nestApp(identityOptions(loads));
  const server = app.getHttpServer();
  for (const caller of callers) {
    const token = tokenOf(caller);
    const got = {
      fast: [await allowed(server, '/payments/fast', token), await shown(server, 'fast-payment', token)],
      busy: [await allowed(server, '/support/priority', token), await shown(server, 'priority-support', token)],
    };
    expect({ caller: caller.name, ...got }).toEqual({ caller: caller.name, fast: [caller.fast, caller.fast], busy: [caller.busy, caller.busy] });
  }
  expect(loads.count).toBe(callers.length); // one enrichment cache for the guard and OFREP
});

it('a definition shared by the module and an Express OFREP router: the Nest guard and the Express OFREP agree', async () => {
  const who = defineIdentity(identityOptions());
  const app = await nestApp({ identity: who });
  const provider = new RollgateProvider({ store: { redis: redis.url, env } });
  providers.push(provider);
  await provider.initialize();
  const router = ofrep({ provider, identity: who, stream: false });
  routers.push(router);
  const browserApi = express().use(router);
  for (const caller of callers) {
    const token = tokenOf(caller);
    expect([caller.name, await allowed(app.getHttpServer(), '/payments/fast', token), await shown(browserApi, 'fast-payment', token)]).toEqual([caller.name, caller.fast, caller.fast]);
    expect([caller.name, await allowed(app.getHttpServer(), '/support/priority', token), await shown(browserApi, 'priority-support', token)]).toEqual([caller.name, caller.busy, caller.busy]);
  }
});

it('refuses a shared definition beside identity options of its own, and plain options as `identity`, at start-up', () => {
  const store = { redis: 'redis://127.0.0.1:1', env: 'x' };
  expect(() => RollgateModule.forRoot({ store, identity: defineIdentity({ jwt: jwtOptions }), jwt: jwtOptions })).toThrow(/give either `identity` \(a shared definition\) or `jwt`, not both/);
  expect(() => RollgateModule.forRoot({ store, identity: defineIdentity({ jwt: jwtOptions }), claims: { tenant: 'agency_id' } })).toThrow(/or `claims`, not both/);
  expect(() => RollgateModule.forRoot({ store, identity: { jwt: jwtOptions } as never })).toThrow(/identity must be the object defineIdentity/);
});
