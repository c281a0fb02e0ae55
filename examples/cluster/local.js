'use strict';
// A throwaway Redis Cluster on loopback for the example: three masters with a replica each
// (cluster-node-timeout 1000 ms), joined with `redis-cli --cluster create`, in a temp directory;
// the processes it started are SIGKILLed (by handle) on stop() and on exit.
const { spawn, spawnSync } = require('node:child_process');
const { mkdtempSync, rmSync } = require('node:fs');
const net = require('node:net');
const { once } = require('node:events');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { Redis } = require('ioredis');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort() {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  return port;
}

/** One admin command on a fresh connection (undefined if it cannot be sent). */
async function command(port, ...args) {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
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
    await sleep(100);
  }
}

async function startLocalCluster() {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-cluster-example-'));
  const nodes = [];
  const stop = async () => {
    for (const n of nodes) n.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', () => {
    for (const n of nodes) n.child.kill('SIGKILL');
  });
  try {
    for (let i = 0; i < 6; i++) {
      const [port, bus] = [await freePort(), await freePort()];
      const argv = ['--port', String(port), '--cluster-port', String(bus), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '1000', '--save', '', '--appendonly', 'no', '--dir', dir, '--repl-diskless-sync-delay', '0'];
      const child = spawn('redis-server', argv, { stdio: 'ignore' });
      nodes.push({ port, child, kill: () => child.kill('SIGKILL') });
      await waitFor(`redis-server on ${port}`, async () => (await command(port, 'PING')) === 'PONG', 10_000);
    }
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8' });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    // ok everywhere, and every replica done with its first sync: a replica promoted before that
    // would take over its shard empty
    await waitFor('the cluster to be ok everywhere, every replica in sync', async () => {
      for (const n of nodes) {
        if (!String(await command(n.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
        const replication = String(await command(n.port, 'INFO', 'replication'));
        if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false;
      }
      return true;
    });
    /** The port of the master serving `slot` now. */
    const masterOf = async (slot) => {
      for (const n of nodes) {
        const text = await command(n.port, 'CLUSTER', 'NODES');
        if (!text) continue;
        for (const line of String(text).trim().split('\n')) {
          const [, address, flags, , , , , , ...slots] = line.split(' ');
          if (!flags.includes('master') || flags.includes('fail')) continue;
          for (const range of slots) {
            const [a, b = a] = range.split('-').map(Number);
            if (slot >= a && slot <= b) return Number(/:(\d+)@/.exec(address)[1]);
          }
        }
        return undefined;
      }
      return undefined;
    };
    return {
      nodes,
      url: `redis+cluster://${nodes.slice(0, 3).map((n) => `127.0.0.1:${n.port}`).join(',')}`,
      command,
      masterOf,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

module.exports = { startLocalCluster };
