import { ProviderEvents } from '@openfeature/server-sdk';
import { Redis } from 'ioredis';
import { RedisFlagStore, RollgateProvider, SAFE_REDIS_OPTIONS, StoreUnavailableError, WriteNotAppliedError, WriteOutcomeUnknownError, type RedisFlagStoreOptions } from '@rollgate/redis';
import { startRedis, type TestRedis } from './support/redis-server';
import { SCRIPT_CALL, startProxy, type TcpProxy } from './support/tcp-proxy';
import { actor, checkoutTheme } from './support/flags';

// The kill switch through Redis faults that move the store's history: a restore from an older
// dump, a partition across which the store was restored and rewritten, and writes whose answer
// never comes. Each test runs its own redis-server (and proxy), killed and restarted at will.

jest.setTimeout(30_000); // restarts, pauses and read-backs take seconds

const killable = { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' };

let own: TestRedis;
let proxy: TcpProxy | undefined;
const cleanups: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  own = await startRedis();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await proxy?.close();
  proxy = undefined;
  await own.stop();
});

function store(extra: Partial<RedisFlagStoreOptions> = {}, port = own.port): RedisFlagStore {
  const s = new RedisFlagStore({ redis: { port, host: '127.0.0.1' }, env: 'faults', pollIntervalMs: 60_000, ...extra });
  cleanups.push(() => s.close());
  return s;
}

interface Instance {
  provider: RollgateProvider;
  warnings: string[];
}

/** An app instance: a provider with its own store and connections; no heartbeat unless asked. */
async function instance(port = own.port, extra: Partial<RedisFlagStoreOptions> = {}): Promise<Instance> {
  const warnings: string[] = [];
  const provider = new RollgateProvider({ store: { redis: { port, host: '127.0.0.1' }, env: 'faults', pollIntervalMs: 60_000, ...extra }, logger: { warn: (m: string) => warnings.push(m), error: (m: string) => warnings.push(m) } });
  cleanups.push(() => provider.onClose());
  await provider.initialize();
  return { provider, warnings };
}

function next(provider: RollgateProvider, event: ProviderEvents): Promise<void> {
  return new Promise((resolve) => {
    const handler = () => {
      provider.events.removeHandler(event, handler);
      resolve();
    };
    provider.events.addHandler(event, handler);
  });
}

/** Resolves once the instance holds `version` (checked on each configuration change). */
async function reaches(i: Instance, version: number): Promise<void> {
  while (i.provider.health().version !== version) await next(i.provider, ProviderEvents.ConfigurationChanged);
}

const decision = (i: Instance) => i.provider.snapshot.evaluate('fast-payment', { targetingKey: 'u1' }, { defaultValue: false, type: 'boolean' });

describe('a store whose history moved back', () => {
  it('Redis restored from an older dump: every running instance adopts it, and a kill switch written after it holds on each', async () => {
    const writer = store();
    await writer.apply([{ kind: 'flag', key: 'fast-payment', definition: killable }], actor); // v1
    const v1 = await own.dump();
    await writer.putFlag('checkout-theme', checkoutTheme, actor); // v2
    await writer.patchFlag('checkout-theme', { defaultVariant: 'bold' }, actor); // v3
    const instances = await Promise.all([instance(), instance(), instance()]);
    for (const i of instances) expect([i.provider.health().version, decision(i).value]).toEqual([3, true]);

    const restored = instances.map((i) => reaches(i, 1));
    await own.kill();
    await own.start({ fromDump: v1 });
    await Promise.all(restored);
    for (const i of instances) {
      expect(i.provider.snapshot.keys()).toEqual(['fast-payment']); // the dump's flag set, as a fresh instance would load it
      expect(i.warnings.filter((w) => w.includes('went back'))).toEqual([
        'rollgate: flag store went back from version 3 to 1 (restored from an older dump, or failed over to a lagging replica?); adopting it',
      ]);
    }

    // the kill switch creates version 2 — a number every instance has seen before, with other content
    const killed = instances.map((i) => reaches(i, 2));
    const started = Date.now();
    const result = await writer.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'ops', reason: 'payment errors up' });
    expect(result.version).toBe(2);
    await Promise.all(killed);
    console.log(`kill switch after a restore from an older dump: every instance denied ${Date.now() - started} ms after the write returned`);
    for (const i of instances) expect(decision(i)).toMatchObject({ value: false, reason: 'DISABLED' });
  });

  it('partitioned while the store was restored and rewritten up to the same version: adopts the other history when it reconnects', async () => {
    const writer = store();
    await writer.apply([{ kind: 'flag', key: 'fast-payment', definition: killable }], actor); // v1
    const v1 = await own.dump();
    await writer.putFlag('checkout-theme', checkoutTheme, actor);
    await writer.putFlag('checkout-theme', { ...checkoutTheme, defaultVariant: 'bold' }, actor); // v3: theme bold, payments on
    proxy = await startProxy(own.port);
    const cut = await instance(proxy.port);
    expect([cut.provider.health().version, decision(cut).value]).toEqual([3, true]);

    const stale = next(cut.provider, ProviderEvents.Stale);
    proxy.cut();
    await stale;
    await own.kill();
    await own.start({ fromDump: v1 });
    const other = store();
    await other.putFlag('checkout-theme', checkoutTheme, actor); // v2
    await other.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'ops' }); // v3, another v3
    const adopted = next(cut.provider, ProviderEvents.ConfigurationChanged);
    proxy.heal();
    await adopted;
    expect(cut.provider.health().version).toBe(3);
    expect(decision(cut)).toMatchObject({ value: false, reason: 'DISABLED' });
    expect(cut.warnings).toContain("rollgate: flag store's version 3 is not the one loaded before (its history diverged after a restore or failover); adopting it");
  });
});

