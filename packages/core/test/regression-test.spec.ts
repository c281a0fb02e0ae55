import fc from 'fast-check';
import { RegressionTest, type RegressionObservation, type RegressionTestState } from '../src/regression-test';

const THETAS = [1.25, 1.5, 2, 3, 5];

/** One bucket; `t` = treatment, `c` = control. */
const bucket = (t: [n: number, bad: number], c: [n: number, bad: number]): RegressionObservation => ({
  treatment: { n: t[0], bad: t[1] },
  control: { n: c[0], bad: c[1] },
});

/** Deterministic PRNG (mulberry32). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random buckets with a few bad events, treatment sometimes worse, sometimes empty arms. */
function randomBuckets(seed: number, count: number, treatmentRate = 0.04, controlRate = 0.02): RegressionObservation[] {
  const rnd = mulberry32(seed);
  const draw = (n: number, p: number) => {
    let bad = 0;
    for (let i = 0; i < n; i++) if (rnd() < p) bad++;
    return bad;
  };
  return Array.from({ length: count }, () => {
    const nT = Math.floor(rnd() * 12);
    const nC = Math.floor(rnd() * 30);
    return bucket([nT, draw(nT, treatmentRate)], [nC, draw(nC, controlRate)]);
  });
}

/**
 * The definition, computed the slow obvious way (no logs, no shared sums): per bucket and θ,
 * (q/π)^e_T ((1−q)/(1−π))^e_C with q the treatment's share of bad events at ratio θ0·θ and π
 * its share at ratio θ0 (π itself for θ0 = 1); the mixture is the mean over θ.
 */
function naiveEvidence(buckets: readonly RegressionObservation[], theta0 = 1, thetas = THETAS): number {
  const share = (ratio: number, pi: number) => (ratio * pi) / (ratio * pi + 1 - pi);
  let sum = 0;
  for (const theta of thetas) {
    let product = 1;
    for (const { treatment, control } of buckets) {
      if (treatment.n === 0 || control.n === 0) continue;
      const pi = treatment.n / (treatment.n + control.n);
      const p0 = share(theta0, pi);
      const q = share(theta0 * theta, pi);
      product *= (q / p0) ** treatment.bad * ((1 - q) / (1 - p0)) ** control.bad;
    }
    sum += product;
  }
  return sum / thetas.length;
}

function feed(test: RegressionTest, buckets: readonly RegressionObservation[]): RegressionTest {
  for (const b of buckets) test.observe(b);
  return test;
}

