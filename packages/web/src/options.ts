import type { FlagValue, Logger } from '@openfeature/web-sdk';
import { WebConfigError } from './errors';

/** The part of the WHATWG `EventSource` the provider uses (browsers' own, or the `eventsource` package in Node). */
export interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: 'open' | 'error', listener: (event: Event) => void): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  close(): void;
}
export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

export type FetchLike = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** Headers as an object or as pairs; values that are `undefined` are left out. */
export type HeaderEntries = Record<string, string | undefined> | ReadonlyArray<readonly [string, string]>;

export interface RollgateWebProviderOptions {
  /**
   * Origin (and path prefix) of the server that mounts the OFREP router: requests go to
   * `${baseUrl}/ofrep/v1/...`. @default `location.origin` in a browser (required elsewhere)
   */
  baseUrl?: string;
  /**
   * Called before every request, so a short-lived token is always fresh, e.g.
   * `() => ({ Authorization: \`Bearer ${await auth.getAccessToken()}\` })`. @default none
   */
  headersFactory?: () => HeaderEntries | Promise<HeaderEntries>;
  /**
   * `fetch` credentials mode. `'include'` sends cookies to another origin (cookie-session apps
   * whose API is on a different host); the SSE stream then opens with `withCredentials`.
   * @default 'same-origin' (what `fetch` does)
   */
  credentials?: RequestCredentials;
  /**
   * Server-rendered values for the first paint, e.g. `{ 'fast-payment': true }`. With them,
   * `initialize()` resolves at once and flags resolve with reason `CACHED` until the first
   * response arrives; then ConfigurationChanged lists the keys whose value differed. @default none
   */
  bootstrap?: Readonly<Record<string, FlagValue>>;
  /**
   * How changes are heard. `'sse'`: the server's `eventStreams` (falls back to polling while the
   * stream is down, if `pollInterval` > 0); `'polling'`: only `pollInterval`; `'none'`: only on
   * context change and when the page becomes visible again. @default 'sse'
   */
  changeDetection?: 'sse' | 'polling' | 'none';
  /** Poll every this many ms (0 = never). With SSE, used only while the stream is down. @default 0 */
  pollInterval?: number;
  /** Close the stream after the page has been hidden this long; reopen (and refetch) when it is shown. @default the server's value, else 120 */
  inactivityDelaySec?: number;
  /** Give up on one request after this long. @default 10000 */
  timeoutMs?: number;
  /** Delay before the first attempt to reopen a stream the server refused or lost; doubles up to `maxReconnectDelayMs`, with jitter. @default 1000 */
  reconnectDelayMs?: number;
  /** @default 30000 */
  maxReconnectDelayMs?: number;
  /** Refetch when the page becomes visible (OFREP ADR-0010). @default true */
  refetchOnVisible?: boolean;
  /** `fetch` to use (tests, instrumentation). @default globalThis.fetch */
  fetchImplementation?: FetchLike;
  /** EventSource to use; inject the `eventsource` package where there is none (Node < 22). @default globalThis.EventSource */
  eventSource?: EventSourceConstructor;
  /**
   * `track()`: events posted in batches to the server's events endpoint (`tracking` on its
   * `ofrep()` router or Nest OFREP controller), with the same headers and credentials as the
   * OFREP requests; `false` turns track() into a no-op. @default on, with the defaults below
   */
  tracking?: false | TrackingSettings;
  /**
   * Report uncaught errors and unhandled promise rejections of this page to the events endpoint
   * (while the provider is active; the listeners are removed on close): a fingerprint and a
   * scrubbed, truncated message, never the stack. Each fingerprint at most once per
   * `dedupeMinutes`, at most `maxPerMinute` reports a minute. Needs `tracking`. @default false
   */
  captureErrors?: boolean | CaptureErrorsSettings;
  /**
   * Send a `pageview` event once the provider is ready on this page, and again after each
   * context change (sign-in, sign-out): the denominator of the client error rate. Needs
   * `tracking`. @default true with captureErrors, else false
   */
  pageviews?: boolean;
  logger?: Logger;
}

export interface CaptureErrorsSettings {
  /** Also report unhandled promise rejections. @default true */
  unhandledRejections?: boolean;
  /** One error (one fingerprint) is reported at most once per this many minutes per page. @default 30 */
  dedupeMinutes?: number;
  /** At most this many error reports a minute per page (uncaught and error-boundary reports together); the rest are dropped and counted in one warning. @default 10 */
  maxPerMinute?: number;
  /**
   * Return true to leave an error out (a noisy third-party script). Called with the scrubbed
   * message and what was thrown. Errors whose top stack frame is a browser extension are always
   * left out. @default none
   */
  ignore?: (message: string, error: unknown) => boolean;
}

