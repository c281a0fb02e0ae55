import fc from 'fast-check';
import { compileFlagSet, DEFAULT_LIMITS, formatIssue, type BudgetExceededEvent, type EvaluationContext, type FlagSetDefinition, type JsonValue } from '@rollgate/core';
import { compileDecision, compileRule, DEFAULT_BUDGET, newEnv, type Outcome } from '../src/compiler';
import { BudgetExceeded, CONTEXT_SIZE, CONTEXT_STRING, sizeOf } from '../src/cost';
import { BOOL_FLAG } from './helpers';

// Issue 12: no flag can stall or crash a server. A flag's worst-case evaluation cost is bounded at
// validation (refused over the limit, with the path of the node), and every evaluation runs under
// a step and allocation budget that stops it with GENERAL instead of stalling or exhausting memory.

const OK = { ...BOOL_FLAG, defaultVariant: 'on' };

function oneFlag(targeting: JsonValue, extra: Partial<FlagSetDefinition> = {}): string {
  return JSON.stringify({ ...extra, flags: { x: { ...BOOL_FLAG, targeting }, ok: OK } });
}

/**
 * Iterating operators nested over constant lists of `n` elements, `depth` deep, none of which
 * stops early: before the cost bound, 40 elements 5 deep (757 bytes) took 0.8 s per evaluation.
 */
function nestedIterations(n: number, depth: number): JsonValue {
  const list = Array.from({ length: n }, (_, i) => i);
  const ops = ['map', 'all', 'map', 'all', 'map'];
  let rule: JsonValue = { '>=': [{ var: '' }, 0] };
  for (let i = 0; i < depth; i++) rule = { [ops[i % ops.length]!]: [list, rule] };
  return rule;
}

