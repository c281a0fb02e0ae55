import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ProviderEvents } from '@openfeature/server-sdk';
import { flagStoreKeys, RedisFlagStore, RollgateProvider } from '@rollgate/redis';
import { KILLED_PLACEHOLDER } from '../src/commands/kill-switch';
import { freePort, startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { SCRIPT_CALL, startProxy } from '../../redis/test/support/tcp-proxy';
import { buildCli, REPO_ROOT, runBin, spawnBin, type CliRun } from './support/cli';

// The real `rollgate` bin, run as a child process against a throwaway redis-server; one --env
// per test. Tests run several processes each, on machines that may be busy: a generous timeout.

jest.setTimeout(30_000);

const fastPayment = {
  state: 'ENABLED',
  variants: { on: true, off: false },
  defaultVariant: 'off',
  targeting: { if: [{ '==': [{ var: 'role' }, 'admin'] }, 'on', { $ref: 'vip-agencies' }, 'on', { fractional: [['on', 20], ['off', 80]] }] },
};
const vipAgencies = { in: [{ var: 'tenant' }, ['acme', 'globex']] };
const checkoutTheme = { state: 'ENABLED', variants: { classic: 'classic', bold: 'bold' }, defaultVariant: 'classic' };
const flagSet = { $schema: 'https://flagd.dev/schema/v0/flags.json', $evaluators: { 'vip-agencies': vipAgencies }, flags: { 'fast-payment': fastPayment, 'checkout-theme': checkoutTheme } };

let redis: TestRedis;
let admin: Redis;
let dir: string;
let envCounter = 0;
const stores: RedisFlagStore[] = [];

beforeAll(async () => {
  buildCli();
  redis = await startRedis();
  admin = new Redis(redis.url);
  dir = mkdtempSync(join(tmpdir(), 'rollgate-cli-'));
}, 120_000);
afterAll(async () => {
  admin.disconnect();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

function newEnv(): string {
  return `cli-${process.pid}-${++envCounter}`;
}

/** `rollgate --redis … --env <env> --actor tester <args>` */
function cli(env: string, ...args: string[]): Promise<CliRun> {
  return runBin(['--redis', redis.url, '--env', env, '--actor', 'tester', ...args]);
}

/** The JSON a successful run printed (fails the test, showing stderr, otherwise). */
function json<T = Record<string, unknown>>(run: CliRun): T {
  if (run.code !== 0) throw new Error(`rollgate exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

function store(env: string): RedisFlagStore {
  const s = new RedisFlagStore({ redis: redis.url, env, pollIntervalMs: 60_000 });
  stores.push(s);
  return s;
}

async function seed(env: string): Promise<RedisFlagStore> {
  const s = store(env);
  await s.apply(
    [
      { kind: 'evaluator', key: 'vip-agencies', definition: vipAgencies },
      { kind: 'flag', key: 'fast-payment', definition: fastPayment },
      { kind: 'flag', key: 'checkout-theme', definition: checkoutTheme },
    ],
    { actor: 'seed' },
  );
  return s;
}

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return path;
}

describe('help and usage (the real bin; every command is covered in program.spec.ts)', () => {
  it('documents the exit codes in --help, and has --help on subcommands', async () => {
    const [root, rollout] = await Promise.all([runBin(['--help']), runBin(['rollout', '--help'])]);
    expect(root.code).toBe(0);
    for (const line of ['0  ok', '1  unexpected error', '2  usage error', '3  validation error', '4  version conflict', '5  not found', '6  Redis unreachable']) expect(root.stdout).toContain(line);
    expect(root.stdout).toMatch(/--redis <url>[\s\S]*env: REDIS_URL/);
    expect(rollout).toMatchObject({ code: 0, stderr: '' });
    expect(rollout.stdout).toContain('Usage: rollgate rollout [options] <key> <percent>');
  });

  it('is what `npx rollgate` runs in this repository after npm install (the demo tells you to use it)', async () => {
    const linked = join(REPO_ROOT, 'node_modules', '.bin', 'rollgate');
    expect(realpathSync(linked)).toBe(realpathSync(join(REPO_ROOT, 'packages', 'cli', 'bin', 'rollgate.js'))); // the committed shim, not dist/
    const version = await new Promise<string>((resolve, reject) =>
      execFile(linked, ['--version'], { timeout: 20_000 }, (error, stdout) => (error ? reject(error) : resolve(String(stdout).trim()))),
    );
    expect(version).toBe((JSON.parse(readFileSync(join(REPO_ROOT, 'packages', 'cli', 'package.json'), 'utf8')) as { version: string }).version);
  });

  it('exits 2 on usage errors, with a message on stderr and nothing on stdout', async () => {
    const cases = [[], ['rollout', 'fast-payment', '150'], ['flags', 'push', join(dir, 'does-not-exist.json')]];
    const runs = await Promise.all(cases.map((c) => runBin(['--redis', redis.url, ...c])));
    runs.forEach((run, i) => {
      expect({ args: cases[i], code: run.code, stdout: run.stdout }).toEqual({ args: cases[i], code: 2, stdout: '' });
      expect(run.stderr).not.toBe('');
    });
    expect(runs[1]!.stderr).toContain('percent must be a whole number from 0 to 100');
    expect(runs[2]!.stderr).toContain('no such file');
  });
});

describe('flags', () => {
  it('push writes every flag and evaluator in one audited version and reports it as JSON', async () => {
    const env = newEnv();
    const run = await cli(env, 'flags', 'push', file(`${env}.json`, flagSet), '--reason', 'initial import', '--json');
    const out = json(run);
    expect(out).toEqual({
      env,
      file: expect.stringContaining(`${env}.json`),
      prune: false,
      previousVersion: 0,
      written: true,
      version: 1,
      changes: [
        { kind: 'evaluator', key: 'vip-agencies', change: 'added', before: null, after: vipAgencies },
        { kind: 'flag', key: 'checkout-theme', change: 'added', before: null, after: checkoutTheme },
        { kind: 'flag', key: 'fast-payment', change: 'added', before: null, after: fastPayment },
      ],
      onlyInStore: [],
    });
    expect(await store(env).load()).toMatchObject({ version: 1, flags: { 'fast-payment': fastPayment, 'checkout-theme': checkoutTheme }, evaluators: { 'vip-agencies': vipAgencies } });
    const audit = await store(env).audit();
    expect(audit.map((e) => [e.version, e.actor, e.action, e.reason])).toEqual([
      [1, 'tester', 'push', 'initial import'],
      [1, 'tester', 'push', 'initial import'],
      [1, 'tester', 'push', 'initial import'],
    ]);
  });

  it('refuses an invalid file with exit 3 and file:line messages, writing nothing', async () => {
    const env = newEnv();
    const s = await seed(env);
    const before = await s.load();
    const bad = file(
      `${env}-bad.json`,
      [
        '{',
        '  "flags": {',
        '    "checkout-theme": { "state": "DISABLED", "variants": { "classic": "classic" }, "defaultVariant": "classic" },',
        '    "fast-payment": {',
        '      "state": "ENABLED",',
        '      "variants": { "on": true, "off": false },',
        '      "defaultVariant": "maybe"',
        '    },',
        '    "uses-missing": { "state": "ENABLED", "variants": { "on": true }, "targeting": { "$ref": "nope" } }',
        '  }',
        '}',
      ].join('\n'),
    );
    const human = await cli(env, 'flags', 'push', bad);
    expect(human.code).toBe(3);
    expect(human.stdout).toBe('');
    expect(human.stderr).toContain(`${bad}:7: flags.fast-payment.defaultVariant: "maybe" is not one of the variants on, off`);
    expect(human.stderr).toContain(`${bad}:9: flags.uses-missing.targeting: unknown $ref "nope"`);
    expect(human.stderr).toContain('nothing was written');

    const machine = await cli(env, 'flags', 'push', bad, '--json');
    expect(machine.code).toBe(3);
    expect(JSON.parse(machine.stderr)).toEqual({
      error: {
        exitCode: 3,
        code: 'ERR_ROLLGATE_FLAG_VALIDATION',
        message: expect.stringContaining('is invalid, nothing was written'),
        issues: [
          { path: 'flags.fast-payment.defaultVariant', message: '"maybe" is not one of the variants on, off', line: 7 },
          { path: 'flags.uses-missing.targeting', message: expect.stringContaining('unknown $ref "nope"'), line: 9 },
        ],
      },
    });

    const broken = await cli(env, 'flags', 'push', file(`${env}-broken.json`, '{\n  "flags": {\n    "a": ,\n  }\n}'));
    expect(broken.code).toBe(3);
    expect(broken.stderr).toContain('-broken.json:3:10: not valid JSON: unexpected ",", expected a value');

    expect(await s.load()).toEqual(before); // nothing written: same version, same definitions
    expect(await s.audit()).toHaveLength(3);
  });

  it('push keeps store-only entries unless --prune; --dry-run and diff write nothing', async () => {
    const env = newEnv();
    const s = await seed(env);
    const next = { flags: { 'fast-payment': { ...fastPayment, state: 'DISABLED' }, 'new-flag': checkoutTheme }, $evaluators: { 'vip-agencies': vipAgencies } };
    const path = file(`${env}.json`, next);

    const diff = json(await cli(env, 'flags', 'diff', path, '--json'));
    expect(diff).toEqual({
      env,
      version: 1,
      file: path,
      prune: false,
      changes: [
        { kind: 'flag', key: 'fast-payment', change: 'changed', before: fastPayment, after: next.flags['fast-payment'] },
        { kind: 'flag', key: 'new-flag', change: 'added', before: null, after: checkoutTheme },
      ],
      onlyInStore: [{ kind: 'flag', key: 'checkout-theme' }],
    });
    const humanDiff = await cli(env, 'flags', 'diff', path, '--prune');
    expect(humanDiff.stdout.trim().split('\n')).toEqual(['~ flag fast-payment: state "ENABLED" → "DISABLED"', '+ flag new-flag', '- flag checkout-theme']);

    const dry = json(await cli(env, 'flags', 'push', path, '--prune', '--dry-run', '--json'));
    expect(dry).toMatchObject({ written: false, version: 1, previousVersion: 1 });
    expect((await s.load()).version).toBe(1);

    const kept = await cli(env, 'flags', 'push', path);
    expect(kept.code).toBe(0);
    expect(kept.stderr).toContain('in the store but not in the file, kept (use --prune to remove them): flag checkout-theme');
    expect(Object.keys((await s.load()).flags).sort()).toEqual(['checkout-theme', 'fast-payment', 'new-flag']);

    const pruned = json(await cli(env, 'flags', 'push', path, '--prune', '--json'));
    expect(pruned).toMatchObject({ written: true, previousVersion: 2, version: 3, changes: [{ kind: 'flag', key: 'checkout-theme', change: 'removed', after: null }] });
    const after = await s.load();
    expect(after.flags).toEqual(next.flags);
    expect(after.evaluators).toEqual(next.$evaluators);

    const again = json(await cli(env, 'flags', 'push', path, '--prune', '--json'));
    expect(again).toMatchObject({ written: false, version: 3, changes: [] });
  });

  it('push --expected-version refuses a stale version with exit 4, writing nothing', async () => {
    const env = newEnv();
    const s = await seed(env);
    const run = await cli(env, 'flags', 'push', file(`${env}.json`, { flags: { x: checkoutTheme } }), '--expected-version', '0');
    expect(run.code).toBe(4);
    expect(run.stderr).toContain('flag store is at version 1, not the expected 0');
    expect((await s.load()).version).toBe(1);
  });

  it('pull exports flagd JSON to stdout or a file; pushing it back changes nothing', async () => {
    const env = newEnv();
    await seed(env);
    const stdout = await cli(env, 'flags', 'pull');
    expect(stdout.code).toBe(0);
    const doc = JSON.parse(stdout.stdout) as Record<string, unknown>;
    expect(doc).toEqual({ $schema: 'https://flagd.dev/schema/v0/flags.json', $evaluators: { 'vip-agencies': vipAgencies }, flags: { 'checkout-theme': checkoutTheme, 'fast-payment': fastPayment } });
    expect(Object.keys(doc)).toEqual(['$schema', '$evaluators', 'flags']);
    expect(Object.keys(doc.flags as object)).toEqual(['checkout-theme', 'fast-payment']);

    const path = join(dir, `${env}-pulled.json`);
    const toFile = json(await cli(env, 'flags', 'pull', path, '--json'));
    expect(toFile).toEqual({ env, version: 1, file: path, flags: 2, evaluators: 1 });
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(doc);

    const back = json(await cli(env, 'flags', 'push', path, '--prune', '--json'));
    expect(back).toMatchObject({ written: false, version: 1, changes: [], onlyInStore: [] });
  });

  it('list and get: JSON shapes, human table, not found exits 5', async () => {
    const env = newEnv();
    await seed(env);
    // global options may also follow the command
    const list = json(await runBin(['flags', 'list', '--redis', redis.url, '--env', env, '--json']));
    expect(list).toEqual({
      env,
      version: 1,
      flags: [
        { key: 'checkout-theme', state: 'ENABLED', defaultVariant: 'classic', variants: ['classic', 'bold'], targeting: 'static', split: null, valid: true },
        {
          key: 'fast-payment',
          state: 'ENABLED',
          defaultVariant: 'off',
          variants: ['on', 'off'],
          targeting: 'rules',
          split: { path: 'targeting.if[4]', buckets: [['on', 20], ['off', 80]], by: null },
          valid: true,
        },
      ],
      evaluators: ['vip-agencies'],
      issues: [],
    });
    const table = await cli(env, 'flags', 'list');
    expect(table.stdout.split('\n')[0]).toMatch(/^KEY\s+STATE\s+DEFAULT\s+VARIANTS\s+TARGETING$/);
    expect(table.stdout).toMatch(/fast-payment\s+ENABLED\s+off\s+on, off\s+rules, split on 20% \/ off 80%/);

    expect(json(await cli(env, 'flags', 'get', 'fast-payment', '--json'))).toEqual({ env, version: 1, key: 'fast-payment', definition: fastPayment });
    expect(JSON.parse((await cli(env, 'flags', 'get', 'checkout-theme')).stdout)).toEqual(checkoutTheme);
    const missing = await cli(env, 'flags', 'get', 'nope', '--json');
    expect(missing.code).toBe(5);
    expect(missing.stdout).toBe('');
    expect(JSON.parse(missing.stderr)).toEqual({ error: { exitCode: 5, code: 'ERR_ROLLGATE_NOT_FOUND', message: expect.stringContaining('flag "nope" does not exist') } });
  });

  it('list on an empty environment says so and how to fill it (flags push), on stderr', async () => {
    const env = newEnv();
    const empty = await cli(env, 'flags', 'list');
    expect([empty.code, empty.stdout]).toEqual([0, '']);
    expect(empty.stderr).toBe(
      `env "${env}" at version 0: 0 flag(s), 0 evaluator(s)\n` +
        `env "${env}" is empty: nothing was ever written to it (check --env and --redis). Load a flag set with: rollgate flags push <file> --env ${env}\n`,
    );
    const asJson = await cli(env, 'flags', 'list', '--json');
    expect(JSON.parse(asJson.stdout)).toEqual({ env, version: 0, flags: [], evaluators: [], issues: [] });
  });
});

describe('kill switch', () => {
  it('disable and enable patch only the state, audited; a no-op writes nothing', async () => {
    const env = newEnv();
    const s = await seed(env);
    const off = json(await cli(env, 'disable', 'fast-payment', '--reason', 'incident 42', '--json'));
    expect(off).toEqual({ env, key: 'fast-payment', state: 'DISABLED', previousVersion: 1, changed: true, version: 2 });
    expect((await s.load()).flags['fast-payment']).toEqual({ ...fastPayment, state: 'DISABLED' });

    const again = json(await cli(env, 'disable', 'fast-payment', '--json'));
    expect(again).toEqual({ env, key: 'fast-payment', state: 'DISABLED', previousVersion: 2, changed: false, version: 2 });

    const on = await cli(env, 'enable', 'fast-payment');
    expect(on).toMatchObject({ code: 0, stdout: 'fast-payment: DISABLED → ENABLED (version 3)\n' });
    expect((await s.load()).flags['fast-payment']).toEqual(fastPayment);
    const [latest, previous] = await s.audit('fast-payment', { limit: 2 });
    expect(latest).toMatchObject({ version: 3, action: 'enable', actor: 'tester' });
    expect(previous).toMatchObject({ version: 2, action: 'disable', actor: 'tester', reason: 'incident 42' });

    // enabling needs a real definition; disabling never does (below)
    expect((await cli(env, 'enable', 'nope')).code).toBe(5);
  });

  it('disable on a missing flag writes a minimal DISABLED definition, says so, and every instance denies it', async () => {
    const env = newEnv();
    const s = await seed(env);
    const provider = new RollgateProvider({ store: { redis: redis.url, env } });
    await provider.initialize();
    try {
      const killed = new Promise<void>((resolve) => provider.events.addHandler(ProviderEvents.ConfigurationChanged, () => resolve()));
      const run = await cli(env, 'disable', 'new-checkout', '--json');
      expect(json(run)).toEqual({ env, key: 'new-checkout', state: 'DISABLED', previousVersion: 1, changed: true, created: true, version: 2 });
      expect(JSON.parse(run.stderr)).toEqual({ warning: 'flag "new-checkout" does not exist in env "' + env + '" (version 1): wrote a minimal DISABLED definition of "new-checkout"' });
      expect((await s.load()).flags['new-checkout']).toEqual(KILLED_PLACEHOLDER);
      await killed;
      expect(provider.snapshot.evaluate('new-checkout', { targetingKey: 'u1' }, { defaultValue: true, type: 'boolean' })).toMatchObject({ value: true, reason: 'DISABLED' });
      expect(provider.snapshot.evaluate('fast-payment', { targetingKey: 'u1', role: 'admin' }, { defaultValue: false, type: 'boolean' }).value).toBe(true);
    } finally {
      await provider.onClose();
    }
  });

  it('disable on a Redis that lost everything: the kill switch works, and the instances that kept their last known flags adopt the new store, as they are told', async () => {
    const own = await startRedis();
    const env = newEnv();
    const writer = new RedisFlagStore({ redis: own.url, env, pollIntervalMs: 60_000 });
    stores.push(writer);
    await writer.apply([{ kind: 'flag', key: 'fast-payment', definition: { ...fastPayment, targeting: undefined } }, { kind: 'flag', key: 'checkout-theme', definition: checkoutTheme }], { actor: 'seed' });
    const provider = new RollgateProvider({ store: { redis: own.url, env }, logger: { warn: () => undefined, error: () => undefined } });
    await provider.initialize();
    const admin = { targetingKey: 'ada', role: 'admin' };
    try {
      const emptied = new Promise<void>((resolve) => provider.events.addHandler(ProviderEvents.Ready, () => resolve()));
      await own.kill();
      await own.start(); // no persistence: empty
      await emptied;
      // an empty store keeps the last known flags serving
      expect(provider.health().version).toBe(0);
      expect(provider.snapshot.keys()).toEqual(['checkout-theme', 'fast-payment']);

      const adopted = new Promise<void>((resolve) => provider.events.addHandler(ProviderEvents.ConfigurationChanged, () => resolve()));
      const run = await runBin(['--redis', own.url, '--env', env, '--actor', 'ops', 'disable', 'fast-payment']);
      expect(run).toMatchObject({ code: 0, stdout: 'fast-payment: missing → DISABLED (version 1)\n' });
      expect(run.stderr).toContain(`warning: the store is empty in env "${env}" (version 0): wrote a minimal DISABLED definition of "fast-payment"`);
      expect(run.stderr).toContain('every other flag is missing there, so its guards deny. Push the flag set again: rollgate flags push <file>');
      await adopted;
      expect(provider.snapshot.evaluate('fast-payment', admin, { defaultValue: false, type: 'boolean' })).toMatchObject({ value: false, reason: 'DISABLED' });
      expect(provider.snapshot.evaluate('checkout-theme', admin, { defaultValue: 'x', type: 'string' })).toMatchObject({ value: 'x', errorCode: 'FLAG_NOT_FOUND' });
    } finally {
      await provider.onClose();
      await own.stop();
    }
  });

  it('a write Redis does not answer: read back and reported not applied (exit 6), or unknown with its write id (exit 7); a retry with that id applies it once', async () => {
    const env = newEnv();
    const s = await seed(env);
    const pause = new Redis(redis.url);
    try {
      await pause.call('CLIENT', 'PAUSE', '20000', 'WRITE');
      const paused = await cli(env, 'disable', 'fast-payment', '--write-id', 'incident-7');
      await pause.call('CLIENT', 'UNPAUSE');
      expect(paused.code).toBe(6);
      expect(paused.stderr).toBe('rollgate: Redis did not answer write incident-7 (Command timed out); read back afterwards: it was not applied, and Redis refuses it from now on. It is safe to retry.\n');
      expect((await s.load()).flags['fast-payment']).toEqual(fastPayment);
    } finally {
      pause.disconnect();
    }

    const proxy = await startProxy(redis.port);
    try {
      proxy.cutAfter(SCRIPT_CALL); // the script reaches Redis; neither its answer nor a read-back comes back
      const cut = await runBin(['--redis', `redis://127.0.0.1:${proxy.port}`, '--env', env, '--actor', 'tester', '--json', 'disable', 'fast-payment']);
      expect(cut.code).toBe(7);
      const { error } = JSON.parse(cut.stderr) as { error: { exitCode: number; code: string; message: string } };
      expect(error).toMatchObject({ exitCode: 7, code: 'ERR_ROLLGATE_WRITE_OUTCOME_UNKNOWN' });
      const writeId = /^Redis did not answer write (\S+) /.exec(error.message)![1]!;
      // it had been applied; the operator retries with the id it printed: nothing is written twice
      const retry = json(await cli(env, 'disable', 'fast-payment', '--write-id', writeId, '--json'));
      expect(retry).toMatchObject({ changed: false, version: 2 });
      const audit = await s.audit('fast-payment');
      expect(audit.filter((e) => e.writeId === writeId)).toHaveLength(1);
      expect(audit[0]).toMatchObject({ version: 2, action: 'disable', writeId });
    } finally {
      await proxy.close();
    }
  });
});

