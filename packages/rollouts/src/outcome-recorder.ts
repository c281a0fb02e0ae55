import { ConfigError, type RedisFlagStore } from '@rollgate/redis';
import { valueHistogramBucket } from '@rollgate/core';
import { armOf, type Exposure } from './exposure';
import { latencyBucket, LATENCY_BUCKETS } from './histogram';
import { runScript } from './scripts';
import { positiveInteger, type RolloutLogger } from './validation';

export interface OutcomeRecorderOptions {
  /** The flag store whose environment (and Redis connection) the outcomes are recorded in. */
  store: RedisFlagStore;
  /** How often the counts of the last seconds are written to Redis (one command). @default 1000 */
  flushIntervalMs?: number;
  /** How long per-second buckets and unit counts are kept in Redis. @default 10800 (3 h) */
  ttlSec?: number;
  /** Distinct units remembered per arm and second (beyond that, units are not counted again). @default 1000 */
  maxUnitsPerSecond?: number;
  /** Seconds of counts kept while Redis does not take them; older ones are dropped (and counted). @default 120 */
  maxPendingSeconds?: number;
  /** Feedback reports kept per flag (oldest dropped first). @default 10000 */
  feedbackPerFlag?: number;
  /** How long feedback is kept. @default 2592000 (30 days) */
  feedbackRetentionSec?: number;
  /** Keep the reporter's targetingKey with their feedback. @default true */
  feedbackUnit?: boolean;
  /** The clock, in ms since the epoch. @default Date.now */
  now?: () => number;
  /** Receives flush failures (once per outage). @default silent */
  logger?: RolloutLogger;
}

/** Outcome of one request, as the guard's adapter saw it. */
export interface RequestOutcome {
  /** A 5xx response, or the handler threw. */
  readonly error: boolean;
  /** From the request's arrival to the response's end. */
  readonly durationMs: number;
}

/** Values of one event name in one arm and second: what ValueComparison reads (integers, for HINCRBY). */
interface ValueSums {
  n: number;
  sum: number;
  sumSquares: number;
  /** valueHistogramBucket → count */
  histogram: Map<number, number>;
}

/** Counts of one arm in one second (or in total). */
interface ArmCounts {
  requests: number;
  errors: number;
  histogram: Uint32Array;
  events: Map<string, number>;
  values: Map<string, ValueSums>;
  units: Set<string>;
}

/**
 * Largest value recorded; larger ones are recorded as this (10^7: 2.8 h in ms, 100,000.00 in
 * cents). It keeps the variance finite for the statistics and a second's Σ value² far inside
 * Redis' 64-bit integers.
 */
export const MAX_EVENT_VALUE = 10_000_000;

/** Cumulative counts per flag and arm since the recorder started (Prometheus). */
export interface ArmTotals {
  readonly flagKey: string;
  readonly arm: string;
  readonly variant: string;
  readonly split: boolean;
  readonly requests: number;
  readonly errors: number;
  readonly histogram: Uint32Array;
  /** Sum of the latencies, ms (Prometheus' `_sum`). */
  readonly durationSumMs: number;
  readonly events: ReadonlyMap<string, number>;
}

type MutableTotals = { -readonly [K in keyof ArmTotals]: ArmTotals[K] } & { events: Map<string, number> };

const EMPTY_UNITS: ReadonlySet<string> = new Set();

/** Users' feedback about one flag, attributed to the variant the server evaluated for them (what @rollgate/server's events endpoint reports). */
export interface FeedbackReport {
  readonly flagKey: string;
  readonly variant: string;
  readonly split: boolean;
  readonly sentiment: 'positive' | 'neutral' | 'negative';
  /** Untrusted text, kept as sent; shown as text. */
  readonly comment?: string | undefined;
  readonly unit?: string | undefined;
}

/** An allow-list copy: nothing but the report's own fields is kept. */
function pickFeedback(r: FeedbackReport): FeedbackReport {
  return { flagKey: String(r.flagKey), variant: String(r.variant), split: r.split === true, sentiment: r.sentiment, comment: typeof r.comment === 'string' ? r.comment : undefined, unit: typeof r.unit === 'string' ? r.unit : undefined };
}

function newCounts(): ArmCounts {
  return { requests: 0, errors: 0, histogram: new Uint32Array(LATENCY_BUCKETS), events: new Map(), values: new Map(), units: new Set() };
}

