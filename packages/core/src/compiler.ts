import {
  add,
  BudgetExceeded,
  BYTES_PER_ARRAY,
  BYTES_PER_CHAR,
  BYTES_PER_ELEMENT,
  BYTES_PER_PIECE,
  CHARS_PER_STEP,
  CONTEXT_SIZE,
  CONTEXT_STRING,
  FREE_CHARS,
  lin,
  max,
  MAX_OBJECT_KEYS,
  measure,
  overElements,
  plus,
  scale,
  sizeOf,
  sum,
  T_ANY,
  T_ARR,
  T_BOOL,
  T_NULL,
  T_NUM,
  T_OBJ,
  T_STR,
  typeOf,
  upper,
  valueAt,
  WEIGHT,
  ZERO,
  type Cost,
  type Lin,
} from './cost';
import type { Decision, Read, SplitPlan, Test } from './codegen';
import { bucketOf, hashPrefix, murmur3, murmur3After } from './murmur3';
import { compareVersions, isSemVerOperator, parseVersion } from './semver-op';
import type { EvaluationContext, ExplainStep, JsonValue } from './types';

// Compiles flagd's JsonLogic dialect into plain closures, once per flag set change.
// Semantics follow json-logic-engine (the engine flagd-core uses), including which inputs are
// evaluation errors (a number compared with a non-numeric string, arithmetic on objects): those
// throw EvaluationFailure, which the snapshot turns into a GENERAL error result.
//
// Every node also gets a static Cost (cost.ts). A rule whose worst case is over the budget is
// refused here (RuleCompileError, with the path of the node), before anything is folded or run.
// The closures charge the work that depends on the data (iterations, list scans, strings read,
// arrays and strings built) to the budget carried in Env, and throw BudgetExceeded when it runs
// out. For every context within the assumption of cost.ts, what they charge is at most the static
// bound; the node evaluations that are not charged are counted in Cost.weight.

/**
 * Per-evaluation state shared by the closures of one flag. A snapshot reuses one Env from one
 * evaluation to the next (it is reset before each), so evaluating allocates nothing for it.
 */
export interface Env {
  ctx: EvaluationContext;
  flagKey: string;
  /** Unix seconds, read lazily (most rules never use `$flagd.timestamp`). */
  timestamp: number | undefined;
  /** Set when the value that decided came from a `fractional` split. */
  split: boolean;
  /** Present only for `explain`. */
  trace: ExplainStep[] | undefined;
  /** Steps left in this evaluation's budget; below zero the evaluation is stopped. */
  steps: number;
  /** Bytes (estimated) left in this evaluation's budget; below zero the evaluation is stopped. */
  alloc: number;
}

export type Evaluator = (data: unknown, env: Env) => unknown;

/**
 * Turns what a flag's targeting picked into the flag's result, for the fast path: called at
 * compile time for the variant names the rule spells out (so their results are built once) and at
 * run time for names the rule computes. `split`: the value came from a `fractional` in tail
 * position. Throws (an Error the snapshot reports as GENERAL) for a value that is not a variant.
 */
export type Outcome = (picked: unknown, split: boolean) => unknown;

/** The most one evaluation may cost: the static bound at compile time and the run-time budget. */
export interface EvaluationBudget {
  readonly steps: number;
  readonly bytes: number;
}

/** A rule that cannot be compiled (unknown operator, wrong arity, forbidden path, too costly). */
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
  /** What `var` reads here: the context, a list element, or reduce's {current, accumulator}. */
  readonly data: 'context' | 'element' | 'reduce';
  /** The value of this node is the targeting result (not a condition): a split here is SPLIT. */
  readonly tail: boolean;
  readonly flagKey: string;
  /** Largest size of what `var` reads here (D in cost.ts); Infinity when it has no numeric bound. */
  readonly dMax: number;
  /** Longest string in what `var` reads here (in reduce: in `current`). */
  readonly dText: number;
  /** In a reduce body: the types the accumulator can have. */
  readonly accTypes?: number;
  readonly budget: EvaluationBudget;
  /** Fast path only: where the value of a tail node goes (see Outcome). */
  readonly outcome?: Outcome;
}

interface Node {
  fn: Evaluator;
  /** Set when the node is a constant (folded at compile time). */
  constant?: { value: unknown };
  cost: Cost;
  /** Fast path, for a node in tail position: its value turned into the flag's result (scope.outcome). */
  tail?: Evaluator;
  /** Fast path, for a constant in tail position that names a variant: its result, built at compile time. */
  ready?: unknown;
  /** Set for `{"var": "name"}` (one path segment, a constant fallback): read inline by the operators that fuse it. */
  read?: Read;
  /** For generated code (codegen.ts): the node as a condition, when its operator has a template there. Root scope only. */
  test?: Test;
  /** For generated code: the node in tail position, as the flag's result. Root scope only. */
  decision?: Decision;
}

/** A tail node whose result is known only at run time. */
const NOT_READY: unknown = Object.freeze({});

/** A constant's result, or NOT_READY when it is not a variant (an error at run time). */
function readyOf(node: Node, outcome: Outcome | undefined): unknown {
  try {
    return outcome!(node.constant!.value, false);
  } catch {
    return NOT_READY;
  }
}

/** The value of a node whose tail form replaces it (never called). */
const UNUSED: Evaluator = () => {
  throw new Error('internal: the value of a tail node was used');
};

const FORBIDDEN_SEGMENTS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
const MAX_WEIGHT = 2147483647;

/** Budget used when none is given (the defaults of FlagSetLimits). */
export const DEFAULT_BUDGET: EvaluationBudget = Object.freeze({ steps: 100_000, bytes: 1_000_000 });

/** A compiled rule and its static worst case (for a context within the assumption of cost.ts). */
export interface CompiledRule {
  fn: Evaluator;
  /** Worst-case steps of one evaluation: those charged at run time plus the uncharged node evaluations. */
  maxSteps: number;
  /** Worst-case steps charged to the run-time budget. */
  maxChargedSteps: number;
  /** Worst-case bytes charged to the run-time budget. */
  maxBytes: number;
}

/**
 * Compiles a flag's targeting, refusing it (RuleCompileError) when its worst-case cost is over
 * the budget. `flagKey` is fixed at compile time (used by `$flagd.flagKey`).
 */
export function compileRule(rule: JsonValue, flagKey: string, budget: EvaluationBudget = DEFAULT_BUDGET): CompiledRule {
  const scope: Scope = { inIterator: false, data: 'context', tail: true, flagKey, dMax: CONTEXT_SIZE, dText: CONTEXT_STRING, budget };
  const node = compile(rule, 'targeting', scope);
  const charged = valueAt(node.cost.steps, CONTEXT_SIZE, 0);
  return { fn: node.fn, maxSteps: node.cost.weight + charged, maxChargedSteps: charged, maxBytes: valueAt(node.cost.alloc, CONTEXT_SIZE, 0) };
}

/** A flag's targeting compiled for the fast path: its value is the flag's result (see Outcome). */
export interface CompiledDecision extends CompiledRule {
  /** (context, env) → what `outcome` returned for the value the targeting picked. */
  decide: Evaluator;
  /** The same decision for codegen.ts, when every node of the rule has a template there. */
  decision: Decision | undefined;
}

/**
 * Compiles a flag's targeting for evaluation: the same checks, cost bound and run-time charges as
 * compileRule, but the tail of the rule (the targeting, `if` branches, a `fractional` there) gives
 * the flag's result through `outcome`, built at compile time where the rule names the variant.
 * No trace: `explain` uses compileRule.
 */
export function compileDecision(rule: JsonValue, flagKey: string, outcome: Outcome, budget: EvaluationBudget = DEFAULT_BUDGET): CompiledDecision {
  const scope: Scope = { inIterator: false, data: 'context', tail: true, flagKey, dMax: CONTEXT_SIZE, dText: CONTEXT_STRING, budget, outcome };
  const node = compile(rule, 'targeting', scope);
  const charged = valueAt(node.cost.steps, CONTEXT_SIZE, 0);
  return {
    fn: node.fn,
    decide: node.tail!,
    decision: decisionOf(node, outcome),
    maxSteps: node.cost.weight + charged,
    maxChargedSteps: charged,
    maxBytes: valueAt(node.cost.alloc, CONTEXT_SIZE, 0),
  };
}

/** Compiles a flag's targeting (see compileRule). */
export function compileTargeting(rule: JsonValue, flagKey: string, budget: EvaluationBudget = DEFAULT_BUDGET): Evaluator {
  return compileRule(rule, flagKey, budget).fn;
}

