import { compileTargeting, EvaluationFailure, RuleCompileError, type Env, type Evaluator } from './compiler';
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
import { DEFAULT_LIMITS, validateFlagSet, type FlagSetLimits, type ValidFlag } from './validate';

export interface CompileOptions {
  /** Size and depth limits for untrusted input (see docs/flag-format.md). */
  limits?: Partial<FlagSetLimits>;
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
  /** @internal */
  private constructor(
    private readonly flags: ReadonlyMap<string, CompiledFlag>,
    /** Flag-set metadata (`metadata` at the top of the flag set). */
    readonly metadata: FlagMetadata,
    private readonly evaluatorDefinitions: Readonly<Record<string, JsonValue>>,
  ) {}

  /** @internal */
  static create(flags: ReadonlyMap<string, CompiledFlag>, metadata: FlagMetadata, evaluators: Readonly<Record<string, JsonValue>>): FlagSnapshot {
    return new FlagSnapshot(flags, metadata, evaluators);
  }

  /** A snapshot with no flags: every evaluation is FLAG_NOT_FOUND. */
  static empty(): FlagSnapshot {
    return new FlagSnapshot(new Map(), Object.freeze({}), Object.freeze({}));
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
      const env: Env = { ctx, flagKey, timestamp: undefined, split: false, trace };
      let picked: unknown;
      try {
        picked = flag.targeting(ctx, env);
      } catch (e) {
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
    const value = flag.variants.get(variant);
    if (value === undefined) {
      return failure(flagKey, fallback, 'GENERAL', `flag "${flagKey}": targeting returned variant "${variant}", which is not one of ${[...flag.variants.keys()].join(', ')}`, flag.metadata);
    }
    const type = options?.type;
    if (type !== undefined && !hasType(value, type)) {
      return failure(flagKey, fallback, 'TYPE_MISMATCH', `flag "${flagKey}" is ${typeof value}, not ${type}`, flag.metadata);
    }
    return { flagKey, value, variant, reason, flagMetadata: flag.metadata };
  }
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
  const validated = validateFlagSet(input, limits);
  const errors = validated.issues;
  const flags = new Map<string, CompiledFlag>();
  for (const flag of validated.flags) {
    const compiled = compileFlag(flag);
    if (compiled.parseError !== undefined && flag.parseError === undefined) {
      errors.push({ path: `flags.${flag.key}.${compiled.errorPath}`, message: compiled.parseError, flagKey: flag.key, effect: 'parse-error' });
    }
    flags.set(flag.key, compiled);
  }
  return { snapshot: FlagSnapshot.create(flags, validated.metadata, Object.freeze(validated.evaluators)), errors };
}

function compileFlag(flag: ValidFlag): CompiledFlag & { errorPath?: string } {
  const def = flag.definition;
  let targeting: Evaluator | undefined;
  let parseError = flag.parseError;
  let errorPath: string | undefined;
  if (flag.targeting !== undefined && parseError === undefined) {
    try {
      targeting = compileTargeting(flag.targeting, flag.key);
    } catch (e) {
      if (!(e instanceof RuleCompileError)) throw e;
      parseError = e.message;
      errorPath = e.path;
    }
  }
  return {
    key: flag.key,
    definition: def,
    enabled: def.state === 'ENABLED',
    variants: new Map(Object.entries(def.variants)),
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