/**
 * Counts requests and tracked events per flag and arm in memory — no Redis command per request —
 * and writes them to per-second buckets in Redis once per `flushIntervalMs` with one command.
 * Buckets from any number of instances merge by addition.
 */
export class OutcomeRecorder {
  private readonly store: RedisFlagStore;
  private readonly ttlSec: number;
  private readonly maxUnits: number;
  private readonly maxPendingSeconds: number;
  private readonly now: () => number;
  private readonly logger: RolloutLogger | undefined;
  /** second → flag → arm → counts, not yet written */
  private pending = new Map<number, Map<string, Map<string, ArmCounts>>>();
  private readonly totals = new Map<string, Map<string, MutableTotals>>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** Feedback reports not yet written (bounded: the oldest are dropped while Redis is away). */
  private feedback: (FeedbackReport & { time: number })[] = [];
  private readonly feedbackPerFlag: number;
  private readonly feedbackRetentionSec: number;
  private readonly feedbackUnit: boolean;
  private failing = false;
  private closed = false;
  /** Seconds of counts dropped because Redis did not take them in time. */
  droppedSeconds = 0;

  constructor(options: OutcomeRecorderOptions) {
    if (!options?.store?.keys) throw new ConfigError('OutcomeRecorder: options.store (a RedisFlagStore) is required');
    this.store = options.store;
    const flushIntervalMs = positiveInteger('OutcomeRecorder', 'flushIntervalMs', options.flushIntervalMs ?? 1000, 2 ** 31 - 1);
    this.ttlSec = positiveInteger('OutcomeRecorder', 'ttlSec', options.ttlSec ?? 10_800);
    this.maxUnits = positiveInteger('OutcomeRecorder', 'maxUnitsPerSecond', options.maxUnitsPerSecond ?? 1000);
    this.maxPendingSeconds = positiveInteger('OutcomeRecorder', 'maxPendingSeconds', options.maxPendingSeconds ?? 120);
    this.feedbackPerFlag = positiveInteger('OutcomeRecorder', 'feedbackPerFlag', options.feedbackPerFlag ?? 10_000);
    this.feedbackRetentionSec = positiveInteger('OutcomeRecorder', 'feedbackRetentionSec', options.feedbackRetentionSec ?? 30 * 86_400);
    this.feedbackUnit = options.feedbackUnit !== false;
    this.now = options.now ?? Date.now;
    this.logger = options.logger;
    this.timer = setInterval(() => void this.flush(), flushIntervalMs);
    this.timer.unref();
  }

  /** Counts a finished request in the arm of every flag exposure it had. */
  recordRequest(exposures: readonly Exposure[], outcome: RequestOutcome): void {
    if (this.closed || exposures.length === 0) return;
    const second = Math.floor(this.now() / 1000);
    const bucket = latencyBucket(outcome.durationMs);
    for (const exposure of exposures) {
      const counts = this.countsFor(second, exposure);
      counts.requests++;
      if (outcome.error) counts.errors++;
      counts.histogram[bucket]!++;
      const total = this.totalFor(exposure);
      total.requests++;
      if (outcome.error) total.errors++;
      total.histogram[bucket]!++;
      total.durationSumMs += outcome.durationMs;
    }
  }

  /**
   * Counts a tracked event (e.g. `payment.failed`) in the arm of every exposure given. With a
   * `value` (e.g. the ms a checkout took), also its sums and histogram per arm, for ValueComparison:
   * rounded to a whole number from 0 to MAX_EVENT_VALUE.
   */
  recordEvent(name: string, exposures: readonly Exposure[], value?: number): void {
    if (this.closed || exposures.length === 0) return;
    const second = Math.floor(this.now() / 1000);
    const v = value === undefined || !Number.isFinite(value) ? undefined : Math.min(MAX_EVENT_VALUE, Math.max(0, Math.round(value)));
    for (const exposure of exposures) {
      const counts = this.countsFor(second, exposure);
      counts.events.set(name, (counts.events.get(name) ?? 0) + 1);
      if (v !== undefined) {
        let sums = counts.values.get(name);
        if (!sums) counts.values.set(name, (sums = { n: 0, sum: 0, sumSquares: 0, histogram: new Map() }));
        sums.n++;
        sums.sum += v;
        sums.sumSquares += v * v;
        const b = valueHistogramBucket(v);
        sums.histogram.set(b, (sums.histogram.get(b) ?? 0) + 1);
      }
      const total = this.totalFor(exposure);
      total.events.set(name, (total.events.get(name) ?? 0) + 1);
    }
  }

