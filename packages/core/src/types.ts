/** A JSON value as it appears in flag definitions and evaluation results. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** The value types OpenFeature distinguishes; used for TYPE_MISMATCH checks. */
export type FlagValueType = 'boolean' | 'string' | 'number' | 'object';

/** A flag's resolved value (a variant's value). */
export type FlagValue = boolean | string | number | JsonObject | JsonValue[];

/** Flag and flag-set metadata values, as flagd's schema allows them. */
export type FlagMetadata = Readonly<Record<string, string | number | boolean>>;

/**
 * The evaluation context: attributes of the subject (user, request) a flag is evaluated for.
 * `targetingKey` is the stable identifier used for percentage bucketing.
 */
export interface EvaluationContext {
  targetingKey?: string;
  [attribute: string]: unknown;
}

/** One flag in flagd's flag-definition format. */
export interface FlagDefinition {
  state: 'ENABLED' | 'DISABLED';
  variants: Record<string, FlagValue>;
  /** Absent or null: the code default is served when no rule picks a variant. */
  defaultVariant?: string | null;
  /** JsonLogic (flagd dialect). `{}` or absent means static. */
  targeting?: JsonObject;
  metadata?: Record<string, string | number | boolean>;
}

/** A flag set in flagd's format (`https://flagd.dev/schema/v0/flags.json`). */
export interface FlagSetDefinition {
  $schema?: string;
  metadata?: Record<string, string | number | boolean>;
  /** Shared rules, referenced from targeting with `{"$ref": "name"}`. */
  $evaluators?: Record<string, JsonValue>;
  flags: Record<string, FlagDefinition>;
}

/** OpenFeature's standard resolution reasons (the subset flagd evaluation produces). */
export type Reason = 'STATIC' | 'TARGETING_MATCH' | 'SPLIT' | 'DEFAULT' | 'DISABLED' | 'ERROR';

/** OpenFeature's error codes. */
export type ErrorCode =
  | 'FLAG_NOT_FOUND'
  | 'PARSE_ERROR'
  | 'TYPE_MISMATCH'
  | 'TARGETING_KEY_MISSING'
  | 'INVALID_CONTEXT'
  | 'PROVIDER_NOT_READY'
  | 'PROVIDER_FATAL'
  | 'GENERAL';

/**
 * The outcome of one evaluation. Evaluation never throws: errors come back as
 * `reason: 'ERROR'` with an `errorCode`, and `value` is then the caller's default.
 */
export interface EvaluationResult<T = FlagValue> {
  flagKey: string;
  /** The variant's value, or the `defaultValue` passed in when no variant applies. */
  value: T | undefined;
  variant?: string;
  reason: Reason;
  errorCode?: ErrorCode;
  errorMessage?: string;
  /** Flag-set metadata merged with the flag's own (the flag's keys win). Frozen. */
  flagMetadata: FlagMetadata;
}

export interface EvaluateOptions<T = FlagValue> {
  /** Served when the flag is disabled, has no applicable variant, or errors (the "code default"). */
  defaultValue?: T;
  /** When given, a value of another type yields `TYPE_MISMATCH` and the default. */
  type?: FlagValueType;
}

/** A problem found while validating or compiling a flag set. */
export interface ValidationIssue {
  /** Dotted path of the offending element, e.g. `flags.fast-payment.defaultVariant`. */
  path: string;
  /** What is wrong, without the path. */
  message: string;
  /** The flag concerned, when the issue belongs to one flag. */
  flagKey?: string;
  /**
   * `excluded`: the flag (or evaluator) was left out of the snapshot.
   * `parse-error`: the flag is in the snapshot but evaluates to PARSE_ERROR (e.g. unknown `$ref`).
   * `rejected`: the whole input was refused (nothing compiled).
   */
  effect: 'excluded' | 'parse-error' | 'rejected';
}

/** How a rule decided, for `explain` (CLI, admin UI). */
export interface ExplainStep {
  /** Dotted path of the rule element inside the flag's targeting, e.g. `targeting.if[2]`. */
  path: string;
  /** The rule's JSON (after `$ref` substitution). */
  rule: JsonValue;
  /** What the rule evaluated to. */
  outcome: unknown;
  /** Plain-language description of the step. */
  note: string;
}

export interface Explanation {
  result: EvaluationResult;
  /** The steps that were evaluated, in order; the last one decided. */
  steps: ExplainStep[];
  /** One sentence saying what decided the result. */
  summary: string;
}
