import { compileFlagSet, DEFAULT_LIMITS, FlagValidationError, formatIssue, type FlagSetDefinition, type ValidationIssue } from '@rollgate/core';
import { BOOL_FLAG, objectPrototypeSnapshot } from './helpers';

const OK_FLAG_JSON = '{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"on"}';

function messages(errors: ValidationIssue[]): string[] {
  return errors.map(formatIssue);
}

/** The healthy flag `ok` that every multi-flag test includes still evaluates normally. */
function expectOkFlagServes(snapshot: ReturnType<typeof compileFlagSet>['snapshot'], value: boolean = true): void {
  expect(snapshot.evaluate('ok', {}, { defaultValue: !value })).toMatchObject({ value, reason: 'STATIC', variant: value ? 'on' : 'off' });
}

describe('flag-level validation: path-qualified issues, bad flag excluded, others kept', () => {
  it('reports a defaultVariant that is not a variant, with the exact dotted path and the variant list', () => {
    const { snapshot, errors } = compileFlagSet({
      flags: {
        'fast-payment': { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'nope' },
        ok: { ...BOOL_FLAG, defaultVariant: 'on' },
      },
    });
    expect(messages(errors)).toEqual(['flags.fast-payment.defaultVariant: "nope" is not one of the variants on, off']);
    expect(errors[0]).toMatchObject({ flagKey: 'fast-payment', effect: 'excluded', path: 'flags.fast-payment.defaultVariant' });
    expect(snapshot.keys()).toEqual(['ok']);
    expect(snapshot.has('fast-payment')).toBe(false);
    expect(snapshot.evaluate('fast-payment', {}, { defaultValue: false })).toMatchObject({ reason: 'ERROR', errorCode: 'FLAG_NOT_FOUND', value: false });
    expectOkFlagServes(snapshot);
  });

  it('rejects a state outside ENABLED/DISABLED, naming the allowed values and the value given', () => {
    const { snapshot, errors } = compileFlagSet({ flags: { f: { ...BOOL_FLAG, state: 'ON' as 'ENABLED' }, ok: { ...BOOL_FLAG, defaultVariant: 'on' } } });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ path: 'flags.f.state', flagKey: 'f', effect: 'excluded' });
    // The message must show what was wrong: the offending value, not "undefined".
    expect(formatIssue(errors[0]!)).toBe('flags.f.state: must be one of ENABLED, DISABLED, got "ON"');
    expect(snapshot.keys()).toEqual(['ok']);
    expectOkFlagServes(snapshot);
  });

  it('reports missing variants and empty variants', () => {
    const { snapshot, errors } = compileFlagSet(
      JSON.parse(`{"flags": {"a": {"state":"ENABLED"}, "b": {"state":"ENABLED","variants":{}}, "ok": ${OK_FLAG_JSON}}}`) as FlagSetDefinition,
    );
    expect(messages(errors)).toEqual(['flags.a: missing required property "variants"', 'flags.b.variants: must have at least one entry']);
    expect(errors.map((e) => e.flagKey)).toEqual(['a', 'b']);
    expect(snapshot.keys()).toEqual(['ok']);
    expectOkFlagServes(snapshot);
  });

  it('reports every variant whose JSON type differs from the first one', () => {
    const { snapshot, errors } = compileFlagSet({ flags: { f: { state: 'ENABLED', variants: { a: 1, b: 'x', c: {}, d: 2 } }, ok: { ...BOOL_FLAG, defaultVariant: 'on' } } });
    expect(messages(errors)).toEqual([
      'flags.f.variants.b: is a string but "a" is a number; all variants of a flag must have the same type',
      'flags.f.variants.c: is an object but "a" is a number; all variants of a flag must have the same type',
    ]);
    expect(snapshot.keys()).toEqual(['ok']);
  });

  it('rejects array and null variant values (flagd allows boolean, string, number, object)', () => {
    const { snapshot, errors } = compileFlagSet(
      JSON.parse(`{"flags": {"arr": {"state":"ENABLED","variants":{"a":[1]}}, "nul": {"state":"ENABLED","variants":{"a":null}}, "ok": ${OK_FLAG_JSON}}}`) as FlagSetDefinition,
    );
    expect(errors.map((e) => [e.path, e.flagKey, e.effect])).toEqual([
      ['flags.arr.variants.a', 'arr', 'excluded'],
      ['flags.nul.variants.a', 'nul', 'excluded'],
    ]);
    expect(errors[0]!.message).toMatch(/^must be boolean or string or number or object/);
    expect(snapshot.keys()).toEqual(['ok']);
  });

  it('reports an unknown property of a flag (typo of targeting)', () => {
    const { snapshot, errors } = compileFlagSet(JSON.parse(`{"flags": {"f": {"state":"ENABLED","variants":{"on":true},"tageting":{}}, "ok": ${OK_FLAG_JSON}}}`) as FlagSetDefinition);
    expect(messages(errors)).toEqual(['flags.f: unknown property "tageting"']);
    expect(snapshot.keys()).toEqual(['ok']);
  });

  it('reports non-primitive metadata values on a flag with the metadata path', () => {
    const { snapshot, errors } = compileFlagSet(JSON.parse(`{"flags": {"f": {"state":"ENABLED","variants":{"on":true},"metadata":{"owner":{"team":"x"}}}, "ok": ${OK_FLAG_JSON}}}`) as FlagSetDefinition);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ path: 'flags.f.metadata.owner', flagKey: 'f', effect: 'excluded' });
    expect(errors[0]!.message).toMatch(/^must be string or number or boolean/);
    expect(snapshot.keys()).toEqual(['ok']);
  });

  it('rejects an empty flag key', () => {
    const { snapshot, errors } = compileFlagSet(JSON.parse(`{"flags": {"": ${OK_FLAG_JSON}, "ok": ${OK_FLAG_JSON}}}`) as FlagSetDefinition);
    expect(messages(errors)).toEqual(['flags: a flag key must not be empty']);
    expect(snapshot.keys()).toEqual(['ok']);
  });

  it('rejects values that are not JSON (NaN, Date) inside a flag', () => {
    const { snapshot, errors } = compileFlagSet({
      flags: {
        n: { state: 'ENABLED', variants: { a: NaN } },
        d: { ...BOOL_FLAG, targeting: { '==': [new Date(0) as unknown as string, 1] } },
        ok: { ...BOOL_FLAG, defaultVariant: 'on' },
      },
    });
    expect(messages(errors)).toEqual(['flags.n.variants.a: NaN is not a JSON number', 'flags.d.targeting.==[0]: is not a plain JSON object']);
    expect(snapshot.keys()).toEqual(['ok']);
  });

  it('keeps definition order of valid flags and drops only the invalid ones', () => {
    const { snapshot, errors } = compileFlagSet({
      flags: {
        z: { ...BOOL_FLAG },
        bad: { ...BOOL_FLAG, defaultVariant: 'missing' },
        a: { ...BOOL_FLAG, defaultVariant: 'on' },
        m: { ...BOOL_FLAG, targeting: { if: [{ '==': [{ var: 'x' }, 1] }, 'on'] } },
      },
    });
    expect(errors.map((e) => e.flagKey)).toEqual(['bad']);
    expect(snapshot.keys()).toEqual(['z', 'a', 'm']);
    expect(snapshot.evaluate('m', { x: 1 })).toMatchObject({ value: true, reason: 'TARGETING_MATCH' });
  });
});

