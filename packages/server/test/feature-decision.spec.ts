import { AsyncLocalStorageTransactionContextPropagator, OpenFeature, ProviderEvents, type Client, type EvaluationContext, type Hook } from '@openfeature/server-sdk';
import { ConfigError, MemoryFlagStore, RollgateProvider } from '@rollgate/redis';
import { decideFeature, decideFeatureNow, featureRequirement, type FeatureDecision, type FeatureRequirementOptions } from '@rollgate/server';

// decideFeature reads a RollgateProvider's snapshot directly when the OpenFeature client would run
// no hook. These tests hold that shortcut to the client's answer, decision for decision, and check
// that anything a hook could observe still goes through the client.

const flags = {
  pilot: {
    state: 'ENABLED',
    variants: { on: true, off: false },
    defaultVariant: 'off',
    targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { in: [{ var: 'tenant' }, ['atlas', 'nordic']] }, 'on', { fractional: [['on', 50], ['off', 50]] }] },
  },
  tier: { state: 'ENABLED', variants: { fast: 'fast', slow: 'slow' }, defaultVariant: 'slow', targeting: { if: [{ '==': [{ var: 'tenant' }, 'nordic'] }, 'fast', null] } },
  limit: { state: 'ENABLED', variants: { low: 5, high: 50 }, defaultVariant: 'low', targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'high', null] } },
  retired: { state: 'DISABLED', variants: { on: true, off: false }, defaultVariant: 'on' },
  // targeting that names a variant the flag does not have: an evaluation error
  misconfigured: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ '==': [{ var: 'tenant' }, 'atlas'] }, 'gone', null] } },
};

const requirements: Array<[string | string[], FeatureRequirementOptions]> = [
  ['pilot', {}],
  ['tier', { expected: 'fast' }],
  ['limit', { expected: 50 }],
  ['pilot', { expected: false }],
  ['retired', { expected: false }], // a kill switch denies even a guard that expects false
  ['tier', {}], // type mismatch: a string flag required as boolean
  ['retired', {}],
  ['misconfigured', {}],
  ['no-such-flag', {}],
  [['pilot', 'tier'], { mode: 'all', expected: true }],
  [['retired', 'pilot'], { mode: 'any' }],
];

const contexts: EvaluationContext[] = [
  { targetingKey: 'ada', roles: ['admin'], tenant: 'internal' },
  { targetingKey: 'bo', roles: ['agent'], tenant: 'atlas' },
  { targetingKey: 'nils', roles: ['agent'], tenant: 'nordic' },
  ...['u1', 'u2', 'u3', 'u4', 'u5', 'u6'].map((targetingKey) => ({ targetingKey, roles: ['customer'], tenant: 'smallco' })),
  { roles: ['customer'] }, // no targetingKey: fractional has nothing to hash
];

let provider: RollgateProvider;
let resolverCalls: jest.SpyInstance;
let domainSeq = 0;

/** A client on its own domain, bound to `p`. */
async function clientFor(p: RollgateProvider): Promise<Client> {
  const domain = `decision-${++domainSeq}`;
  await OpenFeature.setProviderAndWait(domain, p);
  return OpenFeature.getClient(domain);
}

async function decideBothWays(client: Client, flagKeys: string | string[], options: FeatureRequirementOptions, context: EvaluationContext) {
  const auto = await decideFeature(client, featureRequirement(flagKeys, options), context);
  const viaClient = await decideFeature(client, featureRequirement(flagKeys, { ...options, evaluation: 'client' }), context);
  return { auto, viaClient };
}

beforeAll(() => {
  OpenFeature.setTransactionContextPropagator(new AsyncLocalStorageTransactionContextPropagator());
});

beforeEach(() => {
  provider = new RollgateProvider({ store: new MemoryFlagStore({ initial: { flags } }) });
  // The client calls these; the direct path must not.
  resolverCalls = jest.spyOn(provider, 'resolveBooleanEvaluation');
  jest.spyOn(provider, 'resolveStringEvaluation');
  jest.spyOn(provider, 'resolveNumberEvaluation');
});

