import {
  OpenFeatureEventEmitter,
  ProviderEvents,
  type EvaluationContext,
  type JsonValue,
  type Logger,
  type Provider,
  type ResolutionDetails,
  type TrackingEventDetails,
} from '@openfeature/server-sdk';
import { changedFlagKeys, compileFlagSet, FlagSnapshot, type BudgetExceededEvent, type FlagValueType, type ValidationIssue } from '@rollgate/core';
import { ConfigError, StoreUnavailableError } from './errors';
import type { FlagStore, StoredFlagSet } from './flag-store';
import { RedisFlagStore, type RedisFlagStoreOptions } from './redis-flag.store';

export interface RollgateProviderOptions {
  /** A store (yours to close) or options for a RedisFlagStore the provider creates and closes. */
  store: FlagStore | RedisFlagStoreOptions;
  /** initialize() gives up after this long when the store does not answer. @default 5000 */
  initTimeoutMs?: number;
  /** After losing the store, STALE turns into ERROR after this long. @default 30000 */
  staleGraceMs?: number;
  /** While initialization has failed, retry loading this often. @default 2000 */
  retryIntervalMs?: number;
  /** Receives warnings (invalid flags kept at last good version, lost store). @default silent */
  logger?: Pick<Logger, 'warn' | 'error'>;
}

/** Where the provider stands with its store, for guards that limit staleness. */
export interface ProviderHealth {
  /** The loaded version, 0 before the first load. */
  version: number;
  /** The loaded revision (id of the write that produced it), '' before the first load. */
  revision: string;
  /**
   * The last moment the snapshot is known to have matched the store (ms since the epoch): when
   * the last check or load that confirmed it was sent. undefined before the first load. While the
   * store answers, the heartbeat (`pollIntervalMs`) keeps it within about that interval of now.
   */
  syncedAt: number | undefined;
  /** True while the store is unreachable. */
  storeUnavailable: boolean;
}

function isStore(value: unknown): value is FlagStore {
  return !!value && typeof (value as FlagStore).load === 'function' && typeof (value as FlagStore).apply === 'function';
}

const SILENT = { warn() {}, error() {} };

/**
 * OpenFeature server provider over a Rollgate flag store. Evaluations read an immutable
 * in-memory snapshot (no store command per evaluation); changes swap the whole snapshot.
 */
export class RollgateProvider implements Provider {
  readonly metadata = { name: 'rollgate' } as const;
  readonly runsOn = 'server' as const;
  readonly events = new OpenFeatureEventEmitter();

  private readonly store: FlagStore;
  private readonly ownsStore: boolean;
  private readonly initTimeoutMs: number;
  private readonly staleGraceMs: number;
  private readonly retryIntervalMs: number;
  private readonly logger: Pick<Logger, 'warn' | 'error'>;
  private current: FlagSnapshot = FlagSnapshot.empty();
  private version = 0;
  private revision = '';
  private syncedAt: number | undefined;
  private storeUnavailable = false;
  private state: 'idle' | 'ready' | 'stale' | 'error' | 'closed' = 'idle';
  private unwatch: (() => void) | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private syncAgain = false;
  /** Flags whose evaluation hit the cost budget, logged once until their definition changes. */
  private readonly budgetLogged = new Set<string>();
  private readonly onBudgetExceeded = (e: BudgetExceededEvent): void => {
    if (this.budgetLogged.has(e.flagKey)) return;
    this.budgetLogged.add(e.flagKey);
    this.logger.warn(`rollgate: ${e.message} (store version ${this.version}); callers get their default (GENERAL)`);
  };
  private readonly trackListeners = new Set<(name: string, context: EvaluationContext, details: TrackingEventDetails) => void>();

  constructor(options: RollgateProviderOptions) {
    if (!options?.store) throw new ConfigError('RollgateProvider: options.store is required (a FlagStore or RedisFlagStore options)');
    this.ownsStore = !isStore(options.store);
    this.store = isStore(options.store) ? options.store : new RedisFlagStore(options.store);
    this.initTimeoutMs = options.initTimeoutMs ?? 5000;
    this.staleGraceMs = options.staleGraceMs ?? 30_000;
    this.retryIntervalMs = options.retryIntervalMs ?? 2000;
    this.logger = options.logger ?? SILENT;
  }

  /** The snapshot evaluations currently read. */
  get snapshot(): FlagSnapshot {
    return this.current;
  }

  health(): ProviderHealth {
    return { version: this.version, revision: this.revision, syncedAt: this.syncedAt, storeUnavailable: this.storeUnavailable };
  }

