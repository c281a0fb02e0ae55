'use strict';
// Throwaway Sentinel and Cluster topologies for the Redis bench: redis-server processes on loopback
// free ports in a temp directory; only the processes started here are signalled (by handle), and
// every one still running is SIGKILLed when the bench exits.
const { spawn, spawnSync } = require('node:child_process');
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const net = require('node:net');
const { once } = require('node:events');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { Redis } = require('ioredis');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function freePort() {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  return port;
}

async function command(port, ...args) {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, commandTimeout: 2000, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    return await client.call(...args.map(String));
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

async function waitFor(what, check, ms = 30_000) {
  const giveUp = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A redis-server process that can be killed and started again (same arguments). */
function processOf(port, argv) {
  let child;
  const node = {
    port,
    argv,
    async start(extra = []) {
      child = spawn('redis-server', [...argv, ...extra], { stdio: 'ignore' });
      running.add(child);
      child.once('exit', () => running.delete(child));
      await waitFor(`redis-server on ${port}`, async () => (await command(port, 'PING')) === 'PONG', 10_000);
    },
    async kill() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
  return node;
}

const dataArgs = (port, dir) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--dbfilename', `dump-${port}.rdb`, '--repl-diskless-sync-delay', '0'];

/** A master, one replica, three Sentinels (quorum 2, down-after-milliseconds 1000, failover-timeout 3000). */
async function startSentinels() {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-bench-sentinel-'));
  const nodes = [];
  const sentinels = [];
  const stop = async () => {
    await Promise.all([...sentinels, ...nodes].map((n) => n.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const masterPort = await freePort();
    const master = processOf(masterPort, dataArgs(masterPort, dir));
    nodes.push(master);
    await master.start();
    const replicaPort = await freePort();
    const replica = processOf(replicaPort, dataArgs(replicaPort, dir));
    nodes.push(replica);
    await replica.start(['--replicaof', '127.0.0.1', String(masterPort)]);
    await waitFor('the replica to sync', async () => String(await command(replicaPort, 'INFO', 'replication')).includes('master_link_status:up'));
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor rollgate 127.0.0.1 ${masterPort} 2`, 'sentinel down-after-milliseconds rollgate 1000', 'sentinel failover-timeout rollgate 3000', ''].join('\n'));
      const sentinel = processOf(port, [conf, '--sentinel']);
      sentinels.push(sentinel);
      await sentinel.start();
    }
    const topology = {
      url: `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/rollgate`,
      sentinels,
      nodes,
      masterPort: async () => Number((await command(sentinels[0].port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'rollgate'))[1]),
      /** Every Sentinel knows the others and sees one healthy replica in sync with the master. */
      settled: () =>
        waitFor('the Sentinels to know each other and a healthy replica', async () => {
          for (const s of sentinels) {
            const others = await command(s.port, 'SENTINEL', 'SENTINELS', 'rollgate');
            const replicas = await command(s.port, 'SENTINEL', 'REPLICAS', 'rollgate');
            if (!others || others.length !== 2 || !replicas) return false;
            const healthy = replicas.filter((r) => {
              const fields = Object.fromEntries(r.reduce((acc, v, i) => (i % 2 ? acc : [...acc, [v, r[i + 1]]]), []));
              return !fields.flags.includes('down') && !fields.flags.includes('disconnected') && fields['master-link-status'] === 'ok';
            });
            if (healthy.length < 1) return false;
          }
          return true;
        }),
      stop,
    };
    await topology.settled();
    return topology;
  } catch (e) {
    await stop();
    throw e;
  }
}

/** `masters` masters (no replicas) joined with redis-cli --cluster create. */
async function startCluster(masters = 3) {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-bench-cluster-'));
  const nodes = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      const [port, bus] = [await freePort(), await freePort()];
      const node = processOf(port, [...dataArgs(port, dir), '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-port', String(bus), '--cluster-node-timeout', '1000']);
      nodes.push(node);
      await node.start();
    }
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    await waitFor('the cluster to be ok', async () => {
      for (const n of nodes) if (!String(await command(n.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
      return true;
    });
    return { nodes, startupNodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

module.exports = { startSentinels, startCluster, command, waitFor, sleep };
