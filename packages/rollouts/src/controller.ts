import { hostname } from 'node:os';
import { describeSplit, describeValueComparison, RegressionTest, ValueComparison } from '@rollgate/core';
import { FencedError, type RedisFlagStore } from '@rollgate/redis';
import { quantileBucket, quantileMs } from './histogram';
import { ControllerLease } from './lease';
import type { ArmCounts, SecondCounts } from './outcome-reader';
import type { ArmSummary, GuardEvidence, GuardSpec, Plan, PlanEvidence } from './plan';
import { freshStage, nextStage, Rollouts, slowCount, BASELINE_MIN_REQUESTS } from './rollouts';
import { positiveInteger, type RolloutLogger } from './validation';

export interface RolloutControllerOptions {
  store: RedisFlagStore;
  /** How often the controller looks at the running plans. @default 5000 */
  intervalMs?: number;
  /** The lease's time to live; renewed every tick, so keep it a few ticks long. @default 15000 */
  leaseTtlMs?: number;
  /**
   * Seconds a finished second is left for the instances' flushes (every second) before it is
   * read; the second in progress is never read. @default 2
   */
  lagSec?: number;
  /** Most seconds read per plan and tick (a controller catching up reads in slices). @default 600 */
  maxSecondsPerTick?: number;
  /** Names this controller in the audit (`controller:<name>@<lease epoch>`). @default host:pid */
  name?: string;
  /** The clock, in ms since the epoch. @default Date.now */
  now?: () => number;
  logger?: RolloutLogger;
  /** Called after every tick started by start(), with what it did (for logs). */
  onTick?: (result: TickResult) => void;
}

/** What one tick did, per plan (for logs and tests). */
export interface TickResult {
  /** False when another controller holds the lease: nothing was read or written. */
  leader: boolean;
  plans: ({ flag: string } & PlanStep)[];
}

/** What the controller did to one plan in a tick. */
export interface PlanStep {
  action: 'hold' | 'advance' | 'complete' | 'rollback' | 'apply' | 'pause';
  reason: string;
}

type GuardTest = { evidence: GuardEvidence; test: RegressionTest } | { evidence: GuardEvidence; value: ValueComparison };

/** Users' signals come sparsely: they are compared per minute, so that a second with an empty arm does not waste them. */
function perMinute(guard: GuardSpec): boolean {
  return guard.metric === 'clientErrors' || guard.metric === 'feedback';
}

/** The test of each guard (a RegressionTest, or a ValueComparison for a value guard), restored from the plan or new. Alpha is split evenly across guards. */
function guardTests(plan: Plan): GuardTest[] {
  const alpha = plan.alpha / plan.guards.length;
  return plan.guards.map((guard, i) => {
    const stored = plan.evidence?.guards[i];
    const same = stored !== undefined && JSON.stringify(stored.guard) === JSON.stringify(guard);
    const evidence: GuardEvidence = same
      ? { ...stored, control: { ...stored.control }, treatment: { ...stored.treatment }, ...(stored.pending ? { pending: restorePending(stored.pending) } : {}) }
      : { guard, test: null, evidence: 1, ratioLowerBound: 0, regressed: false, control: { n: 0, bad: 0 }, treatment: { n: 0, bad: 0 } };
    if (guard.metric === 'value') {
      const minSamplesPerArm = guard.minSamples !== undefined && guard.minSamples >= 2 ? guard.minSamples : undefined;
      const value = same
        ? ValueComparison.fromJSON(stored.test)
        : new ValueComparison({ alpha, better: guard.better ?? 'lower', margin: guard.margin ?? 0, ...(minSamplesPerArm !== undefined ? { minSamplesPerArm } : {}) });
      return { evidence, value };
    }
    return { evidence, test: same ? RegressionTest.fromJSON(stored.test) : new RegressionTest({ alpha }) };
  });
}

/**
 * The users' signal guards a randomized stage still waits for (`minSamples`): a value guard until
 * its comparison can say something, a clientErrors or feedback guard until each arm has that many
 * page views or answers. Over the plan's randomized stages so far.
 */
