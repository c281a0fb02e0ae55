'use strict';
// Redis store and provider benchmarks (run by `npm run bench` after the build):
//  1. propagation: a write in this process → ConfigurationChanged in a provider in another process,
//     200 writes, p50/p99 — beside a raw PUBLISH → message round trip between the same processes;
//     then the same to 4 and to 8 provider processes at once (the write counts when the last one
//     has it), each beside a bare PUBLISH to as many subscriber processes;
//  2. resync after a restart: redis-server killed and restarted (from its dump) 10 times; the time
//     from "Ready to accept connections" until each of 4 providers has reloaded and is READY —
//     beside bare ioredis clients (same reconnect settings) reaching 'ready';
//  3. loading 10,000 flags into a provider (load + validate + compile), with the snapshot's heap
//     cost — beside a raw HGETALL of the same hash;
//  4. Sentinel failover: master SIGKILLed 3 times (1 replica, 3 Sentinels, down-after 1000 ms);
//     kill → +switch-master → every one of 4 provider processes READY on the new master, and a
//     kill switch written after it → all 4;
//  5. Cluster (3 masters): propagation to 8 provider processes with sharded and with classic
//     notices, each beside a bare SPUBLISH / PUBLISH to 8 subscriber processes.
// Throwaway redis-server processes on free ports; results go to docs/benchmarks.md.
const { fork } = require('node:child_process');
const { once } = require('node:events');
const { Cluster, Redis } = require('ioredis');
const topology = require('./topology');
const { RedisFlagStore, RollgateProvider, SAFE_REDIS_OPTIONS } = require('../dist');
const { writeSection, machine, percentile } = require('../../../bench/doc-section');
const { startRedis } = require('../../../bench/redis-server');

const WRITES = 200;
const FLAGS = 10_000;
const INSTANCES = 4;
const MANY = 8;
const RESTARTS = 10;
const FAILOVERS = 3;
const CLUSTER_WRITES = 100;
const SECTION = '## Redis store and provider';

const flag = (on) => ({ state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { fractional: [['on', on], ['off', 100 - on]] } });

// ---- the other process ------------------------------------------------------------------------

async function child() {
  const { url, env, mode, nodes, sharded, clusterNotices } = JSON.parse(process.argv[3]);
  if (mode === 'raw-cluster') {
    const sub = new Cluster(nodes, { shardedSubscribers: sharded });
    sub.on(sharded ? 'smessage' : 'message', (_c, m) => process.send({ seq: Number(m) }));
    await (sharded ? sub.ssubscribe('bench:{raw}') : sub.subscribe('bench:{raw}'));
    process.send({ ready: true });
    return;
  }
  if (mode === 'raw') {
    const sub = new Redis(url);
    await sub.subscribe('bench:raw');
    sub.on('message', (_c, m) => process.send({ seq: Number(m) }));
    process.send({ ready: true });
    return;
  }
  if (mode === 'reconnect') {
    // a bare client with the reconnect settings clients of the store get
    const client = new Redis(url, { ...SAFE_REDIS_OPTIONS });
    client.on('error', () => {});
    await once(client, 'ready');
    client.on('ready', () => process.send({ resynced: true }));
    process.send({ ready: true });
    return;
  }
  const { OpenFeature, ProviderEvents } = require('@openfeature/server-sdk');
  const provider = new RollgateProvider({ store: { redis: url, env, ...(clusterNotices ? { clusterNotices } : {}) }, staleGraceMs: 600_000 });
  await OpenFeature.setProviderAndWait(provider);
  provider.events.addHandler(ProviderEvents.ConfigurationChanged, (e) => process.send({ version: e.metadata.version }));
  // READY after a STALE: the store answered again and the provider reloaded
  provider.events.addHandler(ProviderEvents.Ready, () => process.send({ resynced: true }));
  process.send({ ready: true });
}

// ---- measurements -------------------------------------------------------------------------------

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1] };
}

