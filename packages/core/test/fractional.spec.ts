import fc from 'fast-check';
import { compileFlagSet, type FlagSetDefinition, type JsonValue } from '@rollgate/core';
import { bucketOf, hashPrefix, murmur3, murmur3After } from '../src/murmur3';
import { asciiId, compileClean, imurmur, prng, referenceBucket, referenceUtf8Murmur } from './helpers';

const ABC = { state: 'ENABLED' as const, variants: { a: 'A', b: 'B', c: 'C', d: 'D' }, defaultVariant: 'd' };

function splitFlag(fractional: JsonValue[], key = 'rollout', extra: FlagSetDefinition['flags'] = {}) {
  return compileClean({ flags: { ...extra, [key]: { ...ABC, targeting: { fractional } } } });
}

/** The variant flagd picks, computed independently: imurmurhash + BigInt bucket + weight walk. */
function oracle(bucketKey: string, entries: Array<[string, number]>): string | null {
  const total = entries.reduce((s, [, w]) => s + Math.max(0, w), 0);
  if (total === 0) return null;
  const bucket = referenceBucket(referenceUtf8Murmur(bucketKey), total);
  let sum = 0;
  for (const [variant, w] of entries) {
    sum += Math.max(0, w);
    if (sum > bucket) return variant;
  }
  return null;
}

function share(snapshot: ReturnType<typeof splitFlag>, n: number, key = 'rollout'): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = snapshot.evaluate(key, { targetingKey: `user-${i}` });
    counts[r.variant ?? 'none'] = (counts[r.variant ?? 'none'] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(counts).map(([k, c]) => [k, c / n]));
}

describe('fractional distribution', () => {
  it('100,000 keys split 20/80 within ±1 percentage point', () => {
    const s = share(splitFlag([['a', 20], ['b', 80]]), 100_000);
    expect(Object.keys(s).sort()).toEqual(['a', 'b']);
    expect(Math.abs(s.a! - 0.2)).toBeLessThan(0.01);
    expect(Math.abs(s.b! - 0.8)).toBeLessThan(0.01);
  });

  it('100,000 keys split 10/30/60 within ±1 percentage point', () => {
    const s = share(splitFlag([['a', 10], ['b', 30], ['c', 60]]), 100_000);
    expect(Object.keys(s).sort()).toEqual(['a', 'b', 'c']);
    expect(Math.abs(s.a! - 0.1)).toBeLessThan(0.01);
    expect(Math.abs(s.b! - 0.3)).toBeLessThan(0.01);
    expect(Math.abs(s.c! - 0.6)).toBeLessThan(0.01);
  });

  it('assigns each key exactly the variant flagd computes (imurmurhash + BigInt bucket)', () => {
    const entries: Array<[string, number]> = [['a', 5], ['b', 17], ['c', 78]];
    const snapshot = splitFlag(entries);
    const rand = prng(7);
    for (let i = 0; i < 10_000; i++) {
      const tk = asciiId(rand, 1, 40);
      const r = snapshot.evaluate('rollout', { targetingKey: tk });
      if (r.variant !== oracle(`rollout${tk}`, entries) || r.reason !== 'SPLIT') {
        throw new Error(`targetingKey ${JSON.stringify(tk)}: got ${r.variant} (${r.reason}), flagd gives ${oracle(`rollout${tk}`, entries)}`);
      }
    }
  });

  it('salts the bucket with the flag key: two 50/50 flags agree for about half the users', () => {
    const snapshot = compileClean({ flags: { one: { ...ABC, targeting: { fractional: [['a', 50], ['b', 50]] } }, two: { ...ABC, targeting: { fractional: [['a', 50], ['b', 50]] } } } });
    let same = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const ctx = { targetingKey: `user-${i}` };
      if (snapshot.evaluate('one', ctx).variant === snapshot.evaluate('two', ctx).variant) same++;
    }
    expect(Math.abs(same / n - 0.5)).toBeLessThan(0.02);
  });
});

