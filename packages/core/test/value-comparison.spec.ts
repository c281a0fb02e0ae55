import {
  describeValueComparison,
  histogramMedian,
  VALUE_HISTOGRAM_BUCKETS,
  VALUE_HISTOGRAM_GROWTH,
  ValueComparison,
  valueHistogramBucket,
  type ValueArmBucket,
  type ValueComparisonOptions,
  type ValueComparisonResult,
  type ValueObservation,
} from '../src/value-comparison';
import { LATENCY_BUCKETS, LATENCY_GROWTH, latencyBucket } from '../../rollouts/src/histogram';

const { imul, log, sqrt, cos, exp, PI, round, abs, max } = Math;

/** Deterministic PRNG (mulberry32). */
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

/** The bucket of a list of integer values, with its histogram. */
function armOf(values: readonly number[]): ValueArmBucket {
  const histogram = new Array<number>(VALUE_HISTOGRAM_BUCKETS).fill(0);
  let sum = 0;
  let sumSquares = 0;
  for (const v of values) {
    sum += v;
    sumSquares += v * v;
    histogram[valueHistogramBucket(v)]!++;
  }
  return { n: values.length, sum, sumSquares, histogram };
}

interface RawStratum {
  control: number[];
  treatment: number[];
}

/** Random strata of log-normal task times (ms); the treatment's times × `mult`. */
function randomStrata(seed: number, count: number, perStratum: number, share: number, mult = 1): RawStratum[] {
  const rnd = mulberry32(seed);
  return Array.from({ length: count }, () => {
    const s: RawStratum = { control: [], treatment: [] };
    for (let i = 0; i < perStratum; i++) {
      const treated = rnd() < share;
      const v = round(3000 * exp(0.5 * gauss(rnd)) * (treated ? mult : 1));
      (treated ? s.treatment : s.control).push(v);
    }
    return s;
  });
}

/** Feeds strata, one observe per stratum, keys 0, 1, 2, …, and closes the last one. */
function feed(vc: ValueComparison, strata: readonly RawStratum[], from = 0): ValueComparison {
  strata.forEach((s, i) => vc.observe({ stratum: from + i, control: armOf(s.control), treatment: armOf(s.treatment) }));
  vc.closeStratum();
  return vc;
}

/**
 * The definition, computed directly from the raw values: A, B, the spreads with the smaller arm
 * floored, and the interval by scanning r on a fine grid.
 */
function reference(strata: readonly RawStratum[], options: { confidence: number; tuning: number }) {
  let a = 0;
  let b = 0;
  let w = 0;
  const arm = () => ({ df: 0, dev: 0, cnt: 0, dfw: 0, xdev: 0, xdf: 0 });
  const T = arm();
  const C = arm();
  const dev = (xs: number[]) => {
    const m = xs.reduce((s, x) => s + x, 0) / xs.length;
    return xs.reduce((s, x) => s + (x - m) ** 2, 0);
  };
  for (const { control, treatment } of strata) {
    const nT = treatment.length;
    const nC = control.length;
    if (nT === 0 || nC === 0) continue;
    const N = nT + nC;
    w += (nT * nC) / N;
    a += (nC / N) * treatment.reduce((s, x) => s + x, 0);
    b += (nT / N) * control.reduce((s, x) => s + x, 0);
    for (const [x, own, other, n, m] of [
      [T, treatment, control, nT, nC],
      [C, control, treatment, nC, nT],
    ] as const) {
      const c2 = (m / N) ** 2;
      x.df += n - 1;
      x.dev += c2 * dev(own);
      x.cnt += c2 * n;
      x.dfw += c2 * (n - 1);
      x.xdev += ((c2 * n) / m) * dev(other);
      x.xdf += ((c2 * n) / m) * (m - 1);
    }
  }
  const variance = (r: number) => {
    const sT = T.dev / T.dfw;
    const sC = C.dev / C.dfw;
    return T.df <= C.df
      ? T.cnt * Math.max(sT, r * r * (T.xdev / T.xdf)) + r * r * C.cnt * sC
      : T.cnt * sT + C.cnt * Math.max(r * r * sC, C.xdev / C.xdf);
  };
  const alpha = 1 - options.confidence;
  const l = -2 * log(alpha);
  const x = ((l + log(1 + l)) / (options.tuning / 2)) * w;
  const k = ((1 + x) / x) * (log(1 + x) - 2 * log(alpha));
  let lower = Infinity;
  let upper = -Infinity;
  for (let r = 0; r <= 3; r += 1e-5) {
    if ((a - r * b) ** 2 <= k * variance(r)) {
      lower = Math.min(lower, r);
      upper = Math.max(upper, r);
    }
  }
  return { ratio: a / b, lower, upper, a, b, w, variance };
}