describe('the two bombs of issue 12 are refused at validation', () => {
  it('nested map/all over constant lists (a flag of about 1 KB whose evaluation took seconds): refused with the path of the node over the limit', () => {
    const text = oneFlag({ if: [nestedIterations(60, 5), 'on', 'off'] });
    expect(text.length).toBeLessThan(2_000);
    const { snapshot, errors } = compileFlagSet(text);
    expect(errors).toHaveLength(1);
    const [issue] = errors;
    expect(issue).toMatchObject({ flagKey: 'x', effect: 'parse-error' });
    // the innermost node whose worst case alone is over the limit: the third level of nesting
    expect(issue!.path).toBe('flags.x.targeting.if[0].map[1].all[1].map');
    expect(issue!.message).toMatch(/^worst-case cost is [\d,]+ steps per evaluation, above the limit of 100,000 \(map evaluates its rule once per element of a list of 60 elements\); /);
    expect(issue!.message).toContain('test membership with "in" against a constant list, which is a set lookup, not a loop');
    // the flag is kept but fails closed, the others serve
    expect(snapshot.evaluate('x', {}, { defaultValue: true })).toMatchObject({ value: true, reason: 'ERROR', errorCode: 'PARSE_ERROR' });
    expect(snapshot.evaluate('ok').value).toBe(true);
  });

  it('reduce + merge doubling an accumulator (a 299-byte flag that exhausted the heap): refused at the reduce', () => {
    const targeting = { if: [{ var: 'beta' }, 'on', { reduce: [Array(30).fill(1), { merge: [{ var: 'accumulator' }, { var: 'accumulator' }] }, [1]] }, 'on', 'off'] };
    const text = JSON.stringify({ flags: { x: { state: 'ENABLED', variants: { on: true, off: false }, targeting } } });
    expect(text.length).toBeLessThanOrEqual(299);
    const { snapshot, errors } = compileFlagSet(text);
    expect(errors.map(formatIssue)).toEqual([
      'flags.x.targeting.if[2].reduce: worst-case cost is 1.2×10^13 steps per evaluation, above the limit of 100,000 ' +
        '(its accumulator is used 2 times in its next value, so it can grow 2× on each element of a list of 30 elements); ' +
        'use the accumulator at most once in its next value, so that it grows by addition, not multiplication',
    ]);
    expect(snapshot.evaluate('x', { beta: false }, { defaultValue: false })).toMatchObject({ value: false, errorCode: 'PARSE_ERROR' });
  });

  it('the same growth through strings (cat) or nested arrays is refused too, however it is consumed', () => {
    const thirty = Array(30).fill(1);
    const cases: JsonValue[] = [
      { '==': [{ reduce: [thirty, { cat: [{ var: 'accumulator' }, { var: 'accumulator' }] }, 'x'] }, 'x'] },
      // [acc, acc] shares memory, but turning it into a string expands it 2^30 times
      { cat: [{ reduce: [thirty, [{ var: 'accumulator' }, { var: 'accumulator' }], [1]] }] },
      { in: ['x', { reduce: [thirty, { merge: [{ var: 'accumulator' }, { var: 'accumulator' }, 1] }, []] }] },
    ];
    for (const rule of cases) {
      const { errors } = compileFlagSet(oneFlag({ if: [rule, 'on', 'off'] }));
      expect(errors).toHaveLength(1);
      expect(errors[0]!.path).toMatch(/^flags\.x\.targeting\.if\[0\]\..*reduce$/);
      expect(errors[0]!.message).toContain('its accumulator is used 2 times in its next value');
    }
  });

  it('constant folding is costed before it runs: a string built from $refs at compile time is refused, not built', () => {
    // 40 references to a 100,000-character evaluator: folded, that would be a 4-million-character string
    const input = {
      $evaluators: { big: 'x'.repeat(100_000) },
      flags: { x: { ...BOOL_FLAG, targeting: { if: [{ in: ['y', { cat: Array.from({ length: 40 }, () => ({ $ref: 'big' })) }] }, 'on', 'off'] } }, ok: OK },
    };
    const { snapshot, errors } = compileFlagSet(input);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ path: 'flags.x.targeting.if[0].in[1].cat', effect: 'parse-error' });
    expect(errors[0]!.message).toMatch(/^may build a string of 4,000,000 characters, above the limit of 500,000/);
    expect(snapshot.evaluate('ok').value).toBe(true);
  });

  it('an object written as a value may have at most 256 keys (testing it for truth lists them on every evaluation)', () => {
    const wide = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i]));
    const { errors } = compileFlagSet({ flags: { x: { ...BOOL_FLAG, targeting: { if: [{ all: [[1, 2, 3], wide] }, 'on', 'off'] } } } });
    expect(errors.map(formatIssue)).toEqual(['flags.x.targeting.if[0].all[1]: an object used as a value has 300 keys, above the limit of 256; use a list and "in" instead']);
  });

  it('a costly rule inside a shared evaluator is reported on every flag that uses it, at its place in that flag', () => {
    const { errors } = compileFlagSet({
      $evaluators: { heavy: nestedIterations(60, 4) as never },
      flags: { a: { ...BOOL_FLAG, targeting: { if: [{ $ref: 'heavy' }, 'on'] } }, b: { ...BOOL_FLAG, targeting: { and: [true, { $ref: 'heavy' }] } } },
    });
    expect(errors.map((e) => [e.flagKey, e.path])).toEqual([
      ['a', 'flags.a.targeting.if[0].all[1].map'],
      ['b', 'flags.b.targeting.and[1].all[1].map'],
    ]);
  });
});

