import { changedFlagKeys, compileFlagSet, FlagSnapshot, type FlagSetDefinition, type JsonValue } from '@rollgate/core';
import { bucketOf, murmur3 } from '../src/murmur3';
import { BOOL_FLAG, compileClean } from './helpers';

const COLORS = { state: 'ENABLED' as const, variants: { red: '#f00', green: '#0f0', blue: '#00f' }, defaultVariant: 'red' };

describe('resolution semantics (flagd)', () => {
  it('STATIC: no targeting (absent or {}) serves defaultVariant', () => {
    const snapshot = compileClean({ flags: { a: COLORS, b: { ...COLORS, defaultVariant: 'blue', targeting: {} } } });
    expect(snapshot.evaluate('a', { anything: 1 }, { defaultValue: 'x' })).toEqual({ flagKey: 'a', value: '#f00', variant: 'red', reason: 'STATIC', flagMetadata: {} });
    expect(snapshot.evaluate('b')).toEqual({ flagKey: 'b', value: '#00f', variant: 'blue', reason: 'STATIC', flagMetadata: {} });
  });

  it('DISABLED: the defaultValue passed in, reason DISABLED, no variant and no error', () => {
    const snapshot = compileClean({ metadata: { team: 'pay' }, flags: { f: { ...COLORS, state: 'DISABLED', targeting: { if: [true, 'green'] } } } });
    expect(snapshot.evaluate('f', {}, { defaultValue: 'code-default' })).toEqual({ flagKey: 'f', value: 'code-default', reason: 'DISABLED', flagMetadata: { team: 'pay' } });
    const noDefault = snapshot.evaluate('f');
    expect(noDefault.value).toBeUndefined();
    expect(noDefault.reason).toBe('DISABLED');
    expect(noDefault.errorCode).toBeUndefined();
    // a type request does not turn DISABLED into a mismatch
    expect(snapshot.evaluate('f', {}, { defaultValue: 3, type: 'number' })).toMatchObject({ value: 3, reason: 'DISABLED' });
  });

  it('targeting that yields null/undefined serves defaultVariant with reason DEFAULT', () => {
    const snapshot = compileClean({ flags: { f: { ...COLORS, targeting: { if: [{ '==': [{ var: 'tier' }, 'gold'] }, 'green'] } } } });
    expect(snapshot.evaluate('f', { tier: 'gold' })).toMatchObject({ value: '#0f0', variant: 'green', reason: 'TARGETING_MATCH' });
    expect(snapshot.evaluate('f', { tier: 'silver' }, { defaultValue: 'x' })).toEqual({ flagKey: 'f', value: '#f00', variant: 'red', reason: 'DEFAULT', flagMetadata: {} });
  });

  it.each([
    ['absent', undefined],
    ['null', null],
  ])('defaultVariant %s: the code default is served with DEFAULT and no variant', (_name, defaultVariant) => {
    const flag = { state: 'ENABLED' as const, variants: { on: true, off: false }, ...(defaultVariant === undefined ? {} : { defaultVariant }) };
    const snapshot = compileClean({ flags: { targeted: { ...flag, targeting: { if: [{ var: 'beta' }, 'on'] } }, plain: flag } });
    const miss = snapshot.evaluate('targeted', {}, { defaultValue: true });
    expect(miss).toEqual({ flagKey: 'targeted', value: true, reason: 'DEFAULT', flagMetadata: {} });
    expect('variant' in miss).toBe(false);
    expect(snapshot.evaluate('targeted', { beta: true }, { defaultValue: false })).toMatchObject({ value: true, variant: 'on', reason: 'TARGETING_MATCH' });
    expect(snapshot.evaluate('plain', {}, { defaultValue: false })).toEqual({ flagKey: 'plain', value: false, reason: 'DEFAULT', flagMetadata: {} });
    // with no default variant the code default is not type-checked against the flag
    expect(snapshot.evaluate('plain', {}, { defaultValue: 'x', type: 'string' })).toMatchObject({ value: 'x', reason: 'DEFAULT' });
  });

  it('a variant name that is not in variants is ERROR/GENERAL, serving the defaultValue', () => {
    const snapshot = compileClean({ flags: { f: { ...COLORS, targeting: { var: 'color' } } } });
    const r = snapshot.evaluate('f', { color: 'purple' }, { defaultValue: '#000' });
    expect(r).toMatchObject({ flagKey: 'f', value: '#000', reason: 'ERROR', errorCode: 'GENERAL' });
    expect(r.variant).toBeUndefined();
    expect(r.errorMessage).toContain('"purple"');
    expect(snapshot.evaluate('f', { color: 'blue' })).toMatchObject({ value: '#00f', variant: 'blue', reason: 'TARGETING_MATCH' });
    // an empty string is a variant name that cannot exist
    expect(snapshot.evaluate('f', { color: '' })).toMatchObject({ reason: 'ERROR', errorCode: 'GENERAL' });
  });

  it('a boolean result selects the variant named "true"/"false"; a number selects its decimal name', () => {
    const snapshot = compileClean({
      flags: {
        b: { state: 'ENABLED', variants: { true: 'yes', false: 'no' }, defaultVariant: 'false', targeting: { '==': [{ var: 'plan' }, 'pro'] } },
        n: { state: 'ENABLED', variants: { '1': 'one', '2': 'two', '2.5': 'two and a half' }, defaultVariant: '1', targeting: { '+': [{ var: 'x' }, 1] } },
      },
    });
    expect(snapshot.evaluate('b', { plan: 'pro' })).toMatchObject({ value: 'yes', variant: 'true', reason: 'TARGETING_MATCH' });
    expect(snapshot.evaluate('b', { plan: 'free' })).toMatchObject({ value: 'no', variant: 'false', reason: 'TARGETING_MATCH' });
    expect(snapshot.evaluate('n', { x: 1 })).toMatchObject({ value: 'two', variant: '2', reason: 'TARGETING_MATCH' });
    expect(snapshot.evaluate('n', { x: 1.5 })).toMatchObject({ value: 'two and a half', variant: '2.5' });
    expect(snapshot.evaluate('n', { x: 7 })).toMatchObject({ reason: 'ERROR', errorCode: 'GENERAL' });
  });

  it.each([
    ['an object', { if: [true, { a: 1, b: 2 }] }],
    ['an array', { merge: [['on'], ['off']] }],
  ] as Array<[string, Record<string, JsonValue>]>)('targeting that returns %s is ERROR/GENERAL', (_name, targeting) => {
    const snapshot = compileClean({ flags: { f: { ...BOOL_FLAG, targeting } } });
    expect(snapshot.evaluate('f', {}, { defaultValue: true })).toMatchObject({ value: true, reason: 'ERROR', errorCode: 'GENERAL' });
  });

  it('FLAG_NOT_FOUND serves the defaultValue and carries the flag-set metadata', () => {
    const snapshot = compileClean({ metadata: { flagSetId: 'checkout', version: 3 }, flags: { f: BOOL_FLAG } });
    const r = snapshot.evaluate('nope', { a: 1 }, { defaultValue: 'd' });
    expect(r).toMatchObject({ flagKey: 'nope', value: 'd', reason: 'ERROR', errorCode: 'FLAG_NOT_FOUND', flagMetadata: { flagSetId: 'checkout', version: 3 } });
    expect(r.errorMessage).toContain('nope');
    expect(snapshot.metadata).toEqual({ flagSetId: 'checkout', version: 3 });
    expect(FlagSnapshot.empty().evaluate('x', {}, { defaultValue: 1 })).toMatchObject({ value: 1, reason: 'ERROR', errorCode: 'FLAG_NOT_FOUND', flagMetadata: {} });
    expect(FlagSnapshot.empty().keys()).toEqual([]);
  });

  it('flagMetadata is the set metadata merged with the flag metadata, the flag winning', () => {
    const snapshot = compileClean({
      metadata: { flagSetId: 'checkout', version: 3, owner: 'platform' },
      flags: { f: { ...BOOL_FLAG, metadata: { owner: 'payments', ticket: 'PAY-1', critical: true } }, g: BOOL_FLAG },
    });
    expect(snapshot.evaluate('f').flagMetadata).toEqual({ flagSetId: 'checkout', version: 3, owner: 'payments', ticket: 'PAY-1', critical: true });
    expect(snapshot.evaluate('g').flagMetadata).toEqual({ flagSetId: 'checkout', version: 3, owner: 'platform' });
    // also on error results of that flag
    expect(snapshot.evaluate('f', {}, { type: 'string', defaultValue: 's' }).flagMetadata).toMatchObject({ owner: 'payments' });
  });

  describe('TYPE_MISMATCH', () => {
    const snapshot = compileClean({
      flags: {
        bool: BOOL_FLAG,
        str: COLORS,
        num: { state: 'ENABLED', variants: { low: 10, high: 1000 }, defaultVariant: 'low' },
        obj: { state: 'ENABLED', variants: { a: { theme: 'dark' } }, defaultVariant: 'a' },
      },
    });
    const types = ['boolean', 'string', 'number', 'object'] as const;
    const matching: Record<string, (typeof types)[number]> = { bool: 'boolean', str: 'string', num: 'number', obj: 'object' };

    it.each(Object.keys(matching))('flag %s: only its own type resolves; any other gives TYPE_MISMATCH and the defaultValue', (key) => {
      for (const type of types) {
        const r = snapshot.evaluate(key, {}, { type, defaultValue: 'DEFAULT-VALUE' as never });
        if (type === matching[key]) {
          expect(r).toMatchObject({ reason: 'STATIC' });
          expect(r.errorCode).toBeUndefined();
        } else {
          expect(r).toMatchObject({ value: 'DEFAULT-VALUE', reason: 'ERROR', errorCode: 'TYPE_MISMATCH' });
          expect(r.variant).toBeUndefined();
        }
      }
    });

    it('without a type option any value is served', () => {
      expect(snapshot.evaluate('obj').value).toEqual({ theme: 'dark' });
      expect(snapshot.evaluate('num').value).toBe(10);
    });
  });

  describe('evaluation never throws', () => {
    const snapshot = compileClean({
      flags: {
        cmp: { ...BOOL_FLAG, targeting: { if: [{ '<': [{ var: 'n' }, 5] }, 'on', 'off'] } },
        echo: { ...COLORS, targeting: { var: 'color' } },
        cat: { ...COLORS, targeting: { cat: [{ var: 'color' }] } },
      },
    });

    it('an evaluation error is ERROR/GENERAL with the defaultValue', () => {
      expect(snapshot.evaluate('cmp', { n: 'abc' }, { defaultValue: true })).toMatchObject({ value: true, reason: 'ERROR', errorCode: 'GENERAL' });
    });

    it('a context getter that throws is ERROR/GENERAL', () => {
      const ctx = {
        get n(): number {
          throw new Error('boom');
        },
      };
      expect(snapshot.evaluate('cmp', ctx, { defaultValue: false })).toMatchObject({ value: false, reason: 'ERROR', errorCode: 'GENERAL' });
    });

    it('a context value that cannot be turned into a string is ERROR/GENERAL', () => {
      expect(snapshot.evaluate('cat', { color: Object.create(null) as object }, { defaultValue: 'x' })).toMatchObject({ value: 'x', reason: 'ERROR', errorCode: 'GENERAL' });
    });

    it('null, undefined and primitive contexts are treated as empty', () => {
      expect(snapshot.evaluate('cmp', undefined)).toMatchObject({ value: true, reason: 'TARGETING_MATCH' });
      expect(snapshot.evaluate('cmp', null as never)).toMatchObject({ value: true, reason: 'TARGETING_MATCH' });
      expect(snapshot.evaluate('cmp', 'ctx' as never)).toMatchObject({ value: true, reason: 'TARGETING_MATCH' });
    });

    it.each([
      ['a BigInt', 10n],
      ['a circular object', (() => {
        const o: Record<string, unknown> = { name: 'loop' };
        o.self = o;
        return o;
      })()],
    ])('targeting that returns %s from the context is ERROR/GENERAL, not a throw', (_name, color) => {
      let result: unknown;
      expect(() => {
        result = snapshot.evaluate('echo', { color }, { defaultValue: 'x' });
      }).not.toThrow();
      expect(result).toMatchObject({ value: 'x', reason: 'ERROR', errorCode: 'GENERAL' });
      expect(() => snapshot.evaluateAll({ color })).not.toThrow();
      expect(() => snapshot.explain('echo', { color })).not.toThrow();
    });
  });
});