describe('fractional stability', () => {
  it('the same key gets the same variant across snapshots, flag order and unrelated flags', () => {
    const entries: JsonValue[] = [['a', 25], ['b', 25], ['c', 50]];
    const first = splitFlag(entries);
    const second = splitFlag(entries, 'rollout', { other: { ...ABC }, more: { ...ABC, targeting: { fractional: [['a'], ['b']] } } });
    const reordered = compileClean({ flags: { zzz: ABC, rollout: { ...ABC, targeting: { fractional: entries } } } });
    const fromText = compileClean(JSON.stringify({ flags: { rollout: { ...ABC, targeting: { fractional: entries } } } }));
    for (let i = 0; i < 2_000; i++) {
      const ctx = { targetingKey: `k${i}` };
      const v = first.evaluate('rollout', ctx).variant;
      expect(v).toBeDefined();
      if (second.evaluate('rollout', ctx).variant !== v || reordered.evaluate('rollout', ctx).variant !== v || fromText.evaluate('rollout', ctx).variant !== v) {
        throw new Error(`unstable assignment for k${i}`);
      }
      expect(first.evaluate('rollout', ctx).variant).toBe(v); // and across repeated evaluations
    }
  });

  it('growing a rollout only moves users into the growing variant (prefix stability of buckets)', () => {
    const at10 = splitFlag([['a', 10], ['b', 90]]);
    const at30 = splitFlag([['a', 30], ['b', 70]]);
    for (let i = 0; i < 5_000; i++) {
      const ctx = { targetingKey: `user-${i}` };
      if (at10.evaluate('rollout', ctx).variant === 'a') expect(at30.evaluate('rollout', ctx).variant).toBe('a');
    }
  });
});

describe('fractional bucketing key', () => {
  const rule = { fractional: [{ cat: [{ var: '$flagd.flagKey' }, { var: 'email' }] }, ['a', 50], ['b', 50]] };
  const snapshot = compileClean({ flags: { byEmail: { ...ABC, targeting: rule } } });

  it('an explicit string bucketing key replaces flagKey + targetingKey', () => {
    const rand = prng(11);
    for (let i = 0; i < 2_000; i++) {
      const email = `${asciiId(rand, 3, 12)}@example.com`;
      const expected = oracle(`byEmail${email}`, [['a', 50], ['b', 50]]);
      expect(snapshot.evaluate('byEmail', { email, targetingKey: `t${i}` })).toMatchObject({ variant: expected, reason: 'SPLIT' });
      // no targetingKey needed, and it does not influence the result
      expect(snapshot.evaluate('byEmail', { email }).variant).toBe(expected);
    }
  });

  it('a constant string key puts everyone in the same bucket', () => {
    const s = splitFlag(['everyone', ['a', 50], ['b', 50]]);
    const expected = oracle('everyone', [['a', 50], ['b', 50]]);
    for (let i = 0; i < 100; i++) expect(s.evaluate('rollout', { targetingKey: `u${i}` }).variant).toBe(expected);
    expect(s.evaluate('rollout', {}).variant).toBe(expected);
  });

  it('a numeric targetingKey is used as its decimal string', () => {
    const s = splitFlag([['a', 50], ['b', 50]]);
    for (const tk of [5, 42, 1234567]) expect(s.evaluate('rollout', { targetingKey: tk as never }).variant).toBe(oracle(`rollout${tk}`, [['a', 50], ['b', 50]]));
  });

  it('non-ASCII targeting keys are bucketed over their UTF-8 bytes, like flagd (Go)', () => {
    const entries: Array<[string, number]> = [['a', 50], ['b', 50]];
    const s = splitFlag(entries);
    for (const tk of ['josé', 'café', 'Zoë', '用户-42', 'emoji-🚀', 'ünïcödé@example.de']) {
      expect([tk, s.evaluate('rollout', { targetingKey: tk }).variant]).toEqual([tk, oracle(`rollout${tk}`, entries)]);
    }
  });
});

