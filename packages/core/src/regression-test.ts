/**
 * Sequential regression test for guarded rollouts: is the treatment's bad-event rate (errors,
 * requests slower than a frozen threshold, …) higher than the control's?
 *
 * ## The test
 *
 * Traffic arrives in time buckets (one per second in Rollgate). In bucket i the treatment served
 * `n_T` requests with `e_T` bad ones and the control `n_C` requests with `e_C` bad ones. Let
 * `m = e_T + e_C` and `π = n_T / (n_T + n_C)`, the treatment's share of the bucket's traffic.
 *
 * **Null hypothesis** H0: in every bucket, a treatment request is no more likely to be bad than a
 * control request (the probability may differ from bucket to bucket in any way, even depending
 * on the past), and requests are independent.
 *
 * 1. Given the past, the bucket's `n_T`, `n_C` (which must not depend on the bucket's own
 *    outcomes) and `m`, and equal probabilities in both arms, the m bad requests are a uniformly
 *    random m-subset of the bucket's requests, so `e_T` is hypergeometric: m draws without
 *    replacement from `n_T` treatment and `n_C` control requests. (The same holds, with no
 *    assumption on the requests at all, when each request is assigned to an arm at random and
 *    the treatment changes nothing: Fisher's randomization argument.)
 * 2. Hoeffding (1963, Theorem 4): for every continuous convex f, E f(draws without replacement)
 *    ≤ E f(draws with replacement), and the latter is Binomial(m, π).
 * 3. For an alternative rate ratio θ > 1, the binomial model gives the treatment's share of bad
 *    events as `q = θπ / (θπ + 1 − π)`, and the bucket's likelihood ratio is
 *    `f(e_T) = (q/π)^e_T ((1−q)/(1−π))^e_C = θ^e_T / (1 + (θ−1)π)^m`. It is convex (exponential)
 *    in `e_T` with Binomial(m, π)-mean exactly 1, so by 2. its conditional mean under H0 is ≤ 1.
 * 4. If the treatment is *better* (its probability lower), the law of `e_T` is Fisher's
 *    noncentral hypergeometric with odds ratio ω < 1, which is stochastically smaller than the
 *    central one; `f` is increasing in `e_T` for θ > 1, so the conditional mean is still ≤ 1.
 *    This is why every θ must exceed 1: the test is one-sided.
 * 5. So for each fixed θ the running product of the f's is a nonnegative supermartingale with
 *    initial value 1, and so is a mixture `E = Σ_k w_k Π_i f_θk` with fixed weights summing to 1
 *    (default θ ∈ {1.25, 1.5, 2, 3, 5}, equal weights).
 * 6. Ville's inequality: P(sup_t E_t ≥ 1/α) ≤ α under H0. `regressed` latches the first time
 *    `E ≥ 1/α`.
 *
 * Because each bucket is compared only with itself (conditioning on its own `n_T`, `n_C`, `m`),
 * the guarantee holds however the analyst peeks or stops, when the treatment's share changes
 * between buckets (a ramp), and when the baseline rate moves between buckets (time of day, a
 * deploy): pooling counts across buckets would not survive the last two (Simpson's paradox).
 *
 * Buckets with no bad event (m = 0) or with an empty arm (π ∈ {0, 1}) carry no information: the
 * likelihood ratio is exactly 1 whatever θ, so they are skipped. An empty arm is therefore not a
 * pass: a treatment that serves nothing accumulates no evidence either way.
 *
 * What the guarantee needs, and what it does not cover: bad events of different requests must be
 * independent given the bucket. Retries and one client hammering one arm break this (count at
 * most one bad event per unit per bucket). Requests must be assigned to arms independently of
 * their risk (random or hash bucketing, not "VIP customers first").
 *
 * ## Lower bound on the rate ratio
 *
 * For each `θ0` on a grid (default 23 points from 0.25 to 16, including 1, 1.25, 1.5, 2, 3) the same
 * construction with `q(θ0)` in place of `π` as the null share and alternatives `θ0·θ_k` tests
 * H0(θ0): rate ratio ≤ θ0. Per bucket its factor is
 * `θ_k^e_T · ((1 + (θ0−1)π) / (1 + (θ0θ_k−1)π))^m`, which decreases in θ0 for every outcome, so
 * the rejected θ0 form a lower set. `ratioLowerBound` is the largest grid point `L` such that it
 * and every grid point below it are rejected (`E(θ0) ≥ 1/α`), or 0 when the smallest is not.
 * Reading: "the treatment's rate is more than `L` times the control's", with confidence about
 * 1 − α, at every moment simultaneously (if the truth θ* ≤ L, the grid point just at or above θ*
 * — a true null — was rejected, which Ville bounds by α).
 *
 * The bound is **approximate** for θ0 ≠ 1: given m, the exact law of `e_T` is then Fisher's
 * noncentral hypergeometric with odds ratio `θ0 (1 − p_C) / (1 − θ0 p_C)` rather than the binomial
 * share `q(θ0)`; the two agree as the rates go to 0 and the buckets grow (for θ0 = 2 at a 1%
 * control rate the odds ratio is 2.02), and step 2's convexity argument is only proven for θ0 = 1.
 * At θ0 = 1 it is exact and uses the very numbers behind `evidence`, so when `evidence ≥ 1/α`
 * the bound is at least 1 (with `regressed` latched, the bound may later fall below 1 if the
 * evidence does).
 *
 * ## Cost
 *
 * Summed over buckets, log f for null θ0 and alternative θ0θ is `e_T·log θ + S(θ0) − S(θ0θ)` with
 * `S(c) = Σ m·log(1 + (c − 1)π)`. So the state is Σ e_T and one sum S(c) per distinct ratio c
 * among the thetas, the grid points and their products (58 with the defaults). `observe()`
 * allocates nothing; a bucket with m = 0 costs a few comparisons, an informative one one
 * `Math.log1p` per ratio plus a log-sum-exp over the thetas (for the latch). `ratioLowerBound` is
 * computed when read (one log-sum-exp per grid point tried).
 */

