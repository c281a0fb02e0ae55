import { compileFlagSet, SUPPORTED_OPERATORS, type EvaluationContext, type JsonValue } from '@rollgate/core';
import { RuleCompileError } from '../src/compiler';
import { BOOL_FLAG, boolFlagWith, ruleValue } from './helpers';

type Case = [rule: JsonValue, ctx: EvaluationContext, expected: unknown];

/** Runs a table of [rule, context, expected raw value]. */
function table(cases: Case[]): void {
  it.each(cases.map(([rule, ctx, expected]) => ({ rule, ctx, expected, name: `${JSON.stringify(rule)} with ${JSON.stringify(ctx)}` })))('$name', ({ rule, ctx, expected }) => {
    expect(ruleValue(rule, ctx)).toEqual(expected);
  });
}

/** Rules that are evaluation errors (json-logic-engine throws): the flag evaluates to ERROR/GENERAL. */
function failing(cases: Array<[rule: JsonValue, ctx: EvaluationContext]>): void {
  it.each(cases.map(([rule, ctx]) => ({ rule, ctx, name: `${JSON.stringify(rule)} with ${JSON.stringify(ctx)}` })))('$name is an evaluation error', ({ rule, ctx }) => {
    expect(() => ruleValue(rule, ctx)).toThrow();
    const snapshot = compileFlagSet({ flags: { f: { ...BOOL_FLAG, targeting: { if: [rule, 'on', 'off'] } } } }).snapshot;
    const r = snapshot.evaluate('f', ctx, { defaultValue: true });
    expect(r).toMatchObject({ value: true, reason: 'ERROR', errorCode: 'GENERAL' });
    expect(r.variant).toBeUndefined();
  });
}

