import 'reflect-metadata';
import { once } from 'node:events';
import { Controller, Get, Injectable, Module, type INestApplication } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import type { Redis } from 'ioredis';
import { NOOP_PROVIDER, OpenFeature, ProviderEvents, ProviderStatus, type Client } from '@openfeature/server-sdk';
import { ConfigError, MemoryFlagStore, RedisFlagStore, RollgateProvider } from '@rollgate/redis';
import { FEATURE_CLIENT, FeatureValue, InjectFeatureClient, RequireFeature, RollgateModule, ROLLGATE_PROVIDER, ROLLGATE_STORE, type RollgateModuleOptions } from '@rollgate/nest';
import { freePort, startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { admin, bearer, customer, evaluators, flags, jwtOptions, nextEvent, recordingLogger, seed, SECRET, until } from '../../server/test/support/pilot-scenario';

// RollgateModule itself: forRoot / forRootAsync, readiness with a bounded wait, fail-closed
// when Redis is down, and shutdown closing exactly what the module opened.

@Controller()
class GatedController {
  @Get('gated')
  @RequireFeature('fast-payment')
  gated() {
    return { ok: true };
  }

  @Get('deny-when-down')
  @RequireFeature('fast-payment', { whenUnavailable: 'deny' })
  denyWhenDown() {
    return { ok: true };
  }

  @Get('hidden-when-down')
  @RequireFeature('fast-payment', { whenUnavailable: 'deny', hide: true, retryAfterSec: 30 })
  hiddenWhenDown() {
    return { ok: true };
  }

  @Get('stale-limit')
  @RequireFeature('fast-payment', { maxStalenessMs: 1000 })
  staleLimit() {
    return { ok: true };
  }

  @Get('implicit')
  async implicit(@FeatureValue('fast-payment', false) explicit: boolean) {
    return { explicit, implicit: await this.flags.getBooleanValue('fast-payment', false) };
  }

  constructor(@InjectFeatureClient() private readonly flags: Client) {}
}

let redis: TestRedis;
let writer: RedisFlagStore;
const env = `nest-module-${process.pid}`;
const apps: INestApplication[] = [];

async function boot(rollgate: ReturnType<typeof RollgateModule.forRoot>, extraImports: unknown[] = []): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [rollgate, ...(extraImports as never[])], controllers: [GatedController] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  apps.push(app);
  await app.init();
  return app;
}

beforeAll(async () => {
  redis = await startRedis();
  writer = await seed(redis.url, env);
});
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});
afterAll(async () => {
  await writer?.close();
  await redis?.stop();
});

describe('forRootAsync', () => {
  it('takes its options from ConfigService', async () => {
    const app = await boot(
      RollgateModule.forRootAsync({
        imports: [ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => ({ ROLLGATE_REDIS_URL: redis.url, ROLLGATE_ENV: env, JWT_SECRET: SECRET })] })],
        inject: [ConfigService],
        useFactory: (config: ConfigService): RollgateModuleOptions => ({
          store: { redis: config.getOrThrow<string>('ROLLGATE_REDIS_URL'), env: config.getOrThrow<string>('ROLLGATE_ENV') },
          jwt: { ...jwtOptions, secret: config.getOrThrow<string>('JWT_SECRET') },
          domain: 'async-config',
          logger: recordingLogger(),
        }),
      }),
    );
    await request(app.getHttpServer()).get('/gated').set(bearer(admin)).expect(200);
    await request(app.getHttpServer()).get('/gated').set(bearer(customer)).expect(403);
    expect(OpenFeature.getProvider('async-config')).toBe(app.get(ROLLGATE_PROVIDER));
  });

  it('takes them from any factory with inject, awaiting an async factory', async () => {
    @Injectable()
    class Settings {
      readonly redisUrl = redis.url;
    }
    @Module({ providers: [Settings], exports: [Settings] })
    class SettingsModule {}
    const app = await boot(
      RollgateModule.forRootAsync({
        imports: [SettingsModule],
        inject: [Settings],
        useFactory: async (s: Settings) => {
          await Promise.resolve();
          return { store: { redis: s.redisUrl, env }, jwt: jwtOptions, domain: 'async-inject', logger: recordingLogger() };
        },
      }),
    );
    await request(app.getHttpServer()).get('/gated').set(bearer(admin)).expect(200);
    const client = app.get(FEATURE_CLIENT);
    expect(client.metadata.domain).toBe('async-inject');
  });

  it('refuses OFREP options from the factory when the controller was not registered, naming the fix', async () => {
    const moduleRef = Test.createTestingModule({
      imports: [RollgateModule.forRootAsync({ useFactory: () => ({ store: new MemoryFlagStore(), jwt: jwtOptions, ofrep: {}, domain: 'async-ofrep' }) })],
    });
    await expect(moduleRef.compile()).rejects.toThrow('add `ofrep: true` (or `{ path }`) to forRootAsync');
  });
});

