'use strict';
// Redis store and provider benchmarks (run by `npm run bench` after the build):
//  1. propagation: a write in this process → ConfigurationChanged in a provider in another process,
//     200 writes, p50/p99 — beside a raw PUBLISH → message round trip between the same processes;
//     then the same to 4 provider processes at once (the write counts when the last one has it);
//  2. resync after a restart: redis-server killed and restarted (from its dump) 10 times; the time
//     from "Ready to accept connections" until each of 4 providers has reloaded and is READY —
//     beside bare ioredis clients (same reconnect settings) reaching 'ready';
//  3. loading 10,000 flags into a provider (load + validate + compile), with the snapshot's heap
//     cost — beside a raw HGETALL of the same hash.
// A throwaway redis-server on a free port; results go to docs/benchmarks.md.
const { fork } = require('node:child_process');
const { once } = require('node:events');
const { Redis } = require('ioredis');
const { RedisFlagStore, RollgateProvider, SAFE_REDIS_OPTIONS } = require('../dist');
const { writeSection, machine, percentile } = require('../../../bench/doc-section');
const { startRedis } = require('../../../bench/redis-server');

const WRITES = 200;
const FLAGS = 10_000;
const INSTANCES = 4;
const RESTARTS = 10;
const SECTION = '## Redis store and provider';

const flag = (on) => ({ state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { fractional: [['on', on], ['off', 100 - on]] } });

// ---- the other process ------------------------------------------------------------------------

async function child() {
  const { url, env, mode } = JSON.parse(process.argv[3]);
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
  const provider = new RollgateProvider({ store: { redis: url, env }, staleGraceMs: 600_000 });
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
    const r = await resync(redis);
    const l = await loading(redis);
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

**Propagation to ${INSTANCES} instances** — the same ${WRITES} writes, each timed until the **last** of ${INSTANCES}
provider processes has emitted \`ConfigurationChanged\`. Baseline: a bare \`PUBLISH\` until the last of
${INSTANCES} subscriber processes has the message.

| | p50 ms | p99 ms | max ms | p99 / baseline p99 |
|---|---:|---:|---:|---:|
| write → all ${INSTANCES} providers | ${f(p4.write.p50)} | ${f(p4.write.p99)} | ${f(p4.write.max)} | ${(p4.write.p99 / p4.raw.p99).toFixed(1)}× |
| baseline: PUBLISH → all ${INSTANCES} subscribers | ${f(p4.raw.p50)} | ${f(p4.raw.p99)} | ${f(p4.raw.max)} | 1.0× |

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