describe('var', () => {
  table([
    [{ var: 'a' }, { a: 1 }, 1],
    [{ var: 'a.b.c' }, { a: { b: { c: 'deep' } } }, 'deep'],
    [{ var: 'a.b' }, { a: 'str' }, null],
    [{ var: 'missing' }, {}, null],
    [{ var: 'a.b' }, { a: null }, null],
    [{ var: ['missing', 'dflt'] }, {}, 'dflt'],
    [{ var: ['a.x', 5] }, { a: {} }, 5],
    [{ var: ['a', 5] }, { a: 0 }, 0],
    [{ var: ['a', 5] }, { a: false }, false],
    [{ var: ['a', 5] }, { a: '' }, ''],
    [{ var: 'list.1' }, { list: ['x', 'y'] }, 'y'],
    [{ var: 'list.1.name' }, { list: [{ name: 'x' }, { name: 'y' }] }, 'y'],
    [{ var: 1 }, { '1': 'numeric key' }, 'numeric key'],
    [{ var: 'a.length' }, { a: 'xyz' }, 3],
    [{ var: { var: 'field' } }, { field: 'b', b: 42 }, 42],
    [{ var: 'obj' }, { obj: { k: [1, { y: 2 }] } }, { k: [1, { y: 2 }] }],
  ]);

  it('never exposes functions, own or inherited (toString, valueOf, methods on the context)', () => {
    expect(ruleValue({ var: 'toString' }, {})).toBeNull();
    expect(ruleValue({ var: 'valueOf' }, {})).toBeNull();
    expect(ruleValue({ var: 'a.hasOwnProperty' }, { a: {} })).toBeNull();
    expect(ruleValue({ var: 'fn' }, { fn: () => 'called' })).toBeNull();
    expect(ruleValue({ var: ['fn', 'dflt'] }, { fn: () => 'called' })).toBe('dflt');
  });

  it('a dynamic path that resolves to a forbidden segment is an evaluation error, not a lookup', () => {
    const snapshot = boolFlagWith({ if: [{ var: { var: 'field' } }, 'on', 'off'] });
    expect(snapshot.evaluate('f', { field: '__proto__' }, { defaultValue: true })).toMatchObject({ value: true, reason: 'ERROR', errorCode: 'GENERAL' });
    expect(snapshot.evaluate('f', { field: 'a.constructor' }, { defaultValue: true })).toMatchObject({ reason: 'ERROR', errorCode: 'GENERAL' });
    expect(snapshot.evaluate('f', { field: 'ok', ok: 1 })).toMatchObject({ value: true, reason: 'TARGETING_MATCH' });
  });

  describe('$flagd properties', () => {
    afterEach(() => jest.restoreAllMocks());

    it('$flagd.flagKey is the key of the flag being evaluated (the context cannot override it)', () => {
      const rule = { if: [{ '==': [{ var: '$flagd.flagKey' }, 'checkout-v2'] }, 'on', 'off'] };
      const { snapshot } = compileFlagSet({ flags: { 'checkout-v2': { ...BOOL_FLAG, targeting: rule }, other: { ...BOOL_FLAG, targeting: rule } } });
      expect(snapshot.evaluate('checkout-v2').value).toBe(true);
      expect(snapshot.evaluate('other').value).toBe(false);
      expect(snapshot.evaluate('other', { $flagd: { flagKey: 'checkout-v2' } }).value).toBe(false);
      expect(ruleValue({ var: '$flagd.flagKey' }, {}, 'my-flag')).toBe('my-flag');
    });

    it('$flagd.timestamp is Date.now() in whole seconds, read at evaluation time', () => {
      const start = 1_767_225_600; // 2026-01-01T00:00:00Z
      const now = jest.spyOn(Date, 'now');
      const snapshot = boolFlagWith({ if: [{ '>=': [{ var: '$flagd.timestamp' }, start] }, 'on', 'off'] });
      now.mockReturnValue(start * 1000 - 1);
      expect(snapshot.evaluate('f')).toMatchObject({ value: false, reason: 'TARGETING_MATCH' });
      now.mockReturnValue(start * 1000);
      expect(snapshot.evaluate('f')).toMatchObject({ value: true, reason: 'TARGETING_MATCH' });
      now.mockReturnValue(start * 1000 + 999);
      expect(ruleValue({ var: '$flagd.timestamp' }, { $flagd: { timestamp: 1 } })).toBe(start);
    });

    it('$flagd alone is the object of both properties; other $flagd paths use the default', () => {
      jest.spyOn(Date, 'now').mockReturnValue(1_700_000_000_500);
      expect(ruleValue({ var: '$flagd' }, {}, 'k')).toEqual({ flagKey: 'k', timestamp: 1_700_000_000 });
      expect(ruleValue({ var: ['$flagd.other', 'dflt'] }, {}, 'k')).toBe('dflt');
    });

    it('{"var": ""} is the whole context plus $flagd', () => {
      jest.spyOn(Date, 'now').mockReturnValue(1_700_000_000_000);
      const ctx = { targetingKey: 'u1', role: 'admin', nested: { a: [1] } };
      expect(ruleValue({ var: '' }, ctx, 'k')).toEqual({ ...ctx, $flagd: { flagKey: 'k', timestamp: 1_700_000_000 } });
      expect(ruleValue({ var: null }, ctx, 'k')).toEqual({ ...ctx, $flagd: { flagKey: 'k', timestamp: 1_700_000_000 } });
    });
  });
});

describe('missing / missing_some', () => {
  table([
    [{ missing: ['a', 'b.c', 'd'] }, { a: 1, b: { c: 0 } }, ['d']],
    [{ missing: ['a', 'b'] }, { a: null, b: false }, []],
    [{ missing: 'a' }, {}, ['a']],
    [{ missing: [] }, {}, []],
    [{ missing_some: [1, ['a', 'b', 'c']] }, { b: 1 }, []],
    [{ missing_some: [2, ['a', 'b', 'c']] }, { a: 1 }, ['b', 'c']],
    [{ missing_some: [1, ['a', 'b']] }, {}, ['a', 'b']],
  ]);

  it('typical use: a rule that needs an attribute falls back to the default variant when it is absent', () => {
    const snapshot = boolFlagWith({ if: [{ missing: ['email'] }, null, { ends_with: [{ var: 'email' }, '@corp.com'] }, 'on', 'off'] });
    expect(snapshot.evaluate('f', {})).toMatchObject({ value: false, variant: 'off', reason: 'DEFAULT' });
    expect(snapshot.evaluate('f', { email: 'a@corp.com' })).toMatchObject({ value: true, reason: 'TARGETING_MATCH' });
    expect(snapshot.evaluate('f', { email: 'a@home.com' })).toMatchObject({ value: false, reason: 'TARGETING_MATCH' });
  });

  it('never reports a prototype member as present', () => {
    expect(ruleValue({ missing: ['toString', '__proto__', 'constructor'] }, {})).toEqual(['toString', '__proto__', 'constructor']);
  });
});

