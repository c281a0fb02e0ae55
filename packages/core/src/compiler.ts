import { bucketOf, murmur3 } from './murmur3';
import { compareVersions, isSemVerOperator, parseVersion } from './semver-op';
import type { EvaluationContext, ExplainStep, JsonValue } from './types';

// Compiles flagd's JsonLogic dialect into plain closures, once per flag set change.
// Semantics follow json-logic-engine (the engine flagd-core uses), including which inputs are
// evaluation errors (a number compared with a non-numeric string, arithmetic on objects): those
// throw EvaluationFailure, which the snapshot turns into a GENERAL error result.

/** Per-evaluation state shared by the closures of one flag. */
export interface Env {
  readonly ctx: EvaluationContext;
  readonly flagKey: string;
  /** Unix seconds, read lazily (most rules never use `$flagd.timestamp`). */
  timestamp: number | undefined;
  /** Set when the value that decided came from a `fractional` split. */
  split: boolean;
  /** Present only for `explain`. */
  trace: ExplainStep[] | undefined;
}

export type Evaluator = (data: unknown, env: Env) => unknown;

/** A rule that cannot be compiled (unknown operator, wrong arity, forbidden path). */
export class RuleCompileError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/** Thrown inside compiled rules for inputs json-logic-engine treats as errors. */
export class EvaluationFailure extends Error {}

interface Scope {
  /** Inside map/filter/reduce/all/some/none, `var` reads the current element, not the context. */
  readonly inIterator: boolean;
  /** The value of this node is the targeting result (not a condition): a split here is SPLIT. */
  readonly tail: boolean;
  readonly flagKey: string;
}

interface Node {
  fn: Evaluator;
  /** Set when the node is a constant (folded at compile time). */
  constant?: { value: unknown };
}

const FORBIDDEN_SEGMENTS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
const MAX_WEIGHT = 2147483647;

/** Compiles a flag's targeting. `flagKey` is fixed at compile time (used by `$flagd.flagKey`). */
export function compileTargeting(rule: JsonValue, flagKey: string): Evaluator {
  return compile(rule, 'targeting', { inIterator: false, tail: true, flagKey }).fn;
}

/** json-logic-engine's truthiness: [] and {} are false, as are the JS falsy values. */
export function truthy(value: unknown): boolean {
  if (!value) return false;
  if (typeof value === 'object') {
    if (Array.isArray(value)) return value.length > 0;
    return Object.keys(value).length > 0;
  }
  return true;
}

function constant(value: unknown): Node {
  return { fn: () => value, constant: { value } };
}

function compile(rule: JsonValue, path: string, scope: Scope): Node {
  if (rule === null || typeof rule !== 'object') return constant(rule);
  if (Array.isArray(rule)) {
    const items = rule.map((item, i) => compile(item, `${path}[${i}]`, { ...scope, tail: false }));
    if (items.every((n) => n.constant)) return constant(items.map((n) => n.constant!.value));
    const fns = items.map((n) => n.fn);
    return { fn: (data, env) => fns.map((fn) => fn(data, env)) };
  }
  const keys = Object.keys(rule);
  // An object that is not a single-key operation is data, as in JsonLogic.
  if (keys.length !== 1) return constant(rule);
  const op = keys[0]!;
  const raw = rule[op] as JsonValue;
  const opPath = `${path}.${op}`;
  const build = OPERATORS[op];
  if (!build) {
    if (op === '$ref') throw new RuleCompileError(path, `unresolved $ref ${JSON.stringify(raw)}`);
    throw new RuleCompileError(path, `unknown operator "${op}"`);
  }
  return build(raw, opPath, scope);
}

type Builder = (raw: JsonValue, path: string, scope: Scope) => Node;

function argsOf(raw: JsonValue): JsonValue[] {
  return Array.isArray(raw) ? raw : [raw];
}

function compileArgs(raw: JsonValue, path: string, scope: Scope): Node[] {
  const inner = { ...scope, tail: false };
  return argsOf(raw).map((arg, i) => compile(arg, `${path}[${i}]`, inner));
}

function arity(path: string, args: unknown[], min: number, max = Infinity): void {
  if (args.length < min || args.length > max) {
    const want = max === min ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    throw new RuleCompileError(path, `expects ${want} argument(s), got ${args.length}`);
  }
}

