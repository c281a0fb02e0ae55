'use strict';
// Redis store and provider benchmarks (run by `npm run bench` after the build):
//  1. propagation: a write in this process → ConfigurationChanged in a provider in another process,
//     200 writes, p50/p99 — beside a raw PUBLISH → message round trip between the same processes;
//  2. loading 10,000 flags into a provider (load + validate + compile), with the snapshot's heap
//     cost — beside a raw HGETALL of the same hash.
// A throwaway redis-server on a free port; results go to docs/benchmarks.md.
const { spawn, fork } = require('node:child_process');
const net = require('node:net');
const { once } = require('node:events');
const { Redis } = require('ioredis');
const { RedisFlagStore, RollgateProvider } = require('../dist');
const { writeSection, machine, percentile } = require('../../../bench/doc-section');

const WRITES = 200;
const FLAGS = 10_000;
const SECTION = '## Redis store and provider';

async function freePort() {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  s.close();
  return port;
}

async function startRedis() {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (c) => {
      out += c;
      if (out.includes('Ready to accept connections')) resolve();
    });
    proc.once('exit', () => reject(new Error(`redis-server exited: ${out}`)));
  });
  proc.stdout.resume();
  return { port, url: `redis://127.0.0.1:${port}`, stop: () => proc.kill('SIGKILL') };
}

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
  const { OpenFeature, ProviderEvents } = require('@openfeature/server-sdk');
  const provider = new RollgateProvider({ store: { redis: url, env, pollIntervalMs: 60_000 } });
  await OpenFeature.setProviderAndWait(provider);
  provider.events.addHandler(ProviderEvents.ConfigurationChanged, (e) => process.send({ version: e.metadata.version }));
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

async function propagation(redis) {
  const env = 'bench-propagation';
  const store = new RedisFlagStore({ redis: redis.url, env });
  await store.putFlag('fast-payment', flag(0), { actor: 'bench' });
  const other = await spawnChild({ url: redis.url, env, mode: 'provider' });
  const waits = new Map();
  other.on('message', (m) => waits.get(m.version)?.(process.hrtime.bigint()));
  const samples = [];
  for (let i = 1; i <= WRITES; i++) {
    const t0 = process.hrtime.bigint();
    const heard = new Promise((resolve) => waits.set(i + 1, resolve));
    await store.patchFlag('fast-payment', flag(i % 101), { actor: 'bench' });
    samples.push(Number((await heard) - t0) / 1e6);
  }
  other.kill();
  await store.close();

  // baseline: a bare PUBLISH → message between the same two processes
  const raw = await spawnChild({ url: redis.url, mode: 'raw' });
  const pub = new Redis(redis.url);
  const rawWaits = new Map();
  raw.on('message', (m) => rawWaits.get(m.seq)?.(process.hrtime.bigint()));
  const base = [];
  for (let i = 1; i <= WRITES; i++) {
    const t0 = process.hrtime.bigint();
    const heard = new Promise((resolve) => rawWaits.set(i, resolve));
    await pub.publish('bench:raw', String(i));
    base.push(Number((await heard) - t0) / 1e6);
  }
  raw.kill();
  pub.disconnect();
  return { write: stats(samples), raw: stats(base) };
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
    const p = await propagation(redis);
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
