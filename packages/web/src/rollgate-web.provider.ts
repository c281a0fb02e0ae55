import {
  OFREPApi,
  OFREPApiTooManyRequestsError,
  OFREPApiUnauthorizedError,
  OFREPForbiddenError,
  handleEvaluationError,
  isBulkEvaluationFailureResponse,
  isEvaluationFailureResponse,
  toResolutionDetails,
  type BulkEvaluationRefetchMetadata,
  type EvaluationResponse,
  type EventStream,
} from '@openfeature/ofrep-core';
import {
  ClientProviderEvents,
  ErrorCode,
  GeneralError,
  InvalidContextError,
  OpenFeatureEventEmitter,
  ParseError,
  ProviderFatalError,
  StandardResolutionReasons,
  TargetingKeyMissingError,
  type EvaluationContext,
  type FlagValue,
  type JsonValue,
  type Provider,
  type ResolutionDetails,
  type TrackingEventDetails,
} from '@openfeature/web-sdk';
import { ErrorReporter, listenForErrors, type ErrorSource } from './error-capture';
import { EventBatcher, type WireEvent } from './event-batcher';
import { FlagEventStream } from './flag-event-stream';
import { headerPairs, resolveOptions, type ResolvedOptions, type RollgateWebProviderOptions } from './options';
import { feedbackEvent, type FeedbackInput } from './signals';

// An OpenFeature web provider over OFREP (static context): one bulk request per context, values
// cached in memory and resolved synchronously, ETag revalidation, and the server's SSE stream
// (or polling) to hear about changes. Request building, error classes and OFREP → OpenFeature
// mapping come from @openfeature/ofrep-core; the lifecycle (what to refetch, when to reconnect,
// which status to report) is ours — see README.md for why not @openfeature/ofrep-web-provider.

type Outcome = 'ok' | 'failed' | 'auth' | 'skipped';
interface RefreshOptions {
  /** Drop If-None-Match so the answer is a 200 with a fresh stream URL. */
  unconditional?: boolean;
  metadata?: BulkEvaluationRefetchMetadata;
}
const DEFAULT_INACTIVITY_SEC = 120;

export class RollgateWebProvider implements Provider {
  readonly metadata = { name: 'rollgate-web' } as const;
  readonly runsOn = 'client' as const;
  readonly events = new OpenFeatureEventEmitter();

  private readonly options: ResolvedOptions;
  private api: OFREPApi;
  private flags = new Map<string, EvaluationResponse>();
  /** Set while the flags of the current context could not be loaded: resolve to defaults, never to another context's values. */
  private loadError: string | undefined;
  private etag: string | null = null;
  private context: EvaluationContext = {};
  /** Bumped on every context change and on close: answers to older requests are dropped. */
  private generation = 0;
  /** What the SDK was last told, so that recovery emits Ready exactly once. */
  private health: 'ok' | 'stale' | 'error' | 'fatal' = 'ok';
  private stream: FlagEventStream | undefined;
  private streamUrl: string | undefined;
  private streamInactivitySec: number | undefined;
  /** A stream URL off baseUrl's origin was refused and logged (once per provider). */
  private streamRefusalWarned = false;
  private running: Promise<Outcome> | undefined;
  private queued: { options: RefreshOptions; promise: Promise<Outcome> } | undefined;
  private recoveryTimer: ReturnType<typeof setTimeout> | undefined;
  private recoveryAttempt = 0;
  private retryAfter = 0;
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private inactivityTimer: ReturnType<typeof setTimeout> | undefined;
  private suspended = false;
  private visibilityHandler: (() => void) | undefined;
  /** Created at the first event; closed (pending events sent) with the provider. */
  private tracker: EventBatcher | undefined;
  /** Dedupe and rate limit of error reports (uncaught and caught); created at the first report. */
  private reporter: ErrorReporter | undefined;
  /** Removes the error listeners (captureErrors) installed by initialize(). */
  private stopListening: (() => void) | undefined;
  /** The context (JSON) the last pageview was sent for: one per page load and context. */
  private pageviewFor: string | undefined;
  private closed = false;

