import { describeAjvError, typeName, validators } from './schema';
import { DEFAULT_BUDGET } from './compiler';
import type { FlagDefinition, FlagMetadata, JsonObject, JsonValue, ValidationIssue } from './types';

/** Limits applied to untrusted flag sets. Defaults are documented in docs/flag-format.md. */
export interface FlagSetLimits {
  /** Largest accepted JSON text, in UTF-16 code units. @default 5_000_000 (≈5 MB) */
  maxInputLength: number;
  /** Most flags in one set. @default 10_000 */
  maxFlags: number;
  /** Most shared evaluators. @default 1_000 */
  maxEvaluators: number;
  /** Deepest nesting of objects/arrays inside one flag or evaluator. @default 64 */
  maxDepth: number;
  /**
   * Most steps (≈ compiled nodes evaluated, list elements visited) one evaluation of a flag may
   * take: targeting whose worst case is above it is refused at validation, and an evaluation that
   * reaches it is stopped (`GENERAL`, the caller's default). @default 100_000 (≈ 1 ms)
   */
  maxEvaluationSteps: number;
  /** Most bytes (estimated) one evaluation may allocate; refused and stopped like the steps. @default 1_000_000 */
  maxEvaluationBytes: number;
}

export const DEFAULT_LIMITS: Readonly<FlagSetLimits> = Object.freeze({
  maxInputLength: 5_000_000,
  maxFlags: 10_000,
  maxEvaluators: 1_000,
  maxDepth: 64,
  maxEvaluationSteps: DEFAULT_BUDGET.steps,
  maxEvaluationBytes: DEFAULT_BUDGET.bytes,
});

/**
 * Characters refused in flag keys and evaluator names: C0 controls (U+0000-001F: ESC starts
 * terminal sequences, CR/LF forge log lines), DEL, C1 controls (U+0080-009F: U+009B is an 8-bit
 * CSI), format characters (Cf: bidi overrides and isolates such as U+202E, which make text display
 * in another order than it reads, "Trojan Source"; zero-width characters, BOM, soft hyphen and tag
 * characters, which make two keys look identical or hide text), the line and paragraph
 * separators U+2028/2029, and lone surrogates (not Unicode text). Keys are identifiers shown in
 * logs, terminals and admin UIs; none of these has a use there.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
const UNPRINTABLE_ALL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

function codePoint(ch: string): string {
  return `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Text with every refused character written as a \u escape, safe to print. */
export function escapeControls(text: string): string {
  if (!UNPRINTABLE.test(text)) return text;
  return text.replace(UNPRINTABLE_ALL, (ch) => {
    const cp = ch.codePointAt(0)!;
    return cp > 0xffff ? `\\u{${cp.toString(16)}}` : `\\u${cp.toString(16).padStart(4, '0')}`;
  });
}

/** Why a key may not be used, or undefined when it is fine. */
function unprintableIn(key: string, what: string): string | undefined {
  const found = UNPRINTABLE.exec(key);
  if (!found) return undefined;
  const ch = found[0];
  const cp = ch.codePointAt(0)!;
  let kind = 'an invisible formatting character (bidi override, zero-width or tag)';
  if (cp < 0x20 || cp === 0x7f) kind = 'a control character';
  else if (cp < 0xa0) kind = 'a C1 control character';
  else if (cp === 0x2028 || cp === 0x2029) kind = 'a line separator';
  else if (cp >= 0xd800 && cp <= 0xdfff) kind = 'a lone surrogate';
  return `${what} contains ${kind} (${codePoint(ch)}); keys may not contain control, invisible or bidi formatting characters, which can rewrite terminals and logs or make two keys look alike: rename it using visible characters`;
}

/** A flag that passed validation, ready to compile. */
export interface ValidFlag {
  key: string;
  definition: Readonly<FlagDefinition>;
  /** Targeting with every `$ref` replaced; undefined when static. */
  targeting: JsonObject | undefined;
  /** Set when the targeting cannot be used (unknown `$ref`): the flag evaluates to PARSE_ERROR. */
  parseError: string | undefined;
  metadata: FlagMetadata;
}

export interface ValidatedFlagSet {
  flags: ValidFlag[];
  metadata: FlagMetadata;
  evaluators: Readonly<Record<string, JsonValue>>;
  issues: ValidationIssue[];
}

const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
const EMPTY: FlagMetadata = Object.freeze({});

class Rejection {
  constructor(
    readonly path: string,
    readonly message: string,
  ) {}
}

/**
 * Copies untrusted input into fresh plain JSON, refusing forbidden keys, non-JSON values and
 * nesting beyond `maxDepth`. The copy means the snapshot never aliases the caller's objects.
 */
