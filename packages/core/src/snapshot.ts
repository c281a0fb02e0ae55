import { compileDecision, compileRule, compileTargeting, EvaluationFailure, RuleCompileError, type Env, type EvaluationBudget, type Evaluator, type Outcome } from './compiler';
import { BAIL, generate, namedSources, type Generated, type NamedSources } from './codegen';
import { BudgetExceeded, type BudgetResource } from './cost';
import type {
  EvaluateOptions,
  EvaluationContext,
  EvaluationResult,
  Explanation,
  ExplainStep,
  FlagDefinition,
  FlagMetadata,
  FlagValue,
  FlagValueType,
  JsonValue,
  Reason,
  ValidationIssue,
} from './types';
import { DEFAULT_LIMITS, escapeControls, resolveRefs, validateFlagSet, type FlagSetLimits, type ValidFlag } from './validate';

export interface CompileOptions {
  /** Size, depth and evaluation-cost limits for untrusted input (see docs/flag-format.md). */
  limits?: Partial<FlagSetLimits>;
  /**
   * Called when an evaluation of a flag ran out of its budget (`limits.maxEvaluationSteps` or
   * `maxEvaluationBytes`) and was stopped: that evaluation answered `GENERAL` with the caller's
   * default. Called synchronously from `evaluate`/`evaluateAll`/`explain`, **at most once per
   * flag per snapshot** (a snapshot is one compiled version of the flag set), so it can log
   * without flooding. What it throws is ignored.
   */
  onBudgetExceeded?: (event: BudgetExceededEvent) => void;
  /**
   * Evaluate with one generated JavaScript function per flag where the rule allows it (default
   * true): the same results, 1.2–1.6× faster on the benchmark's rules, and the compiled set keeps
   * half the memory (docs/flag-format.md, "How a flag is evaluated"). It needs `new Function`, as
   * ajv does for validation; where that is refused (a Content-Security-Policy without
   * 'unsafe-eval') the compiled closures are used. false: the closures only.
   */
  codegen?: boolean;
}

/** A flag whose evaluation was stopped for using up its budget (see `CompileOptions.onBudgetExceeded`). */
export interface BudgetExceededEvent {
  flagKey: string;
  /** What ran out: `steps` (time) or `allocation` (memory). */
  resource: 'steps' | 'allocation';
  /** The limit that was reached (steps, or bytes). */
  limit: number;
  /** The `errorMessage` of the evaluation result. */
  message: string;
}

export interface CompileResult {
  /** Always usable: flags with errors are left out (or evaluate to PARSE_ERROR), never thrown. */
  snapshot: FlagSnapshot;
  /** Every problem found, each with a dotted path. Empty when the whole set is valid. */
  errors: ValidationIssue[];
}

interface CompiledFlag {
  readonly key: string;
  readonly definition: Readonly<FlagDefinition>;
  readonly enabled: boolean;
  readonly defaultVariant: string | undefined;
  /** A rule runs: the flag is enabled and its targeting compiled. */
  readonly runs: boolean;
  /**
   * Fast path: (context, env) → the result (see compileDecision); undefined without a rule. Not
   * kept where `generated` stands in for it (they are most of a compiled flag's memory): compiled
   * again, once, for the rare input generated code hands back (see closuresOf).
   */
  decide: Evaluator | undefined;
  /** The same as one generated function (codegen.ts), when the rule allows it and codegen is on. */
  readonly generated: Generated | undefined;
  /** The outcome the rule was compiled with, kept with `generated`: compiled again, it gives the same result objects. */
  readonly outcome: Outcome | undefined;
  /** Validation resolved the targeting (it has targeting and every `$ref` is known). */
  readonly resolved: boolean;
  readonly parseError: string | undefined;
  readonly metadata: FlagMetadata;
  /** What evaluate answers without running a rule: STATIC, DEFAULT or DISABLED when the caller gives no default value. */
  readonly fixed: EvaluationResult | undefined;
  /** DEFAULT without a variant (no defaultVariant): `value` is then the caller's default. */
  readonly noVariant: EvaluationResult;
}

/** Thrown by a flag's Outcome: the targeting picked something that is not one of its variants. */
class VariantFailure extends Error {}

