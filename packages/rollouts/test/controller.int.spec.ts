import { Redis } from 'ioredis';
import { RedisFlagStore, type AuditEntry } from '@rollgate/redis';
import { OutcomeRecorder, PlanStateError, Rollouts, PlanValidationError, RolloutController, type Plan, type PlanSpec, type TickResult } from '@rollgate/rollouts';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { FakeClock, Traffic, type ArmBehaviour } from './support/traffic';
import { stratumOf } from '../src/controller';

// The controller against a real redis-server, on a fake clock: real flag writes, real bucketing,
// real per-second buckets; only time is simulated (ticks are called, never waited for).

jest.setTimeout(60_000);

let redis: TestRedis;
let admin: Redis;
let envCounter = 0;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
});
afterAll(async () => {
  admin.disconnect();
  await redis.stop();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const actor = { actor: 'ada' };
/** The pilot story: admins always get the fast payment; everyone else by the tail split. */
const fastPayment = {
  state: 'ENABLED',
  variants: { on: true, off: false },
  defaultVariant: 'off',
  targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { fractional: [['on', 0], ['off', 100]] }] },
};

const ramp: PlanSpec = {
  flag: 'fast-payment',
  treatment: 'on',
  control: 'off',
  stages: [
    { percent: 5, minDurationSec: 60, minRequests: 30, minUnits: 10 },
    { percent: 20, minDurationSec: 60, minRequests: 50 },
    { percent: 50, minDurationSec: 60, minRequests: 50 },
    { percent: 100, minDurationSec: 60, absolute: { maxErrorRate: 0.05 } },
  ],
  guards: [{ metric: 'errors' }, { metric: 'latency', quantile: 0.99 }],
};

interface Harness {
  store: RedisFlagStore;
  clock: FakeClock;
  recorder: OutcomeRecorder;
  controller: RolloutController;
  traffic: (variants: Record<string, ArmBehaviour>, extra?: { rps?: number; context?: (i: number) => Record<string, unknown>; seed?: number }) => Traffic;
}

async function harness(definition: unknown = fastPayment): Promise<Harness> {
  const env = `rollouts-${process.pid}-${++envCounter}`;
  const store = new RedisFlagStore({ redis: redis.url, env, pollIntervalMs: 60_000 });
  cleanups.push(() => store.close());
  await store.putFlag('fast-payment', definition, actor);
  const clock = new FakeClock(Date.UTC(2026, 11, 1, 9, 0, 0));
  const recorder = new OutcomeRecorder({ store, now: clock.now, flushIntervalMs: 2 ** 31 - 1 });
  cleanups.push(() => recorder.close());
  const controller = new RolloutController({ store, now: clock.now, lagSec: 0, name: 'test' });
  cleanups.push(() => controller.stop());
  const traffic = (variants: Record<string, ArmBehaviour>, extra: { rps?: number; context?: (i: number) => Record<string, unknown>; seed?: number } = {}) =>
    new Traffic({ store, recorder, clock, flag: 'fast-payment', variants, rps: extra.rps ?? 30, ...(extra.context ? { context: extra.context } : {}), seed: extra.seed ?? 7 });
  return { store, clock, recorder, controller, traffic };
}

/** Runs traffic and ticks every 5 simulated seconds until the plan is finished or `maxSec` passed; returns every step taken. */
async function drive(h: Harness, traffic: Traffic, maxSec: number): Promise<TickResult['plans']> {
  const steps: TickResult['plans'] = [];
  for (let t = 0; t < maxSec; t += 5) {
    await traffic.run(5);
    const tick = await h.controller.tick();
    steps.push(...tick.plans);
    await traffic.reload();
    const plan = await h.controller.rollouts.get('fast-payment');
    if (plan.state === 'rolled_back' || plan.state === 'completed' || plan.state === 'paused') break;
  }
  return steps;
}

async function treatmentPercent(store: RedisFlagStore): Promise<number> {
  const def = (await store.load()).flags['fast-payment'] as typeof fastPayment;
  const split = def.targeting.if[2] as { fractional: [string, number][] };
  return split.fractional.find(([v]) => v === 'on')![1];
}

