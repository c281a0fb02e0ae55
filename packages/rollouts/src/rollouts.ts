import { randomUUID } from 'node:crypto';
import { describeSplit, SplitEditError, setRollout } from '@rollgate/core';
import type { Redis } from 'ioredis';
import { NotFoundError, VersionConflictError, type RedisFlagStore } from '@rollgate/redis';
import { countAbove, quantileBucket } from './histogram';
import { addCounts, emptyCounts, OutcomeReader } from './outcome-reader';
import { isTerminal, normalizePlanSpec, PlanConflictError, PlanStateError, PlanValidationError, type Plan, type PlanState } from './plan';
import { PlanStore, type PlanWriteOptions } from './plan-store';

export interface RolloutsOptions {
  store: RedisFlagStore;
  /** The clock, in ms since the epoch. @default Date.now */
  now?: () => number;
  /** Audit entries kept (as the store's). @default 10000 */
  auditMaxLength?: number;
}

/** Who acts and why; a controller adds its lease token. */
export interface ActionOptions {
  actor: string;
  reason?: string;
  /** Compare-and-set: act only if the plan is still at this version. */
  expectedPlanVersion?: number;
}

/** Control requests needed before latency thresholds are frozen from the control arm itself. */
export const BASELINE_MIN_REQUESTS = 200;

/**
 * Plans and what people do with them — create, start, pause, resume, advance, approve, roll
 * back — over the one audited write path. The RolloutController drives running plans with the
 * same operations under its lease.
 */
export class Rollouts {
  readonly plans: PlanStore;
  readonly outcomes: OutcomeReader;
  readonly now: () => number;
  private readonly planWatchers = new Set<(flag: string, planVersion: number) => void>();
  private planSubscriber: { disconnect(): void } | undefined;
  /** Settles when the plan subscriber's SUBSCRIBE has been answered. */
  private planSubscribed: Promise<void> | undefined;

  constructor(readonly options: RolloutsOptions) {
    this.now = options.now ?? Date.now;
    this.plans = new PlanStore(options.store, options.auditMaxLength, this.now);
    this.outcomes = new OutcomeReader(options.store);
  }

  private get store(): RedisFlagStore {
    return this.options.store;
  }

  /**
   * Calls `onChange(flag, planVersion)` after every plan write, from anywhere (pub/sub on a
   * connection of its own, opened for the first watcher and closed after the last). Returns a
   * function that stops.
   *
   * `onSubscribed`, when given, is called once Redis has confirmed the subscription (or refused
   * it): a caller that reads the plans then misses no write made after its read.
   */
  watchPlans(onChange: (flag: string, planVersion: number) => void, onSubscribed?: () => void): () => void {
    this.planWatchers.add(onChange);
    if (!this.planSubscriber) {
      // Cluster and Redis both have duplicate(); the union's signatures do not unify
      const sub = (this.store.connection as Redis).duplicate();
      this.planSubscriber = sub;
      sub.on('error', () => {
        // reconnects by itself (and resubscribes); a watcher reloads what it shows on 'available'
      });
      sub.on('message', (channel: string, message: string) => {
        if (channel !== this.store.keys.planChanges) return;
        try {
          const { flag, planVersion } = JSON.parse(message) as { flag?: unknown; planVersion?: unknown };
          if (typeof flag !== 'string' || typeof planVersion !== 'number') return;
          for (const w of this.planWatchers) w(flag, planVersion);
        } catch {
          // not one of ours
        }
      });
      this.planSubscribed = sub.subscribe(this.store.keys.planChanges).then(
        () => undefined,
        () => undefined, // refused (Redis unreachable): the watcher reads again when it is back
      );
    }
    let watching = true;
    if (onSubscribed) void this.planSubscribed!.then(() => watching && onSubscribed());
    return () => {
      watching = false;
      this.planWatchers.delete(onChange);
      if (this.planWatchers.size === 0 && this.planSubscriber) {
        this.planSubscriber.disconnect();
        this.planSubscriber = undefined;
      }
    };
  }