const NO_CONTEXT: EvaluationContext = Object.freeze({});

/**
 * An immutable, compiled flag set. Evaluation is synchronous, allocation-free on success and never
 * throws; swap a whole snapshot to change flags.
 */
export class FlagSnapshot {
  /** Flags already reported to onBudgetExceeded. */
  private readonly overBudget = new Set<string>();
  /** Flags in definition order. */
  private readonly list: readonly CompiledFlag[];
  /** The same flags by key, for evaluate (a dictionary lookup is quicker than Map#get). */
  private readonly index: Record<string, CompiledFlag | undefined>;
  /** Per-evaluation state, reused (a nested evaluation, from a getter in a context, gets its own). */
  private readonly env: Env = { ctx: NO_CONTEXT, flagKey: '', timestamp: undefined, split: false, trace: undefined, steps: 0, alloc: 0 };
  private busy = false;

  /** @internal */
  private constructor(
    private readonly flags: ReadonlyMap<string, CompiledFlag>,
    /** Flag-set metadata (`metadata` at the top of the flag set). */
    readonly metadata: FlagMetadata,
    private readonly evaluatorDefinitions: Readonly<Record<string, JsonValue>>,
    private readonly budget: EvaluationBudget,
    private readonly onBudgetExceeded: ((event: BudgetExceededEvent) => void) | undefined,
  ) {
    this.list = [...flags.values()];
    this.index = Object.create(null) as Record<string, CompiledFlag | undefined>;
    for (const flag of this.list) this.index[flag.key] = flag;
  }

  /** @internal */
  static create(
    flags: ReadonlyMap<string, CompiledFlag>,
    metadata: FlagMetadata,
    evaluators: Readonly<Record<string, JsonValue>>,
    budget: EvaluationBudget,
    onBudgetExceeded?: (event: BudgetExceededEvent) => void,
  ): FlagSnapshot {
    return new FlagSnapshot(flags, metadata, evaluators, budget, onBudgetExceeded);
  }

  /** A snapshot with no flags: every evaluation is FLAG_NOT_FOUND. */
  static empty(): FlagSnapshot {
    return new FlagSnapshot(new Map(), Object.freeze({}), Object.freeze({}), { steps: DEFAULT_LIMITS.maxEvaluationSteps, bytes: DEFAULT_LIMITS.maxEvaluationBytes }, undefined);
  }

  /** Flag keys, in definition order. */
  keys(): string[] {
    return [...this.flags.keys()];
  }

  has(flagKey: string): boolean {
    return this.flags.has(flagKey);
  }

  /** The validated definition of a flag as written (with `$ref`s), frozen; undefined if absent. */
  definition(flagKey: string): Readonly<FlagDefinition> | undefined {
    return this.flags.get(flagKey)?.definition;
  }

  /** The shared `$evaluators` that passed validation, frozen. */
  evaluators(): Readonly<Record<string, JsonValue>> {
    return this.evaluatorDefinitions;
  }

  /** @internal Whether a flag behaves the same in both snapshots (what {@link changedFlagKeys} compares). */
  sameFlag(flagKey: string, other: FlagSnapshot): boolean {
    const a = this.flags.get(flagKey);
    const b = other.flags.get(flagKey);
    if (a === undefined || b === undefined) return a === b;
    return sameBehaviour(a, this.evaluatorDefinitions, b, other.evaluatorDefinitions);
  }

  /**
   * Evaluates a flag. On success the result is a frozen object shared by every evaluation with
   * the same outcome (read it, do not change it).
   */
  evaluate<T extends FlagValue = FlagValue>(flagKey: string, context?: EvaluationContext, options?: EvaluateOptions<T>): EvaluationResult<T> {
    // the common case (generated code, no options: answer() would give the rule's result as it is)
    // here, everything else out of line in evaluateFlag: evaluate stays small enough for V8 to
    // inline it into its caller (see generatedResult)
    const flag = typeof flagKey === 'string' ? this.index[flagKey] : undefined;
    if (options === undefined && flag !== undefined && flag.generated !== undefined) return this.generatedResult(flag, flag.generated, context) as EvaluationResult<T>;
    return this.evaluateFlag(flagKey, flag, context, options) as EvaluationResult<T>;
  }

