/**
 * proportionInterval: the definition (checked by numerical integration), invalid input, coverage
 * under continuous monitoring (seeded), and how a negative-feedback guard should feed
 * RegressionTest. Set ROLLGATE_SIM_REPORT=1 to print the measured figures.
 */
import { proportionInterval, type ProportionCounts } from '../src/proportion-interval';
import { RegressionTest } from '../src/regression-test';

const { imul, log, sqrt, sin, PI, exp, min } = Math;

const ALPHA = 0.05;
/** As in regression-simulation.spec.ts: alpha plus three binomial standard deviations (P(exceeded | rate = alpha) ≈ 0.3% at 200 runs). */
const failureLimit = (runs: number) => ALPHA + 3 * sqrt((ALPHA * (1 - ALPHA)) / runs);

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
 * The mixture e-value M_n(p) = ∫ q^k (1−q)^(n−k) dBeta(q; ½, ½) / (p^k (1−p)^(n−k)), integrated
 * numerically: with q = sin²θ, Beta(½, ½) is uniform in θ on (0, π/2) (density 2/π).
 */
function mixtureEvidence(n: number, k: number, p: number): number {
  const steps = 200_000;
  const logNull = (k > 0 ? k * log(p) : 0) + (n - k > 0 ? (n - k) * log(1 - p) : 0);
  let sum = 0;
  for (let i = 0; i < steps; i++) {
    const theta = ((i + 0.5) / steps) * (PI / 2);
    const q = sin(theta) ** 2;
    sum += exp((k > 0 ? k * log(q) : 0) + (n - k > 0 ? (n - k) * log(1 - q) : 0) - logNull);
  }
  return sum / steps;
}

const report: string[] = [];
afterAll(() => {
  if (process.env.ROLLGATE_SIM_REPORT) console.log(report.join('\n'));
});

describe('proportionInterval', () => {
  it('is the set where the Beta(½, ½) mixture e-value is below 1/alpha (numerical integration)', () => {
    for (const [n, bad, confidence] of [
      [10, 1, 0.95],
      [50, 6, 0.95],
      [180, 22, 0.95],
      [400, 200, 0.9],
      [30, 0, 0.95],
      [30, 30, 0.99],
    ] as const) {
      const r = proportionInterval({ n, bad }, { confidence });
      if (r.status !== 'ok') throw new Error('expected ok');
      expect(r.share).toBe(bad / n);
      expect(r.lower).toBeLessThanOrEqual(r.share);
      expect(r.upper).toBeGreaterThanOrEqual(r.share);
      const threshold = 1 / (1 - confidence);
      // At an end strictly inside (0, 1) the e-value is exactly the threshold; just inside it is below.
      if (r.lower > 0) expect(mixtureEvidence(n, bad, r.lower) / threshold).toBeCloseTo(1, 6);
      if (r.upper < 1) expect(mixtureEvidence(n, bad, r.upper) / threshold).toBeCloseTo(1, 6);
      expect(mixtureEvidence(n, bad, (r.lower + r.share) / 2)).toBeLessThan(threshold);
      expect(mixtureEvidence(n, bad, (r.upper + r.share) / 2)).toBeLessThan(threshold);
    }
  });

  it('examples: the width it costs to be valid at every look', () => {
    const r = proportionInterval({ n: 180, bad: 22 });
    expect(r).toMatchObject({ status: 'ok', n: 180, bad: 22, confidence: 0.95 });
    if (r.status === 'ok') {
      expect(r.lower).toBeCloseTo(0.0554, 3);
      expect(r.upper).toBeCloseTo(0.2209, 3);
    }
    expect(proportionInterval({ n: 1, bad: 0 })).toMatchObject({ lower: 0, upper: expect.closeTo(0.975, 3) });
    expect(proportionInterval({ n: 5, bad: 5 })).toMatchObject({ share: 1, upper: 1 });
  });

  it('says not enough data with no answer', () => {
    expect(proportionInterval({ n: 0, bad: 0 })).toEqual({ status: 'not-enough-data', n: 0, bad: 0 });
  });

  it.each([
    ['null counts', null, undefined, TypeError, 'proportionInterval: counts must be an object {n, bad}, got null'],
    ['a string n', { n: '3', bad: 1 }, undefined, TypeError, 'proportionInterval: n must be a number, got "3"'],
    ['a fractional bad', { n: 3, bad: 0.5 }, undefined, RangeError, 'proportionInterval: bad must be a non-negative integer, got 0.5'],
    ['a negative n', { n: -1, bad: 0 }, undefined, RangeError, 'proportionInterval: n must be a non-negative integer, got -1'],
    ['bad > n', { n: 3, bad: 4 }, undefined, RangeError, 'proportionInterval: bad (4) must not exceed n (3)'],
    ['null options', { n: 3, bad: 1 }, null, TypeError, 'proportionInterval: options must be an object, got null'],
    ['confidence 1', { n: 3, bad: 1 }, { confidence: 1 }, RangeError, 'proportionInterval: confidence must be strictly between 0 and 1, got 1'],
    ['a string confidence', { n: 3, bad: 1 }, { confidence: '0.9' }, TypeError, 'proportionInterval: confidence must be a number, got "0.9"'],
  ])('rejects %s', (_label, counts, options, type, message) => {
    const call = () => proportionInterval(counts as ProportionCounts, options as never);
    expect(call).toThrow(type);
    expect(call).toThrow(message);
  });

  describe('coverage under continuous monitoring (seeded)', () => {
    /** Runs of `answers` answers; counts runs where the interval ever excludes `target(i)` (looked at after every answer up to 100, then every 10th). */
    function everMissed(seed: number, runs: number, answers: number, pAt: (i: number, phase: number) => number): number {
      let missed = 0;
      for (let run = 0; run < runs; run++) {
        const rnd = mulberry32(seed * 1_000_003 + run * 7919);
        const phase = 2 * PI * rnd();
        let bad = 0;
        let pSum = 0; // Σ of the answers' probabilities: the running-average target
        for (let i = 0; i < answers; i++) {
          const p = pAt(i, phase);
          pSum += p;
          if (rnd() < p) bad++;
          if (i >= 100 && i % 10 !== 9) continue;
          const r = proportionInterval({ n: i + 1, bad });
          const target = pSum / (i + 1);
          if (r.status === 'ok' && (r.lower > target || r.upper < target)) {
            missed++;
            break;
          }
        }
      }
      return missed;
    }

    it.each([0.02, 0.12, 0.5])('a constant share of %f: excluded in at most alpha of 200 runs of 2,000 answers', (p) => {
      const missed = everMissed(p * 1000, 200, 2000, () => p);
      report.push(`constant share ${p}: interval ever excluded it in ${missed}/200 runs`);
      expect(missed / 200).toBeLessThanOrEqual(failureLimit(200));
    });

    it('a share drifting 5% ↔ 35% (one sine period over the run): the running average is excluded in at most alpha of 200 runs', () => {
      const answers = 2000;
      const missed = everMissed(7, 200, answers, (i, phase) => 0.2 + 0.15 * sin((2 * PI * i) / answers + phase));
      report.push(`drifting share: interval ever excluded the running average in ${missed}/200 runs`);
      expect(missed / 200).toBeLessThanOrEqual(failureLimit(200));
    });
  });
});

