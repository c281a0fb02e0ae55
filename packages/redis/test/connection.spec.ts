import { Cluster, Redis } from 'ioredis';
import { ConfigError, parseRedisUrl, RedisFlagStore, redactRedisUrl, SAFE_CLUSTER_OPTIONS, SAFE_REDIS_OPTIONS, SAFE_SENTINEL_OPTIONS } from '@rollgate/redis';

// Topology URLs and the options the store derives from them — nothing connects here (lazyConnect
// where a client is made, closed at once).

describe('parseRedisUrl', () => {
  it('leaves redis:// and rediss:// to ioredis', () => {
    expect(parseRedisUrl('redis://:pw@127.0.0.1:6379/2')).toBe('redis://:pw@127.0.0.1:6379/2');
    expect(parseRedisUrl('rediss://redis.internal')).toBe('rediss://redis.internal');
  });

  it('reads redis+sentinel://: Sentinels (26379 by default), the master name, db, the master\'s and the Sentinels\' credentials', () => {
    expect(parseRedisUrl('redis+sentinel://s1:26380,s2,[::1]:26381/mymaster')).toEqual({
      sentinels: [
        { host: 's1', port: 26380 },
        { host: 's2', port: 26379 },
        { host: '::1', port: 26381 },
      ],
      name: 'mymaster',
    });
    expect(parseRedisUrl('redis+sentinel://app:p%40ss@s1:26379/mymaster/3?sentinelPassword=s%26cret&sentinelUsername=watcher')).toEqual({
      sentinels: [{ host: 's1', port: 26379 }],
      name: 'mymaster',
      db: 3,
      username: 'app',
      password: 'p@ss',
      sentinelPassword: 's&cret',
      sentinelUsername: 'watcher',
    });
    expect(parseRedisUrl('rediss+sentinel://:pw@s1/m')).toEqual({
      sentinels: [{ host: 's1', port: 26379 }],
      name: 'm',
      password: 'pw',
      tls: {},
      sentinelTLS: {},
      enableTLSForSentinelMode: true,
    });
  });

  it('reads redis+cluster://: startup nodes (6379 by default) and credentials for every node', () => {
    expect(parseRedisUrl('redis+cluster://10.0.0.1:7000,10.0.0.2')).toEqual({
      cluster: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 6379 },
      ],
      clusterOptions: { redisOptions: {} },
    });
    expect(parseRedisUrl('rediss+cluster://default:pw@n1:7000')).toEqual({
      cluster: [{ host: 'n1', port: 7000 }],
      clusterOptions: { redisOptions: { username: 'default', password: 'pw', tls: {} } },
    });
  });

  it.each([
    ['redis+sentinel://s1:26379', 'no master name in the path'],
    ['redis+sentinel://s1/m/x', 'database "x" is not a number'],
    ['redis+sentinel://s1/m/0/extra', 'too many path segments'],
    ['redis+sentinel://s1/m?password=x', 'unknown parameter "password"'],
    ['redis+sentinel:///m', 'no host'],
    ['redis+sentinel://s1:99999/m', 'port 99999 is out of range'],
    ['redis+sentinel://s1:x/m', '"s1:x" is not host[:port]'],
    ['redis+cluster://n1/0', 'a Cluster URL has no path (Cluster mode has database 0 only, and no master name)'],
    ['redis+cluster://n1#frag', 'a fragment (#…) is not allowed'],
  ])('refuses %s: %s', (url, why) => {
    expect(() => parseRedisUrl(url)).toThrow(ConfigError);
    expect(() => parseRedisUrl(url)).toThrow(`Redis URL: ${why} (expected `);
  });

  it('redacts passwords for messages', () => {
    expect(redactRedisUrl('redis+sentinel://app:secret@s1,s2/m?sentinelPassword=other&x=1')).toBe('redis+sentinel://app:***@s1,s2/m?sentinelPassword=***&x=1');
    expect(redactRedisUrl('redis://:secret@host:6379')).toBe('redis://:***@host:6379');
    expect(redactRedisUrl('redis://host:6379')).toBe('redis://host:6379');
    // a user part without a colon, and strings that are not URLs at all, may hold a password too
    expect(redactRedisUrl('redis://secret@host:6379')).toBe('redis://***@host:6379');
    expect(redactRedisUrl('user:secret@host:6379')).toBe('***@host:6379');
  });

  it.each([
    ['notaurl', '"notaurl" is not a Redis URL'],
    ['localhost:6379', '"localhost:6379" is not a Redis URL'],
    ['pw@redis.internal:6379', '"***@redis.internal:6379" is not a Redis URL'],
    ['http://redis.internal:6379', '"http://redis.internal:6379" is not a Redis URL'],
    ['redis://:secret@', 'is not a valid URL'],
    ['redis://host:6379/x', 'database "x" is not a number'],
    ['', 'none given'],
  ])('refuses %j before anything connects: %s', (url, why) => {
    expect(() => parseRedisUrl(url)).toThrow(ConfigError);
    expect(() => parseRedisUrl(url)).toThrow(why);
    expect(() => new RedisFlagStore({ redis: url })).toThrow(why);
  });

  it('takes a Unix socket path as ioredis does', () => {
    expect(parseRedisUrl('/var/run/redis.sock')).toBe('/var/run/redis.sock');
  });
});