function cleanCopy(value: unknown, path: string, depth: number, maxDepth: number): JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Rejection(path, `${value} is not a JSON number`);
    return value;
  }
  if (typeof value !== 'object') throw new Rejection(path, `a ${typeof value} is not a JSON value`);
  if (depth >= maxDepth) throw new Rejection(path, `nesting is deeper than the limit of ${maxDepth} levels`);
  if (Array.isArray(value)) return value.map((v, i) => cleanCopy(v, `${path}[${i}]`, depth + 1, maxDepth));
  // any realm's Object.prototype (or none) — class instances such as Date or Map are refused
  const proto = Object.getPrototypeOf(value) as object | null;
  if (proto !== null && Object.getPrototypeOf(proto) !== null) throw new Rejection(path, 'is not a plain JSON object');
  const out: JsonObject = {};
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key)) throw new Rejection(join(path, key), `the key "${key}" is forbidden (prototype pollution)`);
    out[key] = cleanCopy((value as Record<string, unknown>)[key], join(path, key), depth + 1, maxDepth);
  }
  return out;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function reject(path: string, message: string): ValidatedFlagSet {
  return { flags: [], metadata: EMPTY, evaluators: {}, issues: [{ path, message, effect: 'rejected' }] };
}

/** Parses (when given text), checks limits and validates each flag independently. */
export function validateFlagSet(input: unknown, limits: FlagSetLimits): ValidatedFlagSet {
  let root: unknown = input;
  if (typeof input === 'string') {
    if (input.length > limits.maxInputLength) {
      return reject('', `flag set is ${input.length} characters long, above the limit of ${limits.maxInputLength}`);
    }
    try {
      root = JSON.parse(input);
    } catch (e) {
      return reject('', `flag set is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (root === null || typeof root !== 'object' || Array.isArray(root)) {
    return reject('', `flag set must be a JSON object with a "flags" property, got ${typeName(root)}`);
  }
  const top = root as Record<string, unknown>;
  for (const key of Object.keys(top)) {
    if (FORBIDDEN_KEYS.has(key)) return reject(key, `the key "${key}" is forbidden (prototype pollution)`);
  }
  const shape = validators().flagSet;
  if (!shape(top)) {
    const first = describeAjvError('', shape.errors![0]!);
    return reject(first.path, first.message);
  }
  const flagsIn = top.flags as Record<string, unknown>;
  const flagKeys = Object.keys(flagsIn);
  if (flagKeys.length > limits.maxFlags) {
    return reject('flags', `${flagKeys.length} flags is above the limit of ${limits.maxFlags}`);
  }
  const evaluatorsIn = (top.$evaluators ?? {}) as Record<string, unknown>;
  const evaluatorKeys = Object.keys(evaluatorsIn);
  if (evaluatorKeys.length > limits.maxEvaluators) {
    return reject('$evaluators', `${evaluatorKeys.length} evaluators is above the limit of ${limits.maxEvaluators}`);
  }

  const issues: ValidationIssue[] = [];
  let setMetadata: FlagMetadata = EMPTY;
  if (top.metadata !== undefined) {
    try {
      setMetadata = Object.freeze(cleanCopy(top.metadata, 'metadata', 0, 2) as Record<string, string | number | boolean>);
    } catch (e) {
      if (!(e instanceof Rejection)) throw e;
      return reject(e.path, e.message);
    }
  }

  const evaluators: Record<string, JsonValue> = Object.create(null) as Record<string, JsonValue>;
  for (const name of evaluatorKeys) {
    const path = `$evaluators.${name}`;
    if (FORBIDDEN_KEYS.has(name)) {
      issues.push({ path, message: `the key "${name}" is forbidden (prototype pollution)`, effect: 'excluded' });
      continue;
    }
    const unprintable = unprintableIn(name, 'the evaluator name');
    if (unprintable) {
      issues.push({ path, message: unprintable, effect: 'excluded' });
      continue;
    }
    try {
      evaluators[name] = deepFreeze(cleanCopy(evaluatorsIn[name], path, 0, limits.maxDepth));
    } catch (e) {
      if (!(e instanceof Rejection)) throw e;
      issues.push({ path: e.path, message: e.message, effect: 'excluded' });
    }
  }

  const flags: ValidFlag[] = [];
  for (const key of flagKeys) {
    const result = validateFlag(key, flagsIn[key], evaluators, setMetadata, limits);
    if ('issues' in result) issues.push(...result.issues);
    else {
      flags.push(result.flag);
      if (result.flag.parseError) {
        issues.push({ path: `flags.${key}.targeting`, message: result.flag.parseError, flagKey: key, effect: 'parse-error' });
      }
    }
  }
  return { flags, metadata: setMetadata, evaluators, issues };
}

function validateFlag(
  key: string,
  raw: unknown,
  evaluators: Readonly<Record<string, JsonValue>>,
  setMetadata: FlagMetadata,
  limits: FlagSetLimits,
): { flag: ValidFlag } | { issues: ValidationIssue[] } {
  const base = `flags.${key}`;
  const excluded = (path: string, message: string): ValidationIssue => ({ path, message, flagKey: key, effect: 'excluded' });
  if (FORBIDDEN_KEYS.has(key)) return { issues: [excluded(base, `the key "${key}" is forbidden (prototype pollution)`)] };
  if (key.length === 0) return { issues: [excluded('flags', 'a flag key must not be empty')] };
  const unprintable = unprintableIn(key, 'the flag key');
  if (unprintable) return { issues: [excluded(base, unprintable)] };

  let flag: JsonObject;
  try {
    flag = cleanCopy(raw, base, 0, limits.maxDepth) as JsonObject;
  } catch (e) {
    if (!(e instanceof Rejection)) throw e;
    return { issues: [excluded(e.path, e.message)] };
  }
  const check = validators().flag;
  if (!check(flag)) {
    return { issues: check.errors!.map((err) => describeAjvError(base, err)).map((d) => excluded(d.path, d.message)) };
  }
  const def = flag as unknown as FlagDefinition;
  const variantNames = Object.keys(def.variants);
  const issues: ValidationIssue[] = [];
  const firstType = typeName(def.variants[variantNames[0]!]);
  for (const name of variantNames.slice(1)) {
    const t = typeName(def.variants[name]);
    if (t !== firstType) {
      issues.push(excluded(`${base}.variants.${name}`, `is ${t === 'object' ? 'an' : 'a'} ${t} but "${variantNames[0]}" is ${firstType === 'object' ? 'an' : 'a'} ${firstType}; all variants of a flag must have the same type`));
    }
  }
  if (def.defaultVariant !== undefined && def.defaultVariant !== null && !variantNames.includes(def.defaultVariant)) {
    issues.push(excluded(`${base}.defaultVariant`, `"${def.defaultVariant}" is not one of the variants ${variantNames.join(', ')}`));
  }
  if (issues.length > 0) return { issues };

  let targeting: JsonObject | undefined;
  let parseError: string | undefined;
  if (def.targeting && Object.keys(def.targeting).length > 0) {
    try {
      targeting = resolveRefs(def.targeting, evaluators) as JsonObject;
    } catch (e) {
      if (!(e instanceof Rejection)) throw e;
      parseError = e.message;
    }
  }
  // flags without metadata of their own share the flag set's
  const metadata = def.metadata && Object.keys(def.metadata).length > 0 ? Object.freeze({ ...setMetadata, ...def.metadata }) : setMetadata;
  return { flag: { key, definition: deepFreeze(def), targeting, parseError, metadata } };
}

const MAX_REF_DEPTH = 16;
/**
 * Most JSON nodes a flag's targeting may have once every `$ref` is substituted. Refs can nest, so
 * a tiny input could otherwise expand exponentially ("billion laughs").
 */
const MAX_EXPANDED_NODES = 100_000;
/**
 * Most plain values (strings, numbers, booleans, null) in lists of plain values a flag's targeting
 * may hold once every `$ref` is substituted. A list of values counts as one node above and its
 * values here: segment lists of 100,000 ids (cohorts from a batch job) fit, matched through a Set.
 */
const MAX_EXPANDED_VALUES = 1_000_000;

/**
 * Replaces `{"$ref": "name"}` with the evaluator's rule, recursively (evaluators may use others).
 * What contains no `$ref` is returned as it is (not copied), so a rule without `$ref`s is the
 * definition's own.
 */
export function resolveRefs(rule: JsonValue, evaluators: Readonly<Record<string, JsonValue>>, depth = 0, budget = { nodes: 0, values: 0 }): JsonValue {
  if (++budget.nodes > MAX_EXPANDED_NODES) {
    throw new Rejection('', `targeting expands to more than ${MAX_EXPANDED_NODES} nodes once $refs are substituted`);
  }
  if (rule === null || typeof rule !== 'object') return rule;
  if (Array.isArray(rule)) {
    if (rule.every((item) => item === null || typeof item !== 'object')) {
      budget.values += rule.length;
      if (budget.values > MAX_EXPANDED_VALUES) throw new Rejection('', `targeting holds more than ${MAX_EXPANDED_VALUES} list values once $refs are substituted`);
      return rule;
    }
    let out: JsonValue[] | undefined;
    for (let i = 0; i < rule.length; i++) {
      const r = resolveRefs(rule[i]!, evaluators, depth, budget);
      if (r !== rule[i] && out === undefined) out = rule.slice(0, i);
      out?.push(r);
    }
    return out ?? rule;
  }
  const keys = Object.keys(rule);
  if (keys.length === 1 && keys[0] === '$ref') {
    const name = rule.$ref;
    if (typeof name !== 'string') throw new Rejection('', `$ref must name an evaluator, got ${JSON.stringify(name)}`);
    if (!Object.prototype.hasOwnProperty.call(evaluators, name)) {
      const known = Object.keys(evaluators);
      throw new Rejection('', `unknown $ref "${name}"; $evaluators has ${known.length ? known.join(', ') : 'none'}`);
    }
    if (depth >= MAX_REF_DEPTH) throw new Rejection('', `$ref "${name}" nests more than ${MAX_REF_DEPTH} levels (a cycle?)`);
    return resolveRefs(evaluators[name]!, evaluators, depth + 1, budget);
  }
  let out: JsonObject | undefined;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const r = resolveRefs(rule[k] as JsonValue, evaluators, depth, budget);
    if (r !== rule[k] && out === undefined) {
      out = {};
      for (let j = 0; j < i; j++) out[keys[j]!] = rule[keys[j]!] as JsonValue;
    }
    if (out !== undefined) out[k] = r;
  }
  return out ?? rule;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
