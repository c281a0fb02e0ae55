import { RollgateError } from './errors';
import type { JsonObject, JsonValue } from './types';

// Editing the weights of a flag's percentage split — for `rollgate rollout` and for rollout
// plans. Pure: takes a definition, returns a new one (the input is never mutated).

/**
 * A split edit that cannot be made. `reason` tells a bad argument (`'argument'`: a percent out of
 * range, an unknown variant) from a flag whose targeting has no split this edit can change
 * (`'shape'`); the message says which and what to do.
 */
export class SplitEditError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_SPLIT_EDIT';
  constructor(
    readonly reason: 'argument' | 'shape',
    message: string,
  ) {
    super(message);
  }
}

const argumentError = (message: string) => new SplitEditError('argument', message);
const shapeError = (message: string) => new SplitEditError('shape', message);

/** A split's buckets: `[variant, weight]`, in order. */
export type SplitBuckets = [variant: string, weight: number][];

export interface RolloutOptions {
  /**
   * The variant that gets `percent`. Default: `on` when the flag has it, else the variant whose
   * value is `true`; otherwise it must be named.
   */
  variant?: string;
  /**
   * Bucket by this context attribute instead of `targetingKey`: the bucketing key becomes
   * `{"cat": [{"var": "$flagd.flagKey"}, {"var": by}]}`. `targetingKey` restores flagd's default
   * (flag key + targetingKey; no explicit key). Absent: the split keeps its bucketing key.
   */
  by?: string;
  /**
   * The variant that takes the rest when the split has to be created, or has no other variant
   * yet. Default: the flag's only other variant, or its defaultVariant.
   */
  rest?: string;
}

export interface RolloutResult {
  /** The new definition (a copy). */
  definition: JsonObject;
  /** Where the split is, in core's path notation (`targeting`, `targeting.if[4]`). */
  path: string;
  /** True when the flag had no targeting and the canonical split was created. */
  created: boolean;
  variant: string;
  percent: number;
  /** The buckets before (null when created) and after. */
  before: SplitBuckets | null;
  after: SplitBuckets;
  /** Attribute the split buckets by; null for flagd's default (targetingKey). */
  by: string | null;
  /** The explicit bucketing-key rule, when the split has one that is not the `--by` shape. */
  bucketingKey: JsonValue | null;
}

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);

function checkAttribute(by: string): void {
  if (by.trim() === '' || by !== by.trim()) throw argumentError(`--by needs a context attribute name, got ${JSON.stringify(by)}`);
  if (by.split('.').some((s) => s === '' || FORBIDDEN_SEGMENTS.has(s))) {
    throw argumentError(`--by ${JSON.stringify(by)} is not a usable attribute path (empty or forbidden segment)`);
  }
}

/** The bucketing key `--by <attribute>` writes. */
export function bucketingKeyFor(attribute: string): JsonObject {
  return { cat: [{ var: '$flagd.flagKey' }, { var: attribute }] };
}

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function singleOperator(value: unknown): string | undefined {
  if (!isObject(value)) return undefined;
  const keys = Object.keys(value);
  return keys.length === 1 ? keys[0] : undefined;
}

/** The attribute of a `--by` bucketing key, or undefined for any other expression. */
function attributeOf(key: JsonValue): string | undefined {
  if (!isObject(key) || singleOperator(key) !== 'cat') return undefined;
  const args = key.cat;
  if (!Array.isArray(args) || args.length !== 2) return undefined;
  const [first, second] = args;
  if (!isObject(first) || singleOperator(first) !== 'var' || first.var !== '$flagd.flagKey') return undefined;
  if (!isObject(second) || singleOperator(second) !== 'var' || typeof second.var !== 'string') return undefined;
  return second.var;
}

interface Tail {
  /** The object holding `fractional`. */
  node: JsonObject;
  path: string;
}

/**
 * The split at the tail of a rule: the rule itself when it is a `fractional`, or, following
 * `if` chains, the else branch's. Only the tail is edited: a split inside a condition's branch
 * applies to a sub-population, and which one to change is the user's call.
 */
function findTail(rule: JsonValue, path: string): Tail | { refRule: string; path: string } | undefined {
  const op = singleOperator(rule);
  if (op === undefined) return undefined;
  const obj = rule as JsonObject;
  if (op === 'fractional') return { node: obj, path };
  if (op === '$ref') return { refRule: String(obj.$ref), path };
  if (op === 'if' || op === '?:') {
    const args = obj[op];
    if (!Array.isArray(args)) return undefined;
    if (args.length === 1) return findTail(args[0]!, `${path}.${op}[0]`);
    if (args.length >= 3 && args.length % 2 === 1) return findTail(args[args.length - 1]!, `${path}.${op}[${args.length - 1}]`);
  }
  return undefined;
}