  /**
   * Keeps a feedback report (its counts per sentiment go through recordEvent): written with the
   * next flush into the flag's capped stream, with the variant and the comment as sent.
   */
  recordFeedback(report: FeedbackReport): void {
    if (this.closed) return;
    if (this.feedback.length >= 1000) this.feedback.shift(); // Redis away for long: keep the newest
    this.feedback.push({ ...pickFeedback(report), time: this.now() });
  }

  /** Cumulative counts per flag and arm since the recorder started. */
  armTotals(): ArmTotals[] {
    const out: ArmTotals[] = [];
    for (const arms of this.totals.values()) for (const t of arms.values()) out.push(t);
    return out;
  }

  /**
   * Writes every pending count (one command); on failure keeps them for the next flush, up to
   * `maxPendingSeconds`. One flush at a time: a call during a flush waits for it, then flushes again.
   */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.pending.size === 0 && this.feedback.length === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const feedback = this.feedback;
    this.feedback = [];
    this.flushing = Promise.all([batch.size > 0 ? this.write(batch) : undefined, feedback.length > 0 ? this.writeFeedback(feedback) : undefined])
      .then(() => undefined)
      .finally(() => (this.flushing = undefined));
    await this.flushing;
  }

  /** Appends feedback to each flag's stream, capped by count and by age (one pipeline). */
  private async writeFeedback(reports: (FeedbackReport & { time: number })[]): Promise<void> {
    const pipeline = this.store.connection.pipeline();
    const keys = new Set<string>();
    for (const r of reports) {
      const key = this.store.keys.feedback(r.flagKey);
      keys.add(key);
      const fields = ['variant', r.variant, 'split', r.split ? '1' : '0', 'sentiment', r.sentiment, 'comment', r.comment ?? '', 'time', String(r.time)];
      if (this.feedbackUnit && r.unit !== undefined) fields.push('unit', r.unit);
      pipeline.xadd(key, 'MAXLEN', this.feedbackPerFlag, '*', ...fields); // exact: the cap is a promise (oldest dropped first)
    }
    const oldest = this.now() - this.feedbackRetentionSec * 1000;
    for (const key of keys) pipeline.xtrim(key, 'MINID', '~', String(Math.max(0, oldest))).expire(key, this.feedbackRetentionSec);
    try {
      const replies = (await pipeline.exec()) ?? [];
      const failed = replies.find(([err]) => err);
      if (failed) throw failed[0];
    } catch (e) {
      this.logger?.warn(`rollgate: ${reports.length} feedback reports not written to Redis (${(e as Error).message}); they are kept for the next flush`);
      this.feedback = [...reports, ...this.feedback].slice(-1000);
    }
  }

  /** Stops the timer and writes what is pending (once). */
  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    this.closed = true;
  }

  private countsFor(second: number, exposure: Exposure): ArmCounts {
    let flags = this.pending.get(second);
    if (!flags) this.pending.set(second, (flags = new Map()));
    let arms = flags.get(exposure.flagKey);
    if (!arms) flags.set(exposure.flagKey, (arms = new Map()));
    const arm = armOf(exposure);
    let counts = arms.get(arm);
    if (!counts) arms.set(arm, (counts = newCounts()));
    if (exposure.unit !== undefined && counts.units.size < this.maxUnits) counts.units.add(exposure.unit);
    return counts;
  }

  private totalFor(exposure: Exposure): MutableTotals {
    let arms = this.totals.get(exposure.flagKey);
    if (!arms) this.totals.set(exposure.flagKey, (arms = new Map()));
    const arm = armOf(exposure);
    let total = arms.get(arm);
    if (!total) arms.set(arm, (total = { flagKey: exposure.flagKey, arm, variant: exposure.variant, split: exposure.split, requests: 0, errors: 0, histogram: new Uint32Array(LATENCY_BUCKETS), durationSumMs: 0, events: new Map() }));
    return total;
  }

  private async write(batch: Map<number, Map<string, Map<string, ArmCounts>>>): Promise<void> {
    const keys = this.store.keys;
    const hashKeys: string[] = [];
    const hashArgs: (string | number)[] = [];
    const units = new Map<string, Set<string>>(); // HyperLogLog key → elements
    for (const [second, flags] of batch) {
      for (const [flagKey, arms] of flags) {
        const fields: (string | number)[] = [];
        for (const [arm, c] of arms) {
          const prefix = `${encodeURIComponent(arm)}|`;
          if (c.requests > 0) fields.push(`${prefix}req`, c.requests);
          if (c.errors > 0) fields.push(`${prefix}err`, c.errors);
          for (let i = 0; i < c.histogram.length; i++) if (c.histogram[i]! > 0) fields.push(`${prefix}h${i}`, c.histogram[i]!);
          for (const [name, n] of c.events) fields.push(`${prefix}ev:${encodeURIComponent(name)}`, n);
          for (const [name, v] of c.values) {
            const field = `${prefix}v:${encodeURIComponent(name)}:`;
            fields.push(`${field}n`, v.n, `${field}sum`, v.sum, `${field}sq`, v.sumSquares);
            for (const [b, n] of v.histogram) fields.push(`${field}h${b}`, n);
          }
          if (c.units.size > 0) {
            const key = keys.units(flagKey, arm, Math.floor(second / 60));
            const set = units.get(key) ?? new Set<string>();
            for (const u of c.units) set.add(u);
            units.set(key, set);
          }
        }
        if (fields.length === 0) continue;
        hashKeys.push(keys.outcomes(flagKey, second));
        hashArgs.push(fields.length / 2, ...fields);
      }
    }
    const unitKeys = [...units.keys()];
    const unitArgs: (string | number)[] = [];
    for (const key of unitKeys) {
      const elements = units.get(key) ?? EMPTY_UNITS;
      unitArgs.push(elements.size, ...elements);
    }
    const allKeys = [...hashKeys, ...unitKeys];
    if (allKeys.length === 0) return;
    try {
      await runScript(this.store.connection, 'rollgate_flush_v1', allKeys.length, ...allKeys, this.ttlSec, hashKeys.length, ...hashArgs, ...unitArgs);
      if (this.failing) this.logger?.warn('rollgate: outcome counts are written to Redis again');
      this.failing = false;
    } catch (e) {
      if (!this.failing) this.logger?.warn(`rollgate: outcome counts not written to Redis (${(e as Error).message}); keeping up to ${this.maxPendingSeconds} s of them`);
      this.failing = true;
      this.requeue(batch);
    }
  }

  /** Puts a batch that could not be written back in front of what came since, dropping the oldest seconds beyond the cap. */
  private requeue(batch: Map<number, Map<string, Map<string, ArmCounts>>>): void {
    for (const [second, flags] of this.pending) {
      const into = batch.get(second);
      if (!into) {
        batch.set(second, flags);
        continue;
      }
      for (const [flagKey, arms] of flags) {
        const intoArms = into.get(flagKey) ?? new Map<string, ArmCounts>();
        into.set(flagKey, intoArms);
        for (const [arm, c] of arms) {
          const t = intoArms.get(arm);
          if (!t) {
            intoArms.set(arm, c);
            continue;
          }
          t.requests += c.requests;
          t.errors += c.errors;
          for (let i = 0; i < c.histogram.length; i++) t.histogram[i]! += c.histogram[i]!;
          for (const [name, n] of c.events) t.events.set(name, (t.events.get(name) ?? 0) + n);
          for (const [name, v] of c.values) {
            const into = t.values.get(name);
            if (!into) {
              t.values.set(name, v);
              continue;
            }
            into.n += v.n;
            into.sum += v.sum;
            into.sumSquares += v.sumSquares;
            for (const [b, n] of v.histogram) into.histogram.set(b, (into.histogram.get(b) ?? 0) + n);
          }
          for (const u of c.units) if (t.units.size < this.maxUnits) t.units.add(u);
        }
      }
    }
    const seconds = [...batch.keys()].sort((a, b) => a - b);
    const newest = seconds[seconds.length - 1] ?? 0;
    for (const second of seconds) {
      if (second > newest - this.maxPendingSeconds) break;
      batch.delete(second);
      this.droppedSeconds++;
    }
    this.pending = batch;
  }
}
