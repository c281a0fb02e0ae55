/**
 * The share of "bad" among n, e.g. negative feedback among the feedback an arm received, with an
 * interval that stays valid however often it is looked at: a confidence sequence. Pure: no I/O,
 * runs in Node and browsers. Its state is just the two counts, which the caller already keeps.
 *
 * ## The method
 *
 * This is Robbins' (1970) conjugate mixture for a Bernoulli mean (Howard, Ramdas, McAuliffe &
 * Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences", 2021).
 *
 * For a candidate share p, mix the likelihood ratio of every alternative q against p over a
 * Beta(½, ½) prior (Jeffreys):
 *
 *     M_n(p) = ∫ q^k (1 − q)^(n−k) dBeta(q; ½, ½) / (p^k (1 − p)^(n−k))
 *            = B(½ + k, ½ + n − k) / B(½, ½) / (p^k (1 − p)^(n−k))
 *
 * - For the true p, M_n(p) is a nonnegative martingale with initial value 1, whatever the order
 *   the answers arrive in and however they are grouped into buckets.
 * - By Ville's inequality it ever reaches 1/α with probability at most α.
 * - So `{ p : M_n(p) < 1/α }` covers p at every n at once, with probability at least 1 − α.
 *   This is exact: no asymptotics and no minimum sample.
 * - log M_n is convex in p, with its minimum at k/n, where M_n ≤ 1 (a mixture of likelihoods is
 *   at most the largest). So the set is an interval that always contains k/n. Its ends are found
 *   by bisection on the log-likelihood.
 *
 * **What it assumes.** Answers are independent, with one share p. Each answer is one person's: one
 * piece of feedback per user and flag, or the latest one.
 *
 * If the share drifts over time, the target is the average share over the answers received. The
 * martingale argument no longer applies as such. The simulation in proportion-interval.spec.ts
 * measures coverage of that running average under a strong drift: it stays under alpha.
 *
 * **Comparing arms is not this function's job.** A guard on "the treatment draws more negative
 * feedback than the control" is a `RegressionTest`: per bucket, `n` is the feedback received
 * (or the requests, see docs/user-signals.md) and `bad` is the negatives. It conditions
 * on each bucket, so a ramp and a moving baseline cannot mislead it. One thing to know: it skips
 * buckets where an arm has no answer. Feedback is sparse, so feed it buckets of a minute or more,
 * not seconds.
 */

/** Counts of one arm: answers and bad (e.g. negative) ones among them. */
export interface ProportionCounts {
  /** Answers (a non-negative integer). */
  readonly n: number;
  /** Bad answers among them (a non-negative integer, at most `n`). */
  readonly bad: number;
}

export interface ProportionIntervalOptions {
  /** Confidence of the interval, strictly between 0 and 1. Default 0.95. */
  confidence?: number;
}

export type ProportionEstimate =
  | { readonly status: 'not-enough-data'; readonly n: number; readonly bad: number }
  | {
      readonly status: 'ok';
      readonly n: number;
      readonly bad: number;
      /** bad / n. */
      readonly share: number;
      /** Confidence-sequence bounds on the share, 0 ≤ lower ≤ share ≤ upper ≤ 1. */
      readonly lower: number;
      readonly upper: number;
      readonly confidence: number;
    };

const { log, log1p, sin, PI, abs } = Math;
const { isSafeInteger } = Number;
const PRIOR = 0.5;

/**
 * The share `bad / n` with an anytime-valid interval; see the comment at the top of this file.
 * With n = 0 the answer is `{ status: 'not-enough-data' }`.
 *
 * ```ts
 * proportionInterval({ n: 180, bad: 22 }); // { status: 'ok', share: 0.122, lower: 0.07, upper: 0.2, … }
 * ```
 *
 * Throws a TypeError or RangeError naming the field when a count is not a non-negative safe
 * integer or `bad > n`.
 */
export function proportionInterval(counts: ProportionCounts, options: ProportionIntervalOptions = {}): ProportionEstimate {
  const where = 'proportionInterval: ';
  if (counts === null || typeof counts !== 'object') throw new TypeError(`${where}counts must be an object {n, bad}, got ${describe(counts)}`);
  if (options === null || typeof options !== 'object') throw new TypeError(`${where}options must be an object, got ${describe(options)}`);
  const n = count(counts.n, 'n');
  const bad = count(counts.bad, 'bad');
  if (bad > n) throw new RangeError(`${where}bad (${bad}) must not exceed n (${n})`);
  const confidence = options.confidence ?? 0.95;
  if (typeof confidence !== 'number') throw new TypeError(`${where}confidence must be a number, got ${describe(confidence)}`);
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`${where}confidence must be strictly between 0 and 1, got ${confidence}`);
  if (n === 0) return { status: 'not-enough-data', n, bad };

  const good = n - bad;
  // The interval is { p : ℓ(p) > level }, ℓ(p) = bad·log p + good·log(1 − p), level = log of the
  // mixture's marginal likelihood − log(1/α).
  const level = logBeta(PRIOR + bad, PRIOR + good) - logBeta(PRIOR, PRIOR) + log(1 - confidence);
  const inside = (p: number) => (bad > 0 ? bad * log(p) : 0) + (good > 0 ? good * log1p(-p) : 0) > level;
  const share = bad / n;
  const lower = bad === 0 ? 0 : bisect(inside, 0, share, true);
  const upper = good === 0 ? 1 : bisect(inside, share, 1, false);
  return { status: 'ok', n, bad, share, lower, upper, confidence };
}

/** The boundary of `inside` in [lo, hi]: it holds at hi (rising) or at lo (falling) and not at the other end. */
function bisect(inside: (p: number) => boolean, lo: number, hi: number, rising: boolean): number {
  for (let i = 0; i < 100 && hi - lo > 1e-15; i++) {
    const mid = 0.5 * (lo + hi);
    if (inside(mid) === rising) hi = mid;
    else lo = mid;
  }
  // Report the outer end: the interval is never narrower than the set it stands for.
  return rising ? lo : hi;
}

/** log B(a, b). */
function logBeta(a: number, b: number): number {
  return logGamma(a) + logGamma(b) - logGamma(a + b);
}

// Lanczos approximation (g = 7, 9 coefficients): relative error ~1e-15 for x > 0.
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];
const HALF_LOG_2PI = 0.5 * log(2 * PI);

/** log Γ(x) for x > 0. */
function logGamma(x: number): number {
  if (x < 0.5) return log(PI / abs(sin(PI * x))) - logGamma(1 - x); // reflection
  const z = x - 1;
  let sum = LANCZOS[0]!;
  for (let i = 1; i < 9; i++) sum += LANCZOS[i]! / (z + i);
  const t = z + 7.5;
  return HALF_LOG_2PI + (z + 0.5) * log(t) - t + log(sum);
}

function count(value: unknown, field: string): number {
  if (typeof value !== 'number') throw new TypeError(`proportionInterval: ${field} must be a number, got ${describe(value)}`);
  if (!isSafeInteger(value) || value < 0) throw new RangeError(`proportionInterval: ${field} must be a non-negative integer, got ${value}`);
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}
