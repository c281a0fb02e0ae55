'use strict';
// Rollgate on a Redis Cluster: one environment = one hash slot (`rollgate:{<env>}:…`), so each
// environment's writes stay one atomic script on one shard, and environments spread over shards.
// Change notices use sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7+).
//
//   npm run build
//   node examples/cluster --local     # starts 3 masters + 3 replicas on loopback, puts two
//                                     # environments on different shards, then SIGKILLs one master
//   REDIS_URL='redis+cluster://redis-1:6379,redis-2:6379,redis-3:6379' node examples/cluster
const { OpenFeature, ProviderEvents } = require('@openfeature/server-sdk');
const { flagStoreKeys, RedisFlagStore, RollgateProvider, StoreUnavailableError } = require('@rollgate/redis');
const { startLocalCluster } = require('./local');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const killable = { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' };

async function main() {
  const local = process.argv.includes('--local') ? await startLocalCluster() : undefined;
  // The URL names a few startup nodes; the same as options:
  //   { cluster: [{ host, port }, …], clusterOptions: { redisOptions: { password, tls } } }
  // The store's Cluster gets enableOfflineQueue: false (required: a Cluster you pass in without
  // it is refused), the safe node options, and sharded notices (clusterNotices: 'classic' for
  // Redis 6, where SPUBLISH does not exist).
  const redis = local ? local.url : process.env.REDIS_URL;
  if (!redis || !redis.includes('+cluster://')) throw new Error('set REDIS_URL=redis+cluster://host:port[,host:port…], or run with --local');

  // two environments; with --local, chosen on two different masters
  let envs = ['eu', 'us'];
  if (local) {
    envs = [];
    for (let i = 0; envs.length < 2; i++) {
      const env = `prod-${i}`;
      const master = await local.masterOf(Number(await local.command(local.nodes[0].port, 'CLUSTER', 'KEYSLOT', flagStoreKeys(env).flags)));
      if (!envs.some((e) => e.master === master)) envs.push({ env, master });
    }
    for (const e of envs) console.log(`environment ${e.env}: every key in slot of rollgate:{${e.env}}:…, served by the master on port ${e.master}`);
    envs = envs.map((e) => e.env);
  }

  const apps = [];
  for (const env of envs) {
    const writer = new RedisFlagStore({ redis, env });
    await writer.putFlag('fast-payment', killable, { actor: 'example' });
    const provider = new RollgateProvider({ store: { redis, env } });
    provider.events.addHandler(ProviderEvents.ConfigurationChanged, () => console.log(`  ${env}: provider now at version ${provider.health().version}`));
    provider.events.addHandler(ProviderEvents.Stale, (e) => console.log(`  ${env}: STALE (${e.message}) — serving the last known flags`));
    provider.events.addHandler(ProviderEvents.Ready, () => console.log(`  ${env}: READY again`));
    await OpenFeature.setProviderAndWait(env, provider); // one OpenFeature domain per environment
    apps.push({ env, writer, provider, client: OpenFeature.getClient(env) });
  }

  const killSwitch = async ({ env, writer, provider, client }) => {
    const sent = Date.now();
    const { version } = await writer.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'example' });
    while (provider.health().version < version) await sleep(1);
    console.log(`${env}: kill switch heard in ${Date.now() - sent} ms; fast-payment = ${await client.getBooleanValue('fast-payment', false, { targetingKey: 'u1' })}`);
  };
  await killSwitch(apps[0]);

  if (local) {
    const channel = flagStoreKeys(apps[1].env).changes;
    console.log(`sharded subscribers of ${channel}, per node: ${(await Promise.all(local.nodes.map(async (n) => `${n.port}=${(await local.command(n.port, 'PUBSUB', 'SHARDNUMSUB', channel))[1]}`))).join(' ')}`);
    const port = await local.masterOf(Number(await local.command(local.nodes[0].port, 'CLUSTER', 'KEYSLOT', channel)));
    console.log(`SIGKILL the master of ${apps[1].env} (port ${port}); its replica takes over after cluster-node-timeout`);
    const killedAt = Date.now();
    local.nodes.find((n) => n.port === port).kill();
    for (;;) {
      const owner = await local.masterOf(Number(await local.command(local.nodes.find((n) => n.port !== port).port, 'CLUSTER', 'KEYSLOT', channel)));
      if (owner && owner !== port) break;
      await sleep(50);
    }
    console.log(`replica promoted ${Date.now() - killedAt} ms after the kill`);
    // writes to that shard fail loudly until then; afterwards they succeed and are heard again
    for (;;) {
      try {
        await killSwitch(apps[1]);
        break;
      } catch (e) {
        if (!(e instanceof StoreUnavailableError)) throw e;
        console.log(`  ${apps[1].env}: write failed loudly (${e.message.slice(0, 100)}…); retrying`);
        await sleep(200);
      }
    }
  } else {
    await killSwitch(apps[1]);
  }

  await OpenFeature.close();
  for (const a of apps) await a.writer.close();
  await local?.stop();
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