/** Requests and bad events of one arm in one bucket. */
export interface ArmCounts {
  /** Requests served (a non-negative integer). */
  readonly n: number;
  /** Bad events among them (a non-negative integer, at most `n`). */
  readonly bad: number;
}

/** One time bucket (e.g. one second) of both arms. */
export interface RegressionObservation {
  readonly control: ArmCounts;
  readonly treatment: ArmCounts;
}

export interface RegressionTestOptions {
  /** False-alarm probability, 0 < alpha < 1. Default 0.05. `regressed` fires at evidence ≥ 1/alpha. */
  alpha?: number;
  /** Alternative rate ratios mixed over, each finite and > 1. Default [1.25, 1.5, 2, 3, 5]. */
  thetas?: readonly number[];
  /** Mixture weights, one per theta, each finite and > 0 (normalized internally). Default equal. */
  weights?: readonly number[];
  /**
   * Null ratios tried for `ratioLowerBound`, strictly increasing, finite and > 0. Include 1 so that
   * a regression always shows a bound of at least 1. Default 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.8,
   * 1, 1.2, 1.25, 1.5, 1.6, 2, 2.4, 2.5, 3, 4, 5, 6, 8, 10, 12, 16.
   */
  ratioGrid?: readonly number[];
}

/**
 * The state of a {@link RegressionTest} as plain JSON (numbers, arrays, a boolean); see `toJSON`
 * and `RegressionTest.fromJSON`. Doubles survive `JSON.stringify`/`JSON.parse` exactly.
 */
export interface RegressionTestState {
  readonly version: 1;
  readonly alpha: number;
  readonly thetas: number[];
  /** As given (not normalized). */
  readonly weights: number[];
  readonly ratioGrid: number[];
  /** Buckets observed, and those that carried information (a bad event, and both arms served). */
  readonly buckets: number;
  readonly informativeBuckets: number;
  /** Σ e_T over the informative buckets. */
  readonly treatmentBad: number;
  /** The distinct ratios c among the thetas, the grid points and their products (derived from the options). */
  readonly ratios: number[];
  /** Per ratio c, Σ over informative buckets of m·log(1 + (c − 1)π). */
  readonly logSums: number[];
  readonly regressed: boolean;
}