describe('forRoot', () => {
  it('works with an in-memory store (yours: left open) and closes only the provider it created', async () => {
    const store = new MemoryFlagStore({ initial: { flags, $evaluators: evaluators } });
    const close = jest.spyOn(store, 'close');
    const app = await boot(RollgateModule.forRoot({ store, jwt: jwtOptions, domain: 'memory', logger: recordingLogger() }));
    await request(app.getHttpServer()).get('/gated').set(bearer(admin)).expect(200);
    const provider = app.get<RollgateProvider>(ROLLGATE_PROVIDER);
    expect(app.get(ROLLGATE_STORE)).toBe(store);
    const onClose = jest.spyOn(provider, 'onClose');
    await app.close();
    apps.splice(0);
    expect(onClose).toHaveBeenCalled();
    expect(close).not.toHaveBeenCalled();
    expect(OpenFeature.getProvider('memory')).toBe(NOOP_PROVIDER);
  });

  it('registers an existing provider and leaves it open on shutdown', async () => {
    const provider = new RollgateProvider({ store: new MemoryFlagStore({ initial: { flags, $evaluators: evaluators } }) });
    const onClose = jest.spyOn(provider, 'onClose');
    const app = await boot(RollgateModule.forRoot({ provider, jwt: jwtOptions, domain: 'existing', logger: recordingLogger() }));
    await request(app.getHttpServer()).get('/gated').set(bearer(admin)).expect(200);
    expect(app.get(ROLLGATE_STORE)).toBeNull();
    await app.close();
    apps.splice(0);
    expect(onClose).not.toHaveBeenCalled();
    expect(OpenFeature.getProvider('existing')).toBe(provider);
    await OpenFeature.setProviderAndWait('existing', NOOP_PROVIDER);
  });

  it('transactionContext: false leaves evaluations without a context alone; @FeatureValue still targets the caller', async () => {
    const store = new MemoryFlagStore({ initial: { flags, $evaluators: evaluators } });
    const app = await boot(RollgateModule.forRoot({ store, jwt: jwtOptions, domain: 'no-tx', transactionContext: false, logger: recordingLogger() }));
    await request(app.getHttpServer()).get('/implicit').set(bearer(admin)).expect(200, { explicit: true, implicit: false });
  });

  it('global: false makes the module visible only where it is imported', async () => {
    @Controller('elsewhere')
    class ElsewhereController {
      @Get()
      @RequireFeature('fast-payment')
      get() {
        return { ok: true };
      }
    }
    @Module({ controllers: [ElsewhereController] })
    class ElsewhereModule {}
    const store = new MemoryFlagStore({ initial: { flags, $evaluators: evaluators } });
    const local = RollgateModule.forRoot({ store, jwt: jwtOptions, domain: 'local', global: false, logger: recordingLogger() });
    const app = await boot(local);
    await request(app.getHttpServer()).get('/gated').set(bearer(admin)).expect(200);
    const elsewhere = Test.createTestingModule({ imports: [local, ElsewhereModule] });
    await expect(elsewhere.compile()).rejects.toThrow(/Symbol\(rollgate:runtime\).*ElsewhereModule/s);
  });

  it('refuses invalid options where the module is defined, naming the option', () => {
    expect(() => RollgateModule.forRoot({ jwt: jwtOptions } as RollgateModuleOptions)).toThrow(ConfigError);
    expect(() => RollgateModule.forRoot({ jwt: jwtOptions } as RollgateModuleOptions)).toThrow('give `store` (RedisFlagStore options or a FlagStore) or an existing OpenFeature `provider`');
    expect(() => RollgateModule.forRoot({ store: new MemoryFlagStore(), provider: NOOP_PROVIDER, jwt: jwtOptions })).toThrow('either `store` or `provider`, not both');
    expect(() => RollgateModule.forRoot({ store: new MemoryFlagStore() })).toThrow('give `jwt` (verify a Bearer token) or `getIdentity`');
    expect(() => RollgateModule.forRoot({ store: new MemoryFlagStore(), jwt: jwtOptions, readyTimeoutMs: 0 })).toThrow('readyTimeoutMs must be a positive number');
    expect(() => RollgateModule.forRoot({ store: new MemoryFlagStore(), jwt: jwtOptions, ofrep: { bodyLimit: 'lots' } })).toThrow("ofrep.bodyLimit must be a positive number of bytes or a size such as '16kb'");
    expect(() => RollgateModule.forRoot({ store: new MemoryFlagStore(), jwt: jwtOptions, ofrep: { cors: { origins: ['*'] } } })).toThrow('ofrep.cors.origins');
    expect(() => RollgateModule.forRootAsync({} as never)).toThrow('give useFactory');
  });

  it('refuses unsafe identity options at start-up (the checks of @rollgate/server)', async () => {
    const moduleRef = Test.createTestingModule({ imports: [RollgateModule.forRoot({ store: new MemoryFlagStore(), jwt: { secret: 'short', algorithms: ['HS256'] }, domain: 'bad-jwt' })] });
    await expect(moduleRef.compile()).rejects.toThrow('at least 32 bytes');
    const ofrepOnForeign = Test.createTestingModule({ imports: [RollgateModule.forRoot({ provider: NOOP_PROVIDER, jwt: jwtOptions, ofrep: {}, domain: 'foreign' })] });
    await expect(ofrepOnForeign.compile()).rejects.toThrow('ofrep needs a RollgateProvider');
  });
});

