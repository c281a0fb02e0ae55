import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { RedisFlagStore } from '@rollgate/redis';
import { RolloutController } from '@rollgate/rollouts';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';

// One controller acts at a time: the lease. And a controller stopped past its lease cannot write
// when it wakes, because the write scripts check its token (fencing at the resource).

jest.setTimeout(30_000);

let redis: TestRedis;
let store: RedisFlagStore;
let env: string;
let child: ChildProcess | undefined;

const fastPayment = { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { fractional: [['on', 0], ['off', 100]] } };
const plan = { flag: 'fast-payment', treatment: 'on', control: 'off', stages: [{ percent: 5 }, { percent: 50 }, { percent: 100, absolute: { maxErrorRate: 0.05 } }], guards: [{ metric: 'errors' }] };

beforeEach(async () => {
  redis = await startRedis();
  env = `lease-${process.pid}`;
  store = new RedisFlagStore({ redis: redis.url, env, pollIntervalMs: 60_000 });
  await store.putFlag('fast-payment', fastPayment, { actor: 'ada' });
});
afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
  await store.close();
  await redis.stop();
});

it('only the lease holder acts; the other controller reads and writes nothing', async () => {
  const a = new RolloutController({ store, name: 'a' });
  const b = new RolloutController({ store, name: 'b' });
  await a.rollouts.create(plan, { actor: 'ada' });
  await a.rollouts.start('fast-payment', { actor: 'ada' });
  const first = await a.tick();
  const second = await b.tick();
  expect([first.leader, second.leader]).toEqual([true, false]);
  expect(second.plans).toEqual([]);
  // a stopping controller gives the lease up: the other takes over at once
  await a.stop();
  expect((await b.tick()).leader).toBe(true);
  await b.stop();
});

it('a controller stopped (SIGSTOP) past its lease is refused both writes when it wakes: the plan and the flag stay as the new controller left them', async () => {
  const starter = new RolloutController({ store, name: 'starter' });
  await starter.rollouts.create(plan, { actor: 'ada' });
  await starter.rollouts.start('fast-payment', { actor: 'ada' });
  child = fork(join(__dirname, 'support', 'paused-controller.js'), [JSON.stringify({ url: redis.url, env, ttlMs: 500 })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [hello] = (await once(child, 'message')) as [{ acquired: boolean; epoch: number }];
  expect(hello.acquired).toBe(true);
  // the paused controller's lease runs out; another controller takes over and acts
  const other = new RolloutController({ store, name: 'other' });
  let tick = await other.tick();
  while (!tick.leader) {
    await new Promise<void>((resolve) => setTimeout(resolve, 50)); // the lease's TTL is Redis' real time
    tick = await other.tick();
  }
  const before = { plan: await other.rollouts.get('fast-payment'), flags: (await store.load()).flags };
  child.kill('SIGCONT');
  const [report] = (await once(child, 'message')) as [{ results: { plan: string; flag: string } }];
  expect(report.results).toEqual({ plan: 'ERR_ROLLGATE_FENCED', flag: 'ERR_ROLLGATE_FENCED' });
  expect(await other.rollouts.get('fast-payment')).toEqual(before.plan);
  expect((await store.load()).flags).toEqual(before.flags);
  expect((await store.audit('fast-payment', { limit: 100 })).filter((e) => e.actor === 'paused-controller')).toEqual([]);
  await other.stop();
});
