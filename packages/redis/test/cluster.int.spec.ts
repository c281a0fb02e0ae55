import { ProviderEvents } from '@openfeature/server-sdk';
import { Cluster } from 'ioredis';
import {
  ConfigError,
  flagStoreKeys,
  RedisFlagStore,
  RollgateProvider,
  SAFE_CLUSTER_OPTIONS,
  SAFE_REDIS_OPTIONS,
  StoreUnavailableError,
  WriteNotAppliedError,
  type RedisFlagStoreOptions,
} from '@rollgate/redis';
import { freePort } from './support/redis-server';
import { initialized, startCluster, until, type ClusterTopology, type RedisProcess } from './support/topology';
import { actor, checkoutTheme } from './support/flags';
import { startWriter, type WriterLog } from './support/writers';

// Redis Cluster with real processes: three masters with a replica each, joined with
// `redis-cli --cluster create` on loopback (cluster-node-timeout 1000 ms). Environments on
// different shards; change notices by sharded pub/sub; a manual failover, a SIGKILLed master and a
// slot migration while writes and reads run. Instances without a heartbeat show that notices (and
// the resync after a re-subscription) keep flowing; those with one, what production gets.

// each wait below is bounded on its own (and says what it waited for); the test, by jest's 120 s

let cluster: ClusterTopology;
const cleanups: (() => Promise<unknown>)[] = [];
/** Per shard (master port at start), an environment whose slot it owns. */
const envs: { env: string; slot: number; master: RedisProcess }[] = [];

beforeAll(async () => {
  cluster = await startCluster({ masters: 3, replicasPerMaster: 1 });
  // find environment names whose slot lands on each master
  const admin = cluster.nodes[0]!;
  for (let i = 0; envs.length < 3 && i < 1000; i++) {
    const env = `shard-${i}`;
    const slot = Number(await admin.command('CLUSTER', 'KEYSLOT', flagStoreKeys(env).flags));
    const master = await cluster.masterOf(slot);
    if (!envs.some((e) => e.master === master)) envs.push({ env, slot, master });
  }
}, 60_000);
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await cluster?.stop();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

const clusterConfig = () => ({ cluster: cluster.startupNodes });

function store(env: string, extra: Partial<RedisFlagStoreOptions> = {}): RedisFlagStore {
  const s = new RedisFlagStore({ redis: clusterConfig(), env, pollIntervalMs: 60_000, ...extra });
  cleanups.push(() => s.close());
  return s;
}

interface Instance {
  name: string;
  provider: RollgateProvider;
  warnings: string[];
}

async function instance(name: string, env: string, extra: Partial<RedisFlagStoreOptions> = {}): Promise<Instance> {
  const warnings: string[] = [];
  const provider = new RollgateProvider({
    store: { redis: clusterConfig(), env, pollIntervalMs: 60_000, ...extra },
    logger: { warn: (m: string) => warnings.push(m), error: (m: string) => warnings.push(m) },
    initTimeoutMs: 10_000,
  });
  cleanups.push(() => provider.onClose());
  await initialized(provider);
  return { name, provider, warnings };
}

/**
 * Resolves (with the time) when `check` holds, tested on every ConfigurationChanged / Ready (and at
 * once); fails after `withinMs`, saying which instance was left where.
 */
function when(i: Instance, check: () => boolean, withinMs = 20_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`instance ${i.name} did not get there within ${withinMs} ms: ${JSON.stringify(i.provider.health())}; warnings: ${i.warnings.join(' | ')}`));
    }, withinMs);
    const stop = () => {
      clearTimeout(timer);
      i.provider.events.removeHandler(ProviderEvents.ConfigurationChanged, test);
      i.provider.events.removeHandler(ProviderEvents.Ready, test);
    };
    const test = () => {
      if (!check()) return;
      stop();
      resolve(Date.now());
    };
    i.provider.events.addHandler(ProviderEvents.ConfigurationChanged, test);
    i.provider.events.addHandler(ProviderEvents.Ready, test);
    test();
  });
}

