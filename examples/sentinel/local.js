'use strict';
// A throwaway Sentinel setup on loopback for the example: one master, one replica, three Sentinels
// (quorum 2, down-after-milliseconds 1000), in a temp directory; the processes it started are
// SIGKILLed (by handle) on stop() and on exit.
const { spawn } = require('node:child_process');
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
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

async function startLocalSentinels() {
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-sentinel-example-'));
  const children = [];
  const start = async (args) => {
    const port = args.port;
    let child = spawn('redis-server', args.argv, { stdio: 'ignore' });
    children.push(child);
    await waitFor(`redis-server on ${port}`, async () => (await command(port, 'PING')) === 'PONG', 10_000);
    return {
      port,
      kill: () => child.kill('SIGKILL'),
      /** Starts it again, empty (no persistence), as a crashed node comes back. */
      restart: async () => {
        child = spawn('redis-server', args.argv, { stdio: 'ignore' });
        children.push(child);
        await waitFor(`redis-server on ${port}`, async () => (await command(port, 'PING')) === 'PONG', 10_000);
      },
    };
  };
  const node = (port, extra = []) => ({
    port,
    argv: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--repl-diskless-sync-delay', '0', ...extra],
  });
  const stop = async () => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', () => {
    for (const child of children) child.kill('SIGKILL');
  });
  try {
    const master = await start(node(await freePort()));
    const replica = await start(node(await freePort(), ['--replicaof', '127.0.0.1', String(master.port)]));
    await waitFor('the replica to sync', async () => String(await command(replica.port, 'INFO', 'replication')).includes('master_link_status:up'));
    const sentinelPorts = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor mymaster 127.0.0.1 ${master.port} 2`, 'sentinel down-after-milliseconds mymaster 1000', 'sentinel failover-timeout mymaster 3000', ''].join('\n'),
      );
      await start({ port, argv: [conf, '--sentinel'] });
      sentinelPorts.push(port);
    }
    await waitFor('the Sentinels to know each other and the replica', async () => {
      for (const port of sentinelPorts) {
        const others = await command(port, 'SENTINEL', 'SENTINELS', 'mymaster');
        const replicas = await command(port, 'SENTINEL', 'REPLICAS', 'mymaster');
        if (!others || others.length !== 2 || !replicas || replicas.length !== 1) return false;
      }
      return true;
    });
    const masterPort = async () => Number((await command(sentinelPorts[0], 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'mymaster'))[1]);
    /** Resolves once the current master has a replica in sync. */
    const replicated = () =>
      waitFor('a replica in sync with the new master', async () => {
        const info = String(await command(await masterPort(), 'INFO', 'replication'));
        return /connected_slaves:[1-9]/.test(info) && /slave0:.*state=online/.test(info);
      });
    const nodes = [master, replica];
    return {
      url: `redis+sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/mymaster`,
      masterPort,
      master: async () => {
        const port = await masterPort();
        return nodes.find((n) => n.port === port);
      },
      replicated,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

module.exports = { startLocalSentinels };