  constructor(options: RollgateWebProviderOptions = {}) {
    this.options = resolveOptions(options);
    this.api = this.createApi();
  }

  async initialize(context?: EvaluationContext): Promise<void> {
    this.closed = false;
    this.health = 'ok';
    this.loadError = undefined;
    this.etag = null;
    this.context = context ?? {};
    this.installErrorListeners();
    const { bootstrap } = this.options;
    if (bootstrap) {
      // First paint from the server-rendered values; the network answer follows as ConfigurationChanged.
      this.flags = new Map(Object.entries(bootstrap).map(([key, value]) => [key, { key, value, reason: StandardResolutionReasons.CACHED }]));
      void this.loadAfterBootstrap();
      this.pageview();
      return;
    }
    try {
      await this.fetchBulk({ unconditional: true });
    } catch (error) {
      if (isAuthError(error)) {
        this.health = 'fatal';
        throw new ProviderFatalError(`${describeError(error)}: check the token or cookie sent to ${this.options.baseUrl}`, { cause: error });
      }
      this.health = 'error'; // the SDK reports ERROR; a later success emits Ready
      this.scheduleRecovery();
      throw error;
    }
    this.startChangeDetection();
    this.pageview();
  }

  onContextChange(oldContext: EvaluationContext, newContext: EvaluationContext): Promise<void> {
    this.generation++;
    this.context = newContext;
    const identityChanged = oldContext.targetingKey !== newContext.targetingKey;
    if (identityChanged) this.etag = null;
    return this.loadForContext(this.generation, identityChanged);
  }

  async onClose(): Promise<void> {
    this.closed = true;
    this.generation++;
    this.stream?.close();
    this.stream = undefined;
    clearTimeout(this.recoveryTimer);
    clearTimeout(this.inactivityTimer);
    clearInterval(this.pollTimer);
    this.recoveryTimer = this.inactivityTimer = this.pollTimer = undefined;
    const doc = globalThis.document as Document | undefined;
    if (this.visibilityHandler && doc) doc.removeEventListener('visibilitychange', this.visibilityHandler);
    this.visibilityHandler = undefined;
    this.api.close();
    this.api = this.createApi(); // usable again if the SDK re-initializes this instance
    this.stopListening?.();
    this.stopListening = undefined;
    this.reporter?.close();
    this.reporter = undefined;
    this.tracker?.close();
    this.tracker = undefined;
  }

  /**
   * Queues an event for the server's events endpoint (batched; see README.md "Tracking"). The
   * server counts it in the arms of the flag variants IT evaluates for the caller's identity; only
   * the name and a numeric `details.value` are sent. Never throws; what the server refuses is
   * dropped with one `logger.warn`.
   */
  track(trackingEventName: string, context: EvaluationContext, trackingEventDetails?: TrackingEventDetails): void {
    this.batcher()?.track(trackingEventName, context, trackingEventDetails);
  }

  /**
   * Sends feedback about a flag (`sentiment` 'positive' | 'neutral' | 'negative', an optional
   * `comment` of at most 1000 characters) for the current context; the server attributes it to
   * the variant IT evaluates for this user. Returns true when queued (sent within 100 ms), false
   * when the provider is closed or tracking is off. Throws a TypeError naming the field for
   * invalid input; never for anything else.
   */
  sendFeedback(input: FeedbackInput): boolean {
    const event = feedbackEvent(input);
    return this.signal(event, true);
  }

  /**
   * Reports an error the app caught (`source` 'boundary': a framework error boundary or handler;
   * the React entry's RollgateErrorBoundary calls this): fingerprint and scrubbed message only,
   * deduplicated and rate-limited with the uncaught ones. Works without `captureErrors` (which
   * only adds the window listeners); needs tracking. Returns true when a report was queued.
   * Never throws.
   */
  reportError(error: unknown, source: ErrorSource = 'boundary'): boolean {
    try {
      const reporter = this.errorReporter();
      return reporter !== undefined && reporter.report(error, source === 'error' || source === 'unhandledrejection' ? source : 'boundary') === 'sent';
    } catch {
      return false;
    }
  }