describe('SPLIT (fractional in tail position) vs TARGETING_MATCH', () => {
  const split = { fractional: [['red', 50], ['green', 50]] };
  const snapshot = compileClean({
    flags: {
      tail: { ...COLORS, targeting: split },
      branch: { ...COLORS, targeting: { if: [{ '==': [{ var: 'role' }, 'admin'] }, 'blue', split] } },
      nested: { ...COLORS, targeting: { if: [{ var: 'beta' }, { if: [{ var: 'staff' }, 'blue', split] }, 'red'] } },
      condition: { ...COLORS, targeting: { if: [{ '==': [split, 'red'] }, 'blue', 'green'] } },
      insideCat: { ...COLORS, targeting: { cat: [split] } },
    },
  });

  it('a fractional that is the targeting, or an if branch, gives SPLIT', () => {
    for (let i = 0; i < 50; i++) {
      const ctx = { targetingKey: `user-${i}` };
      expect(snapshot.evaluate('tail', ctx).reason).toBe('SPLIT');
      expect(snapshot.evaluate('branch', ctx).reason).toBe('SPLIT');
      expect(snapshot.evaluate('nested', { ...ctx, beta: true }).reason).toBe('SPLIT');
    }
    expect(snapshot.evaluate('branch', { targetingKey: 'u', role: 'admin' })).toMatchObject({ variant: 'blue', reason: 'TARGETING_MATCH' });
    expect(snapshot.evaluate('nested', { targetingKey: 'u', beta: true, staff: true })).toMatchObject({ variant: 'blue', reason: 'TARGETING_MATCH' });
    expect(snapshot.evaluate('nested', { targetingKey: 'u' })).toMatchObject({ variant: 'red', reason: 'TARGETING_MATCH' });
  });

  it('a fractional used as a condition or as an operand gives TARGETING_MATCH', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const ctx = { targetingKey: `user-${i}` };
      const r = snapshot.evaluate('condition', ctx);
      expect(r.reason).toBe('TARGETING_MATCH');
      seen.add(r.variant!);
      expect(snapshot.evaluate('insideCat', ctx).reason).toBe('TARGETING_MATCH');
    }
    expect(seen).toEqual(new Set(['blue', 'green']));
  });

  it('whatever the reason, the variant is the bucket of flagKey + targetingKey', () => {
    for (let i = 0; i < 50; i++) {
      const ctx = { targetingKey: `user-${i}` };
      for (const key of ['tail', 'branch', 'insideCat']) {
        expect([key, snapshot.evaluate(key, ctx).variant]).toEqual([key, bucketOf(murmur3(`${key}user-${i}`), 100) < 50 ? 'red' : 'green']);
      }
    }
  });
});

