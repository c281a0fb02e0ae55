// Generated evaluation (src/codegen.ts) against the compiled closures it stands in for: the same
// results, errors, reasons, budget stops and context reads for every rule and context, and no value
// of a flag set in the generated source but attribute names on the allow-list, read as `ctx.name`.
import fc from 'fast-check';
import { compileFlagSet, type BudgetExceededEvent, type EvaluateOptions, type EvaluationContext, type FlagSetDefinition, type FlagSetLimits, type JsonObject, type JsonValue } from '@rollgate/core';
import { generate, isNamed, MAX_NAMED_SOURCES, namedSources, sourceOf } from '../src/codegen';
import { compileDecision, DEFAULT_BUDGET } from '../src/compiler';
import { objectPrototypeSnapshot } from './helpers';

const VARIANTS = { on: 'ON', off: 'OFF', admin: 'A', true: 'T', '5': 'FIVE' };

/** The decision codegen.ts gets for a rule, undefined when the rule has an operator it has no template for. */
function decisionOf(rule: JsonValue) {
  try {
    return compileDecision(rule, 'f', (picked) => picked).decision;
  } catch {
    return undefined; // a rule the compiler refuses
  }
}

/** The same flag set compiled twice: with generated functions (the default) and with the closures only. */
function bothWays(set: FlagSetDefinition, limits?: Partial<FlagSetLimits>) {
  const events: Record<'generated' | 'closures', BudgetExceededEvent[]> = { generated: [], closures: [] };
  const generated = compileFlagSet(set, { limits, onBudgetExceeded: (e) => events.generated.push(e) });
  const closures = compileFlagSet(set, { limits, codegen: false, onBudgetExceeded: (e) => events.closures.push(e) });
  expect(generated.errors).toEqual(closures.errors);
  return { generated: generated.snapshot, closures: closures.snapshot, events };
}

const TENANTS = Array.from({ length: 12 }, (_, i) => `t${i}`);

describe('codegen: which rules get a generated function', () => {
  it.each<[string, JsonValue]>([
    ['the seed rule: ==, in a long list, a split', { if: [{ '==': [{ var: 'role' }, 'admin'] }, 'on', { in: [{ var: 'tenant' }, TENANTS] }, 'on', { fractional: [['on', 20], ['off', 80]] }] }],
    ['comparisons either way round, and/or/!/!!', { if: [{ and: [{ '<': [18, { var: 'age' }] }, { '!': { '!==': [{ var: 'plan' }, 'pro'] } }, { or: [{ '!!': [{ var: 'beta' }] }, { '>=': [{ var: 'n' }, 5] }] }] }, 'on', 'off'] }],
    ['in a short list, a constant in a context list, starts_with, ends_with', { if: [{ in: [{ var: 'c' }, ['DE', 'FR']] }, 'on', { in: ['beta', { var: 'groups' }] }, 'on', { starts_with: [{ var: 'e' }, 'x'] }, 'off', { ends_with: [{ var: 'e' }, '@x.io'] }, 'on'] }],
    ['a var naming the variant, nested ifs, a constant that is not a variant', { if: [{ var: 'x' }, { if: [{ var: 'y' }, { var: 'pick' }, 'nope'] }, null] }],
  ])('%s', (_what, rule) => {
    expect(decisionOf(rule)).toBeDefined();
  });

  it.each<[string, JsonValue]>([
    ['a dotted var', { if: [{ '==': [{ var: 'user.role' }, 'admin'] }, 'on', 'off'] }],
    ['sem_ver', { if: [{ sem_ver: [{ var: 'v' }, '>=', '1.0.0'] }, 'on', 'off'] }],
    ['$flagd.timestamp', { if: [{ '>': [{ var: '$flagd.timestamp' }, 0] }, 'on', 'off'] }],
    ['an iterator', { if: [{ some: [{ var: 'groups' }, { '==': [{ var: '' }, 'beta'] }] }, 'on', 'off'] }],
    ['a split on an explicit key', { fractional: [{ var: 'email' }, ['on', 1], ['off', 1]] }],
    ['two vars compared', { if: [{ '==': [{ var: 'a' }, { var: 'b' }] }, 'on', 'off'] }],
  ])('not %s (the closures evaluate it)', (_what, rule) => {
    expect(decisionOf(rule)).toBeUndefined();
  });
});

