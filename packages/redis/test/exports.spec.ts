import * as redis from '@rollgate/redis';

// The public surface: adding or removing a runtime export is a decision, made here on purpose.
it('exports exactly these runtime names', () => {
  expect(Object.keys(redis).sort()).toEqual([
    'BaseFlagStore',
    'ConfigError',
    'FencedError',
    'InvalidWriteError',
    'MemoryFlagStore',
    'NotFoundError',
    'RedisFlagStore',
    'RollgateProvider',
    'SAFE_CLUSTER_OPTIONS',
    'SAFE_REDIS_OPTIONS',
    'SAFE_SENTINEL_OPTIONS',
    'StoreUnavailableError',
    'VersionConflictError',
    'WriteNotAppliedError',
    'WriteNotReplicatedError',
    'WriteOutcomeUnknownError',
    'canonicalJson',
    'flagStoreKeys',
    'parseRedisUrl',
    'redactRedisUrl',
  ]);
});
