import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { RedisFlagStore } from '@rollgate/redis';
import { freePort, startRedis, type TestRedis } from '../../../packages/redis/test/support/redis-server';
import { buildProjects, childEnv, ROOT } from '../../../test/support/packaging';
import { demoToken } from '../src/demo-users';
import { DEMO_ENV, openDemoStore, seedIfEmpty } from '../src/flag-store';

// Which store the demo uses. A Redis asked for with REDIS_URL is the store even when it is down
// at start-up: the demo must not fall back to a seeded in-memory copy, which a second instance
// then served while a kill switch stored in Redis said otherwise. Runs the built demo
// (node examples/booking-api/dist/main.js, as `npm start` does) against a throwaway redis-server.

jest.setTimeout(120_000);

const MAIN = path.join(ROOT, 'examples/booking-api/dist/main.js');

interface Demo {
  lines: string[];
  /** Resolves with the first printed line matching `pattern` (already printed, or to come); rejects if the demo exits first. */
  line(pattern: RegExp): Promise<string>;
  /** SIGTERM; resolves to the exit code (or the signal and what was printed). */
  stop(): Promise<number | string>;
}

function startDemo(env: Record<string, string>): Demo {
  const child: ChildProcess = spawn(process.execPath, [MAIN], { cwd: ROOT, env: childEnv({ HOST: '127.0.0.1', REDIS_URL: '', BOOKING_STORE: '', BOOKING_UI_DIR: path.join(ROOT, 'no-ui'), ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiting = new Set<() => void>();
  let exited = false;
  const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  void exit.then(() => {
    exited = true;
    for (const w of [...waiting]) w();
  });
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (l) => {
      lines.push(l);
      for (const w of [...waiting]) w();
    });
  }
  return {
    lines,
    line: (pattern) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find((l) => pattern.test(l));
          if (found !== undefined || exited) waiting.delete(check);
          if (found !== undefined) resolve(found);
          else if (exited) reject(new Error(`the demo exited without printing ${String(pattern)}:\n${lines.join('\n')}`));
        };
        waiting.add(check);
        check();
      }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const [code, signal] = await exit;
      return code ?? `${signal} after:\n${lines.join('\n')}`;
    },
  };
}

async function payFast(url: string, user: string): Promise<number> {
  const res = await fetch(`${url}/payments/fast`, { method: 'POST', headers: { Authorization: `Bearer ${demoToken(user)!}` } });
  await res.arrayBuffer();
  return res.status;
}

let redis: TestRedis;

beforeAll(async () => {
  await buildProjects(['examples/booking-api']); // a no-op after `npm run build`
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

it('REDIS_URL set and Redis down at start-up: says so first, answers 503 (not the seeded copy), then obeys the kill switch stored in Redis', async () => {
  // What another instance and the CLI left in Redis: the demo flags, with the kill switch on.
  const other = new RedisFlagStore({ redis: redis.url, env: DEMO_ENV });
  await seedIfEmpty(other);
  await other.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'ops', reason: 'incident' });
  await other.close();

  redis.pause(); // down (not answering) while the second instance starts
  let resumed = false;
  const demo = startDemo({ REDIS_URL: redis.url, PORT: '0' });
  try {
    const url = (await demo.line(/^booking demo: http:\/\/\S+$/)).replace('booking demo: ', '');
    await demo.line(/^kill switch: /); // the last start-up line: SIGTERM is handled from here on
    expect(demo.lines[0]).toMatch(new RegExp(`^store: Redis at ${redis.url.replace(/[.]/g, '\\.')} \\(namespace rollgate:\\{demo\\}\\) — NOT ANSWERING yet: flag checks answer 503 until it does`));
    expect(demo.lines.join('\n')).not.toMatch(/^store: embedded|^flags: seeded/m);
    // bo is an agent of a VIP agency: the seeded flags would let him through (200); Redis says DISABLED
    expect(await payFast(url, 'bo')).toBe(503);

    redis.resume();
    resumed = true;
    await demo.line(/^store: Redis at .* answers: flag checks use its flags$/);
    expect(await payFast(url, 'bo')).toBe(403); // the kill switch stored in Redis, not the seeded copy
    await demo.line(/^flags: kept the namespace's flags as they are \(version 2\)/); // nothing re-seeded over them
  } finally {
    if (!resumed) redis.resume();
    expect(await demo.stop()).toBe(0);
  }
});

it('REDIS_URL set and the namespace empty when Redis comes up: seeds it then, once', async () => {
  const down = await freePort();
  const demo = startDemo({ REDIS_URL: `redis://127.0.0.1:${down}`, PORT: '0' });
  let late: TestRedis | undefined;
  try {
    const url = (await demo.line(/^booking demo: http:\/\/\S+$/)).replace('booking demo: ', '');
    await demo.line(/^kill switch: /); // the last start-up line: SIGTERM is handled from here on
    expect(demo.lines[0]).toMatch(/^store: Redis at redis:\/\/127\.0\.0\.1:\d+ \(namespace rollgate:\{demo\}\) — NOT ANSWERING yet/);
    expect(await payFast(url, 'bo')).toBe(503);
    late = await startRedis(down); // Redis starts, empty
    await demo.line(/^flags: seeded from examples\/booking-api\/flags\.json \(version 1\)$/);
    await demo.line(/^store: Redis at .* answers/);
    const reader = new RedisFlagStore({ redis: late.url, env: DEMO_ENV });
    try {
      expect(Object.keys((await reader.load()).flags)).toContain('fast-payment');
      expect((await reader.audit()).map((e) => `${e.actor} ${e.action} v${e.version}`)).toEqual(expect.arrayContaining(['booking-api seed v1']));
      expect(new Set((await reader.audit()).map((e) => e.version))).toEqual(new Set([1])); // seeded once
    } finally {
      await reader.close();
    }
  } finally {
    expect(await demo.stop()).toBe(0);
    await late?.stop();
  }
});

it('uses the embedded store only when no Redis is asked for: BOOKING_STORE=memory, or nothing answering locally', async () => {
  const memory = startDemo({ BOOKING_STORE: 'memory', PORT: '0' });
  try {
    await memory.line(/^kill switch: /); // the last start-up line: SIGTERM is handled from here on
    expect(memory.lines[0]).toBe('store: embedded in-memory (BOOKING_STORE=memory) — flags live in this process until it stops; set REDIS_URL instead to share them with the CLI');
  } finally {
    expect(await memory.stop()).toBe(0);
  }
  const both = startDemo({ BOOKING_STORE: 'memory', REDIS_URL: redis.url, PORT: '0' });
  await expect(both.line(/never/)).rejects.toThrow(/REDIS_URL and BOOKING_STORE=memory ask for two different stores/);
  expect(await both.stop()).toBe(2);

  // REDIS_URL unset: the local address is probed (the same function main.js calls)
  const nothing = `redis://127.0.0.1:${await freePort()}`;
  const fallback = await openDemoStore({ local: nothing });
  await fallback.store.close();
  expect(fallback).toMatchObject({ kind: 'memory', answering: true, description: expect.stringMatching(/^store: embedded in-memory \(REDIS_URL is not set and no Redis answered at redis:\/\/127\.0\.0\.1:\d+\)/) });
  const found = await openDemoStore({ local: redis.url });
  await found.store.close();
  expect(found).toMatchObject({ kind: 'redis', answering: true });
  const asked = await openDemoStore({ redisUrl: nothing });
  await asked.store.close();
  expect(asked).toMatchObject({ kind: 'redis', answering: false });
});