const healthy: Record<string, ArmBehaviour> = { on: { errorRate: 0.01 }, off: { errorRate: 0.01 } };

describe('a running plan', () => {
  it('ramps 5 → 20 → 50 → 100 % by itself while the treatment is as healthy as the control, then completes; every step audited', async () => {
    const h = await harness();
    const rollouts = h.controller.rollouts;
    // an hour of pre-plan traffic: the control's latency quantiles are frozen from it at the start
    const before = h.traffic(healthy);
    await before.run(300);
    await rollouts.create(ramp, { ...actor, reason: 'pilot went well' });
    const started = await rollouts.start('fast-payment', actor);
    expect(started).toMatchObject({ state: 'running', stage: 0, applied: true, thresholds: { from: 'baseline' } });
    expect(await treatmentPercent(h.store)).toBe(5);

    const traffic = h.traffic(healthy, { seed: 11 });
    const steps = await drive(h, traffic, 1800);
    const plan = await rollouts.get('fast-payment');
    expect(plan.state).toBe('completed');
    expect(steps.filter((s) => s.action === 'advance').map((s) => s.reason.replace(/:.*/, ''))).toEqual(['stage 1 (5%) healthy', 'stage 2 (20%) healthy', 'stage 3 (50%) healthy']);
    expect(steps.filter((s) => s.action === 'rollback')).toEqual([]);
    expect(await treatmentPercent(h.store)).toBe(100);
    // the plan's transitions and the flag writes it made, in one audit trail
    const audit = (await h.store.audit('fast-payment', { limit: 200 })).reverse();
    const planActions = audit.filter((e) => e.kind === 'plan').map((e) => e.action);
    expect(planActions.filter((a) => a !== 'hold')).toEqual(['create', 'start', 'advance', 'advance', 'advance', 'complete']);
    const splits = audit.filter((e) => e.kind === 'flag' && e.action === 'rollout').map((e) => ((e.after as typeof fastPayment).targeting.if[2] as { fractional: [string, number][] }).fractional[0]);
    expect(splits).toEqual([['on', 5], ['on', 20], ['on', 50], ['on', 100]]);
    // the controller's writes name it and its lease tenure
    expect(audit.filter((e) => e.action === 'advance').every((e) => /^controller:test@\d+$/.test(e.actor))).toBe(true);
    // the evidence is in the audit entry of each transition
    const advance = audit.find((e) => e.kind === 'plan' && e.action === 'advance')!;
    expect((advance.after as Plan).evidence!.guards.map((g) => g.guard.metric)).toEqual(['errors', 'latency']);
  });

  it('rolls back by itself when the treatment fails twice as often: split to 0 in one flag write, the evidence in the audit', async () => {
    const h = await harness();
    await h.controller.rollouts.create({ ...ramp, stages: [{ percent: 20, minDurationSec: 3600 }, ...ramp.stages.slice(2)] }, actor);
    await h.controller.rollouts.start('fast-payment', actor);
    const steps = await drive(h, h.traffic({ on: { errorRate: 0.08 }, off: { errorRate: 0.02 } }), 1800);
    const rollback = steps.find((s) => s.action === 'rollback');
    expect(rollback?.reason).toMatch(/^error rate regressed: evidence \d+\.\d ≥ 40; treatment \d+\/\d+, control \d+\/\d+; ratio ≥ \d\.\d\d×$/);
    const plan = await h.controller.rollouts.get('fast-payment');
    expect(plan).toMatchObject({ state: 'rolled_back', applied: true });
    expect(plan.evidence!.guards[0]).toMatchObject({ regressed: true });
    // at the moment of detection the bound has only just reached the no-difference ratio
    expect(plan.evidence!.guards[0]!.ratioLowerBound).toBeGreaterThanOrEqual(1);
    expect(await treatmentPercent(h.store)).toBe(0);
    const [flagWrite] = (await h.store.audit('fast-payment', { limit: 5 })).filter((e: AuditEntry) => e.kind === 'flag');
    expect(flagWrite).toMatchObject({ action: 'rollback', reason: expect.stringContaining('plan rolled back — error rate regressed') });
    // admins (the targeting rule) keep their pilot: only the split is rolled back
    expect(((await h.store.load()).flags['fast-payment'] as typeof fastPayment).targeting.if.slice(0, 2)).toEqual(fastPayment.targeting.if.slice(0, 2));
  });

  it('the circuit breaker rolls back a gross error spike without waiting for the test', async () => {
    const h = await harness();
    await h.controller.rollouts.create({ ...ramp, guards: [{ metric: 'latency', quantile: 0.99 }], stages: [{ percent: 50, minDurationSec: 3600 }, ramp.stages[3]!] }, actor);
    await h.controller.rollouts.start('fast-payment', actor);
    const steps = await drive(h, h.traffic({ on: { errorRate: 0.6 }, off: { errorRate: 0.01 } }), 300);
    expect(steps.find((s) => s.action === 'rollback')?.reason).toMatch(/^circuit breaker: \d+ of \d+ treatment requests failed \(\d+\.\d%\) in the last 60 s, control \d+\.\d+% \(\d+\/\d+\)$/);
    expect(await treatmentPercent(h.store)).toBe(0);
  });

  it('holds, never passes, without data; says so; and advances once traffic comes', async () => {
    const h = await harness();
    await h.controller.rollouts.create({ ...ramp, noDataHoldSec: 60 }, actor);
    await h.controller.rollouts.start('fast-payment', actor);
    for (let i = 0; i < 60; i++) {
      h.clock.advance(5000);
      await h.controller.tick();
    }
    const plan = await h.controller.rollouts.get('fast-payment');
    expect(plan).toMatchObject({ state: 'running', stage: 0, holdReason: expect.stringMatching(/^no data: no treatment request for \d+ s/) });
    // one audit entry per kind of hold ("waiting: …", then "no data: …"), not one per tick
    expect((await h.store.audit('fast-payment')).filter((e) => e.action === 'hold').map((e) => e.reason.replace(/:.*/, ''))).toEqual(['no data', 'waiting']);
    await drive(h, h.traffic(healthy), 120);
    expect((await h.controller.rollouts.get('fast-payment')).stage).toBeGreaterThan(0);
  });

  it('says in words what a stage waits for', async () => {
    const h = await harness();
    await h.controller.rollouts.create({ ...ramp, stages: [{ percent: 5, minDurationSec: 900, minRequests: 500, minUnits: 50 }, ramp.stages[3]!] }, actor);
    await h.controller.rollouts.start('fast-payment', actor);
    await h.traffic(healthy).run(60);
    await h.controller.tick();
    const plan = await h.controller.rollouts.get('fast-payment');
    expect(plan.holdReason).toMatch(/^waiting: \d+\/500 treatment requests, \d+\/50 treatment units, 60 s of 15 min(, a latency baseline \(\d+\/1000 control requests\))?$/);
  });

  it('waits for approval where the plan asks for it, then advances', async () => {
    const h = await harness();
    await h.controller.rollouts.create({ ...ramp, stages: [{ percent: 5, minRequests: 10, minUnits: 5, approval: true }, ...ramp.stages.slice(1)], guards: [{ metric: 'errors' }] }, actor);
    await h.controller.rollouts.start('fast-payment', actor);
    await drive(h, h.traffic(healthy), 60);
    expect((await h.controller.rollouts.get('fast-payment')).holdReason).toBe('waiting for approval to go on from stage 1 (5%): `rollgate plan approve fast-payment`');
    await h.controller.rollouts.approve('fast-payment', { actor: 'bo' });
    await drive(h, h.traffic(healthy, { seed: 3 }), 10);
    expect((await h.controller.rollouts.get('fast-payment')).stage).toBe(1);
  });

  it('a pilot stage (targeting only, 0% split) is judged by absolute limits, and rolls back over them', async () => {
    const h = await harness();
    await h.controller.rollouts.create(
      { ...ramp, stages: [{ percent: 0, minDurationSec: 600, minRequests: 20, minUnits: 1, absolute: { maxErrorRate: 0.05 } }, ...ramp.stages] },
      actor,
    );
    await h.controller.rollouts.start('fast-payment', actor);
    // a tenth of the users are admins: the pilot group
    const steps = await drive(h, h.traffic({ on: { errorRate: 0.3 }, off: { errorRate: 0.01 } }, { context: (i) => ({ roles: i % 10 === 0 ? ['admin'] : ['customer'] }) }), 600);
    expect(steps.find((s) => s.action === 'rollback')?.reason).toMatch(/^treatment error rate \d+\.\d% \(\d+\/\d+\) is above the stage's limit of 5\.0%$/);
  });

  it('pauses, saying why, when someone changes the split outside the plan; resume puts the stage back', async () => {
    const h = await harness();
    await h.controller.rollouts.create(ramp, actor);
    await h.controller.rollouts.start('fast-payment', actor);
    const def = (await h.store.load()).flags['fast-payment'] as typeof fastPayment;
    await h.store.putFlag('fast-payment', { ...def, targeting: { if: [...def.targeting.if.slice(0, 2), { fractional: [['on', 60], ['off', 40]] }] } }, { actor: 'bo' });
    const tick = await h.controller.tick();
    expect(tick.plans).toEqual([{ flag: 'fast-payment', action: 'pause', reason: expect.stringMatching(/^the split of "fast-payment" was changed outside the plan \(treatment 60%, the stage says 5%\): paused/) }]);
    expect(await treatmentPercent(h.store)).toBe(60); // not fought over
    await h.controller.rollouts.resume('fast-payment', actor);
    expect(await treatmentPercent(h.store)).toBe(5);
  });

  it('holds while the kill switch has the flag DISABLED, without enabling it', async () => {
    const h = await harness();
    await h.controller.rollouts.create(ramp, actor);
    await h.controller.rollouts.start('fast-payment', actor);
    await h.store.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'ops' });
    const tick = await h.controller.tick();
    expect(tick.plans[0]).toMatchObject({ action: 'hold', reason: expect.stringContaining('DISABLED (kill switch)') });
    expect(((await h.store.load()).flags['fast-payment'] as { state: string }).state).toBe('DISABLED');
  });

  it('re-applies a rollback whose flag write was lost (crash or failover between the two writes)', async () => {
    const h = await harness();
    const rollouts = h.controller.rollouts;
    await rollouts.create(ramp, actor);
    await rollouts.start('fast-payment', actor);
    // the plan says rolled back, the flag still serves 5%
    const plan = await rollouts.get('fast-payment');
    await rollouts.plans.write({ ...plan, state: 'rolled_back', applied: false }, { actor: 'crashed-controller' });
    expect(await treatmentPercent(h.store)).toBe(5);
    expect((await h.controller.tick()).plans).toEqual([{ flag: 'fast-payment', action: 'apply', reason: 're-applied the rollback' }]);
    expect(await treatmentPercent(h.store)).toBe(0);
    expect((await rollouts.get('fast-payment')).applied).toBe(true);
  });
});