describe('bucketing key hashed from the flag key\'s precomputed state (no joined string)', () => {
  // every alignment of the flag key (its UTF-8 length mod 4), ASCII and not, lone surrogates included
  const keyText = fc.oneof(
    fc.string({ unit: 'binary-ascii', maxLength: 24 }),
    fc.string({ unit: 'binary', maxLength: 24 }),
    fc.string({ unit: 'grapheme', maxLength: 8 }),
    fc.constantFrom('', 'a', 'ab', 'abc', 'é', 'aé', 'abé', '用', '🚀', 'a🚀', '\ud800', 'x\udfff', 'café-flag'),
  );

  it('murmur3After(hashPrefix(p), k) === murmur3(p + k) for any strings (property)', () => {
    fc.assert(
      fc.property(keyText, keyText, fc.integer({ min: 0, max: 0xffffffff }), (p, k, seed) => {
        const joined = murmur3(p + k, seed);
        if (murmur3After(hashPrefix(p, seed), k) !== joined) throw new Error(`prefix ${JSON.stringify(p)}, key ${JSON.stringify(k)}, seed ${seed}`);
        expect(joined).toBe(referenceUtf8Murmur(p + k, seed));
      }),
      { numRuns: 3_000 },
    );
  });

  it('flag keys of every UTF-8 length mod 4, ASCII and not, bucket every targetingKey as flagd (Go) does', () => {
    const entries: Array<[string, number]> = [['a', 13], ['b', 29], ['c', 58]];
    const rand = prng(17);
    for (const flagKey of ['f', 'fl', 'fla', 'flag', 'é', 'fé', 'flé', 'flagé', '用户', 'rollout-🚀', 'café-flag-1']) {
      const s = splitFlag(entries, flagKey);
      for (let i = 0; i < 400; i++) {
        const tk = i % 4 === 0 ? `${asciiId(rand, 0, 5)}ü${asciiId(rand, 0, 9)}` : i % 4 === 1 ? `用户-${i}` : asciiId(rand, 1, 40);
        const r = s.evaluate(flagKey, { targetingKey: tk });
        if (r.variant !== oracle(`${flagKey}${tk}`, entries)) throw new Error(`flag ${JSON.stringify(flagKey)}, targetingKey ${JSON.stringify(tk)}: got ${r.variant}, flagd gives ${oracle(`${flagKey}${tk}`, entries)}`);
        expect(r.reason).toBe('SPLIT');
      }
    }
  });

  it('targetingKeys with lone surrogates are hashed as U+FFFD, like a UTF-8 encoder', () => {
    const entries: Array<[string, number]> = [['a', 50], ['b', 50]];
    const s = splitFlag(entries);
    for (const tk of ['\ud800', 'abc\udc00', 'ab\ud83d', '\udfffxyz', 'a\ud83d\ude80b']) {
      expect([tk, s.evaluate('rollout', { targetingKey: tk }).variant]).toEqual([tk, oracle(`rollout${tk.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')}`, entries)]);
    }
  });
});

