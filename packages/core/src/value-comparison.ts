/**
 * Anytime-valid comparison of a value metric between a rollout's treatment and its control: time
 * to complete a checkout (ms), an amount (cents). It gives per-arm count, mean and median. It gives
 * the ratio of the treatment's mean to the control's with a confidence sequence: an interval that
 * stays valid however often it is looked at. And it gives a one-sided guard, "worse by more than a
 * margin". Pure: no I/O, no clock, runs in Node and browsers; `observe` allocates nothing.
 *
 * ## Input: what a Redis hash can hold
 *
 * The recorder rounds each value to a non-negative integer in the caller's unit (ms, cents). It
 * adds it with HINCRBY to its arm's `n` (1), `sum` (v) and `sumSquares` (v²). For the median it
 * also adds 1 to one bucket of a fixed log-spaced histogram (`valueHistogramBucket(v)`: ×1.25 per
 * bucket from 1, 51 buckets, the boundaries of the latency histogram in @rollgate/rollouts).
 * Buckets from any number of instances and seconds merge by addition. Each bucket also names its
 * *stratum*: a short period within which the metric's level barely moves, e.g. one minute,
 * `Math.floor(second / 60)`.
 *
 * ## The estimand
 *
 * In stratum i the treatment has `n_T` values with sum `S_T` and the control `n_C` with sum `S_C`;
 * `N = n_T + n_C`. Only strata where both arms have values are compared. Each gets the
 * Cochran–Mantel–Haenszel weight `w_i = n_T n_C / N`:
 *
 *     A = Σ w_i x̄_T,i = Σ (n_C/N)·S_T          B = Σ w_i x̄_C,i = Σ (n_T/N)·S_C
 *
 * The reported ratio is `A / B`, and the relative difference `A / B − 1`. It estimates
 * `r = Σ w_i μ_T,i / Σ w_i μ_C,i`. If the treatment multiplies the metric by the same factor in
 * every stratum, r is that factor; if it changes nothing, r is 1. This holds however the
 * treatment's share and the level move between strata.
 *
 * Pooling all values of each arm would not survive a ramp during which the level moves. This is
 * Simpson's paradox, as for `RegressionTest`: the treatment's values sit in the later stages. In
 * the tests, a pooled interval excludes the truth in almost every such A/A run.
 *
 * ## The confidence sequence
 *
 * The method is from Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas, "Time-uniform central limit
 * theory and asymptotic confidence sequences" (2021–2024), the family GrowthBook uses. It is
 * applied to Fieller's statistic for a ratio.
 *
 * For a candidate ratio r, `D(r) = A − r·B = Σ_i w_i (x̄_T,i − r x̄_C,i)` is a sum of stratum terms.
 * Given the counts, they are independent, and each has mean `w_i (μ_T,i − r μ_C,i)`. So D is a
 * martingale when r is the ratio in every stratum. Its variance is `V(r) = V_T + r² V_C`, where
 * `V_T = Σ_i c_i² n_T,i σ²_T,i` with `c_i = n_C,i / N_i` is the coefficient of each treatment value
 * in A. `V_C` is the same with `n_T,i / N_i`.
 *
 * - **An arm's spread σ̂².** Within-stratum squared deviations (`sumSquares − sum²/n`, so a moving
 *   level does not inflate them), pooled over strata with the weights V needs:
 *   `σ̂²_T = Σ c² dev_T,i / Σ c² (n_T,i − 1)`. This is unbiased when the arm's variance is
 *   constant, and otherwise a weighted average of the σ²_T,i. Then `V̂_T = σ̂²_T · Σ c² n_T,i`.
 * - **The smaller arm's spread is floored.** The arm with fewer degrees of freedom (at a 5% stage,
 *   the treatment) may not have met the tail of the distribution yet. Then its mean and its spread
 *   are both low, and a plain (Welch-type) interval claims "better" too often. In the simulation,
 *   with 1% of tasks 8× longer on a 5% → 20% → 50% ramp, it missed the truth in 57 of 1,000 A/A
 *   runs at 95%, 55 of them on the "better" side. So the smaller arm's σ̂² is the larger of two
 *   estimates. One is its own. The other is the other arm's spread, measured in the same strata
 *   with the same weights (`Σ c²(n/m)·dev_other / Σ c²(n/m)(m − 1)`, m the other arm's count) and
 *   scaled by r² (or 1/r² for the control). If "treatment = r × control" in distribution, both
 *   estimate the same σ². If not, the floor only overestimates. Either way the sequence stays
 *   asymptotically valid, conservatively.
 * - **Robbins' normal mixture.** For a Gaussian martingale D with variance V, mixing exp(λD − λ²V/2)
 *   over λ ~ N(0, ρ²) gives `(1 + ρ²V)^−½ exp(ρ²D² / (2(1 + ρ²V)))`. By Ville's inequality this
 *   ever reaches 1/α with probability at most α.
 * - **Standardized units.** Let `Z = D/√V̂`, `W = Σ w_i` and the intrinsic time `x = ρ²W`. As in
 *   Waudby-Smith et al.'s Theorem 2.2 and in GrowthBook, ρ is in standardized units:
 *   `ρ² = (−2 log α + log(1 − 2 log α)) / W*`. The sequence is tightest at
 *   `W* = tuningSamplesPerArm / 2`, that is `tuningSamplesPerArm` values per arm at a 50/50
 *   split. The sequence is
 *
 *       { r ≥ 0 : (A − rB)² ≤ k · V̂(r) },       k = (1 + x)/x · log((1 + x)/α²)
 *
 * - **Solving it.** |A − rB| − √(k V̂(r)) is monotone on each side of A/B (√V̂ is a norm of
 *   non-negative, non-decreasing, convex functions of r). So the set is an interval, and its ends
 *   are found by bisection. If `B² ≤ k · lim V̂(r)/r²`, the set is unbounded above: the control's
 *   mean is not yet distinguishable from 0, and the answer is "not enough data".
 *
 * **It is asymptotic. What that assumes:**
 *
 * - Values are independent given their stratum and arm: one value per user and task. Retries and
 *   one user's repeated tasks break this.
 * - Finite variance. Cap values before recording them (e.g. a checkout at 10 minutes): a heavy
 *   tail slows the convergence.
 * - Arms are assigned independently of the values.
 * - Enough data. The CLT stands in for the exact Gaussian, so the guarantee holds as the minimum
 *   sample grows. That is Waudby-Smith et al.'s definition of an asymptotic confidence sequence;
 *   the delayed-start normal-mixture tests of Bibaut, Kallus & Lindon (2022) rest on the same idea.
 *
 * So the answer is `{ status: 'not-enough-data' }`, never an interval, in two cases: below
 * `minSamplesPerArm` compared values per arm, and when fewer than half of an arm's values share a
 * stratum with another of its values (the spread cannot be estimated). The simulations in
 * value-comparison.spec.ts measure how well the asymptotics hold on heavy-tailed data.
 *
 * ## The guard
 *
 * `regressed` answers one question, one-sided: is the treatment's mean worse than the control's by
 * more than `margin`?
 *
 * - With `better: 'lower'` (times) the null is "in every stratum μ_T ≤ (1 + margin) μ_C". So
 *   `D = A − (1 + margin) B` has a non-positive drift.
 * - With `better: 'higher'` (amounts), `D = (1 − margin) B − A`.
 *
 * Mixing over λ > 0 only (a half-normal) gives the e-value
 *
 *     E = 2 (1 + x)^−½ exp(x Z² / (2(1 + x))) Φ(Z √(x/(1 + x)))
 *
 * This is a supermartingale under the null, asymptotically. `regressed` latches at `E ≥ 1/alpha`.
 * The chance that it ever fires for a treatment that is not worse is at most `alpha`
 * (asymptotically), looked at after every bucket. It is only evaluated once there is enough data.
 *
 * ## Strata
 *
 * - **Order.** Observations come in non-decreasing stratum order. Several `observe` calls with the
 *   same stratum add up: one per instance flush, one per second of the minute.
 * - **When a stratum counts.** A stratum is compared when the next one starts, or on
 *   `closeStratum()` (when the split changes, at the end of a plan). So the interval lags by up to
 *   one stratum.
 * - **Length.** Short enough that the level barely moves within a stratum (a minute). Long enough
 *   that most strata hold several values of each arm: a stratum with an empty arm is skipped.
 *
 * ## Cost
 *
 * The state is a few dozen numbers and two 51-bucket histograms. `observe` allocates nothing and
 * costs a few additions, plus one comparison of the closed stratum when a new stratum starts.
 * `comparison` runs two bisections of at most ~100 steps when read.
 */

