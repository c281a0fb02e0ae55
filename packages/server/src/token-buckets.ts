import { ConfigError } from '@rollgate/redis';

// Token buckets in memory, one per key, for the events endpoint's rate limits: a bucket holds up
// to `burst` tokens and refills at `perSecond`; a request takes its cost at once or waits. The
// clock is injected (tests advance it; nothing here reads the wall clock by itself).

/** A bucket's size and refill rate. */
export interface RateLimit {
  /** Tokens a full bucket holds: what may be sent at once. */
  readonly burst: number;
  /** Tokens added per second, up to `burst`: the sustained rate. */
  readonly perSecond: number;
}

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date, ms. */
  at: number;
}

/**
 * Buckets by key, least recently used first (a Map in insertion order, re-inserted on use). At
 * most `maxKeys` are kept: a full bucket is the same as none and is dropped when met at the old
 * end; beyond the cap the least recently used bucket is dropped even if not full (its key starts
 * again with a full bucket).
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly limit: RateLimit,
    private readonly maxKeys: number,
  ) {}

  /** Keys with a bucket now (tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  /** Seconds until `cost` tokens are in `key`'s bucket (0: they are now). Takes nothing. */
  wait(key: string, cost: number, nowMs: number): number {
    const tokens = this.tokens(key, nowMs);
    if (tokens >= cost) return 0;
    return Math.max(1, Math.ceil((cost - tokens) / this.limit.perSecond));
  }

  /** Takes `cost` tokens (call after `wait` answered 0). */
  take(key: string, cost: number, nowMs: number): void {
    const tokens = this.tokens(key, nowMs) - cost;
    this.buckets.delete(key);
    this.buckets.set(key, { tokens, at: nowMs });
    this.prune(nowMs);
  }

  private tokens(key: string, nowMs: number): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return this.limit.burst;
    // a clock that went back refills nothing (and never drains)
    const elapsedSec = Math.max(0, nowMs - bucket.at) / 1000;
    return Math.min(this.limit.burst, bucket.tokens + elapsedSec * this.limit.perSecond);
  }

  /** Drops full buckets at the old end (a few per call), then the oldest beyond the cap. */
  private prune(nowMs: number): void {
    let checked = 0;
    for (const key of this.buckets.keys()) {
      if (checked++ >= 4 || this.tokens(key, nowMs) < this.limit.burst) break;
      this.buckets.delete(key);
    }
    while (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
  }
}

/** Checks a limit given in the options: a positive burst of at least `minBurst`, a positive rate. */
export function checkRateLimit(option: string, value: unknown, minBurst: number): RateLimit {
  const limit = value as Partial<RateLimit> | undefined;
  if (!limit || typeof limit !== 'object') throw new ConfigError(`${option} must be { burst, perSecond }`);
  if (typeof limit.burst !== 'number' || !Number.isInteger(limit.burst) || limit.burst < minBurst) {
    throw new ConfigError(`${option}.burst must be an integer >= ${minBurst} (at least the events one request may carry), got ${String(limit.burst)}`);
  }
  if (typeof limit.perSecond !== 'number' || !Number.isFinite(limit.perSecond) || limit.perSecond <= 0) {
    throw new ConfigError(`${option}.perSecond must be a number > 0, got ${String(limit.perSecond)}`);
  }
  return { burst: limit.burst, perSecond: limit.perSecond };
}
