// Differential tests against @openfeature/flagd-core 4.0.1 (the reference JS evaluator of flagd)
// and its JsonLogic engine. Generated contexts use ASCII keys: flagd-core hashes UTF-16 code units,
// flagd (Go) and Rollgate hash UTF-8, so non-ASCII bucketing keys are compared by giving flagd-core
// their UTF-8 bytes as a binary string (one code unit per byte), which it then hashes as flagd does.
import { FlagdCore } from '@openfeature/flagd-core';
import { changedFlagKeys, compileFlagSet, type EvaluationContext, type FlagDefinition, type FlagSetDefinition, type FlagValue, type FlagValueType, type JsonValue } from '@rollgate/core';
import { asciiId, pickFrom, prng, ruleValue, silentLogger } from './helpers';

const VIP_TENANTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark', 'wayne', 'wonka', 'tyrell', 'cyberdyne'];
const NEW_YEAR = 1_767_225_600; // 2026-01-01T00:00:00Z, in seconds

const FLAG_SET: FlagSetDefinition = {
  $schema: 'https://flagd.dev/schema/v0/flags.json',
  metadata: { flagSetId: 'checkout', version: 12, owner: 'platform' },
  $evaluators: {
    isStaff: { ends_with: [{ var: 'email' }, '@example.com'] },
    vipTenant: { in: [{ var: 'tenant' }, VIP_TENANTS] },
  },
  flags: {
    // admins, VIP tenants, then a 20% rollout
    'new-checkout': {
      state: 'ENABLED',
      variants: { on: true, off: false },
      defaultVariant: 'off',
      targeting: { if: [{ or: [{ '==': [{ var: 'role' }, 'admin'] }, { $ref: 'vipTenant' }] }, 'on', { fractional: [['on', 20], ['off', 80]] }] },
      metadata: { owner: 'payments', ticket: 'PAY-12' },
    },
    'app-gate': {
      state: 'ENABLED',
      variants: { on: true, off: false },
      defaultVariant: 'off',
      targeting: { if: [{ sem_ver: [{ var: 'appVersion' }, '>=', '2.3.0'] }, 'on', { sem_ver: [{ var: 'appVersion' }, '^', '1.0.0'] }, 'off'] },
    },
    banner: {
      state: 'ENABLED',
      variants: { english: 'Hello', partner: 'Welcome, partner', staff: 'Hi team', none: '' },
      defaultVariant: 'none',
      targeting: { if: [{ $ref: 'isStaff' }, 'staff', { starts_with: [{ var: 'locale' }, 'en'] }, 'english', { ends_with: [{ var: 'email' }, '@partner.io'] }, 'partner'] },
    },
    'rate-limit': {
      state: 'ENABLED',
      variants: { low: 10, mid: 100, high: 1000 },
      defaultVariant: 'mid',
      targeting: { if: [{ '<': [{ var: 'requests' }, 100] }, 'low', { '>=': [{ var: 'requests' }, 10000] }, 'high', { fractional: [['low', 1], ['mid', 2], ['high', 1]] }] },
    },
    theme: {
      state: 'ENABLED',
      variants: { dark: { bg: '#000', fg: '#fff' }, light: { bg: '#fff', fg: '#000' }, staff: { bg: '#f0f', fg: '#0f0', beta: true } },
      defaultVariant: 'light',
      targeting: { if: [{ $ref: 'isStaff' }, 'staff', { fractional: [{ cat: [{ var: '$flagd.flagKey' }, { var: ['tenant', 'no-tenant'] }] }, ['dark', 50], ['light', 50]] }] },
    },
    'kill-switch': { state: 'DISABLED', variants: { on: true, off: false }, defaultVariant: 'on' },
    'no-default': { state: 'ENABLED', variants: { yes: true, no: false }, targeting: { if: [{ '==': [{ var: 'plan' }, 'enterprise'] }, 'yes'] } },
    'static-copy': { state: 'ENABLED', variants: { v1: 'Buy now', v2: 'Get started' }, defaultVariant: 'v2', metadata: { owner: 'growth' } },
    'beta-groups': {
      state: 'ENABLED',
      variants: { on: true, off: false },
      defaultVariant: 'off',
      targeting: { if: [{ some: [{ var: 'groups' }, { in: [{ var: '' }, ['beta', 'staff']] }] }, 'on', 'off'] },
    },
    region: { state: 'ENABLED', variants: { eu: 'eu-west-1', us: 'us-east-1' }, defaultVariant: 'us', targeting: { var: 'region' } },
    'seats-staff': {
      state: 'ENABLED',
      variants: { true: 'unlimited', false: 'limited' },
      defaultVariant: 'false',
      targeting: { and: [{ $ref: 'isStaff' }, { '>': [{ var: 'seats' }, 10] }] },
    },
    'new-year': { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ '>=': [{ var: '$flagd.timestamp' }, NEW_YEAR] }, 'on', 'off'] } },
    'beta-cohort': {
      state: 'ENABLED',
      variants: { a: 'A', b: 'B', c: 'C' },
      defaultVariant: 'a',
      targeting: { if: [{ '!': [{ missing: ['tenant'] }] }, { fractional: [['a', 1], ['b', 1], ['c', 1]] }, null] },
    },
  },
};

