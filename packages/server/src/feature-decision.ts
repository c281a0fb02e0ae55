import { OpenFeature, ProviderStatus, type Client, type Provider } from '@openfeature/server-sdk';
import type { EvaluationContext } from '@rollgate/core';
import type { ProviderHealth } from '@rollgate/redis';
import { ConfigError, RollgateProvider } from '@rollgate/redis';
import { recordExposure } from './outcomes';

export interface FeatureRequirementOptions {
  /** With several flags: all must pass, or any one. @default 'all' */
  mode?: 'all' | 'any';
  /**
   * The value a flag must have to pass. @default true (boolean flags). For string or number flags
   * give the variant value that grants access, e.g. 'fast'. A disabled flag (kill switch) or one
   * where no variant applies never passes, whatever is expected: the evaluation's code default is
   * chosen so that it cannot equal `expected`.
   */
  expected?: boolean | string | number;
  /**
   * Deny as "could not decide" when the provider's flags were last confirmed current longer ago
   * than this (`RollgateProvider.health().syncedAt`, kept fresh by the store's heartbeat every
   * `pollIntervalMs`, 500 ms by default). No decision passes later than this after Redis stopped
   * answering (hung, killed or cut off). Set it well above the heartbeat interval plus a round
   * trip, e.g. 2000. A provider without `health()` is limited only while STALE.
   * @default no limit: the last known flags are trusted while STALE.
   */
  maxStalenessMs?: number;
  /** OpenFeature domain whose provider decides. @default the default provider */
  domain?: string;
  /**
   * How each flag is evaluated. `'client'`: always through the OpenFeature client's evaluation
   * pipeline. `'auto'`: the same whenever that pipeline has something to run (a hook registered on
   * the API, the client or the provider), the client is not the SDK's own (a wrapper) or the
   * provider is not a `RollgateProvider` (nor a subclass); otherwise the
   * provider's snapshot is read directly, with the context merged as the client merges it and the
   * same status rules, which gives the same decision without the SDK's per-evaluation overhead
   * (see docs/benchmarks.md). @default 'auto'
   */
  evaluation?: 'auto' | 'client';
}

/** A checked requirement, built once when the guard/middleware is created. */
export interface FeatureRequirement {
  readonly flags: readonly string[];
  readonly mode: 'all' | 'any';
  readonly expected: boolean | string | number;
  readonly maxStalenessMs: number | undefined;
  readonly domain: string | undefined;
  readonly evaluation: 'auto' | 'client';
}

export type FeatureDecision =
  | { readonly outcome: 'allow' }
  /** The flags say no (value differs, flag missing or misconfigured). */
  | { readonly outcome: 'deny'; readonly flagKey: string; readonly reason: string }
  /** No decision could be made (provider not ready, in error, or too stale). Fails closed. */
  | { readonly outcome: 'unavailable'; readonly flagKey: string; readonly reason: string };

export function featureRequirement(flagKeys: string | readonly string[], options: FeatureRequirementOptions = {}): FeatureRequirement {
  const flags = typeof flagKeys === 'string' ? [flagKeys] : [...(flagKeys ?? [])];
  if (flags.length === 0 || flags.some((f) => typeof f !== 'string' || f === '')) {
    throw new ConfigError('requireFeature: give a flag key or a non-empty array of flag keys');
  }
  const mode = options.mode ?? 'all';
  if (mode !== 'all' && mode !== 'any') throw new ConfigError(`requireFeature: options.mode must be 'all' or 'any', got ${JSON.stringify(mode)}`);
  const expected = options.expected ?? true;
  if (!['boolean', 'string', 'number'].includes(typeof expected)) {
    throw new ConfigError('requireFeature: options.expected must be a boolean, string or number');
  }
  if (expected === '' || (typeof expected === 'number' && !Number.isFinite(expected))) {
    throw new ConfigError(`requireFeature: options.expected must be a non-empty string or a finite number, got ${JSON.stringify(expected)}`);
  }
  if (options.maxStalenessMs !== undefined && !(options.maxStalenessMs >= 100)) {
    // the flags are confirmed by a heartbeat, some milliseconds ago at best: a smaller limit refuses everything
    throw new ConfigError('requireFeature: options.maxStalenessMs must be a number of milliseconds >= 100 (and above the store\'s pollIntervalMs, 500 by default)');
  }
  const evaluation = options.evaluation ?? 'auto';
  if (evaluation !== 'auto' && evaluation !== 'client') {
    throw new ConfigError(`requireFeature: options.evaluation must be 'auto' or 'client', got ${JSON.stringify(evaluation)}`);
  }
  return Object.freeze({ flags: Object.freeze(flags), mode, expected, maxStalenessMs: options.maxStalenessMs, domain: options.domain, evaluation });
}

type FlagOutcome = { pass: true; details: Details } | { pass: false; unavailable: boolean; reason: string };

// The SDK's CommonJS build exposes its exports through getters: read the ones used on every decision once.
const api = OpenFeature;
const { NOT_READY, ERROR, FATAL, STALE } = ProviderStatus;
const ownEnumerable = Object.prototype.propertyIsEnumerable;