/** Growth factor between histogram bucket boundaries (as the latency histogram of @rollgate/rollouts). */
export const VALUE_HISTOGRAM_GROWTH = 1.25;
/** Number of histogram buckets: bucket 0 holds values ≤ 1, bucket i (1.25^(i−1), 1.25^i], the last everything above ≈ 56,000. */
export const VALUE_HISTOGRAM_BUCKETS = 51;

// Builtins read once: inside a Node `vm` context (Jest, sandboxes) every global lookup is slow.
const { exp, log, log1p, sqrt, ceil, max, pow, SQRT2 } = Math;
const { isFinite: isFiniteNumber, isSafeInteger } = Number;
const LOG_GROWTH = log(VALUE_HISTOGRAM_GROWTH);
const LN2 = log(2);

/** The histogram bucket of a value in the caller's unit (bucket 0 for values ≤ 1, NaN and negatives; the last from ≈ 56,000). */
export function valueHistogramBucket(value: number): number {
  if (!(value > 1)) return 0;
  const i = ceil(log(value) / LOG_GROWTH - 1e-9);
  return i >= VALUE_HISTOGRAM_BUCKETS ? VALUE_HISTOGRAM_BUCKETS - 1 : i;
}

/** The values of one arm in one bucket: integers a Redis hash accumulates with HINCRBY. */
export interface ValueArmBucket {
  /** Values recorded (a non-negative integer). */
  readonly n: number;
  /** Σ value, each value rounded to a non-negative integer in the caller's unit (ms, cents). */
  readonly sum: number;
  /** Σ value² of the same rounded values. */
  readonly sumSquares: number;
  /**
   * Optional, for the medians: counts per `valueHistogramBucket`, `VALUE_HISTOGRAM_BUCKETS`
   * non-negative integers summing to `n` (an array or a typed array; may be reused between calls).
   */
  readonly histogram?: ArrayLike<number>;
}

/** One bucket of both arms. */
export interface ValueObservation {
  /**
   * The stratum the bucket belongs to: a safe integer, non-decreasing from call to call, e.g.
   * `Math.floor(epochSecond / 60)`. A new value closes (compares) the previous stratum.
   */
  readonly stratum: number;
  readonly control: ValueArmBucket;
  readonly treatment: ValueArmBucket;
}

export interface ValueComparisonOptions {
  /** Which direction is an improvement: 'lower' (times; the default) or 'higher' (amounts). */
  better?: 'lower' | 'higher';
  /** Confidence of the reported interval, strictly between 0 and 1. Default 0.95. */
  confidence?: number;
  /** False-alarm probability of the `regressed` guard, strictly between 0 and 1. Default 0.05. */
  alpha?: number;
  /**
   * The guard fires when the treatment's mean is worse by more than this fraction of the
   * control's: 0.05 = "more than 5% slower" (better 'lower') or "more than 5% lower" (better
   * 'higher'). At least 0 (the default), and below 1 with better 'higher'.
   */
  margin?: number;
  /** Compared values needed in each arm before anything is said (an integer ≥ 2). Default 200. */
  minSamplesPerArm?: number;
  /** The interval is tightest around this many values per arm at a 50/50 split (an integer ≥ 1). Default 1000. */
  tuningSamplesPerArm?: number;
}

