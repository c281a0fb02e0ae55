import { OpenFeature, ProviderStatus, type Client, type EvaluationDetails, type FlagValue } from '@openfeature/server-sdk';
import type { EvaluationContext } from '@rollgate/core';
import type { ProviderHealth } from '@rollgate/redis';
import { ConfigError } from '@rollgate/redis';

export interface FeatureRequirementOptions {
  /** With several flags: all must pass, or any one. @default 'all' */
  mode?: 'all' | 'any';
  /**
   * The value a flag must have to pass. @default true (boolean flags). For string or number flags
   * give the variant value that grants access, e.g. 'fast'.
   */
  expected?: boolean | string | number;
  /**
   * Deny as "could not decide" when the provider has been out of touch with its store for longer
   * than this (STALE). @default no limit: the last known flags are trusted while STALE.
   */
  maxStalenessMs?: number;
  /** OpenFeature domain whose provider decides. @default the default provider */
  domain?: string;
}

/** A checked requirement, built once when the guard/middleware is created. */
export interface FeatureRequirement {
  readonly flags: readonly string[];
  readonly mode: 'all' | 'any';
  readonly expected: boolean | string | number;
  readonly maxStalenessMs: number | undefined;
  readonly domain: string | undefined;
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
  if (options.maxStalenessMs !== undefined && !(options.maxStalenessMs >= 0)) {
    throw new ConfigError('requireFeature: options.maxStalenessMs must be a number of milliseconds >= 0');
  }
  return Object.freeze({ flags: Object.freeze(flags), mode, expected, maxStalenessMs: options.maxStalenessMs, domain: options.domain });
}

type FlagOutcome = { pass: true } | { pass: false; unavailable: boolean; reason: string };

function healthOf(domain: string | undefined): ProviderHealth | undefined {
  const provider = (domain === undefined ? OpenFeature.getProvider() : OpenFeature.getProvider(domain)) as { health?: () => ProviderHealth };
  return typeof provider.health === 'function' ? provider.health() : undefined;
}

async function evaluate(client: Client, flagKey: string, requirement: FeatureRequirement, context: EvaluationContext): Promise<FlagOutcome> {
  const ctx = context as Parameters<Client['getBooleanDetails']>[2];
  let details: EvaluationDetails<FlagValue>;
  switch (typeof requirement.expected) {
    case 'boolean':
      details = await client.getBooleanDetails(flagKey, false, ctx);
      break;
    case 'string':
      details = await client.getStringDetails(flagKey, '', ctx);
      break;
    default:
      details = await client.getNumberDetails(flagKey, Number.NaN, ctx);
  }
  if (details.errorCode === 'PROVIDER_NOT_READY' || details.errorCode === 'PROVIDER_FATAL') {
    return { pass: false, unavailable: true, reason: details.errorCode };
  }
  if (details.errorCode !== undefined || details.reason === 'ERROR') {
    return { pass: false, unavailable: false, reason: `${details.errorCode ?? 'ERROR'}${details.errorMessage ? `: ${details.errorMessage}` : ''}` };
  }
  if (details.value !== requirement.expected) {
    return { pass: false, unavailable: false, reason: `value ${JSON.stringify(details.value)} (${details.reason ?? 'UNKNOWN'})` };
  }
  return { pass: true };
}

/**
 * Decides whether a request may pass. Never throws and never allows on doubt: an error, a
 * missing flag, a type mismatch or a provider that is not ready denies.
 */
export async function decideFeature(client: Client, requirement: FeatureRequirement, context: EvaluationContext): Promise<FeatureDecision> {
  const first = requirement.flags[0]!;
  try {
    const status = client.providerStatus;
    if (status === ProviderStatus.NOT_READY || status === ProviderStatus.ERROR || status === ProviderStatus.FATAL) {
      return { outcome: 'unavailable', flagKey: first, reason: `provider is ${status}` };
    }
    if (status === ProviderStatus.STALE && requirement.maxStalenessMs !== undefined) {
      const syncedAt = healthOf(requirement.domain)?.syncedAt;
      const age = syncedAt === undefined ? Infinity : Date.now() - syncedAt;
      if (age > requirement.maxStalenessMs) {
        return { outcome: 'unavailable', flagKey: first, reason: `flags are stale for ${Number.isFinite(age) ? `${age} ms` : 'an unknown time'} (limit ${requirement.maxStalenessMs} ms)` };
      }
    }
    let unavailable: { flagKey: string; reason: string } | undefined;
    let denied: { flagKey: string; reason: string } | undefined;
    for (const flagKey of requirement.flags) {
      const outcome = await evaluate(client, flagKey, requirement, context);
      if (outcome.pass) {
        if (requirement.mode === 'any') return { outcome: 'allow' };
        continue;
      }
      if (outcome.unavailable) unavailable ??= { flagKey, reason: outcome.reason };
      else denied ??= { flagKey, reason: outcome.reason };
      if (requirement.mode === 'all') break;
    }
    if (unavailable) return { outcome: 'unavailable', ...unavailable };
    if (denied) return { outcome: 'deny', ...denied };
    return requirement.mode === 'all' ? { outcome: 'allow' } : { outcome: 'deny', flagKey: first, reason: 'no flag passed' };
  } catch (e) {
    // fail closed: a bug or a throwing hook must not become an allow
    return { outcome: 'unavailable', flagKey: first, reason: `evaluation failed: ${(e as Error)?.message ?? String(e)}` };
  }
}