/** The provider the client evaluates with (the client does not expose it; the API does, by domain). */
function providerOf(client: Client): Provider {
  const domain = client.metadata.domain;
  return domain === undefined ? api.getProvider() : api.getProvider(domain);
}

function healthOf(client: Client): ProviderHealth | undefined {
  const provider = providerOf(client) as { health?: () => ProviderHealth };
  return typeof provider.health === 'function' ? provider.health() : undefined;
}

let sdkClientProto: object | undefined;
/** The SDK does not export its client class; a client of our own is how to recognise one (not a wrapper). */
function sdkClientPrototype(): object {
  return (sdkClientProto ??= Object.getPrototypeOf(api.getClient()) as object);
}

/**
 * The RollgateProvider to read directly, or undefined when the client must evaluate: a hook
 * registered anywhere must see the evaluation, a client of your own (a wrapper) may do more than
 * the SDK's, and a subclass or another provider may resolve differently from the snapshot.
 * Checked on every decision, so hooks added later are honoured.
 */
function directProvider(client: Client, requirement: FeatureRequirement): RollgateProvider | undefined {
  if (requirement.evaluation === 'client' || Object.getPrototypeOf(client) !== sdkClientPrototype()) return undefined;
  if (api.getHooks().length > 0 || client.getHooks().length > 0) return undefined;
  const provider = providerOf(client);
  if (Object.getPrototypeOf(provider) !== RollgateProvider.prototype || (provider.hooks?.length ?? 0) > 0) return undefined;
  return provider as RollgateProvider;
}

/**
 * The code default passed to each evaluation: never equal to `expected` (true → false, false →
 * true, strings → '', numbers → NaN), so a flag that serves the code default (DISABLED, or no
 * variant applies) never passes. Errors are recognised by their code.
 */
function codeDefault(expected: boolean | string | number): boolean | string | number {
  if (typeof expected === 'boolean') return !expected;
  return typeof expected === 'string' ? '' : Number.NaN;
}

/** What a decision reads of an evaluation, from either path. */
type Details = { value: unknown; variant?: string | undefined; reason?: string; errorCode?: string; errorMessage?: string };

/** Every attribute of `layer` is one the caller's context spreads too, so merging `layer` under it adds nothing. */
function coveredBy(layer: EvaluationContext, context: EvaluationContext): boolean {
  for (const name in layer) if (!ownEnumerable.call(context, name)) return false;
  return true;
}

/**
 * The context the client would pass to the provider. Its merge order: API context, transaction
 * context, client context, invocation; none is raw request input (the app sets the first and third,
 * identity()'s allow-list the others). identity() makes the transaction context a copy of the
 * caller's context, so usually every layer is covered by the caller's and the merge is the caller's
 * context itself: no copy is made then.
 */
function mergedContext(client: Client, context: EvaluationContext): EvaluationContext {
  const global = api.getContext();
  const transaction = api.getTransactionContext();
  const own = client.getContext();
  if (coveredBy(transaction, context) && coveredBy(own, context) && coveredBy(global, context)) return context;
  return { ...global, ...transaction, ...own, ...context } as EvaluationContext;
}

/** The direct path: the snapshot's answer, as the client would give it. */
function evaluateDirect(provider: RollgateProvider, flagKey: string, requirement: FeatureRequirement, context: EvaluationContext): FlagOutcome {
  const type = typeof requirement.expected as 'boolean' | 'string' | 'number';
  return judge(provider.snapshot.evaluate(flagKey, context, { defaultValue: codeDefault(requirement.expected), type }), requirement);
}

async function evaluateViaClient(client: Client, flagKey: string, requirement: FeatureRequirement, context: EvaluationContext): Promise<FlagOutcome> {
  const type = typeof requirement.expected;
  const defaultValue = codeDefault(requirement.expected);
  const ctx = context as Parameters<Client['getBooleanDetails']>[2];
  let details: Details;
  if (type === 'boolean') details = await client.getBooleanDetails(flagKey, defaultValue as boolean, ctx);
  else if (type === 'string') details = await client.getStringDetails(flagKey, defaultValue as string, ctx);
  else details = await client.getNumberDetails(flagKey, defaultValue as number, ctx);
  return judge(details, requirement);
}

/** Whether one evaluation passes the requirement, and why not. */
function judge(details: Details, requirement: FeatureRequirement): FlagOutcome {
  if (details.errorCode === 'PROVIDER_NOT_READY' || details.errorCode === 'PROVIDER_FATAL') {
    return { pass: false, unavailable: true, reason: details.errorCode };
  }
  if (details.errorCode !== undefined || details.reason === 'ERROR') {
    return { pass: false, unavailable: false, reason: `${details.errorCode ?? 'ERROR'}${details.errorMessage ? `: ${details.errorMessage}` : ''}` };
  }
  if (details.value !== requirement.expected) {
    return { pass: false, unavailable: false, reason: `value ${JSON.stringify(details.value)} (${details.reason ?? 'UNKNOWN'})` };
  }
  return { pass: true, details };
}

