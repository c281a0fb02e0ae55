import { Redis } from 'ioredis';
import { RedisFlagStore } from '@rollgate/redis';
import { OutcomeReader, OutcomeRecorder } from '@rollgate/rollouts';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { FakeClock } from './support/traffic';

// Outcome recording against a real redis-server: in-process counts, one command per flush,
// per-second buckets that merge across instances, and what happens while Redis is away.

jest.setTimeout(30_000);

let redis: TestRedis;
let admin: Redis;
const cleanups: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  admin.disconnect();
  await redis.stop();
});

function instance(clock: FakeClock, extra: Partial<ConstructorParameters<typeof OutcomeRecorder>[0]> = {}): { store: RedisFlagStore; recorder: OutcomeRecorder } {
  const store = new RedisFlagStore({ redis: { port: redis.port, host: '127.0.0.1', retryStrategy: () => 50 }, env: 'rec', pollIntervalMs: 60_000 });
  const recorder = new OutcomeRecorder({ store, now: clock.now, flushIntervalMs: 2 ** 31 - 1, ...extra });
  cleanups.push(() => store.close(), () => recorder.close());
  return { store, recorder };
}

const on = (unit: string) => ({ flagKey: 'fast-payment', variant: 'on', split: true, unit });
const off = (unit: string) => ({ flagKey: 'fast-payment', variant: 'off', split: true, unit });
const pilot = (unit: string) => ({ flagKey: 'fast-payment', variant: 'on', split: false, unit });