describe('rollout', () => {
  it('edits the split in the else branch, keeping the pilot rules', async () => {
    const env = newEnv();
    const s = await seed(env);
    const out = json(await cli(env, 'rollout', 'fast-payment', '50', '--reason', 'ramp', '--json'));
    expect(out).toEqual({
      env,
      key: 'fast-payment',
      percent: 50,
      variant: 'on',
      by: null,
      bucketingKey: null,
      path: 'targeting.if[4]',
      created: false,
      before: [['on', 20], ['off', 80]],
      after: [['on', 50], ['off', 50]],
      previousVersion: 1,
      written: true,
      version: 2,
    });
    const expected = { ...fastPayment, targeting: { if: [...fastPayment.targeting.if.slice(0, 4), { fractional: [['on', 50], ['off', 50]] }] } };
    expect((await s.load()).flags['fast-payment']).toEqual(expected);
    expect((await s.audit('fast-payment', { limit: 1 }))[0]).toMatchObject({ action: 'rollout', actor: 'tester', reason: 'ramp', version: 2 });

    const same = json(await cli(env, 'rollout', 'fast-payment', '50%', '--json'));
    expect(same).toMatchObject({ written: false, version: 2 });
  });

  it('creates the canonical split with --variant and --by on a flag without targeting', async () => {
    const env = newEnv();
    const s = await seed(env);
    const run = await cli(env, 'rollout', 'checkout-theme', '10', '--variant', 'bold', '--by', 'tenant');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('checkout-theme: none → bold 10% / classic 90% by tenant at targeting (created) (version 2)\n');
    expect((await s.load()).flags['checkout-theme']).toEqual({
      ...checkoutTheme,
      targeting: { fractional: [{ cat: [{ var: '$flagd.flagKey' }, { var: 'tenant' }] }, ['bold', 10], ['classic', 90]] },
    });
  });

  it('refuses targeting with no split at its tail (exit 3), and an unknown variant (exit 2), writing nothing', async () => {
    const env = newEnv();
    const s = store(env);
    await s.putFlag('admins-only', { ...fastPayment, targeting: { if: [{ '==': [{ var: 'role' }, 'admin'] }, 'on', 'off'] } }, { actor: 'seed' });
    const refused = await cli(env, 'rollout', 'admins-only', '10');
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('flag "admins-only": nothing to roll out: its targeting has no percentage split ("fractional") at the tail');
    expect(refused.stderr).toContain('rollgate flags push');
    expect((await cli(env, 'rollout', 'admins-only', '10', '--variant', 'maybe')).code).toBe(2);
    expect((await cli(env, 'rollout', 'nope', '10')).code).toBe(5);
    expect((await s.load()).version).toBe(1);
  });

  it('two concurrent rollouts pinned to the same version: one wins, the other exits 4, no lost update', async () => {
    const env = newEnv();
    const s = await seed(env);
    const [a, b] = await Promise.all([cli(env, 'rollout', 'fast-payment', '30', '--expected-version', '1', '--json'), cli(env, 'rollout', 'fast-payment', '70', '--expected-version', '1', '--json')]);
    expect([a.code, b.code].sort()).toEqual([0, 4]);
    const [winner, loser] = a.code === 0 ? [a, b] : [b, a];
    const won = JSON.parse(winner.stdout) as { percent: number; version: number };
    expect(won.version).toBe(2);
    expect(loser.stdout).toBe('');
    expect(JSON.parse(loser.stderr)).toMatchObject({ error: { exitCode: 4, code: 'ERR_ROLLGATE_VERSION_CONFLICT' } });
    const final = await s.load();
    expect(final.version).toBe(2);
    expect(final.flags['fast-payment']).toEqual({ ...fastPayment, targeting: { if: [...fastPayment.targeting.if.slice(0, 4), { fractional: [['on', won.percent], ['off', 100 - won.percent]] }] } });
  });

  it('parallel unpinned rollouts: every success built on the previous write, losers exit 4', async () => {
    const env = newEnv();
    const s = await seed(env);
    const runs: CliRun[] = [];
    for (let round = 0; round < 3; round++) {
      runs.push(...(await Promise.all([cli(env, 'rollout', 'fast-payment', String(10 + round)), cli(env, 'rollout', 'fast-payment', String(60 + round))])));
    }
    for (const r of runs) expect([0, 4]).toContain(r.code);
    const entries = (await s.audit('fast-payment', { limit: 100 })).filter((e) => e.action === 'rollout').reverse();
    expect(entries).toHaveLength(runs.filter((r) => r.code === 0).length);
    // no lost update: each write's "before" is exactly the previous write's "after"
    let previous: unknown = fastPayment;
    for (const e of entries) {
      expect(e.before).toEqual(previous);
      previous = e.after;
    }
    expect((await s.load()).flags['fast-payment']).toEqual(previous);
  });
});

