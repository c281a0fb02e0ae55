import * as cli from '@rollgate/cli';

// The public surface of @rollgate/cli: the program factory and the pure helpers behind commands.

it('exports exactly these runtime names', () => {
  expect(Object.keys(cli).sort()).toEqual([
    'DEFAULT_REDIS_URL',
    'EXIT',
    'EditRefusedError',
    'FLAGD_SCHEMA',
    'FileValidationError',
    'MissingError',
    'UsageError',
    'addToSegment',
    'bucketingKeyFor',
    'createProgram',
    'defaultRolloutVariant',
    'describeSplit',
    'diffFlagSets',
    'parseFlagFile',
    'parsePercent',
    'processDependencies',
    'readSegment',
    'removeFromSegment',
    'reportOf',
    'runCli',
    'segmentRule',
    'segmentShapeProblem',
    'setRollout',
    'toFlagdDocument',
  ]);
});

it('fixes the exit codes scripts rely on', () => {
  expect(cli.EXIT).toEqual({ ok: 0, unexpected: 1, usage: 2, validation: 3, conflict: 4, notFound: 5, unavailable: 6, outcomeUnknown: 7 });
});