/** A fresh per-evaluation state with the whole budget. */
export function newEnv(ctx: EvaluationContext, flagKey: string, budget: EvaluationBudget, trace?: ExplainStep[]): Env {
  return { ctx, flagKey, timestamp: undefined, split: false, trace, steps: budget.steps, alloc: budget.bytes };
}

const hasOwn = Object.prototype.hasOwnProperty;

/** json-logic-engine's truthiness: [] and {} are false, as are the JS falsy values. */
export function truthy(value: unknown): boolean {
  if (!value) return false;
  if (typeof value === 'object') {
    if (Array.isArray(value)) return value.length > 0;
    // an own enumerable key, as Object.keys(value).length > 0, without building the list of keys
    for (const key in value) if (hasOwn.call(value, key)) return true;
    return false;
  }
  return true;
}

// ---- budget --------------------------------------------------------------------------------------

function chargeSteps(env: Env, n: number): void {
  if ((env.steps -= n) < 0) throw new BudgetExceeded('steps');
}

function chargeBytes(env: Env, n: number): void {
  if ((env.alloc -= n) < 0) throw new BudgetExceeded('allocation');
}

/**
 * Reading a string's characters: compared, parsed, hashed, searched (or first copied flat). Up
 * to FREE_CHARS characters this is part of a node's own step (and a string `cat` built that
 * short was paid for by its pieces); longer strings are charged by length.
 */
function chargeRead(env: Env, v: unknown): void {
  if (typeof v === 'string' && v.length > FREE_CHARS) {
    const n = v.length;
    if ((env.steps -= (n / CHARS_PER_STEP) | 0) < 0) throw new BudgetExceeded('steps');
    if ((env.alloc -= BYTES_PER_CHAR * n) < 0) throw new BudgetExceeded('allocation');
  }
}

/** Bytes of an array of n elements. */
function arrayBytes(n: number): number {
  return BYTES_PER_ARRAY + BYTES_PER_ELEMENT * n;
}

/** Folding at compile time runs on constants whose cost was checked first: no budget there. */
const FOLD_ENV: Env = { ctx: Object.freeze({}), flagKey: '', timestamp: undefined, split: false, trace: undefined, steps: Infinity, alloc: Infinity };

interface OwnCost {
  weight?: number;
  steps?: Lin;
  alloc?: Lin;
  size: Lin;
  text?: Lin;
  built?: Lin;
  types: number;
}

/** The cost of a node evaluating its children once, plus its own weight and data-dependent work. */
function costOf(children: readonly Node[], own: OwnCost): Cost {
  let weight = 1 + (own.weight ?? 0);
  const steps: Lin[] = own.steps ? [own.steps] : [];
  const alloc: Lin[] = own.alloc ? [own.alloc] : [];
  const built: Lin[] = own.built ? [own.built] : [];
  for (const child of children) {
    weight += child.cost.weight;
    steps.push(child.cost.steps);
    alloc.push(child.cost.alloc);
    built.push(child.cost.built);
  }
  return { weight, steps: sum(steps), alloc: sum(alloc), size: own.size, text: own.text ?? ZERO, built: upper(built), types: own.types };
}

/** Static counterpart of chargeRead for the values of these nodes. */
function reads(nodes: readonly Node[]): { steps: Lin; alloc: Lin } {
  const steps: Lin[] = [];
  const alloc: Lin[] = [];
  for (const n of nodes) {
    if (!(n.cost.types & T_STR)) continue;
    if (n.constant) {
      const v = n.constant.value;
      const len = typeof v === 'string' && v.length > FREE_CHARS ? v.length : 0;
      steps.push(lin((len / CHARS_PER_STEP) | 0));
      alloc.push(lin(BYTES_PER_CHAR * len));
    } else if (n.cost.text.d !== 0 || n.cost.text.a !== 0 || n.cost.text.c > FREE_CHARS) {
      steps.push(scale(1 / CHARS_PER_STEP, n.cost.text));
      alloc.push(scale(BYTES_PER_CHAR, n.cost.text));
    }
  }
  return { steps: sum(steps), alloc: sum(alloc) };
}

/** Bound used to refuse a node: its variables at their largest; those with no numeric bound are left to the enclosing node. */
function worstCase(x: Lin, scope: Scope): number {
  return Number.isFinite(scope.dMax) ? valueAt(x, scope.dMax, 0) : x.c;
}

function formatCount(n: number): string {
  if (!Number.isFinite(n)) return 'unboundedly many';
  if (n >= 1e9) return n.toExponential(1).replace('e+', '×10^');
  return Math.ceil(n).toLocaleString('en-US');
}

const STEPS_ADVICE = 'iterate over shorter lists or nest fewer iterations, and test membership with "in" against a constant list, which is a set lookup, not a loop';
const BYTES_ADVICE = 'build smaller lists and strings with merge, map, filter and cat';
const GROWTH_ADVICE = 'use the accumulator at most once in its next value, so that it grows by addition, not multiplication';

/** Refuses a node whose worst case is over the budget, saying why and what to do. */
function enforce(cost: Cost, path: string, scope: Scope, why?: () => { reason: string; advice?: string }): void {
  const steps = cost.weight + worstCase(cost.steps, scope);
  const bytes = worstCase(cost.alloc, scope);
  const built = worstCase(cost.built, scope);
  const longest = maxStringLength(scope.budget);
  // (written so that a NaN, which no bound should ever be, counts as over the limit)
  if (steps <= scope.budget.steps && bytes <= scope.budget.bytes && built <= longest) return;
  const explained = why?.();
  const reason = explained ? ` (${explained.reason})` : '';
  // the context-size assumption matters only when the cost grows with what the rule reads
  const dependsOnData = scope.data === 'context' && (cost.steps.d > 0 || cost.alloc.d > 0 || cost.built.d > 0);
  const assumption = dependsOnData ? ` (a context is assumed to be at most ${CONTEXT_SIZE.toLocaleString('en-US')} characters of JSON)` : '';
  if (!(steps <= scope.budget.steps)) {
    throw new RuleCompileError(path, `worst-case cost is ${formatCount(steps)} steps per evaluation, above the limit of ${formatCount(scope.budget.steps)}${reason}${assumption}; ${explained?.advice ?? STEPS_ADVICE}`);
  }
  if (!(bytes <= scope.budget.bytes)) {
    throw new RuleCompileError(path, `may allocate ${formatCount(bytes)} bytes per evaluation, above the limit of ${formatCount(scope.budget.bytes)}${reason}${assumption}; ${explained?.advice ?? BYTES_ADVICE}`);
  }
  throw new RuleCompileError(path, `may build a string of ${formatCount(built)} characters, above the limit of ${formatCount(longest)}${reason}${assumption}; ${explained?.advice ?? BYTES_ADVICE}`);
}

/** Longest string an operation may build (half the byte budget: 2 bytes per character). */
function maxStringLength(budget: EvaluationBudget): number {
  return Math.floor(budget.bytes / BYTES_PER_CHAR);
}

function constant(value: unknown, facts = measure(value)): Node {
  return {
    fn: () => value,
    constant: { value },
    cost: { weight: 1, steps: ZERO, alloc: ZERO, size: lin(facts.size), text: lin(facts.text), built: ZERO, types: typeOf(value) },
  };
}

function compile(rule: JsonValue, path: string, scope: Scope): Node {
  const node = build(rule, path, scope);
  enforce(node.cost, path, scope);
  const outcome = scope.outcome;
  if (outcome !== undefined && scope.tail && node.tail === undefined) {
    node.tail = tailOf(node, outcome);
    if (node.constant) node.ready = readyOf(node, outcome);
    if (node.read !== undefined) node.decision = { kind: 'pick', read: node.read, outcome };
  }
  if (scope.inIterator) {
    // generated code reads the context: forms of nodes that read a list element are no use
    node.test = undefined;
    node.decision = undefined;
  }
  return node;
}

/** A node as a condition in generated code: its template, or a constant's truth. */
function testOf(node: Node): Test | undefined {
  if (node.constant) return { kind: 'const', truthy: truthy(node.constant.value) };
  return node.test;
}

