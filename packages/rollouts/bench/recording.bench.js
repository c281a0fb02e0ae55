'use strict';
// Guarded-rollout recording costs (run by `npm run bench` after the build):
//  1. what recording costs a guarded Express route: identity() + requireFeature() with and without
//     recordOutcomes() (an OutcomeRecorder flushing to a real redis-server once a second), autocannon
//     on loopback, each server in its own process, alternating rounds;
//  2. what the flushes cost Redis: 8 instances × 100 flags × 3 variants, 30 requests per arm and
//     second, for 20 s — commands per second as clients send them and as Redis runs them, and Redis'
//     CPU — beside the same counts written as a plain pipeline of HINCRBY/PFADD/EXPIRE.
const { fork } = require('node:child_process');
const autocannon = require('autocannon');
const jwt = require('jsonwebtoken');
const { Redis } = require('ioredis');
const { writeSection, machine } = require('../../../bench/doc-section');
const { startRedis } = require('../../../bench/redis-server');

const SECRET = 'bench-secret-that-is-at-least-32-bytes';
const SECTION = '## Guarded rollouts: recording';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const INSTANCES = 8;
const FLAGS = 100;
const VARIANTS = ['on', 'off', 'beta'];
const FLUSH_SECONDS = 20;

const flag = { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ in: [{ var: 'tenant' }, ['atlas', 'nordic']] }, 'on', { fractional: [['on', 50], ['off', 50]] }] } };

// ---- the servers ------------------------------------------------------------------------------

async function server(mode, redisUrl) {
  const express = require('express');
  const { OpenFeature } = require('@openfeature/server-sdk');
  const { MemoryFlagStore, RedisFlagStore, RollgateProvider } = require('@rollgate/redis');
  const { identity, requireFeature, recordOutcomes } = require('@rollgate/express');
  const { OutcomeRecorder } = require('../dist');
  const provider = new RollgateProvider({ store: new MemoryFlagStore({ initial: { flags: { 'fast-payment': flag } } }) });
  await OpenFeature.setProviderAndWait(provider);
  const app = express();
  if (mode === 'recorded') {
    const recorder = new OutcomeRecorder({ store: new RedisFlagStore({ redis: redisUrl, env: 'bench' }) });
    app.use(recordOutcomes({ sink: recorder, provider }));
  }
  app.use(identity({ jwt: { secret: SECRET, algorithms: ['HS256'] } }));
  app.get('/', requireFeature('fast-payment'), (_req, res) => res.json({ hello: 'world' }));
  const s = app.listen(0, '127.0.0.1', () => process.send({ port: s.address().port }));
}

function start(mode, redisUrl) {
  const proc = fork(__filename, ['server', mode, redisUrl], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve) => proc.on('message', (m) => resolve({ proc, port: m.port })));
}

async function guardCost(redis) {
  const token = jwt.sign({ sub: 'bo', roles: ['agent'], tenant: 'atlas' }, SECRET, { algorithm: 'HS256', expiresIn: '1h' });
  const headers = { authorization: `Bearer ${token}` };
  const plain = await start('guard', redis.url);
  const recorded = await start('recorded', redis.url);
  try {
    const run = (port) => autocannon({ url: `http://127.0.0.1:${port}/`, connections: 20, duration: SECONDS, headers });
    for (const { port } of [plain, recorded]) await autocannon({ url: `http://127.0.0.1:${port}/`, connections: 20, amount: 2000, headers }); // warm up
    const ratios = [];
    const rows = [];
    for (let i = 0; i < ROUNDS; i++) {
      const a = await run(plain.port);
      const b = await run(recorded.port);
      if (a.non2xx || b.non2xx) throw new Error(`non-2xx answers: ${a.non2xx} / ${b.non2xx}`);
      ratios.push(b.requests.average / a.requests.average);
      rows.push([a.requests.average, b.requests.average, a.latency.p99, b.latency.p99]);
    }
    const sorted = [...ratios].sort((x, y) => x - y);
    const ratio = sorted[Math.floor(sorted.length / 2)];
    return { ratio, ratios, mid: rows[ratios.indexOf(ratio)] };
  } finally {
    plain.proc.kill();
    recorded.proc.kill();
  }
}