/** Samples every instance's (version, revision) every few ms: when each moved to which state. */
function timeline(instances: Instance[]): { firstAfter(n: number, since: number, version: number, revision: string): number | undefined; stop(): void } {
  const moves = instances.map(() => [] as { at: number; state: string }[]);
  const sample = () => {
    for (const [n, i] of instances.entries()) {
      const { version, revision } = i.provider.health();
      if (moves[n]!.at(-1)?.state !== `${version}:${revision}`) moves[n]!.push({ at: Date.now(), state: `${version}:${revision}` });
    }
  };
  sample();
  const timer = setInterval(sample, 2);
  cleanups.push(async () => clearInterval(timer));
  return {
    firstAfter: (n, since, version, revision) => moves[n]!.find((m) => m.at >= since && m.state === `${version}:${revision}`)?.at,
    stop: () => clearInterval(timer),
  };
}

const holds = (i: Instance, version: number) => when(i, () => i.provider.health().version === version);
const theme = (i: Instance) => i.provider.snapshot.evaluate('checkout-theme', { targetingKey: 'u1' }, { defaultValue: 'none', type: 'string' }).value;
/** Every acknowledged write is in the audit; none reported "not applied" is; every failure is a StoreUnavailableError. */
async function checkWrites(s: RedisFlagStore, logs: WriterLog[]): Promise<{ acknowledged: number; failed: string }> {
  const inStore = new Set((await s.audit(undefined, { limit: 100_000 })).map((e) => e.writeId));
  const acknowledged = logs.flatMap((l) => l.acknowledged);
  const failed = logs.flatMap((l) => l.failed);
  expect(acknowledged.filter((a) => !inStore.has(a.writeId))).toEqual([]);
  expect(failed.filter((f) => f.error instanceof WriteNotAppliedError && inStore.has(f.writeId)).map((f) => f.writeId)).toEqual([]);
  for (const f of failed) expect(f.error).toBeInstanceOf(StoreUnavailableError);
  const kinds: Record<string, number> = {};
  for (const f of failed) kinds[(f.error as StoreUnavailableError).code] = (kinds[(f.error as StoreUnavailableError).code] ?? 0) + 1;
  if (process.env.ROLLGATE_TEST_VERBOSE) for (const f of failed.slice(0, 3)) console.log(f.error.message);
  return { acknowledged: acknowledged.length, failed: `${failed.length}${failed.length ? ` ${JSON.stringify(kinds)}` : ''}` };
}

describe('layout', () => {
  it('every key of an environment is in one slot; the test environments are on three different masters', async () => {
    expect(new Set(envs.map((e) => e.master.port)).size).toBe(3);
    const admin = cluster.nodes[0]!;
    for (const { env, slot } of envs) {
      const k = flagStoreKeys(env);
      const names = [k.flags, k.evaluators, k.version, k.revision, k.audit, k.events, k.changes, k.writeRecord('w-1'), k.plans, k.planChanges, k.lease, k.leaseEpoch, k.outcomes('fast-payment', 1_700_000_000), k.units('fast-payment', 'on', 28_000_000)];
      for (const key of names) expect([key, Number(await admin.command('CLUSTER', 'KEYSLOT', key))]).toEqual([key, slot]);
    }
  });
});