/** A tail node as the flag's result in generated code (constants: their result, or the error they raise). */
function decisionOf(node: Node, outcome: Outcome): Decision | undefined {
  if (node.decision !== undefined) return node.decision;
  if (!node.constant) return undefined;
  const ready = node.ready !== undefined ? node.ready : readyOf(node, outcome);
  if (ready !== NOT_READY) return { kind: 'result', result: ready };
  const tail = node.tail ?? tailOf(node, outcome);
  return { kind: 'thunk', get: () => tail(undefined, FOLD_ENV) };
}

/** A node's value turned into the flag's result: once, at compile time, for a constant. */
function tailOf(node: Node, outcome: Outcome): Evaluator {
  if (node.constant) {
    const value = node.constant.value;
    let result: unknown;
    try {
      result = outcome(value, false);
    } catch {
      // not a variant: an error at run time, as it always was
      return () => outcome(value, false);
    }
    return () => result;
  }
  const fn = node.fn;
  return (d, env) => outcome(fn(d, env), false);
}

function build(rule: JsonValue, path: string, scope: Scope): Node {
  if (rule === null || typeof rule !== 'object') return constant(rule);
  if (Array.isArray(rule)) {
    // a list of plain values (a segment's 100,000 ids): one constant, measured in one pass — the
    // same size and text its items' constants add up to, without compiling each item
    if (rule.every((item) => item === null || typeof item !== 'object')) return constant(rule.slice(), measure(rule));
    const items = rule.map((item, i) => compile(item, `${path}[${i}]`, { ...scope, tail: false }));
    const commas = Math.max(0, items.length - 1);
    if (items.every((n) => n.constant)) {
      let size = 2 + commas;
      let text = 0;
      for (const n of items) {
        size += n.cost.size.c;
        text = Math.max(text, n.cost.text.c);
      }
      return constant(
        items.map((n) => n.constant!.value),
        { size, text, keys: 0 },
      );
    }
    const fns = items.map((n) => n.fn);
    const bytes = arrayBytes(fns.length);
    return {
      fn: (data, env) => {
        chargeBytes(env, bytes);
        const out: unknown[] = new Array(fns.length);
        for (let i = 0; i < fns.length; i++) out[i] = fns[i]!(data, env);
        return out;
      },
      cost: costOf(items, {
        alloc: lin(bytes),
        size: plus(sum(items.map((n) => n.cost.size)), 2 + commas),
        text: upper(items.map((n) => n.cost.text)),
        types: T_ARR,
      }),
    };
  }
  const keys = Object.keys(rule);
  // An object that is not a single-key operation is data, as in JsonLogic.
  if (keys.length !== 1) return dataObject(rule, path);
  const op = keys[0]!;
  const raw = rule[op] as JsonValue;
  const opPath = `${path}.${op}`;
  const builder = OPERATORS[op];
  if (!builder) {
    if (op === '$ref') throw new RuleCompileError(path, `unresolved $ref ${JSON.stringify(raw)}`);
    throw new RuleCompileError(path, `unknown operator "${op}"`);
  }
  return builder(raw, opPath, scope);
}

/** An object written as a value. Testing one for truth lists its keys: large ones are refused. */
function dataObject(rule: JsonValue, path: string): Node {
  const facts = measure(rule);
  if (facts.keys > MAX_OBJECT_KEYS) {
    throw new RuleCompileError(path, `an object used as a value has ${facts.keys} keys, above the limit of ${MAX_OBJECT_KEYS}; use a list and "in" instead`);
  }
  return constant(rule, facts);
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

type PureFn = (values: unknown[], env: Env) => unknown;
/** The same operation of exactly one or two values, passed as arguments (no array per evaluation). */
type Pure1 = (a: unknown, env: Env) => unknown;
type Pure2 = (a: unknown, b: unknown, env: Env) => unknown;

/**
 * An operation of its arguments' values only. Over constant arguments it is folded at compile
 * time, after its cost was checked (folding a costly operation is as costly as running it).
 * `one`/`two`: the same operation for one or two arguments, without building an array of values.
 */
function pure(args: Node[], cost: Cost, fn: PureFn, path: string, scope: Scope, fast?: { one?: Pure1; two?: Pure2 }): Node {
  if (args.every((a) => a.constant)) {
    enforce(cost, path, scope);
    const values = args.map((a) => a.constant!.value);
    try {
      return constant(fn(values, FOLD_ENV));
    } catch {
      // evaluation errors stay evaluation errors: fall through and fail at run time
    }
  }
  const fns = args.map((a) => a.fn);
  if (fns.length === 1) {
    const [a] = fns as [Evaluator];
    const one = fast?.one;
    if (one !== undefined) return { fn: (d, e) => one(a(d, e), e), cost };
    return { fn: (d, e) => fn([a(d, e)], e), cost };
  }
  if (fns.length === 2) {
    const [a, b] = fns as [Evaluator, Evaluator];
    const two = fast?.two;
    if (two !== undefined) return { fn: (d, e) => two(a(d, e), b(d, e), e), cost };
    return { fn: (d, e) => fn([a(d, e), b(d, e)], e), cost };
  }
  return { fn: (d, e) => fn(fns.map((f) => f(d, e)), e), cost };
}

/** Size bounds of booleans and numbers (String(n) has at most 24 characters). */
const BOOLEAN_SIZE = lin(5);
const NUMBER_SIZE = lin(24);

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

/** Bytes charged per context key copied by rootData. */
const BYTES_PER_PROPERTY = 16;

/** Root data as flagd sees it: the context plus `$flagd` (built only for `{"var": ""}`). */
function rootData(env: Env): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  const keys = Object.keys(env.ctx);
  chargeSteps(env, keys.length);
  chargeBytes(env, BYTES_PER_PROPERTY * (keys.length + 1));
  for (const key of keys) {
    if (!FORBIDDEN_SEGMENTS.has(key)) data[key] = env.ctx[key];
  }
  data.$flagd = flagdProperties(env);
  return data;
}

/** Size of `$flagd` ({"flagKey": …, "timestamp": …}). */
function flagdSize(flagKey: string): number {
  return 40 + flagKey.length;
}

/** What `var` reads in this scope (`path` undefined: a path known only at run time). */
function varCost(path: string | undefined, fallback: Node, scope: Scope): OwnCost {
  const fb = { size: max(fallback.cost.size, lin(4)), text: fallback.cost.text, types: fallback.cost.types | T_NULL };
  const or = (size: Lin, text: Lin, types = T_ANY): OwnCost => ({ size: max(size, fb.size), text: max(text, fb.text), types: types | fb.types });
  const D = lin(0, 1);
  if (scope.data === 'context') {
    // the root data: the context (a key per ≥ 5 characters of its JSON) plus $flagd
    const root: OwnCost = {
      weight: WEIGHT.rootData,
      steps: lin(0, 1 / 5),
      alloc: lin(BYTES_PER_PROPERTY * 2, BYTES_PER_PROPERTY / 5),
      size: plus(D, flagdSize(scope.flagKey) + 12),
      text: lin(Math.max(CONTEXT_STRING, scope.flagKey.length)),
      types: T_OBJ,
    };
    const read = or(D, lin(CONTEXT_STRING));
    if (path === undefined) return { ...root, ...or(root.size, root.text!) };
    if (path === '') return root;
    const first = path.split('.', 1)[0];
    if (first === '$flagd') {
      const key = lin(scope.flagKey.length);
      if (path === '$flagd') return { size: lin(flagdSize(scope.flagKey)), text: key, types: T_OBJ };
      if (path === '$flagd.flagKey') return { size: lin(sizeOf(scope.flagKey)), text: key, types: T_STR };
      if (path === '$flagd.timestamp') return { size: NUMBER_SIZE, types: T_NUM };
      return fb;
    }
    return read;
  }
  // inside an iterator a string in an element is at most the element's size (their sum is at most the list's)
  const elementText = scope.dText === 0 ? ZERO : D;
  if (scope.data === 'element') return or(D, elementText);
  // reduce: the data is {current, accumulator}
  const A = lin(0, 0, 1);
  const accTypes = scope.accTypes ?? T_ANY;
  const accText = accTypes & (T_STR | T_ARR | T_OBJ) ? A : ZERO;
  if (path === undefined || path === '') return or(plus(add(D, A), 40), max(elementText, accText));
  const first = path.split('.', 1)[0];
  if (first === 'current') return or(D, elementText);
  if (path === 'accumulator') return or(A, accText, accTypes);
  if (first === 'accumulator') return or(A, accText, accTypes & (T_ARR | T_OBJ) ? T_ANY : accTypes & T_STR ? T_STR : 0);
  return fb;
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
    const str = p === null || p === undefined ? '' : String(p);
    const node: Node = { fn: compileVarPath(str, fallback, scope, path), cost: costOf([], varCost(str, fallbackNode, scope)) };
    // one segment, not $flagd at the root: what compileVarPath read with its single-key closure
    if (str !== '' && !str.includes('.') && (scope.inIterator || str !== '$flagd')) {
      node.read = { key: str, fallback };
      node.test = { kind: 'truthy', read: node.read };
    }
    return node;
  }
  // dynamic path: resolved (and checked) on every evaluation
  const read = varCost(undefined, fallbackNode, scope);
  const pathFn = pathNode.fn;
  const fallbackFn = fallbackNode.fn;
  const pathRead = reads([pathNode]);
  return {
    fn: (d, env) => {
      const p = pathFn(d, env);
      const fallback = fallbackFn(d, env) ?? null;
      const str = p === null || p === undefined ? '' : stringOf(p, env);
      chargeRead(env, str);
      try {
        return compileVarPath(str, fallback, scope, path)(d, env);
      } catch (e) {
        if (e instanceof BudgetExceeded) throw e;
        throw new EvaluationFailure(e instanceof Error ? e.message : String(e));
      }
    },
    cost: costOf([pathNode, fallbackNode], {
      ...read,
      weight: WEIGHT.dynamicVar! + (read.weight ?? 0),
      steps: add(read.steps ?? ZERO, pathRead.steps, conversion([pathNode]).steps),
      alloc: add(read.alloc ?? ZERO, pathRead.alloc, conversion([pathNode]).alloc, scale(BYTES_PER_CHAR, pathNode.cost.size)),
    }),
  };
};

