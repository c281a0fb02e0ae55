import { userInfo } from 'node:os';
import type { Command } from 'commander';
import {
  flagStoreKeys,
  parseRedisUrl,
  RedisFlagStore,
  VersionConflictError,
  WriteNotAppliedError,
  WriteOutcomeUnknownError,
  type BaseFlagStore,
  type StoredFlagSet,
  type WriteOptions,
} from '@rollgate/redis';
import { RedisUnreachableError, UsageError } from './errors';
import { isUnreachable } from './exit-codes';
import { Output, type CliIo } from './output';

/** What the program needs from the outside world; `runCli` supplies the real ones. */
export interface CliDependencies {
  io: CliIo;
  /**
   * Creates the store a command uses (and closes). Default: a RedisFlagStore from the URL
   * (`redis://`, `rediss://`, `redis+sentinel://…`, `redis+cluster://…`).
   */
  openStore(options: { redis: string; env: string; pollIntervalMs?: number; minReplicas?: number }): BaseFlagStore;
  /** Resolves when the user asks a long-running command (`watch`) to stop (SIGINT, SIGTERM). */
  waitForStop(): { promise: Promise<void>; dispose(): void };
  /** Reads a file ('-' is stdin). */
  readFile(path: string): Promise<string>;
  /** Writes a file (atomically where the platform allows). */
  writeFile(path: string, text: string): Promise<void>;
}

/** Options every command accepts (defined on the program). */
export interface GlobalOptions {
  redis: string;
  /** Replicas a write must reach before it is acknowledged (WAIT); unset: the master's word. */
  minReplicas?: number;
  env: string;
  actor?: string;
  json?: boolean;
  reason?: string;
  writeId?: string;
}

export function defaultActor(): string {
  try {
    const name = userInfo().username;
    if (name) return name;
  } catch {
    // no passwd entry (some containers)
  }
  return process.env.USER || process.env.USERNAME || 'unknown';
}

/** Per-invocation state shared by command actions. */
export class CommandContext {
  readonly out: Output;

  constructor(
    readonly deps: CliDependencies,
    readonly options: GlobalOptions,
  ) {
    this.out = new Output(deps.io, options.json === true);
  }

  /** The context of a command's action; checks the global options first (UsageError). */
  static of(cmd: Command, deps: CliDependencies): CommandContext {
    const options = cmd.optsWithGlobals<GlobalOptions>();
    try {
      flagStoreKeys(options.env);
    } catch (e) {
      throw new UsageError(`--env: ${(e as Error).message}`);
    }
    try {
      parseRedisUrl(options.redis); // a typo is a usage error (2), not an unreachable host (6)
    } catch (e) {
      throw new UsageError(`--redis: ${(e as Error).message}`);
    }
    return new CommandContext(deps, options);
  }

  get env(): string {
    return this.options.env;
  }

  actor(): string {
    const actor = (this.options.actor ?? defaultActor()).trim();
    if (actor === '') throw new UsageError('--actor must not be empty: it is recorded in the audit');
    return actor;
  }

  /** Audit fields of a write pinned to `expectedVersion`. */
  writeOptions(action: string, expectedVersion: number): WriteOptions {
    const options: WriteOptions = { actor: this.actor(), action, expectedVersion };
    if (this.options.reason !== undefined && this.options.reason !== '') options.reason = this.options.reason;
    if (this.options.writeId !== undefined) options.writeId = this.options.writeId;
    return options;
  }

  /** Opens the store, runs `fn`, and always closes the store (the process then exits promptly). */
  async withStore<T>(fn: (store: BaseFlagStore) => Promise<T>, extra: { pollIntervalMs?: number } = {}): Promise<T> {
    const store = this.deps.openStore({
      redis: this.options.redis,
      env: this.options.env,
      ...(this.options.minReplicas !== undefined ? { minReplicas: this.options.minReplicas } : {}),
      ...extra,
    });
    try {
      return await fn(store);
    } catch (e) {
      // say where and why ("Redis at redis://host:6379 is unreachable: connection refused"), not
      // ioredis' retry internals; a write read back has its own, exact message
      if (store instanceof RedisFlagStore && isUnreachable(e) && !(e instanceof WriteNotAppliedError) && !(e instanceof WriteOutcomeUnknownError)) {
        throw new RedisUnreachableError(store.describeUnreachable(e), { cause: e });
      }
      throw e;
    } finally {
      await store.close();
    }
  }
}

/**
 * Loads the store for a read-modify-write. With `expected` (the `--expected-version` option),
 * refuses at once when the store has moved on; the write is then pinned to the version read, so
 * a concurrent writer makes it fail with VersionConflictError instead of being overwritten.
 */
export async function loadPinned(store: BaseFlagStore, expected: number | undefined): Promise<StoredFlagSet> {
  const current = await store.load();
  if (expected !== undefined && current.version !== expected) throw new VersionConflictError(expected, current.version);
  return current;
}

export function hasOwn(record: Record<string, unknown>, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(record, key);
}