  async get(flag: string): Promise<Plan> {
    const plan = await this.plans.get(flag);
    if (!plan) throw new NotFoundError(`flag "${flag}" has no rollout plan; create one with \`rollgate plan create\``);
    return plan;
  }

  list(): Promise<Plan[]> {
    return this.plans.list();
  }

  /**
   * Creates a draft plan (replacing a finished one). The flag must exist with both variants, and
   * its split must be one the plan can ramp (the tail `fractional`, or none yet).
   */
  async create(spec: unknown, options: ActionOptions): Promise<Plan> {
    const normalized = normalizePlanSpec(spec);
    const set = await this.store.load();
    const def = set.flags[normalized.flag] as { variants?: Record<string, unknown> } | undefined;
    if (!def) throw new NotFoundError(`flag "${normalized.flag}" does not exist`);
    for (const field of ['treatment', 'control'] as const) {
      if (!def.variants || !Object.prototype.hasOwnProperty.call(def.variants, normalized[field])) {
        throw new PlanValidationError(`${field}: flag "${normalized.flag}" has no variant "${normalized[field]}" (variants: ${Object.keys(def.variants ?? {}).join(', ')})`);
      }
    }
    // the same edit every stage will make, tried now: refused with the reason if the flag cannot take it
    try {
      setRollout(normalized.flag, def, normalized.stages[0]!.percent, { variant: normalized.treatment, rest: normalized.control });
    } catch (e) {
      if (e instanceof SplitEditError) throw new PlanValidationError(`flag: ${e.message}`);
      throw e;
    }
    const others = (describeSplit(def)?.buckets ?? []).filter(([v, w]) => w > 0 && v !== normalized.treatment && v !== normalized.control);
    if (others.length > 0) {
      throw new PlanValidationError(`flag: the split of "${normalized.flag}" also serves ${others.map(([v]) => `"${v}"`).join(', ')}; a plan compares exactly two variants — remove the others from the split first`);
    }
    const existing = await this.plans.get(normalized.flag);
    if (existing && !isTerminal(existing.state) && existing.state !== 'draft') {
      throw new PlanStateError(`flag "${normalized.flag}" already has a ${existing.state} plan; roll it back or let it complete before creating another`);
    }
    if (options.expectedPlanVersion !== undefined && options.expectedPlanVersion !== (existing?.planVersion ?? 0)) {
      throw new PlanConflictError(normalized.flag, options.expectedPlanVersion, existing?.planVersion ?? 0);
    }
    const plan: Plan = {
      id: randomUUID(),
      ...normalized,
      state: 'draft',
      stage: 0,
      runId: null,
      startedAt: null,
      stageEnteredAt: null,
      applied: false,
      approvedStages: [],
      holdReason: null,
      thresholds: null,
      evidence: null,
      created: { actor: options.actor, at: this.now() },
      last: null,
      planVersion: existing?.planVersion ?? 0,
    };
    return this.write(plan, 'create', options);
  }

  /** Starts a draft: freezes the latency thresholds from the control's recent traffic, sets the first stage's split. */
  async start(flag: string, options: ActionOptions): Promise<Plan> {
    const now = this.now();
    const nowSec = Math.floor(now / 1000);
    let thresholds: Plan['thresholds'] = null;
    const draft = await this.pinned(flag, options, ['draft'], 'start');
    if (draft.guards.some((g) => g.metric === 'latency') && draft.baselineSec > 0) {
      const before = await this.outcomes.totals(flag, nowSec - draft.baselineSec, nowSec - 1);
      const control = emptyCounts();
      for (const arm of [`split:${draft.control}`, `targeted:${draft.control}`]) {
        const c = before.get(arm);
        if (c) addCounts(control, c);
      }
      if (control.requests >= BASELINE_MIN_REQUESTS) thresholds = { p95: quantileBucket(control.histogram, 0.95), p99: quantileBucket(control.histogram, 0.99), from: 'baseline' };
    }
    const started = await this.transition(flag, options, ['draft'], 'start', (plan) => ({
      ...plan,
      state: 'running',
      stage: 0,
      runId: randomUUID(),
      startedAt: now,
      stageEnteredAt: now,
      applied: false,
      approvedStages: [],
      holdReason: null,
      thresholds,
      evidence: null,
    }));
    return this.applyAndRecord(started, options);
  }