const DEFAULT_THETAS: readonly number[] = Object.freeze([1.25, 1.5, 2, 3, 5]);
/**
 * Roughly geometric (steps of 4–33%) and made of products of 2, 3 and 5 like the default thetas,
 * so that bounds read well ("more than 1.5 times") and most grid point × theta products coincide:
 * 58 distinct ratios instead of 23 × 6 = 138.
 */
const DEFAULT_RATIO_GRID: readonly number[] = Object.freeze([
  0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.8, 1, 1.2, 1.25, 1.5, 1.6, 2, 2.4, 2.5, 3, 4, 5, 6, 8, 10, 12, 16,
]);
const STATE_VERSION = 1;

// Builtins read once: inside a Node `vm` context (Jest, sandboxes) every lookup of a global such as
// `Math` goes through the context's interceptors and costs tens of times a local read.
const { exp, log, log1p, abs, sign } = Math;
const { isFinite: isFiniteNumber, isSafeInteger } = Number;
const NEGATIVE_INFINITY = -Infinity;

/**
 * An anytime-valid one-sided test of "the treatment has a higher bad-event rate than the
 * control", fed one time bucket at a time. Pure: no I/O, no clock, runs in Node and browsers.
 * See the comment at the top of this file for the derivation, and
 * docs/guarded-rollouts-statistics.md.
 *
 * ```ts
 * const test = new RegressionTest({ alpha: 0.05 });
 * test.observe({ control: { n: 480, bad: 3 }, treatment: { n: 120, bad: 2 } });
 * if (test.regressed) rollBack(test.evidence, test.ratioLowerBound);
 * ```
 */
export class RegressionTest {
  private readonly alpha: number;
  private readonly logThreshold: number;
  private readonly thetas: Float64Array;
  private readonly logThetas: Float64Array;
  private readonly rawWeights: Float64Array;
  private readonly weights: Float64Array;
  /** log Σ w_k, summed in logEvidenceOf's order, so that no data gives an evidence of exactly 1. */
  private readonly logWeightSum: number;
  private readonly grid: Float64Array;
  /** Index of 1 in the grid, or -1. */
  private readonly oneIndex: number;
  /**
   * log f(θ0 → θ0θ) summed over buckets is e_T·log θ + S(θ0) − S(θ0θ), where
   * S(c) = Σ m·log(1 + (c − 1)π). So the state is Σ e_T and S(c) for each distinct c among the
   * thetas (null ratio 1), the grid points and their products with the thetas.
   */
  private readonly ratios: Float64Array;
  private readonly ratioMinus1: Float64Array;
  private readonly thetaRatio: Int32Array;
  private readonly gridRatio: Int32Array;
  /** Row-major: grid point g, theta k → index of g·θ_k in `ratios`. */
  private readonly pairRatio: Int32Array;

  private readonly logSums: Float64Array;
  private treatmentBad = 0;
  private latched = false;
  private bucketCount = 0;
  private informativeCount = 0;
  /** Per-θ log running products of the row being evaluated (scratch, reused). */
  private readonly row: Float64Array;

