import type { RedisFlagStore } from '@rollgate/redis';
import { VALUE_HISTOGRAM_BUCKETS } from '@rollgate/core';
import { LATENCY_BUCKETS } from './histogram';

/** One arm's counts, over one second or merged over several. */
export interface ArmCounts {
  requests: number;
  errors: number;
  /** Latency histogram (see histogram.ts), LATENCY_BUCKETS counts. */
  histogram: number[];
  /** Tracked events by name. */
  events: Record<string, number>;
  /** Events with a value, by name: count, sums and histogram (ValueComparison's ValueArmBucket). */
  values: Record<string, ValueSums>;
}

export interface ValueSums {
  n: number;
  sum: number;
  sumSquares: number;
  /** VALUE_HISTOGRAM_BUCKETS counts (core's valueHistogramBucket). */
  histogram: number[];
}

function emptyValues(): ValueSums {
  return { n: 0, sum: 0, sumSquares: 0, histogram: new Array<number>(VALUE_HISTOGRAM_BUCKETS).fill(0) };
}

/** Every arm's counts in one second, as all instances recorded them. */
export interface SecondCounts {
  /** Epoch second. */
  readonly second: number;
  /** arm (`split:<variant>` / `targeted:<variant>`) → counts */
  readonly arms: ReadonlyMap<string, ArmCounts>;
}

export function emptyCounts(): ArmCounts {
  // events by name: a null prototype, so a name such as "__proto__" is a plain entry
  return { requests: 0, errors: 0, histogram: new Array<number>(LATENCY_BUCKETS).fill(0), events: Object.create(null) as Record<string, number>, values: Object.create(null) as Record<string, ValueSums> };
}

/** Adds `b` into `a` (in place) and returns `a`. */
export function addCounts(a: ArmCounts, b: ArmCounts): ArmCounts {
  a.requests += b.requests;
  a.errors += b.errors;
  for (let i = 0; i < LATENCY_BUCKETS; i++) a.histogram[i]! += b.histogram[i] ?? 0;
  for (const [name, n] of Object.entries(b.events)) a.events[name] = (a.events[name] ?? 0) + n;
  for (const [name, v] of Object.entries(b.values)) {
    const into = a.values[name] ?? (a.values[name] = emptyValues());
    into.n += v.n;
    into.sum += v.sum;
    into.sumSquares += v.sumSquares;
    for (let i = 0; i < VALUE_HISTOGRAM_BUCKETS; i++) into.histogram[i]! += v.histogram[i] ?? 0;
  }
  return a;
}

/** Reads what OutcomeRecorder instances wrote: per-second counts per arm, distinct units per arm. */
export class OutcomeReader {
  constructor(private readonly store: RedisFlagStore) {}

  /** Counts for each second from `fromSec` to `toSec` inclusive (seconds without data have no arms). One round trip. */
  async seconds(flagKey: string, fromSec: number, toSec: number): Promise<SecondCounts[]> {
    if (toSec < fromSec) return [];
    const pipeline = this.store.connection.pipeline();
    for (let s = fromSec; s <= toSec; s++) pipeline.hgetall(this.store.keys.outcomes(flagKey, s));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, reply], i) => {
      if (err) throw err;
      return { second: fromSec + i, arms: parseHash(reply) };
    });
  }

  /** Counts summed over a span of seconds, per arm. */
  async totals(flagKey: string, fromSec: number, toSec: number): Promise<Map<string, ArmCounts>> {
    const out = new Map<string, ArmCounts>();
    for (const { arms } of await this.seconds(flagKey, fromSec, toSec)) {
      for (const [arm, c] of arms) addCounts(out.get(arm) ?? out.set(arm, emptyCounts()).get(arm)!, c);
    }
    return out;
  }

  /** Distinct units (approximate, HyperLogLog) seen in `arm` in the minutes covering the span. */
  async units(flagKey: string, arm: string, fromSec: number, toSec: number): Promise<number> {
    const keys: string[] = [];
    for (let m = Math.floor(fromSec / 60); m <= Math.floor(toSec / 60); m++) keys.push(this.store.keys.units(flagKey, arm, m));
    if (keys.length === 0) return 0;
    return Number(await this.store.connection.pfcount(...(keys as [string, ...string[]])));
  }
}

/** Parses a bucket hash (`<arm>|req`, `|err`, `|h<i>`, `|ev:<name>` → count); unknown fields are ignored. */
function parseHash(reply: unknown): Map<string, ArmCounts> {
  const arms = new Map<string, ArmCounts>();
  const entries: [string, string][] =
    reply instanceof Map ? ([...reply.entries()] as [string, string][]) : reply && typeof reply === 'object' ? Object.entries(reply as Record<string, string>) : [];
  for (const [field, raw] of entries) {
    const bar = field.lastIndexOf('|');
    const n = Number(raw);
    if (bar <= 0 || !Number.isSafeInteger(n) || n < 0) continue;
    let arm: string;
    try {
      arm = decodeURIComponent(field.slice(0, bar));
    } catch {
      continue;
    }
    const what = field.slice(bar + 1);
    const c = arms.get(arm) ?? arms.set(arm, emptyCounts()).get(arm)!;
    if (what === 'req') c.requests += n;
    else if (what === 'err') c.errors += n;
    else if (what.startsWith('ev:')) {
      try {
        const name = decodeURIComponent(what.slice(3));
        c.events[name] = (c.events[name] ?? 0) + n;
      } catch {
        // not one of ours
      }
    } else if (what.startsWith('v:')) {
      // v:<name>:(n|sum|sq|h<i>) — the name is encoded, so it holds no ':'
      const colon = what.lastIndexOf(':');
      let name: string;
      try {
        name = decodeURIComponent(what.slice(2, colon));
      } catch {
        continue;
      }
      const part = what.slice(colon + 1);
      const v = c.values[name] ?? (c.values[name] = emptyValues());
      if (part === 'n') v.n += n;
      else if (part === 'sum') v.sum += n;
      else if (part === 'sq') v.sumSquares += n;
      else if (/^h\d+$/.test(part) && Number(part.slice(1)) < VALUE_HISTOGRAM_BUCKETS) v.histogram[Number(part.slice(1))]! += n;
    } else if (/^h\d+$/.test(what)) {
      const i = Number(what.slice(1));
      if (i < LATENCY_BUCKETS) c.histogram[i]! += n;
    }
  }
  return arms;
}