/** `missing` semantics (json-logic-engine): only an absent (undefined) value is missing. */
function isAbsent(data: unknown, key: unknown, scope: Scope, env: Env): boolean {
  const name = typeof key === 'string' ? key : stringOf(key, env);
  chargeRead(env, name);
  const segments = name.split('.');
  if (segments.some((s) => FORBIDDEN_SEGMENTS.has(s))) return true;
  // at the root, `$flagd.*` is present exactly where `var` finds it
  if (!scope.inIterator && segments[0] === '$flagd') return lookup({ $flagd: flagdProperties(env) }, segments) === undefined;
  return lookup(data, segments) === undefined;
}

/** Steps of checking one key (split on dots, looked up), measured (bench/cost.bench.js). */
const STEPS_PER_KEY = 6;

/**
 * Cost of checking a list of keys: a step and an array element per key (at most size/2 of the
 * list, or one per argument), and reading each key as a string (at most the list's size).
 */
function missingCost(args: Node[], keys: Node[]): Cost {
  const size = sum(keys.map((k) => k.cost.size));
  const count = plus(scale(1 / 2, size), keys.length);
  return costOf(args, {
    weight: WEIGHT.missing,
    steps: add(scale(STEPS_PER_KEY, count), scale(1 / CHARS_PER_STEP, size), conversion(keys).steps),
    alloc: add(plus(scale(BYTES_PER_ELEMENT, count), BYTES_PER_ARRAY), scale(BYTES_PER_CHAR, size), conversion(keys).alloc),
    size: plus(size, 2 + keys.length),
    text: upper(keys.map((k) => k.cost.text)),
    types: T_ARR,
  });
}

const compileMissing: Builder = (raw, path, scope) => {
  const args = compileArgs(raw, path, scope);
  const fns = args.map((a) => a.fn);
  return {
    fn: (d, env) => {
      let keys = fns.map((fn) => fn(d, env));
      if (keys.length === 1 && Array.isArray(keys[0])) keys = keys[0] as unknown[];
      chargeSteps(env, STEPS_PER_KEY * keys.length);
      chargeBytes(env, arrayBytes(keys.length));
      const data = scope.inIterator ? d : env.ctx;
      return keys.filter((k) => isAbsent(data, k, scope, env));
    },
    cost: missingCost(args, args),
  };
};

const compileMissingSome: Builder = (raw, path, scope) => {
  const args = compileArgs(raw, path, scope);
  arity(path, args, 2, 2);
  const [needFn, keysFn] = args.map((a) => a.fn) as [Evaluator, Evaluator];
  return {
    fn: (d, env) => {
      const needed = needFn(d, env);
      chargeRead(env, needed);
      const need = Number(needed);
      const keys = keysFn(d, env);
      const list = Array.isArray(keys) ? keys : [keys];
      chargeSteps(env, STEPS_PER_KEY * list.length);
      chargeBytes(env, arrayBytes(list.length));
      const data = scope.inIterator ? d : env.ctx;
      const absent = list.filter((k) => isAbsent(data, k, scope, env));
      return list.length - absent.length >= need ? [] : absent;
    },
    cost: (() => {
      const c = missingCost(args, [args[1]!]);
      const r = reads([args[0]!]);
      return { ...c, steps: add(c.steps, r.steps), alloc: add(c.alloc, r.alloc) };
    })(),
  };
};

// ---- logic ------------------------------------------------------------------------------------

const compileIf: Builder = (raw, path, scope) => {
  const args = argsOf(raw);
  if (args.length === 0) return constant(null);
  if (args.length === 1) return compile(args[0]!, `${path}[0]`, scope);
  const cond = { ...scope, tail: false };
  const conditions: Evaluator[] = [];
  const conditionNodes: Node[] = [];
  const conditionRules: JsonValue[] = [];
  const branches: Evaluator[] = [];
  const children: Node[] = [];
  const results: Node[] = [];
  let i = 0;
  for (; i + 1 < args.length; i += 2) {
    const condition = compile(args[i]!, `${path}[${i}]`, cond);
    const branch = compile(args[i + 1]!, `${path}[${i + 1}]`, scope);
    conditions.push(condition.fn);
    conditionNodes.push(condition);
    conditionRules.push(args[i]!);
    branches.push(branch.fn);
    children.push(condition, branch);
    results.push(branch);
  }
  const otherwiseNode = i < args.length ? compile(args[i]!, `${path}[${i}]`, scope) : constant(null);
  children.push(otherwiseNode);
  results.push(otherwiseNode);
  const n = conditions.length;
  const cost = costOf(children, oneOf(results));
  if (scope.outcome !== undefined && scope.tail) {
    // fast path: conditions as values, branches straight to the flag's result; no trace
    const outcome = scope.outcome;
    const tails = results.map((r) => r.tail ?? tailOf(r, outcome)); // the missing else is a constant null
    // a branch that names a variant has its result ready: returned without a call
    const ready = results.map((r) => (r.ready !== undefined ? r.ready : r.constant ? readyOf(r, outcome) : NOT_READY));
    const [c0, c1] = conditions as [Evaluator, Evaluator | undefined];
    const [t0, t1, t2] = tails as [Evaluator, Evaluator, Evaluator | undefined];
    const [r0, r1, r2] = ready;
    let tail: Evaluator;
    if (n === 1 && r0 !== NOT_READY && r1 !== NOT_READY) tail = (d, env) => (truthy(c0(d, env)) ? r0 : r1);
    else if (n === 1 && r0 !== NOT_READY) tail = (d, env) => (truthy(c0(d, env)) ? r0 : t1(d, env));
    else if (n === 1) tail = (d, env) => (truthy(c0(d, env)) ? t0(d, env) : t1(d, env));
    else if (n === 2 && r0 !== NOT_READY && r1 !== NOT_READY && r2 !== NOT_READY) tail = (d, env) => (truthy(c0(d, env)) ? r0 : truthy(c1!(d, env)) ? r1 : r2);
    else if (n === 2 && r0 !== NOT_READY && r1 !== NOT_READY) tail = (d, env) => (truthy(c0(d, env)) ? r0 : truthy(c1!(d, env)) ? r1 : t2!(d, env));
    else if (n === 2) tail = (d, env) => (truthy(c0(d, env)) ? t0(d, env) : truthy(c1!(d, env)) ? t1(d, env) : t2!(d, env));
    else {
      tail = (d, env) => {
        for (let c = 0; c < n; c++) {
          if (truthy(conditions[c]!(d, env))) {
            const r = ready[c];
            return r !== NOT_READY ? r : tails[c]!(d, env);
          }
        }
        const r = ready[n];
        return r !== NOT_READY ? r : tails[n]!(d, env);
      };
    }
    // generated code, when every condition and branch has a template there
    const tests = conditionNodes.map(testOf);
    const decisions = results.map((r) => decisionOf(r, outcome));
    let decision: Decision | undefined;
    if (tests.every((t) => t !== undefined) && decisions.every((d) => d !== undefined)) {
      decision = { kind: 'if', branches: tests.map((test, c) => ({ test: test!, then: decisions[c]! })), otherwise: decisions[n]! };
    }
    return { fn: UNUSED, tail, cost, decision };
  }
  const otherwise = otherwiseNode.fn;
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
    cost,
  };
};

