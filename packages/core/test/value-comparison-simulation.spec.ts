/**
 * Monte Carlo checks of ValueComparison on the traffic it is built for. Task times (time to
 * complete a checkout) arrive at 2 per second (Poisson), one bucket per second, in strata of one
 * minute, observed as a recorder would store them: integers (ms) with their squares and histogram.
 *
 * - Task time: log-normal, median 3 s, σ = 0.5. In 1% of tasks the user steps away: × a
 *   log-normal factor with median 8 and σ = 0.7. Capped at 10 min, as the recorder should.
 * - The ramp: 5% → 20% → 50%, advancing at 20 and 40 minutes.
 * - The drift: the level steps × 1.3 and × 1.6 at the ramp steps, times 1 ± 20% on a 30-minute
 *   sine. Both arms drift alike.
 *
 * The interval is looked at after every stratum, which is every time it can change: continuous
 * monitoring.
 *
 * Every run is seeded, so the outcome is the same on every machine. The margins in the
 * assertions are there so that the assertions are not tuned to the seeds (see each comment).
 * Set ROLLGATE_SIM_REPORT=1 to print the measured figures.
 */
import { ValueComparison, VALUE_HISTOGRAM_BUCKETS, valueHistogramBucket, type ValueComparisonOptions } from '../src/value-comparison';

// Jest runs this file in a `vm` context, where every read of a global (`Math`) is ~40× slower
// than a local one: read the builtins once.
const { imul, log, sqrt, cos, exp, sin, PI, round, min, floor } = Math;

const ALPHA = 0.05;
const RATE = 2; // values per second
const STRATUM_SECONDS = 60;
const RUNS = 200;

/**
 * An upper limit on the rate of runs that ever go wrong (miss the truth, or a false alarm) in
 * `runs` runs when the true rate is at most alpha: alpha plus three binomial standard deviations.
 * If the true rate were exactly alpha, P(observed > limit) ≈ 0.3% (200 runs: P(X ≥ 20 |
 * Bin(200, 0.05)) = 0.003). This is the limit regression-simulation.spec.ts uses.
 */
const failureLimit = (runs: number) => ALPHA + 3 * sqrt((ALPHA * (1 - ALPHA)) / runs);

