import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { flagStoreKeys, RedisFlagStore } from '@rollgate/redis';
import { OutcomeRecorder, quantileMs, RolloutController, Rollouts, type Plan, type PlanSpec } from '@rollgate/rollouts';
import { runCli } from '../src/program';
import type { PlanStatusView } from '../src/commands/plan';
import { freePort, startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { buildCli, fakeDeps, runBin, spawnBin, type CliRun } from './support/cli';

// `rollgate plan …` and `rollgate controller`: the real, built bin against a throwaway
// redis-server, one --env per test. Evidence for `plan status` comes from a RolloutController run
// in-process on a fake clock; `rollgate controller` runs on the real clock (nothing is waited for
// but events: its output lines, the plan's state).

jest.setTimeout(60_000);

const fastPayment = {
  state: 'ENABLED',
  variants: { on: true, off: false },
  defaultVariant: 'off',
  targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { fractional: [['on', 0], ['off', 100]] }] },
};

let redis: TestRedis;
let admin: Redis;
let dir: string;
let envCounter = 0;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  buildCli();
  redis = await startRedis();
  admin = new Redis(redis.url);
  dir = mkdtempSync(join(tmpdir(), 'rollgate-plan-'));
}, 180_000);
afterAll(async () => {
  admin?.disconnect();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function newEnv(): string {
  return `plan-${process.pid}-${++envCounter}`;
}

/** `rollgate --redis … --env <env> --actor <actor> <args>` */
function cli(env: string, args: string[], options: { actor?: string; input?: string } = {}): Promise<CliRun> {
  return runBin(['--redis', redis.url, '--env', env, '--actor', options.actor ?? 'ada', ...args], options.input !== undefined ? { input: options.input } : {});
}

function json<T = Record<string, unknown>>(run: CliRun): T {
  if (run.code !== 0) throw new Error(`rollgate exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

function ok(run: CliRun): CliRun {
  if (run.code !== 0) throw new Error(`rollgate exited ${run.code}: ${run.stderr}`);
  return run;
}

async function seeded(env: string): Promise<RedisFlagStore> {
  const store = new RedisFlagStore({ redis: redis.url, env, pollIntervalMs: 60_000 });
  cleanups.push(() => store.close());
  await store.putFlag('fast-payment', fastPayment, { actor: 'seed' });
  return store;
}

async function treatmentPercent(store: RedisFlagStore): Promise<number> {
  const def = (await store.load()).flags['fast-payment'] as typeof fastPayment;
  const split = def.targeting.if[2] as { fractional: [string, number][] };
  return split.fractional.find(([v]) => v === 'on')![1];
}

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return path;
}

const RAMP = ['--treatment', 'on', '--control', 'off', '--stages', '5:15m,20:30m,50:1h,100:1h', '--max-error-rate', '0.05'];

describe('plan create', () => {
  it('from options: every option lands in the stored plan; human and --json output', async () => {
    const env = newEnv();
    const store = await seeded(env);
    const args = [
      ...['plan', 'create', 'fast-payment', '--treatment', 'on', '--control', 'off', '--stages', '0:1h,5:15m,20:30m,50:1h30m,100:90s'],
      ...['--min-requests', '500', '--min-units', '50', '--guards', 'errors,p95,p99,event:payment.failed,clientErrors,feedback,value:checkout.completed:lower:10%', '--alpha', '0.02', '--approval', '3,2'],
      ...['--max-error-rate', '5%', '--max-p99-ms', '800', '--pilot-max-error-rate', '0.02'],
    ];
    const created = json<Plan>(await cli(env, [...args, '--json']));
    const stored = await new Rollouts({ store }).get('fast-payment');
    expect(created).toEqual(stored);
    const stage = (percent: number, minDurationSec: number, extra: object = {}) => ({ percent, minDurationSec, minRequests: 500, minUnits: 50, approval: false, ...extra });
    expect(stored).toMatchObject({
      flag: 'fast-payment',
      treatment: 'on',
      control: 'off',
      state: 'draft',
      alpha: 0.02,
      guards: [
        { metric: 'errors' },
        { metric: 'latency', quantile: 0.95 },
        { metric: 'latency', quantile: 0.99 },
        { metric: 'event', name: 'payment.failed' },
        { metric: 'clientErrors' },
        { metric: 'feedback' },
        { metric: 'value', name: 'checkout.completed', better: 'lower', margin: 0.1 },
      ],
      stages: [
        stage(0, 3600, { absolute: { maxErrorRate: 0.02, maxP99Ms: 800 } }),
        stage(5, 900, { approval: true }),
        stage(20, 1800, { approval: true }),
        stage(50, 5400),
        stage(100, 90, { absolute: { maxErrorRate: 0.05, maxP99Ms: 800 } }),
      ],
      created: { actor: 'ada' },
      planVersion: 1,
    });
    // a draft is replaced by the next create; the defaults are the library's
    const human = ok(await cli(env, ['plan', 'create', 'fast-payment', ...RAMP]));
    expect(human.stdout).toBe(
      'fast-payment: plan created (draft): 5% → 20% → 50% → 100%, treatment "on" vs control "off", guards errors, p99 latency (plan version 2); start it with `rollgate plan start fast-payment`\n',
    );
    expect(await new Rollouts({ store }).get('fast-payment')).toMatchObject({
      planVersion: 2,
      alpha: 0.05,
      stages: [
        { percent: 5, minDurationSec: 900, minRequests: 100, minUnits: 10, approval: false },
        { percent: 20 },
        { percent: 50 },
        { percent: 100, minDurationSec: 3600, absolute: { maxErrorRate: 0.05 } },
      ],
    });
    expect((await store.audit('fast-payment')).filter((e) => e.kind === 'plan').map((e) => [e.action, e.actor])).toEqual([
      ['create', 'ada'],
      ['create', 'ada'],
    ]);
  });

  it('from a file, or stdin (-): the PlanSpec as given, the flag from the argument when the file has none', async () => {
    const env = newEnv();
    const store = await seeded(env);
    const spec: PlanSpec = {
      flag: 'fast-payment',
      treatment: 'on',
      control: 'off',
      stages: [{ percent: 10, minDurationSec: 120, minRequests: 40, approval: true }, { percent: 100, absolute: { maxP99Ms: 500 } }],
      guards: [{ metric: 'errors' }],
      alpha: 0.1,
      breaker: { errorRate: 0.3, windowSec: 30 },
      noDataHoldSec: 300,
      baselineSec: 0,
    };
    const fromFile = json<Plan>(await cli(env, ['plan', 'create', '--file', file(`${env}.json`, spec), '--json']));
    expect(fromFile).toMatchObject({ ...spec, breaker: { errorRate: 0.3, windowSec: 30, minRequests: 20 }, stages: [{ percent: 10, minDurationSec: 120, minRequests: 40, minUnits: 10, approval: true }, { percent: 100, minDurationSec: 0, absolute: { maxP99Ms: 500 } }] });
    expect(await new Rollouts({ store }).get('fast-payment')).toEqual(fromFile);

    const { flag: _flag, ...withoutFlag } = spec;
    const fromStdin = json<Plan>(await cli(env, ['plan', 'create', 'fast-payment', '--file', '-', '--json'], { input: JSON.stringify({ ...withoutFlag, alpha: 0.2 }) }));
    expect(fromStdin).toMatchObject({ flag: 'fast-payment', alpha: 0.2, planVersion: fromFile.planVersion + 1 });
  });

  it('refuses a bad file with exit 3 and the line, or a file that contradicts the arguments with exit 2; writes nothing', async () => {
    const env = newEnv();
    const store = await seeded(env);
    const broken = file(`${env}-broken.json`, '{\n  "flag": "fast-payment",\n  "stages": [,]\n}');
    const invalid = file(`${env}-invalid.json`, ['{', '  "flag": "fast-payment",', '  "treatment": "on",', '  "control": "off",', '  "stages": [', '    { "percent": 20 },', '    { "percent": 5 }', '  ]', '}'].join('\n'));
    const good = file(`${env}-good.json`, { flag: 'fast-payment', treatment: 'on', control: 'off', stages: [{ percent: 20 }] });
    const [syntax, validation, validationJson, other, mixed, missingFile] = await Promise.all([
      cli(env, ['plan', 'create', '--file', broken]),
      cli(env, ['plan', 'create', '--file', invalid]),
      cli(env, ['plan', 'create', '--file', invalid, '--json']),
      cli(env, ['plan', 'create', 'checkout', '--file', good]),
      cli(env, ['plan', 'create', '--file', good, '--stages', '5:1m', '--alpha', '0.1']),
      cli(env, ['plan', 'create', '--file', join(dir, 'nope.json')]),
    ]);
    expect([syntax.code, syntax.stdout]).toEqual([3, '']);
    expect(syntax.stderr).toContain(`${broken}:3:14: not valid JSON: unexpected ",", expected a value`);
    expect([validation.code, validation.stdout]).toEqual([3, '']);
    expect(validation.stderr).toBe(`rollgate: ${invalid}:7: stages[1].percent: must be above the previous stage's 20%: a plan only ramps up (rollback is its own action)\n`);
    expect(JSON.parse(validationJson.stderr)).toEqual({
      error: { exitCode: 3, code: 'ERR_ROLLGATE_PLAN_INVALID', message: `${invalid}:7: stages[1].percent: must be above the previous stage's 20%: a plan only ramps up (rollback is its own action)` },
    });
    expect([other.code, other.stderr]).toEqual([2, 'rollgate: the file\'s plan is for flag "fast-payment", not "checkout": leave the flag out, or fix the file\n']);
    expect([mixed.code, mixed.stderr]).toEqual([2, 'rollgate: --file gives the whole plan: leave out --stages, --alpha (or edit the file)\n']);
    expect(missingFile.code).toBe(2);
    expect(missingFile.stderr).toContain('no such file');
    expect(await new Rollouts({ store }).list()).toEqual([]);
  });

  it('refuses what the library refuses with exit 3 (validation), a missing flag with exit 5', async () => {
    const env = newEnv();
    await seeded(env);
    const [variant, noFlag] = await Promise.all([
      cli(env, ['plan', 'create', 'fast-payment', '--treatment', 'fast', '--control', 'off', '--stages', '5:15m', '--json']),
      cli(env, ['plan', 'create', 'no-such-flag', ...RAMP]),
    ]);
    expect(variant.code).toBe(3);
    expect(JSON.parse(variant.stderr)).toEqual({ error: { exitCode: 3, code: 'ERR_ROLLGATE_PLAN_INVALID', message: 'treatment: flag "fast-payment" has no variant "fast" (variants: on, off)' } });
    expect([noFlag.code, noFlag.stderr]).toEqual([5, 'rollgate: flag "no-such-flag" does not exist\n']);
  });
});