describe('set-level validation: the whole input is rejected', () => {
  const cases: Array<[string, unknown, string]> = [
    ['invalid JSON text', '{"flags": ', 'flag set is not valid JSON'],
    ['a JSON number', '42', 'flag set must be a JSON object with a "flags" property, got number'],
    ['a number', 42, 'flag set must be a JSON object with a "flags" property, got number'],
    ['an array', [], 'flag set must be a JSON object with a "flags" property, got array'],
    ['null', null, 'flag set must be a JSON object with a "flags" property, got null'],
    ['an object without flags', {}, 'missing required property "flags"'],
  ];
  it.each(cases)('rejects %s with a clear message and an empty, usable snapshot', (_name, input, message) => {
    const { snapshot, errors } = compileFlagSet(input as object);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.effect).toBe('rejected');
    expect(formatIssue(errors[0]!).startsWith(message)).toBe(true);
    expect(snapshot.keys()).toEqual([]);
    expect(snapshot.evaluate('anything', {}, { defaultValue: 7 })).toMatchObject({ value: 7, reason: 'ERROR', errorCode: 'FLAG_NOT_FOUND' });
  });

  it('names the actual type when "flags" is not an object', () => {
    const { errors } = compileFlagSet({ flags: [] } as unknown as FlagSetDefinition);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ path: 'flags', effect: 'rejected' });
    expect(formatIssue(errors[0]!)).toBe('flags: must be object, got array');
  });

  it('rejects non-primitive flag-set metadata', () => {
    const { snapshot, errors } = compileFlagSet(JSON.parse(`{"metadata": {"owner": [1]}, "flags": {"ok": ${OK_FLAG_JSON}}}`) as FlagSetDefinition);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ path: 'metadata.owner', effect: 'rejected' });
    expect(snapshot.keys()).toEqual([]);
  });
});