/** Deterministic PRNG (mulberry32): uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = imul(a ^ (a >>> 15), 1 | a);
    t = (t + imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const gauss = (rnd: () => number) => sqrt(-2 * log(1 - rnd())) * cos(2 * PI * rnd());

/** Poisson(λ) by inversion (λ = 2: a few steps). */
function poisson(rnd: () => number, lambda: number): number {
  let k = 0;
  let p = exp(-lambda);
  let cdf = p;
  const u = rnd();
  while (u > cdf) {
    k++;
    p *= lambda / k;
    cdf += p;
  }
  return k;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

interface Scenario {
  seed: number;
  hours: number;
  /** The treatment multiplies every task time by this. */
  mult: number;
  ramp: boolean;
  drift: boolean;
  /** Stop the run when this returns true (looked at after each stratum). */
  stopWhen?: (vc: ValueComparison) => boolean;
  options?: ValueComparisonOptions;
}

interface RunResult {
  /** The interval excluded `truth` at some look. */
  missed: boolean;
  /** A pooled (unstratified) interval of the same kind excluded `truth` at some look. */
  pooledMissed: boolean;
  /** Treatment values compared when the interval first said "better", or undefined. */
  betterAt: number | undefined;
  /** Treatment values compared when the guard latched, or undefined. */
  regressedAt: number | undefined;
  vc: ValueComparison;
}

const shareAt = (t: number) => (t < 1200 ? 0.05 : t < 2400 ? 0.2 : 0.5);
const stepAt = (t: number) => (t < 1200 ? 1 : t < 2400 ? 1.3 : 1.6);

function run(index: number, s: Scenario): RunResult {
  const rnd = mulberry32(s.seed * 1_000_003 + index * 7919);
  const phase = 2 * PI * rnd();
  const options = s.options ?? {};
  const vc = new ValueComparison(options);
  const histC = new Array<number>(VALUE_HISTOGRAM_BUCKETS).fill(0);
  const histT = new Array<number>(VALUE_HISTOGRAM_BUCKETS).fill(0);
  const control = { n: 0, sum: 0, sumSquares: 0, histogram: histC };
  const treatment = { n: 0, sum: 0, sumSquares: 0, histogram: histT };
  const bucket = { stratum: 0, control, treatment };
  const pooled = new PooledInterval(s.mult, options.minSamplesPerArm ?? 200);
  const result: RunResult = { missed: false, pooledMissed: false, betterAt: undefined, regressedAt: undefined, vc };
  for (let t = 0; t < s.hours * 3600; t++) {
    const share = s.ramp ? shareAt(t) : 0.5;
    const level = s.drift ? stepAt(t) * (1 + 0.2 * sin((2 * PI * t) / 1800 + phase)) : 1;
    control.n = control.sum = control.sumSquares = 0;
    treatment.n = treatment.sum = treatment.sumSquares = 0;
    histC.fill(0);
    histT.fill(0);
    const k = poisson(rnd, RATE);
    for (let j = 0; j < k; j++) {
      const treated = rnd() < share;
      let ms = 3000 * level * exp(0.5 * gauss(rnd));
      if (rnd() < 0.01) ms *= 8 * exp(0.7 * gauss(rnd));
      if (treated) ms *= s.mult;
      const v = round(min(ms, 600_000));
      const arm = treated ? treatment : control;
      arm.n++;
      arm.sum += v;
      arm.sumSquares += v * v;
      arm.histogram[valueHistogramBucket(v)]!++;
      pooled.add(treated, v);
    }
    bucket.stratum = floor(t / STRATUM_SECONDS);
    vc.observe(bucket);
    if (t % STRATUM_SECONDS === STRATUM_SECONDS - 1) {
      vc.closeStratum(); // what the next second's observe would do; look right after
      const c = vc.comparison;
      if (c.status === 'ok') {
        if (c.ratioLower > s.mult || c.ratioUpper < s.mult) result.missed = true;
        if (result.betterAt === undefined && c.verdict === 'better') result.betterAt = c.perArm.treatment;
        if (pooled.excludesTruth()) result.pooledMissed = true;
      }
      if (result.regressedAt === undefined && vc.regressed && c.status === 'ok') result.regressedAt = c.perArm.treatment;
      if (s.stopWhen?.(vc)) break;
    }
  }
  return result;
}

/**
 * The same construction without strata: each arm's values pooled over the whole run (Welch
 * variances, Fieller inversion at the truth, the same normal-mixture boundary and tuning). This is
 * what a GrowthBook-style test on the arms' totals does.
 */
class PooledInterval {
  private readonly sums = [new Float64Array(3), new Float64Array(3)];
  constructor(
    private readonly truth: number,
    private readonly minPerArm: number,
  ) {}

  add(treated: boolean, v: number): void {
    const s = this.sums[treated ? 1 : 0]!;
    s[0]!++;
    s[1] = s[1]! + v;
    s[2] = s[2]! + v * v;
  }

  excludesTruth(): boolean {
    const [c, t] = this.sums as [Float64Array, Float64Array];
    const nC = c[0]!;
    const nT = t[0]!;
    if (nC < this.minPerArm || nT < this.minPerArm) return false;
    const mC = c[1]! / nC;
    const mT = t[1]! / nT;
    const vC = (c[2]! / nC - mC * mC) / nC;
    const vT = (t[2]! / nT - mT * mT) / nT;
    const l = -2 * log(ALPHA);
    const x = ((l + log(1 + l)) / 500) * ((nT * nC) / (nT + nC));
    const k = ((1 + x) / x) * (log(1 + x) + l);
    const d = mT - this.truth * mC;
    return d * d > k * (vT + this.truth * this.truth * vC);
  }
}

const report: string[] = [];
const started = performance.now();
afterAll(() => {
  if (process.env.ROLLGATE_SIM_REPORT) {
    console.log([...report, `total simulation time: ${((performance.now() - started) / 1000).toFixed(1)} s`].join('\n'));
  }
});

describe('ValueComparison on simulated task times (2 values/s, strata of 1 min, 1% heavy tail)', () => {
  it('A/A on a 5% → 20% → 50% ramp with a drifting level: the interval keeps its level under continuous monitoring; a pooled one does not', () => {
    let missed = 0;
    let pooledMissed = 0;
    let falseAlarms = 0;
    for (let i = 0; i < RUNS; i++) {
      const r = run(i, { seed: 1, hours: 3, mult: 1, ramp: true, drift: true });
      if (r.missed) missed++;
      if (r.pooledMissed) pooledMissed++;
      if (r.vc.regressed) falseAlarms++;
    }
    report.push(
      `A/A ramp + drift, 3 h: interval ever excluded 1 in ${missed}/${RUNS} runs (limit ${(failureLimit(RUNS) * RUNS).toFixed(0)}); ` +
        `guard false alarms ${falseAlarms}/${RUNS}; pooled interval ever excluded 1 in ${pooledMissed}/${RUNS}`,
    );
    expect(missed / RUNS).toBeLessThanOrEqual(failureLimit(RUNS));
    expect(falseAlarms / RUNS).toBeLessThanOrEqual(failureLimit(RUNS));
    // Simpson's paradox: the treatment's values sit in the later, slower stages. Measured 199/200.
    expect(pooledMissed / RUNS).toBeGreaterThanOrEqual(0.9);
  });

  it('A/A at a constant 50/50 split and level: the same', () => {
    let missed = 0;
    let falseAlarms = 0;
    for (let i = 0; i < RUNS; i++) {
      const r = run(i, { seed: 2, hours: 2, mult: 1, ramp: false, drift: false });
      if (r.missed) missed++;
      if (r.vc.regressed) falseAlarms++;
    }
    report.push(`A/A 50/50, 2 h: interval ever excluded 1 in ${missed}/${RUNS} runs; guard false alarms ${falseAlarms}/${RUNS}`);
    expect(missed / RUNS).toBeLessThanOrEqual(failureLimit(RUNS));
    expect(falseAlarms / RUNS).toBeLessThanOrEqual(failureLimit(RUNS));
  });

  it('a treatment with the same mean and a wider spread: no false alarm, the interval keeps its level', () => {
    // Each treatment time × its own mean-one log-normal factor (σ = 0.5): the same mean, a wider
    // spread. One bucket per minute (its own stratum) at 50/50, no histogram; 100 runs of 2 h.
    let missed = 0;
    let falseAlarms = 0;
    const runs = 100;
    for (let i = 0; i < runs; i++) {
      const rnd = mulberry32(3 * 1_000_003 + i * 7919);
      const vc = new ValueComparison();
      const empty = () => ({ n: 0, sum: 0, sumSquares: 0 });
      let excluded = false;
      for (let m = 0; m < 120; m++) {
        const control = empty();
        const treatment = empty();
        for (let j = 0, k = poisson(rnd, 60 * RATE); j < k; j++) {
          const treated = rnd() < 0.5;
          let ms = 3000 * exp(0.5 * gauss(rnd));
          if (rnd() < 0.01) ms *= 8 * exp(0.7 * gauss(rnd));
          if (treated) ms *= exp(0.5 * gauss(rnd) - 0.125);
          const v = round(min(ms, 600_000));
          const arm = treated ? treatment : control;
          arm.n++;
          arm.sum += v;
          arm.sumSquares += v * v;
        }
        vc.observe({ stratum: m, control, treatment });
        vc.closeStratum();
        const c = vc.comparison;
        if (c.status === 'ok' && (c.ratioLower > 1 || c.ratioUpper < 1)) excluded = true;
      }
      if (excluded) missed++;
      if (vc.regressed) falseAlarms++;
    }
    report.push(`same mean, wider treatment spread, 2 h at 50/50: interval ever excluded 1 in ${missed}/${runs}; guard false alarms ${falseAlarms}/${runs}`);
    expect(missed / runs).toBeLessThanOrEqual(failureLimit(runs));
    expect(falseAlarms / runs).toBeLessThanOrEqual(failureLimit(runs));
  });

  it('an 18% faster treatment at 50/50: reported "better" in every run, median ≈ 600 values per arm', () => {
    // Rough expectation: the coefficient of variation is 1.39 with the tail, so the ratio's
    // standard error is about 0.82 × 1.39 × √(2/n); "better" needs the upper end of an interval
    // ~3 standard errors wide (the price of anytime validity, vs 1.96) below 1: n ≈ 500–800 per
    // arm. A one-look test would reach the same 50% chance at ≈ 310 per arm.
    const at: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = run(i, { seed: 4, hours: 3, mult: 0.82, ramp: false, drift: false, stopWhen: (vc) => vc.comparison.status === 'ok' && (vc.comparison as { verdict: string }).verdict === 'better' });
      if (r.betterAt !== undefined) at.push(r.betterAt);
    }
    report.push(
      `18% faster, 50/50: "better" in ${at.length}/${RUNS} runs, median ${median(at)} values per arm ` +
        `(p10 ${quantile(at, 0.1)}, p90 ${quantile(at, 0.9)}) — ${(median(at) / (RATE * 30)).toFixed(0)} min at ${RATE}/s`,
    );
    expect(at.length / RUNS).toBeGreaterThanOrEqual(0.95);
    // Measured 596. The median of 200 runs moves by a few percent from seed to seed.
    expect(median(at)).toBeLessThanOrEqual(1000);
    expect(median(at)).toBeGreaterThanOrEqual(300);
  });

  it('an 18% faster treatment on the ramp with drift (2 h): "better" in every run, and the interval covers 0.82', () => {
    const at: number[] = [];
    let missed = 0;
    for (let i = 0; i < RUNS; i++) {
      const r = run(i, { seed: 5, hours: 2, mult: 0.82, ramp: true, drift: true });
      if (r.betterAt !== undefined) at.push(r.betterAt);
      if (r.missed) missed++;
    }
    report.push(
      `18% faster, ramp + drift: "better" in ${at.length}/${RUNS} runs, median ${median(at)} treatment values (p90 ${quantile(at, 0.9)}); ` +
        `interval ever excluded 0.82 in ${missed}/${RUNS}`,
    );
    expect(at.length / RUNS).toBeGreaterThanOrEqual(0.95);
    expect(median(at)).toBeLessThanOrEqual(1000);
    expect(missed / RUNS).toBeLessThanOrEqual(failureLimit(RUNS));
  });

  it('a 25% slower treatment on the ramp: the guard (alpha 0.05, margin 5%) rolls back in every run', () => {
    const at: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = run(i, { seed: 6, hours: 3, mult: 1.25, ramp: true, drift: true, options: { margin: 0.05 }, stopWhen: (vc) => vc.regressed });
      if (r.regressedAt !== undefined) at.push(r.regressedAt);
    }
    report.push(`25% slower, ramp + drift, margin 5%: guard fired in ${at.length}/${RUNS} runs, median at ${median(at)} treatment values (p90 ${quantile(at, 0.9)})`);
    expect(at.length / RUNS).toBeGreaterThanOrEqual(0.95);
    expect(median(at)).toBeLessThanOrEqual(1000);
  });
});

function quantile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[min(s.length - 1, floor(p * s.length))] ?? NaN;
}
