import type { AuditEntry, FlagChange, FlagStore, StoredFlagSet, StoreWatcher, TrackedEvent, WriteOptions, WriteResult } from './flag-store';
import { NotFoundError } from './errors';
import { definitionAt, patchedDefinition } from './write-plan';

/**
 * What both stores share: the convenience writes, all built on `apply`, written once.
 * Subclasses implement the storage primitives.
 */
export abstract class BaseFlagStore implements FlagStore {
  abstract load(): Promise<StoredFlagSet>;
  abstract apply(changes: readonly FlagChange[], options: WriteOptions): Promise<WriteResult>;
  abstract audit(key?: string, options?: { limit?: number }): Promise<AuditEntry[]>;
  abstract watch(watcher: StoreWatcher): () => void;
  abstract recordEvent(event: TrackedEvent): Promise<void>;
  abstract close(): Promise<void>;

  /** Creates or replaces a flag. */
  putFlag(key: string, definition: unknown, options: WriteOptions): Promise<WriteResult> {
    return this.apply([{ kind: 'flag', key, definition }], { action: 'put', ...options });
  }

  /** Removes a flag (NotFoundError when absent). */
  removeFlag(key: string, options: WriteOptions): Promise<WriteResult> {
    return this.apply([{ kind: 'flag', key, definition: null }], { action: 'remove', ...options });
  }

  /** Changes some fields of a flag (state, variants, defaultVariant, targeting, metadata). */
  async patchFlag(key: string, patch: Record<string, unknown>, options: WriteOptions): Promise<WriteResult> {
    const current = await this.load();
    if (options.expectedVersion === undefined) options = { ...options, expectedVersion: current.version };
    return this.apply([{ kind: 'flag', key, definition: patchedDefinition(current, key, patch) }], { action: 'patch', ...options });
  }

  /** Creates or replaces a shared evaluator (`$evaluators`, used with `$ref`). */
  putEvaluator(name: string, rule: unknown, options: WriteOptions): Promise<WriteResult> {
    return this.apply([{ kind: 'evaluator', key: name, definition: rule }], { action: 'put', ...options });
  }

  removeEvaluator(name: string, options: WriteOptions): Promise<WriteResult> {
    return this.apply([{ kind: 'evaluator', key: name, definition: null }], { action: 'remove', ...options });
  }

  /**
   * Restores a flag (or evaluator) to its definition as of `toVersion`, or to what it was before
   * the latest change. A new write: versioned and audited with action "revert".
   */
  async revert(key: string, revertOptions: { toVersion?: number; kind?: 'flag' | 'evaluator' }, options: WriteOptions): Promise<WriteResult> {
    const kind = revertOptions.kind ?? 'flag';
    const entries = await this.audit(key, { limit: Number.MAX_SAFE_INTEGER });
    const definition = definitionAt(entries, kind, key, revertOptions.toVersion);
    const current = await this.load();
    const exists = Object.prototype.hasOwnProperty.call(kind === 'flag' ? current.flags : current.evaluators, key);
    if (definition === null && !exists) throw new NotFoundError(`${kind} "${key}" already does not exist at the current version`);
    return this.apply([{ kind, key, definition } as FlagChange], {
      action: 'revert',
      ...options,
      // the revert is computed from `current`: it must apply to exactly that version
      expectedVersion: options.expectedVersion ?? current.version,
      reason: options.reason ?? (revertOptions.toVersion !== undefined ? `revert to version ${revertOptions.toVersion}` : 'revert the latest change'),
    });
  }
}