describe('RegressionTest: values computed by hand', () => {
  it('has evidence exactly 1, no regression and no bound before any data', () => {
    const test = new RegressionTest();
    expect(test.evidence).toBe(1);
    expect(test.regressed).toBe(false);
    expect(test.ratioLowerBound).toBe(0);
  });

  it('keeps evidence exactly 1 through buckets without bad events or with an empty arm', () => {
    const test = feed(new RegressionTest(), [
      bucket([100, 0], [400, 0]), // m = 0
      bucket([0, 0], [400, 7]), // no treatment traffic: π = 0
      bucket([50, 9], [0, 0]), // no control traffic: π = 1
      bucket([0, 0], [0, 0]),
    ]);
    expect(test.evidence).toBe(1);
    expect(test.ratioLowerBound).toBe(0);
    expect(test.toJSON()).toMatchObject({ buckets: 4, informativeBuckets: 0, treatmentBad: 0 });
  });

  it('scores one bad treatment request in an even split as the mean of 2θ/(1+θ) = 613/450', () => {
    // π = 1/2, e_T = 1, e_C = 0: q/π = 2θ/(1+θ) → 10/9, 6/5, 4/3, 3/2, 5/3; their mean is 613/450.
    const test = feed(new RegressionTest(), [bucket([1, 1], [1, 0])]);
    expect(test.evidence).toBeCloseTo(613 / 450, 14);
  });

  it("scores the issue's example bucket as the mean of θ²/(0.8 + 0.2θ)⁵", () => {
    // π = 120/600 = 0.2, e_T = 2, m = 5: f = θ^e_T / (1 + (θ−1)π)^m.
    const test = feed(new RegressionTest({ alpha: 0.05 }), [bucket([120, 2], [480, 3])]);
    const expected = (1.5625 / 1.05 ** 5 + 2.25 / 1.1 ** 5 + 4 / 1.2 ** 5 + 9 / 1.4 ** 5 + 25 / 1.8 ** 5) / 5;
    expect(test.evidence).toBeCloseTo(expected, 13);
    expect(test.evidence).toBeCloseTo(1.44506, 4);
    expect(test.regressed).toBe(false);
  });

  it('a bucket where the treatment gets exactly its share of the bad events lowers the evidence', () => {
    // π = 0.2 and 1 of 5 bad events: f = θ/(0.8 + 0.2θ)^5 < 1 for every θ > 1 (Jensen).
    const test = feed(new RegressionTest(), [bucket([100, 1], [400, 4])]);
    const expected = THETAS.reduce((s, t) => s + t / (0.8 + 0.2 * t) ** 5, 0) / 5;
    expect(test.evidence).toBeCloseTo(expected, 14);
    expect(test.evidence).toBeLessThan(1);
  });

  it('with θ = 2 alone and an even split, regresses after exactly 11 bad treatment requests (4/3 each; (4/3)^11 ≥ 20 > (4/3)^10)', () => {
    const test = new RegressionTest({ thetas: [2] });
    for (let i = 1; i <= 10; i++) {
      test.observe(bucket([1, 1], [1, 0]));
      expect(test.evidence).toBeCloseTo((4 / 3) ** i, 12);
      expect(test.regressed).toBe(false);
    }
    test.observe(bucket([1, 1], [1, 0]));
    expect(test.evidence).toBeCloseTo((4 / 3) ** 11, 12);
    expect(test.regressed).toBe(true);
  });

  it('latches: once regressed it stays regressed while later buckets drive the evidence below 1', () => {
    const test = new RegressionTest({ thetas: [2] });
    for (let i = 0; i < 11; i++) test.observe(bucket([1, 1], [1, 0]));
    expect(test.regressed).toBe(true);
    for (let i = 0; i < 30; i++) test.observe(bucket([1, 0], [1, 1])); // 2/3 each
    expect(test.evidence).toBeCloseTo((4 / 3) ** 11 * (2 / 3) ** 30, 12);
    expect(test.evidence).toBeLessThan(1);
    expect(test.regressed).toBe(true);
  });

  it('a stricter alpha needs more evidence: θ = 2, even split, alpha 0.01 fires at (4/3)^17 ≥ 100 > (4/3)^16', () => {
    const test = new RegressionTest({ alpha: 0.01, thetas: [2] });
    for (let i = 0; i < 16; i++) test.observe(bucket([1, 1], [1, 0]));
    expect(test.regressed).toBe(false);
    test.observe(bucket([1, 1], [1, 0]));
    expect(test.regressed).toBe(true);
  });

  it('weights are normalized: weights [3, 1] on θ = 2, 3 give (3·4/3 + 1·3/2)/4 for one bucket', () => {
    const test = feed(new RegressionTest({ thetas: [2, 3], weights: [3, 1] }), [bucket([1, 1], [1, 0])]);
    expect(test.evidence).toBeCloseTo((3 * (4 / 3) + 1.5) / 4, 14);
  });

  it('ratioLowerBound: with θ = 2 alone and an even split, null ratios 0.5, 1, 2 gain 3/2, 4/3, 6/5 per bad treatment request', () => {
    // E(θ0) = (q(2θ0)/q(θ0))^k with q(c) = c/(1+c): 1.5^k, (4/3)^k, 1.2^k. They reach 20 at
    // k = 8, 11 and 17, so the bound steps 0 → 0.5 → 1 → 2 there.
    const test = new RegressionTest({ thetas: [2], ratioGrid: [0.5, 1, 2] });
    const bounds: number[] = [];
    for (let k = 1; k <= 20; k++) {
      test.observe(bucket([1, 1], [1, 0]));
      bounds.push(test.ratioLowerBound);
    }
    expect(bounds).toEqual([0, 0, 0, 0, 0, 0, 0, 0.5, 0.5, 0.5, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2]);
  });

  it('the default grid reads as round numbers', () => {
    const test = new RegressionTest();
    for (let k = 0; k < 40; k++) test.observe(bucket([1, 1], [1, 0]));
    expect([0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.8, 1, 1.2, 1.25, 1.5, 1.6, 2, 2.4, 2.5, 3, 4, 5, 6, 8, 10, 12, 16]).toContain(
      test.ratioLowerBound,
    );
    expect(test.ratioLowerBound).toBeGreaterThan(1);
  });
});