// ---- flush cost -------------------------------------------------------------------------------

async function redisStats(admin) {
  const stats = await admin.info('commandstats');
  const calls = {};
  for (const m of stats.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) calls[m[1]] = Number(m[2]);
  const cpu = await admin.info('cpu');
  const seconds = Number(/used_cpu_sys:([\d.]+)/.exec(cpu)[1]) + Number(/used_cpu_user:([\d.]+)/.exec(cpu)[1]);
  return { calls, cpu: seconds };
}

function diff(a, b) {
  const out = {};
  for (const k of new Set([...Object.keys(a.calls), ...Object.keys(b.calls)])) out[k] = (b.calls[k] ?? 0) - (a.calls[k] ?? 0);
  return { calls: out, cpu: b.cpu - a.cpu };
}

/** One second of traffic for one instance: 30 requests per arm, spread over latencies, 10 units. */
function traffic(recorder, instance) {
  for (let f = 0; f < FLAGS; f++) {
    for (const variant of VARIANTS) {
      for (let r = 0; r < 30; r++) {
        // latency bucket 8 + r % 10 (1.25^b ms is its upper edge): the same 10 fields the baseline writes
        recorder.recordRequest([{ flagKey: `flag-${f}`, variant, split: true, unit: `u-${instance}-${r % 10}` }], { error: r === 0, durationMs: 0.99 * 1.25 ** (8 + (r % 10)) });
      }
    }
  }
}

async function flushCost(redis) {
  const { RedisFlagStore } = require('@rollgate/redis');
  const { OutcomeRecorder } = require('../dist');
  const admin = new Redis(redis.url);
  let clock = Date.UTC(2026, 0, 1);
  const instances = [];
  for (let i = 0; i < INSTANCES; i++) {
    const store = new RedisFlagStore({ redis: redis.url, env: 'bench-flush' });
    await store.load();
    instances.push({ store, recorder: new OutcomeRecorder({ store, now: () => clock, flushIntervalMs: 2 ** 31 - 1 }) });
  }
  // the recorder's one script per flush
  const before = await redisStats(admin);
  let flushMs = 0;
  for (let s = 0; s < FLUSH_SECONDS; s++) {
    instances.forEach(({ recorder }, i) => traffic(recorder, i));
    const t = process.hrtime.bigint();
    await Promise.all(instances.map(({ recorder }) => recorder.flush()));
    flushMs += Number(process.hrtime.bigint() - t) / 1e6;
    clock += 1000;
  }
  const script = diff(before, await redisStats(admin));
  // the same counts as a plain pipeline, one command per field, unit set and key TTL
  const keys = instances[0].store.keys;
  const pipeBefore = await redisStats(admin);
  let pipeMs = 0;
  for (let s = 0; s < FLUSH_SECONDS; s++) {
    const t = process.hrtime.bigint();
    await Promise.all(
      instances.map(async ({ store }, i) => {
        const p = store.connection.pipeline();
        const second = Math.floor(clock / 1000);
        for (let f = 0; f < FLAGS; f++) {
          const key = keys.outcomes(`flag-${f}`, second);
          for (const variant of VARIANTS) {
            const arm = encodeURIComponent(`split:${variant}`);
            p.hincrby(key, `${arm}|req`, 30).hincrby(key, `${arm}|err`, 1);
            for (let b = 8; b < 8 + 10; b++) p.hincrby(key, `${arm}|h${b}`, 3);
            const units = keys.units(`flag-${f}`, `split:${variant}`, Math.floor(second / 60));
            p.pfadd(units, ...Array.from({ length: 10 }, (_, u) => `u-${i}-${u}`)).expire(units, 10800);
          }
          p.expire(key, 10800);
        }
        await p.exec();
      }),
    );
    pipeMs += Number(process.hrtime.bigint() - t) / 1e6;
    clock += 1000;
  }
  const pipeline = diff(pipeBefore, await redisStats(admin));
  for (const { store, recorder } of instances) {
    await recorder.close();
    await store.close();
  }
  admin.disconnect();
  const sum = (calls, names) => names.reduce((a, n) => a + (calls[n] ?? 0), 0);
  const inner = ['hincrby', 'pfadd', 'expire'];
  return {
    script: { client: sum(script.calls, ['evalsha', 'eval']) / FLUSH_SECONDS, inner: sum(script.calls, inner) / FLUSH_SECONDS, cpu: script.cpu / FLUSH_SECONDS, flushMs: flushMs / FLUSH_SECONDS },
    pipeline: { client: sum(pipeline.calls, inner) / FLUSH_SECONDS, inner: sum(pipeline.calls, inner) / FLUSH_SECONDS, cpu: pipeline.cpu / FLUSH_SECONDS, flushMs: pipeMs / FLUSH_SECONDS },
  };
}