describe('segment', () => {
  it('adds (creating), lists and removes values; refuses other shapes and attributes', async () => {
    const env = newEnv();
    const s = await seed(env);
    const added = json(await cli(env, 'segment', 'add', 'vip-agencies', 'tenant', 'initech', 'acme', '--reason', 'pilot wave 2', '--json'));
    expect(added).toEqual({
      env,
      evaluator: 'vip-agencies',
      attribute: 'tenant',
      added: ['initech'],
      unchanged: ['acme'],
      created: false,
      values: ['acme', 'globex', 'initech'],
      previousVersion: 1,
      written: true,
      version: 2,
    });
    expect((await s.load()).evaluators['vip-agencies']).toEqual({ in: [{ var: 'tenant' }, ['acme', 'globex', 'initech']] });

    const created = json(await cli(env, 'segment', 'add', 'beta-users', 'email', 'a@x.io', '--json'));
    expect(created).toMatchObject({ created: true, added: ['a@x.io'], version: 3 });

    const list = json(await cli(env, 'segment', 'list', '--json'));
    expect(list).toEqual({
      env,
      version: 3,
      segments: [
        { evaluator: 'beta-users', attribute: 'email', values: ['a@x.io'], usedBy: [] },
        { evaluator: 'vip-agencies', attribute: 'tenant', values: ['acme', 'globex', 'initech'], usedBy: ['fast-payment'] },
      ],
      others: [],
    });
    expect((await cli(env, 'segment', 'list', 'vip-agencies')).stdout).toBe('acme\nglobex\ninitech\n');

    const removed = json(await cli(env, 'segment', 'remove', 'vip-agencies', 'tenant', 'acme', '--json'));
    expect(removed).toMatchObject({ removed: ['acme'], values: ['globex', 'initech'], written: true, version: 4 });
    const noop = json(await cli(env, 'segment', 'remove', 'vip-agencies', 'tenant', 'acme', '--json'));
    expect(noop).toMatchObject({ removed: [], unchanged: ['acme'], written: false, version: 4 });

    expect((await cli(env, 'segment', 'add', 'vip-agencies', 'org', 'x')).code).toBe(3);
    await s.putEvaluator('admins', { '==': [{ var: 'role' }, 'admin'] }, { actor: 'seed' });
    const other = await cli(env, 'segment', 'add', 'admins', 'role', 'ops');
    expect(other.code).toBe(3);
    expect(other.stderr).toContain('evaluator "admins" is not a value list this command can edit');
    expect((await cli(env, 'segment', 'remove', 'nope', 'tenant', 'x')).code).toBe(5);
    expect((await cli(env, 'segment', 'list', 'nope')).code).toBe(5);
    expect((await s.audit('vip-agencies', { limit: 1 }))[0]).toMatchObject({ kind: 'evaluator', action: 'segment-remove', actor: 'tester' });
    expect((await s.load()).version).toBe(5);
  });

  it('loads a cohort of 100,000 ids from a file in one write, replaces it with `set`, and every instance evaluates it', async () => {
    const env = newEnv();
    const s = await seed(env);
    const cohort = Array.from({ length: 100_000 }, (_, i) => `user-${i}`);
    const file = join(dir, `loyal-${env}.txt`);
    writeFileSync(file, `# loyal customers, computed nightly\n${cohort.join('\n')}\n`);
    const added = await cli(env, 'segment', 'add', 'loyal', 'targetingKey', '--from-file', file, '--reason', 'nightly cohort');
    expect(added.code).toBe(0);
    expect(added.stdout).toBe('loyal: added user-0, user-1, user-2, user-3, user-4 (+99995 more) (100000 value(s), version 2)\n');
    expect((await s.load()).evaluators.loyal).toEqual({ in: [{ var: 'targetingKey' }, cohort] });
    expect((await s.audit('loyal')).map((e) => [e.version, e.action, e.reason])).toEqual([[2, 'segment-add', 'nightly cohort']]);

    // a flag that uses it, served by a provider as an app runs it
    await s.putFlag('perk', { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ $ref: 'loyal' }, 'on', 'off'] } }, { actor: 'seed' }); // v3
    const provider = new RollgateProvider({ store: { redis: redis.url, env } });
    try {
      await provider.initialize();
      const on = (key: string) => provider.snapshot.evaluate('perk', { targetingKey: key }).value;
      expect([on('user-0'), on('user-77777'), on('user-99999'), on('user-100000'), on('someone')]).toEqual([true, true, true, false, false]);

      // the next night: 500 left, 2 joined; the same members in another order writes nothing
      const next = [...cohort.slice(500), 'user-100000', 'user-100001'];
      writeFileSync(file, next.join('\n'));
      const changed = new Promise<void>((resolve) => provider.events.addHandler(ProviderEvents.ConfigurationChanged, () => resolve()));
      const set = json(await cli(env, 'segment', 'set', 'loyal', 'targetingKey', '--from-file', file, '--json'));
      expect(set).toMatchObject({ evaluator: 'loyal', count: 99_502, created: false, written: true, version: 4, previousVersion: 3 });
      expect((set as { added: string[] }).added).toEqual(['user-100000', 'user-100001']);
      expect((set as { removed: string[] }).removed).toHaveLength(500);
      await changed;
      expect([on('user-0'), on('user-500'), on('user-100001')]).toEqual([false, true, true]);
      writeFileSync(file, [...next].reverse().join('\n'));
      const same = await cli(env, 'segment', 'set', 'loyal', 'targetingKey', '--from-file', file);
      expect([same.code, same.stdout]).toEqual([0, 'loyal: unchanged (99502 value(s))\n']);
      expect((await s.load()).version).toBe(4);
    } finally {
      await provider.onClose();
    }
  });

  it('--from-file refuses a value with a control character, naming the line, before writing anything', async () => {
    const env = newEnv();
    const s = await seed(env);
    const file = join(dir, `bad-${env}.txt`);
    writeFileSync(file, 'user-1\nuser-\u001b[2J\n');
    const run = await cli(env, 'segment', 'add', 'loyal', 'targetingKey', '--from-file', file);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`rollgate: ${file}:2: the value holds a control or invisible character ("user-\\u001b[2J"); nothing was written\n`);
    expect((await cli(env, 'segment', 'add', 'loyal', 'targetingKey')).stderr).toContain('name the values on the command line, or give --from-file <file>');
    expect((await s.load()).version).toBe(1);
  });
});