describe('change notices', () => {
  it('reach every instance of every environment by sharded pub/sub (no heartbeat), one shard each', async () => {
    const perEnv = await Promise.all(envs.map(async ({ env }) => ({ env, writer: store(env), instances: await Promise.all([1, 2, 3].map((n) => instance(`${env}/${n}`, env))) })));
    const latencies: number[] = [];
    for (let round = 0; round < 5; round++) {
      for (const { writer, instances } of perEnv) {
        const before = instances[0]!.provider.health().version;
        const heard = instances.map((i) => holds(i, before + 1));
        const sent = Date.now();
        const r = await writer.putFlag('checkout-theme', { ...checkoutTheme, defaultVariant: round % 2 ? 'bold' : 'classic' }, actor);
        expect(r.version).toBe(before + 1);
        latencies.push(Math.max(...(await Promise.all(heard))) - sent);
      }
    }
    // sharded: the channel has subscribers (3 instances) on the shard that owns it, classic channels none
    for (const { env, master } of envs) {
      const channel = flagStoreKeys(env).changes;
      expect(await master.command('PUBSUB', 'SHARDNUMSUB', channel)).toEqual([channel, 3]);
      for (const node of cluster.nodes) expect(await node.command('PUBSUB', 'NUMSUB', channel)).toEqual([channel, 0]);
    }
    latencies.sort((a, b) => a - b);
    console.log(`Cluster, sharded notices: write → all 3 instances of its environment, 15 writes over 3 shards: p50 ${latencies[7]} ms, max ${latencies[14]} ms`);
  });

  it("fallback: clusterNotices 'classic' (PUBLISH, which the cluster bus forwards to every node) reaches instances too", async () => {
    const { env } = envs[1]!;
    const writer = store(env, { clusterNotices: 'classic' });
    const instances = await Promise.all([1, 2].map((n) => instance(`classic/${n}`, env, { clusterNotices: 'classic' })));
    const before = instances[0]!.provider.health().version;
    const heard = instances.map((i) => holds(i, before + 1));
    await writer.putFlag('checkout-theme', { ...checkoutTheme, defaultVariant: 'bold' }, actor);
    await Promise.all(heard);
    const channel = flagStoreKeys(env).changes;
    let classic = 0;
    for (const node of cluster.nodes) classic += (((await node.command('PUBSUB', 'NUMSUB', channel)) as [string, number])[1]);
    expect(classic).toBe(2);
  });
});

describe('the offline queue', () => {
  it('is refused on a Cluster passed in, and set off on the store\'s own: its first load waits for the connection, a dead cluster fails fast', async () => {
    const queueing = new Cluster(cluster.startupNodes, { lazyConnect: true, redisOptions: { ...SAFE_REDIS_OPTIONS } });
    cleanups.push(async () => queueing.disconnect());
    expect(() => new RedisFlagStore({ redis: queueing })).toThrow(ConfigError);
    expect(() => new RedisFlagStore({ redis: { cluster: cluster.startupNodes, clusterOptions: { enableOfflineQueue: true } } })).toThrow(
      'options.redis.clusterOptions.enableOfflineQueue must not be true',
    );
    const safe = new Cluster(cluster.startupNodes, { ...SAFE_CLUSTER_OPTIONS, redisOptions: { ...SAFE_REDIS_OPTIONS } });
    cleanups.push(async () => safe.disconnect());
    const passed = new RedisFlagStore({ redis: safe, env: envs[0]!.env });
    cleanups.push(() => passed.close());

    // the store's own Cluster, used at once: no "Cluster isn't ready" at start-up
    const own = store(envs[0]!.env);
    expect((await own.load()).flags['checkout-theme']).toBeDefined();
    expect((await passed.load()).version).toBe((await own.load()).version);

    // nothing listening: refused, never queued (a queued load would wait for a node forever)
    const dead = new RedisFlagStore({ redis: { cluster: [{ host: '127.0.0.1', port: await freePort() }] }, env: 'nowhere' });
    cleanups.push(() => dead.close());
    await expect(dead.load()).rejects.toThrow();
  });
});