describe('writes whose answer does not come', () => {
  const auditOf = async (s: RedisFlagStore, writeId: string) => (await s.audit()).filter((e) => e.writeId === writeId);

  it('a write Redis runs after its writer gave up (CLIENT PAUSE) is refused, and the writer is told it was not applied', async () => {
    const writer = store();
    await writer.apply([{ kind: 'flag', key: 'fast-payment', definition: killable }], actor);
    const admin = new Redis({ port: own.port, host: '127.0.0.1' });
    cleanups.push(async () => admin.disconnect());
    await admin.call('CLIENT', 'PAUSE', '30000', 'WRITE'); // reads go on; scripts and writes wait
    const err = await writer.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'ops', writeId: 'kill-1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteNotAppliedError);
    expect(err).toBeInstanceOf(StoreUnavailableError); // callers that only know "unavailable" still fail safe
    expect(err).toMatchObject({ writeId: 'kill-1', code: 'ERR_ROLLGATE_WRITE_NOT_APPLIED' });
    expect((err as Error).message).toMatch(/^Redis did not answer write kill-1 \(Command timed out\); read back afterwards: it was not applied, and Redis refuses it from now on\. It is safe to retry\.$/);
    await admin.call('CLIENT', 'UNPAUSE');
    // the paused script runs now, before this later write on the same connection: refused by its deadline
    const later = await writer.putFlag('checkout-theme', checkoutTheme, actor);
    expect(later.version).toBe(2);
    expect((await writer.load()).flags['fast-payment']).toEqual(killable);
    expect(await auditOf(writer, 'kill-1')).toEqual([]);
  });

  it('a write whose reply comes after the timeout is read back and reported applied, once', async () => {
    proxy = await startProxy(own.port);
    const writer = store({}, proxy.port);
    await writer.apply([{ kind: 'flag', key: 'fast-payment', definition: killable }], actor);
    proxy.delayRepliesAfter(SCRIPT_CALL, 1500); // > commandTimeout (1000 ms): the script runs, its answer is late
    const result = await writer.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'ops', writeId: 'kill-2' });
    expect(result).toMatchObject({ version: 2, writeId: 'kill-2', alreadyApplied: false });
    expect(await auditOf(store(), 'kill-2')).toMatchObject([{ version: 2, action: 'patch', after: { state: 'DISABLED' } }]);
  });

  it('a write that cannot be read back in time is WriteOutcomeUnknownError; retrying it with the same write id never applies it twice', async () => {
    proxy = await startProxy(own.port);
    const writer = store({ writeReadBackMs: 1200 }, proxy.port);
    await writer.apply([{ kind: 'flag', key: 'fast-payment', definition: killable }], actor);
    proxy.cutAfter(SCRIPT_CALL); // the script reaches Redis, then the network is gone: no answer, no read-back
    const err = await writer.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'ops', writeId: 'kill-3' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteOutcomeUnknownError);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(err).toMatchObject({ writeId: 'kill-3', code: 'ERR_ROLLGATE_WRITE_OUTCOME_UNKNOWN' });
    expect((err as Error).message).toContain('could not be read back within 1200 ms: it may or may not be applied');
    // the operator retries from elsewhere, with the same id: it had been applied; nothing is written again
    const direct = store();
    const retry = await direct.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'ops', writeId: 'kill-3' });
    expect(retry).toMatchObject({ version: 2, writeId: 'kill-3', alreadyApplied: true });
    expect((await direct.load()).version).toBe(2);
    expect(await auditOf(direct, 'kill-3')).toHaveLength(1);
  });
});

describe('a hung Redis', () => {
  it('is noticed by the heartbeat alone: STALE with no write, no poll and no connection loss; READY again after SIGCONT', async () => {
    const writer = store();
    await writer.putFlag('checkout-theme', checkoutTheme, actor);
    const i = await instance(own.port, { pollIntervalMs: 200 });
    const before = i.provider.health().syncedAt!;
    const stale = next(i.provider, ProviderEvents.Stale);
    own.pause();
    await stale;
    // the snapshot is confirmed only as of the last answered check, which left before the hang
    const { syncedAt, storeUnavailable } = i.provider.health();
    expect(storeUnavailable).toBe(true);
    expect(syncedAt).toBeGreaterThanOrEqual(before);
    const ready = next(i.provider, ProviderEvents.Ready);
    own.resume();
    await ready;
    expect(i.provider.health().syncedAt).toBeGreaterThan(syncedAt!);
  });
});

it('reconnects within half a second of Redis answering again (SAFE_REDIS_OPTIONS.retryStrategy)', () => {
  const delays = Array.from({ length: 100 }, (_, n) => SAFE_REDIS_OPTIONS.retryStrategy!(n + 1) as number);
  expect(Math.max(...delays)).toBeLessThanOrEqual(500);
  expect(delays.slice(0, 3).every((d) => d < 300)).toBe(true); // the first attempts come quickly: 50, 100, 200 ms (+ jitter)
});