/** Folds an operation over constant arguments at compile time when it has no side inputs. */
function pure(args: Node[], fn: (values: unknown[]) => unknown): Node {
  if (args.every((a) => a.constant)) {
    const values = args.map((a) => a.constant!.value);
    try {
      return constant(fn(values));
    } catch {
      // evaluation errors stay evaluation errors: fall through and fail at run time
    }
  }
  const fns = args.map((a) => a.fn);
  if (fns.length === 1) {
    const [a] = fns as [Evaluator];
    return { fn: (d, e) => fn([a(d, e)]) };
  }
  if (fns.length === 2) {
    const [a, b] = fns as [Evaluator, Evaluator];
    return { fn: (d, e) => fn([a(d, e), b(d, e)]) };
  }
  return { fn: (d, e) => fn(fns.map((f) => f(d, e))) };
}

// ---- var / missing ---------------------------------------------------------------------------

function splitPath(path: string, where: string): string[] {
  const segments = path.split('.');
  for (const s of segments) {
    if (FORBIDDEN_SEGMENTS.has(s)) throw new RuleCompileError(where, `"${s}" may not appear in a var path`);
  }
  return segments;
}

/** Reads an own, non-function property path; `undefined` when absent. */
function lookup(data: unknown, segments: readonly string[]): unknown {
  let cur = data;
  for (let i = 0; i < segments.length; i++) {
    if (cur === null || cur === undefined) return undefined;
    if (typeof cur !== 'object') {
      // strings and numbers have no own data properties worth reading (except string indexes)
      if (typeof cur === 'string') {
        cur = (cur as unknown as Record<string, unknown>)[segments[i]!];
        continue;
      }
      return undefined;
    }
    cur = (cur as Record<string, unknown>)[segments[i]!];
  }
  return typeof cur === 'function' ? undefined : cur;
}

function timestampOf(env: Env): number {
  if (env.timestamp === undefined) env.timestamp = Math.floor(Date.now() / 1000);
  return env.timestamp;
}

function flagdProperties(env: Env): Record<string, unknown> {
  return { flagKey: env.flagKey, timestamp: timestampOf(env) };
}

/** Root data as flagd sees it: the context plus `$flagd` (built only for `{"var": ""}`). */
function rootData(env: Env): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const key of Object.keys(env.ctx)) {
    if (!FORBIDDEN_SEGMENTS.has(key)) data[key] = env.ctx[key];
  }
  data.$flagd = flagdProperties(env);
  return data;
}

function compileVarPath(path: string, fallback: unknown, scope: Scope, where: string): Evaluator {
  const orFallback = (v: unknown) => (v === undefined ? fallback : v);
  if (path === '') return scope.inIterator ? (d) => d : (_d, env) => rootData(env);
  const segments = splitPath(path, where);
  if (!scope.inIterator && segments[0] === '$flagd') {
    if (segments.length === 1) return (_d, env) => flagdProperties(env);
    if (segments.length === 2 && segments[1] === 'flagKey') return () => scope.flagKey;
    if (segments.length === 2 && segments[1] === 'timestamp') return (_d, env) => timestampOf(env);
    return () => fallback;
  }
  if (segments.length === 1) {
    const key = segments[0]!;
    return (d) => {
      if (d === null || typeof d !== 'object') return lookup(d, segments) ?? orFallback(undefined);
      const v = (d as Record<string, unknown>)[key];
      return v === undefined || typeof v === 'function' ? fallback : v;
    };
  }
  return (d) => orFallback(lookup(d, segments));
}

const compileVar: Builder = (raw, path, scope) => {
  const args = argsOf(raw);
  const [pathArg = null, fallbackArg = null] = args;
  const pathNode = compile(pathArg, `${path}[0]`, { ...scope, tail: false });
  const fallbackNode = compile(fallbackArg, `${path}[1]`, { ...scope, tail: false });
  if (pathNode.constant && fallbackNode.constant) {
    const p = pathNode.constant.value;
    const fallback = fallbackNode.constant.value ?? null;
    return { fn: compileVarPath(p === null || p === undefined ? '' : String(p), fallback, scope, path) };
  }
  // dynamic path: resolved (and checked) on every evaluation
  return {
    fn: (d, env) => {
      const p = pathNode.fn(d, env);
      const fallback = fallbackNode.fn(d, env) ?? null;
      const str = p === null || p === undefined ? '' : String(p);
      try {
        return compileVarPath(str, fallback, scope, path)(d, env);
      } catch (e) {
        throw new EvaluationFailure(e instanceof Error ? e.message : String(e));
      }
    },
  };
};