/** Descriptive statistics of one arm over everything observed. Not stratified: compare arms with `comparison`. */
export interface ValueArmSummary {
  /** Values observed. */
  readonly count: number;
  /** Their mean; undefined with none. */
  readonly mean: number | undefined;
  /**
   * Their median, read from the histogram: interpolated geometrically inside its bucket, so within
   * ×1.25 of the truth (the last bucket gives its lower edge). Undefined when no histogram was given.
   */
  readonly median: number | undefined;
}

/** Values per arm in the compared strata. */
export interface ValueCounts {
  readonly control: number;
  readonly treatment: number;
}

export type ValueComparisonResult =
  | {
      readonly status: 'not-enough-data';
      /**
       * What is missing. 'samples': fewer than `minSamplesPerArm` compared values in an arm.
       * 'spread': too few values share a stratum with another value of their arm, so the variance
       * cannot be estimated (use longer strata). 'control-mean': the control's mean is not yet
       * distinguishable from 0.
       */
      readonly reason: 'samples' | 'spread' | 'control-mean';
      readonly perArm: ValueCounts;
      readonly minSamplesPerArm: number;
      /** Strata compared so far (both arms had values). */
      readonly strata: number;
    }
  | {
      readonly status: 'ok';
      /** Treatment mean / control mean, stratified (see the file comment). */
      readonly ratio: number;
      /** Confidence-sequence bounds on the ratio (the lower one ≥ 0). */
      readonly ratioLower: number;
      readonly ratioUpper: number;
      /** `ratio − 1` and its bounds: −0.18 means the treatment's mean is 18% lower. */
      readonly change: number;
      readonly changeLower: number;
      readonly changeUpper: number;
      /** 'better' or 'worse' when the interval excludes "no change" (by the `better` option); else 'inconclusive'. */
      readonly verdict: 'better' | 'worse' | 'inconclusive';
      readonly confidence: number;
      readonly perArm: ValueCounts;
      readonly strata: number;
    };

/** Sums of one arm in the open stratum. */
export interface ValueSumsState {
  n: number;
  sum: number;
  sumSquares: number;
}

/** Running sums of one arm over the compared strata (see the file comment; c is the arm's coefficient n_other / N). */
export interface ValueComparedArmState {
  /** Values in compared strata. */
  count: number;
  /** Σ (n − 1): the degrees of freedom of the arm's spread. */
  df: number;
  /** Σ c·sum: A for the treatment, B for the control. */
  weightedSum: number;
  /** Σ c²·dev, dev = sumSquares − sum²/n. */
  weightedDev: number;
  /** Σ c²·n. */
  weightedCount: number;
  /** Σ c²·(n − 1). */
  weightedDf: number;
  /** Σ c²·(n/m)·dev of the other arm (m values) in the same strata: its spread, weighted as this arm's values. */
  crossDev: number;
  /** Σ c²·(n/m)·(m − 1). */
  crossDf: number;
}

/** Everything one arm observed. */
export interface ValueArmTotalsState {
  count: number;
  sum: number;
  sumSquares: number;
  histogram: number[];
}

/**
 * The state of a {@link ValueComparison} as plain JSON (numbers, arrays, strings, booleans, null);
 * see `toJSON` and `ValueComparison.fromJSON`. Doubles survive `JSON.stringify`/`JSON.parse` exactly.
 */
export interface ValueComparisonState {
  readonly version: 1;
  readonly options: Required<ValueComparisonOptions>;
  /** `observe` calls. */
  readonly buckets: number;
  /** Closed strata, and those compared (both arms had values). */
  readonly strata: number;
  readonly comparedStrata: number;
  /** The stratum key of the last observation (null before the first). */
  readonly lastStratum: number | null;
  /** The open stratum's sums (zeros when none is open). */
  readonly open: { readonly control: ValueSumsState; readonly treatment: ValueSumsState };
  /** Σ w over the compared strata. */
  readonly weight: number;
  readonly compared: { readonly control: ValueComparedArmState; readonly treatment: ValueComparedArmState };
  readonly totals: { readonly control: ValueArmTotalsState; readonly treatment: ValueArmTotalsState };
  readonly regressed: boolean;
}

const STATE_VERSION = 1;
const DEFAULTS: Readonly<Required<ValueComparisonOptions>> = Object.freeze({
  better: 'lower',
  confidence: 0.95,
  alpha: 0.05,
  margin: 0,
  minSamplesPerArm: 200,
  tuningSamplesPerArm: 1000,
});

/** ρ² of a normal mixture tightest at intrinsic time `wStar` (Waudby-Smith et al.; GrowthBook). */
function rhoSquared(alpha: number, wStar: number): number {
  const l = -2 * log(alpha);
  return (l + log(1 + l)) / wStar;
}

/**
 * A comparison of a value metric between treatment and control, fed one bucket at a time.
 * See the comment at the top of this file for the method and its assumptions, and
 * docs/user-signals.md.
 *
 * ```ts
 * const checkout = new ValueComparison({ better: 'lower', alpha: 0.05 / 4, margin: 0.05 });
 * checkout.observe({
 *   stratum: Math.floor(second / 60),
 *   control: { n: 3, sum: 9120, sumSquares: 28_140_800 },
 *   treatment: { n: 1, sum: 2480, sumSquares: 6_150_400 },
 * });
 * checkout.comparison; // { status: 'ok', change: -0.18, changeLower: -0.26, changeUpper: -0.09, … }
 * if (checkout.regressed) rollBack();
 * ```
 */
export class ValueComparison {
  private readonly options: Readonly<Required<ValueComparisonOptions>>;
  /** +1 when lower is better: "worse" is a larger treatment mean. */
  private readonly worseSign: number;
  /** The guard's null ratio: 1 + margin (better 'lower') or 1 − margin (better 'higher'). */
  private readonly nullRatio: number;
  private readonly logThreshold: number;
  private readonly logIntervalAlpha: number;
  private readonly rho2Interval: number;
  private readonly rho2Guard: number;

