import fc from 'fast-check';
import { compileFlagSet, formatIssue, SUPPORTED_OPERATORS, type EvaluationContext, type EvaluationResult, type FlagSetDefinition, type JsonValue } from '@rollgate/core';
import { compileClean, objectPrototypeSnapshot } from './helpers';

const REASONS = new Set(['STATIC', 'TARGETING_MATCH', 'SPLIT', 'DEFAULT', 'DISABLED', 'ERROR']);
const ERROR_CODES = new Set(['FLAG_NOT_FOUND', 'PARSE_ERROR', 'TYPE_MISMATCH', 'GENERAL']);
const DANGEROUS_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'polluted', '$flagd', 'targetingKey'];
const ATTRIBUTES = ['role', 'email', 'tenant', 'appVersion', 'groups', 'n', 'path', 'items', 'region'];

/** Context keys: dangerous names, the attributes the flags read, and anything else. */
const contextKey = fc.oneof(fc.constantFrom(...DANGEROUS_KEYS), fc.constantFrom(...ATTRIBUTES), fc.string({ maxLength: 8 }));

/** Values of every JavaScript shape a caller might pass (BigInt has its own property below). */
const anyValue = fc.anything({
  key: contextKey,
  maxDepth: 3,
  maxKeys: 5,
  withBoxedValues: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withDate: true,
  withTypedArray: true,
  withSparseArray: true,
  withObjectString: true,
});

/** Builds a context whose keys are all own properties (even "__proto__"). */
const context: fc.Arbitrary<EvaluationContext> = fc
  .array(fc.tuple(contextKey, fc.oneof(anyValue, fc.constantFrom('admin', 'a@example.com', 'acme', '2.3.0', 'v1.2', 'eu', 'items.0'), fc.array(fc.string(), { maxLength: 3 }))), { maxLength: 8 })
  .map((entries) => {
    const ctx: Record<string, unknown> = {};
    for (const [k, v] of entries) Object.defineProperty(ctx, k, { value: v, enumerable: true, writable: true, configurable: true });
    return ctx;
  });

/** A flag set that reads the context in every way the operators allow. */
const FLAG_SET: FlagSetDefinition = {
  metadata: { flagSetId: 'props' },
  $evaluators: { isStaff: { ends_with: [{ var: 'email' }, '@example.com'] } },
  flags: {
    rollout: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ or: [{ '==': [{ var: 'role' }, 'admin'] }, { $ref: 'isStaff' }] }, 'on', { fractional: [['on', 20], ['off', 80]] }] } },
    byEmail: { state: 'ENABLED', variants: { a: 'A', b: 'B' }, defaultVariant: 'a', targeting: { fractional: [{ cat: [{ var: '$flagd.flagKey' }, { var: 'email' }] }, ['a', 1], ['b', 1]] } },
    semver: { state: 'ENABLED', variants: { on: true, off: false }, targeting: { if: [{ sem_ver: [{ var: 'appVersion' }, '>=', '2.0.0'] }, 'on', { sem_ver: [{ var: 'appVersion' }, '~', '1.2'] }, 'off'] } },
    echo: { state: 'ENABLED', variants: { eu: 'eu-west-1', us: 'us-east-1' }, defaultVariant: 'us', targeting: { var: 'region' } },
    dynamicPath: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ var: { var: 'path' } }, 'on', 'off'] } },
    whole: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ missing: ['role', 'polluted', 'toString'] }, 'off', { some: [{ merge: [{ var: 'groups' }, { var: '' }] }, { var: 'polluted' }] }, 'on'] } },
    iterate: {
      state: 'ENABLED',
      variants: { '0': 0, '1': 1, '2': 2, '3': 3 },
      defaultVariant: '0',
      targeting: { reduce: [{ filter: [{ var: 'items' }, { '>': [{ var: '' }, 0] }] }, { '+': [{ var: 'accumulator' }, 1] }, 0] },
    },
    arith: { state: 'ENABLED', variants: { low: 'L', high: 'H' }, defaultVariant: 'low', targeting: { if: [{ '<': [0, { '*': [{ var: 'n' }, 2] }, 100] }, 'low', { in: [{ cat: [{ var: 'tenant' }, { substr: [{ var: 'role' }, 0, 2] }] }, ['acmead', 'x']] }, 'high'] } },
    strings: { state: 'ENABLED', variants: { y: true, n: false }, defaultVariant: 'n', targeting: { if: [{ and: [{ starts_with: [{ var: 'tenant' }, 'ac'] }, { '!': [{ in: [{ var: 'role' }, { var: 'groups' }] }] }] }, 'y'] } },
    timestamp: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ '>': [{ var: '$flagd.timestamp' }, { var: 'n' }] }, 'on', 'off'] } },
    off: { state: 'DISABLED', variants: { on: true, off: false }, defaultVariant: 'on' },
  },
};