describe('evaluateAll and keys', () => {
  const snapshot = compileClean({
    flags: {
      zeta: BOOL_FLAG,
      alpha: { ...COLORS, targeting: { if: [{ '==': [{ var: 'role' }, 'admin'] }, 'blue'] } },
      off: { ...BOOL_FLAG, state: 'DISABLED' },
      mid: { state: 'ENABLED', variants: { a: 1, b: 2 }, defaultVariant: 'b' },
    },
  });

  it('keys() lists flags in definition order', () => {
    expect(snapshot.keys()).toEqual(['zeta', 'alpha', 'off', 'mid']);
    expect(snapshot.has('alpha')).toBe(true);
    expect(snapshot.has('nope')).toBe(false);
  });

  it('evaluates every flag in key order, each result equal to evaluate()', () => {
    const ctx = { role: 'admin' };
    const all = snapshot.evaluateAll(ctx);
    expect(all.map((r) => r.flagKey)).toEqual(snapshot.keys());
    expect(all).toEqual(snapshot.keys().map((k) => snapshot.evaluate(k, ctx)));
    expect(all.map((r) => [r.flagKey, r.value, r.reason])).toEqual([
      ['zeta', false, 'STATIC'],
      ['alpha', '#00f', 'TARGETING_MATCH'],
      ['off', undefined, 'DISABLED'],
      ['mid', 2, 'STATIC'],
    ]);
  });

  it('with keys: only those, in the order given, unknown keys as FLAG_NOT_FOUND', () => {
    const some = snapshot.evaluateAll({}, { keys: ['mid', 'nope', 'alpha'] });
    expect(some.map((r) => [r.flagKey, r.reason, r.errorCode])).toEqual([
      ['mid', 'STATIC', undefined],
      ['nope', 'ERROR', 'FLAG_NOT_FOUND'],
      ['alpha', 'DEFAULT', undefined],
    ]);
    expect(snapshot.evaluateAll({}, { keys: [] })).toEqual([]);
  });
});