  /** Evaluates several flags (all by default) for one context, in key order. */
  evaluateAll(context?: EvaluationContext, options?: { keys?: readonly string[] }): EvaluationResult[] {
    const keys = options?.keys;
    if (keys === undefined) {
      const list = this.list;
      const out: EvaluationResult[] = new Array(list.length);
      for (let i = 0; i < list.length; i++) {
        const flag = list[i]!;
        out[i] = flag.generated !== undefined ? this.generatedResult(flag, flag.generated, context) : this.evaluateClosures(flag, context, undefined);
      }
      return out;
    }
    const out: EvaluationResult[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) out[i] = this.evaluate(keys[i]!, context);
    return out;
  }

  /**
   * Evaluates a flag and reports which rule branch decided, for the CLI's `explain`. The rule is
   * compiled again with tracing for this call (evaluation keeps no trace data).
   */
  explain(flagKey: string, context?: EvaluationContext, options?: EvaluateOptions): Explanation {
    const steps: ExplainStep[] = [];
    const flag = this.flags.get(flagKey);
    let result: EvaluationResult;
    if (flag === undefined || !flag.runs) {
      result = this.evaluate(flagKey, context, options);
    } else {
      const rule = resolveRefs(flag.definition.targeting as JsonValue, this.evaluatorDefinitions);
      result = this.trace(flag, compileTargeting(rule, flag.key, this.budget), context, options, steps);
    }
    return { result, steps, summary: summarize(result, steps) };
  }

  /**
   * A flag's generated function, as evaluate answers without options. Kept this small (and its
   * rare paths in other methods) so that V8 inlines it into evaluate and evaluateAll: those then
   * stay small enough to be inlined into their callers. The generated function has its own budget
   * counters and no shared state (no Env to set up, safe to re-enter).
   */
  private generatedResult(flag: CompiledFlag, generated: Generated, context: EvaluationContext | undefined): EvaluationResult {
    let result: EvaluationResult;
    try {
      result = generated(context !== null && typeof context === 'object' ? context : NO_CONTEXT) as EvaluationResult;
    } catch (e) {
      return this.failed(flag, undefined, e);
    }
    return result === BAIL ? this.evaluateClosures(flag, context, undefined) : result;
  }

  /** evaluate of everything but a flag with generated code called without options: an unknown flag, options, no rule, the closures. */
  private evaluateFlag(flagKey: string, flag: CompiledFlag | undefined, context: EvaluationContext | undefined, options: EvaluateOptions | undefined): EvaluationResult {
    if (flag === undefined) return failure(flagKey, options?.defaultValue, 'FLAG_NOT_FOUND', `flag "${flagKey}" not found`, this.metadata);
    const generated = flag.generated;
    if (generated === undefined) return this.evaluateClosures(flag, context, options);
    let result: EvaluationResult;
    try {
      result = generated(context !== null && typeof context === 'object' ? context : NO_CONTEXT) as EvaluationResult;
    } catch (e) {
      return this.failed(flag, options?.defaultValue, e);
    }
    if (result === BAIL) return this.evaluateClosures(flag, context, options);
    return this.answer(flag, result, options);
  }

  /** Evaluation by the compiled closures, with the snapshot's Env. */
  private evaluateClosures(flag: CompiledFlag, context: EvaluationContext | undefined, options: EvaluateOptions | undefined): EvaluationResult {
    if (!flag.runs) return this.withoutRule(flag, options);
    const ctx = context !== null && typeof context === 'object' ? context : NO_CONTEXT;
    const shared = !this.busy;
    const env: Env = shared ? this.env : { ctx, flagKey: '', timestamp: undefined, split: false, trace: undefined, steps: 0, alloc: 0 };
    this.busy = true;
    env.ctx = ctx;
    env.flagKey = flag.key;
    env.timestamp = undefined;
    env.split = false;
    env.steps = this.budget.steps;
    env.alloc = this.budget.bytes;
    let result: EvaluationResult;
    try {
      result = (flag.decide ?? this.closuresOf(flag))(ctx, env) as EvaluationResult;
    } catch (e) {
      return this.failed(flag, options?.defaultValue, e);
    } finally {
      if (shared) {
        this.busy = false;
        env.ctx = NO_CONTEXT; // keep no context alive
      }
    }
    return this.answer(flag, result, options);
  }