/** Size, text and types of a value that is one of these nodes' values. */
function oneOf(nodes: readonly Node[]): OwnCost {
  return { size: upper(nodes.map((r) => r.cost.size)), text: upper(nodes.map((r) => r.cost.text)), types: nodes.reduce((t, r) => t | r.cost.types, 0) };
}

function compileAndOr(isAnd: boolean): Builder {
  return (raw, path, scope) => {
    const nodes = compileArgs(raw, path, scope);
    const args = nodes.map((a) => a.fn);
    if (args.length === 0) return constant(null);
    const tests = nodes.map(testOf);
    return {
      test: tests.every((t) => t !== undefined) ? { kind: isAnd ? 'all' : 'any', tests: tests as Test[] } : undefined,
      fn: (d, env) => {
        let item: unknown;
        for (let i = 0; i < args.length; i++) {
          item = args[i]!(d, env);
          if (truthy(item) !== isAnd) return item;
        }
        return item;
      },
      cost: costOf(nodes, oneOf(nodes)),
    };
  };
}

function booleanOf(args: Node[], extra?: { steps: Lin; alloc: Lin }): Cost {
  return costOf(args, { size: BOOLEAN_SIZE, types: T_BOOL, steps: extra?.steps, alloc: extra?.alloc });
}

const compileNot: Builder = (raw, path, scope) => {
  const [a] = compileArgs(raw, path, scope);
  const args = [a ?? constant(undefined)];
  return negation(pure(args, booleanOf(args), ([v]) => !truthy(v), path, scope, { one: (v) => !truthy(v) }), args[0]!, true);
};

const compileNotNot: Builder = (raw, path, scope) => {
  const [a] = compileArgs(raw, path, scope);
  const args = [a ?? constant(undefined)];
  return negation(pure(args, booleanOf(args), ([v]) => truthy(v), path, scope, { one: (v) => truthy(v) }), args[0]!, false);
};

/** `!` / `!!` in generated code: the test of its argument, negated or not. */
function negation(node: Node, arg: Node, negate: boolean): Node {
  const test = testOf(arg);
  if (!node.constant && test !== undefined) node.test = { kind: 'not', test, negate };
  return node;
}

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

/** `equality`: == and === (true), != and !== (false); for these two strings compare as === does. */
function comparator(strict: boolean, test: (a: never, b: never) => boolean, equality?: boolean): Builder {
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
    // comparing (or parsing) strings reads their characters
    const cost = booleanOf(args, reads(args));
    if (args.length === 2) {
      // a constant that is not a long string costs nothing to read: no check for it on every evaluation
      const [left, right] = args as [Node, Node];
      const short = (n: Node) => n.constant !== undefined && !(typeof n.constant.value === 'string' && n.constant.value.length > FREE_CHARS);
      const fused = fuseVarConstant(left, right, short, cmp, equality, cost);
      if (fused !== undefined) return fused;
      let fn: PureFn;
      let two: Pure2;
      if (short(right)) {
        fn = ([a, b], env) => two(a, b, env);
        two = (a, b, env) => {
          chargeRead(env, a);
          return cmp(a, b);
        };
      } else if (short(left)) {
        fn = ([a, b], env) => two(a, b, env);
        two = (a, b, env) => {
          chargeRead(env, b);
          return cmp(a, b);
        };
      } else {
        fn = ([a, b], env) => two(a, b, env);
        two = (a, b, env) => {
          chargeRead(env, a);
          chargeRead(env, b);
          return cmp(a, b);
        };
      }
      return pure(args, cost, fn, path, scope, { two });
    }
    // chained form, e.g. {"<": [0, {"var": "x"}, 10]} ("between")
    return pure(
      args,
      cost,
      (values, env) => {
        for (const v of values) chargeRead(env, v);
        for (let i = 1; i < values.length; i++) if (!cmp(values[i - 1], values[i])) return false;
        return true;
      },
      path,
      scope,
    );
  };
}

/**
 * `{"var": "name"}` compared with a short constant, as one closure: the same reads, charges and
 * result as the two nodes and the comparison, without calling them. With == / === (or != / !==)
 * and a string constant, a string value is compared with === directly.
 */
function fuseVarConstant(
  left: Node,
  right: Node,
  short: (n: Node) => boolean,
  cmp: (a: unknown, b: unknown) => boolean,
  equality: boolean | undefined,
  cost: Cost,
): Node | undefined {
  const varLeft = left.read !== undefined && short(right);
  if (!varLeft && !(right.read !== undefined && short(left))) return undefined;
  const v = varLeft ? left : right;
  const read = v.read!;
  const { key, fallback } = read;
  const slow = v.fn;
  const c = (varLeft ? right : left).constant!.value;
  if (equality !== undefined && typeof c === 'string') {
    const eq = equality;
    return {
      test: { kind: 'equals', read, value: c, equal: eq, cmp, varLeft },
      fn: (d, env) => {
        let a: unknown;
        if (d !== null && typeof d === 'object') {
          a = (d as Record<string, unknown>)[key];
          if (a === undefined || typeof a === 'function') a = fallback;
        } else a = slow(d, env);
        if (typeof a === 'string') {
          if (a.length > FREE_CHARS) chargeRead(env, a);
          return (a === c) === eq;
        }
        chargeRead(env, a);
        return varLeft ? cmp(a, c) : cmp(c, a);
      },
      cost,
    };
  }
  if (varLeft) {
    return {
      test: { kind: 'compare', read, value: c, cmp, varLeft },
      fn: (d, env) => {
        let a: unknown;
        if (d !== null && typeof d === 'object') {
          a = (d as Record<string, unknown>)[key];
          if (a === undefined || typeof a === 'function') a = fallback;
        } else a = slow(d, env);
        chargeRead(env, a);
        return cmp(a, c);
      },
      cost,
    };
  }
  return {
    test: { kind: 'compare', read, value: c, cmp, varLeft },
    fn: (d, env) => {
      let a: unknown;
      if (d !== null && typeof d === 'object') {
        a = (d as Record<string, unknown>)[key];
        if (a === undefined || typeof a === 'function') a = fallback;
      } else a = slow(d, env);
      chargeRead(env, a);
      return cmp(c, a);
    },
    cost,
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
    // a string operand is parsed as a number
    const r = reads(args);
    const cost = costOf(args, { steps: r.steps, alloc: r.alloc, size: NUMBER_SIZE, types: T_NUM });
    return pure(
      args,
      cost,
      (values, env) => {
        for (const v of values) chargeRead(env, v);
        return fn(values, path);
      },
      path,
      scope,
    );
  };
}

function compileMinMax(isMax: boolean): Builder {
  return (raw, path, scope) => {
    const args = compileArgs(raw, path, scope);
    arity(path, args, 1);
    const cost = costOf(args, { size: NUMBER_SIZE, types: T_NUM });
    return pure(
      args,
      cost,
      (values) => {
        for (const v of values) if (typeof v !== 'number') throw new EvaluationFailure(`${isMax ? 'max' : 'min'} of a non-number`);
        return isMax ? Math.max(...(values as number[])) : Math.min(...(values as number[]));
      },
      path,
      scope,
    );
  };
}

// ---- membership and strings ----------------------------------------------------------------------

/**
 * String(v), charging what it costs: for an array or object, a step per element visited (so a
 * structure that repeats itself cannot stall) and the string it becomes.
 */
function stringOf(v: unknown, env: Env): string {
  if (typeof v === 'string') return v;
  if (v === null || typeof v !== 'object') return String(v);
  chargeBytes(env, BYTES_PER_CHAR * textLength(v, env));
  return String(v);
}

/** The length of String(v) for an array or object, charging a step per element visited. */
function textLength(v: object, env: Env): number {
  if (!Array.isArray(v)) return String(v).length;
  chargeSteps(env, v.length + 1);
  let n = Math.max(0, v.length - 1);
  for (const item of v) {
    if (typeof item === 'string') n += item.length;
    else if (item !== null && typeof item === 'object') n += textLength(item, env);
    else if (item !== null && item !== undefined) n += String(item).length;
  }
  return n;
}