describe('explain', () => {
  const snapshot = compileClean({
    flags: {
      f: {
        ...COLORS,
        targeting: { if: [{ '==': [{ var: 'role' }, 'admin'] }, 'blue', { in: [{ var: 'tenant' }, ['acme', 'globex']] }, 'green', { fractional: [['red', 30], ['green', 70]] }] },
      },
      s: COLORS,
      d: { ...COLORS, state: 'DISABLED' },
    },
  });

  it('names the condition that matched, with its path and outcome', () => {
    const first = snapshot.explain('f', { role: 'admin' });
    expect(first.result).toEqual(snapshot.evaluate('f', { role: 'admin' }));
    expect(first.steps).toEqual([{ path: 'targeting.if[0]', rule: { '==': [{ var: 'role' }, 'admin'] }, outcome: true, note: 'condition 1 matched' }]);
    expect(first.summary).toBe('condition 1 matched: variant "blue" ("#00f")');

    const second = snapshot.explain('f', { tenant: 'globex' });
    expect(second.steps.map((s) => [s.path, s.outcome, s.note])).toEqual([
      ['targeting.if[0]', false, 'condition 1 did not match'],
      ['targeting.if[2]', true, 'condition 2 matched'],
    ]);
    expect(second.summary).toBe('condition 2 matched: variant "green" ("#0f0")');
  });

  it('names the fractional bucket that decided', () => {
    for (const tk of ['user-1', 'user-2', 'user-3', 'someone@example.com']) {
      const bucket = bucketOf(murmur3(`f${tk}`), 100);
      const variant = bucket < 30 ? 'red' : 'green';
      const e = snapshot.explain('f', { targetingKey: tk });
      expect(e.result).toMatchObject({ variant, reason: 'SPLIT' });
      const last = e.steps[e.steps.length - 1]!;
      expect(last.path).toBe('targeting.if[4].fractional');
      expect(last.outcome).toBe(variant);
      expect(last.note).toBe(`percentage split on "f${tk}": bucket ${bucket} of 100 → "${variant}"`);
      expect(e.summary).toBe(`${last.note}: variant "${variant}" (${JSON.stringify(COLORS.variants[variant])})`);
      expect(e.steps.map((s) => s.note).slice(0, 3)).toEqual(['condition 1 did not match', 'condition 2 did not match', 'no condition matched: else branch']);
    }
  });

  it('explains DEFAULT, STATIC, DISABLED and errors in one sentence', () => {
    expect(snapshot.explain('f', {}).summary).toBe('targeting gave no variant (no condition matched: else branch): variant "red" ("#f00")');
    expect(snapshot.explain('s', {}).summary).toBe('no targeting: defaultVariant, variant "red" ("#f00")');
    expect(snapshot.explain('d', {}).summary).toBe('flag is DISABLED: the code default');
    const notFound = snapshot.explain('nope', {});
    expect(notFound.summary).toBe('FLAG_NOT_FOUND: flag "nope" not found');
    expect(notFound.steps).toEqual([]);
  });

  it('does not change the result compared with evaluate()', () => {
    for (const ctx of [{}, { role: 'admin' }, { tenant: 'acme' }, { targetingKey: 'abc' }]) {
      expect(snapshot.explain('f', ctx).result).toEqual(snapshot.evaluate('f', ctx));
    }
  });
});

