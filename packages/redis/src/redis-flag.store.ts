import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { RollgateError } from '@rollgate/core';
import { BaseFlagStore } from './base-flag.store';
import { ConfigError, FencedError, StoreUnavailableError, VersionConflictError, WriteNotAppliedError, WriteOutcomeUnknownError } from './errors';
import type { AuditEntry, FlagChange, StoredFlagSet, StoreWatcher, TrackedEvent, WriteOptions, WriteResult } from './flag-store';
import { flagStoreKeys, type FlagStoreKeys } from './keys';
import { runWrite } from './scripts';
import { planWrite, writeIdOf, writeResultOf, type PlannedEntry } from './write-plan';

type Client = Redis | Cluster;

export interface RedisFlagStoreOptions {
  /**
   * A connected ioredis client (Redis, Sentinel or Cluster) — yours to close; refused unless it sets
   * `commandTimeout` and `maxRetriesPerRequest` (0 to 3), e.g. `new Redis({ ...SAFE_REDIS_OPTIONS, host })`
   * — or a URL / RedisOptions from which the store creates (and later closes) its own client with
   * {@link SAFE_REDIS_OPTIONS} applied under yours.
   */
  redis: Client | string | RedisOptions;
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
   * @default 5000
   */
  writeReadBackMs?: number;
  /** How long a write id is remembered, so that a retry with the same id is not applied twice. @default 86400 (24 h) */
  idempotencyWindowSec?: number;
}

/**
 * Defaults for clients the store creates: a request never hangs on a dead or stuck Redis.
 * (ioredis 6 defaults waited 73 s for a command while Redis was down; see docs/operations.md.)
 */
export const SAFE_REDIS_OPTIONS: Readonly<RedisOptions> = Object.freeze({
  connectTimeout: 2000,
  commandTimeout: 1000,
  maxRetriesPerRequest: 1,
  enableReadyCheck: true,
  // how long disconnect() waits for a socket to close; ioredis keeps this 2 s timer even when
  // the socket is already gone, which held processes open after close()
  disconnectTimeout: 100,
  // reconnect soon after Redis is back: the delay is capped at 400 ms (+ up to 100 ms jitter), so
  // a restarted Redis is found within 0.5 s; attempts against a closed port fail at once and cost little
  retryStrategy: (times: number) => Math.min(2 ** (times - 1) * 50, 400) + Math.floor(Math.random() * 100),
});

/**
 * Most reconnection attempts a client passed in may let a command wait for (SAFE_REDIS_OPTIONS: 1;
 * ioredis' default of 20 is what waited 73 s).
 */
const MAX_RETRIES_PER_REQUEST = 3;

/** What makes a client passed in hang callers while Redis is down; empty when it is safe. */
function unsafeSettings(client: Client): string[] {
  // a Cluster's commands run on per-node connections configured by its redisOptions
  const [where, options] = client instanceof Cluster ? ['redisOptions.', client.options.redisOptions ?? {}] : ['', client.options];
  const problems: string[] = [];
  const timeout = options.commandTimeout;
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0) {
    problems.push(`${where}commandTimeout is ${timeout === undefined ? 'not set' : String(timeout)}`);
  }
  const retries = options.maxRetriesPerRequest;
  if (!Number.isInteger(retries) || (retries as number) < 0 || (retries as number) > MAX_RETRIES_PER_REQUEST) {
    problems.push(`${where}maxRetriesPerRequest is ${retries === undefined ? 'not set' : String(retries)} (must be 0 to ${MAX_RETRIES_PER_REQUEST})`);
  }
  return problems;
}

function createClient(redis: string | RedisOptions): Redis {
  if (typeof redis === 'string') return new Redis(redis, { ...SAFE_REDIS_OPTIONS });
  return new Redis({ ...SAFE_REDIS_OPTIONS, ...redis });
}

function isClient(value: unknown): value is Client {
  return value instanceof Redis || value instanceof Cluster;
}

