import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import jwt from 'jsonwebtoken';
import { freePort, startRedis, type TestRedis } from '../packages/redis/test/support/redis-server';
import { childEnv, packPackages, requireRegistry, ROOT, run } from './support/packaging';

// The quick starts of README.md and docs/*.md, pasted and run as a user would, so the docs
// cannot rot. A quick start is the code blocks marked with an HTML comment just above them:
//
//   <!-- quickstart: <name>[,<name>…] <role> -->
//
// where <role> is `install` (shell lines, run as written in the app directory), `run` (shell
// lines that start the app), `try` (shell lines a user types next), or a file path the block is
// saved as (`tsconfig.json`, `src/main.ts`, `flags.json`). Every "Quick start" heading must mark
// its blocks, so a new quick start cannot escape this test.
//
// Layout: a temp dir with `rollgate/packs` (the tarballs of `npm run pack`'s script, so the
// install lines' `PACKS=../rollgate/packs` hold as written) and one app directory per quick
// start beside it. npm installs with --prefer-offline (the third-party packages come from npm's
// cache when it has them, from the registry otherwise); every @rollgate package from the
// tarballs. A throwaway redis-server holds the flags; tokens are signed with a key pair made here
// (public.pem is the "identity provider's public key" of the run lines).
//
// Server quick starts (nest, express): install, push the documented flag set with the installed
// CLI (before the app starts, so its first request sees it), run, run the `try` block (its curl
// with an admin's token must print {"paid":true}), then check the documented answers for each
// kind of caller — and that OFREP tells each caller's browser the same as the guard; then start
// the app against a Redis that is down: it boots and the guarded route answers 503.
// The React quick start: compiled by the app's TypeScript and bundled by Vite in a React host
// (the shape of Vite's react-ts template); running it needs a browser and a server, which
// packages/web/test/e2e.spec.ts covers.

jest.setTimeout(240_000);

interface Block {
  names: string[];
  role: string;
  lang: string;
  code: string;
  /** file:line of the marker, for messages */
  at: string;
}

const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