describe('changedFlagKeys', () => {
  const base: FlagSetDefinition = {
    $evaluators: { isAdmin: { '==': [{ var: 'role' }, 'admin'] }, unused: { var: 'x' } },
    flags: {
      same: BOOL_FLAG,
      usesRef: { ...BOOL_FLAG, targeting: { if: [{ $ref: 'isAdmin' }, 'on'] } },
      toChange: COLORS,
      toRemove: BOOL_FLAG,
    },
  };
  const compile = (set: FlagSetDefinition) => compileFlagSet(set).snapshot;

  it('is empty for identical flag sets compiled twice', () => {
    expect(changedFlagKeys(compile(base), compile(base))).toEqual([]);
    expect(changedFlagKeys(compile(base), compile(JSON.parse(JSON.stringify(base)) as FlagSetDefinition))).toEqual([]);
  });

  it('reports added, removed and changed flags, and nothing else', () => {
    const next: FlagSetDefinition = {
      ...base,
      flags: { same: BOOL_FLAG, usesRef: base.flags.usesRef!, toChange: { ...COLORS, defaultVariant: 'green' }, added: BOOL_FLAG },
    };
    expect(changedFlagKeys(compile(base), compile(next)).sort()).toEqual(['added', 'toChange', 'toRemove']);
  });

  it.each([
    ['state', { ...COLORS, state: 'DISABLED' as const }],
    ['a variant value', { ...COLORS, variants: { ...COLORS.variants, blue: '#00e' } }],
    ['targeting', { ...COLORS, targeting: { if: [true, 'blue'] } }],
    ['metadata', { ...COLORS, metadata: { owner: 'x' } }],
  ])('detects a change of %s', (_what, toChange) => {
    expect(changedFlagKeys(compile(base), compile({ ...base, flags: { ...base.flags, toChange } }))).toEqual(['toChange']);
  });

  it('detects flags whose $evaluator changed, even though their own definition did not', () => {
    const next = { ...base, $evaluators: { ...base.$evaluators, isAdmin: { in: [{ var: 'role' }, ['admin', 'owner']] } } };
    const a = compile(base);
    const b = compile(next);
    expect(b.definition('usesRef')).toEqual(a.definition('usesRef'));
    expect(changedFlagKeys(a, b)).toEqual(['usesRef']);
    expect(b.evaluate('usesRef', { role: 'owner' }).value).not.toBe(a.evaluate('usesRef', { role: 'owner' }).value);
  });

  it('ignores a change to an evaluator no flag uses', () => {
    expect(changedFlagKeys(compile(base), compile({ ...base, $evaluators: { ...base.$evaluators, unused: { var: 'y' } } }))).toEqual([]);
  });

  it('detects a flag whose targeting became unusable (static -> unknown $ref) and back', () => {
    const broken = compile({ ...base, flags: { ...base.flags, toChange: { ...COLORS, targeting: { $ref: 'doesNotExist' } } } });
    const before = compile(base);
    // behaviour did change: STATIC before, PARSE_ERROR now
    expect(before.evaluate('toChange').reason).toBe('STATIC');
    expect(broken.evaluate('toChange').errorCode).toBe('PARSE_ERROR');
    expect(changedFlagKeys(before, broken)).toEqual(['toChange']);
    expect(changedFlagKeys(broken, before)).toEqual(['toChange']);
  });

  it('detects a flag that was broken by a missing $ref and is fixed by adding the evaluator', () => {
    const flags = { ...base.flags, toChange: { ...COLORS, targeting: { if: [{ $ref: 'later' }, 'blue'] } } };
    const broken = compile({ ...base, flags });
    const fixed = compile({ ...base, $evaluators: { ...base.$evaluators, later: true }, flags });
    expect(broken.evaluate('toChange').errorCode).toBe('PARSE_ERROR');
    expect(fixed.evaluate('toChange').variant).toBe('blue');
    expect(changedFlagKeys(broken, fixed)).toEqual(['toChange']);
  });

  it('against an empty snapshot every flag is added (or removed)', () => {
    const s = compile(base);
    expect(changedFlagKeys(FlagSnapshot.empty(), s)).toEqual(s.keys());
    expect(changedFlagKeys(s, FlagSnapshot.empty())).toEqual(s.keys());
  });
});