describe('codegen: the generated source', () => {
  it('holds no value of the flag set: strings, numbers, variant names and attribute names off the allow-list are slots k0, k1, …', () => {
    const hostile = '"]); globalThis["pwned"] = 1; /*\u2028*/ ("';
    const rule: JsonValue = {
      if: [
        { '==': [{ var: hostile }, `${hostile}x`] },
        'on',
        { in: [{ var: 'tenant' }, [hostile, ...TENANTS]] },
        'on',
        { '<': [{ var: 'n' }, 123456789] },
        { var: `*/${hostile}` },
        { fractional: [['on', 31337], ['off', 1]] },
      ],
    };
    const source = sourceOf(decisionOf(rule)!);
    for (const value of [hostile, 'pwned', '123456789', '31337', 'admin']) expect(source).not.toContain(value);
    // attribute names on the allow-list are the only strings of the rule in the source, each as a property read
    expect(source.match(/ctx\.\w+/g)?.sort()).toEqual(['ctx.n', 'ctx.targetingKey', 'ctx.tenant']);
    expect(source.replace(/ctx\.(n|tenant|targetingKey);/g, '')).not.toMatch(/tenant|\bn\b/);
    expect(sourceOf(decisionOf(rule)!, DEFAULT_BUDGET, false)).not.toContain('tenant');
    // only the fixed templates' own string literals
    const literals = new Set(source.match(/"[^"]*"/g));
    expect([...literals].sort()).toEqual(['"allocation"', '"function"', '"object"', '"steps"', '"string"', '"use strict"']);

    const { generated, closures } = bothWays({ flags: { f: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: rule } } });
    for (const ctx of [{ [hostile]: `${hostile}x` }, { tenant: hostile }, { n: 1 }, { targetingKey: 'u1' }]) expect(generated.evaluate('f', ctx)).toEqual(closures.evaluate('f', ctx));
    expect((globalThis as Record<string, unknown>).pwned).toBeUndefined();
  });

  it('is the same for rules of the same structure reading the same attributes, so one compiled factory serves them all', () => {
    const a = decisionOf({ if: [{ '==': [{ var: 'role' }, 'admin'] }, 'on', 'off'] })!;
    const b = decisionOf({ if: [{ '==': [{ var: 'role' }, 'owner'] }, 'off', 'on'] })!;
    const c = decisionOf({ if: [{ '==': [{ var: 'plan' }, 'enterprise'] }, 'off', 'on'] })!;
    expect(sourceOf(a)).toBe(sourceOf(b));
    // another attribute: another source, differing only in the name read
    expect(sourceOf(c)).not.toBe(sourceOf(a));
    expect(sourceOf(c).replace('ctx.plan', 'ctx.role')).toBe(sourceOf(a));
    // with slots only, one source per structure (what the flags past MAX_NAMED_SOURCES get)
    expect(sourceOf(a, DEFAULT_BUDGET, false)).toBe(sourceOf(c, DEFAULT_BUDGET, false));
  });
});