describe('realistic flags pass the static bound', () => {
  const tenants = (n: number) => Array.from({ length: n }, (_, i) => `tenant-${String(i).padStart(5, '0')}`);

  it('an "in" over a constant list is a set lookup: 10,000 tenants cost what 50 cost', () => {
    const rule = (list: string[]): JsonValue => ({ if: [{ in: [{ var: 'tenant' }, list] }, 'on', { fractional: [['on', 20], ['off', 80]] }] });
    expect(compileRule(rule(tenants(10_000)), 'f').maxSteps).toBe(compileRule(rule(tenants(50)), 'f').maxSteps);
    const { snapshot, errors } = compileFlagSet({ flags: { f: { ...BOOL_FLAG, targeting: rule(tenants(10_000)) } } });
    expect(errors).toEqual([]);
    expect(snapshot.evaluate('f', { tenant: 'tenant-09999' }).value).toBe(true);
  });

  it('the shapes flags are written in compile without issues and stay far below the limits', () => {
    const rules: JsonValue[] = [
      { fractional: [['a', 25], ['b', 25], ['c', 25], ['d', 25]] },
      { fractional: [{ cat: [{ var: '$flagd.flagKey' }, { var: 'tenant' }] }, ['on', 10], ['off', 90]] },
      { if: [{ sem_ver: [{ var: 'appVersion' }, '>=', '2.1.0'] }, 'on', { ends_with: [{ var: 'email' }, '@example.com'] }, 'on', 'off'] },
      { if: [{ some: [{ var: 'groups' }, { in: [{ var: '' }, ['beta', 'staff']] }] }, 'on', 'off'] },
      { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { in: [{ var: 'tenant' }, { var: 'allowedTenants' }] }, 'on', 'off'] },
      { if: [{ '>': [{ reduce: [{ var: 'cart.items' }, { '+': [{ var: 'accumulator' }, { var: 'current.price' }] }, 0] }, 100] }, 'on', 'off'] },
      { if: [{ in: ['vip', { reduce: [{ var: 'groups' }, { cat: [{ var: 'accumulator' }, ',', { var: 'current' }] }, ''] }] }, 'on', 'off'] },
      { if: [{ all: [{ map: [{ var: 'users' }, { var: 'name' }] }, { starts_with: [{ var: '' }, 'a'] }] }, 'on', 'off'] },
      { if: [{ missing_some: [1, ['email', 'phone']] }, 'off', { '<': [0, { var: 'age' }, 120] }, 'on'] },
      { if: [{ or: tenants(300).map((t) => ({ '==': [{ var: 'tenant' }, t] })) }, 'on', 'off'] },
    ];
    for (const rule of rules) {
      const { errors } = compileFlagSet({ flags: { f: { ...BOOL_FLAG, targeting: { if: [rule, 'on', 'off'] } } } });
      expect(errors).toEqual([]);
      const { maxSteps, maxBytes } = compileRule(rule, 'f');
      expect(maxSteps).toBeLessThan(DEFAULT_LIMITS.maxEvaluationSteps / 2);
      expect(maxBytes).toBeLessThan(DEFAULT_LIMITS.maxEvaluationBytes / 2);
    }
  });

  it('limits are options: a smaller step limit refuses what the default accepts', () => {
    const input = { flags: { f: { ...BOOL_FLAG, targeting: { if: [{ some: [{ var: 'groups' }, { in: [{ var: '' }, ['beta', 'staff']] }] }, 'on', 'off'] } } } };
    expect(compileFlagSet(input).errors).toEqual([]);
    const { errors } = compileFlagSet(input, { limits: { maxEvaluationSteps: 1_000 } });
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/above the limit of 1,000 \(some evaluates its rule once per element of a list of up to 2,050 elements\) \(a context is assumed to be at most 4,096 characters of JSON\)/);
  });
});