describe('RegressionTest: agrees with the definition computed naively', () => {
  it.each([1, 2, 3])('evidence, the regressed latch and the bound on random data (seed %i)', (seed) => {
    const buckets = randomBuckets(seed, 150, 0.06, 0.02);
    const test = new RegressionTest();
    const grid = test.toJSON().ratioGrid;
    let everCrossed = false;
    for (let i = 0; i < buckets.length; i++) {
      test.observe(buckets[i]!);
      const seen = buckets.slice(0, i + 1);
      const expected = naiveEvidence(seen);
      expect(test.evidence / expected).toBeCloseTo(1, 10);
      everCrossed ||= expected >= 20;
      expect(test.regressed).toBe(everCrossed);
      if (i % 10 === 9) {
        // Largest grid point with it and all below rejected (naively: check each).
        let bound = 0;
        for (const g of grid) {
          if (naiveEvidence(seen, g) < 20) break;
          bound = g;
        }
        expect(test.ratioLowerBound).toBe(bound);
      }
    }
    expect(everCrossed).toBe(true); // the data has a real regression (6% vs 2%)
  });

  it('whenever the evidence is at or above 1/alpha, the bound is at least 1, and below 1 otherwise', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), (seed) => {
        const test = new RegressionTest();
        for (const b of randomBuckets(seed, 120, 0.05, 0.02)) {
          test.observe(b);
          if (test.evidence >= 20) expect(test.ratioLowerBound).toBeGreaterThanOrEqual(1);
          else expect(test.ratioLowerBound).toBeLessThan(1);
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe('RegressionTest: a treatment that is not worse', () => {
  // A bucket where the treatment's observed rate is at most the control's (e_T·n_C ≤ e_C·n_T)
  // has factor θ^e_T / (1 + (θ−1)π)^m ≤ 1 for every θ > 1, by concavity of log.
  const betterBucket = fc
    .record({ nT: fc.integer({ min: 1, max: 1000 }), nC: fc.integer({ min: 1, max: 1000 }), u: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), v: fc.double({ min: 0, max: 1, noNaN: true }) })
    .map(({ nT, nC, u, v }) => {
      const eC = Math.floor(v * Math.min(nC, 50));
      const maxT = Math.floor((eC * nT) / nC); // e_T/n_T ≤ e_C/n_C
      const eT = Math.min(nT, Math.floor(u * (maxT + 1)));
      return bucket([nT, eT], [nC, eC]);
    });

  it('never regresses and its evidence never increases, whatever the traffic split of each bucket', () => {
    fc.assert(
      fc.property(fc.array(betterBucket, { minLength: 1, maxLength: 200 }), fc.double({ min: 0.001, max: 0.5, noNaN: true }), (buckets, alpha) => {
        const test = new RegressionTest({ alpha });
        let previous = test.evidence;
        for (const b of buckets) {
          test.observe(b);
          expect(test.evidence).toBeLessThanOrEqual(previous);
          previous = test.evidence;
        }
        expect(test.regressed).toBe(false);
        expect(test.ratioLowerBound).toBeLessThan(1);
      }),
      { numRuns: 200 },
    );
  });

  it('a treatment with half the control error rate drives the evidence towards 0', () => {
    const test = feed(new RegressionTest(), randomBuckets(7, 3000, 0.01, 0.02));
    expect(test.regressed).toBe(false);
    expect(test.evidence).toBeLessThan(0.01);
  });
});

describe('RegressionTest: invalid input', () => {
  it.each([
    [{ alpha: 0 }, RangeError, /alpha must be strictly between 0 and 1, got 0/],
    [{ alpha: 1 }, RangeError, /alpha must be strictly between 0 and 1/],
    [{ alpha: Number.NaN }, RangeError, /alpha must be strictly between 0 and 1, got NaN/],
    [{ alpha: '0.05' }, TypeError, /alpha must be a number, got "0.05"/],
    [{ thetas: [] }, RangeError, /thetas must not be empty/],
    [{ thetas: [2, 1] }, RangeError, /thetas\[1\] must be a finite number > 1 \(the test is one-sided\), got 1/],
    [{ thetas: [Infinity] }, RangeError, /thetas\[0\] must be a finite number > 1/],
    [{ thetas: 2 }, TypeError, /thetas must be an array of numbers, got 2/],
    [{ thetas: [2, '3'] }, TypeError, /thetas\[1\] must be a number, got "3"/],
    [{ weights: [1, 1] }, RangeError, /weights must have one entry per theta \(5\), got 2/],
    [{ thetas: [2, 3], weights: [1, 0] }, RangeError, /weights\[1\] must be a finite number > 0, got 0/],
    [{ thetas: [2, 3], weights: [-1, 2] }, RangeError, /weights\[0\] must be a finite number > 0, got -1/],
    [{ ratioGrid: [1, 1] }, RangeError, /ratioGrid must be strictly increasing, got 1 then 1 at index 1/],
    [{ ratioGrid: [0, 1] }, RangeError, /ratioGrid\[0\] must be a finite number > 0, got 0/],
    [{ ratioGrid: [] }, RangeError, /ratioGrid must not be empty/],
  ])('rejects options %j', (options, type, message) => {
    expect(() => new RegressionTest(options as never)).toThrow(type);
    expect(() => new RegressionTest(options as never)).toThrow(message);
  });

  it.each([
    [bucket([10, 11], [10, 0]), RangeError, /treatment\.bad \(11\) must not exceed treatment\.n \(10\)/],
    [bucket([10, 0], [5, 6]), RangeError, /control\.bad \(6\) must not exceed control\.n \(5\)/],
    [bucket([-1, 0], [5, 0]), RangeError, /treatment\.n must be a non-negative integer, got -1/],
    [bucket([10, 1.5], [5, 0]), RangeError, /treatment\.bad must be a non-negative integer, got 1\.5/],
    [bucket([10, 0], [Number.NaN, 0]), RangeError, /control\.n must be a non-negative integer, got NaN/],
    [bucket([10, 0], [Infinity, 0]), RangeError, /control\.n must be a non-negative integer, got Infinity/],
    [bucket([10, 0], [2 ** 53, 0]), RangeError, /control\.n must be a non-negative integer/],
    [{ treatment: { n: '10', bad: 0 }, control: { n: 5, bad: 0 } }, TypeError, /treatment\.n must be a number, got "10"/],
    [{ treatment: { n: 10, bad: 0 }, control: { n: 5 } }, TypeError, /control\.bad must be a number, got undefined/],
    [{ treatment: { n: 10, bad: 0 } }, TypeError, /control must be an object \{n, bad\}, got undefined/],
    [{ control: { n: 10, bad: 0 }, treatment: null }, TypeError, /treatment must be an object \{n, bad\}, got null/],
    [null, TypeError, /the bucket must be an object/],
  ])('observe rejects %j and leaves the state unchanged', (input, type, message) => {
    const test = feed(new RegressionTest(), [bucket([10, 2], [30, 1])]);
    const before = test.toJSON();
    expect(() => test.observe(input as never)).toThrow(type);
    expect(() => test.observe(input as never)).toThrow(message);
    expect(test.toJSON()).toEqual(before);
  });
});

describe('RegressionTest: serialization', () => {
  const roundTrip = (test: RegressionTest) => RegressionTest.fromJSON(JSON.parse(JSON.stringify(test)) as unknown);

  it.each([
    ['defaults', {}],
    ['custom options', { alpha: 0.0167, thetas: [1.1, 2.5, 4], weights: [1, 2, 3], ratioGrid: [0.7, 1, 1.3, 1.9, 2.2] }],
  ])('a test restored mid-run (%s) continues exactly like the original', (_name, options) => {
    const buckets = randomBuckets(42, 600, 0.03, 0.02);
    const original = new RegressionTest(options);
    for (const b of buckets.slice(0, 300)) original.observe(b);
    const restored = roundTrip(original);
    expect(restored.toJSON()).toEqual(original.toJSON());
    for (const b of buckets.slice(300)) {
      original.observe(b);
      restored.observe(b);
      expect(restored.evidence).toBe(original.evidence);
      expect(restored.regressed).toBe(original.regressed);
      expect(restored.ratioLowerBound).toBe(original.ratioLowerBound);
    }
    expect(restored.toJSON()).toEqual(original.toJSON());
    expect(original.regressed).toBe(true);
  });

  it('a restored test keeps its latch, even when its evidence has fallen back below 1/alpha', () => {
    const test = new RegressionTest({ thetas: [2] });
    for (let i = 0; i < 11; i++) test.observe(bucket([1, 1], [1, 0]));
    for (let i = 0; i < 10; i++) test.observe(bucket([1, 0], [1, 1]));
    expect(test.evidence).toBeLessThan(20);
    const restored = roundTrip(test);
    expect(restored.regressed).toBe(true);
    expect(restored.evidence).toBe(test.evidence);
  });

  it('state is plain JSON', () => {
    const state = feed(new RegressionTest(), [bucket([120, 2], [480, 3])]).toJSON();
    expect(JSON.parse(JSON.stringify(state))).toEqual(state);
    expect(state).toMatchObject({ version: 1, alpha: 0.05, thetas: THETAS, weights: [1, 1, 1, 1, 1], buckets: 1, informativeBuckets: 1, treatmentBad: 2, regressed: false });
  });

  const valid = (): Record<string, unknown> => ({ ...feed(new RegressionTest(), [bucket([120, 2], [480, 3])]).toJSON() });
  it.each<[string, (s: Record<string, unknown>) => unknown, ErrorConstructor, RegExp]>([
    ['not an object', () => 'x', TypeError, /state must be an object, got "x"/],
    ['another version', (s) => ({ ...s, version: 2 }), RangeError, /state\.version must be 1, got 2/],
    ['a bad alpha', (s) => ({ ...s, alpha: 2 }), RangeError, /state\.alpha must be strictly between 0 and 1/],
    ['a bad theta', (s) => ({ ...s, thetas: [0.5, 1.5, 2, 3, 5] }), RangeError, /state\.thetas\[0\] must be a finite number > 1/],
    ['a NaN that JSON turned into null', (s) => ({ ...s, logSums: (s.logSums as number[]).map((v, j) => (j === 2 ? null : v)) }), TypeError, /state\.logSums\[2\] must be a number, got null/],
    ['a logSum of the wrong sign', (s) => ({ ...s, logSums: (s.logSums as number[]).map((v, j) => (j === 0 ? -v : v)) }), RangeError, /state\.logSums\[0\] must be a finite number with the sign of ratio 1\.25 − 1/],
    ['missing logSums', (s) => ({ ...s, logSums: (s.logSums as number[]).slice(1) }), RangeError, /state\.logSums must have one entry per ratio \(58\), got 57/],
    ['ratios of another grid', (s) => ({ ...s, ratioGrid: [1, 2] }), RangeError, /state\.ratios must be \[/],
    ['a negative count', (s) => ({ ...s, treatmentBad: -1 }), RangeError, /state\.treatmentBad must be a non-negative integer, got -1/],
    ['more informative buckets than buckets', (s) => ({ ...s, informativeBuckets: 2 }), RangeError, /state\.informativeBuckets \(2\) must not exceed buckets \(1\)/],
    ['a missing latch', (s) => ({ ...s, regressed: undefined }), TypeError, /state\.regressed must be a boolean, got undefined/],
    ['evidence above 1/alpha without the latch', (s) => ({ ...s, treatmentBad: 100 }), RangeError, /state\.regressed is false but the evidence/],
  ])('fromJSON rejects %s', (_name, mutate, type, message) => {
    const state = mutate(valid());
    expect(() => RegressionTest.fromJSON(state)).toThrow(type);
    expect(() => RegressionTest.fromJSON(state)).toThrow(message);
  });

  it('the state type documents the shape controllers persist', () => {
    const state: RegressionTestState = new RegressionTest().toJSON();
    expect(Object.keys(state).sort()).toEqual(
      ['alpha', 'buckets', 'informativeBuckets', 'logSums', 'ratioGrid', 'ratios', 'regressed', 'thetas', 'treatmentBad', 'version', 'weights'].sort(),
    );
  });
});