/** `missing` semantics (json-logic-engine): only an absent (undefined) value is missing. */
function isAbsent(data: unknown, key: unknown, scope: Scope, env: Env): boolean {
  const segments = String(key).split('.');
  if (segments.some((s) => FORBIDDEN_SEGMENTS.has(s))) return true;
  // at the root, `$flagd.*` is present exactly where `var` finds it
  if (!scope.inIterator && segments[0] === '$flagd') return lookup({ $flagd: flagdProperties(env) }, segments) === undefined;
  return lookup(data, segments) === undefined;
}

const compileMissing: Builder = (raw, path, scope) => {
  const args = compileArgs(raw, path, scope);
  return {
    fn: (d, env) => {
      let keys = args.map((a) => a.fn(d, env));
      if (keys.length === 1 && Array.isArray(keys[0])) keys = keys[0] as unknown[];
      const data = scope.inIterator ? d : env.ctx;
      return keys.filter((k) => isAbsent(data, k, scope, env));
    },
  };
};

const compileMissingSome: Builder = (raw, path, scope) => {
  const args = compileArgs(raw, path, scope);
  arity(path, args, 2, 2);
  return {
    fn: (d, env) => {
      const need = Number(args[0]!.fn(d, env));
      const keys = args[1]!.fn(d, env);
      const list = Array.isArray(keys) ? keys : [keys];
      const data = scope.inIterator ? d : env.ctx;
      const absent = list.filter((k) => isAbsent(data, k, scope, env));
      return list.length - absent.length >= need ? [] : absent;
    },
  };
};

// ---- logic ------------------------------------------------------------------------------------

const compileIf: Builder = (raw, path, scope) => {
  const args = argsOf(raw);
  if (args.length === 0) return constant(null);
  if (args.length === 1) return compile(args[0]!, `${path}[0]`, scope);
  const cond = { ...scope, tail: false };
  const conditions: Evaluator[] = [];
  const conditionRules: JsonValue[] = [];
  const branches: Evaluator[] = [];
  let i = 0;
  for (; i + 1 < args.length; i += 2) {
    conditions.push(compile(args[i]!, `${path}[${i}]`, cond).fn);
    conditionRules.push(args[i]!);
    branches.push(compile(args[i + 1]!, `${path}[${i + 1}]`, scope).fn);
  }
  const otherwise = i < args.length ? compile(args[i]!, `${path}[${i}]`, scope).fn : () => null;
  const n = conditions.length;
  return {
    fn: (d, env) => {
      for (let c = 0; c < n; c++) {
        const outcome = conditions[c]!(d, env);
        const matched = truthy(outcome);
        if (env.trace && scope.tail) {
          env.trace.push({
            path: `${path}[${c * 2}]`,
            rule: conditionRules[c]!,
            outcome,
            note: matched ? `condition ${c + 1} matched` : `condition ${c + 1} did not match`,
          });
        }
        if (matched) return branches[c]!(d, env);
      }
      if (env.trace && scope.tail) {
        env.trace.push({ path: `${path}[${n * 2}]`, rule: args[n * 2] ?? null, outcome: undefined, note: 'no condition matched: else branch' });
      }
      return otherwise(d, env);
    },
  };
};

function compileAndOr(isAnd: boolean): Builder {
  return (raw, path, scope) => {
    const args = compileArgs(raw, path, scope).map((a) => a.fn);
    if (args.length === 0) return constant(null);
    return {
      fn: (d, env) => {
        let item: unknown;
        for (let i = 0; i < args.length; i++) {
          item = args[i]!(d, env);
          if (truthy(item) !== isAnd) return item;
        }
        return item;
      },
    };
  };
}

const compileNot: Builder = (raw, path, scope) => {
  const [a] = compileArgs(raw, path, scope);
  return pure([a ?? constant(undefined)], ([v]) => !truthy(v));
};

const compileNotNot: Builder = (raw, path, scope) => {
  const [a] = compileArgs(raw, path, scope);
  return pure([a ?? constant(undefined)], ([v]) => truthy(v));
};

// ---- comparison --------------------------------------------------------------------------------

function toNumberOrFail(v: unknown): number {
  if (v && typeof v === 'object') throw new EvaluationFailure('cannot compare an object or array with a number');
  const n = +(v as number);
  if (Number.isNaN(n)) throw new EvaluationFailure(`cannot compare ${JSON.stringify(v)} as a number`);
  return n;
}

