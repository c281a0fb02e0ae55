import { RollgateError } from '@rollgate/core';

// A rollout plan: what a user writes (PlanSpec), checked and completed with defaults (Plan), and
// the state the controller moves it through. Plans are plain JSON: stored in Redis, shown by the
// CLI and the admin API as they are.

/** A health check the controller applies to the treatment against the control. */
export type GuardSpec =
  /** 5xx responses and thrown handlers. */
  | { metric: 'errors' }
  /** Requests slower than the control's p95 / p99, frozen when the plan starts. */
  | { metric: 'latency'; quantile: 0.95 | 0.99 }
  /** A tracked event counted as bad (e.g. `payment.failed` from `client.track`), per request. */
  | { metric: 'event'; name: string }
  /**
   * Uncaught errors in users' pages (the web provider's `captureErrors`), per page view; compared
   * per minute. `minSamples`: page views each arm needs (over the plan's randomized stages) before
   * a randomized stage may advance. @default 0 (the guard judges what comes, the plan does not wait)
   */
  | { metric: 'clientErrors'; minSamples?: number }
  /**
   * The share of negative feedback (`sendFeedback`) about this flag; compared per minute.
   * `minSamples`: answers each arm needs before a randomized stage may advance. @default 0
   */
  | { metric: 'feedback'; minSamples?: number }
  /**
   * A value tracked with an event, e.g. `checkout.completed` with the ms it took: rolls back when
   * the treatment's mean is worse than the control's by more than `margin` (a fraction, default 0),
   * with an anytime-valid test; reported as "checkout 18% faster (95% interval 9–26%)". `better`:
   * 'lower' for times (the default), 'higher' for amounts. `unit` 'ms' words it faster / slower.
   * `minSamples`: compared values each arm needs before the comparison says anything, and before a
   * randomized stage may advance (so a plan never completes with the guard unheard); 0: the plan
   * does not wait for it (the comparison then needs its default 200). @default 200
   */
  | { metric: 'value'; name: string; better?: 'lower' | 'higher'; margin?: number; unit?: string; minSamples?: number };

/** Absolute limits on the treatment arm, for stages without a randomized control (a pilot group, 100%). */
export interface AbsoluteLimits {
  /** Highest acceptable share of failed requests, 0..1. */
  maxErrorRate?: number;
  /** Highest acceptable p99 latency, ms (read from the histogram: an over-estimate by at most 25%). */
  maxP99Ms?: number;
}

export interface StageSpec {
  /** Share of the split (0..100) that gets the treatment. 0: a pilot stage (only targeting rules serve it). */
  percent: number;
  /** Least time in the stage before it may advance. @default 0 */
  minDurationSec?: number;
  /** Least requests per arm (treatment and, while there is one, control) before advancing. @default 100 */
  minRequests?: number;
  /** Least distinct units per arm before advancing, so one busy tenant cannot decide alone. @default 10 */
  minUnits?: number;
  /** Needs `approve` before it may advance. @default false */
  approval?: boolean;
  /**
   * Absolute limits for this stage: required for a pilot stage (percent 0: the treatment is not
   * randomized, so there is nothing to compare it with) and for 100% (no control left).
   */
  absolute?: AbsoluteLimits;
}

export interface PlanSpec {
  /** The flag whose tail percentage split the plan ramps. */
  flag: string;
  /** The variant being rolled out. */
  treatment: string;
  /** The variant it is compared with, served to the rest of the split. */
  control: string;
  stages: StageSpec[];
  /** @default [{ metric: 'errors' }, { metric: 'latency', quantile: 0.99 }] */
  guards?: GuardSpec[];
  /** Chance of rolling back a healthy treatment over the whole plan; split evenly across guards. @default 0.05 */
  alpha?: number;
  /**
   * Rolls back without waiting for the test when the treatment's error rate over the last
   * `windowSec` is at least `errorRate` (and twice the control's) with `minRequests` treatment
   * requests. `false` turns it off. @default { errorRate: 0.2, windowSec: 60, minRequests: 20 }
   */
  breaker?: { errorRate?: number; windowSec?: number; minRequests?: number } | false;
  /** Hold (never pass) when no treatment request arrived for this long. @default 120 */
  noDataHoldSec?: number;
  /** How far back before the start the control's latency quantiles are read and frozen. @default 3600 */
  baselineSec?: number;
}

export type PlanState = 'draft' | 'running' | 'paused' | 'rolled_back' | 'completed';

