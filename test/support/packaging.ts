import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

// Shared by the tests that build, pack and install Rollgate like a user would: the packaging
// check (test/packaging.spec.ts), the Nest 12 ESM smoke test, and the browser end-to-end tests.
// Child processes get a clean npm environment; builds run one at a time across jest workers.

export const ROOT = resolve(__dirname, '../..');

/** The environment for child npm/node processes, without what `npm run`/`npx` set for this repo. */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const keep = /^npm_config_(registry|cache|userconfig|globalconfig|proxy|https_proxy|noproxy|strict_ssl|cafile)$/i;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) || keep.test(k)) env[k] = v;
  env.npm_config_update_notifier = 'false';
  env.npm_config_fund = 'false';
  env.npm_config_audit = 'false';
  return { ...env, ...extra };
}

/** Runs a command to completion; rejects with the tail of its output when it fails or times out. */
export function run(cmd: string, args: string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv = childEnv()): Promise<string> {
  return new Promise((done, fail) => {
    execFile(cmd, args, { cwd, env, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const tail = `${stdout}\n${stderr}`.trim().split('\n').slice(-40).join('\n');
        fail(new Error(`\`${cmd} ${args.join(' ')}\` failed in ${cwd} (${err.killed ? `killed after ${timeoutMs} ms` : `exit ${String(err.code)}`}):\n${tail}`));
      } else done(stdout);
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` while holding a lock shared by every jest worker of this checkout, so that two
 * suites never run `tsc -b`, `npm pack` or `vite build` over the same files at once (after
 * `npm run build` they are no-ops, but a stale tree would be written twice concurrently).
 * A lock whose holder died is taken over.
 */
export async function withBuildLock<T>(fn: () => Promise<T>, timeoutMs = 240_000): Promise<T> {
  const dir = join(tmpdir(), `rollgate-build-${createHash('sha1').update(ROOT).digest('hex').slice(0, 10)}.lock`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(dir);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = Number(await readFile(join(dir, 'pid'), 'utf8').catch(() => '0'));
    const age = Date.now() - ((await stat(dir).catch(() => undefined))?.mtimeMs ?? Date.now());
    if ((holder > 0 && !alive(holder)) || (holder === 0 && age > 30_000)) {
      await rm(dir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for the build lock ${dir} (held by pid ${holder}); remove it if no test run is going on`);
    await new Promise((r) => setTimeout(r, 100)); // polls another process's lock: there is no event to await
  }
  await writeFile(join(dir, 'pid'), String(process.pid));
  try {
    return await fn();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

/** `tsc -b` of these projects (paths relative to the repo root), under the build lock. */
export function buildProjects(projects: string[]): Promise<void> {
  return withBuildLock(async () => {
    await run(process.execPath, [TSC, '-b', ...projects], ROOT, 180_000);
  });
}

export interface PackedPackage {
  /** e.g. '@rollgate/core' */
  name: string;
  version: string;
  /** Absolute path of the tarball. */
  tarball: string;
  files: string[];
  /** The @rollgate packages (short names) to install together with it, itself last. */
  needs: string[];
}

/**
 * Packs these workspace packages (`core`, `redis`, …; all of them when empty) into
 * `destination` with `npm run pack`'s script (scripts/pack.mjs: `npm pack`, whose `prepack`
 * builds each package), under the build lock.
 */
export async function packPackages(names: string[], destination: string): Promise<PackedPackage[]> {
  await mkdir(destination, { recursive: true });
  return withBuildLock(async () => {
    const out = await run(process.execPath, [join(ROOT, 'scripts/pack.mjs'), '--json', '--out', destination, ...names], ROOT, 240_000);
    return JSON.parse(out) as PackedPackage[];
  });
}

/**
 * package.json dependencies (`file:` the tarballs, relative to the project) and the overrides
 * that make the packages' dependencies on each other use these tarballs, never the registry.
 */
export function tarballDependencies(packed: PackedPackage[], projectDir: string): { dependencies: Record<string, string>; overrides: Record<string, string> } {
  const dependencies = Object.fromEntries(packed.map((p) => [p.name, `file:${relativeTo(projectDir, p.tarball)}`]));
  return { dependencies, overrides: Object.fromEntries(packed.map((p) => [p.name, `$${p.name}`])) };
}

function relativeTo(from: string, to: string): string {
  const rel = relative(from, to);
  return rel.startsWith('.') ? rel : `./${rel}`;
}

/** Fails (never skips) when the registry is unreachable: these tests install from it. */
export async function requireRegistry(cwd: string, why: string): Promise<void> {
  await run('npm', ['ping', '--fetch-retries=0', '--fetch-timeout=10000'], cwd, 20_000).catch((e: Error) => {
    throw new Error(`The npm registry is unreachable; ${why} and does not skip.\n${e.message}`);
  });
}