  constructor(options: RegressionTestOptions = {}) {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new TypeError(`RegressionTest: options must be an object, got ${describe(options)}`);
    }
    const alpha = options.alpha ?? 0.05;
    if (typeof alpha !== 'number') throw new TypeError(`RegressionTest: alpha must be a number, got ${describe(alpha)}`);
    if (!(alpha > 0 && alpha < 1)) throw new RangeError(`RegressionTest: alpha must be strictly between 0 and 1, got ${alpha}`);
    const thetas = numberList(options.thetas ?? DEFAULT_THETAS, 'thetas');
    thetas.forEach((t, i) => {
      if (!(isFiniteNumber(t) && t > 1)) {
        throw new RangeError(`RegressionTest: thetas[${i}] must be a finite number > 1 (the test is one-sided), got ${t}`);
      }
    });
    const weights = options.weights === undefined ? thetas.map(() => 1) : numberList(options.weights, 'weights');
    if (weights.length !== thetas.length) {
      throw new RangeError(`RegressionTest: weights must have one entry per theta (${thetas.length}), got ${weights.length}`);
    }
    weights.forEach((w, i) => {
      if (!(isFiniteNumber(w) && w > 0)) throw new RangeError(`RegressionTest: weights[${i}] must be a finite number > 0, got ${w}`);
    });
    const grid = numberList(options.ratioGrid ?? DEFAULT_RATIO_GRID, 'ratioGrid');
    grid.forEach((g, i) => {
      if (!(isFiniteNumber(g) && g > 0)) throw new RangeError(`RegressionTest: ratioGrid[${i}] must be a finite number > 0, got ${g}`);
      const prev = grid[i - 1];
      if (prev !== undefined && !(g > prev)) {
        throw new RangeError(`RegressionTest: ratioGrid must be strictly increasing, got ${prev} then ${g} at index ${i}`);
      }
    });

    const K = thetas.length;
    const G = grid.length;
    this.alpha = alpha;
    this.logThreshold = -log(alpha);
    this.thetas = Float64Array.from(thetas);
    this.logThetas = Float64Array.from(thetas, (t) => log(t));
    this.rawWeights = Float64Array.from(weights);
    let total = 0;
    for (const w of weights) total += w;
    this.weights = Float64Array.from(weights, (w) => w / total);
    let normalized = 0;
    for (let k = 0; k < K; k++) normalized += this.weights[k]!;
    this.logWeightSum = log(normalized);
    this.grid = Float64Array.from(grid);
    this.oneIndex = grid.indexOf(1);

