import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Cluster, type RedisOptions } from 'ioredis';
import { RollgateError } from '@rollgate/core';
import { BaseFlagStore } from './base-flag.store';
import { commandTimeoutOf, createClient, describeRedisError, describeTarget, isClient, isClusterConfig, unsafeSettings, type Client, type RedisClusterConfig } from './connection';
import { ConfigError, FencedError, StoreUnavailableError, VersionConflictError, WriteNotAppliedError, WriteNotReplicatedError, WriteOutcomeUnknownError } from './errors';
import type { AuditEntry, FlagChange, StoredFlagSet, StoreWatcher, TrackedEvent, WriteOptions, WriteResult } from './flag-store';
import { flagStoreKeys, type FlagStoreKeys } from './keys';
import { runWrite, runWriteAndWait, type ScriptWriteResult } from './scripts';
import { planWrite, writeIdOf, writeResultOf, type PlannedEntry } from './write-plan';

export { SAFE_CLUSTER_OPTIONS, SAFE_REDIS_OPTIONS, SAFE_SENTINEL_OPTIONS } from './connection';
export type { RedisClusterConfig } from './connection';

export interface RedisFlagStoreOptions {
  /**
   * Where the flags are. Either a connected ioredis client — `Redis` (single node, or Sentinel
   * with `sentinels` and `name`) or `Cluster` — yours to close; refused unless it sets
   * `commandTimeout` and `maxRetriesPerRequest` (0 to 3) (a Cluster in `redisOptions`, and
   * `enableOfflineQueue: false`), e.g. `new Redis({ ...SAFE_REDIS_OPTIONS, sentinels, name })`.
   * Or a description from which the store creates (and later closes) its own client with the
   * safe defaults applied under yours: a URL (`redis://`, `rediss://`, `redis+sentinel://…`,
   * `redis+cluster://…`, see {@link parseRedisUrl}), RedisOptions (Sentinel: `{ sentinels, name,
   * sentinelPassword?, … }`), or `{ cluster: nodes, clusterOptions? }`.
   */
  redis: Client | string | RedisOptions | RedisClusterConfig;
  /** Environment name, part of every key (`rollgate:{prod}:flags`). @default 'default' */
  env?: string;
  /** Key prefix. @default 'rollgate' */
  prefix?: string;
  /**
   * While watched, how often the store asks Redis for its version and revision (one MGET). This is
   * the heartbeat: it bounds how long a hung Redis goes unnoticed (a check that does not come
   * back within the client's `commandTimeout` reports the store unavailable, so at most
   * `pollIntervalMs + commandTimeout` after the last answer), and how long a lost pub/sub
   * message can delay a change. @default 500
   */
  pollIntervalMs?: number;
  /** Audit entries kept (approximate, XADD MAXLEN ~). @default 10000 */
  auditMaxLength?: number;
  /** Tracking events kept (approximate). @default 10000 */
  eventsMaxLength?: number;
  /** Retries of a write not pinned to a version when another writer got in between. @default 3 */
  writeRetries?: number;
  /**
   * When Redis does not answer a write (timeout, lost connection), how long the store keeps
   * reading back to learn whether it was applied before giving up with WriteOutcomeUnknownError.
   * With `minReplicas`, also how long it keeps checking that an applied write has reached them.
   * @default 5000
   */
  writeReadBackMs?: number;
  /** How long a write id is remembered, so that a retry with the same id is not applied twice. @default 86400 (24 h) */
  idempotencyWindowSec?: number;
  /**
   * A write is acknowledged only once this many replicas have it (`WAIT minReplicas
   * replicationTimeoutMs` on the write's connection): with Sentinel or Cluster, an acknowledged
   * write then survives the failover of its master to one of those replicas. One that is not
   * replicated in time is read back (`writeReadBackMs`) and, if still short, fails with
   * WriteNotReplicatedError (applied on the master; retry with the same write id). 0: writes are
   * acknowledged by the master alone (Redis replication is asynchronous: a failover can lose the
   * last writes). @default 0
   */
  minReplicas?: number;
  /** How long a write waits for `minReplicas` (WAIT's timeout); below the client's commandTimeout. @default commandTimeout / 2 */
  replicationTimeoutMs?: number;
  /**
   * Change notices on a Cluster: 'sharded' — SPUBLISH/SSUBSCRIBE (Redis 7+): a notice travels
   * only within the shard that owns the environment's slot, and each instance holds one
   * subscriber connection to that shard; 'classic' — PUBLISH/SUBSCRIBE: every node forwards
   * every notice to every other node over the cluster bus (works on Redis 6; costs grow with the
   * number of nodes). Single node and Sentinel always use PUBLISH. @default 'sharded'
   */
  clusterNotices?: 'sharded' | 'classic';
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** After ioredis re-subscribes sharded subscribers (unconfirmed), when to check the version once more. */
const RESUBSCRIBE_SETTLE_MS = 250;
/**
 * How often a sharded subscriber re-reads the slot map (one CLUSTER SLOTS). ioredis moves a sharded
 * subscription when the old owner drops it (an unsolicited SUNSUBSCRIBE after a failover or a slot
 * move) by re-reading the map once; if the node it asks has not yet heard of the new owner, the
 * map looks unchanged and the subscription is never moved: notices for that environment stop until
 * the next topology event. Re-reading it periodically bounds that to this interval. (Not ioredis'
 * `slotsRefreshInterval`: its timer is re-armed by a refresh still in flight at quit, for ever.)
 */
const SHARDED_SLOTS_REFRESH_MS = 2000;

/** A Cluster redirect (or a cluster that cannot serve the slot now) answering a command: it did not run. */
const REDIRECTED = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /;
/** Retries of a write whose script a redirect refused (about ioredis' own 16 × 100 ms for other commands). */
const MAX_REDIRECT_RETRIES = 16;
const REDIRECT_RETRY_DELAY_MS = 100;

/** What is known of a write that was applied (its script answered), when it is read back for its replication. */
interface KnownWrite {
  version: number;
  alreadyApplied: boolean;
  /** The most replicas seen to have it. */
  replicas: number;
}

/** Milliseconds on Redis' clock from a TIME reply. */
function redisMillis(time: unknown): number {
  const [seconds, micros] = time as [string, string];
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

function parseJson(text: string): unknown {
  return JSON.parse(text) as unknown;
}

/** Reads HGETALL output (object under RESP2, Map or flat array depending on transforms). */
function entriesOf(reply: unknown): [string, string][] {
  if (reply instanceof Map) return [...reply.entries()] as [string, string][];
  if (Array.isArray(reply)) {
    const out: [string, string][] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) out.push([String(reply[i]), String(reply[i + 1])]);
    return out;
  }
  if (reply && typeof reply === 'object') return Object.entries(reply as Record<string, string>);
  return [];
}

/**
 * Flag definitions in Redis, one environment per namespace. Reads are one round trip; every
 * write is one Lua script (version check, set, version bump, audit, publish).
 */
export class RedisFlagStore extends BaseFlagStore {
  readonly keys: FlagStoreKeys;
  private readonly client: Client;
  private readonly ownsClient: boolean;
  private readonly pollIntervalMs: number;
  private readonly auditMaxLength: number;
  private readonly eventsMaxLength: number;
  private readonly writeRetries: number;
  private readonly writeReadBackMs: number;
  private readonly idempotencyWindowSec: number;
  private readonly commandTimeoutMs: number;
  private readonly minReplicas: number;
  private readonly replicationTimeoutMs: number;
  /** A Cluster with sharded change notices (SPUBLISH/SSUBSCRIBE). */
  private readonly sharded: boolean;
  private readonly watchers = new Set<StoreWatcher>();
  private subscriber: Client | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private resubscribeTimer: NodeJS.Timeout | undefined;
  private slotsRefreshTimer: NodeJS.Timeout | undefined;
  private watching = false;
  private available = true;
  private closed = false;
  // A Cluster is 'ready' as a whole while the shard of this environment may still be down (a
  // failover in progress): only an answered check says the environment is available again.
  private readonly onClientReady = () => (this.client instanceof Cluster ? void this.checkVersion() : this.markAvailable());
  private readonly onClientClose = () => this.markUnavailable(new StoreUnavailableError('connection to Redis closed'));
  /** The last connection error ioredis reported, and when: commands that fail only say "max retries" or "timed out". */
  private connectionError: { error: Error; at: number } | undefined;
  private readonly onClientError = (err: Error) => {
    // ioredis emits errors it also reports through commands and reconnects; an 'error'
    // listener must exist or Node treats the event as fatal. Kept for describeUnreachable().
    this.connectionError = { error: err, at: Date.now() };
  };
  /** Where the store connects, for messages: the URL without its password, or the nodes. */
  readonly target: string;