  private bucketCount = 0;
  private strataCount = 0;
  private comparedStrataCount = 0;
  private lastStratum: number | null = null;
  private readonly openC: ValueSumsState = { n: 0, sum: 0, sumSquares: 0 };
  private readonly openT: ValueSumsState = { n: 0, sum: 0, sumSquares: 0 };
  private weight = 0;
  private readonly cmpC: ValueComparedArmState = emptyCompared();
  private readonly cmpT: ValueComparedArmState = emptyCompared();
  private readonly totC: ValueSumsState = { n: 0, sum: 0, sumSquares: 0 };
  private readonly totT: ValueSumsState = { n: 0, sum: 0, sumSquares: 0 };
  private readonly histC = new Float64Array(VALUE_HISTOGRAM_BUCKETS);
  private readonly histT = new Float64Array(VALUE_HISTOGRAM_BUCKETS);
  private latched = false;

  constructor(options: ValueComparisonOptions = {}) {
    const prefix = 'ValueComparison: ';
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new TypeError(`${prefix}options must be an object, got ${describe(options)}`);
    }
    const better = options.better ?? DEFAULTS.better;
    if (better !== 'lower' && better !== 'higher') {
      throw new TypeError(`${prefix}better must be "lower" or "higher", got ${describe(better)}`);
    }
    const confidence = probability(options.confidence ?? DEFAULTS.confidence, 'confidence', prefix);
    const alpha = probability(options.alpha ?? DEFAULTS.alpha, 'alpha', prefix);
    const margin = options.margin ?? DEFAULTS.margin;
    if (typeof margin !== 'number') throw new TypeError(`${prefix}margin must be a number, got ${describe(margin)}`);
    if (!(isFiniteNumber(margin) && margin >= 0 && (better === 'lower' || margin < 1))) {
      throw new RangeError(`${prefix}margin must be a finite number ≥ 0${better === 'higher' ? ' and < 1 with better "higher"' : ''}, got ${margin}`);
    }
    const minSamplesPerArm = integerOption(options.minSamplesPerArm ?? DEFAULTS.minSamplesPerArm, 'minSamplesPerArm', 2, prefix);
    const tuningSamplesPerArm = integerOption(options.tuningSamplesPerArm ?? DEFAULTS.tuningSamplesPerArm, 'tuningSamplesPerArm', 1, prefix);
    this.options = Object.freeze({ better, confidence, alpha, margin, minSamplesPerArm, tuningSamplesPerArm });
    this.worseSign = better === 'lower' ? 1 : -1;
    this.nullRatio = better === 'lower' ? 1 + margin : 1 - margin;
    this.logThreshold = -log(alpha);
    this.logIntervalAlpha = log(1 - confidence);
    this.rho2Interval = rhoSquared(1 - confidence, tuningSamplesPerArm / 2);
    this.rho2Guard = rhoSquared(alpha, tuningSamplesPerArm / 2);
  }

  /**
   * Adds one bucket. Throws a TypeError or RangeError naming the field, and changes nothing, when:
   * a count or sum is not a non-negative safe integer; the sums cannot come from non-negative
   * integer values; the histogram does not sum to `n`; or the stratum goes backwards.
   * Allocates nothing.
   */
  observe(bucket: ValueObservation): void {
    const where = 'ValueComparison.observe: ';
    if (bucket === null || typeof bucket !== 'object') {
      throw new TypeError(`${where}the bucket must be an object {stratum, control, treatment}, got ${describe(bucket)}`);
    }
    const stratum = bucket.stratum;
    if (typeof stratum !== 'number') throw new TypeError(`${where}stratum must be a number, got ${describe(stratum)}`);
    if (!isSafeInteger(stratum)) throw new RangeError(`${where}stratum must be a safe integer, got ${stratum}`);
    if (this.lastStratum !== null && stratum < this.lastStratum) {
      throw new RangeError(`${where}stratum ${stratum} is before the last one observed (${this.lastStratum}): buckets must arrive in stratum order`);
    }
    checkArm(bucket.control, 'control');
    checkArm(bucket.treatment, 'treatment');

    this.bucketCount++;
    if (this.lastStratum !== null && stratum !== this.lastStratum) this.closeStratum();
    this.lastStratum = stratum;
    addArm(bucket.control, this.openC, this.totC, this.histC);
    addArm(bucket.treatment, this.openT, this.totT, this.histT);
  }

  /**
   * Compares the open stratum now instead of when the next stratum starts: when the split changes,
   * or at the end of a plan. Later buckets with the same stratum key start a new stratum. Does
   * nothing when no value is open. Allocates nothing.
   */
  closeStratum(): void {
    const oC = this.openC;
    const oT = this.openT;
    if (oC.n === 0 && oT.n === 0) return;
    this.strataCount++;
    if (oC.n > 0 && oT.n > 0) {
      const total = oC.n + oT.n;
      this.comparedStrataCount++;
      this.weight += (oT.n * oC.n) / total;
      compare(this.cmpT, oT, oC, oC.n / total);
      compare(this.cmpC, oC, oT, oT.n / total);
      if (!this.latched && this.missing() === undefined && this.logGuardEvidence() >= this.logThreshold) this.latched = true;
    }
    oC.n = oC.sum = oC.sumSquares = 0;
    oT.n = oT.sum = oT.sumSquares = 0;
  }

  /** Count, mean and median of each arm over everything observed (descriptive; compare the arms with `comparison`). */
  get arms(): { readonly control: ValueArmSummary; readonly treatment: ValueArmSummary } {
    return { control: summarize(this.totC, this.histC), treatment: summarize(this.totT, this.histT) };
  }

  /** The ratio of the means with its confidence sequence, or why there is not enough data yet. */
  get comparison(): ValueComparisonResult {
    const perArm: ValueCounts = { control: this.cmpC.count, treatment: this.cmpT.count };
    const strata = this.comparedStrataCount;
    const notEnough = (reason: 'samples' | 'spread' | 'control-mean'): ValueComparisonResult => ({
      status: 'not-enough-data',
      reason,
      perArm,
      minSamplesPerArm: this.options.minSamplesPerArm,
      strata,
    });
    const missing = this.missing();
    if (missing !== undefined) return notEnough(missing);
    const a = this.cmpT.weightedSum;
    const b = this.cmpC.weightedSum;
    const x = this.rho2Interval * this.weight;
    const k = ((1 + x) / x) * (log1p(x) - 2 * this.logIntervalAlpha);
    // {r ≥ 0 : (A − rB)² ≤ k V̂(r)} is an interval around A/B, bounded iff B² > k · lim V̂(r)/r².
    if (!(b * b > k * this.varianceSlope())) return notEnough('control-mean');
    const ratio = a / b;
    const outside = (r: number) => (a - r * b) * (a - r * b) > k * this.variance(r);
    let hi = ratio > 0 ? 2 * ratio : 1;
    for (let i = 0; i < 64 && !outside(hi); i++) hi *= 2;
    if (!outside(hi)) return notEnough('control-mean');
    const ratioUpper = bisect(outside, ratio, hi, false);
    const ratioLower = outside(0) ? bisect(outside, 0, ratio, true) : 0;
    const lowerIsBetter = this.options.better === 'lower';
    const verdict =
      ratioUpper < 1 ? (lowerIsBetter ? 'better' : 'worse') : ratioLower > 1 ? (lowerIsBetter ? 'worse' : 'better') : 'inconclusive';
    return {
      status: 'ok',
      ratio,
      ratioLower,
      ratioUpper,
      change: ratio - 1,
      changeLower: ratioLower - 1,
      changeUpper: ratioUpper - 1,
      verdict,
      confidence: this.options.confidence,
      perArm,
      strata,
    };
  }

  /** True once the guard's evidence has reached 1/alpha (see the file comment); stays true. */
  get regressed(): boolean {
    return this.latched;
  }

  /**
   * The guard's current e-value for "the treatment is worse by more than `margin`". It is 1 while
   * there is not enough data, and `Infinity` once its logarithm exceeds ~709. It moves both ways;
   * `regressed` latches.
   */
  get evidence(): number {
    return this.missing() === undefined ? exp(this.logGuardEvidence()) : 1;
  }

  /** The options in force, defaults filled in. */
  get settings(): Readonly<Required<ValueComparisonOptions>> {
    return this.options;
  }

  /** The state as plain JSON: `ValueComparison.fromJSON(JSON.parse(JSON.stringify(c)))` continues exactly. */
  toJSON(): ValueComparisonState {
    return {
      version: STATE_VERSION,
      options: { ...this.options },
      buckets: this.bucketCount,
      strata: this.strataCount,
      comparedStrata: this.comparedStrataCount,
      lastStratum: this.lastStratum,
      open: { control: { ...this.openC }, treatment: { ...this.openT } },
      weight: this.weight,
      compared: { control: { ...this.cmpC }, treatment: { ...this.cmpT } },
      totals: {
        control: { count: this.totC.n, sum: this.totC.sum, sumSquares: this.totC.sumSquares, histogram: Array.from(this.histC) },
        treatment: { count: this.totT.n, sum: this.totT.sum, sumSquares: this.totT.sumSquares, histogram: Array.from(this.histT) },
      },
      regressed: this.latched,
    };
  }

  /**
   * Restores a comparison saved with `toJSON()`, e.g. after a JSON round trip through Redis. It
   * validates the state: a TypeError or RangeError names the offending `state.` field.
   */
  static fromJSON(state: unknown): ValueComparison {
    const s = record(state, 'ValueComparison.fromJSON: state');
    if (s.version !== STATE_VERSION) throw new RangeError(`${STATE}version must be ${STATE_VERSION}, got ${describe(s.version)}`);
    const o = record(s.options, `${STATE}options`);
    for (const key of Object.keys(DEFAULTS)) {
      if (o[key] === undefined) throw new TypeError(`${STATE}options.${key} is missing`);
    }
    let c: ValueComparison;
    try {
      c = new ValueComparison(o as ValueComparisonOptions);
    } catch (err) {
      if (err instanceof Error) err.message = err.message.replace(/^ValueComparison: /, `${STATE}options.`);
      throw err;
    }
    c.bucketCount = stateCount(s.buckets, 'buckets');
    c.strataCount = stateCount(s.strata, 'strata');
    c.comparedStrataCount = stateCount(s.comparedStrata, 'comparedStrata');
    if (c.comparedStrataCount > c.strataCount) {
      throw new RangeError(`${STATE}comparedStrata (${c.comparedStrataCount}) must not exceed strata (${c.strataCount})`);
    }
    if (s.lastStratum !== null) {
      if (typeof s.lastStratum !== 'number') throw new TypeError(`${STATE}lastStratum must be a number or null, got ${describe(s.lastStratum)}`);
      if (!isSafeInteger(s.lastStratum)) throw new RangeError(`${STATE}lastStratum must be a safe integer or null, got ${s.lastStratum}`);
    }
    c.lastStratum = s.lastStratum;
    const open = record(s.open, `${STATE}open`);
    sumsInto(c.openC, open.control, 'open.control');
    sumsInto(c.openT, open.treatment, 'open.treatment');
    if (c.lastStratum === null && (c.openC.n > 0 || c.openT.n > 0)) throw new RangeError(`${STATE}open must be empty while lastStratum is null`);
    c.weight = stateNumber(s.weight, 'weight');
    const compared = record(s.compared, `${STATE}compared`);
    comparedInto(c.cmpC, compared.control, 'compared.control');
    comparedInto(c.cmpT, compared.treatment, 'compared.treatment');
    const none = c.comparedStrataCount === 0;
    if (none !== (c.weight === 0) || none !== (c.cmpC.count === 0) || none !== (c.cmpT.count === 0)) {
      throw new RangeError(`${STATE}weight and compared.*.count must be 0 exactly when comparedStrata is 0`);
    }
    const totals = record(s.totals, `${STATE}totals`);
    totalsInto(c.totC, c.histC, totals.control, 'totals.control');
    totalsInto(c.totT, c.histT, totals.treatment, 'totals.treatment');
    for (const [arm, cmp, tot, op] of [
      ['control', c.cmpC, c.totC, c.openC],
      ['treatment', c.cmpT, c.totT, c.openT],
    ] as const) {
      if (cmp.count + op.n > tot.n) {
        throw new RangeError(`${STATE}totals.${arm}.count (${tot.n}) must be at least the compared and open values (${cmp.count + op.n})`);
      }
    }
    if (typeof s.regressed !== 'boolean') throw new TypeError(`${STATE}regressed must be a boolean, got ${describe(s.regressed)}`);
    if (!s.regressed && c.missing() === undefined && c.logGuardEvidence() >= c.logThreshold) {
      throw new RangeError(`${STATE}regressed is false but the evidence in the compared sums is at or above 1/alpha`);
    }
    c.latched = s.regressed;
    return c;
  }

  /** What keeps the comparison from being reported (before the control-mean check), or undefined. */
  private missing(): 'samples' | 'spread' | undefined {
    const min = this.options.minSamplesPerArm;
    const t = this.cmpT;
    const c = this.cmpC;
    if (t.count < min || c.count < min) return 'samples';
    if (2 * t.df < t.count || 2 * c.df < c.count) return 'spread';
    if (!(t.weightedDev > 0 && c.weightedDev > 0 && t.crossDev > 0 && c.crossDev > 0)) return 'spread';
    return undefined;
  }

  /** log of the guard's one-sided (half-normal) mixture e-value; needs enough data. */
  private logGuardEvidence(): number {
    const r0 = this.nullRatio;
    const d = this.worseSign * (this.cmpT.weightedSum - r0 * this.cmpC.weightedSum);
    const x = this.rho2Guard * this.weight;
    const z = d / sqrt(this.variance(r0));
    return LN2 - 0.5 * log1p(x) + (x * z * z) / (2 * (1 + x)) + logNormalCdf(z * sqrt(x / (1 + x)));
  }

  /**
   * V̂(r), the estimated variance of A − rB: V̂_T + r² V̂_C, the arm with fewer degrees of freedom
   * (the treatment on ties) floored by the other's spread where its values are, scaled by r^±2.
   */
  private variance(r: number): number {
    const t = this.cmpT;
    const c = this.cmpC;
    const r2 = r * r;
    const sT = t.weightedDev / t.weightedDf;
    const sC = c.weightedDev / c.weightedDf;
    if (t.df <= c.df) return t.weightedCount * max(sT, r2 * (t.crossDev / t.crossDf)) + r2 * c.weightedCount * sC;
    return t.weightedCount * sT + c.weightedCount * max(r2 * sC, c.crossDev / c.crossDf);
  }

  /** lim V̂(r)/r² as r → ∞. */
  private varianceSlope(): number {
    const t = this.cmpT;
    const c = this.cmpC;
    const sC = c.weightedDev / c.weightedDf;
    return (t.df <= c.df ? t.weightedCount * (t.crossDev / t.crossDf) : 0) + c.weightedCount * sC;
  }
}