function isStringLike(v: unknown): boolean {
  return typeof v === 'string' || v === null;
}

function comparator(strict: boolean, test: (a: never, b: never) => boolean): Builder {
  const cmp = (a: unknown, b: unknown): boolean => {
    if (strict || (isStringLike(a) && isStringLike(b))) return test(a as never, b as never);
    const x = toNumberOrFail(a);
    // json-logic-engine lets null meet a non-numeric string (null < "x" is just false)
    const y = a === null && !(b && typeof b === 'object') ? +(b as number) : toNumberOrFail(b);
    return test(x as never, y as never);
  };
  return (raw, path, scope) => {
    const args = compileArgs(raw, path, scope);
    arity(path, args, 2);
    if (args.length === 2) return pure(args, ([a, b]) => cmp(a, b));
    // chained form, e.g. {"<": [0, {"var": "x"}, 10]} ("between")
    return pure(args, (values) => {
      for (let i = 1; i < values.length; i++) if (!cmp(values[i - 1], values[i])) return false;
      return true;
    });
  };
}

// ---- arithmetic -------------------------------------------------------------------------------

function numeric(v: unknown): number {
  if (v && typeof v === 'object') throw new EvaluationFailure('arithmetic on an object or array');
  return +(v as number);
}

function checked(n: number): number {
  if (Number.isNaN(n)) throw new EvaluationFailure('arithmetic produced NaN');
  return n;
}

const arithmetic: Record<string, (values: unknown[], path: string) => number> = {
  '+': (v) => checked(v.reduce<number>((s, x) => s + numeric(x), 0)),
  '*': (v) => checked(v.reduce<number>((s, x) => s * numeric(x), 1)),
  '-': (v) => {
    if (v.length === 1) return checked(-numeric(v[0]));
    return checked(v.slice(1).reduce<number>((s, x) => s - numeric(x), numeric(v[0])));
  },
  '/': (v) => {
    if (v.length === 1) {
      const d = numeric(v[0]);
      if (!d) throw new EvaluationFailure('division by zero');
      return 1 / d;
    }
    let r = numeric(v[0]);
    for (let i = 1; i < v.length; i++) {
      const d = numeric(v[i]);
      if (!d) throw new EvaluationFailure('division by zero');
      r /= d;
    }
    if (r === Infinity) throw new EvaluationFailure('division overflow');
    return checked(r);
  },
  '%': (v) => checked(v.slice(1).reduce<number>((s, x) => s % numeric(x), numeric(v[0]))),
};

function compileArithmetic(op: string, min: number): Builder {
  const fn = arithmetic[op]!;
  return (raw, path, scope) => {
    const args = compileArgs(raw, path, scope);
    arity(path, args, min);
    return pure(args, (values) => fn(values, path));
  };
}

function compileMinMax(isMax: boolean): Builder {
  return (raw, path, scope) => {
    const args = compileArgs(raw, path, scope);
    arity(path, args, 1);
    return pure(args, (values) => {
      for (const v of values) if (typeof v !== 'number') throw new EvaluationFailure(`${isMax ? 'max' : 'min'} of a non-number`);
      return isMax ? Math.max(...(values as number[])) : Math.min(...(values as number[]));
    });
  };
}

// ---- membership and strings ----------------------------------------------------------------------

/** Above this size a constant list is matched through a Set (O(1)); below, includes() is as fast. */
const SET_THRESHOLD = 8;

const compileIn: Builder = (raw, path, scope) => {
  const args = compileArgs(raw, path, scope);
  arity(path, args, 2, 2);
  const [needle, haystack] = args as [Node, Node];
  const list = haystack.constant?.value;
  if (Array.isArray(list) && list.length > SET_THRESHOLD) {
    // includes() and Set#has both use SameValueZero, so the result is identical
    const members = new Set(list);
    if (needle.constant) return constant(members.has(needle.constant.value));
    const n = needle.fn;
    return { fn: (d, env) => members.has(n(d, env)) };
  }
  return pure(args, ([item, container]) => {
    if (container === null || container === undefined) return false;
    if (typeof container === 'string') return container.includes(item as string);
    if (Array.isArray(container)) return container.includes(item);
    throw new EvaluationFailure('"in" needs an array or a string to search');
  });
};

