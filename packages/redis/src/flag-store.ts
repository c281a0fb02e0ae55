import type { ValidationIssue } from '@rollgate/core';

/** The flag set as stored: raw definitions (validated by the reader, not trusted). */
export interface StoredFlagSet {
  /** Version, bumped by every write; 0 for an empty store. */
  version: number;
  /**
   * Random id of the write that produced this state; '' for an empty store. A version number alone
   * does not identify a state: a Redis restored from an older dump, or failed over to a lagging
   * replica, moves back to an earlier version, and the next write then makes a *different* state
   * under a number readers may already hold. `(version, revision)` identifies the state exactly,
   * so readers adopt any state whose pair differs from theirs — newer or older.
   */
  revision: string;
  /** Flag key → definition as parsed from the store. */
  flags: Record<string, unknown>;
  /** Evaluator name → rule. */
  evaluators: Record<string, unknown>;
  /** Entries the store could not even parse (e.g. broken JSON), each with its flag key. */
  problems: ValidationIssue[];
}

/** One change in a write. `definition: null` removes the flag or evaluator. */
export type FlagChange =
  | { kind: 'flag'; key: string; definition: unknown | null }
  | { kind: 'evaluator'; key: string; definition: unknown | null };

export interface WriteOptions {
  /** Who makes the change (user name, service). Recorded in the audit. Required. */
  actor: string;
  /** Why, recorded in the audit. */
  reason?: string;
  /**
   * Write only if the store is still at this version (optimistic concurrency): otherwise
   * `VersionConflictError` and nothing is written. Without it, the write is validated against
   * the current version and retried (a few times) if another writer got in between.
   */
  expectedVersion?: number;
  /** Audit action name; defaults to put / remove / patch. */
  action?: string;
  /**
   * Idempotency key, recorded in the audit: a write whose id was already applied (within the
   * store's idempotency window, 24 h by default) is not applied again; the store answers with the
   * version it produced. Retry a write whose outcome is unknown with the same id. 1-128 characters
   * of A-Z a-z 0-9 _ . : -. @default a random UUID
   */
  writeId?: string;
  /**
   * For the rollout controller: write only while this lease token is the environment's lease
   * (checked inside the write script), else FencedError and nothing is written.
   */
  leaseToken?: string;
}

export interface WriteResult {
  /** The version this write created (the current version when `unchanged`). */
  version: number;
  /** The write's id (given or generated), as recorded in the audit. */
  writeId: string;
  /** True when an earlier attempt with this write id had already applied it: nothing was written now. */
  alreadyApplied: boolean;
  /**
   * True when every change equals what is stored (key order aside): nothing was written — no new
   * version, no audit entry, no notice; `version` is the current one and `flags`/`evaluators` are empty.
   */
  unchanged: boolean;
  /** Flag keys written. */
  flags: string[];
  /** Evaluator names written. */
  evaluators: string[];
}

export interface AuditEntry {
  /** Stream id (Redis) or sequence number (memory). */
  id: string;
  version: number;
  /** Milliseconds since the epoch. */
  time: number;
  actor: string;
  action: string;
  /** What changed: a flag, a shared evaluator, or a flag's rollout plan (@rollgate/rollouts). */
  kind: 'flag' | 'evaluator' | 'plan';
  key: string;
  /** Definition before the change; null when it did not exist. */
  before: unknown | null;
  /** Definition after the change; null when it was removed. */
  after: unknown | null;
  reason: string;
  /** Id of the write that made this change ('' for entries written before write ids existed). */
  writeId: string;
}

/** A `track()` event as recorded. */
export interface TrackedEvent {
  name: string;
  targetingKey?: string;
  /** Milliseconds since the epoch. */
  time: number;
  details: Record<string, unknown>;
}

/** What a store tells its watchers. */
export interface StoreWatcher {
  /**
   * A write happened, or a check found the store at this state. `observedAt` (ms since the epoch)
   * is when the store was known to be in it: the time a check was sent, or a notice received.
   */
  onChange(version: number, revision: string, observedAt: number): void;
  /** The store stopped answering (connection lost, commands timing out). */
  onUnavailable?(error: Error): void;
  /** The store answers again; a resync follows through onChange. */
  onAvailable?(): void;
}

/**
 * The contract both stores implement (Redis and memory), tested by one suite. Every write goes
 * through `apply`: validated, atomic, versioned, audited and announced.
 */
export interface FlagStore {
  load(): Promise<StoredFlagSet>;
  apply(changes: readonly FlagChange[], options: WriteOptions): Promise<WriteResult>;
  audit(key?: string, options?: { limit?: number }): Promise<AuditEntry[]>;
  /** Starts listening for changes; returns a function that stops. */
  watch(watcher: StoreWatcher): () => void;
  /** Records a tracking event (capped). Failures are the caller's to log; never on a hot path. */
  recordEvent(event: TrackedEvent): Promise<void>;
  /** Releases what the store created (connections, timers). */
  close(): Promise<void>;
}
