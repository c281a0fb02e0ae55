import { OpenFeature, ProviderEvents, ProviderStatus, type Client, type EventDetails } from '@openfeature/server-sdk';
import { Redis } from 'ioredis';
import { RedisFlagStore, RollgateProvider, SAFE_REDIS_OPTIONS, StoreUnavailableError, type RedisFlagStoreOptions } from '@rollgate/redis';
import { freePort, startRedis, type TestRedis } from './support/redis-server';
import { actor, checkoutTheme, fastPayment, vipAgencies } from './support/flags';

// The provider against a real redis-server: loading, live propagation, zero commands per
// evaluation, last-known-good, and the outage/recovery event sequence.

let redis: TestRedis;
let admin: Redis;
let envCounter = 0;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
});
afterAll(async () => {
  admin.disconnect();
  await redis.stop();
});
afterEach(async () => {
  await OpenFeature.clearProviders();
  for (const c of cleanups.splice(0).reverse()) await c();
});

function nextEnv(): string {
  return `prov-${process.pid}-${++envCounter}`;
}

function storeOptions(env: string, extra: Partial<RedisFlagStoreOptions> = {}): RedisFlagStoreOptions {
  return { redis: { port: redis.port, host: '127.0.0.1' }, env, pollIntervalMs: 60_000, ...extra };
}

async function seededWriter(env: string): Promise<RedisFlagStore> {
  const writer = new RedisFlagStore(storeOptions(env));
  cleanups.push(() => writer.close());
  await writer.apply(
    [
      { kind: 'evaluator', key: 'vip-agencies', definition: vipAgencies },
      { kind: 'flag', key: 'fast-payment', definition: fastPayment },
      { kind: 'flag', key: 'checkout-theme', definition: checkoutTheme },
    ],
    actor,
  );
  return writer;
}

function nextEvent(client: Client, event: ProviderEvents): Promise<EventDetails> {
  return new Promise((resolve) => {
    const handler = (details?: EventDetails) => {
      client.removeHandler(event, handler);
      resolve(details!);
    };
    client.addHandler(event, handler);
  });
}

async function connect(domain: string, options: ConstructorParameters<typeof RollgateProvider>[0]): Promise<{ provider: RollgateProvider; client: Client }> {
  const provider = new RollgateProvider(options);
  await OpenFeature.setProviderAndWait(domain, provider);
  return { provider, client: OpenFeature.getClient(domain) };
}

it('evaluates flags loaded from Redis through the OpenFeature client', async () => {
  const env = nextEnv();
  await seededWriter(env);
  const { client } = await connect('load', { store: storeOptions(env) });
  expect(client.providerStatus).toBe(ProviderStatus.READY);
  expect(await client.getBooleanValue('fast-payment', false, { targetingKey: 'u1', role: 'admin' })).toBe(true);
  expect(await client.getBooleanValue('fast-payment', false, { targetingKey: 'u2', tenant: 'acme' })).toBe(true);
  expect(await client.getStringDetails('checkout-theme', 'x', {})).toMatchObject({ value: 'classic', reason: 'STATIC', variant: 'classic' });
  // the SDK does not check types: the provider must
  expect(await client.getStringDetails('fast-payment', 'fallback', { role: 'admin' })).toMatchObject({ value: 'fallback', errorCode: 'TYPE_MISMATCH', reason: 'ERROR' });
  expect(await client.getBooleanDetails('nope', false)).toMatchObject({ value: false, errorCode: 'FLAG_NOT_FOUND' });
});

it('propagates a write to two providers on separate connections, with the changed keys', async () => {
  const env = nextEnv();
  const writer = await seededWriter(env);
  const a = await connect('a', { store: storeOptions(env) });
  const b = await connect('b', { store: storeOptions(env) });
  const heardA = nextEvent(a.client, ProviderEvents.ConfigurationChanged);
  const heardB = nextEvent(b.client, ProviderEvents.ConfigurationChanged);
  await writer.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'ops', reason: 'kill switch' });
  expect((await heardA).flagsChanged).toEqual(['fast-payment']);
  expect((await heardB).flagsChanged).toEqual(['fast-payment']);
  for (const { client } of [a, b]) {
    expect(await client.getBooleanDetails('fast-payment', false, { role: 'admin' })).toMatchObject({ value: false, reason: 'DISABLED' });
  }
});

it('lists flags affected by an evaluator change as changed', async () => {
  const env = nextEnv();
  const writer = await seededWriter(env);
  const { client } = await connect('evaluator', { store: storeOptions(env) });
  const heard = nextEvent(client, ProviderEvents.ConfigurationChanged);
  await writer.putEvaluator('vip-agencies', { in: [{ var: 'tenant' }, ['initech']] }, actor);
  expect((await heard).flagsChanged).toEqual(['fast-payment']);
  expect(await client.getBooleanValue('fast-payment', false, { targetingKey: 'x', tenant: 'initech' })).toBe(true);
});