describe('if / ?:', () => {
  table([
    [{ if: [true, 'yes', 'no'] }, {}, 'yes'],
    [{ if: [{ var: 'a' }, 1, { var: 'b' }, 2, 3] }, { a: true }, 1],
    [{ if: [{ var: 'a' }, 1, { var: 'b' }, 2, 3] }, { b: true }, 2],
    [{ if: [{ var: 'a' }, 1, { var: 'b' }, 2, 3] }, {}, 3],
    [{ if: [{ var: 'a' }, 1, { var: 'b' }, 2] }, {}, null],
    [{ if: [{ var: 'a' }, 'y'] }, { a: 0 }, null],
    [{ if: [] }, {}, null],
    [{ if: ['only'] }, {}, 'only'],
    [{ '?:': [{ var: 'a' }, 'y', 'n'] }, { a: 1 }, 'y'],
    [{ '?:': [{ var: 'a' }, 'y', 'n'] }, { a: 0 }, 'n'],
    // JsonLogic truthiness: [] and {} are false, "0" is true
    [{ if: [{ var: 'a' }, 'y', 'n'] }, { a: [] }, 'n'],
    [{ if: [{ var: 'a' }, 'y', 'n'] }, { a: {} }, 'n'],
    [{ if: [{ var: 'a' }, 'y', 'n'] }, { a: '0' }, 'y'],
    [{ if: [{ var: 'a' }, 'y', 'n'] }, { a: [0] }, 'y'],
  ]);

  it('only the chosen branch is evaluated (a failing branch not taken is no error)', () => {
    const snapshot = boolFlagWith({ if: [{ var: 'safe' }, 'on', { '<': [{ var: 'n' }, 5] }, 'on', 'off'] });
    expect(snapshot.evaluate('f', { safe: true, n: 'abc' })).toMatchObject({ value: true, reason: 'TARGETING_MATCH' });
    expect(snapshot.evaluate('f', { safe: false, n: 'abc' })).toMatchObject({ reason: 'ERROR', errorCode: 'GENERAL' });
  });

  it('an else-if chain without else yields the default variant when nothing matches', () => {
    const { snapshot } = compileFlagSet({
      flags: { f: { state: 'ENABLED', variants: { a: 'A', b: 'B', c: 'C' }, defaultVariant: 'c', targeting: { if: [{ '==': [{ var: 'x' }, 1] }, 'a', { '==': [{ var: 'x' }, 2] }, 'b'] } } },
    });
    expect(snapshot.evaluate('f', { x: 1 })).toMatchObject({ value: 'A', reason: 'TARGETING_MATCH' });
    expect(snapshot.evaluate('f', { x: 2 })).toMatchObject({ value: 'B', reason: 'TARGETING_MATCH' });
    expect(snapshot.evaluate('f', { x: 3 })).toMatchObject({ value: 'C', variant: 'c', reason: 'DEFAULT' });
  });
});

describe('and / or / ! / !!', () => {
  table([
    [{ and: [1, 'a', 0, 'b'] }, {}, 0],
    [{ and: [1, 'a'] }, {}, 'a'],
    [{ and: [{ var: 'a' }, 'b'] }, { a: [1] }, 'b'],
    [{ and: [{ var: 'a' }, 'b'] }, { a: [] }, []],
    [{ and: [] }, {}, null],
    [{ or: [0, '', 'x'] }, {}, 'x'],
    [{ or: [0, false] }, {}, false],
    [{ or: [{ var: 'a' }] }, { a: [] }, []],
    [{ or: [{ var: 'plan' }, 'free'] }, { plan: 'pro' }, 'pro'],
    [{ '!': [{ var: 'a' }] }, { a: [] }, true],
    [{ '!': [{ var: 'a' }] }, { a: '0' }, false],
    [{ '!': { var: 'a' } }, { a: {} }, true],
    [{ '!': [true] }, {}, false],
    [{ '!!': [{ var: 'a' }] }, { a: '0' }, true],
    [{ '!!': [{ var: 'a' }] }, { a: { x: 1 } }, true],
    [{ '!!': [{ var: 'a' }] }, { a: '' }, false],
    [{ '!!': [[]] }, {}, false],
  ]);

  it('and/or short-circuit: later failing arguments are not evaluated', () => {
    expect(ruleValue({ or: [true, { '<': [{ var: 's' }, 1] }] }, { s: 'abc' })).toBe(true);
    expect(ruleValue({ and: [false, { '<': [{ var: 's' }, 1] }] }, { s: 'abc' })).toBe(false);
    expect(() => ruleValue({ or: [false, { '<': [{ var: 's' }, 1] }] }, { s: 'abc' })).toThrow();
  });
});

