export { compileFlagSet, changedFlagKeys, FlagSnapshot } from './snapshot';
export type { CompileOptions, CompileResult } from './snapshot';
export { DEFAULT_LIMITS } from './validate';
export type { FlagSetLimits } from './validate';
export { RollgateError, FlagValidationError, formatIssue } from './errors';
export { SUPPORTED_OPERATORS } from './compiler';
export type {
  ErrorCode,
  EvaluateOptions,
  EvaluationContext,
  EvaluationResult,
  Explanation,
  ExplainStep,
  FlagDefinition,
  FlagMetadata,
  FlagSetDefinition,
  FlagValue,
  FlagValueType,
  JsonObject,
  JsonValue,
  Reason,
  ValidationIssue,
} from './types';
