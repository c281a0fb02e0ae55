import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { RedisFlagStore } from '@rollgate/redis';
import { OutcomeRecorder, RolloutController, type PlanSpec, type TickResult } from '@rollgate/rollouts';

type RolloutLogger = { warn(message: string): void };

// Guarded rollouts in the demo (Redis only: outcomes, plans and the controller's lease live
// there). Every instance records outcomes; every instance runs a controller, and the lease lets
// exactly one act per environment. Both tick fast here so that a plan moves in seconds: the
// controller every second (the library's default is 5 s), reading seconds 1 s after they end.

/** The demo plan: fast-payment 5% → 20% → 50% → 100%, 20 s per stage. Also for `rollgate plan create --file`. */
export const PLAN_FILE = path.resolve(__dirname, '../demo-plan.json');

export const CONTROLLER = { intervalMs: 1000, leaseTtlMs: 5000, lagSec: 1 } as const;
/** Outcome counts are written twice a second, so a second is complete in Redis before `lagSec` has passed. */
export const FLUSH_INTERVAL_MS = 500;

/** The demo plan, with each stage's least time set to `stageSec` when given (BOOKING_PLAN_STAGE_SEC; the tests use a few seconds). */
export function demoPlanSpec(stageSec?: number): PlanSpec {
  const spec = JSON.parse(readFileSync(PLAN_FILE, 'utf8')) as PlanSpec;
  if (stageSec !== undefined) spec.stages = spec.stages.map((s) => ({ ...s, minDurationSec: stageSec }));
  return spec;
}

export interface ControllerStatus {
  intervalMs: number;
  /** Ticks completed since start-up (any outcome, leader or not). */
  ticks: number;
  /** Whether this instance's controller held the lease at its last tick (null before the first). */
  leader: boolean | null;
  /** The last thing it did other than hold: advance, rollback, complete, pause, apply. */
  lastStep: { flag: string; action: string; reason: string; at: number } | null;
}

/** A logger that says a repeated failure (Redis away: every tick fails) once per 30 s. */
function throttled(warn: (line: string) => void): RolloutLogger {
  let last = 0;
  let suppressed = 0;
  return {
    warn(message: string) {
      if (message.startsWith('rollgate: rolling back')) return; // onTick prints the rollback
      const now = Date.now();
      if (now - last < 30_000) return void suppressed++;
      warn(suppressed > 0 ? `${message} (and ${suppressed} more warnings in the last 30 s)` : message);
      last = now;
      suppressed = 0;
    },
  };
}

export class GuardedRollout {
  readonly recorder: OutcomeRecorder;
  readonly controller: RolloutController;
  readonly status: ControllerStatus = { intervalMs: CONTROLLER.intervalMs, ticks: 0, leader: null, lastStep: null };

  constructor(store: RedisFlagStore, print: (line: string) => void) {
    const logger = throttled((line) => console.warn(line));
    this.recorder = new OutcomeRecorder({ store, flushIntervalMs: FLUSH_INTERVAL_MS, logger });
    this.controller = new RolloutController({
      store,
      ...CONTROLLER,
      logger,
      onTick: (result: TickResult) => {
        this.status.ticks++;
        this.status.leader = result.leader;
        for (const step of result.plans) {
          if (step.action === 'hold') continue;
          this.status.lastStep = { ...step, at: Date.now() };
          print(`rollout: ${step.flag}: ${step.action === 'rollback' ? 'ROLLED BACK' : step.action} — ${step.reason}`);
        }
      },
    });
  }

  start(): void {
    this.controller.start();
  }
  // Closed by demo.ts in order: controller.stop() before the app closes, recorder.close() after it.
}