/** Words for {@link describeValueComparison}. */
export interface ValueComparisonWords {
  /** What is measured, e.g. "checkout". */
  readonly metric: string;
  /** The word for a lower treatment mean, e.g. "faster" for times. Default "lower". */
  readonly lower?: string;
  /** The word for a higher treatment mean, e.g. "slower". Default "higher". */
  readonly higher?: string;
  /** What the values count, e.g. "users". Default "values". */
  readonly units?: string;
}

/**
 * The comparison in one sentence, the same in plan status, the admin API and the dashboard:
 * "checkout 18% faster (95% interval 9–26%), 1,240 users per arm" (the smaller arm's count);
 * "checkout: no clear difference, 3% faster (95% interval 9% faster to 4% slower), …";
 * "checkout: not enough data yet (120 and 1,480 of 200 users per arm)". Interval ends are rounded
 * outwards, so the printed interval contains the computed one.
 */
export function describeValueComparison(result: ValueComparisonResult, words: ValueComparisonWords): string {
  const { metric, lower = 'lower', higher = 'higher', units = 'values' } = words;
  if (result.status === 'not-enough-data') {
    const { control, treatment } = result.perArm;
    if (result.reason === 'samples') {
      return `${metric}: not enough data yet (${thousands(treatment)} and ${thousands(control)} of ${thousands(result.minSamplesPerArm)} ${units} per arm)`;
    }
    if (result.reason === 'spread') return `${metric}: not enough data yet (too few ${units} of each arm per stratum to estimate the spread)`;
    return `${metric}: not enough data yet (the control's mean cannot be told from 0)`;
  }
  const count = `${thousands(Math.min(result.perArm.control, result.perArm.treatment))} ${units} per arm`;
  const level = `${+(100 * result.confidence).toFixed(1)}% interval`;
  const word = (change: number) => (change < 0 ? lower : higher);
  // Outward rounding with a little slack, so that 0.26 (26.000000000000004 in binary) prints 26.
  const down = (v: number) => Math.floor(v + 1e-9);
  const up = (v: number) => Math.ceil(v - 1e-9);
  const pct = (x: number, round: (v: number) => number) => `${round(Math.abs(100 * x))}%`;
  if (result.verdict === 'inconclusive') {
    const change = result.change === 0 ? 'no change' : `${pct(result.change, Math.round)} ${word(result.change)}`;
    const from = `${pct(result.changeLower, up)} ${lower}`;
    const to = `${pct(result.changeUpper, up)} ${higher}`;
    return `${metric}: no clear difference, ${change} (${level} ${from} to ${to}), ${count}`;
  }
  // Both ends on one side of 0: the one nearer 0 rounds down, the farther one up.
  const [near, far] = result.change < 0 ? [result.changeUpper, result.changeLower] : [result.changeLower, result.changeUpper];
  const range = `${down(Math.abs(100 * near))}–${pct(far, up)}`;
  return `${metric} ${pct(result.change, Math.round)} ${word(result.change)} (${level} ${range}), ${count}`;
}

