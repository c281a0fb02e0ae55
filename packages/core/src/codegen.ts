import { BudgetExceeded, BYTES_PER_CHAR, CHARS_PER_STEP, FREE_CHARS } from './cost';
import { bucketOf, murmur3, murmur3After, type HashState } from './murmur3';
import { DEFAULT_BUDGET, truthy, type EvaluationBudget } from './compiler';
import type { EvaluationContext } from './types';

// Generated evaluation: a flag whose targeting uses only the operators below gets one JavaScript
// function (built with `new Function`) that decides it, beside the closures the compiler builds.
//
// Why: the closures are shared code. Every flag built from the same builder runs the same closure
// bodies, so V8's type feedback (which keys are read, which functions are called) is mixed over
// all of them, calls between the closures stay indirect, and each evaluation sets up an Env for
// the budget. A generated function is straight-line code for one rule: the budget is two local
// counters, the nodes are inlined, and the calls it makes (comparisons, Set#has, the hash) have
// one target each.
//
// Safety: no arbitrary value from a flag set is ever written into the source. The source is
// assembled from the fixed templates in this file and names the rule's values only as k0, k1, … —
// slots filled from an array when the function is created. The one exception is the name of a
// context attribute that a `var` reads, and only when it passes NAMED (letters, digits, `_`, `$`,
// not starting with a digit, at most 64 characters), does not start with `__` and is not one of
// Object.prototype's names (NOT_NAMED): the read is then written `ctx.role` instead of `ctx[k0]`.
// Such a name cannot end the property access it is written in (no quote, dot, bracket, space or
// comment can pass the regex), and every other attribute name stays a slot. Why: V8 caches a named load per context
// shape, while a keyed load whose key is data is its generic path on contexts of many shapes
// (~10 ns a read on the benchmark). Same semantics either way: `ctx.role` and `ctx["role"]` are
// the same [[Get]], own or inherited, getters and proxies included (test/codegen.spec.ts checks
// the reads a proxy sees). Object.prototype's names would read the same too; they stay slots so
// that the names prototype pollution aims at never appear in generated code.
//
// Rules of the same structure reading the same attributes have the same source, so the compiled
// factory is cached by source and shared: type feedback is per structure and names. (A source per
// flag, for feedback per flag, measured no faster.) A source costs ~2 KB and ~0.1 ms to compile,
// so a compilation writes names into at most MAX_NAMED_SOURCES distinct sources (NamedSources):
// the flags past that read by slots, one source per structure (10,000 flags each reading its own
// attribute: +1 MB retained over slots only, where a named source each would add 21 MB and 1.4 s).
//
// Same behaviour as the closures, exactly: the same reads of the context in the same order, the
// same budget charges in the same order (so an evaluation runs out of budget where the closures
// would, with the same resource), the same errors (the comparison functions and error thunks are
// the compiler's own), the same prebuilt results. For the one input it leaves alone (an object as
// targetingKey in a split) it returns BAIL and the closures evaluate the flag from the start
// (everything before is side-effect free). test/codegen.spec.ts checks both paths agree on random
// rules and contexts.
//
// Where `new Function` is not allowed (a Content-Security-Policy without 'unsafe-eval', node
// --disallow-code-generation-from-strings) the closures are used; CompileOptions.codegen: false
// asks for them. ajv, which validates flag sets, needs `new Function` as well.

/** A single-key `{"var": …}` at the root of the context, with its constant fallback. */
export interface Read {
  readonly key: string;
  readonly fallback: unknown;
}