/** A stage with its defaults filled in. */
export type Stage = Required<Omit<StageSpec, 'absolute'>> & Pick<StageSpec, 'absolute'>;

/** Where one guard's test stands. */
export interface GuardEvidence {
  readonly guard: GuardSpec;
  /** Serialized RegressionTest (ValueComparison for a value guard). */
  test: unknown;
  /**
   * For guards compared per minute: the stratum in progress, not yet fed to the test. A stratum
   * is a minute and a stage (see `stratumOf` in the controller). Plans stored before this field
   * existed have `minute` instead (read as that minute's first stratum).
   */
  pending?: { stratum: number; minute?: number; control: { n: number; bad: number }; treatment: { n: number; bad: number } };
  /** For a value guard: the comparison in words ("checkout 18% faster (95% interval 9–26%), 1,240 users per arm"). */
  words?: string;
  evidence: number;
  ratioLowerBound: number;
  regressed: boolean;
  /** Counts the test has seen (randomized arms only). */
  control: { n: number; bad: number };
  treatment: { n: number; bad: number };
}

/** One arm over the current stage. */
export interface ArmSummary {
  requests: number;
  errors: number;
  /** Merged latency histogram (see histogram.ts). */
  histogram: number[];
  /** Distinct units (HyperLogLog), as of the last tick. */
  units: number;
}

export interface PlanEvidence {
  /** Last epoch second the controller has read. */
  cursor: number;
  guards: GuardEvidence[];
  /** The current stage so far: the randomized arms, and the treatment served by targeting rules. */
  stage: { treatment: ArmSummary; control: ArmSummary; targeted: ArmSummary };
  /** The last seconds (up to the breaker's window): treatment and control requests and errors. */
  recent: { s: number; tr: number; te: number; cr: number; ce: number }[];
  /** Epoch second of the latest treatment request seen (either arm kind). */
  lastTreatmentAt: number | null;
  /** The control's latency histogram over the run, until the thresholds are frozen from it. */
  controlHistogram: number[] | null;
}

export interface Plan {
  readonly id: string;
  flag: string;
  treatment: string;
  control: string;
  stages: Stage[];
  guards: GuardSpec[];
  alpha: number;
  breaker: { errorRate: number; windowSec: number; minRequests: number } | false;
  noDataHoldSec: number;
  baselineSec: number;
  state: PlanState;
  /** Index of the current stage. */
  stage: number;
  /** A new id on every start: the evidence belongs to one run. */
  runId: string | null;
  startedAt: number | null;
  stageEnteredAt: number | null;
  /**
   * Whether the flag's split has been set to what the plan wants now (the stage's percent; 0 once
   * rolled back). Written first as false with the new stage, then true once the flag write
   * succeeded: a controller that finds it false re-applies it (a crash, a failover in between).
   */
  applied: boolean;
  approvedStages: number[];
  /** Why the plan is not advancing, in words; null when nothing holds it. */
  holdReason: string | null;
  /** Latency thresholds frozen at the start: histogram buckets of the control's p95 / p99. */
  thresholds: { p95: number; p99: number; from: 'baseline' | 'control' } | null;
  evidence: PlanEvidence | null;
  /** When the plan was created and by whom. */
  created: { actor: string; at: number };
  /** The last transition: what, why and who. */
  last: { action: string; reason: string; actor: string; at: number } | null;
  /** Compare-and-set counter, bumped by every write. */
  planVersion: number;
}

/** A plan definition is invalid; nothing was written. The message names the field. */
export class PlanValidationError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_PLAN_INVALID';
}

/** The plan is not in a state that allows this (e.g. `resume` on a running plan). */
export class PlanStateError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_PLAN_STATE';
}

/** Someone else changed the plan since it was read (compare-and-set). Nothing was written. */
export class PlanConflictError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_PLAN_CONFLICT';
  constructor(
    readonly flag: string,
    readonly expectedVersion: number,
    readonly currentVersion: number,
  ) {
    super(`the plan of "${flag}" is at version ${currentVersion}, not the expected ${expectedVersion}: someone else changed it; reload and retry`);
  }
}

const DEFAULT_GUARDS: GuardSpec[] = [{ metric: 'errors' }, { metric: 'latency', quantile: 0.99 }];