const TYPES: Record<string, FlagValueType> = {
  'new-checkout': 'boolean',
  'app-gate': 'boolean',
  banner: 'string',
  'rate-limit': 'number',
  theme: 'object',
  'kill-switch': 'boolean',
  'no-default': 'boolean',
  'static-copy': 'string',
  'beta-groups': 'boolean',
  region: 'string',
  'seats-staff': 'string',
  'new-year': 'boolean',
  'beta-cohort': 'string',
};
const DEFAULTS: Record<FlagValueType, FlagValue> = { boolean: false, string: 'code-default', number: -1, object: { fallback: true } };

/** A context drawn from realistic attribute values, plus the odd wrong type (all ASCII). */
function randomContext(rand: () => number): EvaluationContext {
  const ctx: EvaluationContext = {};
  const maybe = (p: number) => rand() < p;
  if (maybe(0.9)) ctx.targetingKey = maybe(0.05) ? '' : maybe(0.05) ? (Math.floor(rand() * 1e6) as never) : asciiId(rand, 1, 36);
  if (maybe(0.6)) ctx.role = pickFrom(rand, ['admin', 'user', 'guest', 'Admin', 'admin ', 7, true]);
  if (maybe(0.7)) ctx.tenant = pickFrom(rand, [...VIP_TENANTS, 'small-co', 'ACME', 'acme-eu', asciiId(rand), 42]);
  if (maybe(0.7)) {
    ctx.email = pickFrom<unknown>(rand, [
      `${asciiId(rand, 1, 10)}@example.com`,
      `${asciiId(rand, 1, 10)}@partner.io`,
      `${asciiId(rand, 1, 10)}@gmail.com`,
      `${asciiId(rand, 1, 10)}@EXAMPLE.COM`,
      'example.com',
      12345,
      false,
    ]);
  }
  if (maybe(0.7)) ctx.appVersion = pickFrom(rand, ['2.3.0', '2.3.1', '2.2.9', 'v2.4', 'V3', '2', '1.9.0', '1.0.0-beta', '0.9.9', '2.3.0-rc.1', '2.3.0+build.7', 'junk', '', 2, 2.3, 1, true]);
  if (maybe(0.5)) ctx.locale = pickFrom(rand, ['en', 'en-GB', 'en_US', 'fr-FR', 'EN', 'de', '', 5]);
  if (maybe(0.8)) ctx.requests = pickFrom(rand, [0, 50, 99, 100, 101, 5000, 9999, 10000, 10001, 1e6, -1, '99', '10000', 'abc', '', true, false, 99.5]);
  if (maybe(0.5)) ctx.plan = pickFrom(rand, ['enterprise', 'pro', 'free', 'Enterprise', 1]);
  if (maybe(0.5)) ctx.groups = pickFrom<unknown>(rand, [['beta'], ['users'], ['users', 'staff'], [], ['BETA', 1, true], [['beta']]]);
  if (maybe(0.5)) ctx.region = pickFrom(rand, ['eu', 'us', 'ap', 'EU', 1, false, { eu: 1 }]);
  if (maybe(0.6)) ctx.seats = pickFrom(rand, [5, 10, 11, 100, '11', '9', 'many', 0]);
  if (maybe(0.05)) ctx.$flagd = { flagKey: 'spoofed', timestamp: 0 };
  return ctx;
}