const compileCat: Builder = (raw, path, scope) => {
  const args = compileArgs(raw, path, scope);
  return pure(args, (values) => {
    let s = '';
    for (const v of values) if (v !== null && v !== undefined) s += String(v);
    return s;
  });
};

const compileSubstr: Builder = (raw, path, scope) => {
  const args = compileArgs(raw, path, scope);
  arity(path, args, 2, 3);
  return pure(args, ([str, from, len]) => {
    const s = String(str ?? '');
    const start = Number(from);
    const sliced = start < 0 ? s.slice(Math.max(s.length + start, 0)) : s.slice(start);
    if (len === undefined || len === null) return sliced;
    const n = Number(len);
    return n < 0 ? sliced.slice(0, Math.max(sliced.length + n, 0)) : sliced.slice(0, n);
  });
};

const compileMerge: Builder = (raw, path, scope) => {
  const args = compileArgs(raw, path, scope);
  return pure(args, (values) => values.flatMap((v) => (Array.isArray(v) ? v : [v])));
};

function compileAffix(isStart: boolean): Builder {
  // flagd: null (not false) for a wrong argument count or non-string input
  return (raw, path, scope) => {
    const args = compileArgs(raw, path, scope);
    return pure(args, (values) => {
      if (values.length !== 2) return null;
      const [s, affix] = values;
      if (typeof s !== 'string' || typeof affix !== 'string') return null;
      return isStart ? s.startsWith(affix) : s.endsWith(affix);
    });
  };
}

const compileSemVer: Builder = (raw, path, scope) => {
  const args = compileArgs(raw, path, scope);
  if (args.length !== 3) return constant(null); // flagd: wrong arity is "no result"
  const [left, op, right] = args as [Node, Node, Node];
  // parse constant versions once
  const fixedRight = right.constant ? parseVersion(right.constant.value) : undefined;
  const fixedLeft = left.constant ? parseVersion(left.constant.value) : undefined;
  return {
    fn: (d, env) => {
      const a = fixedLeft !== undefined ? fixedLeft : parseVersion(left.fn(d, env));
      const operator = op.fn(d, env);
      const b = fixedRight !== undefined ? fixedRight : parseVersion(right.fn(d, env));
      if (!a || !b || !isSemVerOperator(operator)) return null;
      return compareVersions(a, operator, b);
    },
  };
};

// ---- arrays -------------------------------------------------------------------------------------

type IterKind = 'map' | 'filter' | 'all' | 'none' | 'some';

function compileIterator(kind: IterKind): Builder {
  return (raw, path, scope) => {
    const args = argsOf(raw);
    arity(path, args, 2, 2);
    const source = compile(args[0]!, `${path}[0]`, { ...scope, tail: false }).fn;
    const body = compile(args[1]!, `${path}[1]`, { ...scope, tail: false, inIterator: true }).fn;
    return {
      fn: (d, env) => {
        const value = source(d, env);
        const list = Array.isArray(value) ? value : [];
        switch (kind) {
          case 'map':
            return list.map((x) => body(x, env));
          case 'filter':
            return list.filter((x) => truthy(body(x, env)));
          case 'all':
            return list.length > 0 && list.every((x) => truthy(body(x, env)));
          case 'some':
            return list.some((x) => truthy(body(x, env)));
          case 'none':
            return !list.some((x) => truthy(body(x, env)));
        }
      },
    };
  };
}

const compileReduce: Builder = (raw, path, scope) => {
  const args = argsOf(raw);
  arity(path, args, 2, 3);
  const source = compile(args[0]!, `${path}[0]`, { ...scope, tail: false }).fn;
  const body = compile(args[1]!, `${path}[1]`, { ...scope, tail: false, inIterator: true }).fn;
  const initial = compile(args[2] ?? null, `${path}[2]`, { ...scope, tail: false }).fn;
  return {
    fn: (d, env) => {
      const value = source(d, env);
      let acc = initial(d, env);
      if (!Array.isArray(value)) return acc;
      for (const current of value) acc = body({ current, accumulator: acc }, env);
      return acc;
    },
  };
};

// ---- fractional ---------------------------------------------------------------------------------

interface Bucket {
  variant: unknown;
  weight: number;
}