/** A condition the generated code evaluates, for its truth (what `if`, `and`, `or`, `!` test). */
export type Test =
  | { readonly kind: 'const'; readonly truthy: boolean }
  /** `{"var": …}` tested for truth. */
  | { readonly kind: 'truthy'; readonly read: Read }
  /** ==, ===, != or !== with a short string constant: strings compared with ===, anything else by `cmp`. */
  | { readonly kind: 'equals'; readonly read: Read; readonly value: string; readonly equal: boolean; readonly cmp: Compare; readonly varLeft: boolean }
  /** Another comparison of a var with a short constant, by the comparator's own function. */
  | { readonly kind: 'compare'; readonly read: Read; readonly value: unknown; readonly cmp: Compare; readonly varLeft: boolean }
  /** `in` a constant list of more than a few items (a Set). */
  | { readonly kind: 'member'; readonly read: Read; readonly members: ReadonlySet<unknown> }
  /** `in` a short constant list (scanned: a step per element, as the closure charges). */
  | { readonly kind: 'listed'; readonly read: Read; readonly list: readonly unknown[] }
  /** A constant (not an object) `in` a list or string read from the context; `fail` throws the closure's error. */
  | { readonly kind: 'contains'; readonly item: unknown; readonly read: Read; readonly fail: () => never }
  /** starts_with / ends_with of a var and a string constant. */
  | { readonly kind: 'affix'; readonly read: Read; readonly affix: string; readonly start: boolean }
  /** `!` (negate) or `!!`. */
  | { readonly kind: 'not'; readonly test: Test; readonly negate: boolean }
  /** `and` / `or`, evaluated left to right and stopped as the closures stop. */
  | { readonly kind: 'all' | 'any'; readonly tests: readonly Test[] };

/** What a node in tail position gives: the flag's result. */
export type Decision =
  /** A result built at compile time. */
  | { readonly kind: 'result'; readonly result: unknown }
  /** A constant that is not a variant: `get` throws the error the closure throws. */
  | { readonly kind: 'thunk'; readonly get: () => unknown }
  /** `{"var": …}` naming the variant, turned into the result by the flag's outcome. */
  | { readonly kind: 'pick'; readonly read: Read; readonly outcome: (picked: unknown, split: boolean) => unknown }
  | { readonly kind: 'if'; readonly branches: readonly { readonly test: Test; readonly then: Decision }[]; readonly otherwise: Decision }
  /** A `fractional` with constant buckets and the implicit bucketing key (see fixedSplit in compiler.ts). */
  | { readonly kind: 'split'; readonly split: SplitPlan };

type Compare = (a: unknown, b: unknown) => boolean;

/** A fixed split, as compiler.ts prepares it for its closure and for generated code. */
export interface SplitPlan {
  readonly prefix: string;
  /** The hash state after the flag key. */
  readonly state: HashState;
  readonly total: number;
  /** Bucket i is picked for hash buckets below bounds[i]. */
  readonly bounds: readonly number[];
  /** Bucket i's result, or a function that throws the error of a bucket that names no variant. */
  readonly results: readonly ({ readonly result: unknown } | { readonly fail: () => unknown })[];
  /** No targetingKey, no weight, or past the last bound: the flag's default. */
  readonly none: unknown;
}

/** A generated decision: the flag's result, or BAIL for an input it leaves to the closures. */
export type Generated = (ctx: EvaluationContext) => unknown;

/** Returned by generated code for an input the closures evaluate instead. */
export const BAIL: unknown = Object.freeze({ bail: 'evaluate with the closures' });

/** What every generated function may use, by these names. */
const HELPERS = Object.freeze({ BAIL, BudgetExceeded, FREE_CHARS, CHARS_PER_STEP, BYTES_PER_CHAR, truthy, murmur3, murmur3After, bucketOf });

/** Makes one flag's function from its values (the helpers are bound once per source, not per flag). */
type Factory = (values: readonly unknown[]) => Generated;

/** Factories by source (sources hold no values: rules of one structure share one). */
const factories = new Map<string, Factory>();
/** Enough for the distinct rule structures of a real flag set; when full, the cache starts over. */
const MAX_FACTORIES = 500;
/** A longer source (a rule with hundreds of conditions) is compiled for its flag alone, not kept. */
const MAX_CACHED_SOURCE = 8_000;
/** Set when `new Function` was refused once (CSP): not tried again, to raise one violation at most. */
let refused = false;

