'use strict';
// Rollgate on a Sentinel-managed Redis: an OpenFeature provider that follows the failover, and a
// writer whose writes are acknowledged only once a replica has them (minReplicas).
//
//   npm run build
//   node examples/sentinel --local     # starts a master, a replica and 3 Sentinels on loopback,
//                                      # SIGKILLs the master, shows the provider follow, restarts
//                                      # the old master (it comes back as a replica)
//   REDIS_URL='redis+sentinel://:password@sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/mymaster' node examples/sentinel
const { OpenFeature, ProviderEvents } = require('@openfeature/server-sdk');
const { RedisFlagStore, RollgateProvider, WriteNotReplicatedError } = require('@rollgate/redis');
const { startLocalSentinels } = require('./local');

const ENV = process.env.ROLLGATE_ENV || 'sentinel-example';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const local = process.argv.includes('--local') ? await startLocalSentinels() : undefined;
  // A URL names the Sentinels and the master; the same as RedisOptions:
  //   { sentinels: [{ host, port }, …], name: 'mymaster', password, sentinelPassword, tls, sentinelTLS, enableTLSForSentinelMode }
  const redis = local ? local.url : process.env.REDIS_URL;
  if (!redis || !redis.includes('+sentinel://')) throw new Error('set REDIS_URL=redis+sentinel://host:port[,host:port…]/<master name>, or run with --local');
  console.log(`Sentinels: ${redis.replace(/:[^:@/]*@/, ':***@')}`);

  // The writer (an admin tool, the CLI, the rollout controller): acknowledged = on a replica too,
  // so a failover to that replica keeps it. Not replicated in time → WriteNotReplicatedError.
  const writer = new RedisFlagStore({ redis, env: ENV, minReplicas: local ? 1 : Number(process.env.MIN_REPLICAS || 1) });
  await writer.putFlag('fast-payment', { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' }, { actor: 'example' });

  // The app: a provider with its own store (the safe defaults: 1 s command timeout, one retry,
  // reconnects capped at 0.5 s, and a subscriber that asks the Sentinels for the master again)
  const provider = new RollgateProvider({ store: { redis, env: ENV }, logger: console });
  for (const event of [ProviderEvents.Stale, ProviderEvents.Ready, ProviderEvents.ConfigurationChanged]) {
    provider.events.addHandler(event, (e) => console.log(`  provider: ${event}${e?.message ? ` (${e.message})` : ''} — version ${provider.health().version}`));
  }
  await OpenFeature.setProviderAndWait(provider);
  const client = OpenFeature.getClient();
  const show = async (label) => console.log(`${label}: fast-payment = ${await client.getBooleanValue('fast-payment', false, { targetingKey: 'u1' })}`);
  await show('before');

  if (local) {
    const master = await local.master();
    console.log(`SIGKILL the master (port ${master.port}); evaluations keep answering from the last known flags meanwhile`);
    const killedAt = Date.now();
    master.kill();
    while ((await local.masterPort()) === master.port) await sleep(50);
    console.log(`Sentinels promoted the replica after ${Date.now() - killedAt} ms`);
    while (provider.health().storeUnavailable) await sleep(20);
    console.log(`the provider is back on the new master ${Date.now() - killedAt} ms after the kill`);

    // the only replica is now the master: a write with minReplicas 1 cannot be confirmed. It is
    // applied on the master (instances adopt it), and the writer is told it is not replicated.
    const strict = new RedisFlagStore({ redis, env: ENV, minReplicas: 1, writeReadBackMs: 1000 });
    await strict.patchFlag('fast-payment', { metadata: { note: 'written with no replica left' } }, { actor: 'example' }).catch((e) => {
      if (!(e instanceof WriteNotReplicatedError)) throw e;
      console.log(`writer: ${e.message}`);
    });
    await strict.close();

    // the crashed node comes back (empty): the Sentinels make it a replica of the new master
    await master.restart();
    await local.replicated();
    console.log(`the old master is back as a replica ${Date.now() - killedAt} ms after the kill`);
  }

  // the kill switch, acknowledged once a replica has it: every instance denies
  const killed = await writer.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'example', reason: 'demo kill switch' });
  while (provider.health().version < killed.version) await sleep(10);
  await show('after the kill switch');

  await OpenFeature.close();
  await writer.close();
  await local?.stop();
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