describe('audit and revert', () => {
  it('audit shows actor, action, change and reason, newest first', async () => {
    const env = newEnv();
    await seed(env);
    await runBin(['--redis', redis.url, '--env', env, '--actor', 'alice', '--reason', 'incident 42', 'disable', 'fast-payment']);
    const out = json<{ env: string; entries: Record<string, unknown>[] }>(await cli(env, 'audit', 'fast-payment', '--json'));
    expect(out.env).toBe(env);
    expect(out.entries).toEqual([
      { id: expect.any(String), version: 2, time: expect.any(Number), actor: 'alice', action: 'disable', kind: 'flag', key: 'fast-payment', before: fastPayment, after: { ...fastPayment, state: 'DISABLED' }, reason: 'incident 42', writeId: expect.any(String) },
      { id: expect.any(String), version: 1, time: expect.any(Number), actor: 'seed', action: 'put', kind: 'flag', key: 'fast-payment', before: null, after: fastPayment, reason: '', writeId: expect.any(String) },
    ]);
    const human = await cli(env, 'audit', '--limit', '2');
    const lines = human.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^VERSION\s+TIME\s+ACTOR\s+ACTION\s+KEY\s+CHANGE\s+REASON$/);
    expect(lines[1]).toMatch(/^2\s+\S+Z\s+alice\s+disable\s+fast-payment\s+state "ENABLED" → "DISABLED"\s+incident 42$/);
  });

  it('revert restores the exact earlier definition, as a new audited version', async () => {
    const env = newEnv();
    const s = await seed(env);
    const keys = flagStoreKeys(env);
    const original = await admin.hget(keys.flags, 'fast-payment');
    expect((await cli(env, 'rollout', 'fast-payment', '60')).code).toBe(0); // v2
    expect((await cli(env, 'disable', 'fast-payment')).code).toBe(0); // v3
    const out = json(await cli(env, 'revert', 'fast-payment', '--to', '1', '--json'));
    expect(out).toEqual({ env, key: 'fast-payment', kind: 'flag', toVersion: 1, previousVersion: 3, version: 4, written: true, definition: fastPayment });
    expect(await admin.hget(keys.flags, 'fast-payment')).toBe(original); // byte for byte
    expect((await s.audit('fast-payment', { limit: 1 }))[0]).toMatchObject({ action: 'revert', actor: 'tester', reason: 'revert to version 1', version: 4 });

    const undo = await cli(env, 'revert', 'fast-payment', '--reason', 'oops');
    expect(undo.code).toBe(0);
    expect((await s.load()).flags['fast-payment']).toEqual({ ...fastPayment, state: 'DISABLED', targeting: { if: [...fastPayment.targeting.if.slice(0, 4), { fractional: [['on', 60], ['off', 40]] }] } });
    expect((await s.audit('fast-payment', { limit: 1 }))[0]).toMatchObject({ reason: 'oops', version: 5 });

    const evaluator = await cli(env, 'revert', 'vip-agencies', '--evaluator', '--to', '0');
    expect(evaluator.code).toBe(3); // fast-payment still uses it: removing it is refused by validation
    expect(evaluator.stderr).toContain('unknown $ref "vip-agencies"');
    expect((await cli(env, 'revert', 'never-existed')).code).toBe(5);
    expect((await s.load()).version).toBe(5);
  });

  it('a revert that would change nothing but key order writes nothing: no version, no audit entry', async () => {
    const env = newEnv();
    const s = await seed(env);
    await s.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'ops' }); // v2
    const { state, ...rest } = fastPayment;
    await s.putFlag('fast-payment', { ...rest, state }, { actor: 'ops' }); // v3: back, keys in another order
    const run = await cli(env, 'revert', 'fast-payment', '--to', '1');
    expect([run.code, run.stdout]).toEqual([0, 'flag fast-payment: unchanged (version 3)\n']);
    expect(run.stderr).toBe('no changes: flag "fast-payment" already has its definition as of version 1 (version 3); nothing written\n');
    expect(json(await cli(env, 'revert', 'fast-payment', '--to', '1', '--json'))).toEqual({ env, key: 'fast-payment', kind: 'flag', toVersion: 1, previousVersion: 3, version: 3, written: false });
    expect((await s.load()).version).toBe(3);
    expect((await s.audit('fast-payment')).map((e) => e.version)).toEqual([3, 2, 1]);
  });
});

