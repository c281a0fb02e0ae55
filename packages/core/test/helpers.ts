// Shared helpers for the core test suite (not a spec file: jest only runs *.spec.ts).
import { compileFlagSet, type EvaluationContext, type FlagDefinition, type FlagSetDefinition, type JsonValue } from '@rollgate/core';
import { compileTargeting, newEnv, DEFAULT_BUDGET } from '../src/compiler';

/** A valid boolean flag; spread and override in tests. */
export const BOOL_FLAG: FlagDefinition = { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off' };

/** Compiles a flag set and fails the test when it reports any issue. */
export function compileClean(input: FlagSetDefinition | string) {
  const { snapshot, errors } = compileFlagSet(input);
  expect(errors).toEqual([]);
  return snapshot;
}

/** One boolean flag `f` with the given targeting, compiled without issues. */
export function boolFlagWith(targeting: Record<string, JsonValue>, extra: Partial<FlagDefinition> = {}) {
  return compileClean({ flags: { f: { ...BOOL_FLAG, ...extra, targeting } } });
}

/**
 * Runs one JsonLogic rule through the compiler and returns its raw value (what the targeting
 * produced before it is turned into a variant name). Evaluation errors throw, as inside the engine.
 */
export function ruleValue(rule: JsonValue, ctx: EvaluationContext = {}, flagKey = 'f'): unknown {
  const fn = compileTargeting(rule, flagKey);
  return fn(ctx, newEnv(ctx, flagKey, DEFAULT_BUDGET));
}

/** Deterministic PRNG (mulberry32) so generated data is the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pickFrom<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

export function asciiId(rand: () => number, min = 1, max = 16): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@';
  const len = min + Math.floor(rand() * (max - min + 1));
  let s = '';
  for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
  return s;
}

/** MurmurHash3 (x86, 32-bit) as implemented by the `imurmurhash` package: hashes char codes. */
const MurmurHash3 = require('imurmurhash') as new (key: string, seed?: number) => { result(): number };
export function imurmur(key: string, seed?: number): number {
  return new MurmurHash3(key, seed).result() >>> 0;
}

/** Reference hash over UTF-8 bytes: imurmurhash over a binary string with one char per byte. */
export function referenceUtf8Murmur(key: string, seed?: number): number {
  return imurmur(Buffer.from(key, 'utf8').toString('latin1'), seed);
}

/** Exact flagd bucket, the way flagd-core computes it (BigInt). */
export function referenceBucket(hash: number, totalWeight: number): number {
  return Number((BigInt(hash >>> 0) * BigInt(totalWeight)) >> 32n);
}

export const silentLogger = { error() {}, warn() {}, info() {}, debug() {} };

export function objectPrototypeSnapshot(): string[] {
  return Object.getOwnPropertyNames(Object.prototype).sort();
}
