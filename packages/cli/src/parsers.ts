import { InvalidArgumentError } from 'commander';
import { UsageError } from './errors';

// Argument and option parsers for commander: a bad value is a usage error (exit 2) with a
// message naming what was expected.

/** Adapts a parser that throws UsageError to commander's InvalidArgumentError. */
export function usage<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (e) {
      if (e instanceof UsageError) throw new InvalidArgumentError(e.message);
      throw e;
    }
  };
}

/** A store version: a whole number >= 0. */
export const parseVersion = usage((text: string): number => {
  if (!/^\d{1,15}$/.test(text.trim())) throw new UsageError(`expected a version number (a whole number >= 0), got ${JSON.stringify(text)}`);
  return Number(text.trim());
});

/** A positive count (e.g. --limit). */
export const parseCount = usage((text: string): number => {
  if (!/^\d{1,9}$/.test(text.trim()) || Number(text) < 1) throw new UsageError(`expected a whole number >= 1, got ${JSON.stringify(text)}`);
  return Number(text.trim());
});

export const EXPECTED_VERSION_HELP = 'write only if the store is still at this version (else exit 4, nothing written); default: the version this command reads';