/**
 * Static counterpart of stringOf for arrays and objects among these nodes' values: String(v) is
 * at most v's size, visiting at most that many elements; counted twice, as the string is then
 * read as well.
 */
function conversion(nodes: readonly Node[]): { steps: Lin; alloc: Lin } {
  const sizes = sum(nodes.filter((n) => n.cost.types & (T_ARR | T_OBJ)).map((n) => n.cost.size));
  return { steps: scale(1 + 1 / CHARS_PER_STEP, sizes), alloc: scale(2 * BYTES_PER_CHAR, sizes) };
}

/** The longest a value's String() can be: its longest string, a number's 24 characters, or (array, object) its size. */
function stringLength(node: Node): Lin {
  if (node.constant) {
    const v = node.constant.value;
    return lin(v === null || v === undefined ? 0 : typeof v === 'object' ? node.cost.size.c : String(v).length);
  }
  const t = node.cost.types;
  if (t & (T_ARR | T_OBJ)) return node.cost.size;
  const scalar = t & (T_NUM | T_BOOL) ? lin(24) : ZERO;
  return t & T_STR ? max(node.cost.text, scalar) : scalar;
}

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
    if (needle.read !== undefined) {
      // {"in": [{"var": "name"}, [...]]}: the read inline
      const { key, fallback } = needle.read;
      const slow = needle.fn;
      return {
        test: { kind: 'member', read: needle.read, members },
        fn: (d, env) => {
          let item: unknown;
          if (d !== null && typeof d === 'object') {
            item = (d as Record<string, unknown>)[key];
            if (item === undefined || typeof item === 'function') item = fallback;
          } else item = slow(d, env);
          chargeRead(env, item); // hashed
          return members.has(item);
        },
        cost: booleanOf(args, reads([needle])),
      };
    }
    const n = needle.fn;
    return {
      fn: (d, env) => {
        const item = n(d, env);
        chargeRead(env, item); // hashed
        return members.has(item);
      },
      cost: booleanOf(args, reads([needle])),
    };
  }
  // A scan: a step per array element (plus comparing a string needle with the elements: at most
  // the list's size); a string is read, and a needle that is an array or object is turned into a
  // string to search it.
  const h = haystack.cost;
  const r = reads(args);
  const c = conversion(h.types & T_STR ? [needle] : []);
  const scan = h.types & T_ARR ? add(scale(1 / 2, h.size), needle.cost.types & T_STR ? scale(1 / CHARS_PER_STEP, h.size) : ZERO) : ZERO;
  const cost = booleanOf(args, { steps: plus(add(r.steps, c.steps, scan), 1), alloc: add(r.alloc, c.alloc) });
  const two: Pure2 = (item, container, env) => {
    if (container === null || container === undefined) return false;
    if (typeof container === 'string') {
      const s = item !== null && typeof item === 'object' ? stringOf(item, env) : item;
      chargeRead(env, container);
      chargeRead(env, s);
      chargeSteps(env, 1);
      return container.includes(s as string);
    }
    if (Array.isArray(container)) {
      chargeRead(env, item);
      chargeSteps(env, container.length + 1);
      return container.includes(item);
    }
    return notSearchable();
  };
  const node = pure(args, cost, ([item, container], env) => two(item, container, env), path, scope, { two });
  if (!node.constant) node.test = scanTest(needle, haystack);
  return node;
};

function notSearchable(): never {
  throw new EvaluationFailure('"in" needs an array or a string to search');
}

/** A scanning `in` in generated code: a var in a short constant list, or a constant (not an object) in a list or string from the context. */
function scanTest(needle: Node, haystack: Node): Test | undefined {
  const list = haystack.constant?.value;
  if (needle.read !== undefined && Array.isArray(list)) return { kind: 'listed', read: needle.read, list };
  if (needle.constant && haystack.read !== undefined) {
    const item = needle.constant.value;
    if (item === null || typeof item !== 'object') return { kind: 'contains', item, read: haystack.read, fail: notSearchable };
  }
  return undefined;
}

const compileCat: Builder = (raw, path, scope) => {
  const args = compileArgs(raw, path, scope);
  const length = sum(args.map(stringLength));
  const c = conversion(args);
  const cost = costOf(args, {
    steps: c.steps,
    alloc: plus(c.alloc, BYTES_PER_PIECE * Math.max(0, args.length - 1)),
    size: plus(length, 2),
    text: length,
    built: length,
    types: T_STR,
  });
  // no string longer than half the byte budget (2 bytes per character) is built
  const limit = maxStringLength(scope.budget);
  return pure(
    args,
    cost,
    (values, env) => {
      let s = '';
      for (const v of values) {
        if (v === null || v === undefined) continue;
        // appending to "" allocates nothing; each further piece makes a cons string
        if (s !== '') chargeBytes(env, BYTES_PER_PIECE);
        s += stringOf(v, env);
      }
      if (s.length > limit) throw new BudgetExceeded('allocation');
      return s;
    },
    path,
    scope,
  );
};

const compileSubstr: Builder = (raw, path, scope) => {
  const args = compileArgs(raw, path, scope);
  arity(path, args, 2, 3);
  const str = args[0]!;
  const length = stringLength(str);
  const c = conversion([str]);
  const r = reads(args.slice(1)); // from and len are parsed as numbers
  // slicing reads (flattens) the string
  const cost = costOf(args, {
    steps: add(c.steps, r.steps, scale(1 / CHARS_PER_STEP, length)),
    alloc: plus(add(c.alloc, r.alloc, scale(BYTES_PER_CHAR, length)), BYTES_PER_PIECE),
    size: plus(length, 2),
    text: length,
    types: T_STR,
  });
  return pure(
    args,
    cost,
    ([str, from, len], env) => {
      const s = str === null || str === undefined ? '' : stringOf(str, env);
      chargeRead(env, s);
      chargeRead(env, from);
      chargeRead(env, len);
      chargeBytes(env, BYTES_PER_PIECE);
      const start = Number(from);
      const sliced = start < 0 ? s.slice(Math.max(s.length + start, 0)) : s.slice(start);
      if (len === undefined || len === null) return sliced;
      const n = Number(len);
      return n < 0 ? sliced.slice(0, Math.max(sliced.length + n, 0)) : sliced.slice(0, n);
    },
    path,
    scope,
  );
};

const compileMerge: Builder = (raw, path, scope) => {
  const args = compileArgs(raw, path, scope);
  // an array argument of size s has at most s/2 elements; anything else is one element
  const sizes = sum(args.map((a) => a.cost.size));
  const count = plus(scale(1 / 2, sizes), args.length);
  const cost = costOf(args, {
    steps: count,
    alloc: plus(scale(BYTES_PER_ELEMENT, count), BYTES_PER_ARRAY),
    size: plus(sizes, 2 + args.length),
    text: upper(args.map((a) => a.cost.text)),
    types: T_ARR,
  });
  return pure(
    args,
    cost,
    (values, env) => {
      let n = 0;
      for (const v of values) n += Array.isArray(v) ? v.length : 1;
      chargeSteps(env, n);
      chargeBytes(env, arrayBytes(n));
      return values.flatMap((v) => (Array.isArray(v) ? v : [v]));
    },
    path,
    scope,
  );
};

function compileAffix(isStart: boolean): Builder {
  // flagd: null (not false) for a wrong argument count or non-string input
  return (raw, path, scope) => {
    const args = compileArgs(raw, path, scope);
    const node = pure(
      args,
      costOf(args, { ...reads(args), size: BOOLEAN_SIZE, types: T_BOOL | T_NULL }),
      (values, env) => {
        if (values.length !== 2) return null;
        const [s, affix] = values;
        if (typeof s !== 'string' || typeof affix !== 'string') return null;
        chargeRead(env, s);
        chargeRead(env, affix);
        return isStart ? s.startsWith(affix) : s.endsWith(affix);
      },
      path,
      scope,
    );
    // generated code: a var and a string constant
    const [s, affix] = args;
    const text = affix?.constant?.value;
    if (!node.constant && args.length === 2 && s!.read !== undefined && typeof text === 'string') node.test = { kind: 'affix', read: s!.read, affix: text, start: isStart };
    return node;
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
      const l = fixedLeft !== undefined ? undefined : left.fn(d, env);
      const operator = op.fn(d, env);
      const r = fixedRight !== undefined ? undefined : right.fn(d, env);
      chargeRead(env, l);
      chargeRead(env, operator);
      chargeRead(env, r);
      const a = fixedLeft !== undefined ? fixedLeft : parseVersion(l);
      const b = fixedRight !== undefined ? fixedRight : parseVersion(r);
      if (!a || !b || !isSemVerOperator(operator)) return null;
      return compareVersions(a, operator, b);
    },
    cost: costOf(args, { ...reads(args), weight: WEIGHT.sem_ver, size: BOOLEAN_SIZE, types: T_BOOL | T_NULL }),
  };
};