  async initialize(): Promise<void> {
    this.unwatch = this.store.watch({
      // any state other than the one held is loaded and adopted: newer, or older (a restore or a
      // failover moved the store back, and a kill switch written after it must win)
      onChange: (version, revision, observedAt) => {
        if (version !== this.version || revision !== this.revision) this.requestSync();
        else this.confirm(observedAt);
      },
      onUnavailable: (error) => this.lostStore(error),
      onAvailable: () => this.requestSync(),
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StoreUnavailableError(`flag store did not answer within ${this.initTimeoutMs} ms`)), this.initTimeoutMs);
    });
    try {
      const startedAt = Date.now();
      const loaded = await Promise.race([this.store.load(), timeout]);
      this.install(loaded, false, startedAt);
      this.state = 'ready';
    } catch (e) {
      // The SDK marks us ERROR and callers get their defaults; keep trying in the background and
      // announce READY by ourselves once the store answers.
      this.state = 'error';
      this.scheduleRetry();
      throw e instanceof StoreUnavailableError ? e : new StoreUnavailableError(`flag store load failed: ${(e as Error).message}`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
  }

  async onClose(): Promise<void> {
    this.state = 'closed';
    this.unwatch?.();
    this.unwatch = undefined;
    clearTimeout(this.graceTimer);
    clearTimeout(this.retryTimer);
    await this.syncing?.catch(() => undefined);
    if (this.ownsStore) await this.store.close();
  }

  resolveBooleanEvaluation(flagKey: string, defaultValue: boolean, context: EvaluationContext): Promise<ResolutionDetails<boolean>> {
    return Promise.resolve(this.resolve(flagKey, defaultValue, context, 'boolean'));
  }

  resolveStringEvaluation(flagKey: string, defaultValue: string, context: EvaluationContext): Promise<ResolutionDetails<string>> {
    return Promise.resolve(this.resolve(flagKey, defaultValue, context, 'string'));
  }

  resolveNumberEvaluation(flagKey: string, defaultValue: number, context: EvaluationContext): Promise<ResolutionDetails<number>> {
    return Promise.resolve(this.resolve(flagKey, defaultValue, context, 'number'));
  }

  resolveObjectEvaluation<T extends JsonValue>(flagKey: string, defaultValue: T, context: EvaluationContext): Promise<ResolutionDetails<T>> {
    return Promise.resolve(this.resolve(flagKey, defaultValue, context, 'object'));
  }

  track(trackingEventName: string, context: EvaluationContext, details: TrackingEventDetails): void {
    const event = {
      name: trackingEventName,
      time: Date.now(),
      details: JSON.parse(JSON.stringify(details ?? {})) as Record<string, unknown>,
      ...(typeof context?.targetingKey === 'string' ? { targetingKey: context.targetingKey } : {}),
    };
    this.store.recordEvent(event).catch((e: unknown) => this.logger.warn(`rollgate: track("${trackingEventName}") not recorded: ${(e as Error).message}`));
    for (const listener of this.trackListeners) {
      try {
        listener(trackingEventName, context, details);
      } catch (e) {
        this.logger.warn(`rollgate: a track listener failed: ${(e as Error).message}`);
      }
    }
  }

  /**
   * Calls `listener` for every `track()` (synchronously, in the caller's async context), e.g. to
   * count an event in the arms of the flags the current request was served. Returns a function
   * that removes it.
   */
  onTrack(listener: (name: string, context: EvaluationContext, details: TrackingEventDetails) => void): () => void {
    this.trackListeners.add(listener);
    return () => this.trackListeners.delete(listener);
  }

  private resolve<T>(flagKey: string, defaultValue: T, context: EvaluationContext, type: FlagValueType): ResolutionDetails<T> {
    const r = this.current.evaluate(flagKey, context as never, { defaultValue: defaultValue as never, type });
    const details: ResolutionDetails<T> = { value: r.value as T, reason: r.reason, flagMetadata: r.flagMetadata as Record<string, string | number | boolean> };
    if (r.variant !== undefined) details.variant = r.variant;
    if (r.errorCode !== undefined) {
      details.errorCode = r.errorCode as ResolutionDetails<T>['errorCode'];
      details.errorMessage = r.errorMessage;
    }
    return details;
  }

  // ---- synchronisation ----------------------------------------------------------------------

  /** Single-flight: one load at a time; a request during a load triggers exactly one more. */
  private requestSync(): void {
    if (this.state === 'closed') return;
    if (this.syncing) {
      this.syncAgain = true;
      return;
    }
    this.syncing = this.sync().finally(() => {
      this.syncing = undefined;
      if (this.syncAgain) {
        this.syncAgain = false;
        this.requestSync();
      }
    });
  }

  private async sync(): Promise<void> {
    try {
      const startedAt = Date.now();
      const loaded = await this.store.load();
      if (this.state === 'closed') return;
      this.install(loaded, true, startedAt);
    } catch (e) {
      this.lostStore(e instanceof Error ? e : new Error(String(e)));
      if (this.state === 'error') this.scheduleRetry();
    }
  }

  private scheduleRetry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.requestSync(), this.retryIntervalMs);
    this.retryTimer.unref();
  }

  private lostStore(error: Error): void {
    if (this.state === 'closed') return;
    this.storeUnavailable = true;
    if (this.state !== 'ready') return;
    this.state = 'stale';
    this.logger.warn(`rollgate: flag store unavailable (${error.message}); serving the last known flags`);
    this.events.emit(ProviderEvents.Stale, { message: `flag store unavailable: ${error.message}` });
    clearTimeout(this.graceTimer);
    this.graceTimer = setTimeout(() => {
      if (this.state !== 'stale') return;
      this.state = 'error';
      this.events.emit(ProviderEvents.Error, { message: `flag store unavailable for more than ${this.staleGraceMs} ms` });
      this.scheduleRetry();
    }, this.staleGraceMs);
    this.graceTimer.unref();
  }

  /** The store was seen in the state held, at `at`: the snapshot is current as of then. */
  private confirm(at: number): void {
    if (this.syncedAt !== undefined && at > this.syncedAt) this.syncedAt = at;
  }

  /**
   * Adopts a loaded set (compiled, keeping the last good version of anything that became
   * invalid). `startedAt`: when the load was sent, so the set is current as of no earlier.
   */
  private install(loaded: StoredFlagSet, announce: boolean, startedAt: number): void {
    const wasDegraded = this.state === 'stale' || this.state === 'error';
    this.storeUnavailable = false;
    clearTimeout(this.graceTimer);
    clearTimeout(this.retryTimer);
    if (loaded.version === 0 && this.version > 0) {
      // An empty store after we had flags: Redis lost its data (restart without persistence,
      // failover to an unsynced replica). Keep serving what we had, say so, and take whatever
      // is written next (it comes with a new epoch).
      this.logger.error(
        `rollgate: flag store is empty but we had version ${this.version} (data lost?); keeping the last known flags until the next write, ` +
          'whose flag set every instance then adopts as it is',
      );
      this.version = 0;
      this.revision = '';
      this.syncedAt = startedAt;
      this.recover(wasDegraded);
      return;
    }
    if (loaded.version === this.version && loaded.revision === this.revision && this.syncedAt !== undefined) {
      this.confirm(startedAt); // the state held: a duplicate or late notification
      this.recover(wasDegraded);
      return;
    }
    if (this.syncedAt !== undefined && this.version > 0 && loaded.version <= this.version) {
      // logged once: from now on the state held is this one
      this.logger.warn(
        loaded.version < this.version
          ? `rollgate: flag store went back from version ${this.version} to ${loaded.version} (restored from an older dump, or failed over to a lagging replica?); adopting it`
          : `rollgate: flag store's version ${loaded.version} is not the one loaded before (its history diverged after a restore or failover); adopting it`,
      );
    }
    const next = this.compileKeepingLastGood(loaded);
    const changed = changedFlagKeys(this.current, next);
    for (const key of changed) this.budgetLogged.delete(key);
    this.current = next;
    this.version = loaded.version;
    this.revision = loaded.revision;
    this.syncedAt = startedAt;
    this.recover(wasDegraded);
    if (announce && changed.length > 0) {
      this.events.emit(ProviderEvents.ConfigurationChanged, { flagsChanged: changed, metadata: { version: loaded.version } });
    }
  }

  private recover(wasDegraded: boolean): void {
    if (this.state === 'closed') return;
    const wasInitFailure = this.state === 'error' || this.state === 'stale';
    this.state = 'ready';
    if (wasDegraded || wasInitFailure) this.events.emit(ProviderEvents.Ready, { message: 'flag store available again' });
  }

  private compileKeepingLastGood(loaded: StoredFlagSet): FlagSnapshot {
    const input = { flags: { ...loaded.flags }, $evaluators: { ...loaded.evaluators } };
    const first = compileFlagSet(input, { onBudgetExceeded: this.onBudgetExceeded });
    const bad = [...loaded.problems, ...first.errors];
    if (bad.length === 0) return first.snapshot;
    let replaced = false;
    for (const issue of bad) this.keepLastGood(issue, input, () => (replaced = true));
    const result = replaced ? compileFlagSet(input, { onBudgetExceeded: this.onBudgetExceeded }) : first;
    for (const issue of result.errors) this.logger.warn(`rollgate: ${issue.path}: ${issue.message}`);
    return result.snapshot;
  }

  private keepLastGood(issue: ValidationIssue, input: { flags: Record<string, unknown>; $evaluators: Record<string, unknown> }, replaced: () => void): void {
    const key = issue.flagKey;
    if (key !== undefined) {
      const previous = this.current.definition(key);
      if (previous !== undefined && this.current.evaluate(key).errorCode !== 'PARSE_ERROR') {
        this.logger.warn(`rollgate: ${issue.path}: ${issue.message}; keeping the last good definition of "${key}"`);
        Object.defineProperty(input.flags, key, { value: previous, enumerable: true, configurable: true, writable: true });
        replaced();
      }
      return;
    }
    const evaluator = /^\$evaluators\.([^.[]+)/.exec(issue.path)?.[1];
    const previousRule = evaluator !== undefined ? this.current.evaluators()[evaluator] : undefined;
    if (evaluator !== undefined && previousRule !== undefined) {
      this.logger.warn(`rollgate: ${issue.path}: ${issue.message}; keeping the last good evaluator "${evaluator}"`);
      Object.defineProperty(input.$evaluators, evaluator, { value: previousRule, enumerable: true, configurable: true, writable: true });
      replaced();
    }
  }
}