/** Paths of every `fractional` anywhere in a rule, for the refusal message. */
function fractionalPaths(rule: JsonValue, path: string, out: string[] = []): string[] {
  if (Array.isArray(rule)) rule.forEach((r, i) => fractionalPaths(r, `${path}[${i}]`, out));
  else if (isObject(rule)) {
    const op = singleOperator(rule);
    if (op === 'fractional') out.push(path);
    if (op !== undefined) fractionalPaths(rule[op]!, `${path}.${op}`, out);
  }
  return out;
}

/** The variant `rollout` sets when none is named. */
export function defaultRolloutVariant(variants: Record<string, unknown>): string {
  if (Object.prototype.hasOwnProperty.call(variants, 'on')) return 'on';
  const truthy = Object.keys(variants).filter((name) => variants[name] === true);
  if (truthy.length === 1) return truthy[0]!;
  throw argumentError(`name the variant that gets the percentage with --variant (the flag has no "on" variant; variants: ${Object.keys(variants).join(', ')})`);
}

/** The variant that takes the rest when a split has to be created or grown from one bucket. */
function restVariant(flagKey: string, variants: Record<string, unknown>, defaultVariant: unknown, variant: string, rest?: string): string {
  if (rest !== undefined) {
    if (rest === variant || !Object.prototype.hasOwnProperty.call(variants, rest)) throw argumentError(`flag "${flagKey}": the rest of the split cannot go to "${rest}" (variants: ${Object.keys(variants).join(', ')}; the percentage goes to "${variant}")`);
    return rest;
  }
  const others = Object.keys(variants).filter((v) => v !== variant);
  if (others.length === 1) return others[0]!;
  if (typeof defaultVariant === 'string' && defaultVariant !== variant && others.includes(defaultVariant)) return defaultVariant;
  throw shapeError(
    `flag "${flagKey}": cannot tell which variant gets the other ${variant} share: it has ${others.length} other variants and its defaultVariant is ${JSON.stringify(defaultVariant ?? null)}; write the split with \`rollgate flags push\``,
  );
}

/** Shares `total` between weights in proportion (largest remainder; equal when all are 0). */
export function shareProportionally(weights: readonly number[], total: number): number[] {
  if (weights.length === 0) return [];
  const sum = weights.reduce((a, b) => a + b, 0);
  const basis = sum > 0 ? weights : weights.map(() => 1);
  const basisSum = sum > 0 ? sum : weights.length;
  const exact = basis.map((w) => (w * total) / basisSum);
  const out = exact.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    out[i]! += 1;
    left--;
  }
  return out;
}

function readBuckets(flagKey: string, path: string, entries: JsonValue[]): SplitBuckets {
  const buckets: SplitBuckets = [];
  const seen = new Set<string>();
  entries.forEach((entry, i) => {
    const where = `${path}.fractional[${i}]`;
    if (!Array.isArray(entry) || entry.length < 1 || entry.length > 2 || typeof entry[0] !== 'string') {
      throw shapeError(`flag "${flagKey}": the split at ${path} has a bucket rollout cannot edit at ${where} (${JSON.stringify(entry)}); buckets must be ["variant", weight]`);
    }
    const weight = entry.length === 2 ? entry[1] : 1;
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0) {
      throw shapeError(`flag "${flagKey}": the split at ${path} has a computed or negative weight at ${where} (${JSON.stringify(entry)}); rollout edits constant weights only`);
    }
    if (seen.has(entry[0])) throw shapeError(`flag "${flagKey}": variant "${entry[0]}" appears twice in the split at ${path}`);
    seen.add(entry[0]);
    buckets.push([entry[0], weight]);
  });
  return buckets;
}

/**
 * Sets a flag's percentage split so that `variant` gets `percent`% (weights always sum to 100).
 * The split edited is the one at the tail of the targeting — the targeting itself or the else
 * branch of a top-level `if` (following nested else branches). A flag without targeting gets
 * the canonical `{"fractional": [["on", p], ["off", 100 - p]]}`. Other variants in the split
 * share the rest in proportion to their current weights (the other one gets it all in a
 * two-variant split). Anything else is refused with an explanation (SplitEditError, reason "shape").
 */