describe('parse errors: exit 2, what is wrong and an example, nothing opened', () => {
  // In-process (the bin only calls runCli), so the many cases do not each spawn a process; the
  // real bin's exit 2 is covered above and below.
  const create = (...args: string[]) => ['plan', 'create', 'fast-payment', '--treatment', 'on', '--control', 'off', ...args];
  const cases: [string[], string][] = [
    [create('--stages', '5:15m,2:1h'), '--stages: 2% after 5%: each stage must be above the one before (a plan only ramps up; rollback is its own command), e.g. --stages 5:15m,20:30m,50:1h,100:1h'],
    [create('--stages', '5:15,20'), '--stages: "5:15": "15" has no unit: write it with s, m or h, e.g. 5:15m'],
    [create('--stages', '5:fortnight'), '--stages: "5:fortnight": "fortnight" is not a duration (a number with s, m or h: 90s, 15m, 1h30m), e.g. 5:15m'],
    [create('--stages', '5:15m15m'), '--stages: "5:15m15m": "15m15m" is not a duration'],
    [create('--stages', '150:1h'), '--stages: "150:1h": a stage\'s percent is 0 to 100, got 150'],
    [create('--stages', 'five'), '--stages: "five" is not <percent>:<min duration> (a whole percent 0-100, a duration with s, m or h), e.g. --stages 5:15m,20:30m,50:1h,100:1h'],
    [create('--stages', '5:15m,,20:1h'), '--stages: give the stages as <percent>:<min duration> separated by commas, with no empty item, e.g. --stages 5:15m,20:30m,50:1h,100:1h'],
    [create('--stages', '5:31d'), '--stages: "5:31d": "31d" is not a duration'],
    [create('--stages', '5:721h'), '--stages: "5:721h": a stage\'s min duration is at most 30 days'],
    [create('--stages', '5', '--guards', 'errors,cpu'), '--guards: unknown guard "cpu": each guard is errors, p95, p99, event:<name>, clientErrors, feedback or value:<name>[:lower|:higher[:<margin>]], e.g. --guards errors,p99,event:payment.failed'],
    [create('--stages', '5', '--guards', 'value:checkout.completed:faster'), '--guards: "value:checkout.completed:faster": a value guard is value:<event name>[:lower|:higher[:<margin>]], e.g. value:checkout.completed:lower:10%'],
    [create('--stages', '5', '--guards', 'value:checkout.completed:lower:150%'), 'the margin is a share from 0 to below 1, as 0.1 or 10%'],
    [create('--stages', '5', '--guards', 'value:a:higher,value:a:lower'), '--guards: "value:a" is given twice'],
    [create('--stages', '5', '--guards', 'errors,event:'), '--guards: unknown guard "event:"'],
    [create('--stages', '5', '--guards', 'p99,p99'), '--guards: "p99" is given twice'],
    [create('--stages', '5', '--alpha', '0.7'), '--alpha: expected the chance of rolling back a healthy treatment, above 0 and at most 0.5 (e.g. --alpha 0.05), got "0.7"'],
    [create('--stages', '5', '--alpha', 'low'), '--alpha: expected the chance of rolling back a healthy treatment'],
    [create('--stages', '5', '--approval', '0'), '--approval: expected stage numbers (1 is the first stage) separated by commas, e.g. --approval 2,3, got "0"'],
    [create('--stages', '5,20', '--approval', '3'), '--approval: there is no stage 3: --stages has 2 stages (numbered from 1)'],
    [create('--stages', '5,100', '--max-error-rate', '2'), '--max-error-rate: expected a rate above 0 and at most 1, as 0.05 or 5%, got "2"'],
    [create('--stages', '5,100', '--max-p99-ms', 'fast'), '--max-p99-ms: "fast" is not a duration (a number with ms, s, m or h: 90s, 15m, 1h30m), e.g. --max-p99-ms 800'],
    [create('--stages', '5', '--min-requests', '-1'), '--min-requests: expected a whole number from 0 to 1000000000, got "-1"'],
    [create('--stages', '5', '--min-units', 'many'), '--min-units: expected a whole number from 0 to 1000000000, got "many"'],
    [create('--stages', '5:15m,100:1h'), 'stage 2 (100%) has no control left to compare with; give it absolute limits with --max-error-rate and/or --max-p99-ms, e.g. --max-error-rate 0.05 --max-p99-ms 800'],
    [create('--stages', '0:1h,5:15m'), 'stage 1 (0%) is a pilot stage: only targeting rules serve the treatment there, so nothing is randomized to compare with; give it absolute limits with --pilot-max-error-rate'],
    [create('--stages', '5,50', '--max-error-rate', '0.05'), '--max-error-rate and --max-p99-ms guard the 0% and 100% stages, and --stages has neither (5%, 50%)'],
    [create('--stages', '5,100', '--max-error-rate', '0.05', '--pilot-max-p99-ms', '500'), '--pilot-max-error-rate and --pilot-max-p99-ms guard a pilot stage (0%, first in --stages), and --stages has none'],
    [['plan', 'create', 'fast-payment', '--stages', '5'], 'plan create needs --treatment, --control (or --file plan.json), e.g. rollgate plan create fast-payment --treatment on --control off --stages 5:15m,20:30m,50:1h,100:1h --max-error-rate 0.05'],
    [['plan', 'create'], 'plan create needs <flag>, --treatment, --control, --stages (or --file plan.json)'],
    [['plan', 'create', '--file', 'plan.json', '--treatment', 'on'], '--file gives the whole plan: leave out --treatment (or edit the file)'],
    [['plan', 'pause', 'fast-payment', '--expected-plan-version', 'latest'], 'expected a version number (a whole number >= 0), got "latest"'],
    [['--write-id', 'w-1', 'plan', 'rollback', 'fast-payment'], 'plan commands do not take --write-id'],
    [['plan', 'start'], "error: missing required argument 'flag'"],
    [['plan', 'bogus'], "error: unknown command 'bogus'"],
    [['controller', '--interval', '5'], '--interval: "5" has no unit: write it with ms, s, m or h, e.g. --interval 5s'],
    [['controller', '--interval', '0ms'], '--interval: expected a duration from 1ms to 24 days (e.g. --interval 5s), got "0ms"'],
    [['controller', '--interval', '5s', '--lease-ttl', '5s'], '--lease-ttl (5000 ms) must be longer than --interval (5000 ms): the lease is renewed once per tick; e.g. --interval 5s --lease-ttl 15s'],
    [['controller', '--name', 'two words'], '--name: 1-64 printable characters without spaces'],
  ];
  it.each(cases)('%j', async (args, message) => {
    const deps = fakeDeps();
    expect(await runCli(args, deps)).toBe(2);
    expect(deps.out).toBe('');
    expect(deps.err).toContain(message);
    expect(deps.opened).toBe(0);
  });

  it('the real bin: exit 2 and the message, human and --json', async () => {
    const env = newEnv();
    const [human, machine] = await Promise.all([
      cli(env, ['plan', 'create', 'fast-payment', '--treatment', 'on', '--control', 'off', '--stages', '5:15m,100:1h']),
      cli(env, ['plan', 'create', 'fast-payment', '--treatment', 'on', '--control', 'off', '--stages', '5:15m,100:1h', '--json']),
    ]);
    expect(human).toMatchObject({ code: 2, stdout: '' });
    expect(human.stderr).toContain('rollgate: stage 2 (100%) has no control left to compare with; give it absolute limits with --max-error-rate');
    expect(machine).toMatchObject({ code: 2, stdout: '' });
    expect(JSON.parse(machine.stderr)).toMatchObject({ error: { exitCode: 2, code: 'ERR_ROLLGATE_USAGE', message: expect.stringContaining('stage 2 (100%) has no control left') } });
  });
});

