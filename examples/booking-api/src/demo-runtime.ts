import type { PlanSpec } from '@rollgate/rollouts';
import { DemoGateway } from './gateway';
import type { GuardedRollout } from './guarded-rollout';
import { DemoTraffic } from './traffic';

/** The demo's own moving parts, shared by its controllers (a Nest provider; main.ts stops them). */
export class DemoRuntime {
  readonly gateway = new DemoGateway();
  readonly traffic = new DemoTraffic();

  constructor(
    /** Where the flags live: guarded rollouts need Redis. */
    readonly store: 'redis' | 'memory',
    /** Outcome recorder and rollout controller (Redis only). */
    readonly guarded: GuardedRollout | undefined,
    /** The plan the booking page's admin card starts (Redis only). */
    readonly plan: PlanSpec | undefined,
  ) {}
}