function toBuckets(entries: unknown[]): { buckets: Bucket[]; total: number } | null {
  const buckets: Bucket[] = [];
  let total = 0;
  for (const entry of entries) {
    if (!Array.isArray(entry) || entry.length === 0 || entry.length > 2) return null;
    const v = entry[0];
    let variant: unknown;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') variant = v;
    else if (v === null || v === undefined) variant = null;
    else return null;
    let weight = 1;
    if (entry.length === 2) {
      const w = entry[1];
      if (typeof w !== 'number' || !Number.isInteger(w)) return null;
      weight = Math.max(0, w); // flagd clamps negative weights (they come from rollout arithmetic)
    }
    buckets.push({ variant, weight });
    total += weight;
  }
  return total > MAX_WEIGHT ? null : { buckets, total };
}

function pick(key: string, split: { buckets: Bucket[]; total: number }): { variant: unknown; bucket: number } {
  if (split.total === 0) return { variant: null, bucket: -1 };
  const bucket = bucketOf(murmur3(key), split.total);
  let sum = 0;
  for (const b of split.buckets) {
    sum += b.weight;
    if (sum > bucket) return { variant: b.variant, bucket };
  }
  return { variant: null, bucket };
}

const compileFractional: Builder = (raw, path, scope) => {
  const args = compileArgs(raw, path, scope);
  if (args.length === 0) return constant(null);
  const first = args[0]!;
  // Common case: all bucket entries constant and the bucketing key implicit (flagKey + targetingKey).
  const allConstant = args.every((a) => a.constant);
  const implicitKey = first.constant && typeof first.constant.value !== 'string';
  const fixed = allConstant && implicitKey ? toBuckets(args.map((a) => a.constant!.value)) : undefined;
  const fns = args.map((a) => a.fn);
  const prefix = scope.flagKey;
  const tail = scope.tail;
  return {
    fn: (d, env) => {
      let key: string;
      let split: { buckets: Bucket[]; total: number } | null;
      if (fixed !== undefined) {
        const tk = env.ctx.targetingKey as unknown;
        if (!tk) return null; // no targetingKey: default variant (flagd)
        key = prefix + String(tk);
        split = fixed;
      } else {
        const values = fns.map((f) => f(d, env));
        if (typeof values[0] === 'string') {
          key = values[0];
          split = toBuckets(values.slice(1));
        } else {
          const tk = env.ctx.targetingKey as unknown;
          if (!tk) return null;
          key = prefix + String(tk);
          split = toBuckets(values);
        }
      }
      if (!split) return null;
      const { variant, bucket } = pick(key, split);
      if (tail && variant !== null) env.split = true;
      if (env.trace) {
        env.trace.push({
          path,
          rule: { fractional: raw },
          outcome: variant,
          note: `percentage split on "${key}": bucket ${bucket} of ${split.total} → ${JSON.stringify(variant)}`,
        });
      }
      return variant;
    },
  };
};

const OPERATORS: Readonly<Record<string, Builder>> = Object.assign(Object.create(null) as Record<string, Builder>, {
  var: compileVar,
  missing: compileMissing,
  missing_some: compileMissingSome,
  if: compileIf,
  '?:': compileIf,
  and: compileAndOr(true),
  or: compileAndOr(false),
  '!': compileNot,
  '!!': compileNotNot,
  '==': comparator(false, (a, b) => a == b),
  '!=': comparator(false, (a, b) => a != b),
  '===': comparator(true, (a, b) => a === b),
  '!==': comparator(true, (a, b) => a !== b),
  '<': comparator(false, (a, b) => a < b),
  '<=': comparator(false, (a, b) => a <= b),
  '>': comparator(false, (a, b) => a > b),
  '>=': comparator(false, (a, b) => a >= b),
  '+': compileArithmetic('+', 0),
  '-': compileArithmetic('-', 1),
  '*': compileArithmetic('*', 0),
  '/': compileArithmetic('/', 1),
  '%': compileArithmetic('%', 2),
  max: compileMinMax(true),
  min: compileMinMax(false),
  in: compileIn,
  cat: compileCat,
  substr: compileSubstr,
  merge: compileMerge,
  map: compileIterator('map'),
  filter: compileIterator('filter'),
  all: compileIterator('all'),
  none: compileIterator('none'),
  some: compileIterator('some'),
  reduce: compileReduce,
  fractional: compileFractional,
  sem_ver: compileSemVer,
  starts_with: compileAffix(true),
  ends_with: compileAffix(false),
});

/** The operators the compiler understands, for docs and error messages. */
export const SUPPORTED_OPERATORS: readonly string[] = Object.keys(OPERATORS);