describe('comparison', () => {
  table([
    [{ '==': [1, '1'] }, {}, true],
    [{ '==': [{ var: 'a' }, 0] }, { a: false }, true],
    [{ '==': [{ var: 'a' }, ''] }, { a: 0 }, true],
    [{ '==': [{ var: 'a' }, 'x'] }, { a: 'x' }, true],
    [{ '==': [{ var: 'a' }, null] }, {}, true],
    [{ '!=': [{ var: 'a' }, '1'] }, { a: 1 }, false],
    [{ '!=': [{ var: 'a' }, 'x'] }, { a: 'y' }, true],
    [{ '===': [{ var: 'a' }, '1'] }, { a: 1 }, false],
    [{ '===': [{ var: 'a' }, 1] }, { a: 1 }, true],
    [{ '===': [{ var: 'a' }, [1]] }, { a: [1] }, false],
    [{ '!==': [{ var: 'a' }, '1'] }, { a: 1 }, true],
    [{ '!==': [{ var: 'a' }, 'x'] }, { a: 'x' }, false],
    [{ '<': [{ var: 'a' }, 10] }, { a: 9 }, true],
    [{ '<': [{ var: 'a' }, 10] }, { a: '9' }, true], // numeric when one side is a number
    [{ '<': [{ var: 'a' }, '10'] }, { a: '9' }, false], // string comparison when both are strings
    [{ '<': [{ var: 'a' }, 5] }, {}, true], // missing is null, which compares as 0
    [{ '<=': [{ var: 'a' }, 10] }, { a: 10 }, true],
    [{ '>': [{ var: 'a' }, 10] }, { a: 10 }, false],
    [{ '>=': [{ var: 'a' }, 10] }, { a: 10 }, true],
    [{ '>': [{ var: 'a' }, 5] }, { a: true }, false],
    // three arguments: "between"
    [{ '<': [1, { var: 'a' }, 5] }, { a: 3 }, true],
    [{ '<': [1, { var: 'a' }, 5] }, { a: 1 }, false],
    [{ '<': [1, { var: 'a' }, 5] }, { a: 5 }, false],
    [{ '<=': [1, { var: 'a' }, 5] }, { a: 1 }, true],
    [{ '<=': [1, { var: 'a' }, 5] }, { a: 5 }, true],
    [{ '<=': [1, { var: 'a' }, 5] }, { a: 6 }, false],
    [{ '>': [{ var: 'a' }, 1, 0] }, { a: 2 }, true],
    [{ '>=': [5, { var: 'a' }, 1] }, { a: 5 }, true],
  ]);

  failing([
    [{ '<': [{ var: 'n' }, 5] }, { n: 'abc' }],
    [{ '>': [{ var: 'n' }, 1] }, { n: [2] }],
    [{ '==': [{ var: 'n' }, 1] }, { n: 'abc' }],
    [{ '==': [{ var: 'n' }, true] }, { n: 'true' }],
    [{ '<=': [1, { var: 'n' }, 5] }, { n: {} }],
  ]);

  it('the example from the docs: {"<": [{"var":"n"}, 5]} with n = "abc" is ERROR/GENERAL with a message, not a throw', () => {
    const snapshot = boolFlagWith({ if: [{ '<': [{ var: 'n' }, 5] }, 'on', 'off'] });
    const r = snapshot.evaluate('f', { n: 'abc' }, { defaultValue: false });
    expect(r).toMatchObject({ flagKey: 'f', value: false, reason: 'ERROR', errorCode: 'GENERAL' });
    expect(r.errorMessage).toMatch(/"abc"/);
    expect(snapshot.evaluate('f', { n: 4 })).toMatchObject({ value: true, reason: 'TARGETING_MATCH' });
  });
});

