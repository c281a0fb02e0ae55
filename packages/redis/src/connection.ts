import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';
import { ConfigError } from './errors';

// How the store connects: a single node, a Sentinel-managed master or a Cluster — from a URL,
// options, or a client passed in — always with settings under which no caller waits on a dead,
// hung or failing-over Redis for longer than a command timeout.

export type Client = Redis | Cluster;

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
 * Added for Sentinel clients the store creates (`sentinels` in the options or a
 * `redis+sentinel://` URL), under yours.
 */
export const SAFE_SENTINEL_OPTIONS: Readonly<RedisOptions> = Object.freeze({
  // a Sentinel that accepts the connection but does not answer must not stall the reconnect
  sentinelCommandTimeout: 1000,
  // a master demoted to replica answers writes with READONLY: reconnect, which asks the
  // Sentinels for the current master (the failed command still fails: the write is read back)
  reconnectOnError: (err: Error) => (err.message.startsWith('READONLY') ? 1 : false),
});

/**
 * Defaults for Cluster clients the store creates (its nodes get {@link SAFE_REDIS_OPTIONS} in
 * `redisOptions`). `enableOfflineQueue: false` is required, not a default: while no node is
 * reachable ioredis holds a Cluster's commands in an offline queue of its own, which
 * `commandTimeout` does not cover, so loads and writes would hang.
 */
export const SAFE_CLUSTER_OPTIONS: Readonly<ClusterOptions> = Object.freeze({
  enableOfflineQueue: false,
  // reconnect to the cluster as a whole (every node was lost) as quickly as to a single node
  clusterRetryStrategy: (times: number) => Math.min(2 ** (times - 1) * 50, 400) + Math.floor(Math.random() * 100),
});

/** A Cluster for the store to create: startup nodes and ioredis ClusterOptions. */
export interface RedisClusterConfig {
  /** Startup nodes: a few are enough, ioredis discovers the rest (`{ host, port }` or `'host:port'`). */
  cluster: ClusterNode[];
  /**
   * ioredis ClusterOptions, applied over {@link SAFE_CLUSTER_OPTIONS} (and `redisOptions` over
   * {@link SAFE_REDIS_OPTIONS}). `enableOfflineQueue: true` is refused.
   */
  clusterOptions?: ClusterOptions;
}

export type RedisConnection = Client | string | RedisOptions | RedisClusterConfig;

export function isClient(value: unknown): value is Client {
  return value instanceof Redis || value instanceof Cluster;
}

export function isClusterConfig(value: unknown): value is RedisClusterConfig {
  return !!value && typeof value === 'object' && !isClient(value) && Array.isArray((value as RedisClusterConfig).cluster);
}

/**
 * Most reconnection attempts a client passed in may let a command wait for (SAFE_REDIS_OPTIONS: 1;
 * ioredis' default of 20 is what waited 73 s).
 */
const MAX_RETRIES_PER_REQUEST = 3;

/** What makes a client passed in hang callers while Redis is down; empty when it is safe. */
export function unsafeSettings(client: Client): string[] {
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
  if (client instanceof Cluster && client.options.enableOfflineQueue !== false) {
    problems.push(
      `enableOfflineQueue is ${String(client.options.enableOfflineQueue ?? true)} (must be false: while no node is reachable a Cluster holds commands in its own offline queue, which commandTimeout does not cover)`,
    );
  }
  return problems;
}

/** The client's command timeout (validated for clients passed in; SAFE_REDIS_OPTIONS' otherwise). */
export function commandTimeoutOf(client: Client): number {
  const options = client instanceof Cluster ? (client.options.redisOptions ?? {}) : client.options;
  const timeout = options.commandTimeout;
  return typeof timeout === 'number' && Number.isFinite(timeout) && timeout > 0 ? timeout : (SAFE_REDIS_OPTIONS.commandTimeout as number);
}

/** Creates the client for a URL, RedisOptions (Sentinel included) or a RedisClusterConfig. */
export function createClient(redis: string | RedisOptions | RedisClusterConfig): Client {
  const config = typeof redis === 'string' ? parseRedisUrl(redis) : redis;
  if (typeof config === 'string') return new Redis(config, { ...SAFE_REDIS_OPTIONS });
  if (isClusterConfig(config)) {
    const options = config.clusterOptions ?? {};
    if (config.cluster.length === 0) throw new ConfigError('RedisFlagStore: options.redis.cluster needs at least one startup node');
    if (options.enableOfflineQueue === true) {
      throw new ConfigError(
        'RedisFlagStore: options.redis.clusterOptions.enableOfflineQueue must not be true: while no node is reachable a Cluster holds commands in its own offline queue, ' +
          'which commandTimeout does not cover, so loads and writes would hang. Leave it unset (the store sets false).',
      );
    }
    return new Cluster(config.cluster, {
      ...SAFE_CLUSTER_OPTIONS,
      ...options,
      enableOfflineQueue: false,
      redisOptions: { ...SAFE_REDIS_OPTIONS, ...(options.redisOptions ?? {}) },
    });
  }
  const sentinel = Array.isArray(config.sentinels) && config.sentinels.length > 0;
  return new Redis({ ...SAFE_REDIS_OPTIONS, ...(sentinel ? SAFE_SENTINEL_OPTIONS : {}), ...config });
}