describe('limits', () => {
  it('exposes documented, frozen defaults', () => {
    expect(DEFAULT_LIMITS).toEqual({ maxInputLength: 5_000_000, maxFlags: 10_000, maxEvaluators: 1_000, maxDepth: 64, maxEvaluationSteps: 100_000, maxEvaluationBytes: 1_000_000 });
    expect(Object.isFrozen(DEFAULT_LIMITS)).toBe(true);
  });

  it('rejects input text longer than maxInputLength before parsing it', () => {
    const text = JSON.stringify({ flags: { ok: BOOL_FLAG } });
    const { snapshot, errors } = compileFlagSet(text, { limits: { maxInputLength: text.length - 1 } });
    expect(messages(errors)).toEqual([`flag set is ${text.length} characters long, above the limit of ${text.length - 1}`]);
    expect(snapshot.keys()).toEqual([]);
    // exactly at the limit is accepted
    expect(compileFlagSet(text, { limits: { maxInputLength: text.length } }).snapshot.keys()).toEqual(['ok']);
  });

  it('rejects more flags than maxFlags, and accepts exactly maxFlags', () => {
    const three = { flags: { a: BOOL_FLAG, b: BOOL_FLAG, c: BOOL_FLAG } };
    const over = compileFlagSet(three, { limits: { maxFlags: 2 } });
    expect(messages(over.errors)).toEqual(['flags: 3 flags is above the limit of 2']);
    expect(over.errors[0]!.effect).toBe('rejected');
    expect(over.snapshot.keys()).toEqual([]);
    expect(compileFlagSet(three, { limits: { maxFlags: 3 } }).snapshot.keys()).toEqual(['a', 'b', 'c']);
  });

  it('rejects more evaluators than maxEvaluators', () => {
    const { errors } = compileFlagSet({ $evaluators: { a: true, b: false }, flags: { ok: BOOL_FLAG } }, { limits: { maxEvaluators: 1 } });
    expect(messages(errors)).toEqual(['$evaluators: 2 evaluators is above the limit of 1']);
  });

  it('excludes a flag nested deeper than maxDepth (default 64) and keeps the others', () => {
    const deep = JSON.parse('{"!":'.repeat(70) + 'true' + '}'.repeat(70)) as Record<string, never>;
    const shallow = JSON.parse('{"!":'.repeat(40) + 'true' + '}'.repeat(40)) as Record<string, never>;
    const yesNo = { state: 'ENABLED' as const, variants: { true: 'yes', false: 'no' }, defaultVariant: 'false' };
    const { snapshot, errors } = compileFlagSet({ flags: { deep: { ...yesNo, targeting: deep }, shallow: { ...yesNo, targeting: shallow }, ok: { ...BOOL_FLAG, defaultVariant: 'on' } } });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ flagKey: 'deep', effect: 'excluded', message: 'nesting is deeper than the limit of 64 levels' });
    expect(errors[0]!.path.startsWith('flags.deep.targeting.!.!')).toBe(true);
    expect(snapshot.keys()).toEqual(['shallow', 'ok']);
    // 40 negations of true is true: the variant named "true"
    expect(snapshot.evaluate('shallow')).toMatchObject({ value: 'yes', variant: 'true', reason: 'TARGETING_MATCH' });
    expectOkFlagServes(snapshot);
  });

  it('applies a custom maxDepth, counting from the flag object', () => {
    const targeting = { if: [{ '==': [{ var: 'x' }, 1] }, 'on', 'off'] }; // flag > targeting > if[] > {==} > [] > {var}
    const input = { flags: { f: { ...BOOL_FLAG, targeting } } };
    expect(compileFlagSet(input, { limits: { maxDepth: 3 } }).errors[0]).toMatchObject({ flagKey: 'f', message: 'nesting is deeper than the limit of 3 levels' });
    const roomy = compileFlagSet(input, { limits: { maxDepth: 8 } });
    expect(roomy.errors).toEqual([]);
    expect(roomy.snapshot.evaluate('f', { x: 1 }).value).toBe(true);
  });

  it('does not loop on a cyclic object input (depth limit)', () => {
    const targeting: Record<string, unknown> = {};
    targeting.self = targeting;
    const { snapshot, errors } = compileFlagSet({ flags: { f: { ...BOOL_FLAG, targeting: targeting as never }, ok: BOOL_FLAG } });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ flagKey: 'f', effect: 'excluded', message: 'nesting is deeper than the limit of 64 levels' });
    expect(snapshot.keys()).toEqual(['ok']);
  });

  it('refuses a tiny flag set whose $ref expansion is exponential (billion laughs), instead of expanding it', () => {
    // Each evaluator references the next one 4 times: 7 levels expand to 4^7 = 16,384 copies of
    // the leaf, i.e. ~7 MB of rules (more than maxInputLength) from a ~1.2 KB input. Deeper chains
    // of the same shape (4^10: 12 s and 1.3 GB; 4^16: out of memory) must not be expanded.
    const leaf = { '==': [{ var: 'plan' }, 'x'.repeat(400)] };
    const evaluators: Record<string, unknown> = { e7: leaf };
    for (let i = 6; i >= 0; i--) evaluators[`e${i}`] = { and: [1, 2, 3, 4].map(() => ({ $ref: `e${i + 1}` })) };
    expect(16_384 * JSON.stringify(leaf).length).toBeGreaterThan(DEFAULT_LIMITS.maxInputLength);
    const input = JSON.stringify({ $evaluators: evaluators, flags: { laughs: { ...BOOL_FLAG, targeting: { if: [{ $ref: 'e0' }, 'on', 'off'] } }, ok: BOOL_FLAG } });
    expect(input.length).toBeLessThan(2_000);
    const { snapshot, errors } = compileFlagSet(input);
    expect(errors.some((e) => e.flagKey === 'laughs')).toBe(true);
    expect(snapshot.evaluate('laughs', { plan: 'x'.repeat(400) }).reason).toBe('ERROR');
    expect(snapshot.evaluate('ok').value).toBe(false);
  });
});