// ---- arrays -------------------------------------------------------------------------------------

type IterKind = 'map' | 'filter' | 'all' | 'none' | 'some';

/** Length and size bounds of an iterated list (a constant one is known exactly). */
function listBounds(source: Node): { length: Lin; size: Lin } {
  if (source.constant) {
    const v = source.constant.value;
    return { length: lin(Array.isArray(v) ? v.length : 0), size: source.cost.size };
  }
  // an array of size s has at most s/2 elements; anything else iterates as []
  return { length: scale(1 / 2, source.cost.size), size: source.cost.size };
}

/**
 * Size of map's result: 2 + n - 1 commas + the body's values. Each element's value is at most
 * f.c + f.d·(its size), and n elements of a list of size S have sizes adding up to S - n - 1, with
 * n ≤ S/2: at most 2 + max(f.d, (1 + f.c + f.d) / 2)·S (exactly n for a constant list).
 */
function mapSize(f: Lin, length: Lin, size: Lin, source: Node): Lin {
  if (source.constant) return plus(add(length, overElements(f, length, size)), 2);
  return plus(scale(Math.max(f.d, (1 + f.c + f.d) / 2), size), 2);
}

/** A body bound at its largest over the elements (each element's size is at most the list's). */
function atLargestElement(f: Lin, size: Lin): Lin {
  return add(lin(f.c), scale(f.d, size));
}

function describeLength(length: Lin, source: Node, scope: Scope): string {
  const n = valueAt(length, scope.dMax, Infinity);
  return source.constant ? `a list of ${formatCount(n)} elements` : `a list of up to ${formatCount(n)} elements`;
}

/** Numeric bound of the longest string among a list's elements, for the body's scope. */
function textBound(source: Node, scope: Scope): number {
  return valueAt(source.cost.text, scope.dMax, Infinity);
}

function compileIterator(kind: IterKind): Builder {
  return (raw, path, scope) => {
    const args = argsOf(raw);
    arity(path, args, 2, 2);
    const sourceNode = compile(args[0]!, `${path}[0]`, { ...scope, tail: false });
    const { length, size } = listBounds(sourceNode);
    const bodyScope: Scope = {
      ...scope,
      tail: false,
      inIterator: true,
      data: 'element',
      dMax: valueAt(size, scope.dMax, Infinity),
      dText: textBound(sourceNode, scope),
    };
    const bodyNode = compile(args[1]!, `${path}[1]`, bodyScope);
    const source = sourceNode.fn;
    const body = bodyNode.fn;
    // every element costs the body's node evaluations, and two steps of the iteration itself
    // (visiting the element, testing or storing the result), charged up front
    const perElement = 2 + bodyNode.cost.weight;
    const builds = kind === 'map' || kind === 'filter';
    const b = bodyNode.cost;
    const cost: Cost = {
      weight: 1 + sourceNode.cost.weight,
      steps: add(sourceNode.cost.steps, scale(perElement, length), overElements(b.steps, length, size)),
      alloc: add(sourceNode.cost.alloc, overElements(b.alloc, length, size), builds ? plus(scale(BYTES_PER_ELEMENT, length), BYTES_PER_ARRAY) : ZERO),
      // map: 2 + an element (and a comma) per element; filter: some of the list's elements
      size: kind === 'map' ? mapSize(b.size, length, size, sourceNode) : kind === 'filter' ? plus(size, 2) : BOOLEAN_SIZE,
      text: kind === 'map' ? atLargestElement(b.text, size) : kind === 'filter' ? sourceNode.cost.text : ZERO,
      built: max(sourceNode.cost.built, atLargestElement(b.built, size)),
      types: builds ? T_ARR : T_BOOL,
    };
    enforce(cost, path, scope, () => ({ reason: `${kind} evaluates its rule once per element of ${describeLength(length, sourceNode, scope)}` }));
    const fn: Evaluator = (d, env) => {
      const value = source(d, env);
      const list = Array.isArray(value) ? value : [];
      chargeSteps(env, list.length * perElement);
      switch (kind) {
        case 'map':
          chargeBytes(env, arrayBytes(list.length));
          return list.map((x) => body(x, env));
        case 'filter':
          chargeBytes(env, arrayBytes(list.length));
          return list.filter((x) => truthy(body(x, env)));
        case 'all':
          return list.length > 0 && list.every((x) => truthy(body(x, env)));
        case 'some':
          return list.some((x) => truthy(body(x, env)));
        case 'none':
          return !list.some((x) => truthy(body(x, env)));
      }
    };
    return { fn, cost };
  };
}

/** x·y for two bounds, kept linear: a factor without variables scales the other; else the first is taken at its largest. */
function product(x: Lin, y: Lin, scope: Scope): Lin {
  if (x.d === 0 && x.a === 0) return scale(x.c, y);
  if (y.d === 0 && y.a === 0) return scale(y.c, x);
  return scale(valueAt(x, scope.dMax, Infinity), y);
}

/** The types reduce's accumulator can have: the initial value's, and what the body gives for them (a fixpoint). */
function accumulatorTypes(body: JsonValue, initial: number): number {
  let types = initial;
  for (;;) {
    const next = types | shapeTypes(body, types);
    if (next === types) return types;
    types = next;
  }
}

/** The types a rule's value can have, from its shape alone; `acc`: the types of a reduce accumulator it reads. */
function shapeTypes(rule: JsonValue, acc: number): number {
  if (rule === null || typeof rule !== 'object') return typeOf(rule);
  if (Array.isArray(rule)) return T_ARR;
  const keys = Object.keys(rule);
  if (keys.length !== 1) return T_OBJ;
  const op = keys[0]!;
  const args = argsOf(rule[op] as JsonValue);
  const union = (rules: JsonValue[]) => rules.reduce<number>((t, r) => t | shapeTypes(r, acc), 0);
  switch (op) {
    case 'var': {
      const fallback = args.length > 1 ? shapeTypes(args[1]!, acc) : 0;
      return (args[0] === 'accumulator' ? acc : T_ANY) | fallback | T_NULL;
    }
    case 'if':
    case '?:':
      if (args.length === 0) return T_NULL;
      if (args.length === 1) return shapeTypes(args[0]!, acc);
      return union(args.filter((_r, i) => i % 2 === 1 || i === args.length - 1)) | (args.length % 2 === 0 ? T_NULL : 0);
    case 'and':
    case 'or':
      return args.length === 0 ? T_NULL : union(args);
    case '+':
    case '-':
    case '*':
    case '/':
    case '%':
    case 'min':
    case 'max':
      return T_NUM;
    case '==':
    case '!=':
    case '===':
    case '!==':
    case '<':
    case '<=':
    case '>':
    case '>=':
    case '!':
    case '!!':
    case 'in':
    case 'all':
    case 'some':
    case 'none':
      return T_BOOL;
    case 'starts_with':
    case 'ends_with':
    case 'sem_ver':
      return T_BOOL | T_NULL;
    case 'cat':
    case 'substr':
      return T_STR;
    case 'merge':
    case 'map':
    case 'filter':
    case 'missing':
    case 'missing_some':
      return T_ARR;
    case 'fractional':
      return T_STR | T_NUM | T_BOOL | T_NULL;
    default:
      return T_ANY;
  }
}