  pause(flag: string, options: ActionOptions): Promise<Plan> {
    return this.transition(flag, options, ['running'], 'pause', (p) => ({ ...p, state: 'paused', holdReason: `paused by ${options.actor}${options.reason ? `: ${options.reason}` : ''}` }));
  }

  /** Resumes a paused plan; its evidence carries on. A split changed meanwhile is put back to the stage's. */
  async resume(flag: string, options: ActionOptions): Promise<Plan> {
    const plan = await this.transition(flag, options, ['paused'], 'resume', (p) => ({ ...p, state: 'running', holdReason: null, applied: false }));
    return this.applyAndRecord(plan, options);
  }

  /** Lets a stage that needs approval advance (the controller still checks its health). */
  approve(flag: string, options: ActionOptions): Promise<Plan> {
    return this.transition(flag, options, ['running', 'paused'], 'approve', (p) => {
      if (!p.stages[p.stage]!.approval) throw new PlanStateError(`stage ${p.stage + 1} (${p.stages[p.stage]!.percent}%) of "${flag}" does not need approval`);
      return { ...p, approvedStages: [...new Set([...p.approvedStages, p.stage])] };
    });
  }

  /** Moves to the next stage now, whatever the checks say (audited as a manual advance); completes after the last. */
  async advance(flag: string, options: ActionOptions): Promise<Plan> {
    const plan = await this.transition(flag, options, ['running', 'paused'], 'advance', (p) => nextStage(p, this.now()));
    return plan.state === 'completed' ? plan : this.applyAndRecord(plan, options);
  }

  /** Serves the control to everyone in the split, in one flag write; the plan ends rolled back. */
  async rollback(flag: string, options: ActionOptions & { leaseToken?: string }): Promise<Plan> {
    const plan = await this.transition(
      flag,
      options,
      ['running', 'paused', 'draft'],
      'rollback',
      (p) => ({ ...p, state: 'rolled_back', applied: false, holdReason: null }),
      options.leaseToken,
    );
    return this.applyAndRecord(plan, options, options.leaseToken);
  }

  /** The split percent the plan wants the flag at now. */
  desiredPercent(plan: Plan): number {
    return plan.state === 'rolled_back' ? 0 : plan.stages[plan.stage]!.percent;
  }

  /**
   * Sets the flag's split to what the plan wants (one audited flag write, skipped when it is
   * already there), then records `applied` on the plan. Used after every stage change and by the
   * controller to re-assert a plan whose flag write was lost.
   */
  async applyAndRecord(plan: Plan, options: { actor: string; reason?: string }, leaseToken?: string): Promise<Plan> {
    const percent = this.desiredPercent(plan);
    for (let attempt = 1; ; attempt++) {
      const set = await this.store.load();
      const def = set.flags[plan.flag];
      if (def === undefined) throw new NotFoundError(`flag "${plan.flag}" does not exist any more`);
      const edit = setRollout(plan.flag, def, percent, { variant: plan.treatment, rest: plan.control });
      if (JSON.stringify(edit.before) === JSON.stringify(edit.after)) break;
      try {
        await this.store.apply([{ kind: 'flag', key: plan.flag, definition: edit.definition }], {
          actor: options.actor,
          action: plan.state === 'rolled_back' ? 'rollback' : 'rollout',
          reason: `plan ${plan.state === 'rolled_back' ? 'rolled back' : `stage ${plan.stage + 1}/${plan.stages.length}: ${percent}%`}${options.reason ? ` — ${options.reason}` : ''}`,
          expectedVersion: set.version,
          ...(leaseToken ? { leaseToken } : {}),
        });
        break;
      } catch (e) {
        if (!(e instanceof VersionConflictError) || attempt >= 3) throw e;
      }
    }
    // record it; a concurrent evidence update from the controller is re-read, not an error
    for (let current = plan; ; ) {
      try {
        return await this.plans.write({ ...current, applied: true }, { actor: options.actor, ...(leaseToken ? { leaseToken } : {}) });
      } catch (e) {
        if (!(e instanceof PlanConflictError)) throw e;
        const fresh = await this.get(plan.flag);
        if (fresh.runId !== plan.runId || fresh.state !== plan.state || fresh.stage !== plan.stage) return fresh;
        current = fresh;
      }
    }
  }