/**
 * An attribute name written into the source as `ctx.name` (see the top of this file): an
 * identifier of ASCII letters, digits, `_` and `$`, at most 64 characters. Anything else is a slot.
 */
const NAMED = /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/;
/** Object.prototype's names (ES2024 and Annex B), and `prototype`: always slots, whatever the runtime adds. */
const NOT_NAMED: ReadonlySet<string> = new Set([
  '__proto__',
  '__defineGetter__',
  '__defineSetter__',
  '__lookupGetter__',
  '__lookupSetter__',
  'constructor',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  'toString',
  'valueOf',
  'prototype',
]);

/** Whether a `var` of this attribute is written `ctx.key` in generated source (`__…` never: Annex B's and engines' own). */
export function isNamed(key: string): boolean {
  return NAMED.test(key) && !NOT_NAMED.has(key) && !key.startsWith('__');
}

/** The distinct sources with attribute names one compilation has used (at most MAX_NAMED_SOURCES). */
export interface NamedSources {
  readonly sources: Set<string>;
}

/**
 * Distinct sources with names per compilation: a flag set whose rules read hundreds of different
 * attributes would otherwise compile (and keep) a source per flag, as the slots never do.
 */
export const MAX_NAMED_SOURCES = 256;

/** A fresh allowance for one compilation of a flag set. */
export function namedSources(): NamedSources {
  return { sources: new Set() };
}

/**
 * The generated function of a flag's decision, or undefined when code cannot be generated here
 * (then the closures evaluate the flag). Attribute names are written into the source (see the
 * top of this file) unless `named` has used up its MAX_NAMED_SOURCES; without `named`, always.
 */
export function generate(decision: Decision, budget: EvaluationBudget, named?: NamedSources): Generated | undefined {
  if (refused) return undefined;
  let emitted = emit(decision, budget, true);
  if (emitted.named && named !== undefined && !named.sources.has(emitted.source)) {
    if (named.sources.size < MAX_NAMED_SOURCES) named.sources.add(emitted.source);
    else emitted = emit(decision, budget, false);
  }
  const { source, values } = emitted;
  let factory = factories.get(source);
  if (factory === undefined) {
    try {
      // eslint-disable-next-line no-new-func -- no values in the source, only checked names (see the top of this file)
      factory = (new Function('H', source) as (helpers: typeof HELPERS) => Factory)(HELPERS);
    } catch (e) {
      // EvalError: code generation is not allowed here. Anything else would be a bug in the
      // templates above: either way the closures evaluate the flag (compiling never throws)
      if (e instanceof EvalError) refused = true;
      return undefined;
    }
    if (source.length <= MAX_CACHED_SOURCE) {
      if (factories.size >= MAX_FACTORIES) factories.clear();
      factories.set(source, factory);
    }
  }
  return factory(values);
}

/** The source generate() compiles for a decision (for tests, and to read what runs); `named` false: every name a slot. */
export function sourceOf(decision: Decision, budget: EvaluationBudget = DEFAULT_BUDGET, named = true): string {
  return emit(decision, budget, named).source;
}

function emit(decision: Decision, budget: EvaluationBudget, named: boolean): { source: string; values: unknown[]; named: boolean } {
  const out = new Emitter(named);
  // the budget left, as the closures keep it in Env (steps, alloc)
  out.line(`let steps = ${out.value(budget.steps)}, bytes = ${out.value(budget.bytes)}, v, t, h;`);
  out.decision(decision);
  return { source: out.source(), values: out.values, named: out.wroteNames };
}

/** Builds the source of one decision: statements from fixed templates, values as k0, k1, … */
class Emitter {
  readonly values: unknown[] = [];
  /** Some attribute name was written into the source. */
  wroteNames = false;
  private readonly body: string[] = [];
  private depth = 1;
  private labels = 0;