  private batcher(): EventBatcher | undefined {
    const settings = this.options.tracking;
    if (this.closed || !settings) return undefined;
    try {
      this.tracker ??= new EventBatcher(this.options, settings);
    } catch {
      return undefined;
    }
    return this.tracker;
  }

  /** Queues one of the provider's own events for the current context; never throws. */
  private signal(event: WireEvent, prompt: boolean): boolean {
    return this.batcher()?.enqueue(event, this.context, prompt) ?? false;
  }

  private errorReporter(): ErrorReporter | undefined {
    if (this.closed || !this.options.tracking) return undefined;
    this.reporter ??= new ErrorReporter(
      this.options.errors,
      (event) => this.signal(event, true),
      (message) => this.warn(message),
    );
    return this.reporter;
  }

  /** captureErrors: the window's `error` and `unhandledrejection` events, until close. */
  private installErrorListeners(): void {
    const { errors } = this.options;
    const target = globalThis as unknown as { addEventListener?: unknown; removeEventListener?: unknown };
    if (!errors.listen || this.stopListening || typeof target.addEventListener !== 'function' || typeof target.removeEventListener !== 'function') return;
    const reporter = this.errorReporter();
    if (reporter) this.stopListening = listenForErrors(globalThis as unknown as Window, reporter, errors.unhandledRejections);
  }

  /** Once per page load and context, when the flags of that context are loaded (or bootstrapped). */
  private pageview(): void {
    if (!this.options.pageviews || this.closed) return;
    const key = JSON.stringify(this.context);
    if (key === this.pageviewFor) return;
    if (this.signal({ type: 'pageview' }, false)) this.pageviewFor = key;
  }

  private warn(message: string): void {
    try {
      this.options.logger?.warn(`@rollgate/web: ${message}`);
    } catch {
      // a logger that throws must not reach the app either
    }
  }

  resolveBooleanEvaluation(flagKey: string, defaultValue: boolean): ResolutionDetails<boolean> {
    return this.resolve(flagKey, defaultValue);
  }

  resolveStringEvaluation(flagKey: string, defaultValue: string): ResolutionDetails<string> {
    return this.resolve(flagKey, defaultValue);
  }

  resolveNumberEvaluation(flagKey: string, defaultValue: number): ResolutionDetails<number> {
    return this.resolve(flagKey, defaultValue);
  }

  resolveObjectEvaluation<T extends JsonValue>(flagKey: string, defaultValue: T): ResolutionDetails<T> {
    return this.resolve(flagKey, defaultValue);
  }

  private resolve<T extends FlagValue>(flagKey: string, defaultValue: T): ResolutionDetails<T> {
    if (this.loadError !== undefined) {
      return { value: defaultValue, reason: StandardResolutionReasons.ERROR, errorCode: ErrorCode.GENERAL, errorMessage: this.loadError };
    }
    const entry = this.flags.get(flagKey);
    if (entry === undefined) {
      return { value: defaultValue, reason: StandardResolutionReasons.ERROR, errorCode: ErrorCode.FLAG_NOT_FOUND, errorMessage: `flag "${flagKey}" is not in the server's answer: unknown, or not client-visible` };
    }
    if (isEvaluationFailureResponse(entry)) return handleEvaluationError(entry, defaultValue) as ResolutionDetails<T>;
    return toResolutionDetails(entry, defaultValue) as ResolutionDetails<T>;
  }

  // ---- loading -------------------------------------------------------------------------------

  private createApi(): OFREPApi {
    const { baseUrl, timeoutMs, headersFactory, fetch } = this.options;
    return new OFREPApi({ baseUrl, timeoutMs, ...(headersFactory ? { headersFactory: async () => headerPairs(await headersFactory()) } : {}) }, fetch);
  }