describe('when Redis is down', () => {
  it('boots within readyTimeoutMs, fails closed with 503 + Retry-After, and follows Redis once it is back', async () => {
    const port = await freePort();
    const logger = recordingLogger();
    const downEnv = `${env}-down`;
    // boots at all: with Redis never answering, only readyTimeoutMs ends the wait (no wall-clock limit)
    const app = await boot(
      RollgateModule.forRoot({
        store: { redis: { host: '127.0.0.1', port, retryStrategy: () => 50 }, env: downEnv },
        providerOptions: { retryIntervalMs: 50 },
        readyTimeoutMs: 300,
        jwt: jwtOptions,
        domain: 'down',
        ofrep: { stream: false },
        logger,
      }),
    );
    // where and why, in words: not ioredis' retry internals
    expect(logger.lines).toContain(`warn rollgate: Redis at redis://127.0.0.1:${port} is unreachable: connection refused; the app starts anyway and @RequireFeature answers 503 until the flags are loaded`);
    expect(OpenFeature.getClient('down').providerStatus).toBe(ProviderStatus.ERROR);

    const server = app.getHttpServer();
    const res = await request(server).get('/gated').set(bearer(admin)).expect(503, { error: 'feature_decision_unavailable' });
    expect(res.headers['retry-after']).toBe('5');
    expect(res.headers['cache-control']).toBe('no-store');
    await request(server).get('/deny-when-down').set(bearer(admin)).expect(403, { error: 'feature_not_enabled' });
    await request(server).get('/hidden-when-down').set(bearer(admin)).expect(404);
    await request(server).get('/gated').expect(401); // identity still comes first
    // OFREP says the flags are not there yet, rather than "no flags"
    const ofrepDown = await request(server).post('/ofrep/v1/evaluate/flags').set(bearer(admin)).send({}).expect(500, { errorCode: 'PROVIDER_NOT_READY', errorDetails: 'flags are not loaded yet; retry later' });
    expect(ofrepDown.headers.etag).toBeUndefined();

    // Redis comes up and gets the flags: the provider recovers by itself
    const provider = app.get<RollgateProvider>(ROLLGATE_PROVIDER);
    const loaded = until(provider, () => provider.health().version > 0 && OpenFeature.getClient('down').providerStatus === ProviderStatus.READY);
    const late = await startRedis(port);
    const lateWriter = await seed(late.url, downEnv);
    try {
      await loaded;
      await request(server).get('/gated').set(bearer(admin)).expect(200);
      await request(server).get('/gated').set(bearer(customer)).expect(403);
      await request(server).post('/ofrep/v1/evaluate/flags').set(bearer(admin)).send({}).expect(200);
    } finally {
      await app.close();
      apps.splice(0);
      await lateWriter.close();
      await late.stop();
    }
  });

  it('maxStalenessMs: answers 503 once the flags are older than allowed (STALE)', async () => {
    const own = await startRedis();
    const ownWriter = await seed(own.url, `${env}-stale`);
    const app = await boot(
      RollgateModule.forRoot({
        store: { redis: { host: '127.0.0.1', port: own.port, retryStrategy: () => 100 }, env: `${env}-stale`, pollIntervalMs: 100 },
        jwt: jwtOptions,
        domain: 'stale',
        logger: recordingLogger(),
      }),
    );
    const provider = app.get<RollgateProvider>(ROLLGATE_PROVIDER);
    try {
      await request(app.getHttpServer()).get('/stale-limit').set(bearer(admin)).expect(200);
      const stale = nextEvent(provider, ProviderEvents.Stale);
      await ownWriter.close();
      await own.kill();
      await stale;
      // the last known flags still serve routes without a staleness limit
      await request(app.getHttpServer()).get('/gated').set(bearer(admin)).expect(200);
      // the flags were last confirmed before the kill: refused once that is more than 1 s ago
      for (let status = 0; status !== 503; ) {
        status = (await request(app.getHttpServer()).get('/stale-limit').set(bearer(admin))).status;
        if (status !== 503) {
          expect(status).toBe(200);
          await new Promise<void>((resolve) => setTimeout(resolve, 50)); // staleness grows with the clock: poll it
        }
      }
      await request(app.getHttpServer()).get('/gated').set(bearer(admin)).expect(200);
      // back (empty: the provider keeps its last known flags and says so)
      const back = nextEvent(provider, ProviderEvents.Ready);
      await own.start();
      await back;
      await request(app.getHttpServer()).get('/stale-limit').set(bearer(admin)).expect(200);
    } finally {
      // closed while Redis answers: RedisFlagStore.close() during an outage leaves ioredis' 2 s disconnect timer
      await app.close();
      apps.splice(0);
      await own.stop();
    }
  });
});

describe('shutdown', () => {
  it('closes the provider and the Redis connections the module created; nothing is left open', async () => {
    const app = await boot(RollgateModule.forRoot({ store: { redis: redis.url, env }, jwt: jwtOptions, domain: 'shutdown', logger: recordingLogger() }));
    await request(app.getHttpServer()).get('/gated').set(bearer(admin)).expect(200);
    const store = app.get<RedisFlagStore>(ROLLGATE_STORE);
    const { client, subscriber } = store as unknown as { client: Redis; subscriber: Redis };
    expect([client.status, subscriber.status]).toEqual(['ready', 'ready']);
    const ends = [client, subscriber].map((c) => once(c, 'end'));
    await app.close();
    apps.splice(0);
    // QUIT has been answered: the sockets end right after (no timers, no reconnects)
    await Promise.all(ends);
    expect([client.status, subscriber.status]).toEqual(['end', 'end']);
    expect(OpenFeature.getProvider('shutdown')).toBe(NOOP_PROVIDER);
  });
});