afterEach(async () => {
  OpenFeature.clearHooks();
  OpenFeature.setContext({});
  await OpenFeature.clearProviders();
});

describe('decideFeature without hooks', () => {
  it('decides exactly as the OpenFeature client does, for every requirement and caller, without calling it', async () => {
    const client = await clientFor(provider);
    const decisions: FeatureDecision[] = [];
    for (const [keys, options] of requirements) {
      for (const context of contexts) {
        resolverCalls.mockClear();
        const { auto, viaClient } = await decideBothWays(client, keys, options, context);
        expect({ keys, context, decision: auto }).toEqual({ keys, context, decision: viaClient });
        decisions.push(auto);
      }
    }
    // the matrix covers every outcome, so agreement is not agreement on one answer
    expect(new Set(decisions.map((d) => d.outcome))).toEqual(new Set(['allow', 'deny']));
    expect(decisions.some((d) => d.outcome === 'deny' && d.reason.startsWith('TYPE_MISMATCH'))).toBe(true);
    expect(decisions.some((d) => d.outcome === 'deny' && d.reason.startsWith('FLAG_NOT_FOUND'))).toBe(true);
    expect(decisions.some((d) => d.outcome === 'deny' && d.reason.includes('DISABLED'))).toBe(true);
    expect(decisions.some((d) => d.outcome === 'deny' && d.reason.startsWith('GENERAL'))).toBe(true);
    // the 'client' runs reached the provider's resolvers; count the boolean ones of one requirement
    resolverCalls.mockClear();
    await decideFeature(client, featureRequirement('pilot'), contexts[0]!);
    expect(resolverCalls).not.toHaveBeenCalled();
    await decideFeature(client, featureRequirement('pilot', { evaluation: 'client' }), contexts[0]!);
    expect(resolverCalls).toHaveBeenCalledTimes(1);
  });

  it('merges the API, transaction, client and request contexts in the client\'s order', async () => {
    const client = await clientFor(provider);
    const cases: Array<{ api: EvaluationContext; transaction: EvaluationContext; client: EvaluationContext; request: EvaluationContext; allowed: boolean }> = [
      // each later layer overrides the tenant of the earlier ones; u4 falls in the 'off' half of the
      // fractional split, so only a VIP tenant lets them in
      { api: { tenant: 'atlas' }, transaction: {}, client: {}, request: { targetingKey: 'u4' }, allowed: true },
      { api: { tenant: 'atlas' }, transaction: { tenant: 'smallco' }, client: {}, request: { targetingKey: 'u4' }, allowed: false },
      { api: {}, transaction: { tenant: 'smallco' }, client: { tenant: 'nordic' }, request: { targetingKey: 'u4' }, allowed: true },
      { api: {}, transaction: {}, client: { tenant: 'nordic' }, request: { targetingKey: 'u4', tenant: 'smallco' }, allowed: false },
      // identity() makes the transaction context a copy of the request's: an API-level attribute still counts
      { api: { tenant: 'atlas' }, transaction: { targetingKey: 'u4' }, client: {}, request: { targetingKey: 'u4' }, allowed: true },
      // the identity can come from the transaction context alone
      { api: {}, transaction: { targetingKey: 'ada', roles: ['admin'] }, client: {}, request: {}, allowed: true },
    ];
    for (const c of cases) {
      OpenFeature.setContext(c.api);
      client.setContext(c.client);
      const { auto, viaClient } = await new Promise<Awaited<ReturnType<typeof decideBothWays>>>((resolve, reject) =>
        OpenFeature.setTransactionContext(c.transaction, () => decideBothWays(client, 'pilot', {}, c.request).then(resolve, reject)),
      );
      expect(auto).toEqual(viaClient);
      expect({ case: c, outcome: auto.outcome }).toEqual({ case: c, outcome: c.allowed ? 'allow' : 'deny' });
    }
    expect(resolverCalls).toHaveBeenCalledTimes(cases.length); // once per case: the 'client' run
  });

  it('gives the same decision synchronously with decideFeatureNow, and undefined whenever the client must evaluate', async () => {
    const client = await clientFor(provider);
    for (const [keys, options] of requirements) {
      for (const context of contexts) {
        const viaClient = await decideFeature(client, featureRequirement(keys, { ...options, evaluation: 'client' }), context);
        expect({ keys, context, decision: decideFeatureNow(client, featureRequirement(keys, options), context) }).toEqual({ keys, context, decision: viaClient });
        expect(decideFeatureNow(client, featureRequirement(keys, { ...options, evaluation: 'client' }), context)).toBeUndefined();
      }
    }
    client.addHooks({ finally: () => undefined });
    expect(decideFeatureNow(client, featureRequirement('pilot'), contexts[0]!)).toBeUndefined();
    expect(await decideFeature(client, featureRequirement('pilot'), contexts[0]!)).toEqual({ outcome: 'allow' });
  });

  it('answers a flag changed in the store by its new value on the next decision', async () => {
    const store = new MemoryFlagStore({ initial: { flags } });
    const live = new RollgateProvider({ store });
    const client = await clientFor(live);
    const customer = contexts[3]!;
    const before = await decideFeature(client, featureRequirement('retired'), customer);
    const changed = new Promise<void>((resolve) => live.events.addHandler(ProviderEvents.ConfigurationChanged, () => resolve()));
    await store.putFlag('retired', { ...flags.retired, state: 'ENABLED' }, { actor: 'test' });
    await changed;
    expect(before.outcome).toBe('deny');
    expect((await decideFeature(client, featureRequirement('retired'), customer)).outcome).toBe('allow');
  });
});

