import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ProviderEvents } from '@openfeature/server-sdk';
import type { RollgateProvider } from '@rollgate/redis';
import { freePort } from './redis-server';

// Sentinel and Cluster topologies of throwaway redis-server processes for integration tests: all
// on loopback free ports, in one temp directory, started and stopped by the test. Only processes
// started here are ever signalled (by their ChildProcess handle, never by name), and every one
// left running is SIGKILLed when the test process exits.

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a value other than undefined/false (or throws after `timeoutMs`). */
export async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const giveUpAt = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > giveUpAt) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

/** One redis-server process (a data node or a Sentinel). */
export class RedisProcess {
  private proc: ChildProcess | undefined;
  output = '';

  constructor(
    readonly port: number,
    private readonly args: string[],
    readonly name: string,
  ) {}

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get alive(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async start(): Promise<void> {
    const child = spawn('redis-server', this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    this.proc = child;
    this.output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      // keep the tail only: enough to explain a failure
      this.output = (this.output + chunk.toString()).slice(-20_000);
    });
    child.stderr!.resume();
    const exited = once(child, 'exit').then(() => {
      throw new Error(`${this.name} (port ${this.port}) exited at start: ${this.output}`);
    });
    exited.catch(() => undefined);
    await Promise.race([exited, until(`${this.name} on port ${this.port} to answer PING`, () => ping(this.port), 10_000, 20)]);
  }

  /** SIGKILL: a crash. Resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.proc;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGCONT'); // a stopped process must wake to die promptly
    child.kill('SIGKILL');
    await exited;
    running.delete(child);
  }

  /** SIGSTOP: hangs with its connections open (resume() undoes it). */
  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  /** A short-lived connection for one admin command. */
  async command(...args: (string | number)[]): Promise<unknown> {
    const client = new Redis({ host: '127.0.0.1', port: this.port, lazyConnect: true, maxRetriesPerRequest: 0, commandTimeout: 2000, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await client.call(String(args[0]), ...args.slice(1).map(String));
    } finally {
      client.disconnect();
    }
  }

  async info(section: string): Promise<Record<string, string>> {
    const text = String(await this.command('INFO', section));
    const out: Record<string, string> = {};
    for (const line of text.split('\r\n')) {
      const i = line.indexOf(':');
      if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
    }
    return out;
  }
}

async function ping(port: number): Promise<boolean> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 500, commandTimeout: 500, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } finally {
    client.disconnect();
  }
}

/** Data-node arguments: no persistence, and a replica's first sync starts at once (diskless, no delay). */
function dataNodeArgs(port: number, dir: string, extra: string[] = []): string[] {
  return [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
    '--dbfilename', `dump-${port}.rdb`, '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0',
    ...extra,
  ];
}

// ---- Sentinel --------------------------------------------------------------------------------------

export interface SentinelTopology {
  readonly masterName: string;
  /** The data nodes: [0] started as master, [1] as its replica. */
  readonly nodes: RedisProcess[];
  readonly sentinels: RedisProcess[];
  /** `{ host, port }` of every Sentinel, for ioredis `sentinels`. */
  readonly sentinelAddresses: { host: string; port: number }[];
  /** The master's port as the Sentinels see it now (asks the first Sentinel that answers). */
  masterPort(): Promise<number>;
  /** The node that is master now. */
  master(): Promise<RedisProcess>;
  stop(): Promise<void>;
}

/**
 * One master, `replicas` replicas, `sentinels` Sentinels (quorum: a majority), on loopback. Short
 * timings so a failover takes a few seconds: down-after-milliseconds 1000, failover-timeout 3000.
 * Resolves once every replica is in sync and every Sentinel knows the replicas and the other
 * Sentinels (otherwise a failover could not be authorised or could pick no replica).
 */