  /** @param named write attribute names that pass isNamed as `ctx.name` (otherwise every name is a slot) */
  constructor(private readonly named: boolean) {}

  /** A value the code uses: its name in the source. */
  value(v: unknown): string {
    this.values.push(v);
    return `k${this.values.length - 1}`;
  }

  line(text: string): void {
    this.body.push(`${'  '.repeat(this.depth)}${text}`);
  }

  private block(head: string, inside: () => void): void {
    this.line(`${head} {`);
    this.depth++;
    inside();
    this.depth--;
    this.line('}');
  }

  source(): string {
    const names = this.values.map((_v, i) => `k${i} = K[${i}]`);
    return [
      '"use strict";',
      'const { BAIL, BudgetExceeded, FREE_CHARS, CHARS_PER_STEP, BYTES_PER_CHAR, truthy, murmur3, murmur3After, bucketOf } = H;',
      'return (K) => {',
      `  const ${names.join(', ')};`,
      '  return function decide(ctx) {',
      ...this.body.map((line) => `  ${line}`),
      '  };',
      '};',
    ].join('\n');
  }

  // ---- the budget, charged as the closures charge it (compiler.ts chargeRead / chargeSteps) ----

  /** chargeRead of the value in `name`: a string longer than FREE_CHARS costs by its length. */
  private chargeRead(name: string): void {
    this.block(`if (typeof ${name} === "string" && ${name}.length > FREE_CHARS)`, () => this.chargeChars(`${name}.length`));
  }

  /** The charge for reading `length` characters (steps first, as chargeRead checks them first). */
  private chargeChars(length: string): void {
    this.line(`steps -= (${length} / CHARS_PER_STEP) | 0;`);
    this.line(`bytes -= BYTES_PER_CHAR * ${length};`);
    this.line('if (steps < 0) throw new BudgetExceeded("steps");');
    this.line('if (bytes < 0) throw new BudgetExceeded("allocation");');
  }

  private chargeSteps(n: string): void {
    this.line(`if ((steps -= ${n}) < 0) throw new BudgetExceeded("steps");`);
  }

  // ---- reads, tests, decisions --------------------------------------------------------------------

  /** v = the context's value at the key, or the fallback (absent or a function: as compileVarPath reads). */
  private read(read: Read): void {
    if (this.named && isNamed(read.key)) {
      // the one place a string of the flag set enters the source: an identifier, checked above
      this.wroteNames = true;
      this.line(`v = ctx.${read.key};`);
    } else {
      this.line(`v = ctx[${this.value(read.key)}];`);
    }
    this.line(`if (v === undefined || typeof v === "function") v = ${this.value(read.fallback)};`);
  }