  /** Writes a plan transition: audited with the action, the actor and why. */
  write(plan: Plan, action: string, options: { actor: string; reason?: string }, leaseToken?: string): Promise<Plan> {
    const reason = options.reason ?? plan.holdReason ?? '';
    const next: Plan = { ...plan, last: { action, reason, actor: options.actor, at: this.now() } };
    const writeOptions: PlanWriteOptions = { actor: options.actor, action, reason, ...(leaseToken ? { leaseToken } : {}) };
    return this.plans.write(next, writeOptions);
  }

  private async pinned(flag: string, options: ActionOptions, states: PlanState[], action: string): Promise<Plan> {
    const plan = await this.get(flag);
    if (options.expectedPlanVersion !== undefined && options.expectedPlanVersion !== plan.planVersion) {
      throw new PlanConflictError(flag, options.expectedPlanVersion, plan.planVersion);
    }
    if (!states.includes(plan.state)) throw new PlanStateError(`cannot ${action} the plan of "${flag}": it is ${plan.state} (${action} needs ${states.join(' or ')})`);
    return plan;
  }

  /**
   * Reads, changes and writes a plan. Not pinned (no expectedPlanVersion), a write that loses to
   * another (the controller's evidence update every few seconds) is re-read and retried.
   */
  private async transition(flag: string, options: ActionOptions, states: PlanState[], action: string, change: (plan: Plan) => Plan, leaseToken?: string): Promise<Plan> {
    for (let attempt = 1; ; attempt++) {
      const plan = await this.pinned(flag, options, states, action);
      try {
        return await this.write(change(plan), action, options, leaseToken);
      } catch (e) {
        if (!(e instanceof PlanConflictError) || options.expectedPlanVersion !== undefined || attempt >= 5) throw e;
      }
    }
  }
}

/** The plan one stage further (completed after the last), with the new stage's counts starting afresh. */
export function nextStage(plan: Plan, now: number): Plan {
  if (plan.stage >= plan.stages.length - 1) return { ...plan, state: 'completed', holdReason: null };
  return {
    ...plan,
    state: plan.state === 'paused' ? 'paused' : 'running',
    stage: plan.stage + 1,
    stageEnteredAt: now,
    applied: false,
    holdReason: null,
    evidence: plan.evidence ? { ...plan.evidence, stage: freshStage(), recent: [] } : null,
  };
}

export function freshStage(): NonNullable<Plan['evidence']>['stage'] {
  const arm = () => ({ requests: 0, errors: 0, histogram: emptyCounts().histogram, units: 0 });
  return { treatment: arm(), control: arm(), targeted: arm() };
}

/** Slow requests in a histogram for a latency guard: above the frozen threshold bucket. */
export function slowCount(histogram: readonly number[], thresholds: NonNullable<Plan['thresholds']>, quantile: 0.95 | 0.99): number {
  return countAbove(histogram, quantile === 0.95 ? thresholds.p95 : thresholds.p99);
}