describe('arithmetic and min/max', () => {
  table([
    [{ '+': [1, '2', { var: 'a' }] }, { a: 3 }, 6],
    [{ '+': [] }, {}, 0],
    [{ '+': [{ var: 'a' }] }, { a: '1.5' }, 1.5],
    [{ '-': [{ var: 'a' }, 1, 1] }, { a: 5 }, 3],
    [{ '-': [{ var: 'a' }] }, { a: 2 }, -2],
    [{ '*': [{ var: 'a' }, 2] }, { a: '3' }, 6],
    [{ '*': [2, 3, 4] }, {}, 24],
    [{ '/': [{ var: 'a' }, 4] }, { a: 2 }, 0.5],
    [{ '%': [{ var: 'a' }, 4] }, { a: 10 }, 2],
    [{ '%': [{ var: 'a' }, 4] }, { a: -9 }, -1],
    [{ min: [{ var: 'a' }, 3, -1] }, { a: 2 }, -1],
    [{ max: [{ var: 'a' }, 3, -1] }, { a: 7 }, 7],
    [{ max: [{ var: 'a' }] }, { a: 2 }, 2],
    // typical rollout arithmetic
    [{ '*': [{ '/': [{ var: 'done' }, { var: 'total' }] }, 100] }, { done: 1, total: 4 }, 25],
  ]);

  failing([
    [{ '+': [{ var: 'a' }, 1] }, { a: 'abc' }],
    [{ '*': [{ var: 'a' }, 1] }, { a: [1] }],
    [{ '/': [{ var: 'a' }, 0] }, { a: 1 }],
    [{ '%': [{ var: 'a' }, 0] }, { a: 1 }],
    [{ max: [{ var: 'a' }, 1] }, { a: '3' }],
    [{ min: [{ var: 'a' }, 1] }, { a: null }],
  ]);
});

describe('in', () => {
  table([
    [{ in: [{ var: 'a' }, ['x', 1]] }, { a: 1 }, true],
    [{ in: [{ var: 'a' }, ['x', 1]] }, { a: '1' }, false],
    [{ in: [{ var: 'a' }, 'hello world'] }, { a: 'lo w' }, true],
    [{ in: [{ var: 'a' }, 'hello'] }, { a: 'xyz' }, false],
    [{ in: [{ var: 'a' }, { var: 'list' }] }, { a: 'b', list: ['a', 'b'] }, true],
    [{ in: [{ var: 'a' }, { var: 'list' }] }, { a: 'b' }, false], // missing container is null: not found
    [{ in: ['@corp.com', { var: 'email' }] }, { email: 'x@corp.com' }, true],
  ]);

  failing([[{ in: ['a', { var: 'x' }] }, { x: 5 }], [{ in: ['a', { var: 'x' }] }, { x: { a: 1 } }]]);

  it('gives the same answers below and above the size where a constant list is matched through a Set', () => {
    for (const size of [7, 8, 9, 50]) {
      const list = Array.from({ length: size }, (_, i) => (i % 2 ? i : `s${i}`));
      const rule = { in: [{ var: 'a' }, list] };
      const probes: unknown[] = [...list, ...list.map((v) => (typeof v === 'number' ? String(v) : `${v}x`)), null, true, 0.5, -1];
      for (const probe of probes) expect([size, probe, ruleValue(rule, { a: probe })]).toEqual([size, probe, list.includes(probe as never)]);
    }
  });

  it('matches members of a constant 10,000-element list exactly (type-strict) on every evaluation', () => {
    const list: JsonValue[] = Array.from({ length: 10_000 }, (_, i) => (i < 5_000 ? i : `tenant-${i}`));
    const snapshot = boolFlagWith({ if: [{ in: [{ var: 'tenant' }, list] }, 'on', 'off'] });
    const members = new Set(list);
    let hits = 0;
    const probes: unknown[] = [...list, ...list.map((v) => (typeof v === 'number' ? String(v) : `${v}!`)), 'tenant-10000', 10_000, 4_999.5, null, true, undefined];
    for (const tenant of probes) {
      const r = snapshot.evaluate('f', { tenant });
      if (r.reason !== 'TARGETING_MATCH' || r.value !== members.has(tenant as JsonValue)) throw new Error(`wrong answer for ${JSON.stringify(tenant)}: ${String(r.value)} (${r.reason})`);
      if (r.value) hits++;
    }
    expect(hits).toBe(10_000);
    // the list inside the definition is untouched (still 10,000 entries, in order)
    expect((snapshot.definition('f')!.targeting!.if as [{ in: [unknown, unknown[]] }])[0].in[1]).toEqual(list);
  });
});

