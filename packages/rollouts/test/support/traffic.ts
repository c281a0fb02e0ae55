import { compileFlagSet, type FlagSnapshot } from '@rollgate/core';
import type { RedisFlagStore } from '@rollgate/redis';
import type { OutcomeRecorder } from '@rollgate/rollouts';

// Simulated traffic for controller tests: users evaluated against the flag as stored (real
// bucketing, real targeting), outcomes drawn per arm from a seeded generator, recorded per
// simulated second by a real OutcomeRecorder into a real Redis.

/** A fake clock the recorder and the controller share. */
export class FakeClock {
  constructor(public ms: number) {}
  readonly now = () => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** mulberry32: small, seeded, good enough for test traffic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ArmBehaviour {
  /** Chance that a request fails (5xx). */
  errorRate: number;
  /** Latency in ms for a uniform draw u in [0, 1). */
  latencyMs?: (u: number) => number;
}

export interface TrafficOptions {
  store: RedisFlagStore;
  recorder: OutcomeRecorder;
  clock: FakeClock;
  flag: string;
  /** Behaviour per variant served. */
  variants: Record<string, ArmBehaviour>;
  /** Requests per simulated second. */
  rps: number;
  /** Distinct users the requests come from. @default 400 */
  users?: number;
  /** Context attributes of user i (besides targetingKey). */
  context?: (i: number) => Record<string, unknown>;
  seed?: number;
}

/** Drives `seconds` of traffic: each second is recorded, then flushed; the flag is re-read when `reload()` is called. */
export class Traffic {
  private readonly random: () => number;
  private snapshot: FlagSnapshot | undefined;

  constructor(private readonly options: TrafficOptions) {
    this.random = prng(options.seed ?? 42);
  }

  /** Reads the flag set again (after the controller changed the split). */
  async reload(): Promise<void> {
    const set = await this.options.store.load();
    this.snapshot = compileFlagSet({ flags: set.flags, $evaluators: set.evaluators }).snapshot;
  }

  /**
   * Simulates `seconds` seconds of browser signals: `perSecond` users each second, each served by
   * the flag as stored; `signals(variant, random)` says what that user's page sends — events with
   * an optional value (`$pageview`, `$client_error`, `$feedback.negative`, `checkout.completed`).
   */
  async signals(seconds: number, perSecond: number, signals: (variant: string, random: () => number) => { name: string; value?: number }[]): Promise<void> {
    if (!this.snapshot) await this.reload();
    const { recorder, clock, flag } = this.options;
    const users = this.options.users ?? 400;
    for (let s = 0; s < seconds; s++) {
      for (let r = 0; r < perSecond; r++) {
        const i = Math.floor(this.random() * users);
        const ctx = { targetingKey: `user-${i}`, ...(this.options.context?.(i) ?? {}) };
        const result = this.snapshot!.evaluate(flag, ctx, { defaultValue: false, type: 'boolean' });
        if (result.variant === undefined) continue;
        const exposure = [{ flagKey: flag, variant: result.variant, split: result.reason === 'SPLIT', unit: ctx.targetingKey }];
        for (const e of signals(result.variant, this.random)) recorder.recordEvent(e.name, exposure, e.value);
      }
      await recorder.flush();
      clock.advance(1000);
    }
  }

  /** Simulates `seconds` seconds, advancing the clock one second at a time. */
  async run(seconds: number): Promise<void> {
    if (!this.snapshot) await this.reload();
    const { recorder, clock, flag, rps, variants } = this.options;
    const users = this.options.users ?? 400;
    for (let s = 0; s < seconds; s++) {
      for (let r = 0; r < rps; r++) {
        const i = Math.floor(this.random() * users);
        const ctx = { targetingKey: `user-${i}`, ...(this.options.context?.(i) ?? {}) };
        const result = this.snapshot!.evaluate(flag, ctx, { defaultValue: false, type: 'boolean' });
        const behaviour = result.variant !== undefined ? variants[result.variant] : undefined;
        if (!behaviour) continue; // disabled or unknown: nothing to record
        const error = this.random() < behaviour.errorRate;
        const durationMs = behaviour.latencyMs ? behaviour.latencyMs(this.random()) : 20 + 30 * this.random();
        recorder.recordRequest([{ flagKey: flag, variant: result.variant!, split: result.reason === 'SPLIT', unit: ctx.targetingKey }], { error, durationMs });
      }
      await recorder.flush();
      clock.advance(1000);
    }
  }
}