async function commandsProcessed(): Promise<Record<string, number>> {
  const info = await admin.info('commandstats');
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

it('counts in memory, writes one command per flush, and buckets from two instances add up per second and arm', async () => {
  const clock = new FakeClock(Date.UTC(2026, 11, 1, 9, 0, 0, 300));
  const a = instance(clock);
  const b = instance(clock);
  await a.store.load(); // connections up before counting commands
  await b.store.load();
  const before = await commandsProcessed();
  for (let i = 0; i < 100; i++) a.recorder.recordRequest([on(`u${i % 7}`)], { error: i % 10 === 0, durationMs: i % 2 ? 12 : 250 });
  for (let i = 0; i < 50; i++) b.recorder.recordRequest([on(`u${i % 11}`), { flagKey: 'new-search', variant: 'v2', split: true, unit: `u${i}` }], { error: false, durationMs: 30 });
  b.recorder.recordRequest([off('u1')], { error: true, durationMs: 5000 });
  b.recorder.recordRequest([pilot('ada')], { error: false, durationMs: 40 });
  b.recorder.recordEvent('payment.failed', [on('u3')]);
  const during = await commandsProcessed();
  expect(during.evalsha ?? 0).toBe(before.evalsha ?? 0); // nothing reached Redis while counting
  expect(during.hincrby ?? 0).toBe(before.hincrby ?? 0);
  await a.recorder.flush();
  await b.recorder.flush();
  const after = await commandsProcessed();
  expect((after.evalsha ?? 0) + (after.eval ?? 0) - (before.evalsha ?? 0) - (before.eval ?? 0)).toBe(2); // one per instance

  const reader = new OutcomeReader(a.store);
  const second = Math.floor(clock.ms / 1000);
  const [counts] = await reader.seconds('fast-payment', second, second);
  const treatment = counts!.arms.get('split:on')!;
  expect([treatment.requests, treatment.errors, treatment.events]).toEqual([150, 10, { 'payment.failed': 1 }]);
  // 12 ms → bucket 12, 250 ms → bucket 25, 30 ms → bucket 16 (1.25^i ms upper bounds)
  expect(treatment.histogram.flatMap((n, i) => (n ? [[i, n]] : []))).toEqual([
    [12, 50],
    [16, 50],
    [25, 50],
  ]);
  expect(counts!.arms.get('split:off')).toMatchObject({ requests: 1, errors: 1 });
  expect(counts!.arms.get('targeted:on')).toMatchObject({ requests: 1, errors: 0 });
  expect((await reader.seconds('new-search', second, second))[0]!.arms.get('split:v2')!.requests).toBe(50);
  // distinct units over both instances: u0..u10 (HyperLogLog: exact at this size)
  expect(await reader.units('fast-payment', 'split:on', second, second)).toBe(11);
  // buckets expire (3 h by default)
  const ttl = await admin.ttl(a.store.keys.outcomes('fast-payment', second));
  expect(ttl).toBeGreaterThan(10_700);
  expect(ttl).toBeLessThanOrEqual(10_800);
});

it('keeps counts while Redis is down and writes them once it is back; beyond maxPendingSeconds the oldest are dropped and counted', async () => {
  const clock = new FakeClock(Date.UTC(2026, 11, 1, 9, 0, 0));
  const warnings: string[] = [];
  const { store, recorder } = instance(clock, { maxPendingSeconds: 3, logger: { warn: (m) => warnings.push(m) } });
  await store.load();
  await redis.kill();
  for (let s = 0; s < 5; s++) {
    recorder.recordRequest([on('u1')], { error: false, durationMs: 10 });
    await recorder.flush(); // fails: kept
    clock.advance(1000);
  }
  expect(warnings).toEqual([expect.stringMatching(/^rollgate: outcome counts not written to Redis \(.+\); keeping up to 3 s of them$/)]);
  expect(recorder.droppedSeconds).toBe(2);
  await redis.start();
  await store.load().catch(() => store.load()); // the connection is back
  await recorder.flush();
  expect(warnings[1]).toBe('rollgate: outcome counts are written to Redis again');
  const start = Math.floor(Date.UTC(2026, 11, 1, 9, 0, 0) / 1000);
  const seconds = await new OutcomeReader(store).seconds('fast-payment', start, start + 4);
  expect(seconds.map((s) => s.arms.get('split:on')?.requests ?? 0)).toEqual([0, 0, 1, 1, 1]);
});

it('ignores fields it did not write, and arm or event names that try to be something else', async () => {
  const clock = new FakeClock(Date.UTC(2026, 11, 1, 9, 0, 0));
  const { store, recorder } = instance(clock);
  recorder.recordRequest([{ flagKey: 'fast-payment', variant: 'on|err', split: true }], { error: false, durationMs: 1 });
  recorder.recordEvent('__proto__', [on('u1')]);
  await recorder.flush();
  const second = Math.floor(clock.ms / 1000);
  await admin.hset(store.keys.outcomes('fast-payment', second), 'garbage', 'x', 'split%3Aon|h999', '5', 'split%3Aon|req', '-3');
  const [counts] = await new OutcomeReader(store).seconds('fast-payment', second, second);
  expect(counts!.arms.get('split:on|err')).toMatchObject({ requests: 1, errors: 0 });
  const events = counts!.arms.get('split:on')!.events;
  expect(Object.getPrototypeOf(events)).toBeNull();
  expect(events['__proto__']).toBe(1);
  expect(counts!.arms.get('split:on')!.requests).toBe(0);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});

it("keeps users' feedback per flag, capped (oldest dropped first), and summarises it per variant with the negative share's interval", async () => {
  const clock = new FakeClock(Date.now());
  const { store, recorder } = instance(clock, { feedbackPerFlag: 50 });
  const report = (variant: string, sentiment: 'positive' | 'neutral' | 'negative', comment?: string) =>
    recorder.recordFeedback({ flagKey: 'fast-payment', variant, split: true, sentiment, comment, unit: `u-${variant}` });
  for (let i = 0; i < 30; i++) report('off', i % 10 === 0 ? 'negative' : 'positive');
  for (let i = 0; i < 30; i++) report('on', i % 2 === 0 ? 'negative' : 'neutral');
  report('on', 'negative', '<img src=x onerror=alert(1)> \u001b[2J it froze');
  await recorder.flush();
  const { readFeedback } = await import('@rollgate/rollouts');
  const summary = await readFeedback(store, 'fast-payment', { variant: 'on', limit: 5 });
  expect(summary.reports).toBe(50); // 61 sent, the 11 oldest dropped
  const on = summary.variants.find((v) => v.variant === 'on')!;
  expect(on).toMatchObject({ positive: 0, negative: 16, neutral: 15, total: 31 });
  expect(on.negativeShare).toMatchObject({ status: 'ok', share: 16 / 31 });
  const { lower, upper } = on.negativeShare as { lower: number; upper: number };
  expect(lower).toBeLessThan(16 / 31);
  expect(upper).toBeGreaterThan(16 / 31);
  expect(summary.variants.find((v) => v.variant === 'off')).toMatchObject({ total: 19 });
  // the comment is kept as sent: shown as text by whoever reads it
  expect(summary.latest[0]).toMatchObject({ variant: 'on', sentiment: 'negative', comment: '<img src=x onerror=alert(1)> \u001b[2J it froze', unit: 'u-on', split: true });
  expect(summary.latest).toHaveLength(5);
  expect(await admin.ttl(store.keys.feedback('fast-payment'))).toBeGreaterThan(29 * 86_400);
});