describe('control and invisible characters in flag keys and evaluator names are refused', () => {
  // Keys are printed in logs, terminals and admin UIs. Each class below can rewrite a terminal,
  // forge a log line, or make one key display as another.
  const classes: Array<[what: string, key: string, codePoint: string, kind: string]> = [
    ['C0: an xterm title + clear-screen sequence', '\x1b]0;pwned\x07\x1b[2Jfast-payment', 'U+001B', 'a control character'],
    ['C0: a newline (forges a second log line)', 'flag\nrollgate: all flags deleted', 'U+000A', 'a control character'],
    ['C0: NUL', 'fl\x00ag', 'U+0000', 'a control character'],
    ['DEL', 'flag\x7f', 'U+007F', 'a control character'],
    ['C1: CSI, the 8-bit form of ESC [', 'flag\u009b2J', 'U+009B', 'a C1 control character'],
    ['bidi: RIGHT-TO-LEFT OVERRIDE', 'admin\u202Egnp.exe', 'U+202E', 'an invisible formatting character (bidi override, zero-width or tag)'],
    ['bidi: FIRST STRONG ISOLATE', 'flag\u2068x', 'U+2068', 'an invisible formatting character (bidi override, zero-width or tag)'],
    ['zero-width space (looks like "fast-payment")', 'fast\u200B-payment', 'U+200B', 'an invisible formatting character (bidi override, zero-width or tag)'],
    ['byte order mark', '\uFEFFfast-payment', 'U+FEFF', 'an invisible formatting character (bidi override, zero-width or tag)'],
    ['tag character (invisible text)', 'flag\u{E0041}', 'U+E0041', 'an invisible formatting character (bidi override, zero-width or tag)'],
    ['line separator U+2028', 'flag\u2028x', 'U+2028', 'a line separator'],
    ['a lone surrogate', 'flag\uD800', 'U+D800', 'a lone surrogate'],
  ];

  /** No issue may carry a raw control, format or separator character: it is printed as \u escapes. */
  function expectPrintable(errors: ValidationIssue[]): void {
    for (const e of errors) expect(formatIssue(e)).not.toMatch(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u);
  }

  it.each(classes)('as a flag key: %s', (_what, key, codePoint, kind) => {
    const { snapshot, errors } = compileFlagSet({ flags: { [key]: { ...BOOL_FLAG }, ok: { ...BOOL_FLAG, defaultVariant: 'on' } } });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ flagKey: key, effect: 'excluded' });
    expect(errors[0]!.message).toBe(
      `the flag key contains ${kind} (${codePoint}); keys may not contain control, invisible or bidi formatting characters, which can rewrite terminals and logs or make two keys look alike: rename it using visible characters`,
    );
    expect(errors[0]!.path.startsWith('flags.')).toBe(true);
    expectPrintable(errors);
    expect(snapshot.keys()).toEqual(['ok']);
    expectOkFlagServes(snapshot);
  });

  it('the path shows the refused characters as \\u escapes', () => {
    const { errors } = compileFlagSet({ flags: { '\x1b]0;pwned\x07\x1b[2Jx': BOOL_FLAG } });
    expect(errors[0]!.path).toBe('flags.\\u001b]0;pwned\\u0007\\u001b[2Jx');
  });

  it.each(classes)('as an evaluator name: %s', (_what, name, codePoint, kind) => {
    const { snapshot, errors } = compileFlagSet({ $evaluators: { [name]: { '==': [{ var: 'role' }, 'admin'] }, good: true }, flags: { ok: BOOL_FLAG } });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ effect: 'excluded' });
    expect(errors[0]!.path.startsWith('$evaluators.')).toBe(true);
    expect(errors[0]!.message).toContain(`the evaluator name contains ${kind} (${codePoint})`);
    expectPrintable(errors);
    expect(Object.keys(snapshot.evaluators())).toEqual(['good']);
  });

  it('visible non-ASCII keys are fine (accents, other scripts, emoji)', () => {
    const { snapshot, errors } = compileFlagSet({ flags: { café: BOOL_FLAG, 'новый-поиск': BOOL_FLAG, 新機能: BOOL_FLAG, '🚀-launch': BOOL_FLAG } });
    expect(errors).toEqual([]);
    expect(snapshot.keys()).toHaveLength(4);
  });

  it('rule text echoed in messages (an unknown operator, a $ref name) is escaped too', () => {
    const { snapshot, errors } = compileFlagSet({ flags: { f: { ...BOOL_FLAG, targeting: { '\x1b[2J': [1] } }, g: { ...BOOL_FLAG, targeting: { $ref: 'a\u202Eb' } } } });
    // validation issues ($ref) come before compile issues (operators)
    expect(messages(errors)).toEqual(['flags.g.targeting: unknown $ref "a\\u202eb"; $evaluators has none', 'flags.f.targeting: unknown operator "\\u001b[2J"']);
    expect(snapshot.evaluate('f').errorMessage).toBe('flag "f": unknown operator "\\u001b[2J"');
  });
});