describe('explain', () => {
  it('prints the steps and the summary of the deciding rule', async () => {
    const env = newEnv();
    await seed(env);
    const out = json<{ result: Record<string, unknown>; steps: { path: string; note: string }[]; summary: string }>(
      await cli(env, 'explain', 'fast-payment', '--context', '{"targetingKey": "u-1", "tenant": "acme"}', '--json'),
    );
    expect(out).toMatchObject({ env, version: 1, key: 'fast-payment', context: { targetingKey: 'u-1', tenant: 'acme' }, result: { value: true, variant: 'on', reason: 'TARGETING_MATCH' } });
    expect(out.steps.map((s) => [s.path, s.note])).toEqual([
      ['targeting.if[0]', 'condition 1 did not match'],
      ['targeting.if[2]', 'condition 2 matched'],
    ]);
    expect(out.summary).toBe('condition 2 matched: variant "on" (true)');

    const human = await cli(env, 'explain', 'fast-payment', '--context', '{"targetingKey": "u-1"}');
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('targeting.if[4]: no condition matched: else branch');
    expect(human.stdout).toMatch(/percentage split on "fast-paymentu-1": bucket \d+ of 100/);
    expect(human.stdout).toMatch(/=> variant "(on|off)" \((true|false)\), reason SPLIT/);
    expect((await cli(env, 'explain', 'nope')).code).toBe(5);
  });

  it('says that a percentage split needs a targetingKey, when the context has none', async () => {
    const env = newEnv();
    await seed(env);
    const keyless = await cli(env, 'explain', 'fast-payment', '--context', '{"tenant": "smallco"}');
    expect(keyless.code).toBe(0);
    expect(keyless.stderr).toBe(`warning: the percentage split needs a targetingKey to put the caller in a bucket: give one, e.g. --context '{"targetingKey": "user-42"}'\n`);
    expect((await cli(env, 'explain', 'fast-payment', '--context', '{"targetingKey": "u-1"}')).stderr).toBe('');
  });
});

