import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { MemoryFlagStore } from '@rollgate/redis';
import type { CliDependencies } from '../../src/context';

// Runs the real, built `rollgate` bin as a child process (test helper; not exported).

export const REPO_ROOT = join(__dirname, '..', '..', '..', '..');
/** The command npm installs (bin/rollgate.js, which runs dist/bin.js). */
export const BIN = join(REPO_ROOT, 'packages', 'cli', 'bin', 'rollgate.js');

/** Builds packages/cli (and what it references) into dist/, as `npm run build` does. */
export function buildCli(): void {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-b', 'packages/cli'], { cwd: REPO_ROOT, stdio: 'pipe' });
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Environment for child processes: no REDIS_URL/ROLLGATE_* leaking in from the developer's shell. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ['REDIS_URL', 'ROLLGATE_ENV', 'ROLLGATE_ACTOR', 'ROLLGATE_DEBUG']) delete env[key];
  return { ...env, ...extra };
}

export function runBin(args: readonly string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<CliRun> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { env: childEnv(options.env), timeout: 20_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr), ms: Date.now() - started });
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
    else child.stdin!.end();
  });
}

/** A long-running bin (`watch`) whose output can be awaited line by line. */
export interface RunningCli {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when stdout or stderr (as named) contains `text`; rejects if the process exits first. */
  waitFor(stream: 'stdout' | 'stderr', text: string | RegExp): Promise<void>;
  /** Sends a signal and resolves to the exit code (or the signal name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export function spawnBin(args: readonly string[]): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  const listeners = new Set<() => void>();
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
    for (const l of [...listeners]) l();
  });
  for (const name of ['stdout', 'stderr'] as const) {
    child[name].setEncoding('utf8');
    child[name].on('data', (chunk: string) => {
      out[name] += chunk;
      for (const l of [...listeners]) l();
    });
  }
  return {
    child,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    waitFor: (stream, text) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          const seen = out[stream];
          if (typeof text === 'string' ? seen.includes(text) : text.test(seen)) {
            listeners.delete(check);
            resolve();
          } else if (hasExited) {
            listeners.delete(check);
            reject(new Error(`rollgate ${args.join(' ')} exited before printing ${String(text)} on ${stream}.\nstdout: ${out.stdout}\nstderr: ${out.stderr}`));
          }
        };
        listeners.add(check);
        check();
      }),
    stop: async (signal = 'SIGINT') => {
      if (!hasExited) child.kill(signal);
      return exited;
    },
  };
}

/** CliDependencies for running the program in-process: output captured, stores counted, no files. */
export function fakeDeps(): CliDependencies & { out: string; err: string; opened: number } {
  const deps = {
    out: '',
    err: '',
    opened: 0,
    io: { stdout: (s: string) => void (deps.out += s), stderr: (s: string) => void (deps.err += s) },
    openStore: () => {
      deps.opened++;
      return new MemoryFlagStore();
    },
    waitForStop: () => ({ promise: Promise.resolve(), dispose: () => undefined }),
    readFile: async (path: string) => {
      throw new Error(`unexpected read of ${path}`);
    },
    writeFile: async () => undefined,
  };
  return deps;
}