export function setRollout(flagKey: string, definition: unknown, percent: number, options: RolloutOptions = {}): RolloutResult {
  if (!Number.isInteger(percent) || percent < 0 || percent > 100) throw argumentError(`percent must be a whole number from 0 to 100, got ${percent}`);
  if (!isObject(definition) || !isObject(definition.variants)) {
    throw shapeError(`flag "${flagKey}" has no variants object; fix its definition with \`rollgate flags push\``);
  }
  if (options.by !== undefined) checkAttribute(options.by);
  const def = JSON.parse(JSON.stringify(definition)) as JsonObject;
  const variants = def.variants as JsonObject;
  const variant = options.variant ?? defaultRolloutVariant(variants);
  if (!Object.prototype.hasOwnProperty.call(variants, variant)) {
    throw argumentError(`flag "${flagKey}" has no variant "${variant}"; variants: ${Object.keys(variants).join(', ')}`);
  }
  const rest = 100 - percent;
  const newKey = (current: JsonValue | undefined): JsonValue | undefined => {
    if (options.by === undefined) return current;
    return options.by === 'targetingKey' ? undefined : bucketingKeyFor(options.by);
  };
  const describeKey = (key: JsonValue | undefined) => {
    if (key === undefined) return { by: null, bucketingKey: null };
    const attribute = attributeOf(key);
    return attribute !== undefined ? { by: attribute, bucketingKey: null } : { by: null, bucketingKey: key };
  };

  const targeting = def.targeting;
  if (targeting === undefined || targeting === null || (isObject(targeting) && Object.keys(targeting).length === 0)) {
    const after: SplitBuckets = [[variant, percent]];
    if (percent < 100 || Object.keys(variants).length === 2) after.push([restVariant(flagKey, variants, def.defaultVariant, variant, options.rest), rest]);
    const key = newKey(undefined);
    def.targeting = { fractional: [...(key === undefined ? [] : [key]), ...after] };
    return { definition: def, path: 'targeting', created: true, variant, percent, before: null, after, ...describeKey(key) };
  }

  const tail = findTail(targeting, 'targeting');
  if (tail === undefined || 'refRule' in tail) {
    const elsewhere = fractionalPaths(targeting, 'targeting');
    const why =
      tail !== undefined && 'refRule' in tail
        ? `its tail (${tail.path}) is {"$ref": ${JSON.stringify(tail.refRule)}}, a shared evaluator other flags may use; rollout edits only a split in the flag's own targeting`
        : elsewhere.length > 0
          ? `its split${elsewhere.length > 1 ? 's are' : ' is'} at ${elsewhere.join(', ')}, not at the tail (the targeting itself, or the else branch of a top-level "if")`
          : 'its targeting has no percentage split ("fractional") at the tail (the targeting itself, or the else branch of a top-level "if")';
    throw shapeError(
      `flag "${flagKey}": nothing to roll out: ${why}. Add a split with \`rollgate flags push\`, e.g. make the else branch {"fractional": [["${variant}", ${percent}], ["off", ${rest}]]}`,
    );
  }
  const raw = tail.node.fractional;
  const args: JsonValue[] = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  const hasKey = args.length > 0 && !Array.isArray(args[0]);
  const currentKey = hasKey ? args[0] : undefined;
  const before = readBuckets(flagKey, tail.path, hasKey ? args.slice(1) : args);
  for (const [name] of before) {
    if (!Object.prototype.hasOwnProperty.call(variants, name)) {
      throw shapeError(`flag "${flagKey}": the split at ${tail.path} names variant "${name}", which the flag does not have (variants: ${Object.keys(variants).join(', ')})`);
    }
  }
  let after: SplitBuckets = before.map(([name, w]) => [name, w]);
  if (!after.some(([name]) => name === variant)) after.push([variant, 0]);
  const others = after.filter(([name]) => name !== variant);
  if (others.length === 0 && rest > 0) after.push([restVariant(flagKey, variants, def.defaultVariant, variant, options.rest), 0]);
  const otherIdx = after.map((b, i) => (b[0] === variant ? -1 : i)).filter((i) => i >= 0);
  const shares = shareProportionally(
    otherIdx.map((i) => after[i]![1]),
    rest,
  );
  after = after.map(([name, w], i) => {
    if (name === variant) return [name, percent];
    const k = otherIdx.indexOf(i);
    return [name, k >= 0 ? shares[k]! : w];
  });
  const key = newKey(currentKey);
  tail.node.fractional = [...(key === undefined ? [] : [key]), ...after];
  return { definition: def, path: tail.path, created: false, variant, percent, before, after, ...describeKey(key) };
}

/** The split `rollout` would edit, for display (`flags list`); null when there is none. */
export function describeSplit(definition: unknown): { path: string; buckets: SplitBuckets; by: string | null } | null {
  if (!isObject(definition) || !isObject(definition.targeting)) return null;
  const tail = findTail(definition.targeting, 'targeting');
  if (tail === undefined || 'refRule' in tail) return null;
  const raw = tail.node.fractional;
  const args: JsonValue[] = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  const hasKey = args.length > 0 && !Array.isArray(args[0]);
  try {
    const buckets = readBuckets('', tail.path, hasKey ? args.slice(1) : args);
    return { path: tail.path, buckets, by: hasKey ? (attributeOf(args[0]!) ?? null) : null };
  } catch {
    return null;
  }
}

/** The targeting with the tail split's buckets blanked: equal results, same rules apart from weights. */
export function targetingWithoutSplitWeights(definition: unknown): JsonValue | undefined {
  if (!isObject(definition)) return undefined;
  const targeting = definition.targeting;
  if (targeting === undefined) return undefined;
  const copy = JSON.parse(JSON.stringify(targeting)) as JsonValue;
  const tail = findTail(copy, 'targeting');
  if (tail !== undefined && !('refRule' in tail)) {
    const raw = tail.node.fractional;
    const args: JsonValue[] = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
    const hasKey = args.length > 0 && !Array.isArray(args[0]);
    tail.node.fractional = hasKey ? [args[0]!, 'buckets'] : ['buckets'];
  }
  return copy;
}