function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

const STATE = 'ValueComparison.fromJSON: state.';

function emptyCompared(): ValueComparedArmState {
  return { count: 0, df: 0, weightedSum: 0, weightedDev: 0, weightedCount: 0, weightedDf: 0, crossDev: 0, crossDf: 0 };
}

/** Adds a closed stratum's arm (`open`) with coefficient `coef` = n_other / N; `other` is the other arm in the same stratum. */
function compare(arm: ValueComparedArmState, open: ValueSumsState, other: ValueSumsState, coef: number): void {
  const n = open.n;
  const m = other.n;
  const c2 = coef * coef;
  arm.count += n;
  arm.df += n - 1;
  arm.weightedSum += coef * open.sum;
  arm.weightedDev += c2 * deviation(open);
  arm.weightedCount += c2 * n;
  arm.weightedDf += c2 * (n - 1);
  const cross = (c2 * n) / m;
  arm.crossDev += cross * deviation(other);
  arm.crossDf += cross * (m - 1);
}

/** Σ (v − mean)² of an arm's values in a stratum, from its sums (≥ 0 despite rounding). */
function deviation(sums: ValueSumsState): number {
  return max(0, sums.sumSquares - (sums.sum * sums.sum) / sums.n);
}

/** The boundary of `outside` between lo and hi: `outside` holds at hi (rising) or at lo (falling). */
function bisect(outside: (r: number) => boolean, lo: number, hi: number, falling: boolean): number {
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = 0.5 * (lo + hi);
    if (outside(mid) === falling) lo = mid;
    else hi = mid;
  }
  return falling ? lo : hi;
}