/** The client's command timeout (validated for clients passed in; SAFE_REDIS_OPTIONS' otherwise). */
function commandTimeoutOf(client: Client): number {
  const options = client instanceof Cluster ? (client.options.redisOptions ?? {}) : client.options;
  const timeout = options.commandTimeout;
  return typeof timeout === 'number' && Number.isFinite(timeout) && timeout > 0 ? timeout : (SAFE_REDIS_OPTIONS.commandTimeout as number);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

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
  private readonly watchers = new Set<StoreWatcher>();
  private subscriber: Client | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private watching = false;
  private available = true;
  private closed = false;
  private readonly onClientReady = () => this.markAvailable();
  private readonly onClientClose = () => this.markUnavailable(new StoreUnavailableError('connection to Redis closed'));
  private readonly onClientError = (_err: Error) => {
    // ioredis emits errors it also reports through commands and reconnects; an 'error'
    // listener must exist or Node treats the event as fatal.
  };

  constructor(options: RedisFlagStoreOptions) {
    super();
    if (!options || options.redis === undefined || options.redis === null) {
      throw new ConfigError('RedisFlagStore: options.redis is required (an ioredis client, a redis:// URL or RedisOptions)');
    }
    const env = options.env ?? 'default';
    try {
      this.keys = flagStoreKeys(env, options.prefix);
    } catch (e) {
      throw new ConfigError(`RedisFlagStore: ${(e as Error).message}`);
    }
    const given = options.redis;
    const keyPrefix = isClient(given) ? (given.options as RedisOptions | undefined)?.keyPrefix : typeof given === 'object' ? given.keyPrefix : undefined;
    if (keyPrefix) {
      throw new ConfigError('RedisFlagStore: ioredis keyPrefix is not supported (it does not apply to pub/sub channels); use options.prefix instead');
    }
    if (isClient(given)) {
      const problems = unsafeSettings(given);
      if (problems.length > 0) {
        const example = given instanceof Cluster
          ? 'new Cluster(nodes, { redisOptions: { commandTimeout: SAFE_REDIS_OPTIONS.commandTimeout, maxRetriesPerRequest: SAFE_REDIS_OPTIONS.maxRetriesPerRequest } })'
          : 'new Redis({ ...SAFE_REDIS_OPTIONS, host, port })';
        throw new ConfigError(
          `RedisFlagStore: the ioredis client in options.redis would make loads and writes hang while Redis is down: ${problems.join(', ')}. ` +
            `Create it with ${example} (SAFE_REDIS_OPTIONS from @rollgate/redis), or pass a URL or RedisOptions and let the store create it.`,
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
    this.ownsClient = !isClient(given);
    this.client = isClient(given) ? given : createClient(given);
    this.commandTimeoutMs = commandTimeoutOf(this.client);
    this.client.on('error', this.onClientError);
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
   * One transaction: the flag set, Redis' clock (for write deadlines) and, for a write, whether its
   * id was already applied. `readAt` is performance.now() when the reply arrived.
   */
  private async read(writeId?: string): Promise<{ set: StoredFlagSet; redisNow: number; readAt: number; appliedVersion: number | undefined }> {
    const multi = this.client.multi().hgetall(this.keys.flags).hgetall(this.keys.evaluators).get(this.keys.version).get(this.keys.revision).time();
    if (writeId !== undefined) multi.get(this.keys.writeRecord(writeId));
    const reply = await multi.exec().catch(unavailable);
    const readAt = performance.now();
    if (!reply) throw new StoreUnavailableError('Redis aborted the load transaction');
    for (const [err] of reply) if (err) throw err;
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
    for (let attempt = 0; ; attempt++) {
      const { set: current, redisNow, readAt, appliedVersion } = await this.read(writeId);
      if (appliedVersion !== undefined) return writeResultOf(appliedVersion, writeId, true, changes);
      if (options.expectedVersion !== undefined && options.expectedVersion !== current.version) {
        throw new VersionConflictError(options.expectedVersion, current.version);
      }
      const entries = planWrite(current, changes, options);
      // On Redis' clock: the latest moment the script may still run. By then this call has given up
      // waiting (commandTimeout), so a script Redis runs later (paused, or resent after a
      // reconnect) refuses itself instead of applying a write its writer reported as failed.
      const deadline = redisNow + Math.ceil(performance.now() - readAt) + this.commandTimeoutMs;
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
      try {
        const { version, applied } = await runWrite(this.client, keys, argv);
        return writeResultOf(version, writeId, !applied, entries);
      } catch (e) {
        const message = (e as Error).message ?? '';
        // the script refused its arguments, having written nothing: a bug, not an outage
        if (message.startsWith('INVALID_WRITE ')) throw e;
        if (message.startsWith('FENCED ')) throw new FencedError(`write ${writeId} refused: the rollout controller's lease is no longer held by this writer (another controller took over); nothing was written`);
        if (message.startsWith('WRITE_EXPIRED ')) {
          throw new WriteNotAppliedError(writeId, `Redis ran write ${writeId} after its deadline and refused it: the write was not applied; it is safe to retry`, { cause: e });
        }
        const match = /VERSION_CONFLICT (\d+)/.exec(message);
        // no answer: the script may still run (Redis paused, or the command resent after a reconnect)
        if (!match) return this.settle(writeId, deadline, e, entries);
        // validated against a version someone else has since replaced
        if (options.expectedVersion !== undefined || attempt >= this.writeRetries) {
          throw new VersionConflictError(options.expectedVersion ?? current.version, Number(match[1]));
        }
      }
    }
  }

  /**
   * A write got no answer. Reads back until the outcome is certain: applied (its record exists),
   * or not applied and never will be (Redis' clock is past the write's deadline without its
   * record). Gives up after `writeReadBackMs` with WriteOutcomeUnknownError.
   */
  private async settle(writeId: string, deadline: number, cause: unknown, entries: readonly PlannedEntry[]): Promise<WriteResult> {
    // a connection of its own: Redis answers a connection's commands in order, so behind a write
    // that is stuck (CLIENT PAUSE) a read-back on the same connection would be stuck too
    const reader = this.client instanceof Cluster ? this.client.duplicate() : this.client.duplicate({ connectionName: `rollgate:read-back:${writeId}` });
    reader.on('error', this.onClientError);
    try {
      return await this.readBack(reader, writeId, deadline, cause, entries);
    } finally {
      await quit(reader);
      reader.off('error', this.onClientError);
    }
  }

  private async readBack(reader: Client, writeId: string, deadline: number, cause: unknown, entries: readonly PlannedEntry[]): Promise<WriteResult> {
    const why = (cause as Error)?.message ?? String(cause);
    const giveUpAt = performance.now() + this.writeReadBackMs;
    for (;;) {
      let wait = 100;
      try {
        const reply = await reader.multi().time().get(this.keys.writeRecord(writeId)).exec();
        if (!reply || reply.some(([err]) => err)) throw new Error('read-back transaction failed');
        const [[, time], [, recorded]] = reply as [[null, unknown], [null, unknown]];
        if (typeof recorded === 'string') return writeResultOf(Number(recorded), writeId, false, entries);
        const now = redisMillis(time);
        if (now > deadline) {
          throw new WriteNotAppliedError(
            writeId,
            `Redis did not answer write ${writeId} (${why}); read back afterwards: it was not applied, and Redis refuses it from now on. It is safe to retry.`,
            { cause },
          );
        }
        wait = deadline - now + 1;
      } catch (e) {
        if (e instanceof WriteNotAppliedError) throw e;
      }
      const left = giveUpAt - performance.now();
      if (left <= 0) {
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
    const sub: Client = this.client instanceof Cluster ? this.client.duplicate() : this.client.duplicate({ connectionName: `rollgate:sub:${this.keys.changes}` });
    this.subscriber = sub;
    sub.on('error', this.onClientError);
    sub.on('ready', () => void this.checkVersion());
    sub.on('message', (channel: string, message: string) => {
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
    sub.subscribe(this.keys.changes).catch(() => {
      // retried by ioredis' auto-resubscribe on reconnect; the heartbeat covers the gap
    });
    this.scheduleHeartbeat(this.pollIntervalMs);
  }

  private async stopWatching(): Promise<void> {
    this.watching = false;
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.client.off('ready', this.onClientReady);
    this.client.off('close', this.onClientClose);
    const sub = this.subscriber;
    this.subscriber = undefined;
    if (sub) {
      sub.removeAllListeners('message');
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
  throw new StoreUnavailableError(`Redis did not answer: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

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
