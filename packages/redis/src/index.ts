export { RedisFlagStore, SAFE_CLUSTER_OPTIONS, SAFE_REDIS_OPTIONS, SAFE_SENTINEL_OPTIONS } from './redis-flag.store';
export type { RedisClusterConfig, RedisFlagStoreOptions } from './redis-flag.store';
export { parseRedisUrl, redactRedisUrl } from './connection';
export { MemoryFlagStore } from './memory-flag.store';
export type { MemoryFlagStoreOptions } from './memory-flag.store';
export { BaseFlagStore } from './base-flag.store';
export { RollgateProvider } from './rollgate.provider';
export type { ProviderHealth, RollgateProviderOptions } from './rollgate.provider';
export { flagStoreKeys } from './keys';
export { canonicalJson } from './write-plan';
export type { FlagStoreKeys } from './keys';
export {
  ConfigError,
  FencedError,
  InvalidWriteError,
  NotFoundError,
  StoreUnavailableError,
  VersionConflictError,
  WriteNotAppliedError,
  WriteNotReplicatedError,
  WriteOutcomeUnknownError,
} from './errors';
export type { AuditEntry, FlagChange, FlagStore, StoredFlagSet, StoreWatcher, TrackedEvent, WriteOptions, WriteResult } from './flag-store';
