// Request latency as a fixed log-spaced histogram: bucket i counts latencies in
// (1.25^(i-1), 1.25^i] ms, bucket 0 everything up to 1 ms, the last one everything above
// 1.25^(N-2) ms (≈ 56 s). Fixed boundaries let histograms from any number of instances and seconds
// merge by addition, and a quantile read from a merged histogram is at most 25% above the truth.

/** Growth factor between bucket boundaries. */
export const LATENCY_GROWTH = 1.25;
/** Number of buckets. */
export const LATENCY_BUCKETS = 51;

const LOG_GROWTH = Math.log(LATENCY_GROWTH);

/** The bucket a latency (ms) falls in. */
export function latencyBucket(ms: number): number {
  if (!(ms > 1)) return 0; // also NaN and negatives: never an index out of range
  const i = Math.ceil(Math.log(ms) / LOG_GROWTH - 1e-9);
  return i >= LATENCY_BUCKETS ? LATENCY_BUCKETS - 1 : i;
}

/** The upper boundary of bucket `i`, in ms (Infinity for the last). */
export function bucketUpperMs(i: number): number {
  return i >= LATENCY_BUCKETS - 1 ? Infinity : LATENCY_GROWTH ** i;
}

/**
 * The bucket holding quantile `q` (0 < q < 1) of a histogram: the first whose cumulative count
 * reaches q of the total; -1 for an empty histogram.
 */
export function quantileBucket(counts: ArrayLike<number>, q: number): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  if (total === 0) return -1;
  const target = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!;
    if (seen >= target) return i;
  }
  return counts.length - 1;
}

/** Quantile `q` in ms, as the upper boundary of its bucket (an over-estimate by at most 25%); undefined when empty. */
export function quantileMs(counts: ArrayLike<number>, q: number): number | undefined {
  const i = quantileBucket(counts, q);
  return i < 0 ? undefined : bucketUpperMs(i);
}

/** How many requests of a histogram lie above bucket `threshold` (strictly slower than its upper boundary). */
export function countAbove(counts: ArrayLike<number>, threshold: number): number {
  let n = 0;
  for (let i = threshold + 1; i < counts.length; i++) n += counts[i]!;
  return n;
}