const compileReduce: Builder = (raw, path, scope) => {
  const args = argsOf(raw);
  arity(path, args, 2, 3);
  const inner = { ...scope, tail: false };
  const sourceNode = compile(args[0]!, `${path}[0]`, inner);
  const { length, size } = listBounds(sourceNode);
  // the body reads {current, accumulator}: D is the size of current, A that of the accumulator
  const initialNode = compile(args[2] ?? null, `${path}[2]`, inner);
  const bodyScope: Scope = {
    ...inner,
    inIterator: true,
    data: 'reduce',
    dMax: valueAt(size, scope.dMax, Infinity),
    dText: textBound(sourceNode, scope),
    accTypes: accumulatorTypes(args[1]!, initialNode.cost.types),
  };
  const bodyNode = compile(args[1]!, `${path}[1]`, bodyScope);
  const b = bodyNode.cost;
  // Accumulator bound. Step k: A' ≤ c + d·current + g·A. With g ≤ 1 it grows at most linearly:
  // A ≤ initial + c·length + d·size. With g > 1 (the accumulator used more than once in its next
  // value) it can grow g× per step: A ≤ g^length · (initial + c·length + d·size).
  const g = b.size.a;
  const linear = add(initialNode.cost.size, scale(b.size.c, length), scale(b.size.d, size));
  const steps = sourceNode.constant ? length.c : valueAt(length, scope.dMax, Infinity);
  const growth = g > 1 ? g ** steps : 1;
  const accumulator = scale(growth, linear);
  // a body bound summed over the steps: c per step, d·(sizes of all elements), a·(A at its largest) per step
  const overSteps = (f: Lin) => add(scale(f.c, length), scale(f.d, size), scale(f.a, product(length, accumulator, scope)));
  // and at its largest in any one step
  const inAnyStep = (f: Lin) => add(lin(f.c), scale(f.d, size), scale(f.a, accumulator));
  const perElement = 2 + b.weight;
  const cost: Cost = {
    weight: 1 + sourceNode.cost.weight + initialNode.cost.weight,
    steps: add(sourceNode.cost.steps, initialNode.cost.steps, scale(perElement, length), overSteps(b.steps)),
    alloc: add(sourceNode.cost.alloc, initialNode.cost.alloc, overSteps(b.alloc)),
    size: accumulator,
    // a string in the accumulator is at most its size
    text: max(initialNode.cost.text, inAnyStep(b.text), b.types & T_STR ? accumulator : ZERO),
    built: max(sourceNode.cost.built, initialNode.cost.built, inAnyStep(b.built)),
    types: initialNode.cost.types | b.types,
  };
  enforce(cost, path, scope, () =>
    g > 1
      ? { reason: `its accumulator is used ${g} times in its next value, so it can grow ${g}× on each element of ${describeLength(length, sourceNode, scope)}`, advice: GROWTH_ADVICE }
      : { reason: `reduce evaluates its rule once per element of ${describeLength(length, sourceNode, scope)}` },
  );
  if (g > 1) {
    // the accumulator may share its parts (like [acc, acc]): small in memory, but that large once
    // turned into a string or flattened, so its size is bounded too
    const grown = worstCase(accumulator, scope);
    const limit = maxStringLength(scope.budget);
    if (grown > limit) {
      throw new RuleCompileError(
        path,
        `its accumulator is used ${g} times in its next value, so it can grow ${g}× on each element of ${describeLength(length, sourceNode, scope)}, ` +
          `to a size of ${formatCount(grown)}, above the limit of ${formatCount(limit)}; ${GROWTH_ADVICE}`,
      );
    }
  }
  const source = sourceNode.fn;
  const body = bodyNode.fn;
  const initial = initialNode.fn;
  return {
    fn: (d, env) => {
      const value = source(d, env);
      let acc = initial(d, env);
      if (!Array.isArray(value)) return acc;
      chargeSteps(env, value.length * perElement);
      for (const current of value) acc = body({ current, accumulator: acc }, env);
      return acc;
    },
    cost,
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
  // the key is hashed (read): flag key + targetingKey (read from the context, even inside an
  // iterator: a string, so at most a context string), or the first argument
  const keyLength = max(lin(prefix.length + CONTEXT_STRING), fixed !== undefined ? ZERO : first.cost.text);
  const variants = fixed ? fixed.buckets.map((b) => measure(b.variant)) : undefined;
  const n = args.length;
  const cost = costOf(args, {
    weight: WEIGHT.fractional,
    steps: add(scale(1 / CHARS_PER_STEP, keyLength), fixed !== undefined ? ZERO : lin(n)),
    alloc: add(scale(BYTES_PER_CHAR, keyLength), lin(BYTES_PER_PIECE), fixed !== undefined ? ZERO : lin(3 * arrayBytes(n))),
    size: variants ? lin(variants.reduce((n, v) => Math.max(n, v.size), 4)) : upper([lin(4), ...args.map((a) => a.cost.size)]),
    text: variants ? lin(variants.reduce((n, v) => Math.max(n, v.text), 0)) : upper(args.map((a) => a.cost.text)),
    types: T_STR | T_NUM | T_BOOL | T_NULL,
  });
  const outcome = scope.outcome;
  if (outcome !== undefined && tail && fixed) {
    const plan = splitPlan(prefix, fixed, outcome);
    return { fn: UNUSED, tail: fixedSplit(plan), cost, decision: { kind: 'split', split: plan } };
  }
  const node: Node = {
    fn: (d, env) => {
      let key: string;
      let split: { buckets: Bucket[]; total: number } | null;
      if (fixed !== undefined) {
        const tk = env.ctx.targetingKey as unknown;
        if (!tk) return null; // no targetingKey: default variant (flagd)
        key = prefix + (typeof tk === 'string' ? tk : stringOf(tk, env));
        split = fixed;
      } else {
        chargeSteps(env, n);
        chargeBytes(env, 3 * arrayBytes(n));
        const values = fns.map((f) => f(d, env));
        if (typeof values[0] === 'string') {
          key = values[0];
          split = toBuckets(values.slice(1));
        } else {
          const tk = env.ctx.targetingKey as unknown;
          if (!tk) return null;
          key = prefix + stringOf(tk, env);
          split = toBuckets(values);
        }
      }
      chargeRead(env, key);
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
    cost,
  };
  // in tail position, a split computed at run time: its variant with the SPLIT flag it set
  if (outcome !== undefined && tail) {
    const fn = node.fn;
    node.tail = (d, env) => outcome(fn(d, env), env.split);
  }
  return node;
};

/**
 * A tail `fractional` with constant buckets and the implicit bucketing key, prepared once for its
 * closure (fixedSplit) and for generated code: the hash state after the flag key, the bucket
 * bounds, each bucket's result built.
 */
function splitPlan(prefix: string, split: { buckets: Bucket[]; total: number }, outcome: Outcome): SplitPlan {
  // bucket i is picked for hash buckets below bounds[i] (and at or above the previous bound)
  const bounds: number[] = [];
  let sum = 0;
  for (const b of split.buckets) bounds.push((sum += b.weight));
  const results = split.buckets.map((b) => {
    try {
      return { result: outcome(b.variant, true) };
    } catch {
      // not a variant: the error is raised when it is picked, as it always was
      return { fail: () => outcome(b.variant, true) };
    }
  });
  return { prefix, state: hashPrefix(prefix), total: split.total, bounds, results, none: outcome(null, false) };
}

/**
 * The fast path of a tail `fractional` with constant buckets and the implicit bucketing key: each
 * evaluation hashes only the targetingKey (no joined string) from the state after the flag key.
 * Reads, charges and results are those of the general closure.
 */
function fixedSplit(plan: SplitPlan): Evaluator {
  const { prefix, state, total, bounds, none } = plan;
  const prefixLength = prefix.length;
  const n = bounds.length;
  const BAD = {};
  const results = plan.results.map((r) => ('result' in r ? r.result : BAD));
  const resultOf = (i: number): unknown => {
    const r = results[i];
    return r !== BAD ? r : (plan.results[i] as { fail: () => unknown }).fail();
  };
  return (_d, env) => {
    const tk = env.ctx.targetingKey as unknown;
    if (!tk) return none; // no targetingKey: default variant (flagd)
    let hash: number;
    if (typeof tk === 'string') {
      // chargeRead of flagKey + targetingKey, without building it
      const length = prefixLength + tk.length;
      if (length > FREE_CHARS) {
        if ((env.steps -= (length / CHARS_PER_STEP) | 0) < 0) throw new BudgetExceeded('steps');
        if ((env.alloc -= BYTES_PER_CHAR * length) < 0) throw new BudgetExceeded('allocation');
      }
      hash = murmur3After(state, tk);
    } else {
      const key = prefix + stringOf(tk, env);
      chargeRead(env, key);
      hash = murmur3(key);
    }
    if (total === 0) return none;
    const bucket = bucketOf(hash, total);
    for (let i = 0; i < n; i++) if (bounds[i]! > bucket) return resultOf(i);
    return none;
  };
}

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
  '==': comparator(false, (a, b) => a == b, true),
  '!=': comparator(false, (a, b) => a != b, false),
  '===': comparator(true, (a, b) => a === b, true),
  '!==': comparator(true, (a, b) => a !== b, false),
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