function summarize(tot: ValueSumsState, hist: Float64Array): ValueArmSummary {
  return { count: tot.n, mean: tot.n > 0 ? tot.sum / tot.n : undefined, median: histogramMedian(hist) };
}

/**
 * The median of a value histogram: interpolated geometrically inside its bucket, linearly in
 * bucket 0 (values 0 and 1), the lower edge of the open-ended last bucket; undefined when empty.
 */
export function histogramMedian(hist: ArrayLike<number>): number | undefined {
  let total = 0;
  for (let i = 0; i < hist.length; i++) total += hist[i]!;
  if (!(total > 0)) return undefined;
  const target = total / 2;
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    const count = hist[i]!;
    if (count > 0 && seen + count >= target) {
      const frac = (target - seen) / count;
      if (i === 0) return frac;
      const lower = pow(VALUE_HISTOGRAM_GROWTH, i - 1);
      return i === VALUE_HISTOGRAM_BUCKETS - 1 ? lower : lower * pow(VALUE_HISTOGRAM_GROWTH, frac);
    }
    seen += count;
  }
  return undefined;
}

/**
 * log Φ(z), Φ to ~1e-7 relative: Numerical Recipes' erfc (fractional error < 1.2e-7), kept in log
 * form so that it does not underflow for very negative z.
 */
function logNormalCdf(z: number): number {
  if (z >= 0) return log1p(-0.5 * exp(logErfc(z / SQRT2)));
  return logErfc(-z / SQRT2) - LN2;
}

/** log erfc(y) for y ≥ 0. */
function logErfc(y: number): number {
  const t = 1 / (1 + 0.5 * y);
  const poly =
    -1.26551223 +
    t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return log(t) - y * y + poly;
}

function checkArm(arm: unknown, name: 'control' | 'treatment'): void {
  const where = 'ValueComparison.observe: ';
  if (arm === null || typeof arm !== 'object') {
    throw new TypeError(`${where}${name} must be an object {n, sum, sumSquares, histogram?}, got ${describe(arm)}`);
  }
  const a = arm as ValueArmBucket;
  const n = bucketInteger(a.n, `${name}.n`);
  const sum = bucketInteger(a.sum, `${name}.sum`);
  const sq = bucketInteger(a.sumSquares, `${name}.sumSquares`);
  if (n === 0 && (sum !== 0 || sq !== 0)) {
    throw new RangeError(`${where}${name}.sum and ${name}.sumSquares must be 0 when ${name}.n is 0, got ${sum} and ${sq}`);
  }
  // Non-negative integer values: each v² ≥ v, Σv² ≤ (Σv)², and Cauchy–Schwarz n·Σv² ≥ (Σv)². The
  // products may exceed 2^53, hence the relative tolerance.
  if (sq < sum || sq > sum * sum * (1 + 1e-12) || n * sq < sum * sum * (1 - 1e-12)) {
    throw new RangeError(
      `${where}${name}.sumSquares (${sq}) is impossible for ${n} non-negative integer values summing to ${sum}: ` +
        'it must be at least sum and lie between sum²/n and sum²',
    );
  }
  const h = a.histogram;
  if (h === undefined) return;
  if (h === null || typeof h !== 'object' || typeof (h as ArrayLike<number>).length !== 'number') {
    throw new TypeError(`${where}${name}.histogram must be an array of ${VALUE_HISTOGRAM_BUCKETS} counts, got ${describe(h)}`);
  }
  if (h.length !== VALUE_HISTOGRAM_BUCKETS) {
    throw new RangeError(`${where}${name}.histogram must have ${VALUE_HISTOGRAM_BUCKETS} buckets, got ${h.length}`);
  }
  let total = 0;
  for (let i = 0; i < VALUE_HISTOGRAM_BUCKETS; i++) {
    const v = h[i];
    if (typeof v !== 'number') throw new TypeError(`${where}${name}.histogram[${i}] must be a number, got ${describe(v)}`);
    if (!isSafeInteger(v) || v < 0) throw new RangeError(`${where}${name}.histogram[${i}] must be a non-negative integer, got ${v}`);
    total += v;
  }
  if (total !== n) throw new RangeError(`${where}${name}.histogram must sum to ${name}.n (${n}), got ${total}`);
}