it('sends zero Redis commands per evaluation', async () => {
  const env = nextEnv();
  await seededWriter(env);
  const { client } = await connect('zero', { store: storeOptions(env) });
  const calls = async () => {
    const info = await admin.info('stats');
    return Number(/total_commands_processed:(\d+)/.exec(info)![1]);
  };
  // let the provider's background connection set-up finish: the count is quiet when consecutive
  // readings differ only by our own INFO
  let before = await calls();
  for (let quiet = false; !quiet; ) {
    await new Promise<void>((r) => setTimeout(r, 20));
    const now = await calls();
    quiet = now - before === 1;
    before = now;
  }
  for (let i = 0; i < 2000; i++) await client.getBooleanValue('fast-payment', false, { targetingKey: `u${i}` });
  const after = await calls();
  expect(after - before).toBe(1); // the second INFO itself
});

it('keeps the last good version of a flag that becomes invalid in Redis, and still applies other changes', async () => {
  const env = nextEnv();
  const writer = await seededWriter(env);
  const warnings: string[] = [];
  const { client } = await connect('lkg', { store: storeOptions(env), logger: { warn: (m: string) => warnings.push(m), error: () => undefined } });
  const heard = nextEvent(client, ProviderEvents.ConfigurationChanged);
  // bypass the write path, as a broken tool would
  await admin.hset(writer.keys.flags, 'fast-payment', '{"state": "ENABLED", "variants": tru');
  await admin.hset(writer.keys.flags, 'checkout-theme', JSON.stringify({ ...checkoutTheme, defaultVariant: 'bold' }));
  await admin.incr(writer.keys.version);
  await admin.publish(writer.keys.changes, JSON.stringify({ version: 2 }));
  expect((await heard).flagsChanged).toEqual(['checkout-theme']);
  expect(await client.getStringValue('checkout-theme', 'x')).toBe('bold');
  expect(await client.getBooleanValue('fast-payment', false, { role: 'admin' })).toBe(true);
  expect(warnings.join('\n')).toContain('keeping the last good definition of "fast-payment"');
});

it('hears a change whose pub/sub message was lost, through the version poll', async () => {
  const env = nextEnv();
  const writer = await seededWriter(env);
  const { client } = await connect('poll', { store: storeOptions(env, { pollIntervalMs: 100 }) });
  const heard = nextEvent(client, ProviderEvents.ConfigurationChanged);
  await admin.hset(writer.keys.flags, 'checkout-theme', JSON.stringify({ ...checkoutTheme, defaultVariant: 'bold' }));
  await admin.incr(writer.keys.version); // no PUBLISH: the message is "lost"
  expect((await heard).flagsChanged).toEqual(['checkout-theme']);
});

it('records track() events in a capped Redis stream', async () => {
  const env = nextEnv();
  const writer = await seededWriter(env);
  const { client } = await connect('track', { store: storeOptions(env) });
  client.track('payment-completed', { targetingKey: 'u7' }, { value: 99.5, currency: 'EUR' });
  let events = await writer.trackedEvents();
  for (let i = 0; events.length === 0 && i < 50; i++) {
    await new Promise<void>((r) => setImmediate(r));
    events = await writer.trackedEvents();
  }
  expect(events).toMatchObject([{ name: 'payment-completed', targetingKey: 'u7', details: { value: 99.5, currency: 'EUR' } }]);
});

it('closes only what it created', async () => {
  const env = nextEnv();
  await seededWriter(env);
  const mine = new Redis(redis.url, { ...SAFE_REDIS_OPTIONS }); // a client passed in must not hang callers
  cleanups.push(async () => mine.disconnect());
  const store = new RedisFlagStore({ redis: mine, env, pollIntervalMs: 60_000 });
  const provider = new RollgateProvider({ store });
  await OpenFeature.setProviderAndWait('owned', provider);
  await OpenFeature.clearProviders();
  expect(mine.status).toBe('ready'); // the caller's connection stays open
  await store.close();
  expect(mine.status).toBe('ready');
});

it('hears a change published while its subscriber was disconnected (CLIENT KILL TYPE pubsub), through the resync on reconnect', async () => {
  const env = nextEnv();
  const writer = await seededWriter(env);
  const { client } = await connect('pubsub-kill', { store: storeOptions(env) }); // no polling: 60 s
  const heard = nextEvent(client, ProviderEvents.ConfigurationChanged);
  await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
  // written while the subscriber reconnects: the PUBLISH inside the write may reach nobody
  await writer.patchFlag('checkout-theme', { defaultVariant: 'bold' }, actor);
  expect((await heard).flagsChanged).toEqual(['checkout-theme']);
  expect(await client.getStringValue('checkout-theme', 'x')).toBe('bold');
});