describe('watch', () => {
  it('prints a change made by another process, and exits 0 on SIGINT', async () => {
    const env = newEnv();
    await seed(env);
    const watch = spawnBin(['--redis', redis.url, '--env', env, '--json', 'watch']);
    try {
      await watch.waitFor('stderr', '"status":"watching"');
      expect(JSON.parse(watch.stderr().trim().split('\n')[0]!)).toEqual({ status: 'watching', env, version: 1 });
      expect((await runBin(['--redis', redis.url, '--env', env, '--actor', 'bob', '--reason', 'incident', 'disable', 'fast-payment'])).code).toBe(0);
      await watch.waitFor('stdout', '\n');
      const line = JSON.parse(watch.stdout().split('\n')[0]!) as Record<string, unknown>;
      expect(line).toEqual({
        version: 2,
        revision: expect.any(String),
        time: expect.any(String),
        flags: ['fast-payment'],
        evaluators: [],
        writes: [{ version: 2, actor: 'bob', action: 'disable', kind: 'flag', key: 'fast-payment', reason: 'incident' }],
      });
    } finally {
      expect(await watch.stop('SIGINT')).toBe(0);
    }
  });

  it('prints human-readable lines, and exits 0 on SIGTERM', async () => {
    const env = newEnv();
    await seed(env);
    const watch = spawnBin(['--redis', redis.url, '--env', env, 'watch']);
    try {
      await watch.waitFor('stderr', `watching env "${env}" from version 1`);
      expect((await cli(env, 'segment', 'add', 'vip-agencies', 'tenant', 'initech')).code).toBe(0);
      await watch.waitFor('stdout', '\n');
      expect(watch.stdout()).toMatch(/^version 2 {2}\S+ {2}flags: fast-payment {2}evaluators: vip-agencies {2}— segment-add by tester\n$/);
    } finally {
      expect(await watch.stop('SIGTERM')).toBe(0);
    }
  });
});