  /** t = the truth of the test. */
  private test(test: Test): void {
    switch (test.kind) {
      case 'const':
        this.line(test.truthy ? 't = true;' : 't = false;');
        return;
      case 'truthy':
        this.read(test.read);
        this.line('t = truthy(v);');
        return;
      case 'equals': {
        this.read(test.read);
        const c = this.value(test.value);
        const cmp = this.value(test.cmp);
        this.block('if (typeof v === "string")', () => {
          this.block('if (v.length > FREE_CHARS)', () => this.chargeChars('v.length'));
          this.line(`t = v ${test.equal ? '===' : '!=='} ${c};`);
        });
        // chargeRead of anything but a string charges nothing
        this.line(`else t = ${test.varLeft ? `${cmp}(v, ${c})` : `${cmp}(${c}, v)`};`);
        return;
      }
      case 'compare': {
        this.read(test.read);
        const c = this.value(test.value);
        const cmp = this.value(test.cmp);
        this.chargeRead('v');
        this.line(`t = ${test.varLeft ? `${cmp}(v, ${c})` : `${cmp}(${c}, v)`};`);
        return;
      }
      case 'member': {
        this.read(test.read);
        const members = this.value(test.members);
        this.chargeRead('v');
        this.line(`t = ${members}.has(v);`);
        return;
      }
      case 'listed': {
        this.read(test.read);
        const list = this.value(test.list);
        this.chargeRead('v');
        this.chargeSteps(this.value(test.list.length + 1));
        this.line(`t = ${list}.includes(v);`);
        return;
      }
      case 'contains': {
        this.read(test.read);
        const item = this.value(test.item);
        const fail = this.value(test.fail);
        this.line('if (v === null || v === undefined) t = false;');
        this.block('else if (typeof v === "string")', () => {
          this.chargeRead('v');
          this.chargeRead(item);
          this.chargeSteps('1');
          this.line(`t = v.includes(${item});`);
        });
        this.block('else if (Array.isArray(v))', () => {
          this.chargeRead(item);
          this.chargeSteps('v.length + 1');
          this.line(`t = v.includes(${item});`);
        });
        this.line(`else ${fail}();`);
        return;
      }
      case 'affix': {
        this.read(test.read);
        const affix = this.value(test.affix);
        this.block('if (typeof v === "string")', () => {
          this.chargeRead('v');
          this.chargeRead(affix);
          this.line(`t = v.${test.start ? 'startsWith' : 'endsWith'}(${affix});`);
        });
        this.line('else t = false;'); // null: not true
        return;
      }
      case 'not':
        this.test(test.test);
        if (test.negate) this.line('t = !t;');
        return;
      case 'all':
      case 'any': {
        // and: stops at the first false; or: at the first true (a labelled block, left by break)
        const label = `b${this.labels++}`;
        const stop = test.kind === 'all' ? 'if (!t)' : 'if (t)';
        this.block(`${label}:`, () => {
          test.tests.forEach((inner, i) => {
            this.test(inner);
            if (i < test.tests.length - 1) this.line(`${stop} break ${label};`);
          });
        });
        return;
      }
    }
  }

  /** Returns the flag's result. */
  decision(decision: Decision): void {
    switch (decision.kind) {
      case 'result':
        this.line(`return ${this.value(decision.result)};`);
        return;
      case 'thunk':
        this.line(`return ${this.value(decision.get)}();`);
        return;
      case 'pick':
        this.read(decision.read);
        this.line(`return ${this.value(decision.outcome)}(v, false);`);
        return;
      case 'if':
        for (const branch of decision.branches) {
          this.test(branch.test);
          this.block('if (t)', () => this.decision(branch.then));
        }
        this.decision(decision.otherwise);
        return;
      case 'split':
        this.split(decision.split);
        return;
    }
  }

  /** As fixedSplit's closure: hash the targetingKey after the flag key's state, then the buckets. */
  private split(plan: SplitPlan): void {
    const none = this.value(plan.none);
    const total = this.value(plan.total);
    this.line('v = ctx.targetingKey;');
    this.line(`if (!v) return ${none};`); // no targetingKey: default variant (flagd)
    this.block('if (typeof v === "string")', () => {
      this.line(`h = ${this.value(plan.prefix.length)} + v.length;`);
      this.block('if (h > FREE_CHARS)', () => this.chargeChars('h'));
      this.line(`h = murmur3After(${this.value(plan.state)}, v);`);
    });
    // an object's text costs what the closures charge for it: left to them
    this.line('else if (typeof v === "object") return BAIL;');
    this.block('else', () => {
      this.line(`v = ${this.value(plan.prefix)} + String(v);`);
      this.chargeRead('v');
      this.line('h = murmur3(v);');
    });
    this.line(`if (${total} === 0) return ${none};`);
    this.line(`h = bucketOf(h, ${total});`);
    plan.bounds.forEach((bound, i) => {
      const r = plan.results[i]!;
      this.line(`if (h < ${this.value(bound)}) return ${'result' in r ? this.value(r.result) : `${this.value(r.fail)}()`};`);
    });
    this.line(`return ${none};`);
  }
}