  /** The closures of a flag whose generated code handed an input back: compiled again from its definition, as explain does. */
  private closuresOf(flag: CompiledFlag): Evaluator {
    const rule = resolveRefs(flag.definition.targeting as JsonValue, this.evaluatorDefinitions);
    return (flag.decide = compileDecision(rule, flag.key, flag.outcome!, this.budget).decide);
  }

  /** What the rule decided, as the caller asked for it: their default for no variant, a type check. */
  private answer(flag: CompiledFlag, result: EvaluationResult, options: EvaluateOptions | undefined): EvaluationResult {
    if (result === flag.noVariant) {
      const fallback = options?.defaultValue;
      return fallback === undefined ? result : { flagKey: flag.key, value: fallback, reason: 'DEFAULT', flagMetadata: flag.metadata };
    }
    if (options !== undefined && options.type !== undefined && !hasType(result.value!, options.type)) {
      return failure(flag.key, options.defaultValue, 'TYPE_MISMATCH', `flag "${flag.key}" is ${typeof result.value}, not ${options.type}`, flag.metadata);
    }
    return result;
  }

  /** DISABLED, PARSE_ERROR or STATIC: no rule runs. */
  private withoutRule(flag: CompiledFlag, options: EvaluateOptions | undefined): EvaluationResult {
    const fallback = options?.defaultValue;
    if (!flag.enabled) return fallback === undefined ? flag.fixed! : { flagKey: flag.key, value: fallback, reason: 'DISABLED', flagMetadata: flag.metadata };
    if (flag.parseError !== undefined) return failure(flag.key, fallback, 'PARSE_ERROR', `flag "${flag.key}": ${flag.parseError}`, flag.metadata);
    const result = flag.fixed!;
    if (result === flag.noVariant) return fallback === undefined ? result : { flagKey: flag.key, value: fallback, reason: 'DEFAULT', flagMetadata: flag.metadata };
    const type = options?.type;
    if (type !== undefined && !hasType(result.value!, type)) {
      return failure(flag.key, fallback, 'TYPE_MISMATCH', `flag "${flag.key}" is ${typeof result.value}, not ${type}`, flag.metadata);
    }
    return result;
  }

  /** A rule that threw: the budget ran out, an evaluation error, or a value that is no variant. */
  private failed(flag: CompiledFlag, fallback: unknown, e: unknown): EvaluationResult {
    if (e instanceof BudgetExceeded) return this.stopped(flag, fallback, e.resource);
    if (e instanceof VariantFailure) return failure(flag.key, fallback, 'GENERAL', e.message, flag.metadata);
    const why = e instanceof EvaluationFailure ? e.message : 'unexpected error';
    return failure(flag.key, fallback, 'GENERAL', `flag "${flag.key}": targeting rule failed: ${why}`, flag.metadata);
  }

  /** The general evaluation with a trace: the rule's value turned into a result afterwards, as explain shows it. */
  private trace(flag: CompiledFlag, targeting: Evaluator, context: EvaluationContext | undefined, options: EvaluateOptions | undefined, trace: ExplainStep[]): EvaluationResult {
    const fallback = options?.defaultValue;
    const flagKey = flag.key;
    const ctx = context !== null && typeof context === 'object' ? context : NO_CONTEXT;
    const env: Env = { ctx, flagKey, timestamp: undefined, split: false, trace, steps: this.budget.steps, alloc: this.budget.bytes };
    let picked: unknown;
    try {
      picked = targeting(ctx, env);
    } catch (e) {
      return this.failed(flag, fallback, e);
    }
    let variant: string | undefined;
    let reason: Reason;
    if (picked === null || picked === undefined) {
      variant = flag.defaultVariant;
      reason = 'DEFAULT';
    } else if (typeof picked === 'string') {
      variant = picked;
      reason = env.split ? 'SPLIT' : 'TARGETING_MATCH';
    } else if (typeof picked === 'boolean' || typeof picked === 'number') {
      variant = String(picked); // flagd: true selects the variant named "true"
      reason = env.split ? 'SPLIT' : 'TARGETING_MATCH';
    } else {
      return failure(flagKey, fallback, 'GENERAL', notAVariantName(flagKey, picked), flag.metadata);
    }
    if (variant === undefined) return { flagKey, value: fallback, reason: 'DEFAULT', flagMetadata: flag.metadata };
    const variants = flag.definition.variants;
    const value = variant.length <= longestName(variants) && hasOwn.call(variants, variant) ? variants[variant] : undefined;
    if (value === undefined) return failure(flagKey, fallback, 'GENERAL', notOneOf(flagKey, variant, variants), flag.metadata);
    const type = options?.type;
    if (type !== undefined && !hasType(value, type)) {
      return failure(flagKey, fallback, 'TYPE_MISMATCH', `flag "${flagKey}" is ${typeof value}, not ${type}`, flag.metadata);
    }
    return { flagKey, value, variant, reason, flagMetadata: flag.metadata };
  }