export interface TrackingSettings {
  /** Path of the events endpoint under `baseUrl`. @default '/rollgate/v1/events' */
  path?: string;
  /** A batch is sent this long after its first event. @default 1000 */
  flushIntervalMs?: number;
  /** ...or as soon as it holds this many events (keep it at most the server's maxEventsPerRequest, 50 by default). @default 20 */
  maxBatchSize?: number;
  /**
   * When the page is hidden or left, send with `navigator.sendBeacon` if it can carry the request:
   * no `headersFactory` (cookies only), an endpoint on the page's origin. Otherwise (and when
   * false) a `fetch` with `keepalive: true`. @default true
   */
  beacon?: boolean;
}

export interface ResolvedTracking {
  path: string;
  flushIntervalMs: number;
  maxBatchSize: number;
  beacon: boolean;
}

export interface ResolvedErrorSettings {
  /** Listen for uncaught errors (captureErrors). */
  listen: boolean;
  unhandledRejections: boolean;
  dedupeMs: number;
  maxPerMinute: number;
  ignore: ((message: string, error: unknown) => boolean) | undefined;
}

export interface ResolvedOptions {
  baseUrl: string;
  headersFactory: (() => HeaderEntries | Promise<HeaderEntries>) | undefined;
  credentials: RequestCredentials | undefined;
  bootstrap: Readonly<Record<string, FlagValue>> | undefined;
  changeDetection: 'sse' | 'polling' | 'none';
  pollInterval: number;
  inactivityDelaySec: number | undefined;
  timeoutMs: number;
  reconnectDelayMs: number;
  maxReconnectDelayMs: number;
  refetchOnVisible: boolean;
  fetch: FetchLike;
  eventSource: EventSourceConstructor | undefined;
  tracking: ResolvedTracking | undefined;
  /** How error reports are filtered (used by captureErrors and by the React error boundary). */
  errors: ResolvedErrorSettings;
  pageviews: boolean;
  logger: Logger | undefined;
}

const CREDENTIALS = ['omit', 'same-origin', 'include'];
const CHANGE_DETECTION = ['sse', 'polling', 'none'];

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new WebConfigError(`options.${name} must be a number >= 0, got ${String(value)}`);
  return value;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const n = nonNegative(name, value, fallback);
  if (n === 0) throw new WebConfigError(`options.${name} must be > 0`);
  return n;
}

/** Checks the options once, at construction, and fills in the defaults. */
export function resolveOptions(options: RollgateWebProviderOptions = {}): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new WebConfigError('options must be an object');
  const location = (globalThis as { location?: { origin?: string } }).location;
  const rawBase = options.baseUrl ?? (location?.origin && location.origin !== 'null' ? location.origin : undefined);
  if (rawBase === undefined) throw new WebConfigError('options.baseUrl is required outside a browser (e.g. "http://localhost:3000", the server that mounts ofrep())');
  let baseUrl: string;
  try {
    baseUrl = new URL(rawBase).href.replace(/\/+$/, '');
  } catch {
    throw new WebConfigError(`options.baseUrl must be an absolute URL such as "https://app.example.com", got "${rawBase}"`);
  }
  if (!/^https?:$/.test(new URL(baseUrl).protocol)) throw new WebConfigError(`options.baseUrl must be http(s), got "${rawBase}"`);
  if (options.headersFactory !== undefined && typeof options.headersFactory !== 'function') throw new WebConfigError('options.headersFactory must be a function returning headers');
  if (options.credentials !== undefined && !CREDENTIALS.includes(options.credentials)) throw new WebConfigError(`options.credentials must be one of ${CREDENTIALS.join(', ')}, got "${String(options.credentials)}"`);
  if (options.changeDetection !== undefined && !CHANGE_DETECTION.includes(options.changeDetection)) throw new WebConfigError(`options.changeDetection must be one of ${CHANGE_DETECTION.join(', ')}, got "${String(options.changeDetection)}"`);
  if (options.bootstrap !== undefined) {
    if (typeof options.bootstrap !== 'object' || options.bootstrap === null || Array.isArray(options.bootstrap)) throw new WebConfigError('options.bootstrap must be an object of flag key → value');
    for (const [key, value] of Object.entries(options.bootstrap)) {
      if (value === undefined || value === null || typeof value === 'function') throw new WebConfigError(`options.bootstrap["${key}"] must be a boolean, string, number or object, got ${String(value)}`);
    }
  }
  const fetchImpl = options.fetchImplementation ?? (typeof globalThis.fetch === 'function' ? globalThis.fetch.bind(globalThis) : undefined);
  if (!fetchImpl) throw new WebConfigError('no fetch: pass options.fetchImplementation');
  const credentials = options.credentials;
  const reconnectDelayMs = nonNegative('reconnectDelayMs', options.reconnectDelayMs, 1000);
  const maxReconnectDelayMs = nonNegative('maxReconnectDelayMs', options.maxReconnectDelayMs, 30_000);
  if (maxReconnectDelayMs < reconnectDelayMs) throw new WebConfigError(`options.maxReconnectDelayMs (${maxReconnectDelayMs}) must be >= options.reconnectDelayMs (${reconnectDelayMs})`);
  const inactivity = options.inactivityDelaySec;
  if (inactivity !== undefined && (typeof inactivity !== 'number' || !(inactivity > 0))) throw new WebConfigError(`options.inactivityDelaySec must be a number > 0, got ${String(inactivity)}`);
  const tracking = resolveTracking(options.tracking);
  const errors = resolveErrors(options.captureErrors);
  if (errors.listen && !tracking) throw new WebConfigError('options.captureErrors needs tracking: error reports are sent to the events endpoint (remove tracking: false)');
  if (options.pageviews !== undefined && typeof options.pageviews !== 'boolean') throw new WebConfigError('options.pageviews must be a boolean');
  if (options.pageviews === true && !tracking) throw new WebConfigError('options.pageviews needs tracking: pageviews are sent to the events endpoint (remove tracking: false)');
  return {
    tracking,
    errors,
    pageviews: tracking !== undefined && (options.pageviews ?? errors.listen),
    baseUrl,
    headersFactory: options.headersFactory,
    credentials,
    bootstrap: options.bootstrap,
    changeDetection: options.changeDetection ?? 'sse',
    pollInterval: nonNegative('pollInterval', options.pollInterval, 0),
    inactivityDelaySec: inactivity,
    timeoutMs: positive('timeoutMs', options.timeoutMs, 10_000),
    reconnectDelayMs,
    maxReconnectDelayMs,
    refetchOnVisible: options.refetchOnVisible ?? true,
    fetch: credentials ? (input, init) => fetchImpl(input, { ...init, credentials }) : fetchImpl,
    eventSource: options.eventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource,
    logger: options.logger,
  };
}