function unheardGuards(tests: readonly GuardTest[]): string[] {
  const waits: string[] = [];
  for (const guard of tests) {
    const spec = guard.evidence.guard;
    if ('value' in guard) {
      if (spec.metric !== 'value' || spec.minSamples === 0) continue;
      const c = guard.value.comparison;
      if (c.status !== 'ok') waits.push(describeValueComparison(c, { metric: spec.name, units: 'values' }));
    } else if ((spec.metric === 'clientErrors' || spec.metric === 'feedback') && spec.minSamples) {
      const { treatment, control } = guard.evidence;
      const what = spec.metric === 'clientErrors' ? 'page views' : 'feedback answers';
      if (treatment.n < spec.minSamples || control.n < spec.minSamples) waits.push(`${what} ${treatment.n} and ${control.n} of ${spec.minSamples} per arm`);
    }
  }
  return waits;
}

/** A stored stratum in progress; one stored by an earlier version names its minute instead. */
function restorePending(stored: NonNullable<GuardEvidence['pending']>): NonNullable<GuardEvidence['pending']> {
  const { minute, ...rest } = structuredClone(stored);
  return { ...rest, stratum: typeof rest.stratum === 'number' ? rest.stratum : (minute ?? 0) * STAGES_PER_MINUTE };
}

/** The (n, bad) a per-second guard compares in one arm and second; undefined when the guard cannot judge it yet. */
function badCounts(guard: GuardSpec, c: ArmCounts, thresholds: Plan['thresholds']): { n: number; bad: number } | undefined {
  switch (guard.metric) {
    case 'errors':
      return { n: c.requests, bad: c.errors };
    case 'latency':
      return thresholds ? { n: c.requests, bad: slowCount(c.histogram, thresholds, guard.quantile) } : undefined;
    case 'event':
      // events per request; more events than requests in a second counts as every request bad
      return { n: c.requests, bad: Math.min(c.events[guard.name] ?? 0, c.requests) };
    case 'clientErrors':
      // capped at the page views when the stratum is compared (flushStratum), not per second: a
      // page sends its view when it loads and its errors later, often in another second
      return { n: c.events['$pageview'] ?? 0, bad: c.events['$client_error'] ?? 0 };
    case 'feedback': {
      const negative = c.events['$feedback.negative'] ?? 0;
      return { n: negative + (c.events['$feedback.neutral'] ?? 0) + (c.events['$feedback.positive'] ?? 0), bad: negative };
    }
    default:
      return undefined;
  }
}

const NO_COUNTS: ArmCounts = { requests: 0, errors: 0, histogram: [], events: {}, values: {} };

function summarize(into: ArmSummary, c: ArmCounts | undefined): void {
  if (!c) return;
  into.requests += c.requests;
  into.errors += c.errors;
  for (let i = 0; i < c.histogram.length; i++) into.histogram[i]! += c.histogram[i]!;
}

/** An e-value for people: one decimal, or powers of ten once it is huge. */
function evidenceWords(e: number): string {
  return e < 1e6 ? e.toFixed(1) : e.toExponential(1);
}

function pct(x: number): string {
  return `${(100 * x).toFixed(x < 0.01 ? 2 : 1)}%`;
}

/** χ² test (1 degree of freedom) of the observed treatment share against the split's; the p-value. */
function sampleRatioP(treatment: number, control: number, share: number): number {
  const n = treatment + control;
  const expectedT = n * share;
  const expectedC = n - expectedT;
  const chi2 = (treatment - expectedT) ** 2 / expectedT + (control - expectedC) ** 2 / expectedC;
  return erfc(Math.sqrt(chi2 / 2));
}

/** Complementary error function (Numerical Recipes' erfcc, relative error < 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + z / 2);
  const r =
    t *
    Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? r : 2 - r;
}

/**
 * Drives running plans: every tick it reads the new per-second counts, feeds each guard's test,
 * and rolls back, holds (saying why) or advances — in that order of priority. Only the holder of
 * the environment's lease acts, and its writes carry the lease token, checked inside the write
 * scripts: a controller paused past its lease cannot write when it wakes.
 */
export class RolloutController {
  readonly rollouts: Rollouts;
  private readonly lease: ControllerLease;
  private readonly intervalMs: number;
  private readonly lagSec: number;
  private readonly maxSecondsPerTick: number;
  private readonly name: string;
  private readonly now: () => number;
  private readonly logger: RolloutLogger | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<TickResult> | undefined;
  private readonly onTick: ((result: TickResult) => void) | undefined;