describe('when Redis fails', () => {
  let own: TestRedis;
  // each test's own server, stopped in the shared afterEach after the providers are closed
  const startOwn = async (port?: number) => {
    own = await startRedis(port);
    cleanups.unshift(() => own.stop());
    return own;
  };

  it('fails initialize within the bound when Redis is down, serves defaults, and becomes READY by itself when Redis appears', async () => {
    const port = await freePort();
    const provider = new RollgateProvider({ store: { redis: { port, host: '127.0.0.1' }, env: 'down', pollIntervalMs: 200 }, initTimeoutMs: 500, retryIntervalMs: 100 });
    const client = OpenFeature.getClient('down');
    // bounded by the provider itself: the refusal, or its initTimeoutMs (never a wait for Redis)
    await expect(OpenFeature.setProviderAndWait('down', provider)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(client.providerStatus).toBe(ProviderStatus.ERROR);
    expect(await client.getBooleanValue('fast-payment', false, { role: 'admin' })).toBe(false);

    const ready = nextEvent(client, ProviderEvents.Ready);
    await startOwn(port);
    const writer = new RedisFlagStore({ redis: own.url, env: 'down' });
    cleanups.push(() => writer.close());
    await writer.putFlag('checkout-theme', { ...checkoutTheme, defaultVariant: 'bold' }, actor);
    await ready;
    expect(client.providerStatus).toBe(ProviderStatus.READY);
    expect(await client.getStringValue('checkout-theme', 'x')).toBe('bold');
  });

  it('never waits past commandTimeout when Redis hangs (SIGSTOP): STALE, evaluations from the snapshot, READY after SIGCONT', async () => {
    await startOwn();
    const env = 'hang';
    const seed = new RedisFlagStore({ redis: own.url, env });
    await seed.putFlag('checkout-theme', checkoutTheme, actor);
    await seed.close();
    const storeOpts = { redis: { port: own.port, host: '127.0.0.1', commandTimeout: 300 }, env, pollIntervalMs: 100 };
    const { client } = await connect('hang', { store: storeOpts, staleGraceMs: 60_000 });
    const probe = new RedisFlagStore({ redis: { port: own.port, host: '127.0.0.1', commandTimeout: 300 }, env });
    cleanups.push(() => probe.close());
    await probe.load();
    const stale = nextEvent(client, ProviderEvents.Stale);
    own.pause();
    // ended by the 300 ms commandTimeout (its own error), not by Redis answering or a hang
    await expect(probe.load()).rejects.toThrow('Command timed out');
    await stale;
    // from the snapshot while Redis is still paused (a command would time out: ERROR, 'x');
    // that evaluations send no command at all is the 'zero Redis commands' test above
    expect(await client.getStringDetails('checkout-theme', 'x')).toMatchObject({ value: 'classic', reason: 'STATIC' });
    const ready = nextEvent(client, ProviderEvents.Ready);
    own.resume();
    await ready;
    expect(client.providerStatus).toBe(ProviderStatus.READY);
  });

  it('serves the last snapshot when Redis dies: STALE, then ERROR after the grace period, then READY with a resync', async () => {
    await startOwn();
    const env = 'outage';
    const writer = new RedisFlagStore({ redis: own.url, env });
    await writer.putFlag('checkout-theme', checkoutTheme, actor);
    await writer.close();
    const { client } = await connect('outage', {
      store: { redis: { port: own.port, host: '127.0.0.1' }, env, pollIntervalMs: 100 },
      staleGraceMs: 300,
      retryIntervalMs: 100,
    });
    const stale = nextEvent(client, ProviderEvents.Stale);
    const error = nextEvent(client, ProviderEvents.Error);
    await own.kill();
    await stale;
    expect(client.providerStatus).toBe(ProviderStatus.STALE);
    expect(await client.getStringDetails('checkout-theme', 'x')).toMatchObject({ value: 'classic', reason: 'STATIC' });
    await error;
    expect(client.providerStatus).toBe(ProviderStatus.ERROR);
    // still the last known good value, no hang
    expect(await client.getStringValue('checkout-theme', 'x')).toBe('classic');

    const ready = nextEvent(client, ProviderEvents.Ready);
    const changed = nextEvent(client, ProviderEvents.ConfigurationChanged);
    await own.start(); // empty: no persistence
    const reseed = new RedisFlagStore({ redis: own.url, env });
    cleanups.push(() => reseed.close());
    await reseed.putFlag('checkout-theme', { ...checkoutTheme, defaultVariant: 'bold' }, actor);
    await Promise.all([ready, changed]);
    expect(client.providerStatus).toBe(ProviderStatus.READY);
    expect(await client.getStringValue('checkout-theme', 'x')).toBe('bold');
  });
});