describe('plan actions', () => {
  it('start sets the split to the first stage; pause, resume, approve, advance, rollback each audited with the actor and reason', async () => {
    const env = newEnv();
    const store = await seeded(env);
    ok(await cli(env, ['plan', 'create', 'fast-payment', ...RAMP, '--approval', '1']));
    const started = await cli(env, ['plan', 'start', 'fast-payment', '--reason', 'pilot went well']);
    expect(ok(started).stdout).toBe('fast-payment: plan started at stage 1/4 (5%): split set to 5% "on" (plan version 3)\n');
    expect(started.stderr).toContain('warning: no rollout controller is running in env'); // none here
    expect(await treatmentPercent(store)).toBe(5);

    const pause = await cli(env, ['plan', 'pause', 'fast-payment', '--reason', 'marketing freeze', '--expected-plan-version', '3'], { actor: 'bob' });
    expect(ok(pause).stdout).toBe('fast-payment: plan paused at stage 1/4 (5%); the split stays at 5% (plan version 4)\n');
    const resumed = json<Plan>(await cli(env, ['plan', 'resume', 'fast-payment', '--json'], { actor: 'cy' }));
    expect(resumed).toEqual(await new Rollouts({ store }).get('fast-payment'));
    expect(resumed).toMatchObject({ state: 'running', stage: 0, applied: true, holdReason: null, last: { action: 'resume', actor: 'cy' } });
    const approve = await cli(env, ['plan', 'approve', 'fast-payment', '--reason', 'numbers look fine'], { actor: 'dee' });
    expect(ok(approve).stdout).toMatch(/^fast-payment: stage 1\/4 \(5%\) approved: the controller advances it once it is healthy \(plan version \d+\)\n$/);
    const advance = await cli(env, ['plan', 'advance', 'fast-payment', '--reason', 'confident'], { actor: 'eve' });
    expect(ok(advance).stdout).toMatch(/^fast-payment: advanced to stage 2\/4 \(20%\): split set to 20% "on" \(plan version \d+\)\n$/);
    expect(await treatmentPercent(store)).toBe(20);
    const rollback = await cli(env, ['plan', 'rollback', 'fast-payment', '--reason', 'support tickets'], { actor: 'fay' });
    expect(ok(rollback).stdout).toMatch(/^fast-payment: plan rolled back at stage 2\/4 \(20%\): the split serves "off" to everyone in it \(0% "on"\) \(plan version \d+\)\n$/);
    expect(await treatmentPercent(store)).toBe(0);

    const audit = (await store.audit('fast-payment', { limit: 100 })).reverse();
    expect(audit.filter((e) => e.kind === 'plan').map((e) => [e.action, e.actor, e.reason])).toEqual([
      ['create', 'ada', ''],
      ['start', 'ada', 'pilot went well'],
      ['pause', 'bob', 'marketing freeze'],
      ['resume', 'cy', ''],
      ['approve', 'dee', 'numbers look fine'],
      ['advance', 'eve', 'confident'],
      ['rollback', 'fay', 'support tickets'],
    ]);
    // the flag writes the plan made, by the same people
    expect(audit.filter((e) => e.kind === 'flag' && e.actor !== 'seed').map((e) => [e.action, e.actor, e.reason])).toEqual([
      ['rollout', 'ada', 'plan stage 1/4: 5% — pilot went well'],
      ['rollout', 'eve', 'plan stage 2/4: 20% — confident'],
      ['rollback', 'fay', 'plan rolled back — support tickets'],
    ]);
  });

  it('exit 4 when the state does not allow the action or the plan moved (--expected-plan-version), 5 without a plan; nothing written', async () => {
    const env = newEnv();
    const store = await seeded(env);
    ok(await cli(env, ['plan', 'create', 'fast-payment', ...RAMP]));
    ok(await cli(env, ['plan', 'start', 'fast-payment']));
    const before = await new Rollouts({ store }).get('fast-payment');
    const [resume, moved, movedJson, approve, missing, missingJson] = await Promise.all([
      cli(env, ['plan', 'resume', 'fast-payment']),
      cli(env, ['plan', 'pause', 'fast-payment', '--expected-plan-version', '2']),
      cli(env, ['plan', 'pause', 'fast-payment', '--expected-plan-version', '2', '--json']),
      cli(env, ['plan', 'approve', 'fast-payment']),
      cli(env, ['plan', 'status', 'checkout']),
      cli(env, ['plan', 'rollback', 'checkout', '--json']),
    ]);
    expect([resume.code, resume.stdout, resume.stderr]).toEqual([4, '', 'rollgate: cannot resume the plan of "fast-payment": it is running (resume needs paused) (nothing was written)\n']);
    expect([moved.code, moved.stderr]).toEqual([4, 'rollgate: the plan of "fast-payment" is at version 3, not the expected 2: someone else changed it; reload and retry (nothing was written)\n']);
    expect(JSON.parse(movedJson.stderr)).toEqual({ error: { exitCode: 4, code: 'ERR_ROLLGATE_PLAN_CONFLICT', message: 'the plan of "fast-payment" is at version 3, not the expected 2: someone else changed it; reload and retry (nothing was written)' } });
    expect([approve.code, approve.stderr]).toEqual([4, 'rollgate: stage 1 (5%) of "fast-payment" does not need approval (nothing was written)\n']);
    expect([missing.code, missing.stderr]).toEqual([5, 'rollgate: flag "checkout" has no rollout plan; create one with `rollgate plan create`\n']);
    expect(JSON.parse(missingJson.stderr)).toMatchObject({ error: { exitCode: 5, code: 'ERR_ROLLGATE_NOT_FOUND' } });
    expect(await new Rollouts({ store }).get('fast-payment')).toEqual(before);
  });

  it('plan list: one line per plan; --json has the plans', async () => {
    const env = newEnv();
    const store = await seeded(env);
    await store.putFlag('checkout', { ...fastPayment, targeting: { fractional: [['on', 0], ['off', 100]] } }, { actor: 'seed' });
    expect(ok(await cli(env, ['plan', 'list'])).stdout).toBe('');
    ok(await cli(env, ['plan', 'create', 'fast-payment', ...RAMP]));
    ok(await cli(env, ['plan', 'create', 'checkout', '--treatment', 'on', '--control', 'off', '--stages', '10:1h,50:1h']));
    ok(await cli(env, ['plan', 'start', 'checkout']));
    ok(await cli(env, ['plan', 'pause', 'checkout', '--reason', 'freeze'], { actor: 'bob' }));
    const [human, machine] = await Promise.all([cli(env, ['plan', 'list']), cli(env, ['plan', 'list', '--json'])]);
    expect(ok(human).stdout.split('\n')).toEqual([
      expect.stringMatching(/^FLAG +STATE +STAGE +VARIANTS +STAGES +PLAN VERSION +NOTE$/),
      expect.stringMatching(/^checkout +paused +stage 1\/2 \(10%\) +"on" vs "off" +10→50% +4 +paused by bob: freeze$/),
      expect.stringMatching(/^fast-payment +draft +stage 1\/4 \(5%\) +"on" vs "off" +5→20→50→100% +1$/),
      '',
    ]);
    const listed = json<{ env: string; plans: Plan[] }>(machine);
    expect(listed.env).toBe(env);
    expect(listed.plans.map((p) => [p.flag, p.state])).toEqual([
      ['checkout', 'paused'],
      ['fast-payment', 'draft'],
    ]);
  });
});