  constructor(options: RedisFlagStoreOptions) {
    super();
    if (!options || options.redis === undefined || options.redis === null) {
      throw new ConfigError('RedisFlagStore: options.redis is required (an ioredis client, a redis:// URL, RedisOptions or { cluster: nodes })');
    }
    const env = options.env ?? 'default';
    try {
      this.keys = flagStoreKeys(env, options.prefix);
    } catch (e) {
      throw new ConfigError(`RedisFlagStore: ${(e as Error).message}`);
    }
    const given = options.redis;
    const keyPrefix = isClient(given)
      ? ((given.options as RedisOptions | undefined)?.keyPrefix ?? (given instanceof Cluster ? given.options.redisOptions?.keyPrefix : undefined))
      : isClusterConfig(given)
        ? (given.clusterOptions?.keyPrefix ?? given.clusterOptions?.redisOptions?.keyPrefix)
        : typeof given === 'object'
          ? given.keyPrefix
          : undefined;
    if (keyPrefix) {
      throw new ConfigError('RedisFlagStore: ioredis keyPrefix is not supported (it does not apply to pub/sub channels); use options.prefix instead');
    }
    if (isClient(given)) {
      const problems = unsafeSettings(given);
      if (problems.length > 0) {
        const [example, from] =
          given instanceof Cluster
            ? ['new Cluster(nodes, { ...SAFE_CLUSTER_OPTIONS, redisOptions: { ...SAFE_REDIS_OPTIONS } })', 'SAFE_CLUSTER_OPTIONS and SAFE_REDIS_OPTIONS']
            : ['new Redis({ ...SAFE_REDIS_OPTIONS, host, port })', 'SAFE_REDIS_OPTIONS'];
        throw new ConfigError(
          `RedisFlagStore: the ioredis client in options.redis would make loads and writes hang while Redis is down: ${problems.join(', ')}. ` +
            `Create it with ${example} (${from} from @rollgate/redis), or pass a URL or options and let the store create it.`,
        );
      }
    }
    // integers: Redis refuses a fractional MAXLEN, and setInterval turns a delay above 2^31 - 1 into 1 ms
    this.pollIntervalMs = integer('pollIntervalMs', options.pollIntervalMs ?? 500, 1, 2 ** 31 - 1);
    this.auditMaxLength = integer('auditMaxLength', options.auditMaxLength ?? 10_000, 1);
    this.eventsMaxLength = integer('eventsMaxLength', options.eventsMaxLength ?? 10_000, 1);
    this.writeRetries = integer('writeRetries', options.writeRetries ?? 3, 0);
    this.writeReadBackMs = integer('writeReadBackMs', options.writeReadBackMs ?? 5000, 0, 2 ** 31 - 1);
    this.idempotencyWindowSec = integer('idempotencyWindowSec', options.idempotencyWindowSec ?? 86_400, 1);
    this.minReplicas = integer('minReplicas', options.minReplicas ?? 0, 0, 1000);
    const notices = options.clusterNotices ?? 'sharded';
    if (notices !== 'sharded' && notices !== 'classic') {
      throw new ConfigError(`RedisFlagStore: options.clusterNotices must be 'sharded' or 'classic', got ${JSON.stringify(notices)}`);
    }
    // creating the client is the last step that can throw (a bad URL): nothing is left connecting
    const client = isClient(given) ? given : createClient(given);
    this.commandTimeoutMs = commandTimeoutOf(client);
    const replicationTimeout = options.replicationTimeoutMs ?? Math.floor(this.commandTimeoutMs / 2);
    if (this.minReplicas > 0 && (!Number.isInteger(replicationTimeout) || replicationTimeout < 1 || replicationTimeout >= this.commandTimeoutMs)) {
      if (!isClient(given)) client.disconnect();
      throw new ConfigError(
        `RedisFlagStore: options.replicationTimeoutMs must be an integer from 1 to below the client's commandTimeout (${this.commandTimeoutMs} ms): ` +
          `the write and its WAIT share that timeout; got ${String(replicationTimeout)}`,
      );
    }
    this.replicationTimeoutMs = replicationTimeout;
    this.ownsClient = !isClient(given);
    this.client = client;
    this.target = describeTarget(given);
    this.sharded = client instanceof Cluster && notices === 'sharded';
    this.client.on('error', this.onClientError);
  }