  private stopped(flag: CompiledFlag, fallback: unknown, resource: BudgetResource): EvaluationResult {
    const limit = resource === 'steps' ? this.budget.steps : this.budget.bytes;
    const message = budgetMessage(flag.key, resource, limit);
    if (this.onBudgetExceeded !== undefined && !this.overBudget.has(flag.key)) {
      this.overBudget.add(flag.key);
      try {
        this.onBudgetExceeded({ flagKey: flag.key, resource, limit, message });
      } catch {
        // a logging hook must not turn an answered evaluation into an exception
      }
    }
    return failure(flag.key, fallback, 'GENERAL', message, flag.metadata);
  }
}

const hasOwn = Object.prototype.hasOwnProperty;

function longestName(variants: Readonly<Record<string, unknown>>): number {
  let n = 0;
  for (const k of Object.keys(variants)) if (k.length > n) n = k.length;
  return n;
}

function notAVariantName(flagKey: string, picked: unknown): string {
  const what = Array.isArray(picked) ? 'an array' : typeof picked === 'object' ? 'an object' : `a ${typeof picked}`;
  return `flag "${flagKey}": targeting returned ${what}, not a variant name`;
}

/** A name longer than every variant's is none of them: shown shortened (it may be a long string the rule joined from pieces). */
function notOneOf(flagKey: string, variant: string, variants: Readonly<Record<string, unknown>>): string {
  const shown = escapeControls(variant.length > 64 ? `${variant.slice(0, 64)}…` : variant);
  return `flag "${flagKey}": targeting returned variant "${shown}", which is not one of ${Object.keys(variants).join(', ')}`;
}

/**
 * A flag's Outcome: what its targeting picked, as its result. Results are built once per variant
 * and reason, frozen, and shared by every evaluation (they hold only the flag's own data).
 */
function outcomeOf(flagKey: string, def: Readonly<FlagDefinition>, metadata: FlagMetadata, defaultResult: EvaluationResult): Outcome {
  const variants = def.variants;
  const longest = longestName(variants);
  let built: Record<string, { match?: EvaluationResult; split?: EvaluationResult }> | undefined;
  return (picked, split) => {
    let name: string;
    if (picked === null || picked === undefined) return defaultResult;
    if (typeof picked === 'string') name = picked;
    else if (typeof picked === 'boolean' || typeof picked === 'number') name = String(picked); // flagd: true selects the variant named "true"
    else throw new VariantFailure(notAVariantName(flagKey, picked));
    // a name longer than every variant's is none of them: not hashed for the lookup
    if (name.length > longest || !hasOwn.call(variants, name)) throw new VariantFailure(notOneOf(flagKey, name, variants));
    built ??= Object.create(null) as Record<string, { match?: EvaluationResult; split?: EvaluationResult }>;
    const slot = (built[name] ??= {});
    if (split) return (slot.split ??= result(flagKey, variants[name]!, name, 'SPLIT', metadata));
    return (slot.match ??= result(flagKey, variants[name]!, name, 'TARGETING_MATCH', metadata));
  };
}

function result(flagKey: string, value: FlagValue | undefined, variant: string | undefined, reason: Reason, flagMetadata: FlagMetadata): EvaluationResult {
  return Object.freeze(variant === undefined ? { flagKey, value, reason, flagMetadata } : { flagKey, value, variant, reason, flagMetadata });
}

