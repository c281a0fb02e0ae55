import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Throwaway redis-server processes for integration tests: one per suite, on a free port, no
// persistence. Tests kill and restart only these processes, never a shared server.

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** SIGKILL the server (a crash). */
  kill(): Promise<void>;
  /**
   * Start it again on the same port: empty (no persistence), or from a dump taken by `dump()` —
   * what a restart from an older RDB, or a failover to a lagging replica, looks like to clients.
   */
  start(options?: { fromDump?: string }): Promise<void>;
  /** SAVE, and copy the RDB file aside: returns the copy's path (removed by stop()). */
  dump(): Promise<string>;
  /** SIGSTOP: the server hangs with its TCP connections open. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export async function startRedis(port?: number): Promise<TestRedis> {
  const p = port ?? (await freePort());
  let proc: ChildProcess | undefined;
  // its own directory: dumps are written only by dump() (SAVE), never automatically
  const dir = mkdtempSync(join(tmpdir(), `rollgate-redis-${p}-`));
  let dumps = 0;

  const start = async (options: { fromDump?: string } = {}) => {
    rmSync(join(dir, 'dump.rdb'), { force: true });
    if (options.fromDump) copyFileSync(options.fromDump, join(dir, 'dump.rdb'));
    const child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--dbfilename', 'dump.rdb'], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    proc = child;
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const onData = (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('Ready to accept connections')) {
          child.stdout!.off('data', onData);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code) => reject(new Error(`redis-server on port ${p} exited (${code}): ${out}`)));
    });
    child.stdout!.resume();
    child.stderr!.resume();
  };

  const kill = async () => {
    const child = proc;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    running.delete(child);
    proc = undefined;
  };

  await start();
  const signal = (sig: NodeJS.Signals) => {
    if (!proc) throw new Error('redis-server is not running');
    proc.kill(sig);
  };
  const stop = async () => {
    if (proc && proc.signalCode === null && proc.exitCode === null) proc.kill('SIGCONT'); // a paused server must wake to die
    await kill();
    rmSync(dir, { recursive: true, force: true });
  };
  const dump = async () => {
    // a short-lived connection of its own: the caller's clients may be paused or watched
    const { Redis } = await import('ioredis');
    const client = new Redis({ port: p, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await client.connect();
      await client.save();
    } finally {
      client.disconnect();
    }
    const copy = join(dir, `dump-${++dumps}.rdb`);
    copyFileSync(join(dir, 'dump.rdb'), copy);
    return copy;
  };
  return { port: p, url: `redis://127.0.0.1:${p}`, kill, start, stop, dump, pause: () => signal('SIGSTOP'), resume: () => signal('SIGCONT') };
}