describe('the run-time budget stops an evaluation with GENERAL, never an exception', () => {
  const groupsFlag = { flags: { g: { ...BOOL_FLAG, targeting: { if: [{ some: [{ var: 'groups' }, { in: [{ var: '' }, ['beta', 'staff']] }] }, 'on', 'off'] } }, ok: OK } };
  const huge: EvaluationContext = { targetingKey: 'u', groups: Array.from({ length: 100_000 }, (_, i) => `g${i}`) };

  it('a flag that passed validation, given a context far larger than assumed, answers GENERAL with the default', () => {
    const { snapshot, errors } = compileFlagSet(groupsFlag);
    expect(errors).toEqual([]);
    const r = snapshot.evaluate('g', huge, { defaultValue: true });
    expect(r).toMatchObject({ value: true, reason: 'ERROR', errorCode: 'GENERAL' });
    expect(r.variant).toBeUndefined();
    expect(r.errorMessage).toBe(
      'flag "g": evaluation stopped: it went over its budget of 100,000 steps per evaluation (the context holds larger lists or strings than the flag was validated for); the default value is served',
    );
    expect(snapshot.evaluateAll(huge).map((x) => [x.flagKey, x.errorCode])).toEqual([['g', 'GENERAL'], ['ok', undefined]]);
    const explained = snapshot.explain('g', huge);
    expect(explained.result.errorCode).toBe('GENERAL');
    expect(explained.summary).toContain('went over its budget');
    // the same flag still answers normally for an ordinary context
    expect(snapshot.evaluate('g', { groups: ['x', 'staff'] })).toMatchObject({ value: true, reason: 'TARGETING_MATCH' });
  });

  it('stops on allocation too: reading a huge context string', () => {
    const { snapshot } = compileFlagSet({ flags: { s: { ...BOOL_FLAG, targeting: { if: [{ in: ['needle', { var: 'blob' }] }, 'on', 'off'] } } } });
    const r = snapshot.evaluate('s', { blob: 'x'.repeat(600_000) }, { defaultValue: true });
    expect(r).toMatchObject({ value: true, errorCode: 'GENERAL' });
    expect(r.errorMessage).toContain('budget of 1,000,000 bytes allocated');
  });

  it('onBudgetExceeded hears of each flag once per snapshot, and what it throws is ignored', () => {
    const events: BudgetExceededEvent[] = [];
    const { snapshot } = compileFlagSet(groupsFlag, { onBudgetExceeded: (e) => events.push(e) });
    snapshot.evaluate('g', huge);
    snapshot.evaluateAll(huge);
    snapshot.explain('g', huge);
    expect(events).toEqual([{ flagKey: 'g', resource: 'steps', limit: 100_000, message: snapshot.evaluate('g', huge).errorMessage }]);
    // a new snapshot (the next version of the flag set) reports again
    const next = compileFlagSet(groupsFlag, { onBudgetExceeded: (e) => events.push(e) }).snapshot;
    next.evaluate('g', huge);
    expect(events).toHaveLength(2);

    const throwing = compileFlagSet(groupsFlag, {
      onBudgetExceeded: () => {
        throw new Error('logger down');
      },
    }).snapshot;
    expect(throwing.evaluate('g', huge, { defaultValue: false })).toMatchObject({ value: false, errorCode: 'GENERAL' });
  });

  it('a targeting that builds a string longer than the limit from a huge context is stopped before the string is used', () => {
    const { snapshot, errors } = compileFlagSet({ flags: { c: { ...BOOL_FLAG, targeting: { if: [{ '==': [{ cat: [{ var: 'a' }, { var: 'a' }] }, 'x'] }, 'on', 'off'] } } } });
    expect(errors).toEqual([]);
    expect(snapshot.evaluate('c', { a: 'y'.repeat(300_000) })).toMatchObject({ errorCode: 'GENERAL' });
  });

  it('a targeting result that is a huge string is not looked up as a variant name, and the message stays short', () => {
    const { snapshot } = compileFlagSet({ flags: { v: { ...BOOL_FLAG, targeting: { var: 'name' } } } });
    const r = snapshot.evaluate('v', { name: 'n'.repeat(100_000) });
    expect(r.errorCode).toBe('GENERAL');
    expect(r.errorMessage!.length).toBeLessThan(300);
  });
});

// ---- property: what passes validation stays within the budget -----------------------------------

const CONTEXT_KEYS = ['role', 'tenant', 'email', 'appVersion', 'groups', 'items', 'n', 'user', 'targetingKey'];
const ITEM_PATHS = ['', 'current', 'accumulator', 'current.price', 'name', 'price', '0'];
const STRINGS = ['admin', 'beta', 'staff', 'eu', 'a@example.com', '@example.com', '2.1.0', '', 'x', 'on', 'off'];