describe('clients the store creates', () => {
  const stores: RedisFlagStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  const made = (redis: ConstructorParameters<typeof RedisFlagStore>[0]['redis'], extra = {}) => {
    const s = new RedisFlagStore({ redis, ...extra });
    stores.push(s);
    return s.connection;
  };

  it('Sentinel: the safe defaults, the Sentinel ones, then yours', () => {
    const a = made({ sentinels: [{ host: '127.0.0.1', port: 1 }], name: 'm', lazyConnect: true, commandTimeout: 700 }) as Redis;
    expect(a).toBeInstanceOf(Redis);
    expect(a.options).toMatchObject({ name: 'm', commandTimeout: 700, maxRetriesPerRequest: SAFE_REDIS_OPTIONS.maxRetriesPerRequest, sentinelCommandTimeout: SAFE_SENTINEL_OPTIONS.sentinelCommandTimeout });
    expect(a.options.reconnectOnError!(new Error('READONLY You can\'t write against a read only replica.'))).toBe(1);
    expect(a.options.reconnectOnError!(new Error('ERR other'))).toBe(false);
  });

  it('Cluster: enableOfflineQueue false, the safe node options under yours', () => {
    const c = made({ cluster: [{ host: '127.0.0.1', port: 1 }], clusterOptions: { lazyConnect: true, redisOptions: { commandTimeout: 800 } } }) as Cluster;
    expect(c).toBeInstanceOf(Cluster);
    expect(c.options.enableOfflineQueue).toBe(false);
    expect(c.options.clusterRetryStrategy).toBe(SAFE_CLUSTER_OPTIONS.clusterRetryStrategy);
    expect(c.options.redisOptions).toMatchObject({ commandTimeout: 800, maxRetriesPerRequest: 1, connectTimeout: 2000 });
  });

  it('refuses bad minReplicas, replicationTimeoutMs and clusterNotices with a ConfigError naming the option', () => {
    const url = 'redis://127.0.0.1:1';
    expect(() => new RedisFlagStore({ redis: url, minReplicas: -1 })).toThrow('options.minReplicas must be an integer from 0 to 1000');
    expect(() => new RedisFlagStore({ redis: url, minReplicas: 1, replicationTimeoutMs: 1000 })).toThrow(
      "options.replicationTimeoutMs must be an integer from 1 to below the client's commandTimeout (1000 ms)",
    );
    expect(() => new RedisFlagStore({ redis: url, clusterNotices: 'broadcast' as never })).toThrow("options.clusterNotices must be 'sharded' or 'classic'");
    expect(() => new RedisFlagStore({ redis: 'redis+sentinel://s1' })).toThrow(ConfigError);
  });
});