function normalize(r: { value?: unknown; variant?: string; reason?: string; errorCode?: string; flagMetadata?: unknown }) {
  return {
    value: r.value,
    variant: r.variant,
    reason: r.reason === 'SPLIT' ? 'TARGETING_MATCH' : r.reason,
    errorCode: r.errorCode,
    flagMetadata: r.flagMetadata,
  };
}

describe('parity with @openfeature/flagd-core 4.0.1', () => {
  afterEach(() => jest.restoreAllMocks());

  function reference(options?: { disableDynamicCodeGeneration?: boolean }) {
    const core = new FlagdCore(undefined, silentLogger, options);
    core.setConfigurations(JSON.stringify(FLAG_SET));
    return core;
  }

  it('the realistic flag set compiles without issues', () => {
    const { snapshot, errors } = compileFlagSet(FLAG_SET);
    expect(errors).toEqual([]);
    expect(snapshot.keys()).toEqual(Object.keys(FLAG_SET.flags));
  });

  it.each<[string, { disableDynamicCodeGeneration?: boolean }]>([
    ['compiled rules (default)', {}],
    ['interpreted rules (disableDynamicCodeGeneration)', { disableDynamicCodeGeneration: true }],
  ])('value, variant, reason, errorCode and flagMetadata match resolve() for 2,500 generated contexts: %s', (_mode, options) => {
    const snapshot = compileFlagSet(FLAG_SET).snapshot;
    const core = reference(options);
    const rand = prng(options.disableDynamicCodeGeneration ? 2024 : 1234);
    const now = jest.spyOn(Date, 'now');
    const keys = [...Object.keys(FLAG_SET.flags), 'does-not-exist'];
    const mismatches: unknown[] = [];
    const reasons = new Map<string, number>();
    let compared = 0;
    for (let i = 0; i < 2_500; i++) {
      const ctx = randomContext(rand);
      now.mockReturnValue((NEW_YEAR + Math.floor((rand() - 0.5) * 20)) * 1000 + Math.floor(rand() * 1000));
      for (const key of keys) {
        // mostly the flag's own type, sometimes another one (TYPE_MISMATCH)
        const type = rand() < 0.9 ? (TYPES[key] ?? 'boolean') : pickFrom(rand, ['boolean', 'string', 'number', 'object'] as const);
        const defaultValue = DEFAULTS[type];
        const ours = normalize(snapshot.evaluate(key, ctx, { defaultValue, type }));
        const theirs = normalize(core.resolve(type, key, defaultValue as never, ctx as never) as never);
        compared++;
        reasons.set(`${ours.reason}/${ours.errorCode ?? ''}`, (reasons.get(`${ours.reason}/${ours.errorCode ?? ''}`) ?? 0) + 1);
        if (JSON.stringify(ours) !== JSON.stringify(theirs) && mismatches.length < 10) mismatches.push({ key, type, ctx, ours, theirs });
      }
    }
    expect(mismatches).toEqual([]);
    expect(compared).toBe(2_500 * keys.length);
    // the generated contexts exercise every outcome, so the comparison is meaningful
    expect([...reasons.keys()].sort()).toEqual(['DEFAULT/', 'DISABLED/', 'ERROR/FLAG_NOT_FOUND', 'ERROR/GENERAL', 'ERROR/TYPE_MISMATCH', 'STATIC/', 'TARGETING_MATCH/']);
  });

  it('non-ASCII targetingKeys are bucketed over their UTF-8 bytes: flagd-core agrees when given those bytes (it hashes UTF-16 code units)', () => {
    const snapshot = compileFlagSet(FLAG_SET).snapshot;
    const core = reference();
    const rand = prng(99);
    const pieces = ['josé', 'zoë', 'łukasz', '用户', 'müller', '🚀', 'ñ', 'Ωmega'];
    let compared = 0;
    for (let i = 0; i < 2_000; i++) {
      const tk = `${asciiId(rand, 0, 6)}${pickFrom(rand, pieces)}${asciiId(rand, 0, 12)}`;
      // the same bytes as a "binary" string: one UTF-16 code unit per UTF-8 byte
      const bytes = Buffer.from(tk, 'utf8').toString('latin1');
      for (const key of ['new-checkout', 'rate-limit', 'beta-cohort']) {
        const ours = snapshot.evaluate(key, { targetingKey: tk, role: 'user', requests: 500, tenant: 'small-co' });
        const theirs = core.resolve(TYPES[key] as 'string', key, DEFAULTS[TYPES[key]!] as never, { targetingKey: bytes, role: 'user', requests: 500, tenant: 'small-co' });
        expect([key, tk, ours.variant]).toEqual([key, tk, theirs.variant]);
        compared++;
      }
    }
    expect(compared).toBe(6_000);
  });

  it('reports SPLIT exactly where flagd-core says TARGETING_MATCH from a tail fractional', () => {
    const snapshot = compileFlagSet(FLAG_SET).snapshot;
    const core = reference();
    let splits = 0;
    for (let i = 0; i < 500; i++) {
      const ctx = { targetingKey: `user-${i}`, role: 'user' };
      const ours = snapshot.evaluate('new-checkout', ctx);
      const theirs = core.resolve('boolean', 'new-checkout', false, ctx);
      expect(theirs.reason).toBe('TARGETING_MATCH');
      expect(ours.reason).toBe('SPLIT');
      expect(ours.variant).toBe(theirs.variant);
      splits++;
    }
    expect(splits).toBe(500);
    expect(snapshot.evaluate('new-checkout', { targetingKey: 'x', role: 'admin' }).reason).toBe('TARGETING_MATCH');
  });

  it('a flag with an unknown $ref is PARSE_ERROR in both, the other flags unaffected', () => {
    const set: FlagSetDefinition = { ...FLAG_SET, flags: { ...FLAG_SET.flags, broken: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ $ref: 'nope' }, 'on'] } } } };
    const snapshot = compileFlagSet(set).snapshot;
    const core = new FlagdCore(undefined, silentLogger);
    core.setConfigurations(JSON.stringify(set));
    const ctx = { targetingKey: 'u1', role: 'admin' };
    expect(normalize(snapshot.evaluate('broken', ctx, { defaultValue: true, type: 'boolean' }))).toEqual(normalize(core.resolve('boolean', 'broken', true, ctx)));
    expect(snapshot.evaluate('broken', ctx).errorCode).toBe('PARSE_ERROR');
    expect(normalize(snapshot.evaluate('new-checkout', ctx, { defaultValue: false, type: 'boolean' }))).toEqual(normalize(core.resolve('boolean', 'new-checkout', false, ctx)));
  });

  it('missing / missing_some see the $flagd properties flagd injects into the data, like var does', () => {
    const set: FlagSetDefinition = {
      flags: {
        m: { state: 'ENABLED', variants: { absent: 'A', present: 'P' }, defaultVariant: 'absent', targeting: { if: [{ missing: ['$flagd.flagKey', '$flagd.timestamp'] }, 'absent', 'present'] } },
        ms: { state: 'ENABLED', variants: { absent: 'A', present: 'P' }, defaultVariant: 'absent', targeting: { if: [{ missing_some: [1, ['$flagd.flagKey']] }, 'absent', 'present'] } },
        v: { state: 'ENABLED', variants: { absent: 'A', present: 'P' }, defaultVariant: 'absent', targeting: { if: [{ var: '$flagd.flagKey' }, 'present', 'absent'] } },
      },
    };
    const snapshot = compileFlagSet(set).snapshot;
    const core = new FlagdCore(undefined, silentLogger);
    core.setConfigurations(JSON.stringify(set));
    for (const key of ['v', 'm', 'ms']) {
      expect([key, normalize(snapshot.evaluate(key, {}, { defaultValue: 'x', type: 'string' }))]).toEqual([key, normalize(core.resolve('string', key, 'x', {}))]);
    }
  });

  it('changedFlagKeys agrees with the keys flagd-core reports from setConfigurations', () => {
    const core = new FlagdCore(undefined, silentLogger);
    const steps: Array<(s: FlagSetDefinition) => FlagSetDefinition> = [
      (s) => ({ ...s, flags: { ...s.flags, 'static-copy': { ...s.flags['static-copy']!, defaultVariant: 'v1' } } }),
      (s) => ({ ...s, $evaluators: { ...s.$evaluators, isStaff: { ends_with: [{ var: 'email' }, '@example.org'] } } }),
      (s) => ({ ...s, $evaluators: { ...s.$evaluators, vipTenant: { in: [{ var: 'tenant' }, ['acme']] } } }),
      (s) => {
        const flags: Record<string, FlagDefinition> = { ...s.flags, added: { state: 'ENABLED', variants: { a: 1 }, defaultVariant: 'a' } };
        delete flags['kill-switch'];
        return { ...s, flags };
      },
      (s) => ({ ...s, flags: { ...s.flags, 'static-copy': { ...s.flags['static-copy']!, targeting: { $ref: 'notDefined' } } } }),
      (s) => ({ ...s, $evaluators: { ...s.$evaluators, notDefined: { if: [true, 'v1'] } } }),
      (s) => ({ ...s, flags: { ...s.flags, region: { ...s.flags.region!, state: 'DISABLED' } } }),
      (s) => ({ ...s, metadata: { ...s.metadata, version: 13 } }), // every flag's flagMetadata changes
      (s) => s,
    ];
    let current = FLAG_SET;
    core.setConfigurations(JSON.stringify(current));
    let previous = compileFlagSet(current).snapshot;
    const log: Array<{ step: number; ours: string[]; theirs: string[] }> = [];
    steps.forEach((step, i) => {
      current = step(current);
      const next = compileFlagSet(current).snapshot;
      log.push({ step: i, ours: changedFlagKeys(previous, next).sort(), theirs: core.setConfigurations(JSON.stringify(current)).sort() });
      previous = next;
    });
    expect(log.map((l) => ({ step: l.step, keys: l.ours }))).toEqual(log.map((l) => ({ step: l.step, keys: l.theirs })));
    // sanity: every step but the last one changes something
    expect(log.map((l) => l.theirs.length > 0)).toEqual(steps.map((_s, i) => i < steps.length - 1));
  });
});

