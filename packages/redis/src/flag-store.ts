import type { ValidationIssue } from '@rollgate/core';

/** The flag set as stored: raw definitions (validated by the reader, not trusted). */
export interface StoredFlagSet {
  /** Monotonic version; 0 for an empty store. */
  version: number;
  /**
   * Identity of the store's data lineage, set by the first write. A Redis that lost its data and
   * was re-seeded restarts its versions under a new epoch, so readers cannot mistake it for the
   * data they hold. '' for an empty store.
   */
  epoch: string;
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
}

export interface WriteResult {
  /** The version this write created. */
  version: number;
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
  kind: 'flag' | 'evaluator';
  key: string;
  /** Definition before the change; null when it did not exist. */
  before: unknown | null;
  /** Definition after the change; null when it was removed. */
  after: unknown | null;
  reason: string;
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
  /** A write happened, or a check found the store at this version and epoch. */
  onChange(version: number, epoch: string): void;
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