  /**
   * One bulk request for the current context; applies the answer unless a context change or
   * close happened meanwhile. Returns the keys whose evaluation changed (none for a 304).
   */
  private async fetchBulk(options: RefreshOptions = {}): Promise<string[] | 'superseded'> {
    const generation = this.generation;
    const result = await this.api.postBulkEvaluateFlags({ context: this.context }, options.unconditional ? null : this.etag, options.metadata);
    if (generation !== this.generation) return 'superseded';
    if (result.httpStatus === 304) return [];
    const body = result.value;
    if (result.httpStatus !== 200 || !body || !('flags' in body) || !Array.isArray(body.flags)) {
      throw bulkError(result.httpStatus, isBulkEvaluationFailureResponse(body) ? body : undefined);
    }
    const next = new Map<string, EvaluationResponse>();
    for (const flag of body.flags) if (typeof flag?.key === 'string') next.set(flag.key, flag);
    const changed = changedKeys(this.flags, next);
    this.flags = next;
    this.loadError = undefined;
    this.etag = result.httpResponse.headers.get('ETag');
    this.takeStream(body.eventStreams);
    return changed;
  }

  private async loadAfterBootstrap(): Promise<void> {
    const generation = this.generation;
    try {
      const changed = await this.fetchBulk({ unconditional: true });
      if (changed === 'superseded') return;
      // Every key is listed the first time (its reason is no longer CACHED); unchanged values do not flicker.
      if (changed.length > 0) this.events.emit(ClientProviderEvents.ConfigurationChanged, { message: 'flags loaded (replacing bootstrap values)', flagsChanged: changed });
      this.startChangeDetection();
    } catch (error) {
      if (generation !== this.generation) return;
      if (isAuthError(error)) {
        this.health = 'fatal';
        this.events.emit(ClientProviderEvents.Error, { message: `${describeError(error)}: check the token or cookie sent to ${this.options.baseUrl}`, errorCode: ErrorCode.PROVIDER_FATAL });
        return;
      }
      this.failed(error);
    }
  }

  private async loadForContext(generation: number, identityChanged: boolean): Promise<void> {
    try {
      const changed = await this.fetchBulk({ unconditional: identityChanged });
      if (changed === 'superseded') return;
      // The SDK emits ContextChanged (every hook re-evaluates) and sets READY when this resolves.
      this.health = 'ok';
      this.recoveryAttempt = 0;
      this.startChangeDetection();
      this.pageview();
    } catch (error) {
      if (generation !== this.generation) return;
      // Never go on serving the previous context's values (another user's, after a login switch).
      this.flags = new Map();
      this.etag = null;
      this.loadError = `flags for the current context could not be loaded: ${describeError(error)}`;
      this.health = 'error';
      if (!isAuthError(error)) this.scheduleRecovery();
      throw new GeneralError(this.loadError, { cause: error }); // the SDK reports ERROR for a rejected context change
    }
  }

  /** Refetch for the current context; concurrent calls share one request and at most one follow-up. */
  private refresh(options: RefreshOptions = {}): Promise<Outcome> {
    if (!this.running) {
      const run = this.doRefresh(options).finally(() => {
        if (this.running === run) this.running = undefined;
      });
      this.running = run;
      return run;
    }
    if (this.queued) {
      this.queued.options.unconditional ||= options.unconditional;
      if (options.metadata) this.queued.options.metadata = options.metadata;
      return this.queued.promise;
    }
    const queuedOptions: RefreshOptions = { ...options };
    const promise = this.running.then(() => {
      this.queued = undefined;
      return this.refresh(queuedOptions);
    });
    this.queued = { options: queuedOptions, promise };
    return promise;
  }

  private async doRefresh(options: RefreshOptions): Promise<Outcome> {
    if (this.closed || Date.now() < this.retryAfter) return 'skipped';
    try {
      const changed = await this.fetchBulk(options);
      if (changed === 'superseded') return 'skipped';
      if (changed.length > 0) this.events.emit(ClientProviderEvents.ConfigurationChanged, { message: 'flags changed on the server', flagsChanged: changed });
      this.recovered();
      return 'ok';
    } catch (error) {
      return this.failed(error);
    }
  }

  private recovered(): void {
    this.recoveryAttempt = 0;
    if (this.health === 'ok') return;
    this.health = 'ok';
    this.events.emit(ClientProviderEvents.Ready, { message: 'flags are current again' });
    this.pageview(); // if the page (or context) had not become ready before
  }