describe('hostile data written to Redis by hand', () => {
  // What validation refuses today may already be in Redis (written by hand, or by an older
  // version): printed, it must never reach the terminal as control characters.
  const EVIL_KEY = 'evil\x1b]0;pwned\x07\x1b[2J';
  const EVIL_ACTOR = 'mallory\u202e\x1b[31m';
  const EVIL_REASON = 'why\r\x1b[1Afake line\u2028\x9b2J';
  const definition = { state: 'ENABLED', variants: { 'on\u0085': 'x\u202ey', off: 'plain' }, defaultVariant: 'off', metadata: { note: 'tab\there\x7f' } };
  /** Any character that acts on a terminal or reorders text: C0 (but \n), DEL, C1, bidi controls, separators. */
  const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/;

  /** Writes `definition` under EVIL_KEY and an audit entry by EVIL_ACTOR, as a new version, bypassing every check. */
  async function handWrite(env: string): Promise<number> {
    const keys = flagStoreKeys(env);
    await admin.hset(keys.flags, EVIL_KEY, JSON.stringify(definition));
    const version = await admin.incr(keys.version);
    await admin.set(keys.revision, `hand-${version}`);
    await admin.xadd(keys.audit, '*', 'version', String(version), 'time', String(Date.now()), 'actor', EVIL_ACTOR, 'action', 'put\x1b[2J', 'kind', 'flag', 'key', EVIL_KEY, 'before', '', 'after', JSON.stringify(definition), 'reason', EVIL_REASON, 'write', 'by-hand');
    return version;
  }

  function expectPrintable(run: CliRun): void {
    expect({ stdout: RAW.exec(run.stdout)?.[0], stderr: RAW.exec(run.stderr)?.[0] }).toEqual({ stdout: undefined, stderr: undefined });
  }

  it("feedback prints users' comments as text: markup as is, terminal escapes escaped, one line each", async () => {
    const env = newEnv();
    const keys = flagStoreKeys(env);
    // as the events endpoint writes it (through OutcomeRecorder): a user's comment is untrusted text
    await admin.xadd(keys.feedback('fast-payment'), '*', 'variant', 'on', 'split', '1', 'sentiment', 'negative', 'comment', '<b>slow</b>\x1b]0;pwned\x07\nsecond line', 'time', String(Date.now()));
    await admin.xadd(keys.feedback('fast-payment'), '*', 'variant', 'off', 'split', '1', 'sentiment', 'positive', 'comment', '', 'time', String(Date.now()));
    const [human, json] = await Promise.all([cli(env, 'feedback', 'fast-payment'), cli(env, 'feedback', 'fast-payment', '--json')]);
    for (const run of [human, json]) expectPrintable(run);
    expect(human.code).toBe(0);
    const row = human.stdout.split('\n').find((line) => line.includes('<b>slow</b>'))!;
    expect(row).toMatch(/on\s+negative\s+<b>slow<\/b>\\x1b\]0;pwned\\x07\\x0asecond line$/); // one line: the newline escaped too
    expect(human.stdout).toMatch(/^VARIANT\s+POSITIVE\s+NEUTRAL\s+NEGATIVE\s+NEGATIVE SHARE$/m);
    const parsed = JSON.parse(json.stdout) as { latest: { comment: string }[]; variants: { variant: string; negative: number }[] };
    expect(parsed.latest[1]!.comment).toBe('<b>slow</b>\x1b]0;pwned\x07\nsecond line');
    expect(parsed.variants.map((v) => [v.variant, v.negative])).toEqual([
      ['off', 0],
      ['on', 1],
    ]);
  });

  it('flags list / get and audit print escapes (\\x1b, \\u202e), never the characters; --json is the same JSON with them escaped', async () => {
    const env = newEnv();
    await seed(env);
    await handWrite(env);
    const [list, listJson, get, getJson, audit, auditJson, explain] = await Promise.all([
      cli(env, 'flags', 'list'),
      cli(env, 'flags', 'list', '--json'),
      cli(env, 'flags', 'get', EVIL_KEY),
      cli(env, 'flags', 'get', EVIL_KEY, '--json'),
      cli(env, 'audit'),
      cli(env, 'audit', '--json'),
      cli(env, 'explain', EVIL_KEY),
    ]);
    for (const run of [list, listJson, get, getJson, audit, auditJson, explain]) expectPrintable(run);
    // the key, where it is listed: in the table, and in stderr's notes when validation refuses it
    expect(`${list.stdout}${list.stderr}`).toContain('evil\\x1b]0;pwned\\x07\\x1b[2J');
    expect(list.stdout.split('\n').filter((line) => line.startsWith('evil'))).toHaveLength(1); // one row, no line broken
    // actor, action, reason: one line each
    const row = audit.stdout.split('\n').find((line) => line.includes('mallory'))!;
    expect(row).toContain('mallory\\u202e\\x1b[31m');
    expect(row).toContain('put\\x1b[2J');
    expect(row).toContain('why\\x0d\\x1b[1Afake line\\u2028\\x9b2J');
    expect(audit.stdout.trim().split('\n')).toHaveLength(1 + 4); // header, the hand-written entry, the seed's three
    // --json: the same values once parsed
    const listed = json<{ flags: { key: string }[]; issues: { flagKey?: string }[] }>(listJson);
    expect([...listed.flags.map((f) => f.key), ...listed.issues.map((i) => i.flagKey)]).toContain(EVIL_KEY);
    expect(listJson.stdout).not.toContain('\u202e');
    const entries = json<{ entries: { actor: string; action: string; reason: string; key: string }[] }>(auditJson).entries;
    expect(entries[0]).toMatchObject({ actor: EVIL_ACTOR, action: 'put\x1b[2J', reason: EVIL_REASON, key: EVIL_KEY });
    expect(auditJson.stdout).toContain('"actor": "mallory\\u202e\\u001b[31m"');
    if (get.code === 0) {
      // stored and readable: the definition's strings escaped inside the JSON it prints
      expect(get.stdout).toContain('"on\\u0085": "x\\u202ey"');
      expect(json<{ definition: unknown }>(getJson).definition).toEqual(definition);
    }
  });

  it('watch prints the action, actor and reason of a change made by hand escaped, on one line', async () => {
    const env = newEnv();
    await seed(env);
    const watch = spawnBin(['--redis', redis.url, '--env', env, 'watch']);
    const watchJson = spawnBin(['--redis', redis.url, '--env', env, '--json', 'watch']);
    try {
      await Promise.all([watch.waitFor('stderr', `watching env "${env}" from version 1`), watchJson.waitFor('stderr', '"status":"watching"')]);
      const version = await handWrite(env);
      await Promise.all([watch.waitFor('stdout', '\n'), watchJson.waitFor('stdout', '\n')]);
      const [line, ...rest] = watch.stdout().split('\n');
      expect(rest).toEqual(['']);
      expect(line).toMatch(new RegExp(`^version ${version} `));
      expect(line).toContain('put\\x1b[2J by mallory\\u202e\\x1b[31m ("why\\x0d\\x1b[1Afake line\\u2028\\x9b2J")');
      const record = JSON.parse(watchJson.stdout().split('\n')[0]!) as { writes: { actor: string; reason: string }[] };
      expect(record.writes).toEqual([expect.objectContaining({ actor: EVIL_ACTOR, reason: EVIL_REASON })]);
      for (const out of [watch.stdout(), watch.stderr(), watchJson.stdout(), watchJson.stderr()]) expect(RAW.exec(out)?.[0]).toBeUndefined();
    } finally {
      expect(await watch.stop('SIGTERM')).toBe(0);
      expect(await watchJson.stop('SIGTERM')).toBe(0);
    }
  });
});

