import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { MemoryFlagStore, RedisFlagStore, VersionConflictError, type BaseFlagStore, type FlagChange } from '@rollgate/redis';

/** The committed seed: admins, the vip-agencies segment, then 20% of everyone else. */
export const FLAGS_FILE = path.resolve(__dirname, '../flags.json');
export const DEMO_ENV = 'demo';
/** Where the demo looks for a Redis when none is asked for (REDIS_URL unset). */
export const LOCAL_REDIS_URL = 'redis://127.0.0.1:6379';

export interface DemoStore {
  store: BaseFlagStore;
  kind: 'redis' | 'memory';
  /** Whether the store answered at start-up (a Redis that was asked for is used even when it did not). */
  answering: boolean;
  /** The first line the demo prints. */
  description: string;
}

/** Which store the demo was asked for: a Redis (REDIS_URL), the embedded one, or whatever is found locally. */
export type StoreChoice = { redisUrl: string } | { memory: true } | { local: string };

/** The URL without its password, for printing. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparseable REDIS_URL)';
  }
}

/**
 * The `rollgate` command line for the demo's store, for the hints it prints: `--redis <url>`
 * unless the URL is the CLI's own default (another terminal need not have REDIS_URL set), never
 * with the URL's password (printed lines end up in logs and screenshots).
 */
export function rollgateCommand(choice: StoreChoice): { command: string; passwordLeftOut: boolean } {
  const url = 'redisUrl' in choice ? choice.redisUrl : 'local' in choice ? choice.local : undefined;
  // by hand, not new URL(): Sentinel and Cluster URLs list several hosts, which URL refuses;
  // everything up to the last '@' is user info, so a password with odd characters never shows
  const m = url === undefined ? null : /^([a-z][a-z0-9+.-]*:\/\/)(.*)$/i.exec(url);
  let shown: string | undefined;
  let passwordLeftOut = false;
  if (m) {
    const at = m[2]!.lastIndexOf('@');
    const [user, ...password] = at < 0 ? [''] : m[2]!.slice(0, at).split(':');
    passwordLeftOut = password.join(':') !== '';
    shown = `${m[1]}${user ? `${user}@` : ''}${m[2]!.slice(at + 1).replace(/\/$/, '')}`;
  }
  const redis = shown === undefined || shown === LOCAL_REDIS_URL ? '' : ` --redis ${/^[\w@%+=:,./-]+$/.test(shown) ? shown : `'${shown.replace(/'/g, `'\\''`)}'`}`;
  return { command: `npx rollgate${redis} --env ${DEMO_ENV}`, passwordLeftOut };
}

/** Whether a Redis answers PING at `url` within about a second (no retries, no queueing). */
export async function redisAnswers(url: string): Promise<boolean> {
  let probe: Redis;
  try {
    // disconnectTimeout 0: a refused socket would otherwise keep a 2 s timer (ioredis' default) alive
    probe = new Redis(url, { lazyConnect: true, connectTimeout: 1000, commandTimeout: 1000, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, disconnectTimeout: 0 });
  } catch {
    return false; // not a Redis URL
  }
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/**
 * The demo's store. A Redis that was asked for (REDIS_URL) is ALWAYS the store, even when it does
 * not answer yet: a seeded in-memory copy would ignore what is stored there (a kill switch another
 * instance or the CLI set), and the guards answer 503 until Redis answers, as the library does.
 * The embedded store is used only when asked for, or when nothing was asked for and no Redis
 * answers at the local address.
 */
export async function openDemoStore(choice: StoreChoice): Promise<DemoStore> {
  const namespace = `(namespace rollgate:{${DEMO_ENV}})`;
  if ('redisUrl' in choice) {
    const shown = redactUrl(choice.redisUrl);
    const answering = await redisAnswers(choice.redisUrl);
    return {
      store: new RedisFlagStore({ redis: choice.redisUrl, env: DEMO_ENV }),
      kind: 'redis',
      answering,
      description: answering
        ? `store: Redis at ${shown} ${namespace} — shared with the CLI and every other instance`
        : `store: Redis at ${shown} ${namespace} — NOT ANSWERING yet: flag checks answer 503 until it does (REDIS_URL is set, so no in-memory copy is used)`,
    };
  }
  if ('local' in choice && (await redisAnswers(choice.local))) {
    return {
      store: new RedisFlagStore({ redis: choice.local, env: DEMO_ENV }),
      kind: 'redis',
      answering: true,
      description: `store: Redis at ${redactUrl(choice.local)} ${namespace} (found there; REDIS_URL is not set) — shared with the CLI and every other instance`,
    };
  }
  return {
    store: new MemoryFlagStore(),
    kind: 'memory',
    answering: true,
    description:
      'local' in choice
        ? `store: embedded in-memory (REDIS_URL is not set and no Redis answered at ${redactUrl(choice.local)}) — flags live in this process until it stops; set REDIS_URL to share them with the CLI`
        : 'store: embedded in-memory (BOOKING_STORE=memory) — flags live in this process until it stops; set REDIS_URL instead to share them with the CLI',
  };
}

export type SeedOutcome = { seeded: true; version: number } | { seeded: false; version: number; hasFastPayment: boolean };

/**
 * Writes flags.json into the store only when the namespace is EMPTY (version 0), pinned to
 * version 0: a namespace someone already changed (kill switch, rollout %) keeps its state across
 * restarts, and of two demos starting at once exactly one seeds.
 */
export async function seedIfEmpty(store: BaseFlagStore, file = FLAGS_FILE): Promise<SeedOutcome> {
  const current = await store.load();
  if (current.version === 0) {
    const set = JSON.parse(readFileSync(file, 'utf8')) as { flags?: Record<string, unknown>; $evaluators?: Record<string, unknown> };
    const changes: FlagChange[] = [
      ...Object.entries(set.$evaluators ?? {}).map(([key, definition]) => ({ kind: 'evaluator' as const, key, definition })),
      ...Object.entries(set.flags ?? {}).map(([key, definition]) => ({ kind: 'flag' as const, key, definition })),
    ];
    try {
      const { version } = await store.apply(changes, { actor: 'booking-api', reason: `seed from ${path.relative(process.cwd(), file) || file}`, expectedVersion: 0, action: 'seed' });
      return { seeded: true, version };
    } catch (e) {
      if (!(e instanceof VersionConflictError)) throw e; // another instance seeded first: keep theirs
    }
  }
  const now = await store.load();
  return { seeded: false, version: now.version, hasFastPayment: Object.prototype.hasOwnProperty.call(now.flags, 'fast-payment') };
}
