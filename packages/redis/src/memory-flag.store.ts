import { randomUUID } from 'node:crypto';
import { BaseFlagStore } from './base-flag.store';
import { VersionConflictError } from './errors';
import type { AuditEntry, FlagChange, StoredFlagSet, StoreWatcher, TrackedEvent, WriteOptions, WriteResult } from './flag-store';
import { planWrite, writeIdOf, writeResultOf } from './write-plan';

export interface MemoryFlagStoreOptions {
  /** Flag set to start with (flagd format: `{ flags, $evaluators }`). Not audited. */
  initial?: { flags?: Record<string, unknown>; $evaluators?: Record<string, unknown> };
  /** Audit entries kept. @default 10_000 */
  auditMaxLength?: number;
  /** Tracking events kept. @default 10_000 */
  eventsMaxLength?: number;
  /** How long a write id is remembered (see WriteOptions.writeId). @default 86400 (24 h) */
  idempotencyWindowSec?: number;
  /** Clock for the idempotency window, in ms. @default Date.now */
  now?: () => number;
}

/**
 * An in-process store with the same contract as RedisFlagStore: for tests and for the demo's
 * embedded mode. Definitions are kept as JSON text, so readers never share objects with writers.
 */
export class MemoryFlagStore extends BaseFlagStore {
  private version = 0;
  private revision = '';
  /** write id → [version it produced, when it is forgotten (ms)] */
  private readonly writes = new Map<string, [number, number]>();
  private readonly idempotencyWindowMs: number;
  private readonly now: () => number;
  private readonly flags = new Map<string, string>();
  private readonly evaluators = new Map<string, string>();
  private readonly auditLog: AuditEntry[] = [];
  /** Entries ever audited: ids keep growing once old entries are trimmed (an id is never reused). */
  private audited = 0;
  private readonly events: TrackedEvent[] = [];
  private readonly watchers = new Set<StoreWatcher>();
  private readonly auditMaxLength: number;
  private readonly eventsMaxLength: number;

  constructor(options: MemoryFlagStoreOptions = {}) {
    super();
    this.auditMaxLength = options.auditMaxLength ?? 10_000;
    this.eventsMaxLength = options.eventsMaxLength ?? 10_000;
    this.idempotencyWindowMs = (options.idempotencyWindowSec ?? 86_400) * 1000;
    this.now = options.now ?? Date.now;
    for (const [key, def] of Object.entries(options.initial?.flags ?? {})) this.flags.set(key, JSON.stringify(def));
    for (const [key, def] of Object.entries(options.initial?.$evaluators ?? {})) this.evaluators.set(key, JSON.stringify(def));
    if (this.flags.size + this.evaluators.size > 0) {
      this.version = 1;
      this.revision = randomUUID();
    }
  }

  async load(): Promise<StoredFlagSet> {
    return this.snapshot();
  }

  private snapshot(): StoredFlagSet {
    const parse = (m: Map<string, string>) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) Object.defineProperty(out, k, { value: JSON.parse(v), enumerable: true, configurable: true, writable: true });
      return out;
    };
    return { version: this.version, revision: this.revision, flags: parse(this.flags), evaluators: parse(this.evaluators), problems: [] };
  }

  async apply(changes: readonly FlagChange[], options: WriteOptions): Promise<WriteResult> {
    // synchronous from here on: nothing can interleave, which is what makes it atomic
    const writeId = writeIdOf(options);
    const time = this.now();
    for (const [id, [, forgetAt]] of this.writes) if (forgetAt <= time) this.writes.delete(id);
    const done = this.writes.get(writeId);
    if (done) return writeResultOf(done[0], writeId, true, changes);
    if (options.expectedVersion !== undefined && options.expectedVersion !== this.version) {
      throw new VersionConflictError(options.expectedVersion, this.version);
    }
    const entries = planWrite(this.snapshot(), changes, options);
    if (entries.length === 0) return writeResultOf(this.version, writeId, false, entries); // nothing changed: nothing written
    const version = ++this.version;
    const revision = (this.revision = randomUUID());
    this.writes.set(writeId, [version, time + this.idempotencyWindowMs]);
    for (const entry of entries) {
      const map = entry.kind === 'flag' ? this.flags : this.evaluators;
      const before = map.get(entry.key);
      if (entry.json === null) map.delete(entry.key);
      else map.set(entry.key, entry.json);
      this.auditLog.push({
        id: String(++this.audited),
        version,
        time,
        actor: options.actor,
        action: options.action ?? (entry.json === null ? 'remove' : 'put'),
        kind: entry.kind,
        key: entry.key,
        before: before === undefined ? null : JSON.parse(before),
        after: entry.json === null ? null : JSON.parse(entry.json),
        reason: options.reason ?? '',
        writeId,
      });
    }
    if (this.auditLog.length > this.auditMaxLength) this.auditLog.splice(0, this.auditLog.length - this.auditMaxLength);
    // announced asynchronously, like a pub/sub message
    queueMicrotask(() => {
      const observedAt = Date.now();
      for (const w of this.watchers) w.onChange(version, revision, observedAt);
    });
    return writeResultOf(version, writeId, false, entries);
  }

  async audit(key?: string, options: { limit?: number } = {}): Promise<AuditEntry[]> {
    const limit = options.limit ?? 50;
    const out: AuditEntry[] = [];
    for (let i = this.auditLog.length - 1; i >= 0 && out.length < limit; i--) {
      const entry = this.auditLog[i]!;
      if (key === undefined || entry.key === key) out.push(copy(entry));
    }
    return out;
  }

  watch(watcher: StoreWatcher): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  async recordEvent(event: TrackedEvent): Promise<void> {
    this.events.push(copy(event));
    if (this.events.length > this.eventsMaxLength) this.events.splice(0, this.events.length - this.eventsMaxLength);
  }

  /** Recorded tracking events, oldest first (a copy). */
  trackedEvents(): TrackedEvent[] {
    return copy(this.events);
  }

  async close(): Promise<void> {
    this.watchers.clear();
  }
}

/** A deep copy with JSON semantics, like a round trip through Redis. */
function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