async function main() {
  const redis = await startRedis();
  try {
    const g = await guardCost(redis);
    const f = await flushCost(redis);
    const n = (x) => Math.round(x).toLocaleString('en');
    const md = `${SECTION}

${machine()}. The machine is shared and noisy: compare each row with the baseline measured beside it.

**What recording costs a guarded route** — Express, \`identity()\` + \`requireFeature('fast-payment')\`, the
caller passes the guard; with and without \`recordOutcomes()\` (an \`OutcomeRecorder\` flushing to a real
\`redis-server\` once a second). autocannon, 20 connections, ${SECONDS} s per run, ${ROUNDS} alternating rounds, each
server in its own process.

| server (round with the median ratio) | req/s | p99 ms |
|---|---:|---:|
| guard (baseline) | ${n(g.mid[0])} | ${g.mid[2]} |
| guard + \`recordOutcomes()\` | ${n(g.mid[1])} | ${g.mid[3]} |

Throughput ratio recorded / guard, median of rounds (${g.ratios.map((r) => r.toFixed(3)).join(', ')}): **${g.ratio.toFixed(3)}**
(${((1 - g.ratio) * 100).toFixed(1)}% cost) — bar ≥ 0.95 (recording costs at most 5%): **${g.ratio >= 0.95 ? 'met' : 'NOT met'}**.

**What the flushes cost Redis** — ${INSTANCES} instances × ${FLAGS} flags × ${VARIANTS.length} variants, every arm with 30 requests,
1 error, 10 latency buckets and 10 units a second, flushed once a second for ${FLUSH_SECONDS} s. Redis' own counters
(\`INFO commandstats\`, \`INFO cpu\`). Baseline: the same counts written as a plain pipeline (one
\`HINCRBY\` per field, \`PFADD\` + \`EXPIRE\` per unit set, \`EXPIRE\` per bucket).

| writing | commands/s sent by clients | commands/s Redis runs | Redis CPU | flush time (all ${INSTANCES}, ms) |
|---|---:|---:|---:|---:|
| recorder: one script per flush | ${n(f.script.client)} | ${n(f.script.inner)} (inside the scripts) | ${(f.script.cpu * 100).toFixed(1)}% of a core | ${f.script.flushMs.toFixed(1)} |
| baseline: pipeline | ${n(f.pipeline.client)} | ${n(f.pipeline.inner)} | ${(f.pipeline.cpu * 100).toFixed(1)}% of a core | ${f.pipeline.flushMs.toFixed(1)} |

Commands sent: **${(f.pipeline.client / f.script.client).toFixed(0)}× fewer** than the pipeline; Redis CPU
${(f.script.cpu / f.pipeline.cpu).toFixed(2)}× the pipeline's.

Reproduce: \`npm run bench\`.
`;
    console.log(md);
    writeSection(SECTION, md);
  } finally {
    redis.stop();
  }
}

if (process.argv[2] === 'server') server(process.argv[3], process.argv[4]);
else main().then(() => process.exit(0), (e) => (console.error(e), process.exit(1)));
