import { ConfigError } from '@rollgate/redis';
import type { Identity } from './identity';

// Trusted attributes the app knows about a caller (bookings this month, lifetime value, a cohort
// computed by a batch job) added to the evaluation context on the server, after the token is
// verified: rules can target behaviour, and a client can never claim it.

/** Adds server-side attributes of the verified caller to the evaluation context. */
export interface EnrichmentOptions {
  /**
   * The context names `load` may set, e.g. ['bookingsThisMonth']. Anything else it returns is
   * dropped; these names also become the identity's own, so an OFREP client can never send them.
   */
  attributes: readonly string[];
  /**
   * Reads the caller's attributes from your data (a database, a cache, a service): never from
   * the request. Values must be strings, finite numbers, booleans or arrays of them; others are
   * dropped. Called at most once per caller per `ttlMs` (concurrent requests share one call).
   */
  load: (who: Identity) => Promise<Record<string, unknown>> | Record<string, unknown>;
  /** How long a caller's attributes are reused before `load` runs again. @default 60000 */
  ttlMs?: number;
  /**
   * Longest a request waits for `load`. After it the request goes on without the attributes (as
   * for a failed load); a late answer still fills the cache for the next request. @default 200
   */
  timeoutMs?: number;
  /** After a failed or timed-out load, how long that caller goes without the attributes before `load` is tried again. @default 5000 */
  retryAfterMs?: number;
  /** Callers whose attributes are kept (least recently used dropped first). @default 10000 */
  maxEntries?: number;
  /** Receives one line per failed or timed-out load: the subject and the error, never the values. @default silent */
  logger?: { warn(message: string): void };
  /** Clock in ms, for tests. @default Date.now */
  now?: () => number;
}

type Value = string | number | boolean | readonly (string | number | boolean)[];
type Attributes = Readonly<Record<string, Value>>;

interface Entry {
  /** The attributes (empty after a failure: the caller goes without them). */
  attributes: Attributes;
  expiresAt: number;
}

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);
const EMPTY: Attributes = Object.freeze({});
const MAX_STRING = 1024;
const MAX_ARRAY = 256;

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ConfigError(`identity: enrich.${name} must be a positive number of milliseconds, got ${String(v)}`);
  return v;
}

function primitive(value: unknown): string | number | boolean | undefined {
  if (typeof value === 'string') return value.length <= MAX_STRING ? value : undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'boolean') return value;
  return undefined;
}

/**
 * The enrichment step of an identity: a TTL cache in front of `load`, one call in flight per
 * caller, a timeout, and an allow-list copy of what comes back. A failure is never an error for
 * the request: the caller's context simply lacks the attributes (see {@link EnrichmentOptions}).
 */
export class Enrichment {
  readonly attributes: readonly string[];
  private readonly load: EnrichmentOptions['load'];
  private readonly ttlMs: number;
  private readonly timeoutMs: number;
  private readonly retryAfterMs: number;
  private readonly maxEntries: number;
  private readonly logger: EnrichmentOptions['logger'];
  private readonly now: () => number;
  /** subject → entry; a Map keeps insertion order, so re-inserting on use makes it an LRU. */
  private readonly cache = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<Attributes>>();

  constructor(options: EnrichmentOptions, reserved: ReadonlySet<string>) {
    if (!options || typeof options !== 'object') throw new ConfigError('identity: enrich must be { attributes, load }');
    if (typeof options.load !== 'function') throw new ConfigError('identity: enrich.load(identity) is required: it reads the caller\'s attributes from your data');
    if (!Array.isArray(options.attributes) || options.attributes.length === 0) {
      throw new ConfigError("identity: enrich.attributes must list the context names load() may set, e.g. ['bookingsThisMonth']");
    }
    for (const name of options.attributes) {
      if (typeof name !== 'string' || name === '' || FORBIDDEN.has(name) || name.startsWith('$')) throw new ConfigError(`identity: enrich.attributes names an invalid attribute ${JSON.stringify(name)}`);
      if (reserved.has(name)) throw new ConfigError(`identity: enrich.attributes may not include "${name}": the verified token's claims set it`);
    }
    if (new Set(options.attributes).size !== options.attributes.length) throw new ConfigError('identity: enrich.attributes lists a name twice');
    this.attributes = Object.freeze([...options.attributes]);
    this.load = options.load;
    this.ttlMs = positive('ttlMs', options.ttlMs, 60_000);
    this.timeoutMs = positive('timeoutMs', options.timeoutMs, 200);
    this.retryAfterMs = positive('retryAfterMs', options.retryAfterMs, 5_000);
    const maxEntries = options.maxEntries ?? 10_000;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new ConfigError(`identity: enrich.maxEntries must be a positive integer, got ${String(maxEntries)}`);
    this.maxEntries = maxEntries;
    if (options.logger !== undefined && typeof options.logger?.warn !== 'function') throw new ConfigError('identity: enrich.logger must have a warn(message) method');
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
  }