  constructor(options: RolloutControllerOptions) {
    this.now = options.now ?? Date.now;
    this.rollouts = new Rollouts({ store: options.store, now: this.now });
    this.intervalMs = positiveInteger('RolloutController', 'intervalMs', options.intervalMs ?? 5000, 2 ** 31 - 1);
    this.lease = new ControllerLease(options.store, positiveInteger('RolloutController', 'leaseTtlMs', options.leaseTtlMs ?? 15_000, 2 ** 31 - 1));
    if (this.lease.ttlMs <= this.intervalMs) throw new TypeError('RolloutController: options.leaseTtlMs must be longer than intervalMs (the lease is renewed once per tick)');
    this.lagSec = options.lagSec ?? 2;
    if (!Number.isInteger(this.lagSec) || this.lagSec < 0) throw new TypeError('RolloutController: options.lagSec must be an integer >= 0');
    this.maxSecondsPerTick = positiveInteger('RolloutController', 'maxSecondsPerTick', options.maxSecondsPerTick ?? 600);
    this.name = options.name ?? `${hostname()}:${process.pid}`;
    this.logger = options.logger;
    this.onTick = options.onTick;
  }

  /** Ticks every `intervalMs` until stop(). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (!this.ticking) void this.tick().then(this.onTick, (e: unknown) => this.logger?.warn(`rollgate: controller tick failed: ${(e as Error).message}`));
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Stops ticking, waits for a tick in progress, and gives the lease up. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking?.catch(() => undefined);
    await this.lease.release().catch(() => undefined);
  }

  /** The audit's name for this controller in its current tenure. */
  get actor(): string {
    return `controller:${this.name}@${this.lease.epoch}`;
  }