describe('plan status', () => {
  /** A running plan with evidence: traffic recorded and a controller ticked, on a fake clock. */
  async function planWithEvidence(env: string): Promise<{ store: RedisFlagStore; plan: Plan }> {
    const store = await seeded(env);
    const clock = { ms: Date.UTC(2026, 11, 1, 9, 0, 0) };
    const now = () => clock.ms;
    const controller = new RolloutController({ store, now, lagSec: 0, name: 'test' });
    cleanups.push(() => controller.stop());
    const recorder = new OutcomeRecorder({ store, now, flushIntervalMs: 2 ** 31 - 1 });
    cleanups.push(() => recorder.close());
    await controller.rollouts.create(
      {
        flag: 'fast-payment',
        treatment: 'on',
        control: 'off',
        stages: [
          { percent: 20, minDurationSec: 600, minRequests: 500, minUnits: 50 },
          { percent: 100, minDurationSec: 600, absolute: { maxErrorRate: 0.05 } },
        ],
        guards: [{ metric: 'errors' }, { metric: 'latency', quantile: 0.99 }],
      },
      { actor: 'ada' },
    );
    await controller.rollouts.start('fast-payment', { actor: 'ada' });
    // 20% of the split: 10 treatment and 40 control requests a second, 2% failing in each arm.
    // Each second is recorded while the clock is in it; a tick reads the seconds before the current one.
    let t = 0;
    let c = 0;
    const traffic = async (seconds: number) => {
      for (let s = 0; s < seconds; s++) {
        for (let i = 0; i < 10; i++, t++) recorder.recordRequest([{ flagKey: 'fast-payment', variant: 'on', split: true, unit: `t-${t % 100}` }], { error: t % 50 === 0, durationMs: 30 });
        for (let i = 0; i < 40; i++, c++) recorder.recordRequest([{ flagKey: 'fast-payment', variant: 'off', split: true, unit: `c-${c % 200}` }], { error: c % 50 === 0, durationMs: 20 + (c % 10) });
        await recorder.flush();
        clock.ms += 1000;
      }
    };
    await traffic(60);
    await controller.tick(); // freezes the latency thresholds from the control
    await traffic(30);
    await controller.tick();
    const plan = await controller.rollouts.get('fast-payment');
    expect(plan).toMatchObject({ state: 'running', stage: 0, holdReason: 'waiting: 90 s of 10 min' });
    return { store, plan };
  }

  it('shows the stage timeline, the hold reason, each guard against its threshold and the arms (human and --json)', async () => {
    const env = newEnv();
    const { plan } = await planWithEvidence(env);
    const [human, machine] = await Promise.all([cli(env, ['plan', 'status', 'fast-payment']), cli(env, ['plan', 'status', 'fast-payment', '--json'])]);

    const view = json<PlanStatusView>(machine);
    const [errors, latency] = plan.evidence!.guards;
    expect(view).toEqual({
      env,
      flag: 'fast-payment',
      state: 'running',
      stage: 1,
      percent: 20,
      holdReason: 'waiting: 90 s of 10 min',
      stages: [
        { number: 1, percent: 20, minDurationSec: 600, minRequests: 500, minUnits: 50, approval: false, approved: false, absolute: null, status: 'current' },
        { number: 2, percent: 100, minDurationSec: 600, minRequests: 100, minUnits: 10, approval: false, approved: false, absolute: { maxErrorRate: 0.05 }, status: 'next' },
      ],
      evidenceThreshold: 40,
      guards: [
        {
          guard: { metric: 'errors' },
          name: 'errors',
          control: { n: 3600, bad: 72, rate: 0.02 },
          treatment: { n: 900, bad: 18, rate: 0.02 },
          evidence: errors!.evidence,
          threshold: 40,
          ratioLowerBound: errors!.ratioLowerBound,
          regressed: false,
        },
        {
          guard: { metric: 'latency', quantile: 0.99 },
          name: 'p99 latency',
          // observed from the second tick on, once the thresholds were frozen
          control: { n: 1200, bad: latency!.control.bad, rate: latency!.control.bad / 1200 },
          treatment: { n: 300, bad: latency!.treatment.bad, rate: latency!.treatment.bad / 300 },
          evidence: latency!.evidence,
          threshold: 40,
          ratioLowerBound: latency!.ratioLowerBound,
          regressed: false,
        },
      ],
      arms: {
        treatment: { requests: 900, errors: 18, errorRate: 0.02, p99Ms: quantileMs(plan.evidence!.stage.treatment.histogram, 0.99), units: plan.evidence!.stage.treatment.units },
        control: { requests: 3600, errors: 72, errorRate: 0.02, p99Ms: quantileMs(plan.evidence!.stage.control.histogram, 0.99), units: plan.evidence!.stage.control.units },
        pilot: { requests: 0, errors: 0, errorRate: null, p99Ms: null, units: 0 },
      },
      latencyThresholdsMs: { p95: expect.any(Number), p99: expect.any(Number), from: 'control' },
      plan,
    });

    const lines = ok(human).stdout.split('\n');
    const p99 = (h: number[]) => `${Math.round(quantileMs(h, 0.99)!)} ms`;
    expect(lines).toEqual([
      `plan of "fast-payment" (env "${env}"): running, stage 1/2 (20%), split 20% "on" (plan version ${plan.planVersion})`,
      '  treatment "on" vs control "off"; guards errors, p99 latency; alpha 0.05; created 2026-12-01T09:00:00.000Z by ada; started 2026-12-01T09:00:00.000Z',
      'holding: waiting: 90 s of 10 min',
      'last: hold by controller:test@1 at 2026-12-01T09:01:00.000Z: waiting: 60 s of 10 min',
      'stages:',
      expect.stringMatching(/^ {2}# +SPLIT +MIN TIME +MIN REQUESTS +MIN UNITS +STATUS +NOTES$/),
      expect.stringMatching(/^ {2}1 +20% +10 min +500 +50 +current +since 2026-12-01T09:00:00\.000Z$/),
      expect.stringMatching(/^ {2}2 +100% +10 min +100 +10 +next +limits: error rate ≤ 5\.0%$/),
      'guards (roll back when evidence ≥ 40 = 2 guards / alpha 0.05):',
      expect.stringMatching(/^ {2}GUARD +CONTROL BAD +TREATMENT BAD +EVIDENCE +RATIO ≥$/),
      expect.stringMatching(/^ {2}errors +72\/3600 \(2\.0%\) +18\/900 \(2\.0%\) +\d+(\.\d+)? \/ 40 +\d\.\d\d×$/),
      expect.stringMatching(new RegExp(`^ {2}p99 latency +${latency!.control.bad}/1200 \\(\\d+\\.\\d+%\\) +${latency!.treatment.bad}/300 \\(\\d+\\.\\d+%\\) +\\d+(\\.\\d+)? / 40 +\\d\\.\\d\\d×$`)),
      expect.stringMatching(/^ {2}latency thresholds: p95 \d+ ms, p99 \d+ ms \(frozen from the control arm\)$/),
      'current stage 1/2 (20%), per arm:',
      expect.stringMatching(/^ {2}ARM +REQUESTS +ERRORS +P99 +UNITS$/),
      expect.stringMatching(new RegExp(`^ {2}treatment +900 +18 \\(2\\.0%\\) +${p99(plan.evidence!.stage.treatment.histogram)} +${plan.evidence!.stage.treatment.units}$`)),
      expect.stringMatching(new RegExp(`^ {2}control +3600 +72 \\(2\\.0%\\) +${p99(plan.evidence!.stage.control.histogram)} +${plan.evidence!.stage.control.units}$`)),
      '',
    ]);
  });

  it('shows a value guard by its values and its comparison in words, not as bad counts', async () => {
    const env = newEnv();
    const store = await seeded(env);
    const clock = { ms: Date.UTC(2026, 11, 1, 9, 0, 0) };
    const now = () => clock.ms;
    const controller = new RolloutController({ store, now, lagSec: 0, name: 'test' });
    cleanups.push(() => controller.stop());
    const recorder = new OutcomeRecorder({ store, now, flushIntervalMs: 2 ** 31 - 1 });
    cleanups.push(() => recorder.close());
    const guard = { metric: 'value' as const, name: 'checkout.completed', margin: 0.1, unit: 'ms', minSamples: 20 };
    const stages = [{ percent: 50, minDurationSec: 600 }, { percent: 100, minDurationSec: 600, absolute: { maxErrorRate: 0.05 } }];
    await controller.rollouts.create({ flag: 'fast-payment', treatment: 'on', control: 'off', stages, guards: [guard] }, { actor: 'ada' });
    await controller.rollouts.start('fast-payment', { actor: 'ada' });
    for (let s = 0; s < 120; s++) {
      recorder.recordRequest([{ flagKey: 'fast-payment', variant: 'on', split: true, unit: `t-${s}` }], { error: false, durationMs: 20 });
      recorder.recordEvent('checkout.completed', [{ flagKey: 'fast-payment', variant: 'on', split: true, unit: `t-${s}` }], 8000 + ((s * 37) % 900));
      recorder.recordEvent('checkout.completed', [{ flagKey: 'fast-payment', variant: 'off', split: true, unit: `c-${s}` }], 10_000 + ((s * 53) % 1100));
      await recorder.flush();
      clock.ms += 1000;
    }
    await controller.tick();
    const lines = ok(await cli(env, ['plan', 'status', 'fast-payment'])).stdout.split('\n');
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}value checkout\.completed +1\d\d values +1\d\d values +\S+ \/ 20 +–$/));
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}checkout\.completed \d+% faster \(95% interval \d+–\d+%\), \d+ values per arm$/));
  });

  it('--watch prints the status again when the plan changes, and exits 0 on SIGTERM (human) and SIGINT (--json)', async () => {
    const env = newEnv();
    await seeded(env);
    ok(await cli(env, ['plan', 'create', 'fast-payment', ...RAMP]));
    ok(await cli(env, ['plan', 'start', 'fast-payment']));
    const args = ['--redis', redis.url, '--env', env, 'plan', 'status', 'fast-payment', '--watch'];
    const human = spawnBin(args);
    const machine = spawnBin([...args, '--json']);
    try {
      await Promise.all([human.waitFor('stderr', `watching the plan of "fast-payment" in env "${env}" (Ctrl-C to stop)`), machine.waitFor('stderr', '"status":"watching"')]);
      expect(human.stdout()).toMatch(/^plan of "fast-payment" \(env "[^"]+"\): running, stage 1\/4 \(5%\), split 5% "on" \(plan version 3\)\n/);
      expect(JSON.parse(machine.stderr().trim())).toEqual({ status: 'watching', env, flag: 'fast-payment', planVersion: 3 });
      ok(await cli(env, ['plan', 'pause', 'fast-payment', '--reason', 'freeze'], { actor: 'bob' }));
      await Promise.all([human.waitFor('stdout', 'holding: paused by bob: freeze'), machine.waitFor('stdout', /\n.*\n/)]);
      const blocks = human.stdout().split('\n\n');
      expect(blocks).toHaveLength(2);
      expect(blocks[1]).toMatch(/^plan of "fast-payment" \(env "[^"]+"\): paused, stage 1\/4 \(5%\), split 5% "on" \(plan version 4\)\n/);
      const records = machine.stdout().trim().split('\n').map((line) => JSON.parse(line) as PlanStatusView);
      expect(records.map((r) => [r.state, r.plan.planVersion, r.holdReason])).toEqual([
        ['running', 3, null],
        ['paused', 4, 'paused by bob: freeze'],
      ]);
    } finally {
      expect(await human.stop('SIGTERM')).toBe(0);
      expect(await machine.stop('SIGINT')).toBe(0);
    }
    expect(human.stderr()).toContain('stopped');
  });

  it('--watch started before the plan exists waits for it, then prints it', async () => {
    const env = newEnv();
    await seeded(env);
    const watcher = spawnBin(['--redis', redis.url, '--env', env, 'plan', 'status', 'fast-payment', '--watch']);
    try {
      await watcher.waitFor('stderr', 'flag "fast-payment" has no rollout plan yet; waiting for one');
      ok(await cli(env, ['plan', 'create', 'fast-payment', ...RAMP]));
      await watcher.waitFor('stdout', /^plan of "fast-payment" \(env "[^"]+"\): draft, stage 1\/4 \(5%\)/);
    } finally {
      expect(await watcher.stop('SIGTERM')).toBe(0);
    }
  });
});

describe('rollgate controller', () => {
  it('rolls back a plan whose treatment fails, logs it, and releases its lease on SIGTERM (exit 0)', async () => {
    const env = newEnv();
    const store = await seeded(env);
    ok(await cli(env, ['plan', 'create', 'fast-payment', '--treatment', 'on', '--control', 'off', '--stages', '50:1h,100:1h', '--max-error-rate', '0.05']));
    ok(await cli(env, ['plan', 'start', 'fast-payment']));
    expect(await treatmentPercent(store)).toBe(50);
    const controller = spawnBin(['--redis', redis.url, '--env', env, '--json', 'controller', '--interval', '200ms', '--lease-ttl', '5s', '--name', 'cli-test']);
    try {
      await controller.waitFor('stderr', '"status":"leader"');
      expect(await admin.exists(flagStoreKeys(env).lease)).toBe(1);
      // the apps' recorder: the treatment fails, the control does not
      const recorder = new OutcomeRecorder({ store, flushIntervalMs: 2 ** 31 - 1 });
      cleanups.push(() => recorder.close());
      for (let i = 0; i < 60; i++) {
        recorder.recordRequest([{ flagKey: 'fast-payment', variant: 'on', split: true, unit: `u-${i}` }], { error: true, durationMs: 40 });
        recorder.recordRequest([{ flagKey: 'fast-payment', variant: 'off', split: true, unit: `v-${i}` }], { error: false, durationMs: 40 });
      }
      await recorder.flush();
      await controller.waitFor('stdout', /"action":"rollback"/);
    } finally {
      expect(await controller.stop('SIGTERM')).toBe(0);
    }
    const line = controller
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>)
      .find((l) => l.action === 'rollback')!;
    expect(line).toEqual({
      time: expect.any(String),
      env,
      flag: 'fast-payment',
      action: 'rollback',
      reason: expect.stringMatching(/^circuit breaker: 60 of 60 treatment requests failed \(100\.0%\) in the last 60 s, control 0\.00% \(0\/60\)$/),
      actor: expect.stringMatching(/^controller:cli-test@\d+$/),
    });
    const plan = await new Rollouts({ store }).get('fast-payment');
    expect(plan).toMatchObject({ state: 'rolled_back', applied: true, last: { action: 'rollback', actor: line.actor } });
    expect(await treatmentPercent(store)).toBe(0);
    expect(await admin.exists(flagStoreKeys(env).lease)).toBe(0); // released, not left to expire
    const statuses = controller.stderr().trim().split('\n').map((l) => (JSON.parse(l) as { status?: string }).status).filter(Boolean);
    expect(statuses[0]).toBe('started');
    expect(statuses[statuses.length - 1]).toBe('stopped');
  });

  it('prints human lines, and exits 0 on SIGINT while another controller holds the lease', async () => {
    const env = newEnv();
    await seeded(env);
    const args = ['--redis', redis.url, '--env', env, 'controller', '--interval', '200ms', '--lease-ttl', '5s'];
    const first = spawnBin([...args, '--name', 'one']);
    try {
      await first.waitFor('stderr', /holding the lease of env "[^"]+" as controller:one@1\n/);
      const second = spawnBin([...args, '--name', 'two']);
      try {
        await second.waitFor('stderr', `another controller holds the lease of env "${env}"; standing by`);
      } finally {
        expect(await second.stop('SIGINT')).toBe(0);
      }
      expect(second.stderr()).toContain('stopped; the lease is released');
      expect(await admin.exists(flagStoreKeys(env).lease)).toBe(1); // still the first one's
    } finally {
      expect(await first.stop('SIGINT')).toBe(0);
    }
    expect(first.stderr()).toMatch(/^controller started for env "[^"]+": every 200 ms, lease 5000 ms \(Ctrl-C to stop\)\n/);
  });
});

describe('Redis unreachable', () => {
  it('exits 6 from plan commands and the controller', async () => {
    const closed = `redis://127.0.0.1:${await freePort()}`;
    const runs = await Promise.all([
      runBin(['--redis', closed, 'plan', 'list']),
      runBin(['--redis', closed, '--actor', 'x', 'plan', 'pause', 'fast-payment', '--json']),
      runBin(['--redis', closed, 'controller']),
    ]);
    for (const run of runs) expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 6, stdout: '' });
    expect(runs[0]!.stderr).toBe(`rollgate: Redis at ${closed} is unreachable: connection refused\n`);
    expect(JSON.parse(runs[1]!.stderr)).toMatchObject({ error: { exitCode: 6, code: 'ERR_ROLLGATE_STORE_UNAVAILABLE' } });
  });
});