const SCHEMES = /^(rediss?)\+(sentinel|cluster):\/\//i;

/** True for a URL the store parses itself (Sentinel or Cluster), not ioredis. */
export function isTopologyUrl(url: string): boolean {
  return SCHEMES.test(url);
}

/**
 * Reads a Redis URL. `redis://` and `rediss://` are left to ioredis (returned as they are); two
 * more schemes name a topology:
 *
 * - `redis+sentinel://[[user]:password@]host:port[,host:port…]/<master name>[/<db>][?sentinelPassword=…&sentinelUsername=…]`
 *   — the hosts are Sentinels (port 26379 if omitted), the user and password the master's;
 * - `redis+cluster://[[user]:password@]host:port[,host:port…]` — startup nodes of a Cluster
 *   (port 6379 if omitted).
 *
 * `rediss+…` uses TLS (for Sentinel: to the Sentinels and to the master). User, password and
 * query values are percent-decoded.
 */
export function parseRedisUrl(url: string): string | RedisOptions | RedisClusterConfig {
  const scheme = SCHEMES.exec(url);
  if (!scheme) return checkPlainUrl(url);
  const tls = scheme[1]!.toLowerCase() === 'rediss';
  const kind = scheme[2]!.toLowerCase() as 'sentinel' | 'cluster';
  const usage =
    kind === 'sentinel'
      ? `${scheme[1]}+sentinel://[[user]:password@]host:port[,host:port…]/<master name>[/<db>][?sentinelPassword=…&sentinelUsername=…]`
      : `${scheme[1]}+cluster://[[user]:password@]host:port[,host:port…]`;
  const fail = (why: string): never => {
    throw new ConfigError(`Redis URL: ${why} (expected ${usage})`);
  };
  const rest = url.slice(scheme[0].length);
  const hash = rest.indexOf('#');
  if (hash >= 0) fail('a fragment (#…) is not allowed');
  const q = rest.indexOf('?');
  const beforeQuery = q >= 0 ? rest.slice(0, q) : rest;
  const query = new URLSearchParams(q >= 0 ? rest.slice(q + 1) : '');
  const slash = beforeQuery.indexOf('/');
  const authority = slash >= 0 ? beforeQuery.slice(0, slash) : beforeQuery;
  const path = slash >= 0 ? beforeQuery.slice(slash + 1) : '';
  const at = authority.lastIndexOf('@');
  const userInfo = at >= 0 ? authority.slice(0, at) : undefined;
  const hostList = at >= 0 ? authority.slice(at + 1) : authority;
  const decode = (text: string, what: string) => {
    try {
      return decodeURIComponent(text);
    } catch {
      return fail(`${what} is not valid percent-encoding`);
    }
  };
  let username: string | undefined;
  let password: string | undefined;
  if (userInfo !== undefined) {
    const colon = userInfo.indexOf(':');
    username = colon >= 0 ? userInfo.slice(0, colon) : userInfo;
    password = colon >= 0 ? userInfo.slice(colon + 1) : undefined;
    username = username === '' ? undefined : decode(username, 'the user');
    password = password === undefined || password === '' ? undefined : decode(password, 'the password');
  }
  const defaultPort = kind === 'sentinel' ? 26379 : 6379;
  if (hostList === '') fail('no host');
  const hosts = hostList.split(',').map((entry) => {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(entry);
    if (!m) return fail(`"${entry}" is not host[:port]`);
    const port = m[2] === undefined ? defaultPort : Number(m[2]);
    if (port < 1 || port > 65535) fail(`port ${m[2]} is out of range`);
    return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
  });
  const allowed = kind === 'sentinel' ? ['sentinelPassword', 'sentinelUsername'] : [];
  for (const key of query.keys()) if (!allowed.includes(key)) fail(`unknown parameter "${key}"`);
  if (kind === 'cluster') {
    if (path !== '') fail('a Cluster URL has no path (Cluster mode has database 0 only, and no master name)');
    const redisOptions: RedisOptions = {};
    if (username !== undefined) redisOptions.username = username;
    if (password !== undefined) redisOptions.password = password;
    if (tls) redisOptions.tls = {};
    return { cluster: hosts, clusterOptions: { redisOptions } };
  }
  const [name, db, extra] = path.split('/');
  if (!name) fail('no master name in the path');
  if (extra !== undefined) fail('too many path segments');
  const options: RedisOptions = { sentinels: hosts, name: decode(name!, 'the master name') };
  if (db !== undefined && db !== '') {
    if (!/^\d+$/.test(db)) fail(`database "${db}" is not a number`);
    options.db = Number(db);
  }
  if (username !== undefined) options.username = username;
  if (password !== undefined) options.password = password;
  const sentinelPassword = query.get('sentinelPassword');
  const sentinelUsername = query.get('sentinelUsername');
  if (sentinelPassword !== null && sentinelPassword !== '') options.sentinelPassword = sentinelPassword;
  if (sentinelUsername !== null && sentinelUsername !== '') options.sentinelUsername = sentinelUsername;
  if (tls) {
    options.tls = {};
    options.sentinelTLS = {};
    options.enableTLSForSentinelMode = true;
  }
  return options;
}