describe('failovers', () => {
  it('CLUSTER FAILOVER on a replica while writes run: no acknowledged write lost, instances follow, notices flow from the new master', async () => {
    const { env, slot } = envs[0]!;
    const master = await cluster.masterOf(slot);
    const topology = await cluster.topology();
    const masterId = topology.find((m) => m.port === master.port)!.id;
    const replicaInfo = topology.find((n) => !n.master && n.masterId === masterId)!;
    const replica = cluster.nodes.find((n) => n.port === replicaInfo.port)!;
    const instances = await Promise.all([instance('a', env), instance('b', env), instance('c', env, { pollIntervalMs: 500 })]);
    const writers = [1, 2].map((w) => startWriter(`fo${w}`, store(env, { minReplicas: 1, replicationTimeoutMs: 300, writeReadBackMs: 3000 })));
    await until('writes before the failover', () => writers.every((w) => w.log.acknowledged.length >= 5));

    const started = Date.now();
    expect(await replica.command('CLUSTER', 'FAILOVER')).toBe('OK');
    await until('the replica to be master', async () => (await cluster.masterOf(slot)).port === replica.port, 20_000);
    const promoted = Date.now();
    await until('writes after the failover', () => writers.every((w) => w.log.acknowledged.length >= 10), 20_000);
    for (const w of writers) await w.stop();

    const s = store(env);
    const result = await checkWrites(s, writers.map((w) => w.log));
    // a write now, heard by pub/sub from the new master (two instances have no heartbeat)
    const sent = Date.now();
    const r = await s.putFlag('checkout-theme', { ...checkoutTheme, defaultVariant: 'bold' }, actor);
    const heard = await Promise.all(instances.map((i) => holds(i, r.version)));
    for (const i of instances) expect(theme(i)).toBe('bold');
    console.log(
      `Cluster, CLUSTER FAILOVER: replica master after ${promoted - started} ms; writers (minReplicas 1) ${result.acknowledged} acknowledged, all kept, ${result.failed} failed loudly; ` +
        `next write heard by all 3 instances in ${Math.max(...heard) - sent} ms`,
    );
  });

  it('a SIGKILLed master: its replica takes over; acknowledged (replicated) writes survive; instances converge; notices flow again', async () => {
    const { env, slot } = envs[1]!;
    const master = await cluster.masterOf(slot);
    const instances = await Promise.all([instance('a', env), instance('b', env), instance('c', env, { pollIntervalMs: 500 })]);
    const writers = [1, 2].map((w) => startWriter(`kill${w}`, store(env, { minReplicas: 1, replicationTimeoutMs: 300, writeReadBackMs: 3000 })));
    await until('writes before the kill', () => writers.every((w) => w.log.acknowledged.length >= 5));

    const line = timeline(instances);
    const killedAt = Date.now();
    await master.kill();
    // no new writes from now on (those in flight settle): the state the instances must reach is fixed
    const stopped = Promise.all(writers.map((w) => w.stop()));
    await until('a replica to take over the slot', async () => (await cluster.masterOf(slot)).port !== master.port, 30_000);
    const promotedAt = Date.now();
    await stopped;
    const s = store(env);
    const state = await s.load();
    await Promise.all(instances.map((i) => when(i, () => i.provider.health().version === state.version && i.provider.health().revision === state.revision)));
    await new Promise((resolve) => setTimeout(resolve, 10));
    const converged = instances.map((_, n) => line.firstAfter(n, killedAt, state.version, state.revision) ?? killedAt);
    line.stop();
    const result = await checkWrites(s, writers.map((w) => w.log));

    const sent = Date.now();
    const r = await s.patchFlag('checkout-theme', { defaultVariant: 'classic' }, actor);
    const heard = await Promise.all(instances.map((i) => holds(i, r.version)));
    for (const i of instances) expect(theme(i)).toBe('classic');
    console.log(
      `Cluster, SIGKILL of a master: replica took over after ${promotedAt - killedAt} ms; every instance on the new master's state ${Math.max(...converged) - killedAt} ms after the kill; ` +
        `writers (minReplicas 1) ${result.acknowledged} acknowledged, all kept, ${result.failed} failed loudly; next write heard by all 3 in ${Math.max(...heard) - sent} ms`,
    );
  });
});