  /** One pass over every running plan (and any plan whose last flag write was lost). */
  async tick(): Promise<TickResult> {
    this.ticking = this.run().finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async run(): Promise<TickResult> {
    if (!(await this.lease.acquire())) return { leader: false, plans: [] };
    const result: TickResult = { leader: true, plans: [] };
    for (const plan of await this.rollouts.list()) {
      try {
        const outcome = await this.drive(plan);
        if (outcome) result.plans.push({ flag: plan.flag, ...outcome });
      } catch (e) {
        if (e instanceof FencedError) return { leader: false, plans: result.plans }; // lost the lease mid-tick: stop at once
        this.logger?.warn(`rollgate: plan of "${plan.flag}": ${(e as Error).message}`);
      }
    }
    return result;
  }

  private async drive(plan: Plan): Promise<PlanStep | undefined> {
    const token = this.lease.token;
    const who = { actor: this.actor };
    if (plan.state === 'rolled_back' && !plan.applied) {
      // a rollback whose flag write was lost (crash, failover): put it back
      await this.rollouts.applyAndRecord(plan, { ...who, reason: 're-applying the rollback' }, token);
      return { action: 'apply', reason: 're-applied the rollback' };
    }
    if (plan.state !== 'running') return undefined;

    const def = await this.flagDefinition(plan.flag);
    if (!def) return this.hold(plan, `flag "${plan.flag}" does not exist any more (or its stored definition is unreadable)`);
    if (def.state === 'DISABLED') return this.hold(plan, `the flag is DISABLED (kill switch): the plan waits; enable the flag to let it continue, or roll the plan back`);
    const desired = this.rollouts.desiredPercent(plan);
    if (!plan.applied) {
      await this.rollouts.applyAndRecord(plan, { ...who, reason: `entering stage ${plan.stage + 1}` }, token);
      return { action: 'apply', reason: `split set to ${desired}%` };
    }
    const split = describeSplit(def)?.buckets.find(([v]) => v === plan.treatment)?.[1];
    const total = describeSplit(def)?.buckets.reduce((a, [, w]) => a + w, 0) ?? 0;
    const actual = split === undefined || total === 0 ? 0 : Math.round((100 * split) / total);
    if (actual !== desired) {
      const reason = `the split of "${plan.flag}" was changed outside the plan (treatment ${actual}%, the stage says ${desired}%): paused; resume puts the stage's split back, or roll back`;
      await this.rollouts.write({ ...plan, state: 'paused', holdReason: reason }, 'pause', { ...who, reason }, token);
      return { action: 'pause', reason };
    }

    const nowMs = this.now();
    const nowSec = Math.floor(nowMs / 1000);
    // the second in progress is incomplete: reading it would skip whatever is recorded in it later
    const upTo = nowSec - 1 - this.lagSec;
    const startSec = Math.floor(plan.startedAt! / 1000);
    const stageStartSec = Math.floor(plan.stageEnteredAt! / 1000);
    const evidence: PlanEvidence = plan.evidence
      ? { ...plan.evidence, stage: structuredClone(plan.evidence.stage), recent: [...plan.evidence.recent], controlHistogram: plan.evidence.controlHistogram ? [...plan.evidence.controlHistogram] : null }
      : { cursor: startSec - 1, guards: [], stage: freshStage(), recent: [], lastTreatmentAt: null, controlHistogram: plan.thresholds ? null : freshStage().control.histogram };
    const tests = guardTests(plan);
    let thresholds = plan.thresholds;
    const stage = plan.stages[plan.stage]!;
    const randomized = stage.percent > 0 && stage.percent < 100;
    const from = evidence.cursor + 1;
    const to = Math.min(upTo, evidence.cursor + this.maxSecondsPerTick);
    const seconds: SecondCounts[] = to >= from ? await this.rollouts.outcomes.seconds(plan.flag, from, to) : [];
    const tArm = `split:${plan.treatment}`;
    const cArm = `split:${plan.control}`;
    const targetedArm = `targeted:${plan.treatment}`;
    for (const { second, arms } of seconds) {
      const t = arms.get(tArm);
      const c = arms.get(cArm);
      const targeted = arms.get(targetedArm);
      summarize(evidence.stage.treatment, t);
      summarize(evidence.stage.control, c);
      summarize(evidence.stage.targeted, targeted);
      if ((t?.requests ?? 0) + (targeted?.requests ?? 0) > 0) evidence.lastTreatmentAt = second;
      evidence.recent.push({ s: second, tr: t?.requests ?? 0, te: t?.errors ?? 0, cr: c?.requests ?? 0, ce: c?.errors ?? 0 });
      if (evidence.controlHistogram && c) for (let i = 0; i < c.histogram.length; i++) evidence.controlHistogram[i]! += c.histogram[i]!;
      if (!randomized) continue;
      for (const guard of tests) observeSecond(guard, stratumOf(second, stageStartSec, plan.stage), t ?? NO_COUNTS, c ?? NO_COUNTS, thresholds);
    }
    // a stratum that is over is compared now (its last second has been read)
    for (const guard of tests) if ('test' in guard && guard.evidence.pending && guard.evidence.pending.stratum < stratumOf(to + 1, stageStartSec, plan.stage)) flushStratum(guard);
    if (to >= from) evidence.cursor = to;
    const windowSec = plan.breaker ? plan.breaker.windowSec : 60;
    evidence.recent = evidence.recent.filter((r) => r.s > evidence.cursor - windowSec);
    if (!thresholds && evidence.controlHistogram) {
      const n = evidence.controlHistogram.reduce((a, b) => a + b, 0);
      if (n >= BASELINE_MIN_REQUESTS * 5) {
        thresholds = { p95: quantileBucket(evidence.controlHistogram, 0.95), p99: quantileBucket(evidence.controlHistogram, 0.99), from: 'control' };
        evidence.controlHistogram = null;
      }
    }
    evidence.guards = tests.map((guard) => {
      if ('value' in guard) {
        const g = guard.evidence.guard as Extract<GuardSpec, { metric: 'value' }>;
        const ms = (g.unit ?? 'ms') === 'ms';
        const words = describeValueComparison(guard.value.comparison, { metric: g.name, lower: ms ? 'faster' : 'lower', higher: ms ? 'slower' : 'higher', units: 'values' });
        return { ...guard.evidence, test: guard.value.toJSON(), evidence: guard.value.evidence, ratioLowerBound: 0, regressed: guard.value.regressed, words };
      }
      return { ...guard.evidence, test: guard.test.toJSON(), evidence: guard.test.evidence, ratioLowerBound: guard.test.ratioLowerBound, regressed: guard.test.regressed };
    });
    const stageUnits = async (arm: string) => this.rollouts.outcomes.units(plan.flag, arm, Math.floor(plan.stageEnteredAt! / 1000), upTo);
    evidence.stage.treatment.units = await stageUnits(tArm);
    evidence.stage.control.units = await stageUnits(cArm);
    if (stage.percent === 0) evidence.stage.targeted.units = await stageUnits(targetedArm);
    const updated: Plan = { ...plan, evidence, thresholds };

    // 1. circuit breaker: a gross error spike rolls back without waiting for the test
    if (plan.breaker) {
      const tr = evidence.recent.reduce((a, r) => a + r.tr, 0);
      const te = evidence.recent.reduce((a, r) => a + r.te, 0);
      const cr = evidence.recent.reduce((a, r) => a + r.cr, 0);
      const ce = evidence.recent.reduce((a, r) => a + r.ce, 0);
      const tRate = tr > 0 ? te / tr : 0;
      const cRate = cr > 0 ? ce / cr : 0;
      if (tr >= plan.breaker.minRequests && tRate >= plan.breaker.errorRate && tRate >= 2 * cRate) {
        return this.rollBack(updated, `circuit breaker: ${te} of ${tr} treatment requests failed (${pct(tRate)}) in the last ${windowSec} s, control ${pct(cRate)} (${ce}/${cr})`);
      }
    }
    // 2. the sequential test, per guard
    for (const g of evidence.guards) {
      if (g.regressed) {
        return this.rollBack(
          updated,
          g.guard.metric === 'value'
            ? `${describeGuard(g)} regressed: evidence ${evidenceWords(g.evidence)} ≥ ${(plan.guards.length / plan.alpha).toFixed(0)}; ${g.words ?? ''}`
            : `${describeGuard(g)} regressed: evidence ${evidenceWords(g.evidence)} ≥ ${(plan.guards.length / plan.alpha).toFixed(0)}; treatment ${g.treatment.bad}/${g.treatment.n}, control ${g.control.bad}/${g.control.n}; ratio ≥ ${g.ratioLowerBound.toFixed(2)}×`,
        );
      }
    }
    // 3. absolute limits (pilot and 100% stages, or wherever given)
    const served = stage.percent === 0 ? evidence.stage.targeted : mergeSummaries(evidence.stage.treatment, evidence.stage.targeted);
    if (stage.absolute && served.requests >= Math.max(1, stage.minRequests)) {
      const rate = served.errors / served.requests;
      if (stage.absolute.maxErrorRate !== undefined && rate > stage.absolute.maxErrorRate) {
        return this.rollBack(updated, `treatment error rate ${pct(rate)} (${served.errors}/${served.requests}) is above the stage's limit of ${pct(stage.absolute.maxErrorRate)}`);
      }
      const p99 = quantileMs(served.histogram, 0.99);
      if (stage.absolute.maxP99Ms !== undefined && p99 !== undefined && p99 > stage.absolute.maxP99Ms) {
        return this.rollBack(updated, `treatment p99 ${p99.toFixed(0)} ms is above the stage's limit of ${stage.absolute.maxP99Ms} ms`);
      }
    }
    // 4. no data is never a pass
    // whole seconds of the stage read so far: from the second it began to the last complete one
    const stageAgeSec = Math.max(0, upTo + 1 - Math.floor(plan.stageEnteredAt! / 1000));
    const quiet = evidence.lastTreatmentAt === null ? stageAgeSec : upTo - evidence.lastTreatmentAt;
    if (quiet >= plan.noDataHoldSec) {
      return this.hold(updated, `no data: no treatment request for ${quiet} s (instances record outcomes only where a guard or @FeatureValue evaluates "${plan.flag}")`);
    }
    // 5. sample ratio mismatch: the split is not what the arms received
    if (randomized && served.requests >= 100 && evidence.stage.control.requests >= 100) {
      const share = stage.percent / 100;
      const t = evidence.stage.treatment.requests;
      const c = evidence.stage.control.requests;
      const observed = t / (t + c);
      if (sampleRatioP(t, c, share) < 0.001 && Math.abs(observed - share) / share > 0.1) {
        return this.hold(updated, `sample ratio mismatch: the treatment got ${pct(observed)} of the split's requests, the split says ${stage.percent}% — check for a cache, a retry loop or a bot in one arm`);
      }
    }
    // 6. enough time, requests and units in each arm
    const waits: string[] = [];
    const treatmentArm = stage.percent === 0 ? evidence.stage.targeted : evidence.stage.treatment;
    if (treatmentArm.requests < stage.minRequests) waits.push(`${treatmentArm.requests}/${stage.minRequests} treatment requests`);
    if (randomized && evidence.stage.control.requests < stage.minRequests) waits.push(`${evidence.stage.control.requests}/${stage.minRequests} control requests`);
    if (treatmentArm.units < stage.minUnits) waits.push(`${treatmentArm.units}/${stage.minUnits} treatment units`);
    if (randomized && evidence.stage.control.units < stage.minUnits) waits.push(`${evidence.stage.control.units}/${stage.minUnits} control units`);
    if (stageAgeSec < stage.minDurationSec) waits.push(`${formatDuration(stageAgeSec)} of ${formatDuration(stage.minDurationSec)}`);
    if (randomized) waits.push(...unheardGuards(tests));
    if (randomized && !thresholds && plan.guards.some((g) => g.metric === 'latency')) {
      const n = evidence.controlHistogram?.reduce((a, b) => a + b, 0) ?? 0;
      waits.push(`a latency baseline (${n}/${BASELINE_MIN_REQUESTS * 5} control requests)`);
    }
    if (waits.length > 0) return this.hold(updated, `waiting: ${waits.join(', ')}`);
    // 7. approval
    if (stage.approval && !plan.approvedStages.includes(plan.stage)) {
      return this.hold(updated, `waiting for approval to go on from stage ${plan.stage + 1} (${stage.percent}%): \`rollgate plan approve ${plan.flag}\``);
    }
    // 8. advance (or complete after the last stage)
    const next = nextStage(updated, nowMs);
    const reason = `stage ${plan.stage + 1} (${stage.percent}%) healthy: ${summaryWords(updated)}`;
    const written = await this.rollouts.write(next, next.state === 'completed' ? 'complete' : 'advance', { ...who, reason }, token);
    if (written.state === 'completed') return { action: 'complete', reason };
    await this.rollouts.applyAndRecord(written, { ...who, reason }, token);
    return { action: 'advance', reason };
  }

  /** The flag's stored definition (one HGET: the controller looks at one flag, not the whole set); undefined when absent or unreadable. */
  private async flagDefinition(flag: string): Promise<{ state?: string } | undefined> {
    const store = this.rollouts.options.store;
    const text = await store.connection.hget(store.keys.flags, flag);
    if (text === null) return undefined;
    try {
      const parsed = JSON.parse(text) as unknown;
      return parsed !== null && typeof parsed === 'object' ? (parsed as { state?: string }) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Saves the evidence; audits only when the hold reason changes in kind, not in its counts ("412/500" → "430/500"). */
  private async hold(plan: Plan, reason: string): Promise<PlanStep> {
    const gist = (text: string | null) => text?.replace(/\d+(\.\d+)?/g, '#') ?? null;
    const changed = gist(plan.holdReason) !== gist(reason);
    const next = { ...plan, holdReason: reason };
    if (changed) await this.rollouts.write(next, 'hold', { actor: this.actor, reason }, this.lease.token);
    else await this.rollouts.plans.write(next, { actor: this.actor, leaseToken: this.lease.token });
    return { action: 'hold', reason };
  }

  private async rollBack(plan: Plan, reason: string): Promise<PlanStep> {
    this.logger?.warn(`rollgate: rolling back "${plan.flag}": ${reason}`);
    const written = await this.rollouts.write({ ...plan, state: 'rolled_back', applied: false, holdReason: null }, 'rollback', { actor: this.actor, reason }, this.lease.token);
    await this.rollouts.applyAndRecord(written, { actor: this.actor, reason }, this.lease.token);
    return { action: 'rollback', reason };
  }
}

/** Room for every stage index in a minute's strata (plans have at most 20 stages). */
const STAGES_PER_MINUTE = 1024;

/**
 * The stratum of a second for the guards compared per minute and the value guards: its minute and
 * the stage it belongs to (`stage`, the plan's current one, from `stageStartSec`; the one before
 * it for earlier seconds), so that no stratum mixes two splits — also when several stages begin
 * in one minute. Non-decreasing as seconds are read in order and the plan advances.
 */
export function stratumOf(second: number, stageStartSec: number, stage: number): number {
  const minute = Math.floor(second / 60);
  return minute * STAGES_PER_MINUTE + (second >= stageStartSec ? stage : Math.max(0, stage - 1));
}

/** Feeds one second of both randomized arms to a guard's test (or to its stratum in progress). */
function observeSecond(guard: GuardTest, stratum: number, t: ArmCounts, c: ArmCounts, thresholds: Plan['thresholds']): void {
  const g = guard.evidence;
  if ('value' in guard) {
    const name = (g.guard as Extract<GuardSpec, { metric: 'value' }>).name;
    const tv = t.values[name];
    const cv = c.values[name];
    if (!tv && !cv) return;
    const arm = (v: typeof tv) => (v ? { n: v.n, sum: v.sum, sumSquares: v.sumSquares, histogram: v.histogram } : { n: 0, sum: 0, sumSquares: 0 });
    guard.value.observe({ stratum, treatment: arm(tv), control: arm(cv) });
    g.treatment.n += tv?.n ?? 0;
    g.control.n += cv?.n ?? 0;
    return;
  }
  const tb = badCounts(g.guard, t, thresholds);
  const cb = badCounts(g.guard, c, thresholds);
  if (!tb || !cb) return;
  g.treatment.n += tb.n;
  g.treatment.bad += tb.bad;
  g.control.n += cb.n;
  g.control.bad += cb.bad;
  if (!perMinute(g.guard)) {
    if (tb.n > 0 && cb.n > 0) guard.test.observe({ treatment: tb, control: cb });
    return;
  }
  if (g.pending && g.pending.stratum !== stratum) flushStratum(guard);
  const p = (g.pending ??= { stratum, control: { n: 0, bad: 0 }, treatment: { n: 0, bad: 0 } });
  p.treatment.n += tb.n;
  p.treatment.bad += tb.bad;
  p.control.n += cb.n;
  p.control.bad += cb.bad;
}

/** Compares a per-minute guard's stratum in progress and starts afresh. */
function flushStratum(guard: Extract<GuardTest, { test: RegressionTest }>): void {
  const p = guard.evidence.pending;
  if (!p) return;
  // more errors than page views in a stratum counts every view as bad (views are the denominator)
  const cap = (a: { n: number; bad: number }) => ({ n: a.n, bad: Math.min(a.bad, a.n) });
  if (p.treatment.n > 0 && p.control.n > 0) guard.test.observe({ treatment: cap(p.treatment), control: cap(p.control) });
  delete guard.evidence.pending;
}

function mergeSummaries(a: ArmSummary, b: ArmSummary): ArmSummary {
  return { requests: a.requests + b.requests, errors: a.errors + b.errors, units: a.units + b.units, histogram: a.histogram.map((x, i) => x + b.histogram[i]!) };
}

export function describeGuard(g: Pick<GuardEvidence, 'guard'>): string {
  const guard = g.guard;
  switch (guard.metric) {
    case 'errors':
      return 'error rate';
    case 'latency':
      return `latency (requests slower than the control's p${Math.round(guard.quantile * 100)})`;
    case 'event':
      return `event "${guard.name}"`;
    case 'clientErrors':
      return 'errors in users\' pages';
    case 'feedback':
      return 'negative feedback';
    case 'value':
      return `${guard.name} (${guard.better === 'higher' ? 'higher' : 'lower'} is better${guard.margin ? `, margin ${Math.round(guard.margin * 100)}%` : ''})`;
  }
}

export function formatDuration(sec: number): string {
  if (sec < 120) return `${sec} s`;
  if (sec < 7200) return `${Math.floor(sec / 60)} min`;
  return `${(sec / 3600).toFixed(1)} h`;
}

/** Per-arm counts of the current stage, in words. */
export function summaryWords(plan: Plan): string {
  const s = plan.evidence?.stage;
  if (!s) return 'no data yet';
  const arm = (name: string, a: ArmSummary) => `${name} ${a.requests} requests, ${a.errors} errors${a.requests ? ` (${pct(a.errors / a.requests)})` : ''}, p99 ${quantileMs(a.histogram, 0.99)?.toFixed(0) ?? '–'} ms`;
  return [arm('treatment', s.treatment), arm('control', s.control), ...(s.targeted.requests ? [arm('pilot', s.targeted)] : [])].join('; ');
}
