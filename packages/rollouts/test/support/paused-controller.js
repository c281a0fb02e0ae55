'use strict';
// A controller process that takes the lease, reads the plan, then stops itself (SIGSTOP) before
// writing — the worst moment for a GC pause or a stopped VM. When continued it tries to write as
// if it still held the lease, and reports what happened. Runs the built packages (npm run build).
const { RedisFlagStore } = require('@rollgate/redis');
const { ControllerLease } = require('../../dist/lease');
const { Rollouts } = require('../../dist/rollouts');

async function main() {
  const { url, env, ttlMs } = JSON.parse(process.argv[2]);
  const store = new RedisFlagStore({ redis: url, env, pollIntervalMs: 60_000 });
  const lease = new ControllerLease(store, ttlMs);
  const rollouts = new Rollouts({ store });
  const acquired = await lease.acquire();
  const plan = await rollouts.get('fast-payment');
  const set = await store.load();
  process.send({ acquired, epoch: lease.epoch });
  await new Promise((resolve) => setTimeout(resolve, 50)); // let the message leave before stopping
  process.kill(process.pid, 'SIGSTOP');
  // continued: it still believes it holds the lease
  const results = {};
  try {
    await rollouts.write({ ...plan, stage: plan.stage + 1, applied: false }, 'advance', { actor: 'paused-controller' }, lease.token);
    results.plan = 'written';
  } catch (e) {
    results.plan = e.code ?? e.message;
  }
  try {
    const def = set.flags['fast-payment'];
    await store.apply([{ kind: 'flag', key: 'fast-payment', definition: { ...def, state: 'DISABLED' } }], { actor: 'paused-controller', leaseToken: lease.token });
    results.flag = 'written';
  } catch (e) {
    results.flag = e.code ?? e.message;
  }
  process.send({ results });
  await store.close();
}

main().catch((e) => {
  process.send({ crashed: String(e && e.stack) });
});