  /**
   * "Redis at redis://127.0.0.1:6399 is unreachable: connection refused" — what to tell a person
   * when the store could not be used, from the error a call failed with and the connection's own
   * last error (a command that fails only says "max retries" or "timed out"). Never a password.
   */
  describeUnreachable(error?: unknown): string {
    const recent = this.connectionError && Date.now() - this.connectionError.at < RECENT_CONNECTION_ERROR_MS ? this.connectionError.error : undefined;
    const root = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    const rootMessage = root instanceof Error ? root.message : root === undefined ? '' : String(root);
    const generic = root === undefined || (root as Error)?.name === 'MaxRetriesPerRequestError' || GENERIC_FAILURE.test(rootMessage);
    const reason = root === undefined && !recent ? 'no answer' : describeRedisError(generic && recent ? recent : root);
    return `Redis at ${this.target} is unreachable: ${reason}`;
  }

  /**
   * The store's command connection, for companions that keep their data beside the flags under
   * the same hash tag (`@rollgate/rollouts`). It belongs to whoever owns the store: never close it.
   */
  get connection(): Client {
    return this.client;
  }

  async load(): Promise<StoredFlagSet> {
    return (await this.read()).set;
  }

  /**
   * A Cluster (enableOfflineQueue false) refuses commands at once until it has connected — "Cluster
   * isn't ready". Before its first connection is up (or while it reconnects to the cluster as a
   * whole), wait for it, at most a command timeout: as long as a command could have waited.
   */
  private async started(): Promise<void> {
    const c = this.client;
    if (!(c instanceof Cluster) || c.status === 'ready') return;
    if (c.status === 'wait') c.connect().catch(() => undefined); // lazyConnect
    if (c.status !== 'connecting' && c.status !== 'connect') return; // closed or ended: fail now
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        c.off('ready', done);
        c.off('close', done);
        c.off('end', done);
        resolve();
      };
      const timer = setTimeout(done, this.commandTimeoutMs);
      c.once('ready', done);
      c.once('close', done);
      c.once('end', done);
    });
  }

  /**
   * One transaction: the flag set, Redis' clock (for write deadlines) and, for a write, whether its
   * id was already applied. `readAt` is performance.now() when the reply arrived.
   */
  private async read(writeId?: string): Promise<{ set: StoredFlagSet; redisNow: number; readAt: number; appliedVersion: number | undefined }> {
    await this.started();
    const multi = this.client.multi().hgetall(this.keys.flags).hgetall(this.keys.evaluators).get(this.keys.version).get(this.keys.revision).time();
    if (writeId !== undefined) multi.get(this.keys.writeRecord(writeId));
    const reply = await multi.exec().catch(unavailable);
    const readAt = performance.now();
    if (!reply) throw new StoreUnavailableError('Redis aborted the load transaction');
    for (const [err] of reply) if (err) throw CLUSTER_UNSTABLE.test(err.message) ? unavailable(err) : err;
    const [rawFlags, rawEvaluators, rawVersion, rawRevision, time, rawApplied] = reply.map(([, value]) => value as unknown);
    const problems: StoredFlagSet['problems'] = [];
    const decode = (reply: unknown, kind: 'flags' | '$evaluators') => {
      const out: Record<string, unknown> = {};
      // sorted: every instance sees the same order whatever Redis' hash encoding (stable ETags)
      for (const [key, text] of entriesOf(reply).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        try {
          // defineProperty: a stored key such as "__proto__" stays a plain own property
          Object.defineProperty(out, key, { value: parseJson(text), enumerable: true, configurable: true, writable: true });
        } catch (e) {
          problems.push({ path: `${kind}.${key}`, message: `stored JSON is invalid: ${(e as Error).message}`, ...(kind === 'flags' ? { flagKey: key } : {}), effect: 'excluded' });
        }
      }
      return out;
    };
    const version = rawVersion === null || rawVersion === undefined ? 0 : Number(rawVersion);
    const set: StoredFlagSet = { version, revision: typeof rawRevision === 'string' ? rawRevision : '', flags: decode(rawFlags, 'flags'), evaluators: decode(rawEvaluators, '$evaluators'), problems };
    const appliedVersion = typeof rawApplied === 'string' ? Number(rawApplied) : undefined;
    return { set, redisNow: redisMillis(time), readAt, appliedVersion };
  }

  async apply(changes: readonly FlagChange[], options: WriteOptions): Promise<WriteResult> {
    const writeId = writeIdOf(options);
    let redirects = 0;
    for (let attempt = 0; ; attempt++) {
      const { set: current, redisNow, readAt, appliedVersion } = await this.read(writeId);
      const deadlineFrom = (sent: number) => redisNow + Math.ceil(sent - readAt) + this.commandTimeoutMs;
      if (appliedVersion !== undefined) {
        if (this.minReplicas === 0) return writeResultOf(appliedVersion, writeId, true, changes);
        // applied before (a retry): acknowledged only once it is replicated, as the first run would have been
        const known = { version: appliedVersion, alreadyApplied: true, replicas: 0 };
        return this.settle(writeId, deadlineFrom(performance.now()), new Error('write already applied; checking its replication'), changes, known);
      }
      if (options.expectedVersion !== undefined && options.expectedVersion !== current.version) {
        throw new VersionConflictError(options.expectedVersion, current.version);
      }
      const entries = planWrite(current, changes, options);
      if (entries.length === 0) return writeResultOf(current.version, writeId, false, entries); // nothing changed: nothing written
      // On Redis' clock: the latest moment the script may still run. By then this call has given up
      // waiting (commandTimeout), so a script Redis runs later (paused, or resent after a
      // reconnect) refuses itself instead of applying a write its writer reported as failed.
      const deadline = deadlineFrom(performance.now());
      const argv: (string | number)[] = [
        current.version,
        this.keys.changes,
        options.actor,
        options.reason ?? '',
        Date.now(),
        this.auditMaxLength,
        options.action ?? '',
        entries.length,
        writeId,
        randomUUID(),
        deadline,
        this.idempotencyWindowSec,
        options.leaseToken ?? '',
      ];
      for (const e of entries) argv.push(e.kind, e.key, e.json ?? '');
      const keys = [this.keys.flags, this.keys.evaluators, this.keys.version, this.keys.audit, this.keys.revision, this.keys.writeRecord(writeId), this.keys.lease] as const;
      let outcome: ScriptWriteResult;
      let replicas: number | Error | undefined;
      try {
        if (this.minReplicas > 0) {
          const waited = await runWriteAndWait(this.client, keys, argv, { replicas: this.minReplicas, timeoutMs: this.replicationTimeoutMs }, { sharded: this.sharded });
          if (waited.script instanceof Error) throw waited.script;
          outcome = waited.script;
          replicas = waited.replicas;
        } else {
          outcome = await runWrite(this.client, keys, argv, { sharded: this.sharded });
        }
      } catch (e) {
        const message = (e as Error).message ?? '';
        // the script refused its arguments, having written nothing: a bug, not an outage
        if (message.startsWith('INVALID_WRITE ')) throw e;
        if (message.startsWith('FENCED ')) throw new FencedError(`write ${writeId} refused: the rollout controller's lease is no longer held by this writer (another controller took over); nothing was written`);
        if (message.startsWith('WRITE_EXPIRED ')) {
          throw new WriteNotAppliedError(writeId, `Redis ran write ${writeId} after its deadline and refused it: the write was not applied; it is safe to retry`, { cause: e });
        }
        // a Cluster redirect answered the script itself (pipelined with WAIT, ioredis does not
        // follow it): the script did not run; read again (which follows the redirect) and retry
        if (REDIRECTED.test(message) && redirects < MAX_REDIRECT_RETRIES) {
          redirects++;
          attempt--;
          await sleep(REDIRECT_RETRY_DELAY_MS);
          continue;
        }
        const match = /VERSION_CONFLICT (\d+)/.exec(message);
        // no answer: the script may still run (Redis paused, or the command resent after a reconnect)
        if (!match) return this.settle(writeId, deadline, e, entries);
        // validated against a version someone else has since replaced
        if (options.expectedVersion !== undefined || attempt >= this.writeRetries) {
          throw new VersionConflictError(options.expectedVersion ?? current.version, Number(match[1]));
        }
        continue;
      }
      if (this.minReplicas === 0 || (typeof replicas === 'number' && replicas >= this.minReplicas)) {
        return writeResultOf(outcome.version, writeId, !outcome.applied, entries);
      }
      // applied on the master, not (yet) on enough replicas: not acknowledged until it is
      const cause = replicas instanceof Error ? replicas : new Error(`WAIT ${this.minReplicas} ${this.replicationTimeoutMs}: ${String(replicas)} replicas acknowledged`);
      return this.settle(writeId, deadline, cause, entries, { version: outcome.version, alreadyApplied: !outcome.applied, replicas: typeof replicas === 'number' ? replicas : 0 });
    }
  }

  /**
   * A write got no answer — or, with `minReplicas`, was applied (`known`) but not confirmed by
   * enough replicas. Reads back until the outcome is certain: applied (its record exists, and with
   * `minReplicas` enough replicas have it), or not applied and never will be (Redis' clock is past
   * the write's deadline without its record; or an applied write's record is gone — lost in a
   * failover). Gives up after `writeReadBackMs` with WriteOutcomeUnknownError
   * (WriteNotReplicatedError when it is applied but short of replicas).
   */
  private async settle(writeId: string, deadline: number, cause: unknown, entries: readonly Pick<PlannedEntry, 'kind' | 'key'>[], known?: KnownWrite): Promise<WriteResult> {
    // a connection of its own: Redis answers a connection's commands in order, so behind a write
    // that is stuck (CLIENT PAUSE) a read-back on the same connection would be stuck too
    const reader = this.client instanceof Cluster ? this.client.duplicate() : this.client.duplicate({ connectionName: `rollgate:read-back:${writeId}` });
    reader.on('error', this.onClientError);
    try {
      return await this.readBack(reader, writeId, deadline, cause, entries, known);
    } finally {
      await quit(reader);
      reader.off('error', this.onClientError);
    }
  }

  private async readBack(reader: Client, writeId: string, deadline: number, cause: unknown, entries: readonly Pick<PlannedEntry, 'kind' | 'key'>[], known?: KnownWrite): Promise<WriteResult> {
    const why = (cause as Error)?.message ?? String(cause);
    const giveUpAt = performance.now() + this.writeReadBackMs;
    const record = this.keys.writeRecord(writeId);
    let applied = known;
    for (;;) {
      let wait = 100;
      try {
        let time: unknown;
        let recorded: unknown;
        let acked: number | undefined;
        if (this.minReplicas > 0) {
          // one connection, in order: the clock, the record, a write that renews the record's TTL
          // only if it exists, and WAIT — which counts replicas that have everything up to that
          // write, so the write being read back too
          const reply = await reader.pipeline().time().get(record).expire(record, this.idempotencyWindowSec).call('WAIT', this.minReplicas, this.replicationTimeoutMs).exec();
          if (!reply || reply.slice(0, 2).some(([err]) => err)) throw new Error('read-back failed');
          [time, recorded] = [reply[0]![1], reply[1]![1]];
          const [waitError, waitReply] = reply[3]!;
          if (!waitError && Number.isInteger(waitReply)) acked = waitReply as number;
        } else {
          const reply = await reader.multi().time().get(record).exec();
          if (!reply || reply.some(([err]) => err)) throw new Error('read-back transaction failed');
          [time, recorded] = [reply[0]![1], reply[1]![1]];
        }
        if (typeof recorded === 'string') {
          if (this.minReplicas === 0) return writeResultOf(Number(recorded), writeId, false, entries);
          applied = { version: Number(recorded), alreadyApplied: applied?.alreadyApplied ?? false, replicas: Math.max(applied?.replicas ?? 0, acked ?? 0) };
          if (acked !== undefined && acked >= this.minReplicas) return writeResultOf(applied.version, writeId, applied.alreadyApplied, entries);
          wait = acked === undefined ? 100 : 0; // WAIT has waited already
        } else if (applied !== undefined) {
          throw new WriteNotAppliedError(
            writeId,
            `write ${writeId} was applied at version ${applied.version} but is no longer in the store (${why}; lost in a failover to a replica that did not have it?): ` +
              'it is not applied, and will not be. It is safe to retry.',
            { cause },
          );
        } else {
          const now = redisMillis(time);
          if (now > deadline) {
            throw new WriteNotAppliedError(
              writeId,
              `Redis did not answer write ${writeId} (${why}); read back afterwards: it was not applied, and Redis refuses it from now on. It is safe to retry.`,
              { cause },
            );
          }
          wait = deadline - now + 1;
        }
      } catch (e) {
        if (e instanceof WriteNotAppliedError) throw e;
      }
      const left = giveUpAt - performance.now();
      if (left <= 0) {
        if (applied !== undefined) {
          throw new WriteNotReplicatedError(
            writeId,
            deadline,
            applied.version,
            applied.replicas,
            this.minReplicas,
            `write ${writeId} was applied on the master at version ${applied.version}, but only ${applied.replicas} of the ${this.minReplicas} replicas required (minReplicas) ` +
              `confirmed it within ${this.writeReadBackMs} ms (${why}): a failover now may lose it. Retry with the same write id: it is applied at most once, and its replication is checked again.`,
            { cause },
          );
        }
        throw new WriteOutcomeUnknownError(
          writeId,
          deadline,
          `Redis did not answer write ${writeId} (${why}) and could not be read back within ${this.writeReadBackMs} ms: it may or may not be applied ` +
            `(if Redis runs it, it does so before ${new Date(deadline).toISOString()} by Redis' clock, or refuses it). ` +
            `Check the audit for write ${writeId}, or retry with the same write id: it is applied at most once.`,
          { cause },
        );
      }
      await sleep(Math.min(wait, left));
    }
  }

  async audit(key?: string, options: { limit?: number } = {}): Promise<AuditEntry[]> {
    await this.started();
    const limit = options.limit ?? 50;
    const out: AuditEntry[] = [];
    let end = '+';
    const page = 500;
    while (out.length < limit) {
      const rows = (await this.client.xrevrange(this.keys.audit, end, '-', 'COUNT', page).catch(unavailable)) as [string, string[]][];
      for (const [id, fields] of rows) {
        const entry = auditEntry(id, fields);
        if (key === undefined || entry.key === key) out.push(entry);
        if (out.length >= limit) break;
      }
      if (rows.length < page) break;
      end = `(${rows[rows.length - 1]![0]}`;
    }
    return out;
  }

  watch(watcher: StoreWatcher): () => void {
    this.watchers.add(watcher);
    if (this.watchers.size === 1) this.startWatching();
    return () => {
      this.watchers.delete(watcher);
      if (this.watchers.size === 0) void this.stopWatching();
    };
  }

  async recordEvent(event: TrackedEvent): Promise<void> {
    await this.started();
    await this.client.xadd(
      this.keys.events,
      'MAXLEN',
      '~',
      this.eventsMaxLength,
      '*',
      'name',
      event.name,
      'targetingKey',
      event.targetingKey ?? '',
      'time',
      String(event.time),
      'details',
      JSON.stringify(event.details),
    );
  }

  /** Recorded tracking events, newest first. */
  async trackedEvents(limit = 100): Promise<TrackedEvent[]> {
    await this.started();
    const rows = (await this.client.xrevrange(this.keys.events, '+', '-', 'COUNT', limit)) as [string, string[]][];
    return rows.map(([, fields]) => {
      const f = fieldMap(fields);
      const event: TrackedEvent = { name: f.name ?? '', time: Number(f.time), details: JSON.parse(f.details ?? '{}') as Record<string, unknown> };
      if (f.targetingKey) event.targetingKey = f.targetingKey;
      return event;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.stopWatching();
    if (this.ownsClient) await quit(this.client);
    // only now: quitting a broken connection may still emit 'error', which needs a listener
    this.client.off('error', this.onClientError);
  }

  // ---- change detection: pub/sub on a dedicated connection, plus resync on ready and a heartbeat ----

  private startWatching(): void {
    this.watching = true;
    this.client.on('ready', this.onClientReady);
    this.client.on('close', this.onClientClose);
    // Our own subscriber connection, always: under RESP2 a subscribed connection cannot run commands.
    // It is a duplicate of the command client, so it follows the same topology: a Sentinel
    // client's duplicate asks the Sentinels for the master on every reconnect (a failover), a
    // Cluster's duplicate follows slot moves and failovers (sharded subscribers are re-created on
    // the slot's new owner when Redis tells them the slot moved, or when their node is lost).
    const sub: Client =
      this.client instanceof Cluster
        ? // it queues its (s)subscribe until connected: it sends nothing a caller waits on
          this.client.duplicate([], { shardedSubscribers: this.sharded, enableOfflineQueue: true })
        : // ioredis' own re-subscription after a reconnect sends SUBSCRIBE without handling its
          // failure: should the connection drop again before the reply (Redis flapping, a
          // failover), the rejection (MaxRetriesPerRequestError) is unhandled and ends the
          // process. The store re-subscribes itself, on every 'ready', and handles it.
          this.client.duplicate({ connectionName: `rollgate:sub:${this.keys.changes}`, autoResubscribe: false });
    this.subscriber = sub;
    sub.on('error', this.onClientError);
    const subscribe = () => {
      const subscribed = this.sharded ? (sub as Cluster).ssubscribe(this.keys.changes) : sub.subscribe(this.keys.changes);
      subscribed.catch(() => {
        // the next 'ready' subscribes again (for a Cluster, ioredis re-subscribes); the heartbeat covers the gap
      });
    };
    // (re)connected: (re)subscribe, and check — a notice may have been missed meanwhile
    sub.on('ready', () => {
      if (!this.sharded) subscribe();
      void this.checkVersion();
    });
    if (sub instanceof Cluster && !this.sharded) {
      // Classic notices on a Cluster: ioredis subscribes on one node of its choosing, and picks
      // another when that node's connection is replaced (its role learned at start-up, a failover);
      // it carries over only subscriptions already confirmed, so one in flight is lost. Subscribe
      // again (idempotent) once the topology has settled after any node change, and check.
      const settle = () => {
        clearTimeout(this.resubscribeTimer);
        this.resubscribeTimer = setTimeout(() => {
          subscribe();
          void this.checkVersion();
        }, RESUBSCRIBE_SETTLE_MS);
        this.resubscribeTimer.unref();
      };
      sub.on('+node', settle);
      sub.on('-node', settle);
    }
    if (this.sharded) {
      this.slotsRefreshTimer = setInterval(() => (sub as Cluster).refreshSlotsCache(() => undefined), SHARDED_SLOTS_REFRESH_MS);
      this.slotsRefreshTimer.unref();
      // after a slot moved or a shard failed over, ioredis re-subscribes on the slot's owner and
      // says so before the owner has confirmed: check now, and once more when it surely has
      sub.on('subscribersReady', () => {
        void this.checkVersion();
        setTimeout(() => void this.checkVersion(), RESUBSCRIBE_SETTLE_MS).unref();
      });
    }
    sub.on(this.sharded ? 'smessage' : 'message', (channel: string, message: string) => {
      if (channel !== this.keys.changes) return;
      const receivedAt = Date.now();
      try {
        const parsed = JSON.parse(message) as { version?: unknown; revision?: unknown };
        const version = Number(parsed.version);
        if (Number.isInteger(version) && typeof parsed.revision === 'string') this.announce(version, parsed.revision, receivedAt);
        else void this.checkVersion();
      } catch {
        void this.checkVersion(); // unreadable message: ask Redis instead
      }
    });
    // the first subscription (it also makes a lazyConnect client connect); for a plain client the
    // first 'ready' subscribes too, which Redis treats as the same subscription
    subscribe();
    this.scheduleHeartbeat(this.pollIntervalMs);
  }

  private async stopWatching(): Promise<void> {
    this.watching = false;
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    clearTimeout(this.resubscribeTimer);
    this.resubscribeTimer = undefined;
    clearInterval(this.slotsRefreshTimer);
    this.slotsRefreshTimer = undefined;
    this.client.off('ready', this.onClientReady);
    this.client.off('close', this.onClientClose);
    const sub = this.subscriber;
    this.subscriber = undefined;
    if (sub) {
      sub.removeAllListeners('message');
      sub.removeAllListeners('smessage');
      sub.removeAllListeners('subscribersReady');
      sub.removeAllListeners('+node');
      sub.removeAllListeners('-node');
      sub.removeAllListeners('ready');
      await quit(sub);
      sub.off('error', this.onClientError); // after quit, for the same reason as in close()
    }
  }

  /** One check at a time: the next is due `pollIntervalMs` after the previous one started (or at once if it took longer). */
  private scheduleHeartbeat(delay: number): void {
    this.pollTimer = setTimeout(() => {
      const started = performance.now();
      void this.checkVersion().then(() => {
        if (this.watching) this.scheduleHeartbeat(this.pollIntervalMs - (performance.now() - started));
      });
    }, Math.max(0, delay));
    this.pollTimer.unref();
  }

  /** Asks Redis for the version and revision; announces them, or the store being unreachable. */
  private async checkVersion(): Promise<void> {
    if (this.closed || this.watchers.size === 0) return;
    // the state read is current as of no earlier than the moment the command left
    await this.started();
    const sentAt = Date.now();
    try {
      const [version, revision] = await this.client.mget(this.keys.version, this.keys.revision);
      this.markAvailable(false);
      this.announce(version === null ? 0 : Number(version), revision ?? '', sentAt);
    } catch (e) {
      this.markUnavailable(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private announce(version: number, revision: string, observedAt: number): void {
    for (const w of this.watchers) w.onChange(version, revision, observedAt);
  }

  private markAvailable(check = true): void {
    if (this.available) return;
    this.available = true;
    for (const w of this.watchers) w.onAvailable?.();
    if (check) void this.checkVersion();
  }

  private markUnavailable(error: Error): void {
    if (!this.available || this.closed) return;
    this.available = false;
    for (const w of this.watchers) w.onUnavailable?.(error);
  }
}

/** Redis failures (timeouts, closed connections, retries exhausted) surface as StoreUnavailableError. */
function unavailable(e: unknown): never {
  if (e instanceof RollgateError) throw e;
  const message = (e as Error)?.message ?? String(e);
  if (CLUSTER_UNSTABLE.test(message)) {
    throw new StoreUnavailableError(`Redis Cluster cannot serve the environment's slot now (a slot migration or a failover in progress): ${message}`, { cause: e });
  }
  throw new StoreUnavailableError(`Redis did not answer: ${message}`, { cause: e });
}

/** Command failures that say nothing of the cause: the connection's own last error says more. */
const GENERIC_FAILURE = /Command timed out|Reached the max retries per request|Connection is closed|Stream isn't writeable|Cluster isn't ready|did not answer within/;
/** How long a connection error explains later command failures. */
const RECENT_CONNECTION_ERROR_MS = 30_000;

/** Replies of a Cluster that cannot serve a slot right now (ioredis retried them, then gave up). */
const CLUSTER_UNSTABLE = /^(TRYAGAIN|MOVED|ASK|CLUSTERDOWN) |Too many Cluster redirections/;

function integer(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new ConfigError(`RedisFlagStore: options.${name} must be an integer ${range}, got ${String(value)}`);
  }
  return value;
}

async function quit(client: Client): Promise<void> {
  if (client.status === 'end') return;
  // QUIT on a connection that is not up would queue it and wait for a reconnect
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

function fieldMap(fields: string[]): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
  return out;
}

function auditEntry(id: string, fields: string[]): AuditEntry {
  const f = fieldMap(fields);
  const json = (text: string | undefined) => (text ? (JSON.parse(text) as unknown) : null);
  return {
    id,
    version: Number(f.version),
    time: Number(f.time),
    actor: f.actor ?? '',
    action: f.action ?? '',
    kind: f.kind === 'evaluator' || f.kind === 'plan' ? f.kind : 'flag',
    key: f.key ?? '',
    before: json(f.before),
    after: json(f.after),
    reason: f.reason ?? '',
    writeId: f.write ?? '',
  };
}
