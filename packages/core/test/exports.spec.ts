import * as core from '@rollgate/core';
import type {
  BudgetExceededEvent,
  CompileOptions,
  CompileResult,
  ErrorCode,
  EvaluateOptions,
  EvaluationContext,
  EvaluationResult,
  Explanation,
  ExplainStep,
  FlagDefinition,
  FlagMetadata,
  FlagSetDefinition,
  FlagSetLimits,
  FlagValue,
  FlagValueType,
  JsonObject,
  JsonValue,
  Reason,
  ValidationIssue,
} from '@rollgate/core';

describe('public API of @rollgate/core', () => {
  it('exports exactly these runtime names', () => {
    expect(Object.keys(core).sort()).toEqual([
      'DEFAULT_LIMITS',
      'FlagSnapshot',
      'FlagValidationError',
      'RegressionTest',
      'RollgateError',
      'SUPPORTED_OPERATORS',
      'SplitEditError',
      'VALUE_HISTOGRAM_BUCKETS',
      'VALUE_HISTOGRAM_GROWTH',
      'ValueComparison',
      'bucketingKeyFor',
      'changedFlagKeys',
      'compileFlagSet',
      'defaultRolloutVariant',
      'describeSplit',
      'describeValueComparison',
      'formatIssue',
      'histogramMedian',
      'proportionInterval',
      'setRollout',
      'shareProportionally',
      'targetingWithoutSplitWeights',
      'valueHistogramBucket',
    ]);
  });

  it('exports the documented types (checked by tsc as part of npm test)', () => {
    // Each type is used so that removing or renaming one breaks the type check of this file.
    const onBudgetExceeded = (event: BudgetExceededEvent): void => void [event.flagKey, event.resource, event.limit, event.message];
    const options: CompileOptions = { limits: { maxFlags: 10, maxEvaluationSteps: 100_000, maxEvaluationBytes: 1_000_000 } satisfies Partial<FlagSetLimits>, onBudgetExceeded };
    const flag: FlagDefinition = { state: 'ENABLED', variants: { on: true }, defaultVariant: 'on' };
    const definition: FlagSetDefinition = { flags: { f: flag } };
    const result: CompileResult = core.compileFlagSet(definition, options);
    const ctx: EvaluationContext = { targetingKey: 'u' };
    const evalOptions: EvaluateOptions<boolean> = { defaultValue: false, type: 'boolean' satisfies FlagValueType };
    const r: EvaluationResult<boolean> = result.snapshot.evaluate<boolean>('f', ctx, evalOptions);
    const reason: Reason = r.reason;
    const code: ErrorCode | undefined = r.errorCode;
    const meta: FlagMetadata = r.flagMetadata;
    const explanation: Explanation = result.snapshot.explain('f', ctx);
    const steps: ExplainStep[] = explanation.steps;
    const issues: ValidationIssue[] = result.errors;
    const value: FlagValue | undefined = r.value;
    const json: JsonValue = { a: [1, 'x', null] } satisfies JsonObject;
    expect([reason, code, meta, steps, issues, value, json]).toEqual(['STATIC', undefined, {}, [], [], true, { a: [1, 'x', null] }]);
  });

  it('errors form a hierarchy callers can catch on', () => {
    const err = new core.FlagValidationError([{ path: 'flags.f', message: 'bad', effect: 'excluded' }]);
    expect(err).toBeInstanceOf(core.RollgateError);
    expect(err).toBeInstanceOf(core.FlagValidationError);
    expect(err).toBeInstanceOf(Error);
  });
});