async function spawnChild(args) {
  const proc = fork(__filename, ['child', JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise((resolve) => proc.on('message', (m) => m.ready && resolve()));
  return proc;
}

/** Resolves when every child has sent a message matching `key` (the moment the last one did). */
function allHeard(children, match) {
  return Promise.all(children.map((c) => new Promise((resolve) => {
    const on = (m) => {
      if (!match(m)) return;
      c.off('message', on);
      resolve(process.hrtime.bigint());
    };
    c.on('message', on);
  }))).then((times) => times.reduce((a, b) => (a > b ? a : b)));
}

/** Write → every one of `n` provider processes has the version; beside PUBLISH → every one of `n` subscriber processes. */
async function propagation(redis, n) {
  const env = `bench-propagation-${n}`;
  const store = new RedisFlagStore({ redis: redis.url, env });
  await store.putFlag('fast-payment', flag(0), { actor: 'bench' });
  const others = await Promise.all(Array.from({ length: n }, () => spawnChild({ url: redis.url, env, mode: 'provider' })));
  const samples = [];
  for (let i = 1; i <= WRITES; i++) {
    const t0 = process.hrtime.bigint();
    const heard = allHeard(others, (m) => m.version === i + 1);
    await store.patchFlag('fast-payment', flag(i % 101), { actor: 'bench' });
    samples.push(Number((await heard) - t0) / 1e6);
  }
  for (const o of others) o.kill();
  await store.close();

  // baseline: a bare PUBLISH → message between the same processes
  const raws = await Promise.all(Array.from({ length: n }, () => spawnChild({ url: redis.url, mode: 'raw' })));
  const pub = new Redis(redis.url);
  const base = [];
  for (let i = 1; i <= WRITES; i++) {
    const t0 = process.hrtime.bigint();
    const heard = allHeard(raws, (m) => m.seq === i);
    await pub.publish('bench:raw', String(i));
    base.push(Number((await heard) - t0) / 1e6);
  }
  for (const r of raws) r.kill();
  pub.disconnect();
  return { write: stats(samples), raw: stats(base) };
}

/** Cluster: write → all `n` providers (sharded or classic notices), beside SPUBLISH / PUBLISH → all `n` subscribers. */
async function clusterPropagation(cluster, n, notices) {
  const env = `bench-cluster-${notices}`;
  const store = new RedisFlagStore({ redis: cluster.url, env, clusterNotices: notices });
  await store.putFlag('fast-payment', flag(0), { actor: 'bench' });
  const others = await Promise.all(Array.from({ length: n }, () => spawnChild({ url: cluster.url, env, mode: 'provider', clusterNotices: notices })));
  const samples = [];
  for (let i = 1; i <= CLUSTER_WRITES; i++) {
    const t0 = process.hrtime.bigint();
    const heard = allHeard(others, (m) => m.version === i + 1);
    await store.patchFlag('fast-payment', flag(i % 101), { actor: 'bench' });
    samples.push(Number((await heard) - t0) / 1e6);
  }
  for (const o of others) o.kill();
  await store.close();
  const sharded = notices === 'sharded';
  const raws = await Promise.all(Array.from({ length: n }, () => spawnChild({ mode: 'raw-cluster', nodes: cluster.startupNodes, sharded })));
  const pub = new Cluster(cluster.startupNodes);
  const base = [];
  for (let i = 1; i <= CLUSTER_WRITES; i++) {
    const t0 = process.hrtime.bigint();
    const heard = allHeard(raws, (m) => m.seq === i);
    await (sharded ? pub.spublish('bench:{raw}', String(i)) : pub.publish('bench:{raw}', String(i)));
    base.push(Number((await heard) - t0) / 1e6);
  }
  for (const r of raws) r.kill();
  pub.disconnect();
  return { write: stats(samples), raw: stats(base) };
}

/**
 * Sentinel: the master SIGKILLed, FAILOVERS times (the old master then restarted as a replica of
 * the new one). Per failover: kill → +switch-master; kill → every provider READY again on the new
 * master; and a kill switch written after it → every provider has it.
 */
async function sentinelFailover() {
  const topo = await topology.startSentinels();
  const env = 'bench-failover';
  const writer = new RedisFlagStore({ redis: topo.url, env });
  const children = [];
  try {
    await writer.putFlag('fast-payment', flag(0), { actor: 'bench' });
    children.push(...(await Promise.all(Array.from({ length: INSTANCES }, () => spawnChild({ url: topo.url, env, mode: 'provider' })))));
    const samples = { switched: [], ready: [], afterSwitch: [], killSwitch: [] };
    for (let round = 0; round < FAILOVERS; round++) {
      const oldPort = await topo.masterPort();
      const master = topo.nodes.find((n) => n.port === oldPort);
      const watcher = new Redis({ port: topo.sentinels[0].port, host: '127.0.0.1' });
      await watcher.subscribe('+switch-master');
      const switched = new Promise((resolve) => watcher.once('message', () => resolve(process.hrtime.bigint())));
      const ready = allHeard(children, (m) => m.resynced);
      const t0 = process.hrtime.bigint();
      await master.kill();
      const switchedAt = await switched;
      const readyAt = await ready;
      watcher.disconnect();
      samples.switched.push(Number(switchedAt - t0) / 1e6);
      samples.ready.push(Number(readyAt - t0) / 1e6);
      samples.afterSwitch.push(Number(readyAt - switchedAt) / 1e6);
      // the kill switch, once the writer's own connection has found the new master
      for (;;) {
        const version = (await writer.load().catch(() => undefined))?.version;
        if (version === undefined) {
          await topology.sleep(50);
          continue;
        }
        const heard = allHeard(children, (m) => m.version === version + 1);
        const sent = process.hrtime.bigint();
        await writer.patchFlag('fast-payment', flag(round + 1), { actor: 'bench', expectedVersion: version });
        samples.killSwitch.push(Number((await heard) - sent) / 1e6);
        break;
      }
      // the crashed master comes back, as a replica of the new one
      await master.start(['--replicaof', '127.0.0.1', String(await topo.masterPort())]);
      await topo.settled();
    }
    return { switched: stats(samples.switched), ready: stats(samples.ready), afterSwitch: stats(samples.afterSwitch), killSwitch: stats(samples.killSwitch) };
  } finally {
    for (const c of children) c.kill();
    await writer.close();
    await topo.stop();
  }
}

/** redis-server killed and restarted (from its dump): "Ready to accept connections" → every child has resynced. */
async function resync(redis) {
  const env = 'bench-resync';
  const store = new RedisFlagStore({ redis: redis.url, env });
  await store.putFlag('fast-payment', flag(20), { actor: 'bench' });
  await store.close();
  const admin = new Redis(redis.url);
  await admin.save();
  admin.disconnect();
  const measure = async (mode) => {
    const children = await Promise.all(Array.from({ length: INSTANCES }, () => spawnChild({ url: redis.url, env, mode })));
    const samples = [];
    for (let r = 0; r < RESTARTS; r++) {
      const resynced = allHeard(children, (m) => m.resynced);
      await redis.kill();
      // down for a moment, as a crash and a supervisor's restart would leave it
      await new Promise((resolve) => setTimeout(resolve, 200));
      const readyAt = await redis.start();
      samples.push(Number((await resynced) - readyAt) / 1e6);
    }
    for (const c of children) c.kill();
    return stats(samples);
  };
  return { provider: await measure('provider'), bare: await measure('reconnect') };
}

async function loading(redis) {
  const env = 'bench-load';
  const store = new RedisFlagStore({ redis: redis.url, env });
  const changes = [];
  for (let i = 0; i < FLAGS; i++) changes.push({ kind: 'flag', key: `flag-${String(i).padStart(5, '0')}`, definition: flag(i % 101) });
  await store.apply(changes, { actor: 'bench' });
  await store.close();
  const keys = require('../dist').flagStoreKeys(env);
  const client = new Redis(redis.url);
  const rounds = 5;
  const raw = [];
  const full = [];
  let heap = 0;
  for (let r = 0; r < rounds; r++) {
    let t0 = process.hrtime.bigint();
    await client.hgetall(keys.flags);
    raw.push(Number(process.hrtime.bigint() - t0) / 1e6);

    t0 = process.hrtime.bigint();
    let provider = new RollgateProvider({ store: { redis: redis.url, env, pollIntervalMs: 60_000 } });
    await provider.initialize();
    full.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (provider.snapshot.keys().length !== FLAGS) throw new Error('not every flag loaded');
    // heap with the snapshot held, minus heap once it is dropped
    global.gc?.();
    const withSnapshot = process.memoryUsage().heapUsed;
    await provider.onClose();
    provider = undefined;
    global.gc?.();
    heap = withSnapshot - process.memoryUsage().heapUsed;
  }
  client.disconnect();
  return { raw: stats(raw), full: stats(full), heapMb: heap / 1024 / 1024, gc: typeof global.gc === 'function' };
}

async function main() {
  const redis = await startRedis();
  try {
    const p = await propagation(redis, 1);
    const p4 = await propagation(redis, INSTANCES);
    const p8 = await propagation(redis, MANY);
    const r = await resync(redis);
    const l = await loading(redis);
    const fo = await sentinelFailover();
    const cluster = await topology.startCluster(3);
    let cs;
    let cc;
    try {
      cs = await clusterPropagation(cluster, MANY, 'sharded');
      cc = await clusterPropagation(cluster, MANY, 'classic');
    } finally {
      await cluster.stop();
    }
    const f = (n) => n.toFixed(2);
    const md = `${SECTION}

${machine()}. A throwaway \`redis-server\` on loopback. The machine is shared and noisy: compare each
row with the baseline measured beside it in the same run.

**Propagation** — ${WRITES} sequential writes (\`store.patchFlag\`) in this process; the time until a
\`RollgateProvider\` in **another process** emits \`ConfigurationChanged\` for that version (write: load +
validate + Lua; pub/sub; the other process loads, compiles and swaps its snapshot; IPC back).
Baseline: a bare \`PUBLISH\` → message between the same two processes.

| | p50 ms | p99 ms | max ms | p99 / baseline p99 |
|---|---:|---:|---:|---:|
| write → other process's provider | ${f(p.write.p50)} | ${f(p.write.p99)} | ${f(p.write.max)} | ${(p.write.p99 / p.raw.p99).toFixed(1)}× |
| baseline: PUBLISH → message | ${f(p.raw.p50)} | ${f(p.raw.p99)} | ${f(p.raw.max)} | 1.0× |

Bar (p99 < 50 ms): **${p.write.p99 < 50 ? 'met' : 'NOT met'}**.

**Propagation to ${INSTANCES} and ${MANY} instances** — the same ${WRITES} writes, each timed until the **last** of
${INSTANCES} (then ${MANY}) provider processes, each with its own store and connections, has emitted
\`ConfigurationChanged\`. Baseline: a bare \`PUBLISH\` until the last of as many subscriber processes has
the message, measured in the same run. The processes share the machine's ${require('node:os').cpus().length} cores with Redis and this one.

| | p50 ms | p99 ms | max ms | p99 / baseline p99 |
|---|---:|---:|---:|---:|
| write → all ${INSTANCES} providers | ${f(p4.write.p50)} | ${f(p4.write.p99)} | ${f(p4.write.max)} | ${(p4.write.p99 / p4.raw.p99).toFixed(1)}× |
| baseline: PUBLISH → all ${INSTANCES} subscribers | ${f(p4.raw.p50)} | ${f(p4.raw.p99)} | ${f(p4.raw.max)} | 1.0× |
| write → all ${MANY} providers | ${f(p8.write.p50)} | ${f(p8.write.p99)} | ${f(p8.write.max)} | ${(p8.write.p99 / p8.raw.p99).toFixed(1)}× |
| baseline: PUBLISH → all ${MANY} subscribers | ${f(p8.raw.p50)} | ${f(p8.raw.p99)} | ${f(p8.raw.max)} | 1.0× |

Bar (p99 to ${MANY} app processes < 50 ms): **${p8.write.p99 < 50 ? 'met' : 'NOT met'}**.

**Resync after a restart** — \`redis-server\` SIGKILLed, down 200 ms, restarted from its dump, ${RESTARTS} times;
the time from its "Ready to accept connections" until the **last** of ${INSTANCES} provider processes has
reconnected, reloaded and emitted READY. Baseline: ${INSTANCES} bare ioredis clients with the store's
reconnect settings (\`SAFE_REDIS_OPTIONS\`: backoff 50 → 400 ms + up to 100 ms jitter) reaching \`ready\`.

| | p50 ms | p99 ms | max ms | p99 / baseline p99 | p99 / PUBLISH p99 |
|---|---:|---:|---:|---:|---:|
| restart → all ${INSTANCES} providers READY | ${f(r.provider.p50)} | ${f(r.provider.p99)} | ${f(r.provider.max)} | ${(r.provider.p99 / r.bare.p99).toFixed(1)}× | ${(r.provider.p99 / p4.raw.p99).toFixed(0)}× |
| baseline: restart → all ${INSTANCES} bare clients ready | ${f(r.bare.p50)} | ${f(r.bare.p99)} | ${f(r.bare.max)} | 1.0× | ${(r.bare.p99 / p4.raw.p99).toFixed(0)}× |

The last column compares with a bare \`PUBLISH\` to ${INSTANCES} subscribers in the same run (above): a resync is
reconnect + one load, dominated by the reconnect backoff, not by Rollgate.

Bar (every resync < 1 s): **${r.provider.max < 1000 ? 'met' : 'NOT met'}**.

**Loading ${FLAGS.toLocaleString('en')} flags** (each with a \`fractional\` rule) into a provider:
\`initialize()\` = one MULTI round trip + JSON parse + validation + compile. Baseline: a bare \`HGETALL\`
of the same hash. Median of 5.

| | median ms | ratio to baseline |
|---|---:|---:|
| provider \`initialize()\` | ${f(l.full.p50)} | ${(l.full.p50 / l.raw.p50).toFixed(1)}× |
| baseline: \`HGETALL\` | ${f(l.raw.p50)} | 1.0× |

Snapshot heap cost: **${l.heapMb.toFixed(1)} MB** for ${FLAGS.toLocaleString('en')} flags${l.gc ? '' : ' (approximate: run with --expose-gc for a GC before each reading)'}.
Bar (under 1 s): **${l.full.p50 < 1000 ? 'met' : 'NOT met'}**.

**Sentinel failover** — a master, one replica and three Sentinels (\`down-after-milliseconds 1000\`,
quorum 2) on loopback; ${INSTANCES} provider processes on \`redis+sentinel://…\`. The master SIGKILLed ${FAILOVERS} times (the
old master then restarted as a replica of the new one). The failover itself is Redis' (detection
after \`down-after-milliseconds\`, election, promotion); Rollgate's part is the time from the Sentinels'
\`+switch-master\` until every provider has reconnected to the new master, reloaded and emitted READY
(reconnect backoff ≤ 0.5 s + one load).

| | p50 ms | max ms |
|---|---:|---:|
| SIGKILL → \`+switch-master\` (Redis Sentinel) | ${f(fo.switched.p50)} | ${f(fo.switched.max)} |
| \`+switch-master\` → all ${INSTANCES} providers READY on the new master | ${f(fo.afterSwitch.p50)} | ${f(fo.afterSwitch.max)} |
| SIGKILL → all ${INSTANCES} providers READY | ${f(fo.ready.p50)} | ${f(fo.ready.max)} |
| kill switch written after the failover → all ${INSTANCES} providers | ${f(fo.killSwitch.p50)} | ${f(fo.killSwitch.max)} |

Bar (a kill switch after the failover holds on every instance within 1 s): **${fo.killSwitch.max < 1000 ? 'met' : 'NOT met'}**.

**Redis Cluster** — three masters (\`redis-cli --cluster create\`); ${CLUSTER_WRITES} writes, each timed until the last of
${MANY} provider processes on \`redis+cluster://…\` has emitted \`ConfigurationChanged\`; sharded notices
(\`SPUBLISH\`/\`SSUBSCRIBE\`, the default) and classic ones (\`PUBLISH\`, forwarded by every node). Baseline:
a bare \`SPUBLISH\` (or \`PUBLISH\`) through an ioredis Cluster until the last of ${MANY} subscriber processes
has it, in the same run.

| | p50 ms | p99 ms | max ms | p99 / baseline p99 |
|---|---:|---:|---:|---:|
| write → all ${MANY} providers, sharded notices | ${f(cs.write.p50)} | ${f(cs.write.p99)} | ${f(cs.write.max)} | ${(cs.write.p99 / cs.raw.p99).toFixed(1)}× |
| baseline: SPUBLISH → all ${MANY} sharded subscribers | ${f(cs.raw.p50)} | ${f(cs.raw.p99)} | ${f(cs.raw.max)} | 1.0× |
| write → all ${MANY} providers, classic notices | ${f(cc.write.p50)} | ${f(cc.write.p99)} | ${f(cc.write.max)} | ${(cc.write.p99 / cc.raw.p99).toFixed(1)}× |
| baseline: PUBLISH → all ${MANY} subscribers | ${f(cc.raw.p50)} | ${f(cc.raw.p99)} | ${f(cc.raw.max)} | 1.0× |

Bar (p99 to ${MANY} app processes on a Cluster < 50 ms): **${cs.write.p99 < 50 ? 'met' : 'NOT met'}**.

Reproduce: \`npm run bench\`.
`;
    console.log(md);
    writeSection(SECTION, md);
  } finally {
    redis.stop();
  }
}

if (process.argv[2] === 'child') child();
else main().then(() => process.exit(0), (e) => (console.error(e), process.exit(1)));