describe('strings and arrays', () => {
  table([
    [{ cat: ['a', 1, true, { var: 'a' }] }, { a: 2.5 }, 'a1true2.5'],
    [{ cat: 'x' }, {}, 'x'],
    [{ cat: [{ var: '$flagd.flagKey' }, '-', { var: 'email' }] }, { email: 'e@x' }, 'f-e@x'],
    [{ substr: ['hello', 1] }, {}, 'ello'],
    [{ substr: [{ var: 'a' }, 1, 2] }, { a: 'hello' }, 'el'],
    [{ substr: [{ var: 'a' }, -3] }, { a: 'hello' }, 'llo'],
    [{ substr: [{ var: 'a' }, -3, -1] }, { a: 'hello' }, 'll'],
    [{ substr: [{ var: 'a' }, 0, -10] }, { a: 'hello' }, ''],
    [{ merge: [{ var: 'a' }, [3, [4]], 5] }, { a: [1, 2] }, [1, 2, 3, [4], 5]],
    [{ merge: [] }, {}, []],
    [{ map: [{ var: 'a' }, { '*': [{ var: '' }, 2] }] }, { a: [1, 2, 3] }, [2, 4, 6]],
    [{ map: [{ var: 'users' }, { var: 'name' }] }, { users: [{ name: 'x' }, { name: 'y' }] }, ['x', 'y']],
    [{ map: [{ var: 'pairs' }, { var: 1 }] }, { pairs: [['a', 'b'], ['c', 'd']] }, ['b', 'd']],
    [{ map: [{ var: 'missing' }, { var: '' }] }, {}, []],
    [{ filter: [{ var: 'a' }, { '>': [{ var: '' }, 1] }] }, { a: [1, 2, 3] }, [2, 3]],
    [{ filter: [{ var: 'a' }, { var: 'on' }] }, { a: [{ on: true, k: 1 }, { on: false }] }, [{ on: true, k: 1 }]],
    [{ reduce: [{ var: 'a' }, { '+': [{ var: 'current' }, { var: 'accumulator' }] }, 10] }, { a: [1, 2, 3] }, 16],
    [{ reduce: [{ var: 'a' }, { cat: [{ var: 'accumulator' }, { var: 'current.k' }] }, ''] }, { a: [{ k: 'x' }, { k: 'y' }] }, 'xy'],
    [{ all: [{ var: 'a' }, { '>': [{ var: '' }, 0] }] }, { a: [1, 2] }, true],
    [{ all: [{ var: 'a' }, { '>': [{ var: '' }, 1] }] }, { a: [1, 2] }, false],
    [{ all: [{ var: 'a' }, true] }, { a: [] }, false], // JsonLogic: all of nothing is false
    [{ some: [{ var: 'a' }, { '==': [{ var: 'r' }, 'x'] }] }, { a: [{ r: 'y' }, { r: 'x' }] }, true],
    [{ some: [{ var: 'a' }, true] }, { a: [] }, false],
    [{ none: [{ var: 'a' }, { var: '' }] }, { a: [0, false] }, true],
    [{ none: [{ var: 'a' }, { var: '' }] }, { a: [0, 1] }, false],
    // inside an iterator, var reads the element, not the context
    [{ some: [{ var: 'a' }, { var: 'flag' }] }, { a: [{}], flag: true }, false],
  ]);

  it('a realistic use: any of the user groups is in the beta list', () => {
    const snapshot = boolFlagWith({ if: [{ some: [{ var: 'groups' }, { in: [{ var: '' }, ['beta', 'staff']] }] }, 'on', 'off'] });
    expect(snapshot.evaluate('f', { groups: ['users', 'staff'] }).value).toBe(true);
    expect(snapshot.evaluate('f', { groups: ['users'] }).value).toBe(false);
    expect(snapshot.evaluate('f', {}).value).toBe(false);
  });
});