describe('fractional edge cases', () => {
  it('no targetingKey (absent or empty) gives DEFAULT with the default variant', () => {
    const s = splitFlag([['a', 50], ['b', 50]]);
    expect(s.evaluate('rollout', {})).toMatchObject({ variant: 'd', value: 'D', reason: 'DEFAULT' });
    expect(s.evaluate('rollout', { targetingKey: '' })).toMatchObject({ variant: 'd', reason: 'DEFAULT' });
    expect(s.evaluate('rollout', { email: 'x@y' })).toMatchObject({ variant: 'd', reason: 'DEFAULT' });
  });

  it('the same inside an if branch: no targetingKey falls through to the default variant', () => {
    const s = compileClean({ flags: { f: { ...ABC, targeting: { if: [{ var: 'vip' }, 'c', { fractional: [['a', 1], ['b', 1]] }] } } } });
    expect(s.evaluate('f', {})).toMatchObject({ variant: 'd', reason: 'DEFAULT' });
    expect(s.evaluate('f', { vip: true })).toMatchObject({ variant: 'c', reason: 'TARGETING_MATCH' });
  });

  it('zero total weight gives DEFAULT', () => {
    const s = splitFlag([['a', 0], ['b', 0]]);
    for (let i = 0; i < 100; i++) expect(s.evaluate('rollout', { targetingKey: `u${i}` })).toMatchObject({ variant: 'd', reason: 'DEFAULT' });
  });

  it('negative weights are clamped to 0', () => {
    const never = splitFlag([['a', -5], ['b', 1]]);
    for (let i = 0; i < 200; i++) expect(never.evaluate('rollout', { targetingKey: `u${i}` }).variant).toBe('b');
    const entries: Array<[string, number]> = [['a', -50], ['b', 50], ['c', 50]];
    const s = splitFlag(entries);
    for (let i = 0; i < 2_000; i++) {
      const r = s.evaluate('rollout', { targetingKey: `u${i}` });
      expect(r.variant).toBe(oracle(`rolloutu${i}`, entries));
      expect(r.variant).not.toBe('a');
    }
    // all weights negative: total 0, DEFAULT
    expect(splitFlag([['a', -1], ['b', -1]]).evaluate('rollout', { targetingKey: 'u' }).reason).toBe('DEFAULT');
  });

  it('a single entry always wins', () => {
    const s = splitFlag([['c', 100]]);
    const implicit = splitFlag([['b']]);
    for (let i = 0; i < 200; i++) {
      expect(s.evaluate('rollout', { targetingKey: `u${i}` })).toMatchObject({ variant: 'c', reason: 'SPLIT' });
      expect(implicit.evaluate('rollout', { targetingKey: `u${i}` }).variant).toBe('b');
    }
  });

  it('a missing weight counts as 1', () => {
    const s = splitFlag([['a'], ['b'], ['c', 2]]);
    for (let i = 0; i < 2_000; i++) {
      expect(s.evaluate('rollout', { targetingKey: `u${i}` }).variant).toBe(oracle(`rolloutu${i}`, [['a', 1], ['b', 1], ['c', 2]]));
    }
  });

  it('weights up to 2,147,483,647 in total are exact; above that the split gives DEFAULT', () => {
    const max = 2_147_483_647;
    const entries: Array<[string, number]> = [['a', max - 1_000_000_000], ['b', 1_000_000_000]];
    const s = splitFlag(entries);
    for (let i = 0; i < 2_000; i++) expect(s.evaluate('rollout', { targetingKey: `u${i}` }).variant).toBe(oracle(`rolloutu${i}`, entries));
    expect(splitFlag([['a', max], ['b', 1]]).evaluate('rollout', { targetingKey: 'u' }).reason).toBe('DEFAULT');
  });

  it.each([
    ['a fractional weight', [['a', 1.5], ['b', 1]]],
    ['a string weight', [['a', '50'], ['b', 50]]],
    ['an entry that is not an array', [['a', 50], 'b']],
    ['an empty entry', [[], ['b', 50]]],
    ['an entry with three items', [['a', 1, 2], ['b', 50]]],
    ['an object variant', [[{ x: 1, y: 2 }, 1], ['b', 1]]],
  ] as Array<[string, JsonValue[]]>)('%s makes the split give DEFAULT (no result), not an error', (_name, entries) => {
    const s = splitFlag(entries);
    expect(s.evaluate('rollout', { targetingKey: 'user-1' })).toMatchObject({ variant: 'd', reason: 'DEFAULT' });
  });

  it('{"fractional": []} gives DEFAULT', () => {
    expect(splitFlag([]).evaluate('rollout', { targetingKey: 'u' })).toMatchObject({ variant: 'd', reason: 'DEFAULT' });
  });

  it('variants may be computed by JsonLogic, booleans or null', () => {
    const computed = splitFlag([[{ var: 'plan' }, 1], ['b', 1]]);
    for (let i = 0; i < 500; i++) {
      const tk = `u${i}`;
      const expected = oracle(`rollout${tk}`, [['first', 1], ['b', 1]]);
      expect(computed.evaluate('rollout', { targetingKey: tk, plan: 'c' }).variant).toBe(expected === 'first' ? 'c' : 'b');
    }
    const { snapshot } = compileFlagSet({ flags: { f: { state: 'ENABLED', variants: { true: 1, false: 0 }, defaultVariant: 'false', targeting: { fractional: [[true, 1], [null, 1]] } } } });
    for (let i = 0; i < 500; i++) {
      const picked = oracle(`fu${i}`, [['true', 1], ['null', 1]]);
      const r = snapshot.evaluate('f', { targetingKey: `u${i}` });
      if (picked === 'true') expect(r).toMatchObject({ variant: 'true', value: 1, reason: 'SPLIT' });
      else expect(r).toMatchObject({ variant: 'false', value: 0, reason: 'DEFAULT' });
    }
  });
});

