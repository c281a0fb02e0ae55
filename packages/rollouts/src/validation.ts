import { ConfigError } from '@rollgate/redis';

/** Checks an integer option once, at construction, with a message naming it. */
export function positiveInteger(owner: string, name: string, value: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new ConfigError(`${owner}: options.${name} must be an integer from 1 to ${max === Number.MAX_SAFE_INTEGER ? 'Number.MAX_SAFE_INTEGER' : max}, got ${String(value)}`);
  }
  return value;
}

/** What the rollout package logs through. */
export interface RolloutLogger {
  warn(message: string): void;
  info?(message: string): void;
}
