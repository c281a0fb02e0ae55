import { ProviderEvents } from '@openfeature/server-sdk';
import { Redis, type RedisOptions } from 'ioredis';
import {
  RedisFlagStore,
  RollgateProvider,
  StoreUnavailableError,
  WriteNotAppliedError,
  WriteNotReplicatedError,
  WriteOutcomeUnknownError,
  type RedisFlagStoreOptions,
} from '@rollgate/redis';
import { freePort } from './support/redis-server';
import { initialized, startSentinelTopology, until, type SentinelTopology } from './support/topology';
import { actor, checkoutTheme } from './support/flags';
import { startWriter } from './support/writers';

// Sentinel failover with real processes: one master, one replica, three Sentinels on loopback
// (down-after-milliseconds 1000). Writers (acknowledged only once replicated: minReplicas 1) and
// evaluations run while the master is SIGKILLed; the replica is made to lag first, so the state
// it takes over with is OLDER than the one every instance holds.

jest.setTimeout(90_000);

let topo: SentinelTopology;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  topo = await startSentinelTopology({ replicas: 1, sentinels: 3 });
}, 60_000);
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await topo?.stop();
});

const env = `sentinel-${process.pid}`;
const killable = { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' };
const sentinelOptions = (): RedisOptions => ({ sentinels: topo.sentinelAddresses, name: topo.masterName });
const sentinelUrl = () => `redis+sentinel://${topo.sentinelAddresses.map((s) => `${s.host}:${s.port}`).join(',')}/${topo.masterName}`;

function store(extra: Partial<RedisFlagStoreOptions> = {}): RedisFlagStore {
  const s = new RedisFlagStore({ redis: sentinelOptions(), env, pollIntervalMs: 60_000, ...extra });
  cleanups.push(() => s.close());
  return s;
}

interface Instance {
  name: string;
  provider: RollgateProvider;
  warnings: string[];
}

async function instance(name: string, redis: RedisFlagStoreOptions['redis'], pollIntervalMs?: number): Promise<Instance> {
  const warnings: string[] = [];
  const provider = new RollgateProvider({
    store: { redis, env, ...(pollIntervalMs ? { pollIntervalMs } : {}) },
    logger: { warn: (m: string) => warnings.push(m), error: (m: string) => warnings.push(m) },
  });
  cleanups.push(() => provider.onClose());
  await initialized(provider);
  return { name, provider, warnings };
}

const decision = (i: Instance) => i.provider.snapshot.evaluate('fast-payment', { targetingKey: 'u1' }, { defaultValue: false, type: 'boolean' });
const theme = (i: Instance) => i.provider.snapshot.evaluate('checkout-theme', { targetingKey: 'u1' }, { defaultValue: 'none', type: 'string' });

/** Resolves when `check` holds, tested on every ConfigurationChanged / Ready of the instance (and at once). */
function whenInstance(i: Instance, check: () => boolean): Promise<number> {
  return new Promise((resolve) => {
    const test = () => {
      if (!check()) return;
      i.provider.events.removeHandler(ProviderEvents.ConfigurationChanged, test);
      i.provider.events.removeHandler(ProviderEvents.Ready, test);
      resolve(Date.now());
    };
    i.provider.events.addHandler(ProviderEvents.ConfigurationChanged, test);
    i.provider.events.addHandler(ProviderEvents.Ready, test);
    test();
  });
}

describe('Sentinel: the master is SIGKILLed while writes and evaluations run', () => {
  it('keeps every acknowledged (replicated) write, brings every instance to the new master\'s OLDER state, and a kill switch written after it holds everywhere', async () => {
    const oldMaster = await topo.master();
    const replica = topo.nodes.find((n) => n !== oldMaster)!;

    // seed, acknowledged by the master and its replica
    const seeder = store({ minReplicas: 1 });
    await seeder.apply(
      [
        { kind: 'flag', key: 'fast-payment', definition: killable },
        { kind: 'flag', key: 'checkout-theme', definition: checkoutTheme },
      ],
      actor,
    );

    // app instances, each a provider with its own store (its own command and subscriber
    // connections): two with the heartbeat (500 ms), two without, which hear of changes only by
    // pub/sub and by the resync their connections make when they come back — and by URL or options
    const instances = await Promise.all([
      instance('a', sentinelOptions()),
      instance('b', sentinelUrl()),
      instance('c', sentinelOptions(), 60_000),
      instance('d', sentinelUrl(), 60_000),
    ]);

    // evaluations on every instance, all along: never an error, whatever the store does
    let evaluations = 0;
    const bad: string[] = [];
    // and when each instance moved to which state (version, revision): convergence is read from it
    const moves = instances.map(() => [] as { at: number; state: string }[]);
    const evaluating = setInterval(() => {
      for (const [n, i] of instances.entries()) {
        const { version, revision } = i.provider.health();
        if (moves[n]!.at(-1)?.state !== `${version}:${revision}`) moves[n]!.push({ at: Date.now(), state: `${version}:${revision}` });
        for (const r of [decision(i), theme(i)]) {
          evaluations++;
          if (r.reason === 'ERROR' || r.errorCode !== undefined) bad.push(`${i.name}: ${r.errorCode} ${r.errorMessage}`);
        }
      }
    }, 2);
    cleanups.push(async () => clearInterval(evaluating));

    // writers acknowledged only once a replica has the write
    const writers = [1, 2].map((w) => startWriter(`w${w}`, store({ minReplicas: 1, replicationTimeoutMs: 300, writeReadBackMs: 2000 }), 5));
    await until('both writers to have written', () => writers.every((w) => w.log.acknowledged.length >= 5));

    // the replica lags: told to replicate from a port where nothing listens, it keeps its data
    // and misses the next write, which its master acknowledges alone (no minReplicas) and every
    // instance adopts. (SIGSTOP would not do: the kernel still buffers what the master sends, and
    // the replica reads it when it resumes. The Sentinels would point it back at its master after
    // failover-timeout, 3 s; the master is killed well before.)
    await replica.command('REPLICAOF', '127.0.0.1', String(await freePort()));
    const lagging = store({ minReplicas: 0 });
    const lost = await lagging.patchFlag('checkout-theme', { defaultVariant: 'bold' }, { actor: 'ops', writeId: 'not-replicated' });
    await Promise.all(instances.map((i) => whenInstance(i, () => i.provider.health().version >= lost.version)));
    for (const i of instances) expect(theme(i).value).toBe('bold');
    const held = instances.map((i) => i.provider.health().version);

    // watch the Sentinels announce the new master
    const watcher = new Redis({ host: '127.0.0.1', port: topo.sentinels[0]!.port });
    cleanups.push(async () => watcher.disconnect());
    const switched = new Promise<number>((resolve) => watcher.on('message', () => resolve(Date.now())));
    await watcher.subscribe('+switch-master');

    const killedAt = Date.now();
    await oldMaster.kill();
    // no new writes from now on (those in flight settle: read back): the new master's state is
    // then the one the replica had, which every instance must come to
    const stopped = Promise.all(writers.map((w) => w.stop()));
    const switchedAt = await switched;
    await stopped;

    // the new master's state, as the replica had it: without the write it missed
    const newMaster = await topo.master();
    expect(newMaster.port).toBe(replica.port);
    const direct = store({ redis: { host: '127.0.0.1', port: newMaster.port } });
    const after = await direct.load();
    expect(after.flags['checkout-theme']).toEqual(checkoutTheme); // 'bold' was never replicated
    expect(after.version).toBeLessThan(lost.version);

    // every acknowledged write is on the new master; every "not applied" one is not
    const audit = await direct.audit(undefined, { limit: 100_000 });
    const onMaster = new Set(audit.map((e) => e.writeId));
    const acknowledged = writers.flatMap((w) => w.log.acknowledged);
    const failed = writers.flatMap((w) => w.log.failed);
    expect(acknowledged.filter((a) => !onMaster.has(a.writeId))).toEqual([]);
    expect(failed.filter((f) => f.error instanceof WriteNotAppliedError && onMaster.has(f.writeId)).map((f) => f.writeId)).toEqual([]);
    // and every failure says what it knows: not applied, not replicated, unknown, or unavailable
    for (const f of failed) expect(f.error).toBeInstanceOf(StoreUnavailableError);
    const kinds = (e: Error) =>
      e instanceof WriteNotReplicatedError ? 'not replicated' : e instanceof WriteNotAppliedError ? 'not applied' : e instanceof WriteOutcomeUnknownError ? 'unknown' : 'unavailable';
    const counts: Record<string, number> = {};
    for (const f of failed) counts[kinds(f.error)] = (counts[kinds(f.error)] ?? 0) + 1;
    expect(onMaster.has('not-replicated')).toBe(false); // acknowledged by the master alone: lost

    // every instance converges to the new master's (older) state
    await Promise.all(instances.map((i) => whenInstance(i, () => i.provider.health().version === after.version && i.provider.health().revision === after.revision)));
    await new Promise((resolve) => setTimeout(resolve, 10)); // one more sample of the timeline
    const convergedAt = moves.map((m) => m.find((move) => move.at >= killedAt && move.state === `${after.version}:${after.revision}`)!.at);
    for (const [n, i] of instances.entries()) {
      // the instance held the lagging write's version or a later one (writers wrote on), and went back
      const wentBack = i.warnings.map((w) => /went back from version (\d+) to (\d+)/.exec(w)).filter((m) => m !== null);
      expect(wentBack.map((m) => Number(m[2]))).toEqual([after.version]);
      expect(Number(wentBack[0]![1])).toBeGreaterThanOrEqual(held[n]!);
      expect(theme(i).value).toBe('classic'); // the write the replica missed is gone everywhere
    }
    const lastConverged = Math.max(...convergedAt);

    // a kill switch written after the failover holds on every instance (heard by pub/sub on the
    // subscribers that followed the failover: two instances have no heartbeat)
    const killWrite = Date.now();
    const killed = await direct.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'ops', reason: 'payments failing' });
    const deniedAt = await Promise.all(instances.map((i) => whenInstance(i, () => i.provider.health().version === killed.version)));
    for (const i of instances) expect(decision(i)).toMatchObject({ value: false, reason: 'DISABLED' });

    // with minReplicas, a write the lone new master cannot replicate fails loudly: applied, not acknowledged
    const strict = store({ minReplicas: 1, replicationTimeoutMs: 200, writeReadBackMs: 600 });
    const notReplicated = await strict.patchFlag('checkout-theme', { defaultVariant: 'bold' }, { actor: 'ops', writeId: 'alone' }).catch((e: unknown) => e);
    expect(notReplicated).toBeInstanceOf(WriteNotReplicatedError);
    expect(notReplicated).toMatchObject({ writeId: 'alone', replicas: 0, required: 1, code: 'ERR_ROLLGATE_WRITE_NOT_REPLICATED' });
    expect((notReplicated as Error).message).toContain('only 0 of the 1 replicas required (minReplicas) confirmed it');

    clearInterval(evaluating);
    expect(bad).toEqual([]);
    console.log(
      [
        `Sentinel failover (SIGKILL of the master, replica lagging by one write, 4 instances):`,
        `  kill → +switch-master ${switchedAt - killedAt} ms; kill → every instance on the new master's older state ${lastConverged - killedAt} ms ` +
          `(+switch-master → converged ${lastConverged - switchedAt} ms; per instance ${convergedAt.map((t) => t - switchedAt).join(', ')} ms)`,
        `  kill switch after the failover: every instance denied ${Math.max(...deniedAt) - killWrite} ms after the write was sent`,
        `  writers (minReplicas 1): ${acknowledged.length} acknowledged, all on the new master; ${failed.length} failed (${JSON.stringify(counts)}); ` +
          `${evaluations} evaluations, none in error`,
      ].join('\n'),
    );
  });
});