function addArm(arm: ValueArmBucket, open: ValueSumsState, tot: ValueSumsState, hist: Float64Array): void {
  open.n += arm.n;
  open.sum += arm.sum;
  open.sumSquares += arm.sumSquares;
  tot.n += arm.n;
  tot.sum += arm.sum;
  tot.sumSquares += arm.sumSquares;
  const h = arm.histogram;
  if (h !== undefined) for (let i = 0; i < VALUE_HISTOGRAM_BUCKETS; i++) hist[i] = hist[i]! + h[i]!;
}

function bucketInteger(value: unknown, field: string): number {
  const where = 'ValueComparison.observe: ';
  if (typeof value !== 'number') throw new TypeError(`${where}${field} must be a number, got ${describe(value)}`);
  if (!isSafeInteger(value) || value < 0) throw new RangeError(`${where}${field} must be a non-negative safe integer, got ${value}`);
  return value;
}

function probability(value: unknown, field: string, prefix: string): number {
  if (typeof value !== 'number') throw new TypeError(`${prefix}${field} must be a number, got ${describe(value)}`);
  if (!(value > 0 && value < 1)) throw new RangeError(`${prefix}${field} must be strictly between 0 and 1, got ${value}`);
  return value;
}

function integerOption(value: unknown, field: string, min: number, prefix: string): number {
  if (typeof value !== 'number') throw new TypeError(`${prefix}${field} must be a number, got ${describe(value)}`);
  if (!isSafeInteger(value) || value < min) throw new RangeError(`${prefix}${field} must be an integer ≥ ${min}, got ${value}`);
  return value;
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`${what} must be an object, got ${describe(value)}`);
  return value as Record<string, unknown>;
}

function stateNumber(value: unknown, field: string): number {
  if (typeof value !== 'number') throw new TypeError(`${STATE}${field} must be a number, got ${describe(value)}`);
  if (!(isFiniteNumber(value) && value >= 0)) throw new RangeError(`${STATE}${field} must be a finite number ≥ 0, got ${value}`);
  return value;
}

function stateCount(value: unknown, field: string): number {
  if (typeof value !== 'number') throw new TypeError(`${STATE}${field} must be a number, got ${describe(value)}`);
  if (!isSafeInteger(value) || value < 0) throw new RangeError(`${STATE}${field} must be a non-negative safe integer, got ${value}`);
  return value;
}

function sumsInto(target: ValueSumsState, value: unknown, field: string): void {
  const o = record(value, `${STATE}${field}`);
  target.n = stateCount(o.n, `${field}.n`);
  target.sum = stateNumber(o.sum, `${field}.sum`);
  target.sumSquares = stateNumber(o.sumSquares, `${field}.sumSquares`);
  if (target.n === 0 && (target.sum !== 0 || target.sumSquares !== 0)) throw new RangeError(`${STATE}${field}.sum and .sumSquares must be 0 when .n is 0`);
}

function comparedInto(target: ValueComparedArmState, value: unknown, field: string): void {
  const o = record(value, `${STATE}${field}`);
  target.count = stateCount(o.count, `${field}.count`);
  target.df = stateCount(o.df, `${field}.df`);
  for (const key of ['weightedSum', 'weightedDev', 'weightedCount', 'weightedDf', 'crossDev', 'crossDf'] as const) {
    target[key] = stateNumber(o[key], `${field}.${key}`);
  }
  if (target.df > target.count) throw new RangeError(`${STATE}${field}.df (${target.df}) must not exceed ${field}.count (${target.count})`);
  if (target.weightedDf > target.weightedCount) {
    throw new RangeError(`${STATE}${field}.weightedDf (${target.weightedDf}) must not exceed ${field}.weightedCount (${target.weightedCount})`);
  }
  // A positive deviation needs an arm with two values in a stratum, hence positive degrees of freedom.
  if (target.weightedDev > 0 && !(target.weightedDf > 0)) throw new RangeError(`${STATE}${field}.weightedDev is positive but ${field}.weightedDf is 0`);
  if (target.crossDev > 0 && !(target.crossDf > 0)) throw new RangeError(`${STATE}${field}.crossDev is positive but ${field}.crossDf is 0`);
}

function totalsInto(target: ValueSumsState, hist: Float64Array, value: unknown, field: string): void {
  const o = record(value, `${STATE}${field}`);
  target.n = stateCount(o.count, `${field}.count`);
  target.sum = stateNumber(o.sum, `${field}.sum`);
  target.sumSquares = stateNumber(o.sumSquares, `${field}.sumSquares`);
  if (!Array.isArray(o.histogram)) throw new TypeError(`${STATE}${field}.histogram must be an array of numbers, got ${describe(o.histogram)}`);
  if (o.histogram.length !== VALUE_HISTOGRAM_BUCKETS) {
    throw new RangeError(`${STATE}${field}.histogram must have ${VALUE_HISTOGRAM_BUCKETS} buckets, got ${o.histogram.length}`);
  }
  let total = 0;
  for (let i = 0; i < VALUE_HISTOGRAM_BUCKETS; i++) {
    hist[i] = stateCount(o.histogram[i], `${field}.histogram[${i}]`);
    total += hist[i]!;
  }
  if (total > target.n) throw new RangeError(`${STATE}${field}.histogram holds ${total} values, more than ${field}.count (${target.n})`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}