describe('decideFeature goes through the client whenever that is observable', () => {
  const seen = (): Hook & { flagKeys: string[] } => {
    const flagKeys: string[] = [];
    return { flagKeys, finally: (hookContext) => void flagKeys.push(hookContext.flagKey) };
  };

  it('runs an API-level hook added after the guard was built', async () => {
    const client = await clientFor(provider);
    const requirement = featureRequirement(['pilot', 'tier'], { mode: 'all' });
    await decideFeature(client, requirement, contexts[0]!);
    const hook = seen();
    OpenFeature.addHooks(hook);
    const decision = await decideFeature(client, requirement, contexts[0]!);
    expect(hook.flagKeys).toEqual(['pilot', 'tier']);
    expect(decision).toEqual({ outcome: 'deny', flagKey: 'tier', reason: expect.stringMatching(/^TYPE_MISMATCH/) });
  });

  it('runs a client-level hook', async () => {
    const client = await clientFor(provider);
    const hook = seen();
    client.addHooks(hook);
    expect(await decideFeature(client, featureRequirement('pilot'), contexts[1]!)).toEqual({ outcome: 'allow' });
    expect(hook.flagKeys).toEqual(['pilot']);
  });

  it('runs a provider-level hook', async () => {
    const hook = seen();
    Object.assign(provider, { hooks: [hook] });
    const client = await clientFor(provider);
    await decideFeature(client, featureRequirement('pilot'), contexts[1]!);
    expect(hook.flagKeys).toEqual(['pilot']);
  });

  it('evaluates through a client of your own (a wrapper), not around it', async () => {
    const sdkClient = await clientFor(provider);
    const asked: string[] = [];
    const wrapper = Object.create(sdkClient, {
      getBooleanDetails: {
        value: (flagKey: string, defaultValue: boolean, context?: EvaluationContext) => {
          asked.push(flagKey);
          return sdkClient.getBooleanDetails(flagKey, defaultValue, context);
        },
      },
    }) as Client;
    expect(await decideFeature(wrapper, featureRequirement('pilot'), contexts[1]!)).toEqual({ outcome: 'allow' });
    expect(asked).toEqual(['pilot']);
  });

  it('denies when a hook throws (the SDK turns it into an evaluation error), and cannot decide when the client itself throws', async () => {
    const client = await clientFor(provider);
    OpenFeature.addHooks({ before: () => { throw new Error('hook bug'); } });
    expect(await decideFeature(client, featureRequirement('pilot'), contexts[0]!)).toEqual({ outcome: 'deny', flagKey: 'pilot', reason: 'GENERAL: hook bug' });
    OpenFeature.clearHooks();
    const broken = Object.create(client, { getBooleanDetails: { value: () => { throw new Error('client bug'); } } }) as Client;
    expect(await decideFeature(broken, featureRequirement('pilot'), contexts[0]!)).toEqual({ outcome: 'unavailable', flagKey: 'pilot', reason: 'evaluation failed: client bug' });
  });

  it('lets a RollgateProvider subclass resolve for itself', async () => {
    class EveryoneOff extends RollgateProvider {
      override resolveBooleanEvaluation() {
        return Promise.resolve({ value: false, reason: 'STATIC' });
      }
    }
    const client = await clientFor(new EveryoneOff({ store: new MemoryFlagStore({ initial: { flags } }) }));
    expect(await decideFeature(client, featureRequirement('pilot'), contexts[0]!)).toEqual({ outcome: 'deny', flagKey: 'pilot', reason: 'value false (STATIC)' });
  });
});