describe('codegen: attribute names written into the source', () => {
  // a rule that reads the attribute in four templates: ==, truth, `in` a context string or list, naming the variant
  const ruleReading = (name: string): JsonValue => ({
    if: [{ '==': [{ var: name }, 'admin'] }, 'on', { in: ['dm', { var: name }] }, 'admin', { '!!': [{ var: name }] }, { var: [name, 'off'] }, 'off'],
  });
  const ON_THE_LIST = ['role', 'tenant_id', '$x', '_', 'a1', 'A$_9', 'x'.repeat(64), 'class', 'if', 'default', 'await', 'yield', 'let', 'static', 'eval', 'arguments', 'new', 'this', 'null', 'true', 'ctx', 'k0', 'v', 'H', 'K', 'BAIL', 'steps', 'length', 'then'];
  const OFF_THE_LIST = ['0', '1a', 'a-b', 'a b', 'role ', ' role', 'role\n', 'a;b', 'a"b', "a'b", 'a\\b', 'a`b', 'a)b', 'a/*b', 'é', 'ü', 'a\u200bb', 'a\u2028b', 'x'.repeat(65), '_'.repeat(65),
    '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__', '__x', '__', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString'];

  it.each(ON_THE_LIST)('%j on the allow-list: read as ctx.name, compiled', (name) => {
    expect(isNamed(name)).toBe(true);
    const decision = decisionOf(ruleReading(name))!;
    const source = sourceOf(decision);
    expect(source.split(`v = ctx.${name};`)).toHaveLength(5); // the four reads
    expect(source).not.toContain('ctx[');
    expect(generate(decision, DEFAULT_BUDGET)).toBeInstanceOf(Function);
  });

  it.each(OFF_THE_LIST)('%j off the allow-list: read by a slot, the name nowhere in the source', (name) => {
    expect(isNamed(name)).toBe(false);
    const decision = decisionOf(ruleReading(name))!;
    const source = sourceOf(decision);
    expect(source).toBe(sourceOf(decision, DEFAULT_BUDGET, false)); // the all-slots source
    if (name !== '0') expect(source).not.toContain(name); // ("0" is in k0)
    expect(source.match(/v = ctx\[k\d+\];/g)).toHaveLength(4);
    expect(generate(decision, DEFAULT_BUDGET)).toBeInstanceOf(Function);
  });

  it('the empty name, a dotted path and the refused prototype segments never reach the generator', () => {
    expect(isNamed('')).toBe(false);
    for (const name of ['', 'a.b', '__proto__', 'constructor', 'prototype']) expect(decisionOf(ruleReading(name))).toBeUndefined();
  });

  it('own, inherited, getter, function, null-prototype and proxy contexts: the same reads in the same order and the same answers as the closures, named or not', () => {
    const names = ['role', 'then', 'length', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', '__lookupGetter__', 'a-b', 'é'];
    const flags: FlagSetDefinition['flags'] = {};
    for (const name of names) flags[name] = { state: 'ENABLED', variants: VARIANTS, defaultVariant: 'off', targeting: ruleReading(name) as JsonObject };
    const { generated, closures } = bothWays({ flags });
    for (const name of names) {
      const own = (value: unknown, proto: object | null = Object.prototype) => Object.defineProperty(Object.create(proto) as object, name, { value, enumerable: true, writable: true, configurable: true });
      class WithGetter {
        get [name]() {
          return 'admin';
        }
      }
      const contexts: object[] = [
        {},
        Object.create(null) as object,
        own('admin'),
        own('dmx'),
        own('on'),
        own(['dm']),
        own(''),
        own(0),
        own(null),
        own(() => 'admin'),
        own('admin', null),
        Object.create(own('admin')) as object, // inherited
        Object.create(Object.create(own('true'))) as object, // two levels up
        Object.create(own(() => 'admin')) as object, // an inherited function: the fallback
        new WithGetter(),
      ];
      for (const ctx of contexts) {
        expect(generated.evaluate(name, ctx as EvaluationContext)).toEqual(closures.evaluate(name, ctx as EvaluationContext));
        // every read the evaluation makes, as a proxy sees it
        const reads: Record<'generated' | 'closures', PropertyKey[]> = { generated: [], closures: [] };
        const answers = (['generated', 'closures'] as const).map((way) => {
          const proxy = new Proxy(ctx, {
            get(target, key, receiver) {
              reads[way].push(key);
              return Reflect.get(target, key, receiver) as unknown;
            },
          });
          return (way === 'generated' ? generated : closures).evaluate(name, proxy as EvaluationContext);
        });
        expect(answers[0]).toEqual(answers[1]);
        expect(reads.generated).toEqual(reads.closures);
        expect(reads.generated.length).toBeGreaterThan(0);
      }
    }
  });

  it('an attribute on Object.prototype itself (pollution) is read by both ways alike', () => {
    const set: FlagSetDefinition = { flags: { f: { state: 'ENABLED', variants: VARIANTS, defaultVariant: 'off', targeting: ruleReading('role') as JsonObject } } };
    const { generated, closures } = bothWays(set);
    Object.defineProperty(Object.prototype, 'role', { value: 'admin', configurable: true, writable: true, enumerable: false });
    try {
      expect(generated.evaluate('f', {})).toMatchObject({ variant: 'on' });
      expect(closures.evaluate('f', {})).toMatchObject({ variant: 'on' });
      expect(generated.evaluate('f', Object.create(null) as EvaluationContext)).toEqual(closures.evaluate('f', Object.create(null) as EvaluationContext));
    } finally {
      delete (Object.prototype as Record<string, unknown>).role;
    }
    expect(generated.evaluate('f', {})).toEqual(closures.evaluate('f', {}));
  });

  it(`a compilation writes names into at most ${MAX_NAMED_SOURCES} distinct sources; the flags past that read by slots and answer the same`, () => {
    const named = namedSources();
    const count = MAX_NAMED_SOURCES + 20;
    const fns = Array.from({ length: count }, (_, i) => generate(decisionOf({ if: [{ '==': [{ var: `a${i}` }, 'admin'] }, 'on', 'off'] })!, DEFAULT_BUDGET, named)!);
    expect(named.sources.size).toBe(MAX_NAMED_SOURCES);
    fns.forEach((fn, i) => {
      expect(String(fn).includes(`v = ctx.a${i};`)).toBe(i < MAX_NAMED_SOURCES);
      expect(String(fn).includes('v = ctx[k')).toBe(i >= MAX_NAMED_SOURCES);
      expect([fn({ [`a${i}`]: 'admin' }), fn({ [`a${i + 1}`]: 'admin' })]).toEqual(['on', 'off']);
    });
    // a source already used in this compilation is not counted again; a rule with no name to write is never counted
    expect(String(generate(decisionOf({ if: [{ '==': [{ var: 'a0' }, 'x'] }, 'off', 'on'] })!, DEFAULT_BUDGET, named))).toContain('v = ctx.a0;');
    expect(named.sources.size).toBe(MAX_NAMED_SOURCES);

    // the same through compileFlagSet
    const flags: FlagSetDefinition['flags'] = {};
    for (let i = 0; i < count; i++) flags[`f${i}`] = { state: 'ENABLED', variants: VARIANTS, defaultVariant: 'off', targeting: { if: [{ '==': [{ var: `a${i}` }, 'admin'] }, 'on', 'off'] } };
    const { generated, closures } = bothWays({ flags });
    for (let i = 0; i < count; i += 7) {
      for (const ctx of [{ [`a${i}`]: 'admin' }, { [`a${i}`]: 'x' }, {}]) expect(generated.evaluate(`f${i}`, ctx)).toEqual(closures.evaluate(`f${i}`, ctx));
      expect(generated.evaluate(`f${i}`, { [`a${i}`]: 'admin' })).toMatchObject({ variant: 'on', reason: 'TARGETING_MATCH' });
    }
  });
});

describe('codegen: the same answers as the closures', () => {
  const protoBefore = objectPrototypeSnapshot();
  afterAll(() => expect(objectPrototypeSnapshot()).toEqual(protoBefore));

  // on the allow-list (read as ctx.name) and off it (slots), Object.prototype's names among the latter
  const KEYS = ['role', 'tenant', 'n', 'email', 'groups', 'pick', 'targetingKey', 'absent', 'toString', 'length', '0', 'valueOf', 'class', 'a-b'];
  const shortString = fc.constantFrom('admin', 'on', 'true', '5', '', 'beta', 't3', 'x@x.io', 'abc', '10');
  const constant: fc.Arbitrary<JsonValue> = fc.oneof(
    shortString,
    fc.constantFrom<JsonValue>(5, 0, -1, 2.5, true, false, null, 'x'.repeat(70), [], {}, ['beta'], { a: 1 }),
  );
  const read: fc.Arbitrary<JsonValue> = fc.oneof(
    fc.constantFrom(...KEYS).map((k) => ({ var: k })),
    fc.tuple(fc.constantFrom(...KEYS), constant).map(([k, fb]) => ({ var: [k, fb] })),
    fc.constantFrom<JsonValue>({ var: 'role.length' }, { var: '' }, { var: '$flagd.flagKey' }), // no template: the closures
  );
  const list = fc.oneof(fc.array(fc.oneof(shortString, fc.constantFrom<JsonValue>(5, null, true)), { maxLength: 4 }), fc.constant<JsonValue>([...TENANTS, 'admin', 5, null]));
  const operand = fc.oneof({ weight: 3, arbitrary: read }, { weight: 2, arbitrary: constant });

  const condition: fc.Arbitrary<JsonValue> = fc.letrec<{ c: JsonValue }>((tie) => ({
    c: fc.oneof(
      { depthSize: 'small' },
      fc.tuple(fc.constantFrom('==', '===', '!=', '!==', '<', '<=', '>', '>='), operand, operand).map(([op, a, b]) => ({ [op]: [a, b] })),
      fc.tuple(read, list).map(([a, l]) => ({ in: [a, l] })),
      fc.tuple(constant, read).map(([c, a]) => ({ in: [c, a] })),
      fc.tuple(fc.constantFrom('starts_with', 'ends_with'), read, fc.oneof(shortString, constant)).map(([op, a, b]) => ({ [op]: [a, b] })),
      read,
      constant,
      fc.tuple(fc.constantFrom('!', '!!'), tie('c')).map(([op, c]) => ({ [op]: [c] })),
      fc.tuple(fc.constantFrom('and', 'or'), fc.array(tie('c'), { minLength: 1, maxLength: 3 })).map(([op, cs]) => ({ [op]: cs })),
      fc.constantFrom<JsonValue>({ sem_ver: [{ var: 'role' }, '>=', '1.0.0'] }, { '==': [{ cat: [{ var: 'role' }, 'x'] }, 'adminx'] }, { missing: ['role'] }), // no template
    ),
  })).c;

  const split = fc.oneof(
    fc.array(fc.tuple(fc.constantFrom('on', 'off', 'admin', 'nope', 5), fc.integer({ min: 0, max: 5 })), { minLength: 1, maxLength: 3 }).map((buckets) => ({ fractional: buckets })),
    fc.constant<JsonValue>({ fractional: [{ var: 'email' }, ['on', 1], ['off', 1]] }), // no template
  );

  const decision: fc.Arbitrary<JsonValue> = fc.letrec<{ d: JsonValue }>((tie) => ({
    d: fc.oneof(
      { depthSize: 'small' },
      fc.constantFrom<JsonValue>('on', 'off', 'admin', 'true', null, 'nope', 5, true),
      read,
      split,
      fc.tuple(fc.array(fc.tuple(condition, tie('d')), { minLength: 1, maxLength: 3 }), fc.option(tie('d'), { nil: undefined })).map(([branches, otherwise]) => ({
        if: [...branches.flat(), ...(otherwise === undefined ? [] : [otherwise])],
      })),
    ),
  })).d;

  const value: fc.Arbitrary<unknown> = fc.oneof(
    shortString,
    fc.constantFrom('x'.repeat(65), 'a'.repeat(300), 'b'.repeat(5000), 'é🙂', 5, 0, -3, 18, NaN, true, false, null, undefined, [], ['beta'], ['beta', 'x', 5], { a: 1 }, () => 'admin'),
    fc.constant(Array.from({ length: 3000 }, (_, i) => `g${i}`)),
  );
  const entries = fc.array(fc.tuple(fc.constantFrom(...KEYS), value), { maxLength: 6 });
  const withEntries = (ctx: Record<string, unknown>, list: [string, unknown][]) => {
    for (const [k, v] of list) Object.defineProperty(ctx, k, { value: v, enumerable: true, writable: true, configurable: true });
    return ctx;
  };
  // own properties on a plain object (mostly), on a null-prototype one, or over a prototype holding more (inherited reads)
  const context: fc.Arbitrary<EvaluationContext> = fc
    .tuple(entries, fc.constantFrom('plain', 'plain', 'plain', 'null', 'inherited'), entries)
    .map(([own, kind, inherited]) => {
      const proto = kind === 'null' ? null : kind === 'inherited' ? withEntries({}, inherited) : Object.prototype;
      return withEntries(Object.create(proto) as Record<string, unknown>, own);
    });
  // the default budget, and small ones that long strings and lists in the context run out of
  const limits = fc.constantFrom<Partial<FlagSetLimits> | undefined>(undefined, { maxEvaluationSteps: 400, maxEvaluationBytes: 4000 }, { maxEvaluationSteps: 120, maxEvaluationBytes: 2000 });

  it('random rules and contexts: evaluate, evaluateAll and onBudgetExceeded agree', () => {
    let templated = 0;
    let runs = 0;
    fc.assert(
      fc.property(fc.array(decision, { minLength: 1, maxLength: 3 }), fc.array(context, { minLength: 1, maxLength: 4 }), limits, (rules, contexts, lim) => {
        runs++;
        const decision = decisionOf(rules[0]!);
        if (decision !== undefined) {
          templated++;
          // a template that produced bad source would fall back to the closures silently: it must not
          expect(generate(decision, DEFAULT_BUDGET)).toBeInstanceOf(Function);
        }
        const flags: FlagSetDefinition['flags'] = {};
        rules.forEach((rule, i) => {
          // {"if": [rule]} is the rule itself, written as an object (targeting must be one)
          flags[`f${i}`] = { state: 'ENABLED', variants: VARIANTS, defaultVariant: i === 1 ? undefined : 'off', targeting: { if: [rule] } };
        });
        const { generated, closures, events } = bothWays({ flags }, lim);
        for (const ctx of contexts) {
          expect(generated.evaluateAll(ctx)).toEqual(closures.evaluateAll(ctx));
          for (const key of generated.keys()) {
            // without options too: evaluate's own path for generated code (snapshot.ts, generatedResult)
            for (const options of [undefined, { defaultValue: 'dflt' }, { defaultValue: 'dflt', type: 'string' }, { defaultValue: false, type: 'boolean' }] as (EvaluateOptions | undefined)[]) {
              expect(generated.evaluate(key, ctx, options)).toEqual(closures.evaluate(key, ctx, options));
            }
          }
        }
        expect(events.generated).toEqual(events.closures);
      }),
      { numRuns: 1_500 },
    );
    // the comparison means something only if most rules do get a generated function
    expect(templated / runs).toBeGreaterThan(0.4);
  });

  it('random rules and long context values: they charge the budget exactly as the closures do (the smallest budget that lets an evaluation finish is the same)', () => {
    const long = fc.oneof(
      fc.integer({ min: 60, max: 60_000 }).map((n) => 'r'.repeat(n)),
      fc.integer({ min: 0, max: 20_000 }).map((n) => Array.from({ length: n }, (_, i) => (i === n - 1 ? 'beta' : i))),
      shortString,
    );
    const longContext = fc.record({ role: long, tenant: long, email: long, groups: long, pick: long, targetingKey: long }, { requiredKeys: ['role', 'email', 'groups'] });
    /** The smallest limit of one resource (the other unbounded) at which the flag compiles and its evaluation is not stopped. */
    const smallest = (rule: JsonValue, ctx: EvaluationContext, resource: 'maxEvaluationSteps' | 'maxEvaluationBytes', codegen: boolean): number => {
      const set: FlagSetDefinition = { flags: { f: { state: 'ENABLED', variants: VARIANTS, defaultVariant: 'off', targeting: { if: [rule] } } } };
      const finishes = (n: number) => {
        const limits = { maxEvaluationSteps: 1e9, maxEvaluationBytes: 1e9, [resource]: n };
        const { snapshot, errors } = compileFlagSet(set, { limits, codegen });
        return errors.length === 0 && !/budget/.test(snapshot.evaluate('f', ctx).errorMessage ?? '');
      };
      let lo = 0; // does not finish (nothing runs on a budget of 0)
      let hi = 1 << 24;
      if (!finishes(hi)) return Infinity;
      while (hi - lo > 1) {
        const mid = (lo + hi) >>> 1;
        if (finishes(mid)) hi = mid;
        else lo = mid;
      }
      return hi;
    };
    // every template that charges, on the keys the long context fills, chained so that charges add up
    const charging = fc.oneof(
      fc.constantFrom('role', 'email').map((k) => ({ '==': [{ var: k }, 'admin'] })),
      fc.constantFrom('role', 'email').map((k) => ({ '<': ['m', { var: k }] })),
      fc.constant({ in: [{ var: 'tenant' }, TENANTS] }),
      fc.constant({ in: [{ var: 'tenant' }, ['t1', 'x'.repeat(80)]] }),
      fc.constantFrom('groups', 'email').map((k) => ({ in: ['beta', { var: k }] })),
      fc.constantFrom('groups', 'email').map((k) => ({ in: ['x'.repeat(80), { var: k }] })),
      fc.constantFrom('role', 'email').map((k) => ({ ends_with: [{ var: k }, 'x'.repeat(70)] })),
      fc.constant({ '!': { '==': [{ var: 'role' }, 'r'] } }),
    );
    const chain = fc
      .tuple(fc.array(fc.oneof(charging, fc.array(charging, { minLength: 2, maxLength: 3 }).map((cs) => ({ and: cs }))), { minLength: 1, maxLength: 5 }), fc.constantFrom<JsonValue>('off', { fractional: [['on', 1], ['off', 1]] }))
      .map(([conditions, otherwise]) => ({ if: [...conditions.flatMap((c) => [c, 'on']), otherwise] }) as JsonValue);
    fc.assert(
      fc.property(
        fc.oneof(chain, decision.filter((rule) => decisionOf(rule) !== undefined)),
        longContext.map((ctx) => ctx as EvaluationContext),
        (rule, ctx) => {
          for (const resource of ['maxEvaluationSteps', 'maxEvaluationBytes'] as const) {
            expect(smallest(rule, ctx, resource, true)).toBe(smallest(rule, ctx, resource, false));
          }
        },
      ),
      { numRuns: 40 },
    );
  }, 120_000); // ~100 compilations per run

  it('a context string long enough to exhaust the budget stops the evaluation where the closures stop it', () => {
    const rule: JsonObject = { if: [{ '==': [{ var: 'role' }, 'admin'] }, 'on', { in: [{ var: 'tenant' }, TENANTS] }, 'on', { fractional: [['on', 20], ['off', 80]] }] };
    const { generated, closures, events } = bothWays({ flags: { f: { state: 'ENABLED', variants: VARIANTS, defaultVariant: 'off', targeting: rule } } }, { maxEvaluationSteps: 300, maxEvaluationBytes: 1_000_000 });
    const contexts: EvaluationContext[] = [{ role: 'r'.repeat(10_000) }, { role: 'r'.repeat(4_000), tenant: 't'.repeat(1_000) }, { targetingKey: 'k'.repeat(8_000) }, { tenant: 'x', targetingKey: 7 as never }];
    for (const ctx of contexts) {
      const r = generated.evaluate('f', ctx, { defaultValue: false });
      expect(r).toEqual(closures.evaluate('f', ctx, { defaultValue: false }));
    }
    expect(generated.evaluate('f', { role: 'r'.repeat(10_000) })).toMatchObject({ reason: 'ERROR', errorCode: 'GENERAL' });
    expect(events.generated).toEqual(events.closures);
    expect(events.generated).toHaveLength(1);
  });

  it('an object as targetingKey (the one input it hands back) is evaluated by the closures', () => {
    // (a small budget, which turning a long list into text runs out of)
    const { generated, closures } = bothWays({ flags: { f: { state: 'ENABLED', variants: VARIANTS, defaultVariant: 'off', targeting: { fractional: [['on', 1], ['off', 1]] } } } }, { maxEvaluationSteps: 1_000 });
    for (const targetingKey of [{ id: 1 }, ['a', 'b'], Array.from({ length: 5_000 }, () => 'x')]) {
      expect(generated.evaluate('f', { targetingKey } as never)).toEqual(closures.evaluate('f', { targetingKey } as never));
    }
    expect(generated.evaluate('f', { targetingKey: Array.from({ length: 5_000 }, () => 'x') } as never)).toMatchObject({ reason: 'ERROR' });
  });

  it('a getter in the context that evaluates a flag of the same snapshot gets its own answer', () => {
    const set: FlagSetDefinition = {
      flags: {
        outer: { state: 'ENABLED', variants: VARIANTS, defaultVariant: 'off', targeting: { if: [{ '==': [{ var: 'role' }, 'admin'] }, 'on', 'off'] } },
        inner: { state: 'ENABLED', variants: VARIANTS, defaultVariant: 'off', targeting: { if: [{ '==': [{ var: 'plan' }, 'pro'] }, 'admin', 'off'] } },
      },
    };
    const { generated, closures } = bothWays(set);
    for (const snapshot of [generated, closures]) {
      const ctx = {
        plan: 'pro',
        get role() {
          return snapshot.evaluate('inner', { plan: 'pro' }).variant; // 'admin'
        },
      };
      expect(snapshot.evaluate('outer', ctx)).toMatchObject({ variant: 'on', reason: 'TARGETING_MATCH' });
    }
  });
});

describe('codegen: where new Function is refused', () => {
  it('falls back to the closures (as under a Content-Security-Policy without unsafe-eval)', () => {
    jest.isolateModules(() => {
      // a fresh copy of the module, whose schema validators (ajv, also new Function) compile first
      const core = require('../src') as typeof import('../src');
      const rule = (key: string): JsonObject => ({ if: [{ '==': [{ var: key }, 'admin'] }, 'on', { fractional: [['on', 1], ['off', 1]] }] });
      expect(core.compileFlagSet({ flags: { warm: { state: 'ENABLED', variants: VARIANTS, defaultVariant: 'off' } } }).errors).toEqual([]);
      const original = globalThis.Function;
      let refusals = 0;
      globalThis.Function = function refused() {
        refusals++;
        throw new EvalError('Code generation from strings disallowed for this context');
      } as unknown as FunctionConstructor;
      let answers: unknown[];
      try {
        const set: FlagSetDefinition = { flags: { a: { state: 'ENABLED', variants: VARIANTS, defaultVariant: 'off', targeting: rule('role') }, b: { state: 'ENABLED', variants: VARIANTS, defaultVariant: 'off', targeting: { if: [{ '<': [{ var: 'n' }, 3] }, 'on', 'off'] } } } };
        const { snapshot, errors } = core.compileFlagSet(set);
        expect(errors).toEqual([]);
        answers = [snapshot.evaluate('a', { role: 'admin' }), snapshot.evaluate('a', { targetingKey: 'u1' }), snapshot.evaluate('b', { n: 1 })];
      } finally {
        globalThis.Function = original;
      }
      expect(refusals).toBe(1); // tried once, not on every flag
      expect(answers.map((r) => (r as { variant: string }).variant)).toEqual(['on', expect.any(String), 'on']);
    });
  });
});
