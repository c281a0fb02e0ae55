import { AsyncLocalStorage } from 'node:async_hooks';
import type { EvaluationContext } from '@rollgate/core';

// Which variant of which flag each request was served, so that its outcome (error, latency) and
// the events it tracks can be counted in that variant's arm — the data a guarded rollout decides
// on. The adapters open a scope per request; guards and handlers note exposures into it.

/** A flag evaluation a request is attributed to (same shape as @rollgate/rollouts' Exposure). */
export interface Exposure {
  readonly flagKey: string;
  readonly variant: string;
  /** The tail percentage split chose the variant (reason SPLIT): the randomized arms. */
  readonly split: boolean;
  /** Distinct-unit key: the caller's targetingKey. */
  readonly unit?: string | undefined;
}

/** Users' feedback about one flag, attributed to the variant the server evaluated for them. */
export interface FeedbackReport {
  readonly flagKey: string;
  readonly variant: string;
  readonly split: boolean;
  readonly sentiment: 'positive' | 'neutral' | 'negative';
  /** Untrusted text, as sent (bounded). */
  readonly comment?: string | undefined;
  readonly unit?: string | undefined;
}

/** Where finished requests go (an @rollgate/rollouts OutcomeRecorder fits). */
export interface OutcomeSink {
  recordRequest(exposures: readonly Exposure[], outcome: { readonly error: boolean; readonly durationMs: number }): void;
  /** A tracked event in the exposures' arms; `value` (e.g. ms to complete) also feeds per-arm sums. */
  recordEvent(name: string, exposures: readonly Exposure[], value?: number): void;
  /** Keeps a feedback report (its comment); the counts per sentiment go through recordEvent. */
  recordFeedback?(report: FeedbackReport): void;
}

const scope = new AsyncLocalStorage<Exposure[]>();

/** Runs `fn` (the rest of a request's handling) with `exposures` collecting what it is served. */
export function withExposureScope<T>(exposures: Exposure[], fn: () => T): T {
  return scope.run(exposures, fn);
}

/** The exposures of the request being handled; undefined outside a request scope. */
export function currentExposures(): readonly Exposure[] | undefined {
  return scope.getStore();
}

/**
 * Attributes the current request to a flag's variant — call it where your code evaluates a flag
 * itself (guards and `@FeatureValue` do it for you). The first evaluation of a flag in a request
 * counts; without a variant (a disabled flag, an error) nothing is counted. No-op outside a
 * request scope.
 */
export function recordExposure(flagKey: string, details: { readonly variant?: string | undefined; readonly reason?: string | undefined }, context?: EvaluationContext): void {
  const exposures = scope.getStore();
  if (!exposures || details.variant === undefined) return;
  for (const e of exposures) if (e.flagKey === flagKey) return;
  const unit = context?.targetingKey;
  exposures.push({ flagKey, variant: details.variant, split: details.reason === 'SPLIT', unit: typeof unit === 'string' ? unit : undefined });
}