const leaf: fc.Arbitrary<JsonValue> = fc.oneof(fc.integer({ min: -3, max: 120 }), fc.constantFrom<JsonValue>(...STRINGS), fc.boolean(), fc.constant(null));
const constantList: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.array(leaf, { maxLength: 8 }),
  fc.integer({ min: 0, max: 400 }).map((n) => Array.from({ length: n }, (_, i) => (i % 3 === 0 ? i : `t${i}`))),
);
const varRule: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.constantFrom(...CONTEXT_KEYS, ...ITEM_PATHS, '$flagd.flagKey').map((p) => ({ var: p })),
  fc.tuple(fc.constantFrom(...CONTEXT_KEYS, ...ITEM_PATHS), leaf).map(([p, d]) => ({ var: [p, d] })),
);
const OPERATORS = ['if', 'and', 'or', '!', '!!', '==', '!=', '===', '<', '<=', '>', '+', '-', '*', '%', 'min', 'max', 'in', 'cat', 'substr', 'merge', 'missing', 'missing_some', 'starts_with', 'ends_with', 'sem_ver', 'fractional'];
const ITERATORS = ['map', 'filter', 'all', 'some', 'none'];

/** Targeting trees from the supported operators, iterating ones (map, reduce, …) and list builders (merge, cat) included. */
const { rule } = fc.letrec<{ rule: JsonValue; list: JsonValue }>((tie) => ({
  rule: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    varRule,
    fc.tuple(fc.constantFrom(...OPERATORS), fc.array(tie('rule'), { minLength: 1, maxLength: 4 })).map(([op, args]) => ({ [op]: args }) as JsonValue),
    fc.tuple(fc.constantFrom(...ITERATORS), tie('list'), tie('rule')).map(([op, source, body]) => ({ [op]: [source, body] }) as JsonValue),
    fc.tuple(tie('list'), tie('rule'), tie('rule')).map(([source, body, initial]) => ({ reduce: [source, body, initial] })),
  ),
  list: fc.oneof(constantList, varRule, tie('rule')),
}));

/** A realistic context: within the assumption of the static bound (JSON ≤ CONTEXT_SIZE, strings ≤ CONTEXT_STRING). */
const shortString = fc.oneof(fc.constantFrom(...STRINGS), fc.string({ maxLength: 40 }));
const realisticContext: fc.Arbitrary<EvaluationContext> = fc
  .record(
    {
      targetingKey: fc.string({ minLength: 1, maxLength: 36 }),
      role: fc.constantFrom('admin', 'member', 'viewer'),
      tenant: shortString,
      email: fc.oneof(fc.emailAddress(), shortString),
      appVersion: fc.constantFrom('2.1.0', '1.9.3', 'v2', 'nope'),
      n: fc.integer(),
      groups: fc.oneof(fc.array(shortString, { maxLength: 30 }), fc.integer({ min: 0, max: 1_000 }).map((k) => Array.from({ length: k }, (_, i) => i % 10))),
      items: fc.array(fc.oneof(fc.integer(), fc.record({ price: fc.integer({ min: 0, max: 500 }), name: shortString })), { maxLength: 20 }),
      user: fc.record({ name: shortString, plan: fc.constantFrom('free', 'pro') }),
      long: fc.string({ minLength: CONTEXT_STRING - 10, maxLength: CONTEXT_STRING }),
    },
    { requiredKeys: ['targetingKey'] },
  )
  .filter((ctx) => sizeOf(ctx) <= CONTEXT_SIZE);