/** Throws (with the offending result) unless the result is well-formed. Plain checks: this runs thousands of times. */
function checkResult(r: EvaluationResult, variants: Record<string, unknown> | undefined, defaultValue: unknown): void {
  const fail = (why: string) => {
    throw new Error(`${why}: ${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
  };
  if (!REASONS.has(r.reason)) fail('unknown reason');
  if (r.reason === 'ERROR') {
    if (!ERROR_CODES.has(r.errorCode!)) fail('unknown error code');
    if (r.variant !== undefined) fail('error with a variant');
  } else if (r.errorCode !== undefined) {
    fail('error code without ERROR');
  }
  if (r.variant !== undefined) {
    if (!variants || !Object.prototype.hasOwnProperty.call(variants, r.variant)) fail('variant not in the flag');
    if (r.value !== variants![r.variant]) fail('value is not the variant value');
  } else if (r.value !== defaultValue) {
    fail('no variant but not the default value');
  }
}

describe('properties: evaluation is total and never pollutes', () => {
  const snapshot = compileClean(FLAG_SET);
  const protoBefore = objectPrototypeSnapshot();
  const keys = [...snapshot.keys(), 'missing-flag'];

  afterAll(() => {
    expect(objectPrototypeSnapshot()).toEqual(protoBefore);
  });

  it('evaluate, evaluateAll and explain never throw, return a known reason, and serve a variant or the default', () => {
    fc.assert(
      fc.property(context, fc.constantFrom(...keys), fc.option(fc.constantFrom('boolean', 'string', 'number', 'object') as fc.Arbitrary<'boolean'>, { nil: undefined }), (ctx, key, type) => {
        const defaultValue = { sentinel: true };
        const r = snapshot.evaluate(key, ctx, { defaultValue: defaultValue as never, type });
        checkResult(r, snapshot.definition(key)?.variants, defaultValue);
        expect(r.flagKey).toBe(key);

        const all = snapshot.evaluateAll(ctx);
        expect(all.map((x) => x.flagKey)).toEqual(snapshot.keys());
        for (const x of all) checkResult(x, snapshot.definition(x.flagKey)?.variants, undefined);

        const e = snapshot.explain(key, ctx, { defaultValue: defaultValue as never, type });
        expect(e.result).toEqual(r);
        expect(typeof e.summary).toBe('string');
        expect(e.summary.length).toBeGreaterThan(0);

        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        expect(Object.getPrototypeOf(ctx)).toBe(Object.prototype);
      }),
      { numRuns: 1_500 },
    );
    expect(objectPrototypeSnapshot()).toEqual(protoBefore);
  });

  it('contexts holding BigInt values (ids from a database driver) never make evaluation throw either', () => {
    const withBigInt = fc.dictionary(fc.constantFrom('region', 'role', 'n', 'items', 'targetingKey', 'email'), fc.anything({ maxDepth: 2, withBigInt: true }), { maxKeys: 4 });
    fc.assert(
      fc.property(withBigInt, (ctx) => {
        for (const r of snapshot.evaluateAll(ctx)) checkResult(r, snapshot.definition(r.flagKey)?.variants, undefined);
        for (const key of keys) snapshot.explain(key, ctx);
      }),
      { numRuns: 300 },
    );
  });

  it('evaluation does not modify the context', () => {
    fc.assert(
      fc.property(
        fc.dictionary(contextKey, fc.jsonValue({ maxDepth: 3 })).map((d) => JSON.parse(JSON.stringify(d)) as EvaluationContext),
        (ctx) => {
          const before = JSON.stringify(ctx);
          snapshot.evaluateAll(ctx);
          for (const key of keys) snapshot.explain(key, ctx);
          expect(JSON.stringify(ctx)).toBe(before);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is deterministic: the same context gives the same results', () => {
    fc.assert(
      fc.property(context, (ctx) => {
        expect(snapshot.evaluateAll(ctx)).toEqual(snapshot.evaluateAll(ctx));
      }),
      { numRuns: 300 },
    );
  });
});

describe('properties: compiling untrusted flag sets is total', () => {
  const protoBefore = objectPrototypeSnapshot();
  const jsonKey = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'flags', 'state', 'variants', 'defaultVariant', 'targeting', 'metadata', '$evaluators', '$ref', 'var', 'if'), fc.string({ maxLength: 6 }));

  /** JsonLogic-shaped rules built from the real operators (and a few unknown ones). */
  const rule: fc.Arbitrary<JsonValue> = fc.letrec<{ rule: JsonValue }>((tie) => ({
    rule: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.oneof(fc.constantFrom<JsonValue>(null, true, false, 0, 1, -1, 2.5, '', 'on', 'off', 'a', 'b', 'role', 'email', 'items', '1.2.3', '>=', '^'), fc.string({ maxLength: 5 }), fc.integer()),
      fc.record({ var: fc.oneof(fc.constantFrom<JsonValue>('', 'role', 'email', 'items.0', '$flagd.flagKey', '$flagd.timestamp', 'targetingKey', 'a.b'), tie('rule')) }),
      fc
        .tuple(fc.constantFrom(...SUPPORTED_OPERATORS, '$ref', 'nope', 'toString'), fc.array(tie('rule'), { maxLength: 4 }))
        .map(([op, args]) => ({ [op]: op === '$ref' ? (args[0] ?? 'isStaff') : args }) as JsonValue),
      fc.array(tie('rule'), { maxLength: 3 }),
    ),
  })).rule;

  const flag = fc.record(
    {
      state: fc.constantFrom<JsonValue>('ENABLED', 'DISABLED', 'on'),
      variants: fc.oneof(fc.constant<JsonValue>({ on: true, off: false, a: true, b: false }), fc.dictionary(jsonKey, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 })),
      defaultVariant: fc.constantFrom<JsonValue>('on', 'off', 'a', null, 'zzz'),
      targeting: rule,
      metadata: fc.dictionary(jsonKey, fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null))),
    },
    { requiredKeys: ['state', 'variants'] },
  );

  const flagSet = fc.record(
    {
      flags: fc.dictionary(fc.oneof(jsonKey, fc.constantFrom('f1', 'f2', 'f3')), flag, { maxKeys: 4 }),
      $evaluators: fc.dictionary(fc.oneof(jsonKey, fc.constantFrom('isStaff', 'e1')), rule, { maxKeys: 3 }),
      metadata: fc.dictionary(jsonKey, fc.oneof(fc.string(), fc.integer())),
    },
    { requiredKeys: ['flags'] },
  );

  afterAll(() => {
    expect(objectPrototypeSnapshot()).toEqual(protoBefore);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('random JSON values (as objects and as text) never make compileFlagSet throw', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (value) => {
        for (const input of [value, JSON.stringify(value) ?? 'null']) {
          const { snapshot, errors } = compileFlagSet(input as object);
          for (const e of errors) {
            expect(typeof e.path).toBe('string');
            expect(typeof e.message).toBe('string');
            expect(['excluded', 'parse-error', 'rejected']).toContain(e.effect);
          }
          for (const key of snapshot.keys()) expect(REASONS.has(snapshot.evaluate(key, {}).reason)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('random flag sets with JsonLogic-shaped targeting never throw, at compile or at evaluation', () => {
    fc.assert(
      fc.property(flagSet, context, (set, ctx) => {
        // round-trip through JSON text so "__proto__" keys are own properties, as they would be from a file
        const text = JSON.stringify(set);
        const { snapshot, errors } = compileFlagSet(text);
        const flagsIn = JSON.parse(text).flags as Record<string, unknown>;
        for (const key of snapshot.keys()) {
          expect(Object.prototype.hasOwnProperty.call(flagsIn, key)).toBe(true);
          const r = snapshot.evaluate(key, ctx, { defaultValue: 'dflt' as never });
          checkResult(r, snapshot.definition(key)!.variants, 'dflt');
          // explain compiles the general closures (with a trace): the same result as the fast path
          expect(snapshot.explain(key, ctx, { defaultValue: 'dflt' as never }).result).toEqual(r);
        }
        // every flag of the input is either compiled or has an issue that names it
        for (const key of Object.keys(flagsIn)) {
          if (!snapshot.has(key) && errors.every((e) => e.effect !== 'rejected')) expect(errors.some((e) => e.flagKey === key)).toBe(true);
        }
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: 700 },
    );
  });

  it('text with forbidden keys anywhere never reaches Object.prototype', () => {
    fc.assert(
      fc.property(fc.constantFrom('__proto__', 'constructor', 'prototype'), fc.constantFrom(0, 1, 2, 3, 4), (key, where) => {
        const payload = `{"${key}": {"polluted": "yes", "toString": "x"}}`;
        const texts = [
          `{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}, "targeting": {"if": [${payload}, "on"]}}}}`,
          `{"flags": {"f": {"state": "ENABLED", "variants": {"on": true}, "metadata": ${payload}}}}`,
          `{"$evaluators": {"e": ${payload}}, "flags": {"f": {"state": "ENABLED", "variants": {"on": true}, "targeting": {"$ref": "e"}}}}`,
          `{"flags": ${payload}}`,
          `{"metadata": ${payload}, "flags": {}}`,
        ];
        const { snapshot, errors } = compileFlagSet(texts[where]!);
        expect(errors.length).toBeGreaterThan(0);
        expect(errors.some((e) => formatIssue(e).includes(key))).toBe(true);
        snapshot.evaluateAll({});
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: 50 },
    );
  });
});