  private failed(error: unknown): Outcome {
    if (this.closed) return 'skipped';
    if (isAuthError(error)) {
      // Not retried by itself (that would hammer the server with a bad token); the next SSE
      // message, poll, visibility change or context change tries again with fresh headers.
      if (this.health !== 'fatal') this.health = 'error';
      this.events.emit(ClientProviderEvents.Error, { message: `${describeError(error)}: flags are no longer refreshed until a request is authorised again` });
      return 'auth';
    }
    if (error instanceof OFREPApiTooManyRequestsError) this.retryAfter = error.retryAfterDate?.getTime() ?? Date.now() + 30_000;
    if (this.health === 'ok') {
      this.health = 'stale';
      this.events.emit(ClientProviderEvents.Stale, { message: `could not refresh flags: ${describeError(error)}; serving the last known values` });
    }
    if (!this.pollTimer) this.scheduleRecovery();
    return 'failed';
  }

  /** Retries with exponential backoff and jitter: an unconditional refetch (fresh stream URL), then reopens the stream. */
  private scheduleRecovery(): void {
    if (this.closed || this.recoveryTimer !== undefined) return;
    const { reconnectDelayMs, maxReconnectDelayMs } = this.options;
    const ceiling = Math.min(maxReconnectDelayMs, reconnectDelayMs * 2 ** this.recoveryAttempt++);
    const delay = Math.max(ceiling / 2 + Math.random() * (ceiling / 2), this.retryAfter - Date.now());
    this.recoveryTimer = setTimeout(async () => {
      this.recoveryTimer = undefined;
      const outcome = await this.refresh({ unconditional: true });
      if (outcome === 'ok') this.startChangeDetection();
    }, delay);
  }

  // ---- change detection -----------------------------------------------------------------------

  /**
   * Only a stream on baseUrl's origin, over http(s), is opened: the URL comes from a response, and
   * the EventSource may carry cookies (`credentials: 'include'`). Anything else is refused (warned
   * once) and changes are then heard as when no stream is offered.
   */
  private takeStream(streams: EventStream[] | undefined): void {
    this.streamUrl = undefined;
    const sse = streams?.find((s) => s?.type === 'sse' && (s.url || s.endpoint?.requestUri));
    if (!sse) return;
    const { baseUrl, logger } = this.options;
    let url: URL;
    try {
      url = sse.url ? new URL(sse.url, baseUrl) : new URL(sse.endpoint!.requestUri, sse.endpoint!.origin ?? baseUrl);
    } catch {
      logger?.warn('@rollgate/web: ignored an eventStreams entry whose URL is invalid'); // the URL is sensitive (a ticket): not logged
      return;
    }
    const allowed = new URL(baseUrl).origin;
    if (url.origin !== allowed || !/^https?:$/.test(url.protocol)) {
      if (!this.streamRefusalWarned) {
        this.streamRefusalWarned = true;
        // Scheme and host only: the path and query carry the ticket.
        const where = url.host ? `${url.protocol}//${url.host}` : url.protocol;
        logger?.warn(`@rollgate/web: refused the change stream at ${where}: only ${allowed} (the origin of options.baseUrl) is allowed; not listening to it`);
      }
      return;
    }
    this.streamUrl = url.href;
    this.streamInactivitySec = typeof sse.inactivityDelaySec === 'number' && sse.inactivityDelaySec > 0 ? sse.inactivityDelaySec : undefined;
  }

  /** Idempotent: opens the stream if it should be open, and polls only if it should. */
  private startChangeDetection(): void {
    if (this.closed) return;
    const { changeDetection, eventSource } = this.options;
    if (changeDetection === 'sse' && !this.suspended && this.streamUrl && eventSource && !this.stream?.active) {
      this.stream ??= new FlagEventStream(
        eventSource,
        this.options.credentials === 'include',
        {
          refetch: (metadata) => void this.refresh({ metadata }),
          // Also on the first open: closes the gap between the fetch that gave the URL and the stream.
          opened: () => {
            this.updatePolling();
            void this.refresh();
          },
          lost: () => {
            this.markStale('the change stream was interrupted; reconnecting');
            this.updatePolling();
          },
          refused: () => {
            this.markStale('the server closed the change stream; reconnecting');
            this.updatePolling();
            this.scheduleRecovery();
          },
        },
        this.options.logger,
      );
      this.stream.connect(this.streamUrl);
    } else if (changeDetection === 'sse' && !eventSource && this.streamUrl) {
      this.options.logger?.debug('@rollgate/web: no EventSource here (pass options.eventSource); not listening to the change stream');
    }
    this.updatePolling();
    this.watchVisibility();
  }