describe('a slot migration (MOVED / ASK / TRYAGAIN)', () => {
  it('moves an environment to another master while writes and reads run: each succeeds or fails loudly; instances converge; notices come from the new owner', async () => {
    const { env, slot } = envs[2]!;
    const source = await cluster.masterOf(slot);
    const topology = await cluster.topology();
    const target = cluster.nodes.find((n) => n.alive && n !== source && topology.some((t) => t.port === n.port && t.master && !t.failed && t.slots.length > 0))!;
    const id = (node: RedisProcess) => topology.find((t) => t.port === node.port)!.id;
    const seed = store(env);
    await seed.putEvaluator('vip-agencies', { in: [{ var: 'tenant' }, ['acme']] }, actor);
    const instances = await Promise.all([instance('a', env), instance('b', env), instance('c', env, { pollIntervalMs: 500 })]);
    const writers = [1, 2].map((w) => startWriter(`mig${w}`, store(env, { writeReadBackMs: 3000 })));
    // reads all along: a load returns a whole state or fails with an error, never half a state
    const reader = store(env);
    const reads = { ok: 0, failed: [] as string[], torn: 0 };
    let reading = true;
    const readLoop = (async () => {
      while (reading) {
        try {
          const set = await reader.load();
          if (!set.evaluators['vip-agencies'] || !set.flags['checkout-theme']) reads.torn++;
          reads.ok++;
        } catch (e) {
          reads.failed.push((e as Error).message);
          expect(e).toBeInstanceOf(StoreUnavailableError);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    await until('writes before the migration', () => writers.every((w) => w.log.acknowledged.length >= 5));

    // the documented procedure: IMPORTING on the target, MIGRATING on the source, MIGRATE the keys
    // (in a few batches, so that requests meet the slot half moved), then SETSLOT NODE everywhere
    const started = Date.now();
    expect(await target.command('CLUSTER', 'SETSLOT', slot, 'IMPORTING', id(source))).toBe('OK');
    expect(await source.command('CLUSTER', 'SETSLOT', slot, 'MIGRATING', id(target))).toBe('OK');
    let batches = 0;
    for (;;) {
      const count = Number(await source.command('CLUSTER', 'COUNTKEYSINSLOT', slot));
      if (count === 0) break;
      const keys = (await source.command('CLUSTER', 'GETKEYSINSLOT', slot, Math.max(2, Math.ceil(count / 3)))) as string[];
      await source.command('MIGRATE', '127.0.0.1', target.port, '', 0, 5000, 'KEYS', ...keys);
      batches++;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    for (const node of [target, source, ...cluster.nodes.filter((n) => n.alive && n !== source && n !== target)]) {
      const role = (await node.info('replication')).role;
      if (role === 'master') expect(await node.command('CLUSTER', 'SETSLOT', slot, 'NODE', id(target))).toBe('OK');
    }
    const moved = Date.now();
    await until('the slot to be served by the target', async () => (await cluster.masterOf(slot)).port === target.port);
    await until('writes after the migration', () => writers.every((w) => w.log.acknowledged.length >= 15), 20_000);
    for (const w of writers) await w.stop();
    reading = false;
    await readLoop;

    const s = store(env);
    const result = await checkWrites(s, writers.map((w) => w.log));
    expect(reads.torn).toBe(0);
    const state = await s.load();
    await Promise.all(instances.map((i) => when(i, () => i.provider.health().version === state.version && i.provider.health().revision === state.revision)));
    // notices now come from the target's shard: heard by the instances without a heartbeat
    const sent = Date.now();
    const r = await s.patchFlag('checkout-theme', { defaultVariant: 'bold' }, actor);
    const heard = await Promise.all(instances.map((i) => holds(i, r.version)));
    const channel = flagStoreKeys(env).changes;
    expect(await target.command('PUBSUB', 'SHARDNUMSUB', channel)).toEqual([channel, 3]);
    expect(await source.command('PUBSUB', 'SHARDNUMSUB', channel)).toEqual([channel, 0]);
    const reasons = [...new Set(reads.failed.map((m) => m.replace(/\d+/g, 'N')))];
    console.log(
      `Cluster, slot migration (${batches} MIGRATE batches, ${moved - started} ms): writers ${result.acknowledged} acknowledged, all kept, ${result.failed} failed loudly; ` +
        `reads ${reads.ok} whole, ${reads.failed.length} failed loudly (${reasons.join(' | ')}); next write heard by all 3 in ${Math.max(...heard) - sent} ms`,
    );
  });
});