describe('standard JsonLogic operators agree with json-logic-engine (the engine flagd-core uses)', () => {
  const { LogicEngine } = require('json-logic-engine') as { LogicEngine: new () => { run(rule: unknown, data: unknown): unknown; build(rule: unknown): (data: unknown) => unknown } };
  const engine = new LogicEngine();

  type Outcome = { ok: true; value: unknown } | { ok: false };
  const outcome = (fn: () => unknown): Outcome => {
    try {
      return { ok: true, value: fn() };
    } catch {
      return { ok: false };
    }
  };

  const cases: Array<[JsonValue, EvaluationContext]> = [
    [{ '==': [null, 0] }, {}],
    [{ '==': [{ var: 'a' }, 0] }, { a: null }],
    [{ '==': [{ var: 'a' }, false] }, { a: 0 }],
    [{ '==': [{ var: 'a' }, '0'] }, { a: false }],
    [{ '==': [{ var: 'a' }, 1] }, { a: 'abc' }],
    [{ '==': [{ var: 'a' }, [1]] }, { a: [1] }],
    [{ '!=': [{ var: 'a' }, '1'] }, { a: 1 }],
    [{ '===': [{ var: 'a' }, '1'] }, { a: 1 }],
    [{ '!==': [{ var: 'a' }, '1'] }, { a: 1 }],
    [{ '<': [{ var: 'a' }, '10'] }, { a: '9' }],
    [{ '<': [{ var: 'a' }, 10] }, { a: '9' }],
    [{ '<': [{ var: 'a' }, null] }, { a: 'x' }],
    [{ '<': [{ var: 'a' }, 5] }, { a: 'abc' }],
    [{ '<': [{ var: 'a' }, 1, 3] }, { a: 0 }],
    [{ '<=': [1, { var: 'a' }, 1] }, { a: 1 }],
    [{ '>': [{ var: 'a' }, 1] }, { a: [2] }],
    [{ '>=': [{ var: 'a' }, '2'] }, { a: '10' }],
    [{ '<': [{ var: 'a' }, { var: 'b' }] }, { a: true, b: 2 }],
    [{ '+': [1, '2', { var: 'a' }] }, { a: true }],
    [{ '+': [{ var: 'a' }, 0] }, { a: 'abc' }],
    [{ '-': [{ var: 'a' }] }, { a: '2' }],
    [{ '*': [{ var: 'a' }, 2] }, { a: '3' }],
    [{ '*': [{ var: 'a' }, 1] }, { a: [1] }],
    [{ '/': [{ var: 'a' }, 4] }, { a: 2 }],
    [{ '/': [{ var: 'a' }] }, { a: 4 }],
    [{ '%': [{ var: 'a' }, 4] }, { a: -9 }],
    [{ '%': [{ var: 'a' }, 0] }, { a: 1 }],
    [{ min: [{ var: 'a' }, 3, -1] }, { a: 2 }],
    [{ max: [{ var: 'a' }, 1] }, { a: '3' }],
    [{ max: [{ var: 'a' }, 1] }, { a: null }],
    [{ in: [{ var: 'a' }, 'hello'] }, { a: 'ell' }],
    [{ in: [{ var: 'a' }, ['x', 1]] }, { a: 1 }],
    [{ in: [{ var: 'a' }, null] }, { a: 1 }],
    [{ in: ['a', { var: 'x' }] }, { x: 5 }],
    [{ in: [{ var: 'a' }, Array.from({ length: 20 }, (_, i) => i)] }, { a: '3' }],
    [{ in: [{ var: 'a' }, Array.from({ length: 20 }, (_, i) => i)] }, { a: 3 }],
    [{ cat: ['a', 1, true, { var: 'a' }] }, { a: 2.5 }],
    [{ cat: [[1, 2], { var: 'a' }] }, { a: { b: 1 } }],
    [{ substr: [{ var: 'a' }, -3, -1] }, { a: 'hello' }],
    [{ substr: [{ var: 'a' }, 0, -10] }, { a: 'hello' }],
    [{ merge: [{ var: 'a' }, [3, [4]], 5] }, { a: [1, 2] }],
    [{ merge: [{ var: 'a' }] }, { a: null }],
    [{ map: [{ var: 'a' }, { '*': [{ var: '' }, 2] }] }, { a: [1, 2, 3] }],
    [{ filter: [{ var: 'a' }, { var: 'on' }] }, { a: [{ on: true, k: 1 }, { on: false }] }],
    [{ reduce: [{ var: 'a' }, { '+': [{ var: 'current' }, { var: 'accumulator' }] }, 10] }, { a: [1, 2, 3] }],
    [{ all: [{ var: 'a' }, { '>': [{ var: '' }, 0] }] }, { a: [] }],
    [{ some: [{ var: 'a' }, { var: 'flag' }] }, { a: [1], flag: true }],
    [{ none: [{ var: 'a' }, { var: '' }] }, { a: [0, false] }],
    [{ and: [1, 'a', 0, 'b'] }, {}],
    [{ or: [0, '', { var: 'a' }] }, { a: 'x' }],
    [{ or: [{ var: 'a' }] }, { a: [] }],
    [{ '!': { var: 'a' } }, { a: {} }],
    [{ '!!': [{ var: 'a' }] }, { a: '0' }],
    [{ if: [{ var: 'a' }, 1, { var: 'b' }, 2, 3] }, { b: true }],
    [{ if: [{ var: 'a' }, 1, { var: 'b' }, 2] }, {}],
    [{ if: [] }, {}],
    [{ '?:': [{ var: 'a' }, 'y', 'n'] }, { a: [0] }],
    [{ missing: ['a', 'b.c', 'd'] }, { a: 1, b: { c: 0 } }],
    [{ missing: ['a'] }, { a: null }],
    [{ missing_some: [2, ['a', 'b', 'c']] }, { a: 1 }],
    [{ var: 'a.1' }, { a: ['x', 'y'] }],
    [{ var: ['a.x', 5] }, { a: {} }],
    [{ var: ['a', 5] }, { a: false }],
    [{ var: 'a.length' }, { a: 'xyz' }],
    [{ var: { var: 'k' } }, { k: 'b', b: 42 }],
    [{ var: 'toString' }, {}],
    [{ var: 'a.b' }, { a: 'str' }],
  ];

  it.each(cases.map(([rule, ctx]) => ({ rule, ctx, name: `${JSON.stringify(rule)} with ${JSON.stringify(ctx)}` })))('$name', ({ rule, ctx }) => {
    const reference = outcome(() => engine.run(rule, ctx));
    expect(outcome(() => ruleValue(rule, ctx))).toEqual(reference);
    // and the compiled engine agrees with its interpreter on these inputs (the comparison is meaningful for both modes)
    expect(outcome(() => engine.build(rule)(ctx))).toEqual(reference);
  });
});