const PLAIN_USAGE = 'redis://[[user]:password@]host[:port][/db] (rediss:// for TLS), redis+sentinel://… or redis+cluster://…';

/**
 * A `redis://` or `rediss://` URL (or a Unix socket path), checked here so that a typo is a
 * ConfigError at start-up, not a host name ioredis would try to resolve for ever.
 */
function checkPlainUrl(url: string): string {
  if (typeof url !== 'string' || url.trim() === '') throw new ConfigError(`Redis URL: none given (expected ${PLAIN_USAGE})`);
  if (url.startsWith('/')) return url; // a Unix socket path, as ioredis takes it
  if (!/^rediss?:\/\//i.test(url)) {
    throw new ConfigError(`Redis URL: ${JSON.stringify(redactRedisUrl(url))} is not a Redis URL (expected ${PLAIN_USAGE})`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`Redis URL: ${JSON.stringify(redactRedisUrl(url))} is not a valid URL (expected ${PLAIN_USAGE})`);
  }
  if (parsed.hostname === '') throw new ConfigError(`Redis URL: ${JSON.stringify(redactRedisUrl(url))} has no host (expected ${PLAIN_USAGE})`);
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new ConfigError(`Redis URL: database ${JSON.stringify(db)} is not a number (expected ${PLAIN_USAGE})`);
  return url;
}

/**
 * The URL with its password (and any sentinelPassword) replaced by `***`, for messages and logs.
 * A user part without a colon is replaced whole: some clients read it as a password.
 */
export function redactRedisUrl(url: string): string {
  return url
    .replace(/^([a-z+]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@')
    .replace(/^([a-z+]+:\/\/)[^:@/]+@/i, '$1***@')
    .replace(/([?&]sentinelPassword=)[^&#]*/i, '$1***')
    .replace(/^(?![a-z+]+:\/\/)[^/]*@/i, '***@'); // not a URL at all (a typo): whatever precedes an @ may be a password
}

/** Where a client connects, for messages: never a password. */
export function describeTarget(redis: Client | string | RedisOptions | RedisClusterConfig): string {
  const nodes = (list: readonly unknown[]) =>
    list
      .map((n) => (typeof n === 'string' || typeof n === 'number' ? String(n) : `${(n as { host?: string }).host ?? '127.0.0.1'}:${(n as { port?: number }).port ?? 6379}`))
      .join(',');
  if (typeof redis === 'string') return redactRedisUrl(redis);
  if (redis instanceof Cluster) return `Cluster ${nodes((redis as unknown as { startupNodes: unknown[] }).startupNodes ?? [])}`;
  if (isClusterConfig(redis)) return `Cluster ${nodes(redis.cluster)}`;
  const options = redis instanceof Redis ? redis.options : redis;
  if (Array.isArray(options.sentinels) && options.sentinels.length > 0) return `Sentinel master "${options.name ?? 'mymaster'}" via ${nodes(options.sentinels)}`;
  if (options.path) return options.path;
  return `${options.tls ? 'rediss' : 'redis'}://${options.host ?? '127.0.0.1'}:${options.port ?? 6379}`;
}

/**
 * Why Redis could not be used, in a few words a person can act on — "connection refused",
 * "wrong user name or password" — from a connection or command error of ioredis.
 */
export function describeRedisError(error: unknown): string {
  const e = error as { code?: unknown; message?: unknown; name?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : String(error);
  const has = (pattern: RegExp) => pattern.test(code) || pattern.test(message);
  if (has(/ECONNREFUSED/)) return 'connection refused';
  if (has(/ENOTFOUND|EAI_AGAIN|EAI_NONAME/)) {
    const host = /getaddrinfo \S+ (\S+)/.exec(message)?.[1];
    return host ? `host "${host}" not found` : 'host not found';
  }
  if (has(/EHOSTUNREACH|ENETUNREACH/)) return 'host unreachable';
  if (has(/ETIMEDOUT/)) return 'connection timed out';
  if (has(/Command timed out/)) return 'no answer (timed out)';
  if (has(/WRONGPASS|invalid username-password|invalid password/i)) return 'wrong user name or password';
  if (has(/NOAUTH/)) return 'authentication required: give the password in the URL (redis://:password@host:port)';
  if (has(/NOPERM/)) return 'not permitted: the user lacks an ACL permission Rollgate needs';
  if (has(/max number of clients/i)) return 'too many clients connected';
  if (has(/ECONNRESET|EPIPE|Connection is closed/)) return 'connection closed';
  if (e?.name === 'MaxRetriesPerRequestError' || has(/Reached the max retries per request/)) return 'no connection';
  return message;
}