  private markStale(message: string): void {
    if (this.health !== 'ok') return;
    this.health = 'stale';
    this.events.emit(ClientProviderEvents.Stale, { message });
  }

  private updatePolling(): void {
    const { pollInterval, changeDetection } = this.options;
    const wanted = !this.closed && !this.suspended && pollInterval > 0 && (changeDetection === 'polling' || (changeDetection === 'sse' && !this.stream?.open));
    if (wanted && !this.pollTimer) this.pollTimer = setInterval(() => void this.refresh(), pollInterval);
    if (!wanted && this.pollTimer) {
      clearInterval(this.pollTimer);
      this.pollTimer = undefined;
    }
  }

  /** Hidden page: close the stream after the inactivity delay. Visible again: reopen and refetch (ADR-0008, ADR-0010). */
  private watchVisibility(): void {
    const doc = globalThis.document as Document | undefined;
    if (!doc || this.visibilityHandler) return;
    this.visibilityHandler = () => {
      if (this.closed) return;
      if (doc.visibilityState === 'hidden') {
        if (this.inactivityTimer !== undefined || !this.stream?.active) return;
        const delaySec = this.options.inactivityDelaySec ?? this.streamInactivitySec ?? DEFAULT_INACTIVITY_SEC;
        this.inactivityTimer = setTimeout(() => {
          this.inactivityTimer = undefined;
          this.suspended = true;
          this.stream?.close();
          this.updatePolling();
        }, delaySec * 1000);
        return;
      }
      clearTimeout(this.inactivityTimer);
      this.inactivityTimer = undefined;
      if (this.suspended) {
        this.suspended = false;
        void this.refresh({ unconditional: true }).then((outcome) => outcome === 'ok' && this.startChangeDetection());
      } else if (this.options.refetchOnVisible) {
        void this.refresh();
      }
    };
    doc.addEventListener('visibilitychange', this.visibilityHandler);
  }
}

function isAuthError(error: unknown): boolean {
  return error instanceof OFREPApiUnauthorizedError || error instanceof OFREPForbiddenError;
}

function describeError(error: unknown): string {
  if (error instanceof OFREPApiUnauthorizedError) return 'the server answered 401 Unauthorized';
  if (error instanceof OFREPForbiddenError) return 'the server answered 403 Forbidden';
  if (error instanceof OFREPApiTooManyRequestsError) return `the server answered 429 Too Many Requests (retry after ${error.retryAfterHeader ?? '?'})`;
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error && cause.message && cause.message !== error.message ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}

function bulkError(status: number, body: { errorCode?: string; errorDetails?: string } | undefined): Error {
  const message = `bulk evaluation failed with HTTP ${status}${body?.errorDetails ? `: ${body.errorDetails}` : ''}`;
  switch (body?.errorCode) {
    case ErrorCode.INVALID_CONTEXT:
      return new InvalidContextError(message);
    case ErrorCode.TARGETING_KEY_MISSING:
      return new TargetingKeyMissingError(message);
    case ErrorCode.PARSE_ERROR:
      return new ParseError(message);
    default:
      return new GeneralError(message);
  }
}

/** Keys added, removed, or whose evaluation (value, variant, reason, metadata, error) differs. */
function changedKeys(before: ReadonlyMap<string, EvaluationResponse>, after: ReadonlyMap<string, EvaluationResponse>): string[] {
  const changed: string[] = [];
  for (const [key, flag] of after) {
    const old = before.get(key);
    if (old === undefined || JSON.stringify(old) !== JSON.stringify(flag)) changed.push(key);
  }
  for (const key of before.keys()) if (!after.has(key)) changed.push(key);
  return changed;
}