/** Same behaviour: what the fingerprint of a flag used to hold, compared without building it. */
function sameBehaviour(a: CompiledFlag, ae: Readonly<Record<string, JsonValue>>, b: CompiledFlag, be: Readonly<Record<string, JsonValue>>): boolean {
  const da = a.definition;
  const db = b.definition;
  if (da.state !== db.state || (da.defaultVariant ?? null) !== (db.defaultVariant ?? null) || a.parseError !== b.parseError) return false;
  if (!sameJson(da.variants as JsonValue, {}, db.variants as JsonValue, {}) || !sameJson(a.metadata as JsonValue, {}, b.metadata as JsonValue, {})) return false;
  if (a.resolved !== b.resolved) return false;
  return !a.resolved || sameJson(da.targeting as JsonValue, ae, db.targeting as JsonValue, be);
}

/** JSON equality (key order included, as JSON.stringify would compare) with `$ref`s replaced by their evaluators. */
function sameJson(x: JsonValue, xe: Readonly<Record<string, JsonValue>>, y: JsonValue, ye: Readonly<Record<string, JsonValue>>): boolean {
  x = deref(x, xe);
  y = deref(y, ye);
  if (x === null || y === null || typeof x !== 'object' || typeof y !== 'object') return x === y;
  if (Array.isArray(x)) {
    if (!Array.isArray(y) || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!sameJson(x[i]!, xe, y[i]!, ye)) return false;
    return true;
  }
  if (Array.isArray(y)) return false;
  const xk = Object.keys(x);
  const yk = Object.keys(y);
  if (xk.length !== yk.length) return false;
  for (let i = 0; i < xk.length; i++) {
    if (xk[i] !== yk[i] || !sameJson(x[xk[i]!]!, xe, y[yk[i]!]!, ye)) return false;
  }
  return true;
}

function deref(rule: JsonValue, evaluators: Readonly<Record<string, JsonValue>>): JsonValue {
  for (let depth = 0; depth <= 64 && rule !== null && typeof rule === 'object' && !Array.isArray(rule); depth++) {
    const keys = Object.keys(rule);
    if (keys.length !== 1 || keys[0] !== '$ref' || typeof rule.$ref !== 'string' || !hasOwn.call(evaluators, rule.$ref)) return rule;
    rule = evaluators[rule.$ref]!;
  }
  return rule;
}

/** What is said about an evaluation stopped for its budget. */
function budgetMessage(flagKey: string, resource: BudgetResource, limit: number): string {
  const what = resource === 'steps' ? `${limit.toLocaleString('en-US')} steps` : `${limit.toLocaleString('en-US')} bytes allocated`;
  return `flag "${flagKey}": evaluation stopped: it went over its budget of ${what} per evaluation (the context holds larger lists or strings than the flag was validated for); the default value is served`;
}

function hasType(value: FlagValue, type: FlagValueType): boolean {
  return type === 'object' ? typeof value === 'object' && value !== null : typeof value === type;
}

function failure(flagKey: string, value: unknown, errorCode: EvaluationResult['errorCode'] & string, errorMessage: string, flagMetadata: FlagMetadata): EvaluationResult {
  return { flagKey, value: value as FlagValue | undefined, reason: 'ERROR', errorCode, errorMessage, flagMetadata };
}

function summarize(result: EvaluationResult, steps: ExplainStep[]): string {
  const served = result.variant !== undefined ? `variant "${result.variant}" (${JSON.stringify(result.value)})` : 'the code default';
  switch (result.reason) {
    case 'ERROR':
      return `${result.errorCode}: ${result.errorMessage}`;
    case 'DISABLED':
      return `flag is DISABLED: ${served}`;
    case 'STATIC':
      return `no targeting: defaultVariant, ${served}`;
    case 'DEFAULT':
      return `targeting gave no variant${steps.length ? ` (${steps[steps.length - 1]!.note})` : ''}: ${served}`;
    default: {
      const last = steps[steps.length - 1];
      return `${last ? last.note : 'targeting rule'}: ${served}`;
    }
  }
}