describe("users' signals as guards", () => {
  const browserPlan = (guards: PlanSpec['guards']): PlanSpec => ({ ...ramp, guards, stages: [{ percent: 50, minDurationSec: 86_400 }, ramp.stages[3]!] });

  /** Browser signals until the plan is rolled back or `maxSec` passed, ticking every 5 s. */
  async function driveSignals(h: Harness, signals: Parameters<Traffic['signals']>[2], maxSec: number): Promise<TickResult['plans']> {
    const traffic = h.traffic({}, { seed: 5 });
    const steps: TickResult['plans'] = [];
    for (let t = 0; t < maxSec; t += 5) {
      await traffic.signals(5, 4, signals);
      steps.push(...(await h.controller.tick()).plans);
      if ((await h.controller.rollouts.get('fast-payment')).state === 'rolled_back') break;
    }
    return steps;
  }

  it('rolls back when users\' pages throw more often in the treatment (errors per page view, compared per minute)', async () => {
    const h = await harness();
    await h.controller.rollouts.create(browserPlan([{ metric: 'clientErrors' }]), actor);
    await h.controller.rollouts.start('fast-payment', actor);
    const steps = await driveSignals(h, (variant, random) => [{ name: '$pageview' }, ...(random() < (variant === 'on' ? 0.15 : 0.02) ? [{ name: '$client_error' }] : [])], 3600);
    expect(steps.find((s) => s.action === 'rollback')?.reason).toMatch(/^errors in users' pages regressed: evidence \d+\.\d ≥ 20; treatment \d+\/\d+, control \d+\/\d+; ratio ≥ \d\.\d\d×$/);
  });

  it('rolls back on a higher share of negative feedback', async () => {
    const h = await harness();
    await h.controller.rollouts.create(browserPlan([{ metric: 'feedback' }]), actor);
    await h.controller.rollouts.start('fast-payment', actor);
    const sentiment = (p: number, random: () => number) => (random() < p ? 'negative' : random() < 0.5 ? 'neutral' : 'positive');
    const steps = await driveSignals(h, (variant, random) => [{ name: `$feedback.${sentiment(variant === 'on' ? 0.5 : 0.1, random)}` }], 3600);
    expect(steps.find((s) => s.action === 'rollback')?.reason).toMatch(/^negative feedback regressed: /);
  });

  it('words a value comparison ("checkout … faster") while it holds, and rolls back when the treatment is slower by more than the margin', async () => {
    const h = await harness();
    const guard = { metric: 'value' as const, name: 'checkout.completed', margin: 0.05 };
    await h.controller.rollouts.create(browserPlan([guard]), actor);
    await h.controller.rollouts.start('fast-payment', actor);
    // the treatment is 20% faster: the plan holds (a long stage) and says so in words
    const time = (mean: number, random: () => number) => Math.round(mean * Math.exp(0.4 * (random() + random() + random() - 1.5)));
    await driveSignals(h, (variant, random) => [{ name: 'checkout.completed', value: time(variant === 'on' ? 8000 : 10_000, random) }], 1200);
    const faster = await h.controller.rollouts.get('fast-payment');
    expect(faster.state).toBe('running');
    expect(faster.evidence!.guards[0]!.words).toMatch(/^checkout\.completed \d+% faster \(95% interval \d+–\d+%\), [\d,]+ values per arm$/);

    const h2 = await harness();
    await h2.controller.rollouts.create(browserPlan([guard]), actor);
    await h2.controller.rollouts.start('fast-payment', actor);
    const steps = await driveSignals(h2, (variant, random) => [{ name: 'checkout.completed', value: time(variant === 'on' ? 13_000 : 10_000, random) }], 3600);
    expect(steps.find((s) => s.action === 'rollback')?.reason).toMatch(/^checkout\.completed \(lower is better, margin 5%\) regressed: evidence \d+\.\d(e\+\d+)? ≥ 20; checkout\.completed \d+% slower/);
  });
});

describe("users' signals: strata and minimums", () => {
  const quick = (guards: PlanSpec['guards']): PlanSpec => ({
    ...ramp,
    guards,
    stages: [{ percent: 50, minDurationSec: 60, minRequests: 0, minUnits: 0 }, { percent: 100, minDurationSec: 60, minRequests: 0, minUnits: 0, absolute: { maxErrorRate: 0.05 } }],
  });

  it('counts a page error reported seconds after its page view (the same minute), not only errors sent with the view', async () => {
    const h = await harness();
    await h.controller.rollouts.create({ ...quick([{ metric: 'clientErrors' }]), stages: [{ percent: 50, minDurationSec: 86_400 }, ramp.stages[3]!] }, actor);
    await h.controller.rollouts.start('fast-payment', actor);
    const traffic = h.traffic({}, { seed: 7 });
    let calls = 0;
    const perSecond = 4;
    let rolledBack = false;
    for (let t = 0; t < 3600 && !rolledBack; t += 5) {
      // pages load (a view) in even seconds; the treatment's pages throw in the odd second after
      await traffic.signals(5, perSecond, (variant, random) => {
        const odd = Math.floor(calls++ / perSecond) % 2 === 1;
        if (!odd) return [{ name: '$pageview' }];
        return random() < (variant === 'on' ? 0.3 : 0.02) ? [{ name: '$client_error' }] : [];
      });
      rolledBack = (await h.controller.tick()).plans.some((p) => p.action === 'rollback');
    }
    expect(rolledBack).toBe(true);
    const plan = await h.controller.rollouts.get('fast-payment');
    expect(plan.evidence!.guards[0]!.treatment.bad).toBeGreaterThan(0);
  });

  it('holds a randomized stage until a value guard can say something ("not enough data yet"), then advances; minSamples 0 does not wait', async () => {
    const time = (random: () => number) => Math.round(10_000 * Math.exp(0.4 * (random() + random() + random() - 1.5)));
    const run = async (guard: Extract<NonNullable<PlanSpec['guards']>[number], { metric: 'value' }>) => {
      const h = await harness();
      await h.controller.rollouts.create(quick([guard]), actor);
      await h.controller.rollouts.start('fast-payment', actor);
      const traffic = h.traffic({ on: { errorRate: 0 }, off: { errorRate: 0 } }, { seed: 3 });
      const steps: TickResult['plans'] = [];
      for (let t = 0; t < 1200 && !steps.some((s) => s.action === 'advance'); t += 5) {
        await traffic.run(1); // server requests: a plan without them holds for "no data"
        await traffic.signals(4, 2, (_variant, random) => [{ name: 'checkout.completed', value: time(random) }]);
        steps.push(...(await h.controller.tick()).plans);
      }
      return { steps, plan: await h.controller.rollouts.get('fast-payment') };
    };

    const waited = await run({ metric: 'value', name: 'checkout.completed', minSamples: 50 });
    // past the stage's 60 s, the plan still holds for the comparison, and says what it lacks
    const held = waited.steps.filter((s) => s.action === 'hold').map((s) => s.reason);
    expect(held).toContainEqual(expect.stringMatching(/^waiting: checkout\.completed: not enough data yet \(\d+ and \d+ of 50 values per arm\)$/));
    const advanced = waited.steps.find((s) => s.action === 'advance');
    expect(advanced).toBeDefined();
    expect(waited.plan.stage).toBe(1);
    const comparison = (waited.plan.evidence!.guards[0]!.words ?? '');
    expect(comparison).not.toMatch(/not enough data/); // it advanced once the guard had spoken

    const eager = await run({ metric: 'value', name: 'checkout.completed', minSamples: 0 });
    const eagerAdvance = eager.steps.findIndex((s) => s.action === 'advance');
    expect(eagerAdvance).toBeGreaterThanOrEqual(0);
    // the same traffic: without waiting for the guard it advances as soon as the stage's 60 s are over
    expect(eagerAdvance).toBeLessThan(waited.steps.findIndex((s) => s.action === 'advance'));
  });

  it('waits for minSamples page views per arm on a clientErrors guard', async () => {
    const h = await harness();
    await h.controller.rollouts.create(quick([{ metric: 'clientErrors', minSamples: 100 }]), actor);
    await h.controller.rollouts.start('fast-payment', actor);
    const traffic = h.traffic({ on: { errorRate: 0 }, off: { errorRate: 0 } }, { seed: 11 });
    for (let t = 0; t < 65; t += 5) {
      await traffic.run(1);
      await traffic.signals(4, 1, () => [{ name: '$pageview' }]);
    }
    const tick = await h.controller.tick();
    expect(tick.plans[0]).toMatchObject({ action: 'hold', reason: expect.stringMatching(/^waiting: page views \d+ and \d+ of 100 per arm$/) });
  });

  it('keeps strata apart where stages begin mid-minute, in order, however many begin in one minute', () => {
    const minute = (m: number) => m * 1024;
    // stage 1 entered 25 s into minute 2
    expect([60, 119, 120, 144, 145, 179, 180].map((s) => stratumOf(s, 145, 1))).toEqual([minute(1), minute(1), minute(2), minute(2), minute(2) + 1, minute(2) + 1, minute(3) + 1]);
    // then stage 2 entered 40 s into the same minute: its seconds come after stage 1's
    expect([150, 159, 160, 179].map((s) => stratumOf(s, 160, 2))).toEqual([minute(2) + 1, minute(2) + 1, minute(2) + 2, minute(2) + 2]);
  });

  it('goes on comparing a value guard when several stages begin in one minute', async () => {
    const h = await harness();
    const stage = (percent: number) => ({ percent, minDurationSec: 5, minRequests: 0, minUnits: 0 });
    const guards: PlanSpec['guards'] = [{ metric: 'value', name: 'checkout.completed', minSamples: 0 }, { metric: 'errors' }];
    await h.controller.rollouts.create({ ...ramp, guards, stages: [stage(20), stage(50), stage(80), { ...stage(100), absolute: { maxErrorRate: 0.05 } }] }, actor);
    await h.controller.rollouts.start('fast-payment', actor);
    const traffic = h.traffic({ on: { errorRate: 0 }, off: { errorRate: 0 } }, { seed: 5 });
    const steps: TickResult['plans'] = [];
    for (let t = 0; t < 50; t += 2) {
      await traffic.run(1);
      await traffic.signals(1, 4, (_variant, random) => [{ name: 'checkout.completed', value: 5000 + Math.round(1000 * random()) }]);
      steps.push(...(await h.controller.tick()).plans);
    }
    // three stages of 5 s, all within the plan's first minute: each advance needs a tick that read
    // (and compared) every second before it
    expect(steps.filter((s) => s.action === 'advance').length).toBeGreaterThanOrEqual(3);
    const plan = await h.controller.rollouts.get('fast-payment');
    expect(plan.stage).toBe(3);
    expect(plan.evidence!.guards[0]!.treatment.n).toBeGreaterThan(0);
  });
});

describe('plans by hand', () => {
  it('refuses a bad plan with the field and what to do, and writes nothing', async () => {
    const h = await harness();
    const rollouts = h.controller.rollouts;
    const cases: [unknown, string | RegExp][] = [
      [{ ...ramp, treatment: 'fast' }, 'treatment: flag "fast-payment" has no variant "fast" (variants: on, off)'],
      [{ ...ramp, stages: [{ percent: 20 }, { percent: 5 }] }, "stages[1].percent: must be above the previous stage's 20%: a plan only ramps up (rollback is its own action)"],
      [{ ...ramp, stages: [{ percent: 100 }] }, /^stages\[0\]\.absolute: at 100% there is no control left/],
      [{ ...ramp, stages: [{ percent: 0 }] }, /^stages\[0\]\.absolute: a pilot stage \(percent 0\) serves the treatment only through targeting rules/],
      [{ ...ramp, guards: [{ metric: 'cpu' }] }, 'guards[0].metric: must be "errors", "latency", "event", "clientErrors", "feedback" or "value", got "cpu"'],
      [{ ...ramp, alpha: 0 }, 'alpha: must be a number above 0 and at most 0.5, got 0'],
      [{ ...ramp, stages: [{ percent: 5, minRequests: -1 }] }, 'stages[0].minRequests: must be an integer from 0 to 1000000000, got -1'],
      [{ ...ramp, evil: true }, 'plan: unknown field "evil" (allowed: flag, treatment, control, stages, guards, alpha, breaker, noDataHoldSec, baselineSec)'],
      [{ ...ramp, flag: 'no-such-flag' }, 'flag "no-such-flag" does not exist'],
      [null, 'plan: must be an object { flag, treatment, control, stages, … }'],
    ];
    for (const [spec, message] of cases) {
      const err = await rollouts.create(spec, actor).catch((e: unknown) => e as Error);
      expect([spec, (err as Error).message]).toEqual([spec, typeof message === 'string' ? message : expect.stringMatching(message)]);
    }
    expect(await rollouts.list()).toEqual([]);
    expect((await h.store.audit()).filter((e) => e.kind === 'plan')).toEqual([]);
  });

  it('refuses a plan for a flag whose split it cannot ramp, with the reason', async () => {
    // the split applies to one tenant only: which population to ramp is the owner's call, not the plan's
    const h = await harness({ ...fastPayment, targeting: { if: [{ '==': [{ var: 'tenant' }, 'atlas'] }, { fractional: [['on', 10], ['off', 90]] }, 'off'] } });
    const err = await h.controller.rollouts.create(ramp, actor).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlanValidationError);
    expect((err as Error).message).toBe(
      'flag: flag "fast-payment": nothing to roll out: its split is at targeting.if[1], not at the tail (the targeting itself, or the else branch of a top-level "if"). Add a split with `rollgate flags push`, e.g. make the else branch {"fractional": [["on", 5], ["off", 95]]}',
    );
    expect(await h.controller.rollouts.list()).toEqual([]);
  });

  it('moves through its states only as allowed, each move audited with the actor', async () => {
    const h = await harness();
    const rollouts = h.controller.rollouts;
    await rollouts.create(ramp, actor);
    await expect(rollouts.pause('fast-payment', actor)).rejects.toThrow(new PlanStateError('cannot pause the plan of "fast-payment": it is draft (pause needs running)'));
    await rollouts.start('fast-payment', actor);
    await expect(rollouts.create(ramp, actor)).rejects.toThrow('flag "fast-payment" already has a running plan; roll it back or let it complete before creating another');
    await rollouts.pause('fast-payment', { actor: 'bo', reason: 'marketing freeze' });
    expect((await rollouts.get('fast-payment')).holdReason).toBe('paused by bo: marketing freeze');
    expect((await h.controller.tick()).plans).toEqual([]); // a paused plan is left alone
    await rollouts.resume('fast-payment', actor);
    await rollouts.advance('fast-payment', { actor: 'ada', reason: 'confident' });
    expect(await treatmentPercent(h.store)).toBe(20);
    await rollouts.rollback('fast-payment', { actor: 'ada', reason: 'support tickets' });
    expect(await treatmentPercent(h.store)).toBe(0);
    await expect(rollouts.resume('fast-payment', actor)).rejects.toThrow('it is rolled_back');
    const trail = (await h.store.audit('fast-payment', { limit: 50 })).filter((e) => e.kind === 'plan').reverse();
    expect(trail.map((e) => [e.action, e.actor])).toEqual([
      ['create', 'ada'],
      ['start', 'ada'],
      ['pause', 'bo'],
      ['resume', 'ada'],
      ['advance', 'ada'],
      ['rollback', 'ada'],
    ]);
    expect(trail[5]!.reason).toBe('support tickets');
    // a rolled-back plan can be replaced by a new draft
    expect((await rollouts.create(ramp, actor)).state).toBe('draft');
  });
});