describe('prototype-pollution keys are refused', () => {
  const before = objectPrototypeSnapshot();
  afterEach(() => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(objectPrototypeSnapshot()).toEqual(before);
  });

  it.each(['__proto__', 'constructor', 'prototype'])('as a flag key: %s', (key) => {
    const { snapshot, errors } = compileFlagSet(JSON.parse(`{"flags": {"${key}": {"state":"ENABLED","variants":{"polluted":true}}, "ok": ${OK_FLAG_JSON}}}`) as FlagSetDefinition);
    expect(messages(errors)).toEqual([`flags.${key}: the key "${key}" is forbidden (prototype pollution)`]);
    expect(errors[0]).toMatchObject({ flagKey: key, effect: 'excluded' });
    expect(snapshot.keys()).toEqual(['ok']);
    expect(snapshot.evaluate(key).errorCode).toBe('FLAG_NOT_FOUND');
    expectOkFlagServes(snapshot);
  });

  it.each(['__proto__', 'constructor', 'prototype'])('as a key inside targeting: %s', (key) => {
    const text = `{"flags": {"f": {"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off","targeting":{"if":[{"${key}":{"polluted":1}},"on"]}}, "ok": ${OK_FLAG_JSON}}}`;
    const { snapshot, errors } = compileFlagSet(JSON.parse(text) as FlagSetDefinition);
    expect(messages(errors)).toEqual([`flags.f.targeting.if[0].${key}: the key "${key}" is forbidden (prototype pollution)`]);
    expect(snapshot.keys()).toEqual(['ok']);
    // the same text given as a string is refused the same way
    expect(messages(compileFlagSet(text).errors)).toEqual(messages(errors));
  });

  it.each(['__proto__', 'constructor', 'prototype'])('as a variant name: %s', (key) => {
    const { snapshot, errors } = compileFlagSet(`{"flags": {"f": {"state":"ENABLED","variants":{"${key}":true}}, "ok": ${OK_FLAG_JSON}}}`);
    expect(messages(errors)).toEqual([`flags.f.variants.${key}: the key "${key}" is forbidden (prototype pollution)`]);
    expect(snapshot.keys()).toEqual(['ok']);
  });

  it.each(['__proto__', 'constructor', 'prototype'])('in a var path (compile-time): %s', (key) => {
    const { snapshot, errors } = compileFlagSet({ flags: { f: { ...BOOL_FLAG, targeting: { if: [{ var: `user.${key}.polluted` }, 'on'] } }, ok: BOOL_FLAG } });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ flagKey: 'f', effect: 'parse-error', path: 'flags.f.targeting.if[0].var', message: `"${key}" may not appear in a var path` });
    expect(snapshot.evaluate('f', { user: {} }, { defaultValue: true })).toMatchObject({ value: true, reason: 'ERROR', errorCode: 'PARSE_ERROR' });
  });

  it('inside an evaluator: the evaluator is excluded and flags using it get PARSE_ERROR', () => {
    const text = `{"$evaluators": {"bad": {"in": [{"var":"x"}, {"__proto__": {"polluted": 1}}]}, "prototype": {"var":"x"}, "good": {"==": [{"var":"x"}, 1]}},
      "flags": {"usesBad": {"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off","targeting":{"if":[{"$ref":"bad"},"on"]}},
                "usesGood": {"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off","targeting":{"if":[{"$ref":"good"},"on"]}},
                "ok": ${OK_FLAG_JSON}}}`;
    const { snapshot, errors } = compileFlagSet(JSON.parse(text) as FlagSetDefinition);
    expect(errors.map((e) => [e.path, e.effect])).toEqual([
      ['$evaluators.bad.in[1].__proto__', 'excluded'],
      ['$evaluators.prototype', 'excluded'],
      ['flags.usesBad.targeting', 'parse-error'],
    ]);
    expect(errors[0]!.message).toBe('the key "__proto__" is forbidden (prototype pollution)');
    expect(Object.keys(snapshot.evaluators())).toEqual(['good']);
    expect(snapshot.evaluate('usesBad', { x: 1 })).toMatchObject({ reason: 'ERROR', errorCode: 'PARSE_ERROR' });
    expect(snapshot.evaluate('usesGood', { x: 1 })).toMatchObject({ value: true, reason: 'TARGETING_MATCH' });
  });

  it('a $ref naming an Object.prototype member is an unknown evaluator, not an inherited one', () => {
    const { snapshot, errors } = compileFlagSet({ flags: { f: { ...BOOL_FLAG, targeting: { $ref: 'toString' } } } });
    expect(errors[0]).toMatchObject({ path: 'flags.f.targeting', effect: 'parse-error', message: 'unknown $ref "toString"; $evaluators has none' });
    expect(snapshot.evaluate('f').errorCode).toBe('PARSE_ERROR');
  });

  it.each(['__proto__', 'constructor', 'prototype'])('at the top level: %s rejects the whole set', (key) => {
    const { snapshot, errors } = compileFlagSet(JSON.parse(`{"${key}": {"polluted": 1}, "flags": {"ok": ${OK_FLAG_JSON}}}`) as FlagSetDefinition);
    expect(messages(errors)).toEqual([`${key}: the key "${key}" is forbidden (prototype pollution)`]);
    expect(errors[0]!.effect).toBe('rejected');
    expect(snapshot.keys()).toEqual([]);
  });

  it('in flag-set metadata', () => {
    const { errors } = compileFlagSet(`{"metadata": {"__proto__": "polluted"}, "flags": {"ok": ${OK_FLAG_JSON}}}`);
    expect(messages(errors)).toEqual(['metadata.__proto__: the key "__proto__" is forbidden (prototype pollution)']);
  });

  it('an operator named like an Object.prototype member is unknown', () => {
    const { snapshot, errors } = compileFlagSet({ flags: { f: { ...BOOL_FLAG, targeting: { toString: [] } }, g: { ...BOOL_FLAG, targeting: { hasOwnProperty: ['x'] } } } });
    expect(messages(errors)).toEqual(['flags.f.targeting: unknown operator "toString"', 'flags.g.targeting: unknown operator "hasOwnProperty"']);
    expect(snapshot.evaluate('f').errorCode).toBe('PARSE_ERROR');
  });
});

