import { RedisFlagStore } from '@rollgate/redis';
import { freePort } from '../../redis/test/support/redis-server';
import { startCluster, startSentinelTopology, type ClusterTopology, type SentinelTopology } from '../../redis/test/support/topology';
import { buildCli, runBin, type CliRun } from './support/cli';

// The real `rollgate` bin against a Sentinel-managed master and a Cluster, named by URL
// (redis+sentinel://, redis+cluster://), with --min-replicas; small topologies of throwaway
// processes on loopback.

jest.setTimeout(60_000);

let sentinel: SentinelTopology;
let cluster: ClusterTopology;
const stores: RedisFlagStore[] = [];

beforeAll(async () => {
  buildCli();
  [sentinel, cluster] = await Promise.all([startSentinelTopology({ replicas: 1, sentinels: 1 }), startCluster({ masters: 3 })]);
}, 120_000);
afterAll(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await Promise.all([sentinel?.stop(), cluster?.stop()]);
});

const killable = { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' };

function json<T = Record<string, unknown>>(run: CliRun): T {
  if (run.code !== 0) throw new Error(`rollgate exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

async function seed(redis: string, env: string): Promise<RedisFlagStore> {
  const s = new RedisFlagStore({ redis, env, pollIntervalMs: 60_000 });
  stores.push(s);
  await s.putFlag('fast-payment', killable, { actor: 'seed' });
  return s;
}

it('Sentinel: lists, and disables with --min-replicas 1 (acknowledged once the replica has it)', async () => {
  const url = `redis+sentinel://${sentinel.sentinelAddresses.map((s) => `${s.host}:${s.port}`).join(',')}/${sentinel.masterName}`;
  const s = await seed(url, 'cli-sentinel');
  expect(json<{ version: number; flags: { key: string }[] }>(await runBin(['--redis', url, '--env', 'cli-sentinel', 'flags', 'list', '--json']))).toMatchObject({ version: 1, flags: [{ key: 'fast-payment' }] });
  const killed = await runBin(['--env', 'cli-sentinel', '--actor', 'ops', 'disable', 'fast-payment', '--min-replicas', '1', '--json'], { env: { REDIS_URL: url } });
  expect(json(killed)).toMatchObject({ version: 2 });
  expect((await s.load()).flags['fast-payment']).toMatchObject({ state: 'DISABLED' });
  // the replica has it: read there directly
  const replica = sentinel.nodes.find((n) => n.port !== (sentinel.nodes[0]!.port))!;
  expect(await replica.command('GET', 'rollgate:{cli-sentinel}:version')).toBe('2');
});

it('Cluster: lists and disables by a redis+cluster:// URL (one startup node is enough)', async () => {
  const url = `redis+cluster://127.0.0.1:${cluster.nodes[1]!.port}`;
  const s = await seed(url, 'cli-cluster');
  expect(json(await runBin(['--redis', url, '--env', 'cli-cluster', 'flags', 'list', '--json']))).toMatchObject({ version: 1 });
  expect(json(await runBin(['--redis', url, '--env', 'cli-cluster', '--actor', 'ops', 'disable', 'fast-payment', '--json']))).toMatchObject({ version: 2 });
  expect((await s.load()).flags['fast-payment']).toMatchObject({ state: 'DISABLED' });
});

it('a malformed topology URL is a usage error (exit 2); nothing reachable is exit 6, promptly', async () => {
  const bad = await runBin(['--redis', 'redis+sentinel://127.0.0.1:26379', 'flags', 'list']);
  expect(bad).toMatchObject({ code: 2, stdout: '' });
  expect(bad.stderr).toContain('Redis URL: no master name in the path');
  const port = await freePort();
  const runs = await Promise.all([
    runBin(['--redis', `redis+sentinel://127.0.0.1:${port}/rollgate`, 'flags', 'list']),
    runBin(['--redis', `redis+cluster://127.0.0.1:${port}`, 'flags', 'list']),
  ]);
  // ended by itself with exit 6 (a hung run is killed by the harness after 20 s: code -1); no
  // wall-clock limit, which a loaded machine stretches
  for (const run of runs) expect(run).toMatchObject({ code: 6, stdout: '' });
  expect(await runBin(['--min-replicas', 'two', 'flags', 'list'])).toMatchObject({ code: 2 });
});