function resolveTracking(tracking: RollgateWebProviderOptions['tracking']): ResolvedTracking | undefined {
  if (tracking === false) return undefined;
  if (tracking !== undefined && (typeof tracking !== 'object' || tracking === null)) throw new WebConfigError('options.tracking must be false or { path?, flushIntervalMs?, maxBatchSize?, beacon? }');
  const path = tracking?.path ?? '/rollgate/v1/events';
  if (typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//')) throw new WebConfigError(`options.tracking.path must be a path under baseUrl starting with "/", got "${String(path)}"`);
  const maxBatchSize = tracking?.maxBatchSize ?? 20;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1 || maxBatchSize > 1000) throw new WebConfigError(`options.tracking.maxBatchSize must be an integer from 1 to 1000, got ${String(maxBatchSize)}`);
  if (tracking?.beacon !== undefined && typeof tracking.beacon !== 'boolean') throw new WebConfigError('options.tracking.beacon must be a boolean');
  return { path, flushIntervalMs: positive('tracking.flushIntervalMs', tracking?.flushIntervalMs, 1000), maxBatchSize, beacon: tracking?.beacon ?? true };
}

function resolveErrors(capture: RollgateWebProviderOptions['captureErrors']): ResolvedErrorSettings {
  if (capture !== undefined && typeof capture !== 'boolean' && (typeof capture !== 'object' || capture === null)) {
    throw new WebConfigError('options.captureErrors must be a boolean or { unhandledRejections?, dedupeMinutes?, maxPerMinute?, ignore? }');
  }
  const settings = typeof capture === 'object' ? capture : {};
  if (settings.unhandledRejections !== undefined && typeof settings.unhandledRejections !== 'boolean') throw new WebConfigError('options.captureErrors.unhandledRejections must be a boolean');
  if (settings.ignore !== undefined && typeof settings.ignore !== 'function') throw new WebConfigError('options.captureErrors.ignore must be a function (message, error) => boolean');
  const maxPerMinute = settings.maxPerMinute ?? 10;
  if (!Number.isInteger(maxPerMinute) || maxPerMinute < 1 || maxPerMinute > 1000) throw new WebConfigError(`options.captureErrors.maxPerMinute must be an integer from 1 to 1000, got ${String(maxPerMinute)}`);
  return {
    listen: capture === true || typeof capture === 'object',
    unhandledRejections: settings.unhandledRejections ?? true,
    dedupeMs: nonNegative('captureErrors.dedupeMinutes', settings.dedupeMinutes, 30) * 60_000,
    maxPerMinute,
    ignore: settings.ignore,
  };
}

/** Normalises what `headersFactory` returned into pairs for `Headers`. */
export function headerPairs(entries: HeaderEntries | undefined | null): [string, string][] {
  if (!entries) return [];
  if (Array.isArray(entries)) return entries.map(([k, v]) => [k, v]);
  return Object.entries(entries as Record<string, string | undefined>).filter((e): e is [string, string] => typeof e[1] === 'string');
}
