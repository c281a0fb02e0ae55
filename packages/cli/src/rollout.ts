import { SplitEditError, setRollout as setSplit, defaultRolloutVariant as defaultVariantOf, type RolloutOptions, type RolloutResult } from '@rollgate/core';
import { EditRefusedError, UsageError } from './errors';

// `rollgate rollout`: the split edit lives in core (rollout plans make the same edit); the CLI
// parses the percent and reports core's refusals with its own exit codes.

export { bucketingKeyFor, describeSplit, shareProportionally, targetingWithoutSplitWeights } from '@rollgate/core';
export type { RolloutOptions, RolloutResult, SplitBuckets } from '@rollgate/core';

/** Parses a percentage argument: an integer 0..100, optionally followed by `%`. */
export function parsePercent(text: string): number {
  const m = /^\s*(\d{1,3})\s*%?\s*$/.exec(text);
  const n = m ? Number(m[1]) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 100) {
    throw new UsageError(`percent must be a whole number from 0 to 100, got ${JSON.stringify(text)}`);
  }
  return n;
}

/** A bad argument is a usage error (exit 2); a split the edit cannot change is a refusal (exit 3). */
function asCliError(e: unknown): unknown {
  if (!(e instanceof SplitEditError)) return e;
  return e.reason === 'argument' ? new UsageError(e.message) : new EditRefusedError(e.message);
}

/** core's setRollout, with the CLI's errors. */
export function setRollout(flagKey: string, definition: unknown, percent: number, options: RolloutOptions = {}): RolloutResult {
  try {
    return setSplit(flagKey, definition, percent, options);
  } catch (e) {
    throw asCliError(e);
  }
}

/** core's defaultRolloutVariant, with the CLI's errors. */
export function defaultRolloutVariant(variants: Record<string, unknown>): string {
  try {
    return defaultVariantOf(variants);
  } catch (e) {
    throw asCliError(e);
  }
}