  /** The caller's attributes: cached, or loaded (waiting at most `timeoutMs`); empty on failure. */
  attributesOf(who: Identity): Promise<Attributes> {
    const key = who.subject;
    const cached = this.cache.get(key);
    if (cached && cached.expiresAt > this.now()) {
      this.cache.delete(key); // most recently used last
      this.cache.set(key, cached);
      return Promise.resolve(cached.attributes);
    }
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.fetch(who);
      this.inFlight.set(key, pending);
      void pending.then(() => this.inFlight.delete(key));
    }
    return pending;
  }

  /**
   * Runs `load` once and settles within timeoutMs: with the (allow-listed) answer, kept for
   * ttlMs, or empty — kept for retryAfterMs — when it fails or is late. A late answer that
   * arrives afterwards still replaces the empty entry.
   */
  private fetch(who: Identity): Promise<Attributes> {
    const key = who.subject;
    return new Promise<Attributes>((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        this.logger?.warn(`rollgate: enrich.load for "${key}" took longer than ${this.timeoutMs} ms; evaluating without ${this.attributes.join(', ')}`);
        this.remember(key, EMPTY, this.retryAfterMs);
        resolve(EMPTY);
      }, this.timeoutMs);
      Promise.resolve()
        .then(() => this.load(who))
        .then(
          (loaded) => {
            const attributes = this.pick(loaded);
            this.remember(key, attributes, this.ttlMs);
            return attributes;
          },
          (e: unknown) => {
            if (!settled) this.logger?.warn(`rollgate: enrich.load failed for "${key}" (${(e as Error)?.message ?? String(e)}); evaluating without ${this.attributes.join(', ')} for ${this.retryAfterMs} ms`);
            if (!settled) this.remember(key, EMPTY, this.retryAfterMs);
            return EMPTY;
          },
        )
        .catch((e: unknown) => {
          // pick() refused the answer (not an object)
          if (!settled) this.logger?.warn(`rollgate: enrich.load for "${key}" returned no attributes object (${(e as Error)?.message ?? String(e)})`);
          if (!settled) this.remember(key, EMPTY, this.retryAfterMs);
          return EMPTY;
        })
        .then((attributes) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(attributes);
        });
    });
  }

  private remember(key: string, attributes: Attributes, ttl: number): void {
    this.cache.delete(key);
    this.cache.set(key, { attributes, expiresAt: this.now() + ttl });
    while (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
  }

  /** The allow-listed names only, primitive values of bounded size: never a copy of what load returned. */
  private pick(loaded: unknown): Attributes {
    if (loaded === null || typeof loaded !== 'object' || Array.isArray(loaded)) throw new TypeError('load() must return an object of attributes');
    const out: Record<string, Value> = {};
    for (const name of this.attributes) {
      if (!Object.prototype.hasOwnProperty.call(loaded, name)) continue;
      const value = (loaded as Record<string, unknown>)[name];
      if (Array.isArray(value)) {
        out[name] = Object.freeze(value.slice(0, MAX_ARRAY).map(primitive).filter((v): v is string | number | boolean => v !== undefined));
      } else {
        const v = primitive(value);
        if (v !== undefined) out[name] = v;
      }
    }
    return Object.freeze(out);
  }
}
