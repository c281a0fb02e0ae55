import type { EvaluationContext, Logger, TrackingEventDetails } from '@openfeature/web-sdk';
import type { ErrorEventBody } from './error-capture';
import { headerPairs, type ResolvedOptions, type ResolvedTracking } from './options';
import type { FeedbackEventBody } from './signals';

// The web provider's track(): events batched in memory and posted to the server's events
// endpoint (beside OFREP, same identity), which attributes them to the variants IT evaluates for
// the caller. A batch is sent after `flushIntervalMs` or at `maxBatchSize` events, and at once
// when the page is hidden or left (keepalive fetch, or sendBeacon where it needs no headers).
// Nothing here throws into the app: what the server refuses is dropped and warned about once.
// Besides track()'s named events, the batch carries the provider's own signals: pageviews, error
// reports and feedback (errors and feedback are sent promptly rather than after flushIntervalMs).

/** One event of a request body: a tracked event, or one of the provider's signals (by `type`). */
export type WireEvent = { name: string; value?: number } | { type: 'pageview' } | ErrorEventBody | FeedbackEventBody;

/** Errors and feedback wait at most this long (less if flushIntervalMs is shorter): a burst of errors still goes in one request. */
export const PROMPT_FLUSH_MS = 100;

/** Headers asked for when a batch starts: the token of the user the events are from. */
type HeadersResult = { ok: true; pairs: [string, string][] } | { ok: false; error: unknown };

interface Batch {
  /** The context the events were tracked in (JSON): a change starts a new batch. */
  key: string;
  context: EvaluationContext;
  events: WireEvent[];
  headers: Promise<HeadersResult>;
}

/** Warnings remembered (each said once); beyond this many, new ones are not said at all. */
const MAX_WARNINGS = 100;