/** Validates and compiles a flag set in flagd's format (JSON text or an object). Never throws. */
export function compileFlagSet(input: string | object, options: CompileOptions = {}): CompileResult {
  const limits: FlagSetLimits = { ...DEFAULT_LIMITS, ...(options.limits ?? {}) };
  const budget: EvaluationBudget = Object.freeze({ steps: limits.maxEvaluationSteps, bytes: limits.maxEvaluationBytes });
  const validated = validateFlagSet(input, limits);
  const errors = validated.issues;
  const flags = new Map<string, CompiledFlag>();
  const codegen = options.codegen ?? true;
  const named = namedSources(); // bounds the distinct generated sources of this compilation
  for (const flag of validated.flags) {
    const compiled = compileFlag(flag, budget, codegen, named);
    if (compiled.parseError !== undefined && flag.parseError === undefined) {
      errors.push({ path: `flags.${flag.key}.${compiled.errorPath}`, message: compiled.parseError, flagKey: flag.key, effect: 'parse-error' });
    }
    flags.set(flag.key, compiled);
  }
  const snapshot = FlagSnapshot.create(flags, validated.metadata, Object.freeze(validated.evaluators), budget, options.onBudgetExceeded);
  // issues echo keys and rule text from untrusted input: never let them carry terminal or bidi controls
  return { snapshot, errors: errors.map(printable) };
}

function printable(issue: ValidationIssue): ValidationIssue {
  const path = escapeControls(issue.path);
  const message = escapeControls(issue.message);
  return path === issue.path && message === issue.message ? issue : { ...issue, path, message };
}

function compileFlag(flag: ValidFlag, budget: EvaluationBudget, codegen: boolean, named: NamedSources): CompiledFlag & { errorPath?: string } {
  const def = flag.definition;
  const key = flag.key;
  const metadata = flag.metadata;
  const defaultVariant = def.defaultVariant ?? undefined;
  const noVariant = result(key, undefined, undefined, 'DEFAULT', metadata);
  const enabled = def.state === 'ENABLED';
  let decide: Evaluator | undefined;
  let generated: Generated | undefined;
  let outcome: Outcome | undefined;
  let parseError = flag.parseError;
  let errorPath: string | undefined;
  if (enabled && flag.targeting !== undefined && parseError === undefined) {
    const defaultResult = defaultVariant === undefined ? noVariant : result(key, def.variants[defaultVariant], defaultVariant, 'DEFAULT', metadata);
    try {
      outcome = outcomeOf(key, def, metadata, defaultResult);
      const compiled = compileDecision(flag.targeting, key, outcome, budget);
      decide = compiled.decide;
      if (codegen && compiled.decision !== undefined) generated = generate(compiled.decision, budget, named);
      if (generated !== undefined) decide = undefined; // see CompiledFlag.decide
    } catch (e) {
      if (!(e instanceof RuleCompileError)) throw e;
      parseError = escapeControls(e.message);
      errorPath = e.path;
    }
  } else if (!enabled && flag.targeting !== undefined && parseError === undefined) {
    // a disabled flag never runs its rule, but a rule that cannot compile is reported all the same
    try {
      compileRule(flag.targeting, key, budget);
    } catch (e) {
      if (!(e instanceof RuleCompileError)) throw e;
      parseError = escapeControls(e.message);
      errorPath = e.path;
    }
  }
  let fixed: EvaluationResult | undefined;
  if (!enabled) fixed = result(key, undefined, undefined, 'DISABLED', metadata);
  else if (flag.targeting === undefined) fixed = defaultVariant === undefined ? noVariant : result(key, def.variants[defaultVariant], defaultVariant, 'STATIC', metadata);
  return {
    key,
    definition: def,
    enabled,
    defaultVariant,
    runs: decide !== undefined || generated !== undefined,
    decide,
    generated,
    outcome: generated !== undefined ? outcome : undefined,
    resolved: flag.targeting !== undefined,
    parseError,
    errorPath,
    metadata,
    fixed,
    noVariant,
  };
}

/** Keys whose behaviour differs between two snapshots (added, removed or changed). */
export function changedFlagKeys(previous: FlagSnapshot, next: FlagSnapshot): string[] {
  const changed: string[] = [];
  for (const key of next.keys()) if (!next.sameFlag(key, previous)) changed.push(key);
  for (const key of previous.keys()) if (!next.has(key)) changed.push(key);
  return changed;
}