describe('a negative-feedback guard is a RegressionTest (n = answers, bad = negatives), fed per minute', () => {
  // 3 h, feedback at 0.2 answers/s in all, a 5% → 20% → 50% ramp at 20 and 40 min; the share of
  // negatives 15% × (1 ± 30%, 40-minute sine) in the control.
  const RUNS = 200;
  const HOURS_3 = 3 * 3600;
  const shareAt = (t: number) => (t < 1200 ? 0.05 : t < 2400 ? 0.2 : 0.5);

  /** Poisson(λ) for small λ, by inversion. */
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

  /** One run; `bucketSeconds` seconds summed per observe. Returns the detection time and the share of negatives in informative buckets. */
  function run(seed: number, index: number, ratio: number, bucketSeconds: number) {
    const rnd = mulberry32(seed * 1_000_003 + index * 7919);
    const phase = 2 * PI * rnd();
    const test = new RegressionTest({ alpha: ALPHA });
    const bucket = { control: { n: 0, bad: 0 }, treatment: { n: 0, bad: 0 } };
    let negatives = 0;
    let informativeNegatives = 0;
    let detectedAt: number | undefined;
    for (let t = 0; t < HOURS_3; t++) {
      const base = 0.15 * (1 + 0.3 * sin((2 * PI * t) / 2400 + phase));
      for (let j = 0, k = poisson(rnd, 0.2); j < k; j++) {
        const treated = rnd() < shareAt(t);
        const arm = treated ? bucket.treatment : bucket.control;
        arm.n++;
        if (rnd() < (treated ? min(1, ratio * base) : base)) arm.bad++;
      }
      if (t % bucketSeconds !== bucketSeconds - 1) continue;
      const m = bucket.control.bad + bucket.treatment.bad;
      negatives += m;
      if (bucket.control.n > 0 && bucket.treatment.n > 0) informativeNegatives += m;
      test.observe(bucket);
      bucket.control.n = bucket.control.bad = bucket.treatment.n = bucket.treatment.bad = 0;
      if (detectedAt === undefined && test.regressed) detectedAt = t + 1;
    }
    return { detectedAt, used: informativeNegatives / negatives };
  }

  const medianOf = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;

  it('per-second buckets waste most negatives (an arm is usually empty); per-minute buckets use most', () => {
    const perSecond: number[] = [];
    const perMinute: number[] = [];
    for (let i = 0; i < 20; i++) {
      perSecond.push(run(1, i, 1, 1).used);
      perMinute.push(run(1, i, 1, 60).used);
    }
    report.push(
      `feedback 0.2/s on the ramp: negatives in informative buckets — per second ${(100 * medianOf(perSecond)).toFixed(0)}%, per minute ${(100 * medianOf(perMinute)).toFixed(0)}% (median of 20 runs)`,
    );
    expect(medianOf(perSecond)).toBeLessThan(0.2);
    expect(medianOf(perMinute)).toBeGreaterThan(0.6);
  });

  it('per minute, A/A with a moving share: false alarms at most alpha; twice the negatives: caught in ≥ 95% of runs', () => {
    let falseAlarms = 0;
    const detections: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      if (run(2, i, 1, 60).detectedAt !== undefined) falseAlarms++;
      const { detectedAt } = run(3, i, 2, 60);
      if (detectedAt !== undefined) detections.push(detectedAt);
    }
    const perSecondDetections: number[] = [];
    for (let i = 0; i < 50; i++) {
      const { detectedAt } = run(3, i, 2, 1);
      if (detectedAt !== undefined) perSecondDetections.push(detectedAt);
    }
    report.push(
      `negative share ×2, per-minute buckets: false alarms (A/A) ${falseAlarms}/${RUNS}; detected ${detections.length}/${RUNS}, median ${(medianOf(detections) / 60).toFixed(0)} min; ` +
        `per-second buckets: detected ${perSecondDetections.length}/50 within 3 h, median ${(medianOf(perSecondDetections) / 60).toFixed(0)} min`,
    );
    expect(falseAlarms / RUNS).toBeLessThanOrEqual(failureLimit(RUNS));
    expect(detections.length / RUNS).toBeGreaterThanOrEqual(0.95);
  });
});
