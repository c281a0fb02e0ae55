export { compileFlagSet, changedFlagKeys, FlagSnapshot } from './snapshot';
export type { BudgetExceededEvent, CompileOptions, CompileResult } from './snapshot';
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
export { bucketingKeyFor, defaultRolloutVariant, describeSplit, setRollout, SplitEditError, shareProportionally, targetingWithoutSplitWeights } from './split-edit';
export type { RolloutOptions, RolloutResult, SplitBuckets } from './split-edit';
export { RegressionTest } from './regression-test';
export type { RegressionObservation, RegressionTestOptions, RegressionTestState } from './regression-test';
export { ValueComparison, describeValueComparison, valueHistogramBucket, histogramMedian, VALUE_HISTOGRAM_BUCKETS, VALUE_HISTOGRAM_GROWTH } from './value-comparison';
export type {
  ValueArmBucket,
  ValueObservation,
  ValueComparisonOptions,
  ValueComparisonResult,
  ValueComparisonState,
  ValueArmSummary,
  ValueCounts,
  ValueComparisonWords,
  ValueSumsState,
  ValueComparedArmState,
  ValueArmTotalsState,
} from './value-comparison';
export { proportionInterval } from './proportion-interval';
export type { ProportionCounts, ProportionIntervalOptions, ProportionEstimate } from './proportion-interval';