async function extract(): Promise<{ blocks: Block[]; unmarked: string[] }> {
  const blocks: Block[] = [];
  const unmarked: string[] = [];
  for (const file of DOCS) {
    const text = await readFile(join(ROOT, file), 'utf8');
    const lineOf = (index: number) => text.slice(0, index).split('\n').length;
    const marker = /<!--\s*quickstart:\s*([\w,-]+)\s+(\S+)\s*-->\s*\n```(\w*)\n([\s\S]*?)\n```/g;
    for (const m of text.matchAll(marker)) blocks.push({ names: m[1]!.split(','), role: m[2]!, lang: m[3]!, code: `${m[4]!}\n`, at: `${file}:${lineOf(m.index!)}` });
    // a "Quick start" heading whose section (up to the next heading of any level) marks no block
    const headings = [...text.matchAll(/^#{1,6} .*$/gm)];
    headings.forEach((h, i) => {
      if (!/quick ?start/i.test(h[0])) return;
      const section = text.slice(h.index!, headings[i + 1]?.index ?? text.length);
      if (!/<!--\s*quickstart:/.test(section)) unmarked.push(`${file}:${lineOf(h.index!)} ${h[0]}`);
    });
  }
  return { blocks, unmarked };
}

function quickstart(blocks: Block[], name: string) {
  const mine = blocks.filter((b) => b.names.includes(name));
  const one = (role: string) => {
    const found = mine.filter((b) => b.role === role);
    if (found.length !== 1) throw new Error(`quick start "${name}": expected one <!-- quickstart: ${name} ${role} --> block, found ${found.length}`);
    return found[0]!;
  };
  const files = mine.filter((b) => !['install', 'run', 'try'].includes(b.role));
  return { install: one('install'), run: mine.some((b) => b.role === 'run') ? one('run') : undefined, try: mine.some((b) => b.role === 'try') ? one('try') : undefined, files, code: files.filter((f) => /\.tsx?$/.test(f.role)).map((f) => f.code).join('\n') };
}

/** Shell lines, as a user pastes them: bash (the install lines use brace expansion), stop at the first failure. */
function bash(block: Block, cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 180_000): Promise<string> {
  return run('bash', ['-e', '-o', 'pipefail', '-c', block.code], cwd, timeoutMs, env).catch((e: Error) => {
    throw new Error(`${block.at}: the ${block.role} block failed:\n${e.message}`);
  });
}

/** An app started by a `run` block, in its own process group (stopped by its id). */
interface App {
  url: string;
  output(): { stdout: string; stderr: string };
  stop(): Promise<void>;
}

async function start(block: Block, cwd: string, env: NodeJS.ProcessEnv): Promise<App> {
  const port = await freePort();
  const child: ChildProcess = spawn('bash', ['-e', '-c', block.code], { cwd, env: { ...env, PORT: String(port) }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(-child.pid!, 'SIGTERM'); // the group: bash and the node it started
      await exited;
    }
  };
  // the app says it listens; a bound on a hang, not a timing assertion (tsc runs first)
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${block.at}: no "Listening on" within 120 s.\nstdout:\n${stdout}\nstderr:\n${stderr}`)), 120_000);
    const check = () => {
      if (/Listening on/.test(stdout)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${block.at}: the app exited before listening (${child.exitCode ?? child.signalCode}).\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    });
  }).catch(async (e: Error) => {
    await stop();
    throw e;
  });
  return { url: `http://127.0.0.1:${port}`, output: () => ({ stdout, stderr }), stop };
}

let root: string;
let redis: TestRedis | undefined;
let blocks: Block[];
const apps: App[] = [];
const keys = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
const strangerKey = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;

/** npm as a user runs it, but from the cache when it can (the registry otherwise). */
const env = (extra: NodeJS.ProcessEnv = {}) => childEnv({ npm_config_prefer_offline: 'true', npm_config_loglevel: 'error', ...extra });

/** Each quick start's app directory, installed: the three install at once (npm waits on the network and disk, not the CPU). */
const prepared = new Map<string, Promise<{ dir: string; installMs: number }>>();

beforeAll(async () => {
  const found = await extract();
  blocks = found.blocks;
  expect(found.unmarked).toEqual([]); // every Quick start heading marks its blocks
  root = await mkdtemp(join(tmpdir(), 'rollgate-quickstarts-'));
  await requireRegistry(root, 'the quick starts install their third-party packages as users do');
  await packPackages([], join(root, 'rollgate', 'packs'));
  for (const name of ['nest', 'express', 'react']) {
    const ready = prepare(name);
    ready.catch(() => {}); // reported by the test that awaits it
    prepared.set(name, ready);
  }
  redis = await startRedis();
});

afterAll(async () => {
  for (const app of apps) await app.stop();
  await redis?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

it('every marked block belongs to a quick start this test runs', () => {
  const known = ['nest', 'express', 'react'];
  expect(blocks.flatMap((b) => b.names.filter((n) => !known.includes(n)).map((n) => `${b.at} ${n}`))).toEqual([]);
  for (const name of known) expect({ name, marked: blocks.some((b) => b.names.includes(name)) }).toEqual({ name, marked: true });
});

async function writeFiles(dir: string, files: Block[]) {
  for (const f of files) {
    await mkdir(dirname(join(dir, f.role)), { recursive: true });
    await writeFile(join(dir, f.role), f.code);
  }
}

/** The value of `key: '…'` in the quick start's code (the issuer and audience it checks). */
function literal(code: string, key: string): string | undefined {
  return new RegExp(`\\b${key}:\\s*'([^']+)'`).exec(code)?.[1];
}

/** Installs a quick start as its install block says, in its own directory, and writes its files. */
async function prepare(name: string): Promise<{ dir: string; installMs: number }> {
  const qs = quickstart(blocks, name);
  const dir = join(root, name);
  await mkdir(dir);
  const startedAt = Date.now();
  if (name === 'react') {
    // the React app it goes into: Vite's react-ts template, with the versions this repository uses
    const version = async (pkg: string) => (JSON.parse(await readFile(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
    const host = {
      name: 'react-host',
      private: true,
      type: 'module',
      dependencies: { react: `^${await version('react')}`, 'react-dom': `^${await version('react-dom')}` },
      devDependencies: { '@types/react': `^${await version('@types/react')}`, '@types/react-dom': `^${await version('@types/react-dom')}`, typescript: 'latest' },
    };
    await writeFile(join(dir, 'package.json'), JSON.stringify(host, null, 2));
    await writeFile(join(dir, 'index.html'), '<!doctype html><html><body><div id="root"></div><script type="module" src="/src/main.tsx"></script></body></html>\n');
    await writeFile(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', lib: ['ES2022', 'DOM', 'DOM.Iterable'], module: 'ESNext', moduleResolution: 'bundler', jsx: 'react-jsx', strict: true, noEmit: true, skipLibCheck: true }, include: ['src'] }, null, 2),
    );
    // Vite from this repository's node_modules; it compiles the JSX as tsconfig.json says (react-jsx)
    await writeFile(join(dir, 'vite.config.mjs'), `export default { logLevel: 'warn', build: { target: 'es2022' } };\n`);
    await run('npm', ['install'], dir, 180_000, env());
  }
  await bash(qs.install, dir, env());
  await writeFiles(dir, qs.files);
  return { dir, installMs: Date.now() - startedAt };
}

describe.each(['nest', 'express'])('the %s quick start', (name) => {
  it('installs from the tarballs, compiles, runs, and answers as documented; OFREP agrees with the guard; Redis down → boots, 503', async () => {
    const qs = quickstart(blocks, name);
    const { dir, installMs } = await prepared.get(name)!;
    const installed = Date.now();
    const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { type?: string; dependencies: Record<string, string> };
    expect(manifest.type).toBe('module'); // "TypeScript ES modules", as the quick start says
    for (const [dep, spec] of Object.entries(manifest.dependencies).filter(([d]) => d.startsWith('@rollgate/'))) expect({ dep, spec }).toEqual({ dep, spec: expect.stringMatching(/^file:\.\.\/rollgate\/packs\/rollgate-[a-z]+-[\d.]+\.tgz$/) });
    await writeFile(join(dir, 'public.pem'), keys.publicKey);
    const appEnv = env({ REDIS_URL: redis!.url });

    // the flag set the quick start points at, pushed with the CLI its install line installed
    expect(qs.files.map((f) => f.role)).toContain('flags.json');
    const pushLine = qs.try!.code.split('\n').find((l) => /\brollgate\b.*flags push/.test(l));
    expect(pushLine).toBeDefined();
    await run('bash', ['-e', '-c', pushLine!], dir, 60_000, appEnv);

    const app = await start(qs.run!, dir, appEnv);
    apps.push(app);
    const started = Date.now();

    const issuer = literal(qs.code, 'issuer');
    const audience = literal(qs.code, 'audience');
    const tenantClaim = /claims:\s*{[^}]*\btenant:\s*'([^']+)'/.exec(qs.code)?.[1] ?? 'tenant'; // where the quick start reads the tenant from
    const token = (claims: object, key = keys.privateKey) => jwt.sign(claims, key, { algorithm: 'RS256', expiresIn: 300, ...(issuer ? { issuer } : {}), ...(audience ? { audience } : {}) });
    const callers = {
      admin: token({ sub: 'ada', roles: ['admin'] }),
      vipAgent: token({ sub: 'bo', roles: ['agent'], [tenantClaim]: 'atlas-travel' }),
      customer: token({ sub: 'carol', roles: ['customer'] }),
      forged: token({ sub: 'mallory', roles: ['admin'] }, strangerKey),
    };

    // the `try` block as written, with an admin's token
    const tried = await bash(qs.try!, dir, { ...appEnv, PORT: new URL(app.url).port, TOKEN: callers.admin }, 60_000);
    expect(tried).toContain('{"paid":true}');

    const pay = async (bearer?: string) => {
      const res = await fetch(`${app.url}/payments/fast`, { method: 'POST', headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
      return [res.status, await res.json()] as const;
    };
    const browserSees = async (bearer: string) => {
      const res = await fetch(`${app.url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: '{}' });
      const body = (await res.json()) as { flags?: { key: string; value: unknown }[] };
      return [res.status, body.flags?.find((f) => f.key === 'fast-payment')?.value] as const;
    };
    const ok = name === 'nest' ? 201 : 200; // Nest answers a POST with 201 Created
    expect(await pay(callers.admin)).toEqual([ok, { paid: true }]);
    expect(await pay(callers.vipAgent)).toEqual([ok, { paid: true }]);
    expect(await pay(callers.customer)).toEqual([403, { error: 'feature_not_enabled' }]);
    expect(await pay()).toEqual([401, { error: 'unauthorized' }]);
    expect(await pay(callers.forged)).toEqual([401, { error: 'unauthorized' }]);
    // the browser is told what the API does, for the same token
    expect(await browserSees(callers.admin)).toEqual([200, true]);
    expect(await browserSees(callers.vipAgent)).toEqual([200, true]);
    expect(await browserSees(callers.customer)).toEqual([200, false]);
    await app.stop();

    // Redis down at start-up: the app boots anyway, says why, and the guard answers 503
    const down = await start(qs.run!, dir, env({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` }));
    apps.push(down);
    const [status] = await (async () => {
      const res = await fetch(`${down.url}/payments/fast`, { method: 'POST', headers: { authorization: `Bearer ${callers.admin}` } });
      return [res.status, await res.text()] as const;
    })();
    expect(status).toBe(503);
    const { stdout, stderr } = down.output();
    expect(`${stdout}\n${stderr}`).toMatch(/redis|flag store/i); // the start-up error is logged, not swallowed
    await down.stop();
    console.log(`${name} quick start: installed in ${installMs} ms, compiled and started in ${started - installed} ms, checked in ${Date.now() - started} ms`);
  });
});

it('the React quick start installs from the tarball, type-checks and bundles', async () => {
  const qs = quickstart(blocks, 'react');
  const { dir } = await prepared.get('react')!;
  await run('npx', ['tsc', '-p', '.'], dir, 120_000, env()).catch((e: Error) => {
    throw new Error(`${qs.files.map((f) => f.at).join(', ')}: the React quick start does not type-check:\n${e.message}`);
  });
  await run(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build'], dir, 120_000, env());
  const assets = await readdir(join(dir, 'dist', 'assets'));
  const bundle = (await Promise.all(assets.filter((a) => a.endsWith('.js')).map((a) => readFile(join(dir, 'dist', 'assets', a), 'utf8')))).join('\n');
  expect(bundle).toContain('/ofrep/v1/evaluate/flags'); // @rollgate/web's provider is in it (its ES module build)
});