describe('murmur3 (x86, 32-bit, seed 0, UTF-8)', () => {
  it('known vectors', () => {
    expect(murmur3('')).toBe(0);
    expect(murmur3('hello')).toBe(613153351);
    expect(murmur3('café')).toBe(605818632);
    // imurmurhash hashes UTF-16 code units, which is what flagd Go does not do
    expect(imurmur('café')).toBe(2573629365);
  });

  it('equals imurmurhash for ASCII strings of every length and tail size', () => {
    const rand = prng(3);
    for (let len = 0; len <= 64; len++) {
      for (let k = 0; k < 30; k++) {
        let s = '';
        for (let i = 0; i < len; i++) s += String.fromCharCode(Math.floor(rand() * 128));
        if (murmur3(s) !== imurmur(s)) throw new Error(`murmur3(${JSON.stringify(s)}) = ${murmur3(s)}, imurmurhash = ${imurmur(s)}`);
      }
    }
  });

  it('equals imurmurhash for ASCII strings (property) and returns an unsigned 32-bit integer', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii', maxLength: 100 }), fc.integer({ min: 0, max: 0xffffffff }), (s, seed) => {
        const h = murmur3(s, seed);
        expect(h).toBe(imurmur(s, seed));
        expect(Number.isInteger(h) && h >= 0 && h <= 0xffffffff).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('hashes non-ASCII strings as their UTF-8 bytes (property, against imurmurhash over the bytes)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 10 }), (a, b) => {
        for (const s of [a, b, a + b]) if (murmur3(s) !== referenceUtf8Murmur(s)) throw new Error(`murmur3(${JSON.stringify(s)}) = ${murmur3(s)}, UTF-8 reference ${referenceUtf8Murmur(s)}`);
      }),
      { numRuns: 500 },
    );
  });

  it('hashes lone surrogates as U+FFFD, like a UTF-8 encoder', () => {
    expect(murmur3('a\ud800b')).toBe(murmur3('a\ufffdb'));
    expect(murmur3('\udfff')).toBe(referenceUtf8Murmur('\ufffd'));
  });
});

describe('bucketOf', () => {
  it('equals floor(hash × weight / 2^32) computed with BigInt, for random hashes and weights', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 2_147_483_647 }), (hash, weight) => {
        const b = bucketOf(hash, weight);
        expect(b).toBe(referenceBucket(hash, weight));
        expect(b >= 0 && b < weight).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it('is exact for the largest total weight on many hashes, including the extremes', () => {
    const w = 2_147_483_647;
    const rand = prng(5);
    const hashes = [0, 1, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
    for (let i = 0; i < 20_000; i++) hashes.push(Math.floor(rand() * 0x100000000));
    for (const h of hashes) {
      for (const weight of [w, w - 1, 1, 100, 3, 65_536, 65_537]) {
        if (bucketOf(h, weight) !== referenceBucket(h, weight)) throw new Error(`bucketOf(${h}, ${weight}) = ${bucketOf(h, weight)}, expected ${referenceBucket(h, weight)}`);
      }
    }
    expect(bucketOf(0xffffffff, w)).toBe(w - 1);
    expect(bucketOf(0, w)).toBe(0);
  });
});