function fail(path: string, message: string): never {
  throw new PlanValidationError(`${path}: ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function onlyKeys(path: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) if (!allowed.includes(key)) fail(path, `unknown field "${key}" (allowed: ${allowed.join(', ')})`);
}

function int(path: string, value: unknown, fallback: number, min: number, max: number): number {
  const v = value === undefined ? fallback : value;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(path, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return v;
}

function rate(path: string, value: unknown, fallback: number | undefined, exclusiveMin = 0, max = 1): number | undefined {
  const v = value === undefined ? fallback : value;
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= exclusiveMin || v > max) fail(path, `must be a number above ${exclusiveMin} and at most ${max}, got ${JSON.stringify(value)}`);
  return v;
}

function name(path: string, value: unknown): string {
  if (typeof value !== 'string' || value === '' || value.length > 256 || /[\u0000-\u001f\u007f-\u009f]/.test(value)) {
    fail(path, `must be a non-empty string of at most 256 printable characters, got ${JSON.stringify(value)}`);
  }
  return value;
}

function absolute(path: string, value: unknown): AbsoluteLimits | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) fail(path, 'must be an object { maxErrorRate?, maxP99Ms? }');
  onlyKeys(path, value, ['maxErrorRate', 'maxP99Ms']);
  const out: AbsoluteLimits = {};
  const maxErrorRate = rate(`${path}.maxErrorRate`, value.maxErrorRate, undefined);
  if (maxErrorRate !== undefined) out.maxErrorRate = maxErrorRate;
  if (value.maxP99Ms !== undefined) out.maxP99Ms = int(`${path}.maxP99Ms`, value.maxP99Ms, 0, 1, 3_600_000);
  if (out.maxErrorRate === undefined && out.maxP99Ms === undefined) fail(path, 'give maxErrorRate, maxP99Ms or both');
  return out;
}

function guard(path: string, value: unknown): GuardSpec {
  if (!isObject(value)) fail(path, 'must be an object with "metric"');
  switch (value.metric) {
    case 'errors':
      onlyKeys(path, value, ['metric']);
      return { metric: 'errors' };
    case 'latency':
      onlyKeys(path, value, ['metric', 'quantile']);
      if (value.quantile !== 0.95 && value.quantile !== 0.99) fail(`${path}.quantile`, `must be 0.95 or 0.99, got ${JSON.stringify(value.quantile)}`);
      return { metric: 'latency', quantile: value.quantile };
    case 'event':
      onlyKeys(path, value, ['metric', 'name']);
      return { metric: 'event', name: name(`${path}.name`, value.name) };
    case 'clientErrors':
    case 'feedback': {
      onlyKeys(path, value, ['metric', 'minSamples']);
      const out: Extract<GuardSpec, { metric: 'clientErrors' | 'feedback' }> = { metric: value.metric };
      if (value.minSamples !== undefined) out.minSamples = int(`${path}.minSamples`, value.minSamples, 0, 0, 1_000_000_000);
      return out;
    }
    case 'value': {
      onlyKeys(path, value, ['metric', 'name', 'better', 'margin', 'unit', 'minSamples']);
      const out: Extract<GuardSpec, { metric: 'value' }> = { metric: 'value', name: name(`${path}.name`, value.name) };
      if (value.better !== undefined) {
        if (value.better !== 'lower' && value.better !== 'higher') fail(`${path}.better`, `must be "lower" or "higher", got ${JSON.stringify(value.better)}`);
        out.better = value.better;
      }
      if (value.margin !== undefined) {
        if (typeof value.margin !== 'number' || !(value.margin >= 0 && value.margin < 1)) fail(`${path}.margin`, `must be a fraction from 0 to below 1 (0.05: worse by more than 5%), got ${JSON.stringify(value.margin)}`);
        out.margin = value.margin;
      }
      if (value.unit !== undefined) out.unit = name(`${path}.unit`, value.unit);
      if (value.minSamples !== undefined) {
        out.minSamples = int(`${path}.minSamples`, value.minSamples, 0, 0, 1_000_000_000);
        if (out.minSamples === 1) fail(`${path}.minSamples`, 'must be 0 (do not wait for this guard) or at least 2 (a spread needs two values), got 1');
      }
      return out;
    }
    default:
      return fail(`${path}.metric`, `must be "errors", "latency", "event", "clientErrors", "feedback" or "value", got ${JSON.stringify(value.metric)}`);
  }
}

export type NormalizedPlanSpec = Pick<Plan, 'flag' | 'treatment' | 'control' | 'stages' | 'guards' | 'alpha' | 'breaker' | 'noDataHoldSec' | 'baselineSec'>;

/** Checks a plan definition and fills in the defaults (PlanValidationError naming the field). */
export function normalizePlanSpec(input: unknown): NormalizedPlanSpec {
  if (!isObject(input)) fail('plan', 'must be an object { flag, treatment, control, stages, … }');
  onlyKeys('plan', input, ['flag', 'treatment', 'control', 'stages', 'guards', 'alpha', 'breaker', 'noDataHoldSec', 'baselineSec']);
  const flag = name('flag', input.flag);
  const treatment = name('treatment', input.treatment);
  const control = name('control', input.control);
  if (treatment === control) fail('control', `must differ from the treatment ("${treatment}")`);
  if (!Array.isArray(input.stages) || input.stages.length === 0 || input.stages.length > 20) fail('stages', 'must be a list of 1 to 20 stages');
  let previous = -1;
  const stages = input.stages.map((raw, i) => {
    const path = `stages[${i}]`;
    if (!isObject(raw)) fail(path, 'must be an object { percent, minDurationSec?, minRequests?, minUnits?, approval?, absolute? }');
    onlyKeys(path, raw, ['percent', 'minDurationSec', 'minRequests', 'minUnits', 'approval', 'absolute']);
    const percent = int(`${path}.percent`, raw.percent, NaN, 0, 100);
    if (percent <= previous && !(percent === 0 && i === 0)) fail(`${path}.percent`, `must be above the previous stage's ${previous}%: a plan only ramps up (rollback is its own action)`);
    previous = percent;
    if (raw.approval !== undefined && typeof raw.approval !== 'boolean') fail(`${path}.approval`, 'must be true or false');
    const limits = absolute(`${path}.absolute`, raw.absolute);
    if ((percent === 0 || percent === 100) && limits === undefined) {
      fail(
        `${path}.absolute`,
        percent === 0
          ? 'a pilot stage (percent 0) serves the treatment only through targeting rules, which is not randomized: give absolute limits { maxErrorRate, maxP99Ms } to guard it'
          : 'at 100% there is no control left to compare with: give absolute limits { maxErrorRate, maxP99Ms } to guard the bake',
      );
    }
    return {
      percent,
      minDurationSec: int(`${path}.minDurationSec`, raw.minDurationSec, 0, 0, 30 * 86_400),
      minRequests: int(`${path}.minRequests`, raw.minRequests, 100, 0, 1e9),
      minUnits: int(`${path}.minUnits`, raw.minUnits, 10, 0, 1e9),
      approval: raw.approval === true,
      ...(limits ? { absolute: limits } : {}),
    };
  });
  if (input.guards !== undefined && (!Array.isArray(input.guards) || input.guards.length === 0 || input.guards.length > 10)) fail('guards', 'must be a list of 1 to 10 guards');
  const guards = input.guards === undefined ? DEFAULT_GUARDS.map((g) => ({ ...g })) : (input.guards as unknown[]).map((g, i) => guard(`guards[${i}]`, g));
  const seen = new Set<string>();
  for (const [i, g] of guards.entries()) {
    const id = JSON.stringify(g);
    if (seen.has(id)) fail(`guards[${i}]`, `${id} appears twice`);
    seen.add(id);
  }
  const alpha = rate('alpha', input.alpha, 0.05, 0, 0.5)!;
  let breaker: Plan['breaker'];
  if (input.breaker === false) breaker = false;
  else {
    const b = input.breaker === undefined ? {} : input.breaker;
    if (!isObject(b)) fail('breaker', 'must be an object { errorRate?, windowSec?, minRequests? } or false');
    onlyKeys('breaker', b, ['errorRate', 'windowSec', 'minRequests']);
    breaker = {
      errorRate: rate('breaker.errorRate', b.errorRate, 0.2)!,
      windowSec: int('breaker.windowSec', b.windowSec, 60, 5, 3600),
      minRequests: int('breaker.minRequests', b.minRequests, 20, 1, 1e9),
    };
  }
  return {
    flag,
    treatment,
    control,
    stages,
    guards,
    alpha,
    breaker,
    noDataHoldSec: int('noDataHoldSec', input.noDataHoldSec, 120, 5, 86_400),
    baselineSec: int('baselineSec', input.baselineSec, 3600, 0, 86_400),
  };
}

/** Whether a state is final: nothing more happens to the plan (a new plan replaces it). */
export function isTerminal(state: PlanState): boolean {
  return state === 'rolled_back' || state === 'completed';
}