describe('watchPlans', () => {
  it('says when plan notices are subscribed, so that a read then misses no later write; every watcher hears every write', async () => {
    const store = new RedisFlagStore({ redis: redis.url, env: `watch-${process.pid}-${++envCounter}`, pollIntervalMs: 60_000 });
    cleanups.push(() => store.close());
    const rollouts = new Rollouts({ store });
    const heard: [string, number][][] = [[], []];
    const subscribers: number[] = [];
    const subscribed = (n: number) =>
      new Promise<void>((resolve) => {
        const stop = rollouts.watchPlans(
          (flag, version) => heard[n]!.push([flag, version]),
          () => {
            // at this moment Redis counts the subscription
            void admin.pubsub('NUMSUB', store.keys.planChanges).then((reply) => {
              subscribers.push(Number((reply as [string, number])[1]));
              resolve();
            });
          },
        );
        cleanups.push(async () => stop());
      });
    await subscribed(0);
    await subscribed(1); // the second watcher shares the connection, subscribed already
    expect(subscribers).toEqual([1, 1]);
    await store.putFlag('fast-payment', fastPayment, actor);
    const plan = await rollouts.create(ramp, actor);
    for (let i = 0; i < 100 && heard.some((h) => h.length === 0); i++) await new Promise((r) => setTimeout(r, 20));
    expect(heard).toEqual([[['fast-payment', plan.planVersion]], [['fast-payment', plan.planVersion]]]);
  });
});