export async function startSentinelTopology(options: { replicas?: number; sentinels?: number; masterName?: string } = {}): Promise<SentinelTopology> {
  const replicas = options.replicas ?? 1;
  const count = options.sentinels ?? 3;
  const masterName = options.masterName ?? 'rollgate';
  const quorum = Math.floor(count / 2) + 1;
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-sentinel-'));
  const nodes: RedisProcess[] = [];
  const sentinels: RedisProcess[] = [];
  const stop = async () => {
    await Promise.all([...sentinels, ...nodes].map((p) => p.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const masterPort = await freePort();
    const master = new RedisProcess(masterPort, dataNodeArgs(masterPort, dir), 'master');
    nodes.push(master);
    await master.start();
    for (let i = 0; i < replicas; i++) {
      const port = await freePort();
      const replica = new RedisProcess(port, dataNodeArgs(port, dir, ['--replicaof', '127.0.0.1', String(masterPort)]), `replica-${i + 1}`);
      nodes.push(replica);
      await replica.start();
    }
    await until('the replicas to sync', async () => {
      for (const r of nodes.slice(1)) if ((await r.info('replication')).master_link_status !== 'up') return false;
      return true;
    });
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${port}.conf`);
      // Sentinel rewrites its config file (state, known sentinels): one writable file each
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} ${quorum}`,
          `sentinel down-after-milliseconds ${masterName} 1000`,
          `sentinel failover-timeout ${masterName} 3000`,
          `sentinel parallel-syncs ${masterName} 1`,
          '',
        ].join('\n'),
      );
      const sentinel = new RedisProcess(port, [conf, '--sentinel'], `sentinel-${i + 1}`);
      sentinels.push(sentinel);
      await sentinel.start();
    }
    await until(
      'every Sentinel to know the replicas and the other Sentinels',
      async () => {
        for (const s of sentinels) {
          const known = (await s.command('SENTINEL', 'SENTINELS', masterName)) as unknown[];
          const replicasSeen = (await s.command('SENTINEL', 'REPLICAS', masterName)) as unknown[][];
          if (known.length !== count - 1 || replicasSeen.length !== replicas) return false;
        }
        return true;
      },
      30_000,
      100,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  const masterPort = async () => {
    for (const s of sentinels) {
      if (!s.alive) continue;
      try {
        const [, port] = (await s.command('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)) as [string, string];
        return Number(port);
      } catch {
        // next Sentinel
      }
    }
    throw new Error('no Sentinel answered');
  };
  return {
    masterName,
    nodes,
    sentinels,
    sentinelAddresses: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
    masterPort,
    master: async () => {
      const port = await masterPort();
      return nodes.find((n) => n.port === port)!;
    },
    stop,
  };
}

// ---- Cluster ---------------------------------------------------------------------------------------

export interface ClusterTopology {
  readonly nodes: RedisProcess[];
  /** `{ host, port }` of every node, for ioredis Cluster startup nodes. */
  readonly startupNodes: { host: string; port: number }[];
  /** Per node: id, port, role and (masters) slot ranges, from CLUSTER NODES of a live node. */
  topology(): Promise<ClusterNodeInfo[]>;
  /** The node serving `slot` as master now. */
  masterOf(slot: number): Promise<RedisProcess>;
  stop(): Promise<void>;
}

export interface ClusterNodeInfo {
  id: string;
  port: number;
  master: boolean;
  failed: boolean;
  /** The master's id, for a replica. */
  masterId: string | undefined;
  slots: [number, number][];
}

/**
 * `masters` masters and `replicasPerMaster` replicas each, joined with `redis-cli --cluster create
 * … --cluster-yes`; cluster-node-timeout 1000 ms, so a killed master's replica takes over within a
 * few seconds. Resolves once every node sees the cluster ok and every replica is in sync.
 */
export async function startCluster(options: { masters?: number; replicasPerMaster?: number } = {}): Promise<ClusterTopology> {
  const masters = options.masters ?? 3;
  const perMaster = options.replicasPerMaster ?? 0;
  const dir = mkdtempSync(join(tmpdir(), 'rollgate-cluster-'));
  const nodes: RedisProcess[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((p) => p.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  const live = () => nodes.find((n) => n.alive)!;
  const topology = async (): Promise<ClusterNodeInfo[]> => {
    const text = String(await live().command('CLUSTER', 'NODES'));
    return text
      .trim()
      .split('\n')
      .map((line) => {
        const [id, address, flags, masterId, , , , , ...slots] = line.split(' ');
        const port = Number(/:(\d+)@/.exec(address!)![1]);
        const ranges = slots
          .filter((s) => !s.startsWith('['))
          .map((s) => {
            const [a, b] = s.split('-');
            return [Number(a), Number(b ?? a)] as [number, number];
          });
        return { id: id!, port, master: flags!.includes('master'), failed: flags!.includes('fail'), masterId: masterId === '-' ? undefined : masterId, slots: ranges };
      });
  };
  try {
    for (let i = 0; i < masters * (1 + perMaster); i++) {
      const port = await freePort();
      // the cluster bus port is set explicitly: port + 10000 may be taken, or beyond 65535
      const busPort = await freePort();
      const node = new RedisProcess(
        port,
        dataNodeArgs(port, dir, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '1000', '--cluster-port', String(busPort)]),
        `node-${i + 1}`,
      );
      nodes.push(node);
      await node.start();
    }
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(perMaster), '--cluster-yes'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed (${create.status}): ${create.stdout}\n${create.stderr}`);
    await until(
      'the cluster to be ok on every node, with every replica in sync',
      async () => {
        for (const n of nodes) {
          if ((await n.info('cluster')).cluster_enabled !== '1') return false;
          const state = String(await n.command('CLUSTER', 'INFO'));
          if (!state.includes('cluster_state:ok')) return false;
          const repl = await n.info('replication');
          if (repl.role === 'slave' && repl.master_link_status !== 'up') return false;
        }
        const t = await topology();
        return t.filter((n) => n.master && n.slots.length > 0).length === masters && t.filter((n) => !n.master).length === masters * perMaster;
      },
      30_000,
      100,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    nodes,
    startupNodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    topology,
    masterOf: async (slot) => {
      const owner = (await topology()).find((n) => n.master && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b));
      if (!owner) throw new Error(`no master serves slot ${slot}`);
      return nodes.find((n) => n.port === owner.port)!;
    },
    stop,
  };
}

/**
 * Initializes a provider as the OpenFeature SDK would see it: READY now, or READY later. A loaded
 * machine can take longer than a command timeout to reach a Cluster or a Sentinel's master; the
 * provider then fails its first load (the SDK reports ERROR) and keeps trying until it announces
 * READY. Waits for that, at most `withinMs`.
 */
export async function initialized(provider: RollgateProvider, withinMs = 30_000): Promise<void> {
  try {
    await provider.initialize();
  } catch (e) {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(e), withinMs);
      provider.events.addHandler(ProviderEvents.Ready, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
