import { compileTargeting, EvaluationFailure, RuleCompileError, type Env, type EvaluationBudget, type Evaluator } from './compiler';
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
import { DEFAULT_LIMITS, escapeControls, validateFlagSet, type FlagSetLimits, type ValidFlag } from './validate';

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
  readonly variants: ReadonlyMap<string, FlagValue>;
  /** Length of the longest variant name. */
  readonly longestVariant: number;
  readonly defaultVariant: string | undefined;
  readonly targeting: Evaluator | undefined;
  readonly parseError: string | undefined;
  readonly metadata: FlagMetadata;
  /** Canonical text of the definition with `$ref`s resolved: equal fingerprints, equal behaviour. */
  readonly fingerprint: string;
}

const NO_CONTEXT: EvaluationContext = Object.freeze({});

/**
 * An immutable, compiled flag set. Evaluation is synchronous, allocation-light and never throws;
 * swap a whole snapshot to change flags.
 */
export class FlagSnapshot {
  /** Flags already reported to onBudgetExceeded. */
  private readonly overBudget = new Set<string>();

  /** @internal */
  private constructor(
    private readonly flags: ReadonlyMap<string, CompiledFlag>,
    /** Flag-set metadata (`metadata` at the top of the flag set). */
    readonly metadata: FlagMetadata,
    private readonly evaluatorDefinitions: Readonly<Record<string, JsonValue>>,
    private readonly budget: EvaluationBudget,
    private readonly onBudgetExceeded: ((event: BudgetExceededEvent) => void) | undefined,
  ) {}

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

  /** @internal Fingerprint used by {@link changedFlagKeys}. */
  fingerprint(flagKey: string): string | undefined {
    return this.flags.get(flagKey)?.fingerprint;
  }

  evaluate<T extends FlagValue = FlagValue>(flagKey: string, context?: EvaluationContext, options?: EvaluateOptions<T>): EvaluationResult<T> {
    return this.run(flagKey, context, options, undefined) as EvaluationResult<T>;
  }

  /** Evaluates several flags (all by default) for one context, in key order. */
  evaluateAll(context?: EvaluationContext, options?: { keys?: readonly string[] }): EvaluationResult[] {
    const keys = options?.keys ?? [...this.flags.keys()];
    const out: EvaluationResult[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) out[i] = this.run(keys[i]!, context, undefined, undefined);
    return out;
  }

  /** Evaluates a flag and reports which rule branch decided, for the CLI's `explain`. */
  explain(flagKey: string, context?: EvaluationContext, options?: EvaluateOptions): Explanation {
    const steps: ExplainStep[] = [];
    const result = this.run(flagKey, context, options, steps);
    return { result, steps, summary: summarize(result, steps) };
  }

  private run(flagKey: string, context: EvaluationContext | undefined, options: EvaluateOptions | undefined, trace: ExplainStep[] | undefined): EvaluationResult {
    const fallback = options?.defaultValue;
    const flag = this.flags.get(flagKey);
    if (flag === undefined) {
      return failure(flagKey, fallback, 'FLAG_NOT_FOUND', `flag "${flagKey}" not found`, this.metadata);
    }
    if (!flag.enabled) return { flagKey, value: fallback, reason: 'DISABLED', flagMetadata: flag.metadata };
    if (flag.parseError !== undefined) {
      return failure(flagKey, fallback, 'PARSE_ERROR', `flag "${flagKey}": ${flag.parseError}`, flag.metadata);
    }
    let variant: string | undefined;
    let reason: Reason;
    if (flag.targeting === undefined) {
      variant = flag.defaultVariant;
      reason = 'STATIC';
    } else {
      const ctx = context !== null && typeof context === 'object' ? context : NO_CONTEXT;
      const env: Env = { ctx, flagKey, timestamp: undefined, split: false, trace, steps: this.budget.steps, alloc: this.budget.bytes };
      let picked: unknown;
      try {
        picked = flag.targeting(ctx, env);
      } catch (e) {
        if (e instanceof BudgetExceeded) return this.stopped(flag, fallback, e.resource);
        const why = e instanceof EvaluationFailure ? e.message : 'unexpected error';
        return failure(flagKey, fallback, 'GENERAL', `flag "${flagKey}": targeting rule failed: ${why}`, flag.metadata);
      }
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
        const what = Array.isArray(picked) ? 'an array' : typeof picked === 'object' ? 'an object' : `a ${typeof picked}`;
        return failure(flagKey, fallback, 'GENERAL', `flag "${flagKey}": targeting returned ${what}, not a variant name`, flag.metadata);
      }
    }
    if (variant === undefined) return { flagKey, value: fallback, reason: 'DEFAULT', flagMetadata: flag.metadata };
    // a name longer than every variant's is none of them: not hashed for the lookup (it may be a
    // long string the rule joined from pieces), and shown shortened
    const value = variant.length <= flag.longestVariant ? flag.variants.get(variant) : undefined;
    if (value === undefined) {
      const shown = escapeControls(variant.length > 64 ? `${variant.slice(0, 64)}…` : variant);
      return failure(flagKey, fallback, 'GENERAL', `flag "${flagKey}": targeting returned variant "${shown}", which is not one of ${[...flag.variants.keys()].join(', ')}`, flag.metadata);
    }
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
  for (const flag of validated.flags) {
    const compiled = compileFlag(flag, budget);
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

function compileFlag(flag: ValidFlag, budget: EvaluationBudget): CompiledFlag & { errorPath?: string } {
  const def = flag.definition;
  let targeting: Evaluator | undefined;
  let parseError = flag.parseError;
  let errorPath: string | undefined;
  if (flag.targeting !== undefined && parseError === undefined) {
    try {
      targeting = compileTargeting(flag.targeting, flag.key, budget);
    } catch (e) {
      if (!(e instanceof RuleCompileError)) throw e;
      parseError = escapeControls(e.message);
      errorPath = e.path;
    }
  }
  return {
    key: flag.key,
    definition: def,
    enabled: def.state === 'ENABLED',
    variants: new Map(Object.entries(def.variants)),
    longestVariant: Object.keys(def.variants).reduce((n, k) => Math.max(n, k.length), 0),
    defaultVariant: def.defaultVariant ?? undefined,
    targeting,
    parseError,
    errorPath,
    metadata: flag.metadata,
    // a flag that cannot be evaluated (PARSE_ERROR) must not look like one without targeting
    fingerprint: JSON.stringify([def.state, def.variants, def.defaultVariant ?? null, flag.targeting ?? null, flag.metadata, parseError ?? null]),
  };
}

/** Keys whose behaviour differs between two snapshots (added, removed or changed). */
export function changedFlagKeys(previous: FlagSnapshot, next: FlagSnapshot): string[] {
  const changed: string[] = [];
  for (const key of next.keys()) if (previous.fingerprint(key) !== next.fingerprint(key)) changed.push(key);
  for (const key of previous.keys()) if (!next.has(key)) changed.push(key);
  return changed;
}