    // Ratios equal up to rounding (0.4 × 3 and 1.2) share one entry; the first one entered wins,
    // so the thetas are exact and a grid point's alternative may differ from grid × theta in the
    // last bit, which changes nothing (any fixed alternative gives a valid test).
    const ratios: number[] = [];
    const ratioIndex = (c: number): number => {
      const found = ratios.findIndex((x) => abs(x - c) <= 1e-12 * c);
      if (found >= 0) return found;
      ratios.push(c);
      return ratios.length - 1;
    };
    this.thetaRatio = Int32Array.from(thetas, ratioIndex);
    this.gridRatio = Int32Array.from(grid, ratioIndex);
    this.pairRatio = new Int32Array(G * K);
    for (let g = 0; g < G; g++) for (let k = 0; k < K; k++) this.pairRatio[g * K + k] = ratioIndex(grid[g]! * thetas[k]!);
    this.ratios = Float64Array.from(ratios);
    this.ratioMinus1 = Float64Array.from(ratios, (c) => c - 1);
    this.logSums = new Float64Array(ratios.length);
    this.row = new Float64Array(K);
  }

  /**
   * Adds one time bucket. Throws (and changes nothing) if a count is not a non-negative integer
   * or `bad > n`. Allocates nothing.
   */
  observe(bucket: RegressionObservation): void {
    if (bucket === null || typeof bucket !== 'object') {
      throw new TypeError(`RegressionTest.observe: the bucket must be an object {control, treatment}, got ${describe(bucket)}`);
    }
    const control = bucket.control;
    const treatment = bucket.treatment;
    if (control === null || typeof control !== 'object') {
      throw new TypeError(`RegressionTest.observe: control must be an object {n, bad}, got ${describe(control)}`);
    }
    if (treatment === null || typeof treatment !== 'object') {
      throw new TypeError(`RegressionTest.observe: treatment must be an object {n, bad}, got ${describe(treatment)}`);
    }
    const nC = count(control.n, 'control.n');
    const eC = count(control.bad, 'control.bad');
    const nT = count(treatment.n, 'treatment.n');
    const eT = count(treatment.bad, 'treatment.bad');
    if (eC > nC) throw new RangeError(`RegressionTest.observe: control.bad (${eC}) must not exceed control.n (${nC})`);
    if (eT > nT) throw new RangeError(`RegressionTest.observe: treatment.bad (${eT}) must not exceed treatment.n (${nT})`);

    this.bucketCount++;
    const m = eT + eC;
    if (m === 0 || nT === 0 || nC === 0) return; // the likelihood ratio is exactly 1: no information
    this.informativeCount++;
    this.treatmentBad += eT;
    const pi = nT / (nT + nC);
    const logSums = this.logSums;
    const ratioMinus1 = this.ratioMinus1;
    for (let j = 0; j < ratioMinus1.length; j++) logSums[j] = logSums[j]! + m * log1p(ratioMinus1[j]! * pi);
    if (!this.latched && this.logEvidenceOf(-1) >= this.logThreshold) this.latched = true;
  }

  /** True once the evidence has reached 1/alpha; stays true (the decision is not revisited). */
  get regressed(): boolean {
    return this.latched;
  }

  /**
   * The current e-value: exactly 1 before any informative bucket; under H0 it ever reaches
   * 1/alpha with probability at most alpha. `Infinity` once its logarithm exceeds ~709.
   */
  get evidence(): number {
    return exp(this.logEvidenceOf(-1));
  }

  /**
   * A lower confidence bound L on the ratio of the treatment's bad-event rate to the control's:
   * "the ratio is more than L". A grid point, or 0 when even the smallest is not rejected.
   * Approximate for L ≠ 1 (see the comment at the top of this file).
   */
  get ratioLowerBound(): number {
    let bound = 0;
    for (let g = 0; g < this.grid.length; g++) {
      if (this.logEvidenceOf(g) < this.logThreshold) break;
      bound = this.grid[g]!;
    }
    return bound;
  }

  /** The state as plain JSON: `RegressionTest.fromJSON(JSON.parse(JSON.stringify(test)))` continues exactly. */
  toJSON(): RegressionTestState {
    return {
      version: STATE_VERSION,
      alpha: this.alpha,
      thetas: Array.from(this.thetas),
      weights: Array.from(this.rawWeights),
      ratioGrid: Array.from(this.grid),
      buckets: this.bucketCount,
      informativeBuckets: this.informativeCount,
      treatmentBad: this.treatmentBad,
      ratios: Array.from(this.ratios),
      logSums: Array.from(this.logSums),
      regressed: this.latched,
    };
  }

  /**
   * Restores a test saved with `toJSON()` (after a JSON round trip, e.g. through Redis),
   * validating it: throws TypeError/RangeError naming the offending `state.` field.
   */
  static fromJSON(state: unknown): RegressionTest {
    const where = 'RegressionTest.fromJSON: state.';
    if (state === null || typeof state !== 'object' || Array.isArray(state)) {
      throw new TypeError(`RegressionTest.fromJSON: state must be an object, got ${describe(state)}`);
    }
    const s = state as Record<string, unknown>;
    if (s.version !== STATE_VERSION) throw new RangeError(`${where}version must be ${STATE_VERSION}, got ${describe(s.version)}`);
    if (typeof s.alpha !== 'number') throw new TypeError(`${where}alpha must be a number, got ${describe(s.alpha)}`);
    let test: RegressionTest;
    try {
      test = new RegressionTest({
        alpha: s.alpha,
        thetas: stateList(s.thetas, 'thetas'),
        weights: stateList(s.weights, 'weights'),
        ratioGrid: stateList(s.ratioGrid, 'ratioGrid'),
      });
    } catch (err) {
      if (err instanceof Error) err.message = err.message.replace(/^RegressionTest: /, where);
      throw err;
    }
    const ratios = stateList(s.ratios, 'ratios');
    if (ratios.length !== test.ratios.length || ratios.some((c, j) => c !== test.ratios[j])) {
      throw new RangeError(`${where}ratios must be [${Array.from(test.ratios).join(', ')}] for these thetas and ratioGrid`);
    }
    const logSums = stateList(s.logSums, 'logSums');
    if (logSums.length !== ratios.length) {
      throw new RangeError(`${where}logSums must have one entry per ratio (${ratios.length}), got ${logSums.length}`);
    }
    logSums.forEach((v, j) => {
      // m·log(1 + (c − 1)π) has the sign of c − 1.
      if (!isFiniteNumber(v) || sign(v) * sign(ratios[j]! - 1) < 0 || (ratios[j] === 1 && v !== 0)) {
        throw new RangeError(`${where}logSums[${j}] must be a finite number with the sign of ratio ${ratios[j]} − 1, got ${v}`);
      }
      test.logSums[j] = v;
    });
    test.bucketCount = count(s.buckets, 'buckets', where);
    test.informativeCount = count(s.informativeBuckets, 'informativeBuckets', where);
    test.treatmentBad = count(s.treatmentBad, 'treatmentBad', where);
    if (test.informativeCount > test.bucketCount) {
      throw new RangeError(`${where}informativeBuckets (${test.informativeCount}) must not exceed buckets (${test.bucketCount})`);
    }
    if (typeof s.regressed !== 'boolean') throw new TypeError(`${where}regressed must be a boolean, got ${describe(s.regressed)}`);
    if (!s.regressed && test.logEvidenceOf(-1) >= test.logThreshold) {
      throw new RangeError(`${where}regressed is false but the evidence in logSums is at or above 1/alpha`);
    }
    test.latched = s.regressed;
    return test;
  }

  /**
   * log E for the null ratio `grid[g]` (g = -1: ratio 1, the `evidence`), by log-sum-exp over
   * the thetas; exactly 0 before any informative bucket.
   */
  private logEvidenceOf(g: number): number {
    const K = this.thetas.length;
    const row = this.row;
    const logSums = this.logSums;
    const eT = this.treatmentBad;
    if (g < 0 || g === this.oneIndex) {
      for (let k = 0; k < K; k++) row[k] = eT * this.logThetas[k]! - logSums[this.thetaRatio[k]!]!;
    } else {
      const base = logSums[this.gridRatio[g]!]!;
      for (let k = 0; k < K; k++) row[k] = eT * this.logThetas[k]! + (base - logSums[this.pairRatio[g * K + k]!]!);
    }
    let max = NEGATIVE_INFINITY;
    for (let k = 0; k < K; k++) if (row[k]! > max) max = row[k]!;
    let sum = 0;
    for (let k = 0; k < K; k++) sum += this.weights[k]! * exp(row[k]! - max);
    return max + (log(sum) - this.logWeightSum);
  }
}

function count(value: unknown, field: string, prefix = 'RegressionTest.observe: '): number {
  if (typeof value !== 'number') throw new TypeError(`${prefix}${field} must be a number, got ${describe(value)}`);
  if (!isSafeInteger(value) || value < 0) throw new RangeError(`${prefix}${field} must be a non-negative integer, got ${value}`);
  return value;
}

function numberList(value: unknown, field: string): number[] {
  if (!Array.isArray(value)) throw new TypeError(`RegressionTest: ${field} must be an array of numbers, got ${describe(value)}`);
  if (value.length === 0) throw new RangeError(`RegressionTest: ${field} must not be empty`);
  return value.map((v: unknown, i) => {
    if (typeof v !== 'number') throw new TypeError(`RegressionTest: ${field}[${i}] must be a number, got ${describe(v)}`);
    return v;
  });
}

function stateList(value: unknown, field: string): number[] {
  if (!Array.isArray(value)) throw new TypeError(`RegressionTest.fromJSON: state.${field} must be an array of numbers, got ${describe(value)}`);
  return value.map((v: unknown, i) => {
    if (typeof v !== 'number') throw new TypeError(`RegressionTest.fromJSON: state.${field}[${i}] must be a number, got ${describe(v)}`);
    return v;
  });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}