describe('failures', () => {
  it('exits 1 on an unexpected error (a Redis key of the wrong type), with the message', async () => {
    const env = newEnv();
    await admin.set(flagStoreKeys(env).flags, 'not a hash');
    const run = await cli(env, 'flags', 'list');
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('rollgate: unexpected error: WRONGTYPE');
  });
});

describe('Redis unreachable', () => {
  let silent: Server;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    // accepts connections and never answers: a stuck Redis
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    silent.close();
    await once(silent, 'close');
  });

  it('exits 6 promptly when Redis refuses connections or does not answer', async () => {
    const closed = `redis://127.0.0.1:${await freePort()}`;
    const stuck = `redis://127.0.0.1:${(silent.address() as { port: number }).port}`;
    const [refused, refusedJson, hung, hungWrite] = await Promise.all([
      runBin(['--redis', closed, 'flags', 'list']),
      runBin(['flags', 'list', '--json'], { env: { REDIS_URL: closed } }),
      runBin(['--redis', stuck, 'flags', 'list']),
      runBin(['--redis', stuck, '--actor', 'x', 'disable', 'fast-payment']),
    ]);
    // Promptly = by the connection's own bounds (SAFE_REDIS_OPTIONS: connect 2 s, command 1 s,
    // one retry), not by how fast this machine is: each run ended by itself with exit 6 (the
    // harness kills a hung one after 20 s: code -1), and its message names the cause, a refusal
    // or a timeout that fired. No wall-clock limit: a loaded machine stretches process start-up.
    for (const run of [refused, refusedJson, hung, hungWrite]) {
      expect(run.code).toBe(6);
      expect(run.stdout).toBe('');
    }
    // where and why, in words: not ioredis' retry internals
    expect(refused.stderr).toBe(`rollgate: Redis at ${closed} is unreachable: connection refused\n`);
    expect(JSON.parse(refusedJson.stderr)).toEqual({ error: { exitCode: 6, code: 'ERR_ROLLGATE_STORE_UNAVAILABLE', message: `Redis at ${closed} is unreachable: connection refused` } });
    expect(hung.stderr).toBe(`rollgate: Redis at ${stuck} is unreachable: no answer (timed out)\n`);
    expect(hungWrite.stderr).toBe(`rollgate: Redis at ${stuck} is unreachable: no answer (timed out)\n`);
  });

  it('never prints the password of the URL', async () => {
    const port = await freePort();
    const run = await runBin(['--redis', `redis://app:hunter2-secret@127.0.0.1:${port}`, 'flags', 'list']);
    expect(run.code).toBe(6);
    expect(run.stderr).toBe(`rollgate: Redis at redis://app:***@127.0.0.1:${port} is unreachable: connection refused\n`);
  });

  it('says when the password is wrong or missing', async () => {
    const locked = await startRedis();
    const setup = new Redis(locked.url);
    try {
      await setup.config('SET', 'requirepass', 'right-password');
      const [missing, wrong] = await Promise.all([
        runBin(['--redis', locked.url, 'flags', 'list']),
        runBin(['--redis', `redis://:wrong-password@127.0.0.1:${locked.port}`, 'flags', 'list']),
      ]);
      expect([missing.code, missing.stderr]).toEqual([6, `rollgate: Redis at ${locked.url} is unreachable: authentication required: give the password in the URL (redis://:password@host:port)\n`]);
      expect([wrong.code, wrong.stderr]).toEqual([6, `rollgate: Redis at redis://:***@127.0.0.1:${locked.port} is unreachable: wrong user name or password\n`]);
    } finally {
      setup.disconnect();
      await locked.stop();
    }
  });

  it('a --redis that is not a Redis URL is a usage error (exit 2), before anything connects', async () => {
    const runs = await Promise.all([runBin(['--redis', 'notaurl', 'flags', 'list']), runBin(['--redis', 'user:secret@redis.internal', 'disable', 'x', '--actor', 'a']), runBin(['flags', 'list'], { env: { REDIS_URL: 'redis+sentinel://s1' } })]);
    expect(runs.map((r) => [r.code, r.stdout])).toEqual([[2, ''], [2, ''], [2, '']]);
    expect(runs[0]!.stderr).toBe('rollgate: --redis: Redis URL: "notaurl" is not a Redis URL (expected redis://[[user]:password@]host[:port][/db] (rediss:// for TLS), redis+sentinel://… or redis+cluster://…)\n');
    expect(runs[1]!.stderr).toContain('"***@redis.internal" is not a Redis URL');
    expect(runs[1]!.stderr).not.toContain('secret');
    expect(runs[2]!.stderr).toContain('rollgate: --redis: Redis URL: no master name in the path');
  });
});
