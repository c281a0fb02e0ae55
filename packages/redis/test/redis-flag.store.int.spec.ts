import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ConfigError, RedisFlagStore, SAFE_REDIS_OPTIONS, StoreUnavailableError } from '@rollgate/redis';
import { runWrite } from '../src/scripts';
import { startRedis, type TestRedis } from './support/redis-server';
import { actor, checkoutTheme, vipAgencies } from './support/flags';

// What only RedisFlagStore has: options refused at construction (nothing connects, nothing is
// half-written later), and the write script refusing bad arguments before its first write.

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
  for (const c of cleanups.splice(0).reverse()) await c();
});

function nextEnv(): string {
  return `store-${process.pid}-${++envCounter}`;
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('did not throw');
}

describe('options', () => {
  it.each([
    ['auditMaxLength', 1.5], // Redis refuses XADD MAXLEN ~ 1.5
    ['eventsMaxLength', 0],
    ['pollIntervalMs', 2 ** 31], // setInterval would poll every millisecond
    ['writeRetries', Number.NaN], // would retry a conflicting write forever
  ])('refuses %s: %p with a ConfigError naming the option', (name, value) => {
    const err = thrown(() => new RedisFlagStore({ redis: redis.url, env: nextEnv(), [name]: value }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(`options.${name} must be an integer`);
  });
});

describe('a client passed in', () => {
  const client = (options: RedisOptions = {}) => {
    const c = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true, ...options });
    cleanups.push(async () => c.disconnect());
    return c;
  };

  it('is refused when ioredis defaults would make loads and writes hang while Redis is down, saying how to create it', () => {
    const err = thrown(() => new RedisFlagStore({ redis: client(), env: nextEnv() }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('commandTimeout is not set, maxRetriesPerRequest is 20 (must be 0 to 3)');
    expect(err.message).toContain('new Redis({ ...SAFE_REDIS_OPTIONS, host, port })');
    expect(() => new RedisFlagStore({ redis: client({ commandTimeout: 1000, maxRetriesPerRequest: null }) })).toThrow(/down: maxRetriesPerRequest is null \(must be 0 to 3\)\. /);
    expect(() => new RedisFlagStore({ redis: client({ maxRetriesPerRequest: 1 }) })).toThrow(/down: commandTimeout is not set\. /);

    const cluster = new Cluster([{ host: '127.0.0.1', port: redis.port }], { lazyConnect: true });
    cleanups.push(async () => cluster.disconnect());
    expect(() => new RedisFlagStore({ redis: cluster })).toThrow('redisOptions.commandTimeout is not set, redisOptions.maxRetriesPerRequest is not set');
    // the offline-queue caveat is enforced: commandTimeout does not cover a Cluster's own queue
    const queueing = new Cluster([{ host: '127.0.0.1', port: redis.port }], { lazyConnect: true, redisOptions: { ...SAFE_REDIS_OPTIONS } });
    cleanups.push(async () => queueing.disconnect());
    const queued = thrown(() => new RedisFlagStore({ redis: queueing }));
    expect(queued).toBeInstanceOf(ConfigError);
    expect(queued.message).toContain('enableOfflineQueue is true (must be false: while no node is reachable a Cluster holds commands in its own offline queue, which commandTimeout does not cover)');
    expect(queued.message).toContain('new Cluster(nodes, { ...SAFE_CLUSTER_OPTIONS, redisOptions: { ...SAFE_REDIS_OPTIONS } })');
    const safeCluster = new Cluster([{ host: '127.0.0.1', port: redis.port }], {
      lazyConnect: true,
      enableOfflineQueue: false,
      redisOptions: { commandTimeout: SAFE_REDIS_OPTIONS.commandTimeout, maxRetriesPerRequest: SAFE_REDIS_OPTIONS.maxRetriesPerRequest },
    });
    cleanups.push(async () => safeCluster.disconnect());
    const store = new RedisFlagStore({ redis: safeCluster });
    cleanups.push(() => store.close());
  });

  it('is accepted with SAFE_REDIS_OPTIONS, and then a load fails fast instead of hanging when Redis dies', async () => {
    const own = await startRedis();
    cleanups.push(() => own.stop());
    const mine = new Redis({ ...SAFE_REDIS_OPTIONS, host: '127.0.0.1', port: own.port });
    cleanups.push(async () => mine.disconnect());
    const store = new RedisFlagStore({ redis: mine, env: nextEnv() });
    cleanups.push(() => store.close());
    await store.putFlag('checkout-theme', checkoutTheme, actor);
    expect((await store.load()).version).toBe(1);
    let reconnects = 0;
    mine.on('reconnecting', () => reconnects++);
    await own.kill();
    await expect(store.load()).rejects.toBeInstanceOf(StoreUnavailableError);
    // bounded by one retry (maxRetriesPerRequest: 1), not ioredis' default of 20 reconnects;
    // counted, not timed: a loaded machine stretches time, not the number of attempts
    expect(reconnects).toBeLessThanOrEqual(2);
  });
});

describe('the write script', () => {
  it('refuses bad arguments, bad JSON and mistyped keys before writing anything: no version bump, no flag, no audit entry, no PUBLISH', async () => {
    const store = new RedisFlagStore({ redis: redis.url, env: nextEnv(), pollIntervalMs: 60_000 });
    cleanups.push(() => store.close());
    await store.putFlag('checkout-theme', checkoutTheme, actor); // version 1
    const k = store.keys;
    const keys = [k.flags, k.evaluators, k.version, k.audit, k.revision, k.writeRecord('write-from-test'), k.lease] as const;
    const state = async () => ({
      version: await admin.get(k.version),
      revision: await admin.get(k.revision),
      record: await admin.get(k.writeRecord('write-from-test')),
      flags: await admin.hgetall(k.flags),
      evaluators: await admin.hgetall(k.evaluators),
      audit: await admin.xrange(k.audit, '-', '+'),
    });
    const before = await state();
    const published: string[] = [];
    const subscriber = admin.duplicate();
    cleanups.push(async () => subscriber.disconnect());
    subscriber.on('message', (_channel: string, message: string) => published.push(message));
    await subscriber.subscribe(k.changes);

    // as apply() builds them: a first change that is fine, so a script checking as it goes would
    // already have written it when it reaches the second
    const changes = ['evaluator', 'vip-agencies', JSON.stringify(vipAgencies), 'flag', 'checkout-theme', JSON.stringify({ ...checkoutTheme, defaultVariant: 'bold' })];
    const argv = (over: Record<number, string> = {}, list = changes): (string | number)[] => {
      const args: (string | number)[] = [1, k.changes, 'test-suite', '', Date.now(), 100, '', list.length / 3, 'write-from-test', 'revision-from-test', Date.now() + 60_000, 3600, '', ...list];
      for (const [i, v] of Object.entries(over)) args[Number(i) - 1] = v; // 1-based, as ARGV
      return args;
    };
    const refusals: [string, (string | number)[], string][] = [
      ['unknown kind', argv({ 17: 'flags' }), 'change 2: unknown kind flags'],
      ['invalid JSON', argv({ 19: '{"state": "ENABLED", "variants": tru' }), 'change 2: flag "checkout-theme" is not a JSON object'],
      ['a flag that is not an object', argv({ 19: '"bold"' }), 'change 2: flag "checkout-theme" is not a JSON object'],
      ['one argument missing', argv().slice(0, -1), '2 changes need 19 arguments, got 18'],
      ['one argument too many', [...argv(), 'extra'], '2 changes need 19 arguments, got 20'],
      ['a fractional change count', argv({ 8: '1.5' }), 'change count must be an integer >= 1, got 1.5'],
      ['no changes', argv({}, []), 'change count must be an integer >= 1, got 0'],
      ['a fractional audit length', argv({ 6: '1.5' }), 'audit max length must be an integer >= 1, got 1.5'],
      ['a time that is not a number', argv({ 5: 'now' }), 'time must be an integer >= 0, got now'],
      ['an expected version that is not a number', argv({ 1: 'one' }), 'expected version must be empty or an integer >= 0, got one'],
      ['an empty actor', argv({ 3: '' }), 'channel, actor, write id and revision must not be empty'],
      ['an empty write id', argv({ 9: '' }), 'channel, actor, write id and revision must not be empty'],
      ['a deadline that is not a number', argv({ 11: 'soon' }), 'deadline must be an integer >= 0, got soon'],
      ['a fractional record TTL', argv({ 12: '0.5' }), 'write record TTL must be an integer >= 1, got 0.5'],
    ];
    for (const [what, args, message] of refusals) {
      await expect(runWrite(admin, keys, args).catch((e: Error) => e.message)).resolves.toBe(`INVALID_WRITE ${message}`);
      expect([what, await state()]).toEqual([what, before]);
    }
    // an audit key someone overwrote with a string: XADD would fail after the flag was written
    const notAStream = `${k.audit}:not-a-stream`;
    await admin.set(notAStream, 'x');
    await expect(runWrite(admin, [k.flags, k.evaluators, k.version, notAStream, k.revision, keys[5], k.lease], argv())).rejects.toThrow(`INVALID_WRITE ${notAStream} holds a string, not a stream`);
    expect(await state()).toEqual(before);
    expect(await admin.get(notAStream)).toBe('x');
    // a deadline already past on Redis' clock: refused, nothing written
    await expect(runWrite(admin, keys, argv({ 11: String(Date.now() - 1000) }))).rejects.toThrow(/^WRITE_EXPIRED \d+$/);
    expect(await state()).toEqual(before);
    // a controller's write whose lease token is not (or no longer) the lease's: fenced off
    await expect(runWrite(admin, keys, argv({ 13: 'token-of-a-paused-controller' }))).rejects.toThrow(/^FENCED by another controller$/);
    await admin.set(k.lease, 'token-of-the-new-controller');
    await expect(runWrite(admin, keys, argv({ 13: 'token-of-a-paused-controller' }))).rejects.toThrow(/^FENCED by another controller$/);
    await admin.del(k.lease);
    expect(await state()).toEqual(before);

    // the same arguments unchanged are written, and their PUBLISH is the first one heard
    expect(await runWrite(admin, keys, argv())).toEqual({ version: 2, applied: true });
    while (published.length === 0) await new Promise<void>((r) => setTimeout(r, 10));
    expect(published.map((m) => JSON.parse(m) as unknown)).toEqual([{ version: 2, revision: 'revision-from-test', keys: ['checkout-theme'], evaluators: ['vip-agencies'] }]);
    // the write's record: its version, forgotten after the TTL it was given
    expect(await admin.get(keys[5])).toBe('2');
    expect(await admin.ttl(keys[5])).toBeGreaterThan(3500);
    // run again with the same write id: answers the version it produced, writes and publishes nothing
    const afterFirst = await state();
    expect(await runWrite(admin, keys, argv())).toEqual({ version: 2, applied: false });
    expect(await state()).toEqual(afterFirst);
    const loaded = await store.load();
    expect(loaded).toMatchObject({ version: 2, flags: { 'checkout-theme': { defaultVariant: 'bold' } }, evaluators: { 'vip-agencies': vipAgencies } });
    expect(await store.audit()).toHaveLength(3);
  });
});
