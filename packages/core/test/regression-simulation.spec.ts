/**
 * Monte Carlo checks of RegressionTest on the traffic it is built for: 30 requests/s, one bucket
 * per second, a 5% → 20% → 50% ramp advancing at 20 and 40 minutes, 3 hours.
 *
 * Every run is seeded, so the outcome is the same on every machine; the margins in the assertions
 * are there so that the assertions are not tuned to the seeds: each is chosen so that a correct
 * implementation fails it with probability well under 1% over fresh seeds (see each comment).
 * Set ROLLGATE_SIM_REPORT=1 to print the measured figures.
 */
import { RegressionTest } from '../src/regression-test';

// Jest runs this file in a `vm` context, where every read of a global (`Math`) is ~40× slower
// than a local one: read the builtins once.
const { imul, pow, sin, sqrt, log, max, min, ceil, PI } = Math;

const ALPHA = 0.05;
const RPS = 30;
const HOURS_3 = 3 * 3600;
const STAGE_STARTS = [0, 20 * 60, 40 * 60]; // seconds
const STAGE_SHARES = [0.05, 0.2, 0.5];
const RUNS = 200;

/**
 * An upper limit on the false-alarm rate observed in `runs` runs when the true rate is at most
 * alpha: alpha plus three binomial standard deviations. If the true rate were exactly alpha,
 * P(observed > limit) ≈ 0.3% (200 runs: P(X ≥ 20 | Bin(200, 0.05)) = 0.003); the e-process is
 * conservative, so in practice far less.
 */
const falseAlarmLimit = (runs: number) => ALPHA + 3 * sqrt((ALPHA * (1 - ALPHA)) / runs);

const stageAt = (second: number) => (second >= STAGE_STARTS[2]! ? 2 : second >= STAGE_STARTS[1]! ? 1 : 0);

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

/**
 * Binomial(n, p) by inversion (walk the CDF from 0, one uniform per draw): exact, and for n = 30
 * and small p a few steps, instead of 30 Bernoulli draws.
 */