describe('unresolvable targeting: flag kept, evaluates to PARSE_ERROR', () => {
  it('unknown $ref: only that flag fails, with the evaluator names in the message', () => {
    const { snapshot, errors } = compileFlagSet({
      $evaluators: { isAdmin: { '==': [{ var: 'role' }, 'admin'] } },
      flags: {
        f: { ...BOOL_FLAG, targeting: { if: [{ $ref: 'isAdmn' }, 'on'] } },
        g: { ...BOOL_FLAG, targeting: { if: [{ $ref: 'isAdmin' }, 'on'] } },
      },
    });
    expect(messages(errors)).toEqual(['flags.f.targeting: unknown $ref "isAdmn"; $evaluators has isAdmin']);
    expect(errors[0]).toMatchObject({ flagKey: 'f', effect: 'parse-error' });
    expect(snapshot.keys()).toEqual(['f', 'g']);
    const r = snapshot.evaluate('f', { role: 'admin' }, { defaultValue: true });
    expect(r).toMatchObject({ value: true, reason: 'ERROR', errorCode: 'PARSE_ERROR' });
    expect(r.variant).toBeUndefined();
    expect(r.errorMessage).toContain('isAdmn');
    expect(snapshot.evaluate('g', { role: 'admin' })).toMatchObject({ value: true, reason: 'TARGETING_MATCH' });
  });

  it('$ref cycles are a parse error, not a stack overflow', () => {
    const { snapshot, errors } = compileFlagSet({ $evaluators: { a: { $ref: 'b' }, b: { $ref: 'a' } }, flags: { f: { ...BOOL_FLAG, targeting: { $ref: 'a' } }, ok: BOOL_FLAG } });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ flagKey: 'f', effect: 'parse-error' });
    expect(errors[0]!.message).toMatch(/nests more than 16 levels/);
    expect(snapshot.evaluate('f').errorCode).toBe('PARSE_ERROR');
    expect(snapshot.evaluate('ok').reason).toBe('STATIC');
  });

  it('evaluators may reference other evaluators', () => {
    const snapshot = compileFlagSet({
      $evaluators: { isStaff: { ends_with: [{ var: 'email' }, '@example.com'] }, isStaffAdmin: { and: [{ $ref: 'isStaff' }, { '==': [{ var: 'role' }, 'admin'] }] } },
      flags: { f: { ...BOOL_FLAG, targeting: { if: [{ $ref: 'isStaffAdmin' }, 'on'] } } },
    }).snapshot;
    expect(snapshot.evaluate('f', { email: 'a@example.com', role: 'admin' }).value).toBe(true);
    expect(snapshot.evaluate('f', { email: 'a@example.com', role: 'user' }).value).toBe(false);
    expect(snapshot.evaluate('f', { email: 'a@example.org', role: 'admin' }).value).toBe(false);
  });

  it('unknown operator: PARSE_ERROR with the path of the offending rule', () => {
    const { snapshot, errors } = compileFlagSet({ flags: { f: { ...BOOL_FLAG, targeting: { if: [{ frobnicate: [1] }, 'on'] } }, ok: BOOL_FLAG } });
    expect(messages(errors)).toEqual(['flags.f.targeting.if[0]: unknown operator "frobnicate"']);
    expect(errors[0]).toMatchObject({ flagKey: 'f', effect: 'parse-error' });
    expect(snapshot.evaluate('f', {}, { defaultValue: true })).toMatchObject({ value: true, reason: 'ERROR', errorCode: 'PARSE_ERROR' });
    expect(snapshot.evaluate('ok')).toMatchObject({ value: false, reason: 'STATIC' });
  });

  it('wrong arity of a standard operator: PARSE_ERROR naming the count', () => {
    const { snapshot, errors } = compileFlagSet({ flags: { f: { ...BOOL_FLAG, targeting: { in: ['a'] } }, g: { ...BOOL_FLAG, targeting: { '<': [1] } } } });
    expect(messages(errors)).toEqual(['flags.f.targeting.in: expects 2 argument(s), got 1', 'flags.g.targeting.<: expects at least 2 argument(s), got 1']);
    expect(snapshot.evaluate('f').errorCode).toBe('PARSE_ERROR');
  });

  it('a DISABLED flag with unusable targeting is still just DISABLED', () => {
    const { snapshot } = compileFlagSet({ flags: { f: { ...BOOL_FLAG, state: 'DISABLED', targeting: { $ref: 'nope' } } } });
    expect(snapshot.evaluate('f', {}, { defaultValue: true })).toEqual({ flagKey: 'f', value: true, reason: 'DISABLED', flagMetadata: {} });
  });
});