describe('ValueComparison', () => {
  describe('the histogram', () => {
    it('uses the latency histogram boundaries of @rollgate/rollouts', () => {
      expect(VALUE_HISTOGRAM_GROWTH).toBe(LATENCY_GROWTH);
      expect(VALUE_HISTOGRAM_BUCKETS).toBe(LATENCY_BUCKETS);
      for (const v of [-5, 0, 0.5, 1, 1.0001, 1.25, 1.26, 2, 3, 100, 999, 1000, 4321, 56_000, 56_843, 60_000, 1e9, NaN]) {
        expect(valueHistogramBucket(v)).toBe(latencyBucket(v));
      }
    });

    it('reads the median inside its bucket, within ×1.25 of the truth', () => {
      const rnd = mulberry32(3);
      for (let run = 0; run < 50; run++) {
        const values = Array.from({ length: 501 }, () => round(3000 * exp(0.8 * gauss(rnd))));
        const truth = [...values].sort((x, y) => x - y)[250]!;
        const median = histogramMedian(armOf(values).histogram!)!;
        expect(median / truth).toBeGreaterThanOrEqual(1 / VALUE_HISTOGRAM_GROWTH);
        expect(median / truth).toBeLessThanOrEqual(VALUE_HISTOGRAM_GROWTH);
      }
      expect(histogramMedian(new Array(VALUE_HISTOGRAM_BUCKETS).fill(0))).toBeUndefined();
    });
  });

  describe('per-arm summary', () => {
    it('counts, means and medians everything observed, open stratum included', () => {
      const vc = new ValueComparison();
      vc.observe({ stratum: 0, control: armOf([1000, 2000, 3000]), treatment: armOf([500]) });
      vc.observe({ stratum: 1, control: armOf([4000]), treatment: armOf([]) });
      const { control, treatment } = vc.arms;
      expect(control.count).toBe(4);
      expect(control.mean).toBe(2500);
      expect(control.median! / 2000).toBeGreaterThan(1 / 1.25);
      expect(control.median! / 3000).toBeLessThan(1.25);
      expect(treatment).toEqual({ count: 1, mean: 500, median: expect.any(Number) });
      expect(new ValueComparison().arms.control).toEqual({ count: 0, mean: undefined, median: undefined });
    });

    it('has no median when no histogram was given', () => {
      const vc = new ValueComparison();
      vc.observe({ stratum: 0, control: { n: 2, sum: 30, sumSquares: 500 }, treatment: { n: 0, sum: 0, sumSquares: 0 } });
      expect(vc.arms.control).toEqual({ count: 2, mean: 15, median: undefined });
    });
  });

  describe('the comparison', () => {
    it('matches the definition computed from the raw values (A/B, spreads, interval)', () => {
      for (const [seed, share, mult] of [
        [1, 0.5, 0.82],
        [2, 0.1, 1],
        [3, 0.3, 1.2],
        [4, 0.85, 0.9], // the control is the smaller arm
      ] as const) {
        const strata = randomStrata(seed, 60, 40, share, mult);
        const vc = feed(new ValueComparison({ minSamplesPerArm: 50 }), strata);
        const ref = reference(strata, { confidence: 0.95, tuning: 1000 });
        const c = vc.comparison;
        if (c.status !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(c)}`);
        expect(c.ratio).toBeCloseTo(ref.ratio, 12);
        expect(abs(c.ratioLower - ref.lower)).toBeLessThan(2e-5);
        expect(abs(c.ratioUpper - ref.upper)).toBeLessThan(2e-5);
        expect(c.change).toBeCloseTo(c.ratio - 1, 15);
        expect(c.perArm.control + c.perArm.treatment).toBe(strata.reduce((s, x) => s + x.control.length + x.treatment.length, 0));
      }
    });

    it('says "better", "worse" or "inconclusive" by the interval and the direction', () => {
      const faster = randomStrata(5, 120, 40, 0.5, 0.8);
      const same = randomStrata(6, 60, 20, 0.5, 1);
      const lower = feed(new ValueComparison(), faster).comparison;
      const higher = feed(new ValueComparison({ better: 'higher' }), faster).comparison;
      expect(lower).toMatchObject({ status: 'ok', verdict: 'better' });
      expect(higher).toMatchObject({ status: 'ok', verdict: 'worse' });
      if (lower.status === 'ok') expect(lower.changeUpper).toBeLessThan(0);
      expect(feed(new ValueComparison(), same).comparison).toMatchObject({ status: 'ok', verdict: 'inconclusive' });
    });

    it('compares within strata: a level that moves with the split does not bias it', () => {
      // Stratum 0: level 1000 ms, 10% treatment; stratum 1: level 3000 ms, 90% treatment. No
      // treatment effect. Pooled means: treatment ≈ 2800, control ≈ 1200 (×2.3); stratified: 1.
      const strata: RawStratum[] = [];
      for (let i = 0; i < 40; i++) {
        const level = i % 2 === 0 ? 1000 : 3000;
        const nT = i % 2 === 0 ? 4 : 36;
        const values = (n: number, offset: number) => Array.from({ length: n }, (_, j) => level + ((j * 37 + offset) % 200) - 100);
        strata.push({ treatment: values(nT, i), control: values(40 - nT, i + 11) });
      }
      const vc = feed(new ValueComparison({ minSamplesPerArm: 50 }), strata);
      const { control, treatment } = vc.arms;
      expect(treatment.mean! / control.mean!).toBeGreaterThan(2);
      const c = vc.comparison;
      expect(c).toMatchObject({ status: 'ok', verdict: 'inconclusive' });
      if (c.status === 'ok') expect(abs(c.ratio - 1)).toBeLessThan(0.01);
    });
  });

  describe('not enough data', () => {
    it('before minSamplesPerArm compared values in each arm', () => {
      const vc = new ValueComparison({ minSamplesPerArm: 100 });
      expect(vc.comparison).toEqual({ status: 'not-enough-data', reason: 'samples', perArm: { control: 0, treatment: 0 }, minSamplesPerArm: 100, strata: 0 });
      feed(vc, randomStrata(7, 9, 20, 0.5, 0.5)); // ~90 per arm, a very large effect
      const c = vc.comparison;
      expect(c).toMatchObject({ status: 'not-enough-data', reason: 'samples' });
      expect(vc.evidence).toBe(1);
      expect(vc.regressed).toBe(false);
      feed(vc, randomStrata(8, 3, 20, 0.5, 0.5), 9);
      expect(vc.comparison.status).toBe('ok');
    });

    it('counts only closed strata where both arms have values', () => {
      const vc = new ValueComparison({ minSamplesPerArm: 2 });
      vc.observe({ stratum: 0, control: armOf([10, 20, 30]), treatment: armOf([]) }); // no treatment: skipped
      vc.observe({ stratum: 1, control: armOf([10, 20]), treatment: armOf([15, 25]) }); // open
      expect(vc.comparison).toMatchObject({ perArm: { control: 0, treatment: 0 }, strata: 0 });
      vc.closeStratum();
      expect(vc.comparison).toMatchObject({ perArm: { control: 2, treatment: 2 }, strata: 1 });
      expect(vc.toJSON()).toMatchObject({ strata: 2, comparedStrata: 1 });
    });

    it('when the spread cannot be estimated: most values alone of their arm in their stratum', () => {
      // One treatment value per stratum: its within-stratum spread is unknown.
      const vc = new ValueComparison({ minSamplesPerArm: 20 });
      const rnd = mulberry32(9);
      for (let i = 0; i < 40; i++) {
        const v = () => round(1000 + 500 * rnd());
        vc.observe({ stratum: i, control: armOf([v(), v(), v()]), treatment: armOf([v()]) });
      }
      vc.closeStratum();
      expect(vc.comparison).toMatchObject({ status: 'not-enough-data', reason: 'spread', perArm: { control: 120, treatment: 40 } });
    });

    it('while the control mean is not distinguishable from 0', () => {
      // A count-like metric that is almost always 0.
      const vc = new ValueComparison({ minSamplesPerArm: 50 });
      const rnd = mulberry32(10);
      for (let i = 0; i < 20; i++) {
        const v = () => (rnd() < 0.02 ? 1 : 0);
        vc.observe({ stratum: i, control: armOf(Array.from({ length: 10 }, v)), treatment: armOf(Array.from({ length: 10 }, v)) });
      }
      vc.closeStratum();
      const c = vc.comparison;
      expect(c.status).toBe('not-enough-data');
      if (c.status === 'not-enough-data') expect(['spread', 'control-mean']).toContain(c.reason);
      // With enough spread to estimate but a tiny mean relative to it: control-mean.
      const vc2 = new ValueComparison({ minSamplesPerArm: 50 });
      for (let i = 0; i < 10; i++) vc2.observe({ stratum: i, control: armOf([0, 0, 0, 0, 0, 0, 0, 0, 0, i % 3 === 0 ? 1 : 0]), treatment: armOf([0, 0, 0, 0, 0, 0, 0, 0, 0, 1]) });
      vc2.closeStratum();
      expect(vc2.comparison).toMatchObject({ status: 'not-enough-data', reason: 'control-mean' });
    });
  });

  describe('the guard', () => {
    it('latches when the treatment is worse by more than the margin, in the chosen direction', () => {
      const slower = randomStrata(11, 200, 40, 0.5, 1.25);
      const slow = feed(new ValueComparison({ alpha: 0.01 }), slower);
      expect(slow.regressed).toBe(true);
      expect(slow.evidence).toBeGreaterThanOrEqual(100);
      // The same data is "better" for a metric where higher is better: no regression.
      const amount = feed(new ValueComparison({ alpha: 0.01, better: 'higher' }), slower);
      expect(amount.regressed).toBe(false);
      expect(amount.evidence).toBeLessThan(1);
      // A margin above the true 25% holds it.
      expect(feed(new ValueComparison({ alpha: 0.01, margin: 0.4 }), slower).regressed).toBe(false);
      // better 'higher': a treatment 25% lower regresses.
      expect(feed(new ValueComparison({ alpha: 0.01, better: 'higher' }), randomStrata(12, 200, 40, 0.5, 0.75)).regressed).toBe(true);
    });

    it('stays latched when the evidence falls back', () => {
      const vc = feed(new ValueComparison({ alpha: 0.2, minSamplesPerArm: 20 }), randomStrata(13, 20, 20, 0.5, 1.6));
      expect(vc.regressed).toBe(true);
      feed(vc, randomStrata(14, 400, 40, 0.5, 0.7), 20);
      expect(vc.evidence).toBeLessThan(5);
      expect(vc.regressed).toBe(true);
    });

    it('is the half-normal mixture of the Gaussian likelihood ratios (checked by numerical integration)', () => {
      // E = ∫₀^∞ exp(λ D − λ² V / 2) 2 φ(λ; ρ²) dλ, with ρ² V = x = ρ²_std W. Compare with the class
      // by reading D, V and W back from its state.
      for (const [seed, mult] of [
        [15, 1.1],
        [16, 0.95],
        [17, 1.02],
      ] as const) {
        const vc = feed(new ValueComparison({ minSamplesPerArm: 50 }), randomStrata(seed, 30, 20, 0.4, mult));
        const s = vc.toJSON();
        const t = s.compared.treatment;
        const c = s.compared.control;
        const d = t.weightedSum - c.weightedSum;
        const sT = t.weightedDev / t.weightedDf;
        const sC = c.weightedDev / c.weightedDf;
        const v = t.df <= c.df ? t.weightedCount * max(sT, t.crossDev / t.crossDf) + c.weightedCount * sC : t.weightedCount * sT + c.weightedCount * max(sC, c.crossDev / c.crossDf);
        const l = -2 * log(0.05);
        const rho2 = (((l + log(1 + l)) / 500) * s.weight) / v; // in the units of D
        let integral = 0;
        const step = sqrt(rho2) / 2000;
        for (let lambda = step / 2; lambda < 12 * sqrt(rho2); lambda += step) {
          integral += exp(lambda * d - (lambda * lambda * v) / 2) * 2 * (exp(-(lambda * lambda) / (2 * rho2)) / sqrt(2 * PI * rho2)) * step;
        }
        expect(vc.evidence / integral).toBeCloseTo(1, 5);
      }
    });
  });

  describe('strata', () => {
    it('adds buckets of the same stratum, compares a stratum when the next starts', () => {
      const strata = randomStrata(18, 30, 20, 0.5);
      const one = feed(new ValueComparison({ minSamplesPerArm: 50 }), strata);
      // The same strata split into two buckets each (two instances flushing the same seconds).
      const two = new ValueComparison({ minSamplesPerArm: 50 });
      strata.forEach((s, i) => {
        const half = (xs: number[], part: number) => xs.filter((_, j) => j % 2 === part);
        two.observe({ stratum: i, control: armOf(half(s.control, 0)), treatment: armOf(half(s.treatment, 0)) });
        two.observe({ stratum: i, control: armOf(half(s.control, 1)), treatment: armOf(half(s.treatment, 1)) });
      });
      two.closeStratum();
      const a = one.toJSON();
      const b = two.toJSON();
      expect(b.buckets).toBe(2 * a.buckets);
      expect({ ...b, buckets: 0 }).toEqual({ ...a, buckets: 0 });
    });

    it('closeStratum() cuts a stratum; the same key then starts a new one; an empty close does nothing', () => {
      const vc = new ValueComparison();
      vc.closeStratum();
      expect(vc.toJSON().strata).toBe(0);
      vc.observe({ stratum: 5, control: armOf([1, 2]), treatment: armOf([3, 4]) });
      vc.closeStratum();
      vc.closeStratum();
      vc.observe({ stratum: 5, control: armOf([1, 2]), treatment: armOf([3, 4]) });
      vc.closeStratum();
      expect(vc.toJSON()).toMatchObject({ strata: 2, comparedStrata: 2, lastStratum: 5 });
    });

    it('does not keep the caller’s histogram array (it may be reused between calls)', () => {
      const vc = new ValueComparison();
      const bucket = { stratum: 0, control: armOf([100, 200]), treatment: armOf([300]) };
      vc.observe(bucket);
      (bucket.control.histogram as number[]).fill(0);
      expect(vc.arms.control.median).toBeGreaterThan(50);
    });
  });

  describe('invalid input', () => {
    const ok = (): ValueObservation => ({ stratum: 3, control: armOf([10, 20]), treatment: armOf([30]) });
    const withArm = (arm: unknown, name: 'control' | 'treatment' = 'control') => ({ ...ok(), [name]: arm }) as unknown as ValueObservation;

    it.each([
      ['null', null, TypeError, /the bucket must be an object/],
      ['no stratum', { ...ok(), stratum: undefined }, TypeError, /stratum must be a number, got undefined/],
      ['a fractional stratum', { ...ok(), stratum: 1.5 }, RangeError, /stratum must be a safe integer, got 1.5/],
      ['a null control', withArm(null), TypeError, /control must be an object/],
      ['a string treatment', withArm('x', 'treatment'), TypeError, /treatment must be an object/],
      ['a string count', withArm({ n: '2', sum: 30, sumSquares: 500 }), TypeError, /control\.n must be a number, got "2"/],
      ['a negative count', withArm({ n: -1, sum: 0, sumSquares: 0 }), RangeError, /control\.n must be a non-negative safe integer, got -1/],
      ['a fractional sum', withArm({ n: 2, sum: 30.5, sumSquares: 500 }), RangeError, /control\.sum must be a non-negative safe integer, got 30.5/],
      ['an unsafe sumSquares', withArm({ n: 2, sum: 30, sumSquares: 2 ** 53 }), RangeError, /control\.sumSquares must be a non-negative safe integer/],
      ['sums with n = 0', withArm({ n: 0, sum: 5, sumSquares: 25 }), RangeError, /control\.sum and control\.sumSquares must be 0 when control\.n is 0/],
      ['sumSquares below sum²/n', withArm({ n: 2, sum: 30, sumSquares: 400 }), RangeError, /control\.sumSquares \(400\) is impossible for 2 non-negative integer values summing to 30/],
      ['sumSquares above sum²', withArm({ n: 2, sum: 30, sumSquares: 901 }), RangeError, /control\.sumSquares \(901\) is impossible/],
      ['a string histogram', withArm({ n: 1, sum: 0, sumSquares: 0, histogram: 'x' }), TypeError, /control\.histogram must be an array of 51 counts/],
      ['a short histogram', withArm({ n: 1, sum: 0, sumSquares: 0, histogram: [1] }), RangeError, /control\.histogram must have 51 buckets, got 1/],
      ['a negative histogram count', withArm({ ...armOf([10]), histogram: Object.assign(new Array(51).fill(0), { 3: -1 }) }), RangeError, /control\.histogram\[3\] must be a non-negative integer, got -1/],
      ['a histogram that does not sum to n', withArm({ ...armOf([10]), histogram: new Array(51).fill(0) }), RangeError, /control\.histogram must sum to control\.n \(1\), got 0/],
    ])('rejects %s with a clear error and changes nothing', (_label, bucket, type, message) => {
      const vc = new ValueComparison();
      vc.observe(ok());
      const before = JSON.stringify(vc);
      expect(() => vc.observe(bucket as ValueObservation)).toThrow(type);
      expect(() => vc.observe(bucket as ValueObservation)).toThrow(message);
      expect(JSON.stringify(vc)).toBe(before);
    });

    it('rejects a stratum that goes backwards', () => {
      const vc = new ValueComparison();
      vc.observe(ok());
      expect(() => vc.observe({ ...ok(), stratum: 2 })).toThrow(new RangeError('ValueComparison.observe: stratum 2 is before the last one observed (3): buckets must arrive in stratum order'));
    });

    it.each([
      [[], TypeError, /options must be an object/],
      [{ better: 'faster' }, TypeError, /better must be "lower" or "higher", got "faster"/],
      [{ confidence: 1 }, RangeError, /confidence must be strictly between 0 and 1, got 1/],
      [{ alpha: '0.05' }, TypeError, /alpha must be a number, got "0.05"/],
      [{ alpha: 0 }, RangeError, /alpha must be strictly between 0 and 1/],
      [{ margin: -0.1 }, RangeError, /margin must be a finite number ≥ 0, got -0.1/],
      [{ margin: 1, better: 'higher' }, RangeError, /margin must be a finite number ≥ 0 and < 1 with better "higher", got 1/],
      [{ minSamplesPerArm: 1 }, RangeError, /minSamplesPerArm must be an integer ≥ 2, got 1/],
      [{ tuningSamplesPerArm: 0.5 }, RangeError, /tuningSamplesPerArm must be an integer ≥ 1, got 0.5/],
    ])('rejects options %j', (options, type, message) => {
      expect(() => new ValueComparison(options as ValueComparisonOptions)).toThrow(type);
      expect(() => new ValueComparison(options as ValueComparisonOptions)).toThrow(message);
    });
  });

  describe('describeValueComparison', () => {
    const ok = (change: number, lower: number, upper: number, extra: Partial<ValueComparisonResult> = {}): ValueComparisonResult => ({
      status: 'ok',
      ratio: 1 + change,
      ratioLower: 1 + lower,
      ratioUpper: 1 + upper,
      change,
      changeLower: lower,
      changeUpper: upper,
      verdict: upper < 0 ? 'better' : lower > 0 ? 'worse' : 'inconclusive',
      confidence: 0.95,
      perArm: { control: 1310, treatment: 1240 },
      strata: 62,
      ...(extra as object),
    });
    const words = { metric: 'checkout', lower: 'faster', higher: 'slower', units: 'users' };

    it('says it in words, rounding the interval outwards', () => {
      expect(describeValueComparison(ok(-0.18, -0.26, -0.09), words)).toBe('checkout 18% faster (95% interval 9–26%), 1,240 users per arm');
      expect(describeValueComparison(ok(0.123, 0.051, 0.2049), words)).toBe('checkout 12% slower (95% interval 5–21%), 1,240 users per arm');
      expect(describeValueComparison(ok(-0.03, -0.0901, 0.04), words)).toBe(
        'checkout: no clear difference, 3% faster (95% interval 10% faster to 4% slower), 1,240 users per arm',
      );
      expect(describeValueComparison(ok(0, -0.02, 0.02, { confidence: 0.9 }), { metric: 'basket' })).toBe(
        'basket: no clear difference, no change (90% interval 2% lower to 2% higher), 1,240 values per arm',
      );
    });

    it('says why there is not enough data', () => {
      const base = { status: 'not-enough-data', perArm: { control: 1480, treatment: 120 }, minSamplesPerArm: 200, strata: 30 } as const;
      expect(describeValueComparison({ ...base, reason: 'samples' }, words)).toBe('checkout: not enough data yet (120 and 1,480 of 200 users per arm)');
      expect(describeValueComparison({ ...base, reason: 'spread' }, words)).toBe(
        'checkout: not enough data yet (too few users of each arm per stratum to estimate the spread)',
      );
      expect(describeValueComparison({ ...base, reason: 'control-mean' }, words)).toBe("checkout: not enough data yet (the control's mean cannot be told from 0)");
    });

    it('describes a live comparison', () => {
      const vc = new ValueComparison();
      expect(describeValueComparison(vc.comparison, words)).toBe('checkout: not enough data yet (0 and 0 of 200 users per arm)');
      feed(vc, randomStrata(22, 150, 40, 0.5, 0.8));
      expect(describeValueComparison(vc.comparison, words)).toMatch(/^checkout 2\d% faster \(95% interval \d+–\d+%\), [\d,]+ users per arm$/);
    });
  });

  describe('JSON state', () => {
    it('round-trips at any point and continues bit-for-bit', () => {
      const rnd = mulberry32(19);
      const buckets: ValueObservation[] = [];
      let stratum = 0;
      for (let i = 0; i < 600; i++) {
        if (rnd() < 0.3) stratum += 1 + Math.floor(rnd() * 3);
        const values = (n: number, m: number) => Array.from({ length: n }, () => round(2000 * m * exp(0.6 * gauss(rnd))));
        buckets.push({ stratum, control: armOf(values(Math.floor(rnd() * 6), 1)), treatment: armOf(values(Math.floor(rnd() * 4), 1.15)) });
      }
      const options = { minSamplesPerArm: 30, alpha: 0.1, margin: 0.02, tuningSamplesPerArm: 300 };
      const straight = new ValueComparison(options);
      let resumed = new ValueComparison(options);
      buckets.forEach((b, i) => {
        straight.observe(b);
        resumed.observe(b);
        if (i % 37 === 0) resumed = ValueComparison.fromJSON(JSON.parse(JSON.stringify(resumed)));
        if (i % 50 === 0) {
          expect(JSON.stringify(resumed)).toBe(JSON.stringify(straight));
          expect(resumed.comparison).toEqual(straight.comparison);
        }
      });
      straight.closeStratum();
      resumed = ValueComparison.fromJSON(JSON.parse(JSON.stringify(resumed)));
      resumed.closeStratum();
      expect(JSON.stringify(resumed)).toBe(JSON.stringify(straight));
      const a = straight.comparison;
      const b = resumed.comparison;
      expect(a.status).toBe('ok');
      if (a.status === 'ok' && b.status === 'ok') {
        for (const key of ['ratio', 'ratioLower', 'ratioUpper'] as const) expect(Object.is(a[key], b[key])).toBe(true);
      }
      expect(Object.is(resumed.evidence, straight.evidence)).toBe(true);
      expect(resumed.regressed).toBe(straight.regressed);
      expect(resumed.settings).toEqual({ better: 'lower', confidence: 0.95, ...options });
    });

    it('rejects a damaged state, naming the field', () => {
      const vc = feed(new ValueComparison({ minSamplesPerArm: 20 }), randomStrata(20, 10, 20, 0.5));
      vc.observe({ stratum: 10, control: armOf([5]), treatment: armOf([]) });
      const good = JSON.parse(JSON.stringify(vc));
      const damaged = (edit: (s: any) => void) => {
        const s = JSON.parse(JSON.stringify(good));
        edit(s);
        return () => ValueComparison.fromJSON(s);
      };
      expect(() => ValueComparison.fromJSON(null)).toThrow(new TypeError('ValueComparison.fromJSON: state must be an object, got null'));
      expect(damaged((s) => (s.version = 2))).toThrow(/state\.version must be 1, got 2/);
      expect(damaged((s) => delete s.options.margin)).toThrow(/state\.options\.margin is missing/);
      expect(damaged((s) => (s.options.alpha = 2))).toThrow(/state\.options\.alpha must be strictly between 0 and 1, got 2/);
      expect(damaged((s) => (s.buckets = -1))).toThrow(/state\.buckets must be a non-negative safe integer, got -1/);
      expect(damaged((s) => (s.comparedStrata = s.strata + 1))).toThrow(/state\.comparedStrata \(\d+\) must not exceed strata/);
      expect(damaged((s) => (s.lastStratum = 'x'))).toThrow(/state\.lastStratum must be a number or null, got "x"/);
      expect(damaged((s) => (s.open.control = null))).toThrow(/state\.open\.control must be an object, got null/);
      expect(damaged((s) => (s.open.treatment.sum = 3))).toThrow(/state\.open\.treatment\.sum and \.sumSquares must be 0 when \.n is 0/);
      expect(damaged((s) => (s.weight = NaN))).toThrow(/state\.weight must be a finite number ≥ 0, got NaN/);
      expect(damaged((s) => (s.compared.treatment.crossDf = 0))).toThrow(/state\.compared\.treatment\.crossDev is positive but compared\.treatment\.crossDf is 0/);
      expect(damaged((s) => (s.compared.control.df = s.compared.control.count + 1))).toThrow(/state\.compared\.control\.df \(\d+\) must not exceed/);
      expect(damaged((s) => (s.totals.control.histogram = [1]))).toThrow(/state\.totals\.control\.histogram must have 51 buckets, got 1/);
      expect(damaged((s) => ((s.totals.treatment.count = 0), s.totals.treatment.histogram.fill(0)))).toThrow(/state\.totals\.treatment\.count \(0\) must be at least the compared and open values/);
      expect(damaged((s) => (s.regressed = 'no'))).toThrow(/state\.regressed must be a boolean, got "no"/);
      // A latch that is false while the evidence is over the threshold.
      const fired = feed(new ValueComparison({ minSamplesPerArm: 20, alpha: 0.01 }), randomStrata(21, 100, 40, 0.5, 1.5));
      expect(fired.regressed).toBe(true);
      const unlatched = { ...JSON.parse(JSON.stringify(fired)), regressed: false };
      expect(() => ValueComparison.fromJSON(unlatched)).toThrow(/state\.regressed is false but the evidence in the compared sums is at or above 1\/alpha/);
    });
  });
});
