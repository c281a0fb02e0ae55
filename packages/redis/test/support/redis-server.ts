import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { once } from 'node:events';

// Throwaway redis-server processes for integration tests: one per suite, on a free port, no
// persistence. Tests kill and restart only these processes, never a shared server.

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** SIGKILL the server (a crash). */
  kill(): Promise<void>;
  /** Start it again on the same port (empty: no persistence). */
  start(): Promise<void>;
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

  const start = async () => {
    const child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  };
  return { port: p, url: `redis://127.0.0.1:${p}`, kill, start, stop, pause: () => signal('SIGSTOP'), resume: () => signal('SIGCONT') };
}