describe('starts_with / ends_with (flagd)', () => {
  table([
    [{ starts_with: [{ var: 'email' }, 'admin@'] }, { email: 'admin@x.com' }, true],
    [{ starts_with: [{ var: 'email' }, 'admin@'] }, { email: 'user@x.com' }, false],
    [{ ends_with: [{ var: 'email' }, '@x.com'] }, { email: 'user@x.com' }, true],
    [{ ends_with: [{ var: 'email' }, '@x.com'] }, { email: 'user@y.com' }, false],
    [{ starts_with: [{ var: 'email' }, ''] }, { email: 'anything' }, true],
    // null (not false) for non-strings and for a wrong number of arguments
    [{ starts_with: [{ var: 'email' }, 'a'] }, {}, null],
    [{ starts_with: [{ var: 'n' }, '1'] }, { n: 12 }, null],
    [{ ends_with: ['abc', { var: 'suffix' }] }, { suffix: 3 }, null],
    [{ starts_with: [{ var: 'email' }] }, { email: 'a' }, null],
    [{ ends_with: [{ var: 'email' }, 'a', 'b'] }, { email: 'a' }, null],
  ]);

  it('null means the default variant (DEFAULT), not the variant "false"', () => {
    const { snapshot } = compileFlagSet({ flags: { f: { state: 'ENABLED', variants: { true: 'T', false: 'F', d: 'D' }, defaultVariant: 'd', targeting: { ends_with: [{ var: 'email' }, '@x.com'] } } } });
    expect(snapshot.evaluate('f', { email: 'a@x.com' })).toMatchObject({ value: 'T', reason: 'TARGETING_MATCH' });
    expect(snapshot.evaluate('f', { email: 'a@y.com' })).toMatchObject({ value: 'F', reason: 'TARGETING_MATCH' });
    expect(snapshot.evaluate('f', { email: 42 })).toMatchObject({ value: 'D', variant: 'd', reason: 'DEFAULT' });
  });
});