describe('evaluation state and shared results', () => {
  const snapshot = compileClean({
    flags: {
      split: { ...COLORS, targeting: { if: [{ '==': [{ var: 'role' }, 'admin'] }, 'blue', { fractional: [['red', 50], ['green', 50]] }] } },
      many: { state: 'ENABLED', variants: { true: 'T', false: 'F' }, defaultVariant: 'false', targeting: { some: [{ var: 'groups' }, { '==': [{ var: '' }, 'x'] }] } },
    },
  });

  it('a context getter that evaluates a flag of the same snapshot (re-entrant) leaves both evaluations right', () => {
    const inner: unknown[] = [];
    const ctx = {
      targetingKey: 'user-7',
      get role() {
        inner.push(snapshot.evaluate('split', { targetingKey: 'someone-else' }).variant);
        inner.push(snapshot.evaluate('many', { groups: Array.from({ length: 50 }, () => 'y') }).reason);
        return 'member';
      },
    };
    const plain = snapshot.evaluate('split', { targetingKey: 'user-7', role: 'member' });
    expect(snapshot.evaluate('split', ctx)).toBe(plain);
    expect(inner).toEqual([snapshot.evaluate('split', { targetingKey: 'someone-else' }).variant, 'TARGETING_MATCH']);
  });

  it('results are frozen and shared by equal outcomes: changing one is refused and changes nothing', () => {
    const a = snapshot.evaluate('split', { role: 'admin' });
    const b = snapshot.evaluate('split', { role: 'admin', targetingKey: 'x' });
    expect(a).toBe(b);
    expect(Object.isFrozen(a)).toBe(true);
    expect(() => {
      (a as { value: unknown }).value = 'changed';
    }).toThrow(TypeError);
    expect(snapshot.evaluate('split', { role: 'admin' })).toEqual({ flagKey: 'split', value: '#00f', variant: 'blue', reason: 'TARGETING_MATCH', flagMetadata: {} });
    // a caller's default value is never written into a shared result
    expect(snapshot.evaluate('nope', {}, { defaultValue: 'x' }).value).toBe('x');
    expect(snapshot.evaluate('many', {}, { defaultValue: 'x' as never })).toMatchObject({ value: 'F', reason: 'TARGETING_MATCH' });
  });
});