describe('the snapshot owns its data', () => {
  it('does not alias the caller input: mutating it after compile changes nothing', () => {
    const input: FlagSetDefinition = {
      metadata: { version: 1 },
      $evaluators: { isAdmin: { '==': [{ var: 'role' }, 'admin'] } },
      flags: {
        f: { state: 'ENABLED', variants: { on: { color: 'red' }, off: { color: 'grey' } }, defaultVariant: 'off', targeting: { if: [{ $ref: 'isAdmin' }, 'on'] }, metadata: { owner: 'a' } },
      },
    };
    const { snapshot } = compileFlagSet(input);
    const before = snapshot.evaluate('f', { role: 'admin' });
    const f = input.flags.f!;
    (f.variants.on as { color: string }).color = 'blue';
    f.defaultVariant = 'on';
    f.state = 'DISABLED';
    (f.targeting!.if as unknown[])[1] = 'off';
    ((input.$evaluators!.isAdmin as { '==': unknown[] })['=='])[1] = 'root';
    input.metadata!.version = 2;
    f.metadata!.owner = 'b';
    delete input.flags.f;
    expect(snapshot.evaluate('f', { role: 'admin' })).toEqual(before);
    expect(before).toMatchObject({ value: { color: 'red' }, variant: 'on', reason: 'TARGETING_MATCH', flagMetadata: { version: 1, owner: 'a' } });
    expect(snapshot.evaluate('f', { role: 'root' })).toMatchObject({ value: { color: 'grey' }, reason: 'DEFAULT' });
    expect(snapshot.definition('f')!.variants.on).toEqual({ color: 'red' });
  });

  it('definition() returns the flag as written (with $ref), deeply frozen', () => {
    const { snapshot } = compileFlagSet({
      $evaluators: { isAdmin: { '==': [{ var: 'role' }, 'admin'] } },
      flags: { f: { state: 'ENABLED', variants: { on: { a: [1] }, off: { a: [] } }, defaultVariant: 'off', targeting: { if: [{ $ref: 'isAdmin' }, 'on'] } } },
    });
    const def = snapshot.definition('f')!;
    expect(def).toEqual({ state: 'ENABLED', variants: { on: { a: [1] }, off: { a: [] } }, defaultVariant: 'off', targeting: { if: [{ $ref: 'isAdmin' }, 'on'] } });
    expect(Object.isFrozen(def)).toBe(true);
    expect(Object.isFrozen(def.variants)).toBe(true);
    expect(Object.isFrozen((def.variants.on as { a: number[] }).a)).toBe(true);
    expect(Object.isFrozen(def.targeting!.if)).toBe(true);
    expect(() => {
      (def as { state: string }).state = 'DISABLED';
    }).toThrow(TypeError);
    expect(() => (def.variants.on as { a: number[] }).a.push(2)).toThrow(TypeError);
    expect(snapshot.definition('missing')).toBeUndefined();
  });

  it('object values handed to callers cannot change what later evaluations return', () => {
    const { snapshot } = compileFlagSet({ flags: { f: { state: 'ENABLED', variants: { v: { limits: { rpm: 10 } } }, defaultVariant: 'v' } } });
    const first = snapshot.evaluate('f').value as { limits: { rpm: number } };
    try {
      first.limits.rpm = 99;
    } catch {
      // frozen values throw in strict mode; either way the next evaluation must be unaffected
    }
    expect(snapshot.evaluate('f').value).toEqual({ limits: { rpm: 10 } });
  });

  it('evaluators() is frozen all the way down, like definition()', () => {
    const { snapshot } = compileFlagSet({ $evaluators: { isAdmin: { in: [{ var: 'role' }, ['admin', 'root']] } }, flags: { ok: BOOL_FLAG } });
    const evaluators = snapshot.evaluators();
    expect(evaluators).toEqual({ isAdmin: { in: [{ var: 'role' }, ['admin', 'root']] } });
    expect(Object.isFrozen(evaluators)).toBe(true);
    expect(Object.isFrozen(evaluators.isAdmin)).toBe(true);
    expect(Object.isFrozen((evaluators.isAdmin as { in: unknown[] }).in)).toBe(true);
  });

  it('flagMetadata is frozen', () => {
    const { snapshot } = compileFlagSet({ metadata: { a: 1 }, flags: { f: { ...BOOL_FLAG, metadata: { b: 2 } } } });
    expect(Object.isFrozen(snapshot.evaluate('f').flagMetadata)).toBe(true);
    expect(Object.isFrozen(snapshot.metadata)).toBe(true);
  });
});

describe('FlagValidationError', () => {
  it('carries the issues and lists them as "path: message"', () => {
    const { errors } = compileFlagSet({ flags: { 'fast-payment': { ...BOOL_FLAG, defaultVariant: 'nope' }, g: { ...BOOL_FLAG, targeting: { nope: [] } } } });
    const err = new FlagValidationError(errors, 'flags.json');
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('FlagValidationError');
    expect(err.code).toBe('ERR_ROLLGATE_FLAG_VALIDATION');
    expect(err.issues).toBe(errors);
    expect(err.message).toBe('flags.json: flags.fast-payment.defaultVariant: "nope" is not one of the variants on, off; flags.g.targeting: unknown operator "nope"');
    expect(new FlagValidationError([{ path: '', message: 'flag set is not valid JSON', effect: 'rejected' }]).message).toBe('flag set is not valid JSON');
  });
});