describe('a flag serving the code default never passes', () => {
  it('denies a disabled flag (kill switch) or one with no applicable variant, whatever is expected', async () => {
    const set = {
      'maintenance-off': { state: 'DISABLED', variants: { on: true, off: false }, defaultVariant: 'off' },
      'theme-off': { state: 'DISABLED', variants: { dark: 'dark', light: 'light' }, defaultVariant: 'dark' },
      // targeting returns null and there is no defaultVariant: the code default is served
      'no-variant': { state: 'ENABLED', variants: { on: true, off: false }, targeting: { if: [false, 'on', null] } },
    };
    const p = new RollgateProvider({ store: new MemoryFlagStore({ initial: { flags: set } }) });
    const client = await clientFor(p);
    const ctx = contexts[0]!;
    for (const evaluation of ['auto', 'client'] as const) {
      expect(await decideFeature(client, featureRequirement('maintenance-off', { expected: false, evaluation }), ctx)).toEqual({ outcome: 'deny', flagKey: 'maintenance-off', reason: 'value true (DISABLED)' });
      expect(await decideFeature(client, featureRequirement('theme-off', { expected: 'dark', evaluation }), ctx)).toMatchObject({ outcome: 'deny', reason: 'value "" (DISABLED)' });
      expect(await decideFeature(client, featureRequirement('no-variant', { expected: false, evaluation }), ctx)).toMatchObject({ outcome: 'deny', flagKey: 'no-variant' });
      expect(await decideFeature(client, featureRequirement('no-variant', { evaluation }), ctx)).toMatchObject({ outcome: 'deny', flagKey: 'no-variant' });
    }
  });
});

describe('featureRequirement', () => {
  it('refuses an expected value the code default could equal', () => {
    expect(() => featureRequirement('theme', { expected: '' })).toThrow(/options\.expected must be a non-empty string or a finite number, got ""/);
    expect(() => featureRequirement('limit', { expected: Number.NaN })).toThrow(ConfigError);
  });

  it('refuses an unknown evaluation mode with a message naming the option', () => {
    expect(() => featureRequirement('pilot', { evaluation: 'snapshot' as never })).toThrow(ConfigError);
    expect(() => featureRequirement('pilot', { evaluation: 'snapshot' as never })).toThrow(/options\.evaluation must be 'auto' or 'client', got "snapshot"/);
  });
});
