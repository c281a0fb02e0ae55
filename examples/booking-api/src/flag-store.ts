import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { MemoryFlagStore, RedisFlagStore, VersionConflictError, type BaseFlagStore, type FlagChange } from '@rollgate/redis';

/** The committed seed: admins, the vip-agencies segment, then 20% of everyone else. */
export const FLAGS_FILE = path.resolve(__dirname, '../flags.json');
export const DEMO_ENV = 'demo';

export interface DemoStore {
  store: BaseFlagStore;
  kind: 'redis' | 'memory';
  /** The first line the demo prints. */
  description: string;
}

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

/** Whether a Redis answers PING at `url` within about a second (no retries, no queueing). */
export async function redisAnswers(url: string): Promise<boolean> {
  let probe: Redis;
  try {
    probe = new Redis(url, { lazyConnect: true, connectTimeout: 1000, commandTimeout: 1000, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
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

/** Redis at `redisUrl` when it answers, otherwise an embedded in-memory store. */
export async function openDemoStore(redisUrl: string): Promise<DemoStore> {
  const shown = redactUrl(redisUrl);
  if (await redisAnswers(redisUrl)) {
    return {
      store: new RedisFlagStore({ redis: redisUrl, env: DEMO_ENV }),
      kind: 'redis',
      description: `store: Redis at ${shown} (namespace rollgate:{${DEMO_ENV}}) — shared with the CLI and every other instance`,
    };
  }
  return {
    store: new MemoryFlagStore(),
    kind: 'memory',
    description: `store: embedded in-memory (no Redis answered at ${shown}) — flags live in this process until it stops; set REDIS_URL to share them with the CLI`,
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