describe('sem_ver (flagd)', () => {
  const v = (a: JsonValue, op: string, b: JsonValue, ctx: EvaluationContext = {}) => ruleValue({ sem_ver: [a, op, b] }, ctx);

  it.each([
    ['1.2.3', '=', '1.2.3', true],
    ['1.2.3', '=', '1.2.4', false],
    ['1.2.3', '!=', '1.2.4', true],
    ['1.2.3', '!=', '1.2.3', false],
    ['1.2.3', '<', '1.10.0', true], // numeric, not lexicographic
    ['1.10.0', '<', '1.2.3', false],
    ['1.2.3', '<=', '1.2.3', true],
    ['1.2.4', '<=', '1.2.3', false],
    ['2.0.0', '>', '1.99.99', true],
    ['1.0.0', '>', '1.0.0', false],
    ['1.0.0', '>=', '1.0.0', true],
    ['0.9.0', '>=', '1.0.0', false],
    ['1.0.0-alpha', '<', '1.0.0', true], // prerelease sorts before the release
    ['1.0.0-alpha', '<', '1.0.0-beta', true],
    ['1.9.9', '^', '1.0.0', true], // ^: same major
    ['2.0.0', '^', '1.0.0', false],
    ['1.2.9', '~', '1.2.0', true], // ~: same major and minor
    ['1.3.0', '~', '1.2.0', false],
    ['v1.2.3', '=', '1.2.3', true], // v/V prefix stripped
    ['V1.2.3', '=', 'v1.2.3', true],
    ['1', '=', '1.0.0', true], // partial versions are coerced
    ['1.2', '=', '1.2.0', true],
    ['1.2', '>', '1.1.9', true],
    ['1.2.3+build.5', '=', '1.2.3', true], // build metadata is ignored
    ['1.2.3+a', '=', '1.2.3+b', true],
  ] as Array<[string, string, string, boolean]>)('%s %s %s is %s', (a, op, b, expected) => {
    expect(v({ var: 'a' }, op, b, { a })).toBe(expected);
    expect(v(a, op, { var: 'b' }, { b })).toBe(expected);
  });

  it('accepts numbers as versions', () => {
    expect(v({ var: 'a' }, '=', '1.0.0', { a: 1 })).toBe(true);
    expect(v({ var: 'a' }, '=', '1.5.0', { a: 1.5 })).toBe(true);
    expect(v({ var: 'a' }, '>', 2, { a: '2.0.1' })).toBe(true);
  });

  it.each([
    ['not-a-version', '=', '1.0.0'],
    ['1.2.3.4', '=', '1.2.3'],
    ['myVersion_1', '=', '1.0.0'],
    ['1.2.3', '=', 'x'],
    ['=1.2.3', '=', '1.2.3'],
    ['1.2.3', '===', '1.2.3'], // unknown operator
    ['1.2.3', '', '1.2.3'],
  ])('%j %j %j is null (no result)', (a, op, b) => {
    expect(v({ var: 'a' }, op, b, { a })).toBeNull();
  });

  it('is null for missing, boolean and object inputs and for a wrong number of arguments', () => {
    expect(v({ var: 'missing' }, '=', '1.0.0')).toBeNull();
    expect(v({ var: 'a' }, '=', '1.0.0', { a: true })).toBeNull();
    expect(v({ var: 'a' }, '=', '1.0.0', { a: { major: 1 } })).toBeNull();
    expect(ruleValue({ sem_ver: ['1.0.0', '='] })).toBeNull();
    expect(ruleValue({ sem_ver: ['1.0.0', '=', '1.0.0', '1.0.0'] })).toBeNull();
  });

  it('an invalid version means the default variant (DEFAULT)', () => {
    const snapshot = compileFlagSet({ flags: { f: { state: 'ENABLED', variants: { new: 'N', old: 'O' }, defaultVariant: 'old', targeting: { if: [{ sem_ver: [{ var: 'app' }, '>=', '2.3.0'] }, 'new', 'old'] } } } }).snapshot;
    expect(snapshot.evaluate('f', { app: '2.3.0' })).toMatchObject({ value: 'N', reason: 'TARGETING_MATCH' });
    expect(snapshot.evaluate('f', { app: 'v2.2' })).toMatchObject({ value: 'O', reason: 'TARGETING_MATCH' });
    expect(snapshot.evaluate('f', { app: 'garbage' })).toMatchObject({ value: 'O', reason: 'TARGETING_MATCH' }); // null is falsy in if
    // used directly, the boolean result names the variant "true"/"false"; null is DEFAULT
    const direct = compileFlagSet({ flags: { g: { state: 'ENABLED', variants: { true: 'new', false: 'old', unknown: '?' }, defaultVariant: 'unknown', targeting: { sem_ver: [{ var: 'app' }, '>=', '2.3.0'] } } } }).snapshot;
    expect(direct.evaluate('g', { app: 'garbage' })).toMatchObject({ value: '?', variant: 'unknown', reason: 'DEFAULT' });
    expect(direct.evaluate('g', { app: '3.0.0' })).toMatchObject({ value: 'new', variant: 'true', reason: 'TARGETING_MATCH' });
    expect(direct.evaluate('g', { app: '1.0.0' })).toMatchObject({ value: 'old', variant: 'false', reason: 'TARGETING_MATCH' });
  });
});

describe('operator set and compile errors', () => {
  it('supports exactly the flagd JsonLogic dialect', () => {
    expect([...SUPPORTED_OPERATORS].sort()).toEqual(
      [
        '!', '!!', '!=', '!==', '%', '*', '+', '-', '/', '<', '<=', '==', '===', '>', '>=', '?:', 'all', 'and', 'cat', 'ends_with', 'filter', 'fractional', 'if', 'in',
        'map', 'max', 'merge', 'min', 'missing', 'missing_some', 'none', 'or', 'reduce', 'sem_ver', 'some', 'starts_with', 'substr', 'var',
      ].sort(),
    );
  });

  it('an object with more than one key is data, not an operation', () => {
    expect(ruleValue({ if: [true, { a: 1, b: 2 }] })).toEqual({ a: 1, b: 2 });
  });

  it.each([
    [{ frob: [] }, 'unknown operator "frob"'],
    [{ in: [1] }, 'expects 2 argument(s), got 1'],
    [{ substr: ['a'] }, 'expects 2 to 3 argument(s), got 1'],
    [{ '%': [1] }, 'expects at least 2 argument(s), got 1'],
    [{ map: [[1]] }, 'expects 2 argument(s), got 1'],
    [{ var: 'a.__proto__' }, '"__proto__" may not appear in a var path'],
  ] as Array<[JsonValue, string]>)('%j does not compile: %s', (rule, message) => {
    expect(() => ruleValue(rule)).toThrow(RuleCompileError);
    expect(() => ruleValue(rule)).toThrow(message);
  });
});