describe('property: a flag that passes validation stays within the budget on a realistic context', () => {
  it('never throws, never runs out of budget, and its counted steps and bytes stay under its static bound', () => {
    let passed = 0;
    let runs = 0;
    fc.assert(
      fc.property(rule, realisticContext, (targeting, ctx) => {
        runs++;
        const set = { flags: { f: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [targeting, 'on', 'off'] } } } };
        const { snapshot, errors } = compileFlagSet(JSON.stringify(set));
        if (errors.length > 0) return; // refused (or invalid): nothing runs
        passed++;
        const r = snapshot.evaluate('f', ctx, { defaultValue: false });
        expect(['TARGETING_MATCH', 'DEFAULT', 'ERROR']).toContain(r.reason);
        if (r.errorMessage) expect(r.errorMessage).not.toContain('budget');

        // what the closures counted, against the static bound and the budget
        const compiled = compileRule({ if: [targeting, 'on', 'off'] }, 'f');
        const env = newEnv(ctx, 'f', DEFAULT_BUDGET);
        try {
          compiled.fn(ctx, env);
        } catch (e) {
          if (e instanceof BudgetExceeded) throw e;
        }
        const steps = DEFAULT_BUDGET.steps - env.steps;
        const bytes = DEFAULT_BUDGET.bytes - env.alloc;
        expect(steps).toBeLessThanOrEqual(compiled.maxChargedSteps);
        expect(bytes).toBeLessThanOrEqual(compiled.maxBytes);
        expect(compiled.maxSteps).toBeLessThanOrEqual(DEFAULT_BUDGET.steps);
        expect(compiled.maxBytes).toBeLessThanOrEqual(DEFAULT_BUDGET.bytes);
      }),
      { numRuns: 2_000 },
    );
    // the property is not vacuous: most generated flags pass validation and run
    expect(passed).toBeGreaterThan(runs / 2);
  });

  it('any flag, on any context (however large), answers without throwing', () => {
    const anyContext = fc.oneof(
      realisticContext,
      fc.record({ groups: fc.integer({ min: 0, max: 50_000 }).map((k) => Array.from({ length: k }, (_, i) => `g${i}`)), tenant: fc.string({ maxLength: 5_000 }) }),
    );
    fc.assert(
      fc.property(rule, anyContext, (targeting, ctx) => {
        const { snapshot } = compileFlagSet({ flags: { f: { ...BOOL_FLAG, targeting: { if: [targeting, 'on', 'off'] } } } });
        for (const key of snapshot.keys()) {
          const r = snapshot.evaluate(key, ctx, { defaultValue: 'dflt' as never });
          if (r.reason === 'ERROR') expect(r.value).toBe('dflt');
          snapshot.explain(key, ctx);
        }
      }),
      { numRuns: 300 },
    );
  });
});

// ---- the fast path against the reference closures -------------------------------------------------

describe('property: the fast path charges, refuses and picks exactly as the reference closures', () => {
  const anyContext = fc.oneof(
    realisticContext,
    fc.record({ targetingKey: fc.string({ maxLength: 5_000 }), groups: fc.integer({ min: 0, max: 50_000 }).map((k) => Array.from({ length: k }, (_, i) => `g${i}`)), tenant: fc.string({ maxLength: 5_000 }) }),
  );
  /** What a compiled rule does on a context: its value (or error) and what it charged. */
  function run(fn: (ctx: EvaluationContext, env: ReturnType<typeof newEnv>) => unknown, ctx: EvaluationContext) {
    const env = newEnv(ctx, 'f', DEFAULT_BUDGET);
    let value: unknown;
    let error: string | undefined;
    try {
      value = fn(ctx, env);
    } catch (e) {
      error = `${(e as Error).constructor.name}: ${(e as Error).message}`;
    }
    return { value, error, env };
  }

  it('same value (or error), same SPLIT, same steps and bytes charged, same static bound', () => {
    let compared = 0;
    fc.assert(
      fc.property(rule, anyContext, (targeting, ctx) => {
        for (const root of [targeting, { if: [targeting, 'on', { fractional: [['on', 1], ['off', 3]] }] }] as JsonValue[]) {
          let reference: ReturnType<typeof compileRule>;
          try {
            reference = compileRule(root, 'f');
          } catch (e) {
            expect(() => compileDecision(root, 'f', (p) => p)).toThrow((e as Error).message);
            continue;
          }
          // the outcome records what was picked and whether it came from a tail split
          const outcome: Outcome = (picked, split) => ({ picked: picked ?? null, split: picked === null || picked === undefined ? false : split });
          const fast = compileDecision(root, 'f', outcome);
          expect([fast.maxSteps, fast.maxChargedSteps, fast.maxBytes]).toEqual([reference.maxSteps, reference.maxChargedSteps, reference.maxBytes]);
          const a = run(reference.fn, ctx);
          const b = run(fast.decide, ctx);
          expect(b.error).toBe(a.error);
          if (a.error === undefined) {
            const picked = a.value ?? null;
            expect(b.value).toEqual({ picked, split: picked === null ? false : a.env.split });
          }
          expect([b.env.steps, b.env.alloc]).toEqual([a.env.steps, a.env.alloc]);
          compared++;
        }
      }),
      { numRuns: 1_500 },
    );
    expect(compared).toBeGreaterThan(1_500);
  });
});