export class EventBatcher {
  private batch: Batch | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** When the timer fires (Date.now() ms). */
  private due = 0;
  /** The server has no events endpoint (404): nothing more is sent. */
  private disabled = false;
  /** 429: nothing is sent (events are dropped) before this time, ms. */
  private pausedUntil = 0;
  private readonly warned = new Set<string>();
  private listening: { hidden: () => void; pagehide: () => void } | undefined;
  private closed = false;
  private readonly url: string;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly settings: ResolvedTracking,
  ) {
    this.url = `${options.baseUrl}${settings.path}`;
  }

  /** provider.track(): never throws. */
  track(name: string, context: EvaluationContext, details: TrackingEventDetails | undefined): void {
    try {
      if (typeof name !== 'string' || name === '') {
        if (!this.closed && !this.disabled) this.warnOnce('bad-name', 'track() needs a non-empty event name; event dropped');
        return;
      }
      const event: { name: string; value?: number } = { name };
      const value = details?.value;
      if (typeof value === 'number' && Number.isFinite(value)) event.value = value;
      this.add(event, context, false);
    } catch (error) {
      this.warnOnce('internal', `track("${String(name)}") failed: ${describe(error)}; event dropped`);
    }
  }

  /** One of the provider's signals (pageview, error, feedback); `prompt`: sent within PROMPT_FLUSH_MS. Never throws. Returns whether it was queued. */
  enqueue(event: WireEvent, context: EvaluationContext, prompt: boolean): boolean {
    try {
      return this.add(event, context, prompt);
    } catch (error) {
      this.warnOnce('internal', `an event could not be queued (${describe(error)}); dropped`);
      return false;
    }
  }

  private add(event: WireEvent, context: EvaluationContext, prompt: boolean): boolean {
    if (this.closed || this.disabled) return false;
    if (Date.now() < this.pausedUntil) {
      this.warnOnce('paused', `the server asked to slow down (429); events are dropped until ${new Date(this.pausedUntil).toISOString()}`);
      return false;
    }
    const key = JSON.stringify(context ?? {});
    if (this.batch && this.batch.key !== key) this.flush(false); // another user or context: its own batch, its own headers
    if (!this.batch) {
      this.batch = { key, context: context ?? {}, events: [], headers: this.headers() };
      this.listen();
    }
    this.batch.events.push(event);
    if (this.batch.events.length >= this.settings.maxBatchSize) this.flush(false);
    else this.schedule(prompt ? Math.min(PROMPT_FLUSH_MS, this.settings.flushIntervalMs) : this.settings.flushIntervalMs);
    return true;
  }

  /** The pending batch is sent in `delay` ms at the latest (an earlier timer is kept). */
  private schedule(delay: number): void {
    const due = Date.now() + delay;
    if (this.timer !== undefined && this.due <= due) return;
    clearTimeout(this.timer);
    this.due = due;
    this.timer = setTimeout(() => this.flush(false), delay);
  }

  /**
   * Sends what is pending now. `leaving`: the page is hidden or unloading — sendBeacon when it
   * needs no headers and is same-origin, else a keepalive fetch (both outlive the page).
   */
  flush(leaving: boolean): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.batch;
    this.batch = undefined;
    if (!batch || batch.events.length === 0) return;
    if (leaving && this.beacon(batch)) return;
    void this.send(batch, leaving);
  }

  /** Sends what is pending (keepalive) and stops listening; later track() calls are dropped. */
  close(): void {
    this.flush(true);
    this.closed = true;
    const doc = globalThis.document as Document | undefined;
    if (this.listening) {
      doc?.removeEventListener?.('visibilitychange', this.listening.hidden);
      (globalThis as { removeEventListener?: (type: string, fn: () => void) => void }).removeEventListener?.('pagehide', this.listening.pagehide);
    }
    this.listening = undefined;
  }

  private headers(): Promise<HeadersResult> {
    const factory = this.options.headersFactory;
    if (!factory) return Promise.resolve({ ok: true, pairs: [] });
    try {
      return Promise.resolve(factory()).then(
        (entries) => ({ ok: true as const, pairs: headerPairs(entries) }),
        (error: unknown) => ({ ok: false as const, error }),
      );
    } catch (error) {
      return Promise.resolve({ ok: false, error });
    }
  }

  private body(batch: Batch): string {
    return JSON.stringify({ events: batch.events, context: batch.context });
  }

  private async send(batch: Batch, keepalive: boolean): Promise<void> {
    try {
      const headers = await batch.headers;
      if (!headers.ok) {
        this.warnOnce('headers', `options.headersFactory failed (${describe(headers.error)}); events dropped`);
        return;
      }
      const init: RequestInit = { method: 'POST', headers: [...headers.pairs, ['Content-Type', 'application/json']], body: this.body(batch) };
      if (keepalive) init.keepalive = true;
      // a keepalive request must outlive the page: no timeout for it
      const controller = keepalive ? undefined : new AbortController();
      const timer = controller ? setTimeout(() => controller.abort(), this.options.timeoutMs) : undefined;
      if (controller) init.signal = controller.signal;
      let response: Response;
      try {
        response = await this.options.fetch(this.url, init);
      } finally {
        clearTimeout(timer);
      }
      await this.answer(response, batch.events.length);
    } catch (error) {
      this.warnOnce('network', `events could not be sent to ${this.url} (${describe(error)}); dropped`);
    }
  }

  private async answer(response: Response, sent: number): Promise<void> {
    const body = (await response.json().catch(() => undefined)) as { errorDetails?: unknown; results?: unknown } | undefined;
    const details = typeof body?.errorDetails === 'string' ? `: ${body.errorDetails}` : '';
    if (response.status === 202) {
      const results = Array.isArray(body?.results) ? (body.results as { status?: unknown; reason?: unknown; details?: unknown }[]) : [];
      for (const r of results.slice(0, sent)) {
        if (r?.status !== 'refused') continue;
        const why = `${String(r.reason)}${typeof r.details === 'string' ? `: ${r.details}` : ''}`;
        this.warnOnce(`refused:${why}`, `the server refused an event (${why}); such events are dropped`);
      }
      return;
    }
    if (response.status === 404) {
      this.disabled = true;
      this.warnOnce('404', `the server does not accept events at ${this.url} (404${details}): enable \`tracking\` on its ofrep() router or Nest OFREP controller; track() is off for this provider`);
      return;
    }
    if (response.status === 429) {
      const retryAfter = Number(response.headers.get('Retry-After'));
      this.pausedUntil = Date.now() + (Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 30_000);
    }
    this.warnOnce(`status:${response.status}`, `the server refused ${sent} event(s) with HTTP ${response.status}${details}; dropped`);
  }

  /** sendBeacon: no headers, cookies only, so only without headersFactory, to this page's origin, with credentials. */
  private beacon(batch: Batch): boolean {
    if (!this.settings.beacon || this.options.headersFactory || this.options.credentials === 'omit') return false;
    const nav = (globalThis as { navigator?: { sendBeacon?: (url: string, data: Blob) => boolean } }).navigator;
    const origin = (globalThis as { location?: { origin?: string } }).location?.origin;
    if (typeof nav?.sendBeacon !== 'function' || !origin || new URL(this.url).origin !== origin) return false;
    try {
      return nav.sendBeacon(this.url, new Blob([this.body(batch)], { type: 'application/json' }));
    } catch {
      return false;
    }
  }

  /** Flush when the page is hidden (the last reliable moment on mobile) or left. */
  private listen(): void {
    if (this.listening) return;
    const doc = globalThis.document as Document | undefined;
    const hidden = () => {
      if (doc?.visibilityState === 'hidden') this.flush(true);
    };
    const pagehide = () => this.flush(true);
    doc?.addEventListener?.('visibilitychange', hidden);
    (globalThis as { addEventListener?: (type: string, fn: () => void) => void }).addEventListener?.('pagehide', pagehide);
    this.listening = { hidden, pagehide };
  }

  private warnOnce(kind: string, message: string): void {
    if (this.warned.has(kind) || this.warned.size >= MAX_WARNINGS) return;
    this.warned.add(kind);
    const logger: Logger | undefined = this.options.logger;
    try {
      logger?.warn(`@rollgate/web: ${message}`);
    } catch {
      // a logger that throws must not reach the app either
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