function binomial(rnd: () => number, n: number, p: number): number {
  if (n === 0 || p <= 0) return 0;
  if (p >= 1) return n;
  if (p > 0.5) return n - binomial(rnd, n, 1 - p);
  const q = 1 - p;
  const s = p / q;
  const a = (n + 1) * s;
  let r = pow(q, n); // P(X = 0)
  let u = rnd();
  let x = 0;
  while (u > r && x < n) {
    u -= r;
    x++;
    r *= a / x - s; // P(X = x) / P(X = x − 1) = (n − x + 1) p / (x q)
  }
  return x;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/**
 * GrowthBook's safe-rollout test, as a "naive" comparator: a one-sided asymptotic confidence
 * sequence (Waudby-Smith et al., arXiv 2103.06476; GrowthBook's
 * sequentialIntervalHalfwidthOneSided, tuning N* = 5000) for the difference of the treatment's and
 * the control's error rates, on counts pooled over the whole run, looked at once a minute.
 * It fires when the lower bound of the difference exceeds 0.
 */
class PooledConfidenceSequence {
  private nT = 0;
  private bT = 0;
  private nC = 0;
  private bC = 0;
  fired = false;
  private readonly rho = sqrt((-2 * log(2 * ALPHA) + log(-2 * log(2 * ALPHA) + 1)) / 5000);

  add(nT: number, bT: number, nC: number, bC: number): void {
    this.nT += nT;
    this.bT += bT;
    this.nC += nC;
    this.bC += bC;
  }

  look(): void {
    if (this.fired || this.nT < 500 || this.nC < 500) return; // a minimum sample per arm
    const rT = this.bT / this.nT;
    const rC = this.bC / this.nC;
    const variance = (rT * (1 - rT)) / this.nT + (rC * (1 - rC)) / this.nC;
    if (variance === 0) return;
    const n = this.nT + this.nC;
    const nr2 = n * this.rho ** 2;
    const halfwidth = sqrt(((variance * n * 2 * (nr2 + 1)) / (n * this.rho) ** 2) * log(1 + sqrt(nr2 + 1) / (2 * ALPHA)));
    if (rT - rC - halfwidth > 0) this.fired = true;
  }
}

interface Rates {
  /** Per-request bad probability of each arm in this second. */
  control: number;
  treatment: number;
}

interface RunOptions {
  seed: number;
  /** Rates at second t of the run in this stage; `phase` is drawn once per run, uniform in [0, 2π). */
  rates: (t: number, stage: number, phase: number) => Rates;
  /** Stop at the first regression (a controller rolls back then). */
  stopAtDetection: boolean;
  /** Called after each bucket; returning true stops the run. */
  after?: (t: number, test: RegressionTest, nT: number, bT: number, nC: number, bC: number) => boolean | void;
}

interface RunResult {
  /** Second at which `regressed` became true, or undefined. */
  detectedAt: number | undefined;
  test: RegressionTest;
}

/** One 3-hour run of the ramp; returns when the regression was detected, if it was. */
function run(runIndex: number, options: RunOptions): RunResult {
  const rnd = mulberry32(options.seed * 1_000_003 + runIndex * 7919);
  const phase = 2 * PI * rnd();
  const test = new RegressionTest({ alpha: ALPHA });
  const bucket = { control: { n: 0, bad: 0 }, treatment: { n: 0, bad: 0 } };
  let detectedAt: number | undefined;
  for (let t = 0; t < HOURS_3; t++) {
    const stage = stageAt(t);
    const { control, treatment } = options.rates(t, stage, phase);
    const nT = binomial(rnd, RPS, STAGE_SHARES[stage]!);
    const nC = RPS - nT;
    const bT = binomial(rnd, nT, treatment);
    const bC = binomial(rnd, nC, control);
    bucket.treatment.n = nT;
    bucket.treatment.bad = bT;
    bucket.control.n = nC;
    bucket.control.bad = bC;
    test.observe(bucket);
    if (detectedAt === undefined && test.regressed) {
      detectedAt = t + 1;
      if (options.stopAtDetection) break;
    }
    if (options.after?.(t, test, nT, bT, nC, bC)) break;
  }
  return { detectedAt, test };
}

const report: string[] = [];
const started = performance.now();
afterAll(() => {
  if (process.env.ROLLGATE_SIM_REPORT) {
    console.log([...report, `total simulation time: ${((performance.now() - started) / 1000).toFixed(1)} s`].join('\n'));
  }
});

const minutes = (seconds: number) => (seconds / 60).toFixed(1);

describe('RegressionTest on a simulated 5% → 20% → 50% ramp (200 runs of 3 h at 30 req/s)', () => {
  it('A/A with a swinging baseline that doubles at each ramp step: the e-process stays under alpha, the pooled test fires almost always', () => {
    // Baseline error rate 0.5% → 1% → 2% (doubling exactly when the ramp advances, as a deploy
    // or a traffic-mix change might), times 1 ± 50% on a 30-minute sine. Both arms identical.
    const levels = [0.005, 0.01, 0.02];
    const rates = (t: number, stage: number, phase: number): Rates => {
      const p = levels[stage]! * (1 + 0.5 * sin((2 * PI * t) / 1800 + phase));
      return { control: p, treatment: p };
    };
    let eFalseAlarms = 0;
    let pooledFalseAlarms = 0;
    const pooledAt: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const pooled = new PooledConfidenceSequence();
      let eFired = false;
      run(i, {
        seed: 1,
        rates,
        stopAtDetection: false,
        after: (t, test, nT, bT, nC, bC) => {
          pooled.add(nT, bT, nC, bC);
          if (t % 60 === 59 && !pooled.fired) {
            pooled.look();
            if (pooled.fired) pooledAt.push(t + 1);
          }
          eFired = test.regressed;
          return eFired && pooled.fired; // nothing left to learn from this run
        },
      });
      if (eFired) eFalseAlarms++;
      if (pooled.fired) pooledFalseAlarms++;
    }
    report.push(
      `A/A, doubling swinging baseline: e-process false alarms ${eFalseAlarms}/${RUNS} (limit ${falseAlarmLimit(RUNS).toFixed(3)}); ` +
        `pooled CS fired ${pooledFalseAlarms}/${RUNS}, median at ${minutes(median(pooledAt))} min`,
    );
    expect(eFalseAlarms / RUNS).toBeLessThanOrEqual(falseAlarmLimit(RUNS));
    // Simpson's paradox: the treatment's traffic is concentrated in the 2% stage, the control's
    // is spread over all three, so the pooled treatment rate is about 1.9% against 1.6%.
    expect(pooledFalseAlarms / RUNS).toBeGreaterThanOrEqual(0.9);
  });

  it('the pooled test is not broken in itself: with a constant baseline it stays under alpha (100 runs)', () => {
    const runs = 100;
    let fired = 0;
    for (let i = 0; i < runs; i++) {
      const pooled = new PooledConfidenceSequence();
      const rnd = mulberry32(2 * 1_000_003 + i * 7919);
      for (let t = 0; t < HOURS_3 && !pooled.fired; t++) {
        const nT = binomial(rnd, RPS, STAGE_SHARES[stageAt(t)]!);
        pooled.add(nT, binomial(rnd, nT, 0.01), RPS - nT, binomial(rnd, RPS - nT, 0.01));
        if (t % 60 === 59) pooled.look();
      }
      if (pooled.fired) fired++;
    }
    report.push(`A/A, constant 1% baseline: pooled CS fired ${fired}/${runs}`);
    expect(fired / runs).toBeLessThanOrEqual(falseAlarmLimit(runs));
  });

  it('a doubled error rate (1% → 2%) is caught in ≥ 95% of runs, median ≈ 10 min; the ratio bound is > 1 and rarely ≥ 2', () => {
    // Rough expectation: at the 5% stage θ = 2 gains ~0.017 nats per bad event (the Kullback–
    // Leibler divergence of the shares q = 0.095 vs π = 0.05) at 0.32 bad events/s, so reaching
    // log(20) + log(5) (threshold + the mixture's cost) takes ~14 min; from minute 20 (π = 0.2)
    // it is ~3× faster. So a median around 10 min, and 4–15 min covers the run-to-run spread
    // of a median of 200 runs many times over.
    const detections: number[] = [];
    let boundAtDetectionBelow1 = 0;
    const LATER = [10, 30, 60]; // minutes after detection
    const above1Later = LATER.map(() => 0);
    let boundAbove1AtEnd = 0;
    let coverageFailures = 0; // the bound reached 2 (the truth) at some check
    const boundsAtEnd: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      let maxBound = 0;
      let firstSeen: number | undefined;
      const later = LATER.map((): number | undefined => undefined);
      const { detectedAt, test } = run(i, {
        seed: 3,
        rates: () => ({ control: 0.01, treatment: 0.02 }),
        stopAtDetection: false,
        // Before detection the bound is below 1 (1 is on the grid and not rejected). From it on,
        // look every 10 s: what a dashboard or a notify-only guard would show.
        after: (t, test) => {
          if (!test.regressed) return;
          if (firstSeen === undefined) {
            firstSeen = t + 1;
            const bound = test.ratioLowerBound;
            if (bound < 1) boundAtDetectionBelow1++;
            maxBound = max(maxBound, bound);
          } else if (t % 10 === 9) {
            const bound = test.ratioLowerBound;
            maxBound = max(maxBound, bound);
            LATER.forEach((m, j) => {
              if (later[j] === undefined && t + 1 >= firstSeen! + 60 * m) later[j] = bound;
            });
          }
        },
      });
      if (detectedAt !== undefined) detections.push(detectedAt);
      later.forEach((bound, j) => {
        if (bound !== undefined && bound > 1) above1Later[j]!++;
      });
      if (test.ratioLowerBound > 1) boundAbove1AtEnd++;
      boundsAtEnd.push(test.ratioLowerBound);
      if (maxBound >= 2) coverageFailures++;
    }
    const medianMinutes = median(detections) / 60;
    report.push(
      `θ = 2: detected ${detections.length}/${RUNS}, median ${medianMinutes.toFixed(1)} min (p10 ${minutes(quantile(detections, 0.1))}, p90 ${minutes(quantile(detections, 0.9))}); ` +
        `bound < 1 at detection ${boundAtDetectionBelow1}, > 1 at ${LATER.map((m, j) => `+${m} min ${above1Later[j]}`).join(', ')}, at 3 h ${boundAbove1AtEnd} of ${RUNS} (median ${median(boundsAtEnd)}); ` +
        `bound ever ≥ 2: ${coverageFailures}/${RUNS}`,
    );
    expect(detections.length / RUNS).toBeGreaterThanOrEqual(0.95);
    expect(medianMinutes).toBeGreaterThanOrEqual(4);
    expect(medianMinutes).toBeLessThanOrEqual(15);
    // At detection the bound is at least 1 (usually exactly 1: the evidence has just crossed at
    // null ratio 1). It then rises as the evidence against "ratio ≤ 1.2" accumulates: measured
    // 60% of runs above 1 after 10 min, 99.5% after 30 min, all after 60 min.
    expect(boundAtDetectionBelow1).toBe(0);
    expect(above1Later[1]! / RUNS).toBeGreaterThanOrEqual(0.9);
    expect(boundAbove1AtEnd).toBe(RUNS);
    // Coverage: "ratio > bound" failed in a run if the bound ever reached 2. Ville bounds this by
    // alpha (approximately, see the class comment), so the same limit as for false alarms.
    expect(coverageFailures / RUNS).toBeLessThanOrEqual(falseAlarmLimit(RUNS));
  });

  it('a tripled error rate (1% → 3%) is caught in ≥ 95% of runs, median ≈ 3 min', () => {
    // At the 5% stage: ~0.055 nats per bad event, 0.33 bad events/s → ~4 min to gain log(100).
    const detections: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const { detectedAt } = run(i, { seed: 4, rates: () => ({ control: 0.01, treatment: 0.03 }), stopAtDetection: true });
      if (detectedAt !== undefined) detections.push(detectedAt);
    }
    const medianMinutes = median(detections) / 60;
    report.push(`θ = 3: detected ${detections.length}/${RUNS}, median ${medianMinutes.toFixed(1)} min (p90 ${minutes(quantile(detections, 0.9))})`);
    expect(detections.length / RUNS).toBeGreaterThanOrEqual(0.95);
    expect(medianMinutes).toBeLessThanOrEqual(6);
  });

  describe('latency guard: a request is slow if above the p99 of control latencies frozen before the start', () => {
    // Latency ~ log-logistic, median 80 ms, shape 4 (p99 ≈ 252 ms), scaled by a load factor
    // 1 ± 10% on a 40-minute sine during the run. A latency X·scale is above L iff the uniform
    // behind X (X = Q(u)) is above F(L/scale), so counting requests with u > F(L/scale) is exactly
    // counting sampled latencies above L: the slow count of an arm is Binomial(n, 1 − F(L/scale)).
    const MEDIAN_MS = 80;
    const SHAPE = 4;
    const cdf = (ms: number) => 1 / (1 + (ms / MEDIAN_MS) ** -SHAPE);
    const quantileMs = (u: number) => MEDIAN_MS * (u / (1 - u)) ** (1 / SHAPE);
    // Treatment latencies × 1.32: then 3% of them exceed the true p99 instead of 1%.
    const SHIFT = quantileMs(0.99) / quantileMs(0.97);

    /** L99: 60 min of control traffic into a ×1.25 histogram from 1 ms; the edge where 99% is reached. */
    function frozenP99(seed: number): number {
      const rnd = mulberry32(seed);
      const counts = new Array<number>(60).fill(0);
      const samples = 3600 * RPS;
      for (let i = 0; i < samples; i++) {
        const ms = quantileMs(rnd());
        counts[min(59, max(0, ceil(log(ms) / log(1.25))))]!++;
      }
      let cumulative = 0;
      for (let b = 0; b < counts.length; b++) {
        cumulative += counts[b]!;
        if (cumulative >= 0.99 * samples) return 1.25 ** b;
      }
      throw new Error('unreachable');
    }

    const latencyRates = (l99: number, shift: number) => (t: number, _stage: number, phase: number): Rates => {
      const scale = 1 + 0.1 * sin((2 * PI * t) / 2400 + phase);
      return { control: 1 - cdf(l99 / scale), treatment: 1 - cdf(l99 / (scale * shift)) };
    };

    it('no shift: false alarms ≤ alpha', () => {
      const l99 = frozenP99(5);
      let fired = 0;
      for (let i = 0; i < RUNS; i++) {
        if (run(i, { seed: 6, rates: latencyRates(l99, 1), stopAtDetection: true }).detectedAt !== undefined) fired++;
      }
      report.push(
        `latency A/A: L99 = ${l99.toFixed(0)} ms (control slow ${(100 * (1 - cdf(l99))).toFixed(2)}% at scale 1), false alarms ${fired}/${RUNS}`,
      );
      expect(fired / RUNS).toBeLessThanOrEqual(falseAlarmLimit(RUNS));
    });

    it('treatment shifted so that 3% exceed the old p99 instead of 1%: detected in ≥ 95% of runs', () => {
      const l99 = frozenP99(7);
      const detections: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const { detectedAt } = run(i, { seed: 8, rates: latencyRates(l99, SHIFT), stopAtDetection: true });
        if (detectedAt !== undefined) detections.push(detectedAt);
      }
      report.push(
        `latency shift ×${SHIFT.toFixed(3)} (slow ${(100 * (1 - cdf(l99 / SHIFT))).toFixed(2)}% vs ${(100 * (1 - cdf(l99))).toFixed(2)}%): ` +
          `detected ${detections.length}/${RUNS}, median ${minutes(median(detections))} min`,
      );
      expect(detections.length / RUNS).toBeGreaterThanOrEqual(0.95);
    });
  });
});

function quantile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
}

describe('the binomial sampler the simulations rely on', () => {
  it.each([
    [30, 0.05],
    [30, 0.5],
    [12, 0.01],
    [30, 0.9],
  ])('Binomial(%i, %f) has the right mean and variance', (n, p) => {
    const rnd = mulberry32(11);
    const draws = 100_000;
    let sum = 0;
    let sumSq = 0;
    let outOfRange = 0;
    for (let i = 0; i < draws; i++) {
      const x = binomial(rnd, n, p);
      if (!(x >= 0 && x <= n && x === (x | 0))) outOfRange++;
      sum += x;
      sumSq += x * x;
    }
    expect(outOfRange).toBe(0);
    const mean = sum / draws;
    const variance = sumSq / draws - mean * mean;
    // Standard error of the mean: sqrt(np(1−p)/draws); allow 5 of them.
    expect(Math.abs(mean - n * p)).toBeLessThanOrEqual(5 * sqrt((n * p * (1 - p)) / draws));
    expect(variance / (n * p * (1 - p))).toBeCloseTo(1, 1);
  });
});