/** The provider's status and staleness: a decision of 'unavailable' before any flag is evaluated, or undefined. */
function precheck(client: Client, requirement: FeatureRequirement): FeatureDecision | undefined {
  const status = client.providerStatus;
  if (status === NOT_READY || status === ERROR || status === FATAL) {
    return { outcome: 'unavailable', flagKey: requirement.flags[0]!, reason: `provider is ${status}` };
  }
  if (requirement.maxStalenessMs !== undefined) {
    // Checked while READY too: a hung Redis is reported STALE only once a heartbeat times out,
    // but `syncedAt` stopped moving when the hang began, so the limit holds from the hang on.
    // A provider that reports no health is judged by its status alone.
    const health = healthOf(client);
    const age = health ? (health.syncedAt === undefined ? Infinity : Date.now() - health.syncedAt) : status === STALE ? Infinity : 0;
    if (age > requirement.maxStalenessMs) {
      return { outcome: 'unavailable', flagKey: requirement.flags[0]!, reason: `flags are stale for ${Number.isFinite(age) ? `${age} ms` : 'an unknown time'} (limit ${requirement.maxStalenessMs} ms)` };
    }
  }
  return undefined;
}

/** Folds the flags' outcomes, in order, into a decision ('all': every flag passes; 'any': one does). */
class Tally {
  private unavailable: { flagKey: string; reason: string } | undefined;
  private denied: { flagKey: string; reason: string } | undefined;
  private readonly passed: [string, Details][] = [];

  constructor(
    private readonly requirement: FeatureRequirement,
    private readonly context: EvaluationContext,
  ) {}

  /** Takes one flag's outcome; returns the decision when it is settled before the last flag. */
  add(flagKey: string, outcome: FlagOutcome): FeatureDecision | undefined {
    if (outcome.pass) {
      this.passed.push([flagKey, outcome.details]);
      return this.requirement.mode === 'any' ? this.allow() : undefined;
    }
    if (outcome.unavailable) this.unavailable ??= { flagKey, reason: outcome.reason };
    else this.denied ??= { flagKey, reason: outcome.reason };
    return this.requirement.mode === 'all' ? this.result() : undefined;
  }

  /** The decision once every flag (or the first failing one, in 'all' mode) was added. */
  result(): FeatureDecision {
    if (this.unavailable) return { outcome: 'unavailable', ...this.unavailable };
    if (this.denied) return { outcome: 'deny', ...this.denied };
    return this.requirement.mode === 'all' ? this.allow() : { outcome: 'deny', flagKey: this.requirement.flags[0]!, reason: 'no flag passed' };
  }

  // an allowed request runs the handler: it counts in the arms of the variants that let it in
  private allow(): FeatureDecision {
    for (const [flagKey, details] of this.passed) recordExposure(flagKey, details, this.context);
    return { outcome: 'allow' };
  }
}

const failed = (requirement: FeatureRequirement, e: unknown): FeatureDecision => ({
  outcome: 'unavailable',
  flagKey: requirement.flags[0]!,
  reason: `evaluation failed: ${(e as Error)?.message ?? String(e)}`,
});

/**
 * The decision, when it can be made without the OpenFeature client's evaluation pipeline (the
 * direct path: no hook registered, the SDK's own client, a `RollgateProvider`; see
 * `FeatureRequirementOptions.evaluation`); undefined when the client must evaluate: then call
 * `decideFeature`. The same decision `decideFeature` returns, without a promise, for adapters that
 * can answer synchronously. Never throws.
 */
export function decideFeatureNow(client: Client, requirement: FeatureRequirement, context: EvaluationContext): FeatureDecision | undefined {
  try {
    const early = precheck(client, requirement);
    if (early) return early;
    const direct = directProvider(client, requirement);
    if (!direct) return undefined;
    const merged = mergedContext(client, context);
    const tally = new Tally(requirement, context);
    for (const flagKey of requirement.flags) {
      const settled = tally.add(flagKey, evaluateDirect(direct, flagKey, requirement, merged));
      if (settled) return settled;
    }
    return tally.result();
  } catch (e) {
    // fail closed: a bug must not become an allow
    return failed(requirement, e);
  }
}

/**
 * Decides whether a request may pass. Never throws and never allows on doubt: an error, a
 * missing flag, a type mismatch or a provider that is not ready denies.
 */
export async function decideFeature(client: Client, requirement: FeatureRequirement, context: EvaluationContext): Promise<FeatureDecision> {
  const now = decideFeatureNow(client, requirement, context);
  if (now) return now;
  try {
    const tally = new Tally(requirement, context);
    for (const flagKey of requirement.flags) {
      const settled = tally.add(flagKey, await evaluateViaClient(client, flagKey, requirement, context));
      if (settled) return settled;
    }
    return tally.result();
  } catch (e) {
    // fail closed: a bug or a throwing hook must not become an allow
    return failed(requirement, e);
  }
}
