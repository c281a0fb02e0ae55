import { FencedError, StoreUnavailableError, type RedisFlagStore } from '@rollgate/redis';
import { PlanConflictError, type Plan } from './plan';
import { runScript } from './scripts';

export interface PlanWriteOptions {
  /** Who: a user name, or `controller:<instance>@<lease epoch>`. */
  actor: string;
  /** Audit action (`create`, `start`, `advance`, `hold`, `rollback`…); omitted: an evidence update, not audited. */
  action?: string;
  reason?: string;
  /** For the controller: write only while holding this lease token (FencedError otherwise). */
  leaseToken?: string;
}

/**
 * Plans in Redis, one per flag (`rollgate:{env}:plans`), written by compare-and-set on
 * `planVersion`; transitions are audited in the flags' audit stream (kind "plan") and announced.
 */
export class PlanStore {
  constructor(
    private readonly store: RedisFlagStore,
    private readonly auditMaxLength = 10_000,
    /** The clock audit entries are stamped with. */
    private readonly now: () => number = Date.now,
  ) {}

  async get(flag: string): Promise<Plan | undefined> {
    const text = await this.store.connection.hget(this.store.keys.plans, flag).catch(unavailable);
    return text === null ? undefined : (JSON.parse(text) as Plan);
  }

  async list(): Promise<Plan[]> {
    const all = (await this.store.connection.hgetall(this.store.keys.plans).catch(unavailable)) as Record<string, string>;
    return Object.keys(all)
      .sort()
      .map((flag) => JSON.parse(all[flag]!) as Plan);
  }

  /**
   * Writes `plan` over the version it was read at (`plan.planVersion`, 0 for a new one) and returns
   * it as stored (planVersion + 1). PlanConflictError when someone wrote in between, FencedError
   * when a controller lost its lease; nothing is written then.
   */
  async write(plan: Plan, options: PlanWriteOptions): Promise<Plan> {
    const next: Plan = { ...plan, planVersion: plan.planVersion + 1 };
    const k = this.store.keys;
    try {
      await runScript(
        this.store.connection,
        'rollgate_plan_cas_v1',
        k.plans,
        k.audit,
        k.version,
        k.lease,
        plan.flag,
        plan.planVersion,
        JSON.stringify(next),
        options.leaseToken ?? '',
        options.action ?? '',
        options.actor,
        options.reason ?? '',
        this.now(),
        this.auditMaxLength,
        k.planChanges,
      );
      return next;
    } catch (e) {
      const message = (e as Error).message ?? '';
      const conflict = /PLAN_CONFLICT (\d+)/.exec(message);
      if (conflict) throw new PlanConflictError(plan.flag, plan.planVersion, Number(conflict[1]));
      if (message.startsWith('FENCED ')) throw new FencedError(`plan of "${plan.flag}" not written: the controller's lease is held by another controller`);
      if (message.startsWith('INVALID_WRITE ')) throw e;
      return unavailable(e);
    }
  }

  /** Deletes a plan (only a finished or draft one may go; the caller checks). */
  async remove(flag: string): Promise<void> {
    await this.store.connection.hdel(this.store.keys.plans, flag).catch(unavailable);
  }
}

function unavailable(e: unknown): never {
  throw new StoreUnavailableError(`Redis did not answer: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}
