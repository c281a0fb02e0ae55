import type { EvaluationContext } from '@rollgate/core';
import { ConfigError } from '@rollgate/redis';
import type { Identity } from './identity';
import { BODY_PARSER_REFUSALS, JSON_HEADERS, ofrepError, type OfrepEvaluator, type OfrepResponse } from './ofrep';
import type { Exposure, OutcomeSink } from './outcomes';
import { checkRateLimit, TokenBuckets, type RateLimit } from './token-buckets';

// Events from browsers (conversions, business events), counted in the arms of the flag variants
// the SERVER evaluates for the caller — never in an arm the client names. Framework-agnostic like
// OfrepEvaluator: the adapters (Express ofrep(), the Nest OFREP controller) resolve the caller and
// read the body, and send what this returns.

/**
 * Where the events endpoint is mounted, beside OFREP's `/ofrep/v1/...`. Not under `/ofrep/`:
 * OFREP defines no tracking endpoint yet and is discussing one (open-feature/protocol#71); a
 * path of our own, versioned, can never collide with what it will define.
 */
export const EVENTS_PATH = '/rollgate/v1/events';

/** What the operator configures: which events are accepted, what they are attributed to, and the limits. */
export interface TrackingOptions {
  /**
   * The event names browsers may send (e.g. `['checkout.completed']`); any other is refused and
   * not counted. Required, non-empty: a browser is any client, so nothing is accepted by default.
   */
  trackedEvents: readonly string[];
  /**
   * The flags an event is attributed to. @default the client-visible flags (those the OFREP
   * endpoints serve), as evaluated for the caller
   */
  flags?: readonly string[];
  /** Most events in one request; more is a 400 (nothing counted). @default 50 */
  maxEventsPerRequest?: number;
  /** Longest event name accepted (and allowed in `trackedEvents`). @default 64 */
  maxNameLength?: number;
  /**
   * Per caller (the identity's subject): every event sent, counted or not, takes a token; a
   * request with more than are left is answered 429 with Retry-After (nothing counted).
   * @default { burst: 120, perSecond: 2 }
   */
  perIdentity?: RateLimit;
  /** For the whole process, all callers together (same rule). @default { burst: 5000, perSecond: 1000 } */
  perProcess?: RateLimit;
  /** Callers whose bucket is remembered (least recently used dropped beyond it). @default 10000 */
  maxIdentities?: number;
  /**
   * Uncaught errors reported by pages (`{ "type": "error", "fingerprint", "message", "source" }`),
   * counted as `$client_error` in the arms the page was served; the same fingerprint from the same
   * caller counts once per `dedupeMs`. `false` refuses them. @default { dedupeMs: 600000 }
   */
  clientErrors?: { dedupeMs?: number } | false;
  /**
   * Feedback about a flag (`{ "type": "feedback", "flag", "sentiment", "comment"? }`), counted as
   * `$feedback.<sentiment>` in the arm of the variant the server evaluates for the caller on that
   * flag, the comment kept by the sink. `false` refuses it. @default { maxCommentLength: 1000 }
   */
  feedback?: { maxCommentLength?: number } | false;
  /** The clock of the rate limits and of the error de-duplication, ms. @default Date.now */
  now?: () => number;
}

export interface EventIntakeOptions extends TrackingOptions {
  /** The OFREP evaluator: its flags, its visibility rule and its context rules (client attributes) are used as they are. */
  evaluator: OfrepEvaluator;
  /** Where accepted events are counted: an `OutcomeRecorder` from @rollgate/rollouts. */
  sink: OutcomeSink;
}

/** The verdict on one event of a request, at its index in `results`. */
export type EventResult =
  | { status: 'accepted'; /** Fields of the event that were not used (e.g. a flag or variant: the server decides). */ ignored?: string[] }
  | {
      status: 'refused';
      reason: 'invalid_event' | 'name_too_long' | 'unknown_event' | 'invalid_value' | 'not_accepted' | 'duplicate' | 'not_served' | 'invalid_feedback';
      details: string;
    };

/** The 202 answer. */
export interface EventsAccepted {
  accepted: number;
  refused: number;
  results: EventResult[];
  /** Top-level fields of the body that were not used (anything but `events` and `context`). */
  ignored?: string[];
}

/** Why a request was refused before (or instead of) being judged, as every adapter answers it. */
export type EventsRefusal =
  /** No identity, or one that failed verification (the OFREP 401). */
  | 'unauthorized'
  | 'body-not-json'
  | 'body-too-large'
  /** Another refusal of the body reader (unsupported charset...): give its status. */
  | 'body-refused'
  /** The adapter has no `tracking` (or no outcome sink): the endpoint does not exist. */
  | 'not-configured'
  | 'internal';

export const TRACKING_DEFAULTS = {
  maxEventsPerRequest: 50,
  maxNameLength: 64,
  perIdentity: { burst: 120, perSecond: 2 },
  perProcess: { burst: 5000, perSecond: 1000 },
  maxIdentities: 10_000,
} as const;

const KNOWN_TOP = new Set(['events', 'context']);
const KNOWN_FIELDS = {
  tracked: new Set(['name', 'value']),
  pageview: new Set(['type']),
  error: new Set(['type', 'fingerprint', 'message', 'source']),
  feedback: new Set(['type', 'flag', 'sentiment', 'comment']),
} as const;
const SENTIMENTS = new Set(['positive', 'neutral', 'negative']);
const FINGERPRINT = /^[0-9a-f]{8,64}$/;

/** An accepted event, ready to count. */
type Judged =
  | { kind: 'tracked'; name: string; value: number | undefined }
  | { kind: 'pageview' }
  | { kind: 'error'; fingerprint: string }
  | { kind: 'feedback'; flag: string; sentiment: 'positive' | 'neutral' | 'negative'; comment: string | undefined };
/** Ignored field names echoed per event or body: at most this many, each cut to this length. */
const MAX_IGNORED = 8;
const MAX_IGNORED_NAME = 64;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function own(o: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

function ignoredFields(o: object, known: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const key of Object.keys(o)) {
    if (known.has(key)) continue;
    if (out.length === MAX_IGNORED) break;
    out.push(key.slice(0, MAX_IGNORED_NAME));
  }
  return out;
}

function positiveInt(option: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ConfigError(`${option} must be an integer from 1 to ${max}, got ${String(value)}`);
  }
  return value;
}

function answer(status: number, body: unknown, headers: Record<string, string> = {}): OfrepResponse {
  return { status, headers: { ...JSON_HEADERS, ...headers }, body };
}

function badRequest(errorCode: string, errorDetails: string): OfrepResponse {
  return answer(400, { errorCode, errorDetails });
}

/**
 * `POST /rollgate/v1/events`: judges a verified caller's batch of events and counts the accepted
 * ones, each in the arm of every flag variant the server evaluates for that caller (with the same
 * context rules as the OFREP endpoints). Nothing the client sends chooses a flag or a variant.
 */
export class EventIntake {
  private readonly evaluator: OfrepEvaluator;
  private readonly sink: OutcomeSink;
  private readonly allowed: ReadonlySet<string>;
  private readonly flags: readonly string[] | undefined;
  private readonly maxEvents: number;
  private readonly maxNameLength: number;
  private readonly perIdentity: TokenBuckets;
  private readonly perProcess: TokenBuckets;
  private readonly now: () => number;
  private readonly errorDedupeMs: number | undefined;
  private readonly maxCommentLength: number | undefined;
  /** `<subject>\n<fingerprint>` → when it was counted (oldest first, pruned as they expire). */
  private readonly seenErrors = new Map<string, number>();

  constructor(options: EventIntakeOptions) {
    if (!options?.evaluator) throw new ConfigError('tracking: options.evaluator (the OfrepEvaluator) is required');
    if (!options.sink || typeof options.sink.recordEvent !== 'function') {
      throw new ConfigError('tracking needs an outcome sink: give outcomes: { sink } (an OutcomeRecorder from @rollgate/rollouts)');
    }
    this.evaluator = options.evaluator;
    this.sink = options.sink;
    this.maxEvents = positiveInt('tracking.maxEventsPerRequest', options.maxEventsPerRequest, TRACKING_DEFAULTS.maxEventsPerRequest, 1000);
    this.maxNameLength = positiveInt('tracking.maxNameLength', options.maxNameLength, TRACKING_DEFAULTS.maxNameLength, 1024);
    const names = options.trackedEvents as unknown;
    if (!Array.isArray(names) || names.length === 0) {
      throw new ConfigError("tracking.trackedEvents must be a non-empty array of the event names browsers may send, e.g. ['checkout.completed']");
    }
    for (const name of names) {
      if (typeof name !== 'string' || name === '' || name.length > this.maxNameLength || CONTROL.test(name)) {
        throw new ConfigError(`tracking.trackedEvents: ${JSON.stringify(name)} is not an event name (1 to ${this.maxNameLength} characters, no control characters)`);
      }
    }
    for (const name of names as string[]) {
      if (name.startsWith('$')) throw new ConfigError(`tracking.trackedEvents: ${JSON.stringify(name)} starts with "$", which names Rollgate's own events ($pageview, $client_error, $feedback.*)`);
    }
    this.allowed = new Set(names as string[]);
    this.errorDedupeMs = options.clientErrors === false ? undefined : positiveInt('tracking.clientErrors.dedupeMs', options.clientErrors?.dedupeMs, 600_000, 86_400_000);
    this.maxCommentLength = options.feedback === false ? undefined : positiveInt('tracking.feedback.maxCommentLength', options.feedback?.maxCommentLength, 1000, 10_000);
    if (options.flags !== undefined) {
      if (!Array.isArray(options.flags) || options.flags.some((k) => typeof k !== 'string' || k === '')) throw new ConfigError('tracking.flags must be an array of flag keys');
      this.flags = [...new Set(options.flags)];
    }
    const perIdentity = options.perIdentity === undefined ? TRACKING_DEFAULTS.perIdentity : checkRateLimit('tracking.perIdentity', options.perIdentity, this.maxEvents);
    const perProcess = options.perProcess === undefined ? TRACKING_DEFAULTS.perProcess : checkRateLimit('tracking.perProcess', options.perProcess, this.maxEvents);
    if (perIdentity.burst < this.maxEvents || perProcess.burst < this.maxEvents) {
      throw new ConfigError(`tracking: a burst below maxEventsPerRequest (${this.maxEvents}) would refuse a full request for ever; lower maxEventsPerRequest too`);
    }
    this.perIdentity = new TokenBuckets(perIdentity, positiveInt('tracking.maxIdentities', options.maxIdentities, TRACKING_DEFAULTS.maxIdentities, 10_000_000));
    this.perProcess = new TokenBuckets(perProcess, 1);
    if (options.now !== undefined && typeof options.now !== 'function') throw new ConfigError('tracking.now must be a function returning ms');
    this.now = options.now ?? Date.now;
  }

  /**
   * Judges the body of one request from a verified caller. In this order: the body's shape (400),
   * its `context` (400, as OFREP), flags loaded (503), the rate limits (429: nothing counted),
   * then each event; the accepted ones are counted and the answer is a 202 with a result per event.
   */
  handle(caller: Pick<Identity, 'subject' | 'context' | 'mappedNames'>, body: unknown): OfrepResponse {
    if (typeof caller?.subject !== 'string') throw new TypeError('tracking: handle() takes the verified Identity');
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
      return badRequest('INVALID_BODY', 'the request body must be a JSON object: { "events": [{ "name": "...", "value"?: number }] }');
    }
    const events = own(body, 'events') ? (body as { events: unknown }).events : undefined;
    if (!Array.isArray(events)) return badRequest('INVALID_BODY', '"events" must be an array of { "name": "...", "value"?: number }');
    if (events.length > this.maxEvents) return badRequest('TOO_MANY_EVENTS', `${events.length} events in one request; at most ${this.maxEvents}: send them in several requests`);
    const ctx = this.evaluator.contextFor(caller, body);
    if ('error' in ctx) return badRequest('INVALID_CONTEXT', ctx.error);
    if (!this.evaluator.loaded()) {
      return answer(503, { errorCode: 'PROVIDER_NOT_READY', errorDetails: 'flags are not loaded yet: events cannot be attributed; retry later' }, { 'Retry-After': '5' });
    }

    const cost = Math.max(1, events.length);
    const now = this.now();
    const callerWait = this.perIdentity.wait(caller.subject, cost, now);
    const processWait = this.perProcess.wait('', cost, now);
    if (callerWait > 0 || processWait > 0) {
      const wait = Math.max(callerWait, processWait);
      const who = callerWait > 0 ? 'from this caller' : 'on this server';
      return answer(429, { errorCode: 'RATE_LIMITED', errorDetails: `too many events ${who}; none of these were counted: retry after ${wait} s` }, { 'Retry-After': String(wait) });
    }
    this.perIdentity.take(caller.subject, cost, now);
    this.perProcess.take('', cost, now);

    let exposures: Exposure[] | undefined;
    const served = () => (exposures ??= this.exposures(ctx.context));
    const results = events.map((event): EventResult => {
      const judged = this.judge(event);
      if ('status' in judged) return judged;
      const result = this.count(judged, caller.subject, served, now);
      // fields the event kind does not use (a client's flag or variant: the server decides) are named
      const ignored = result.status === 'accepted' ? ignoredFields(event as object, KNOWN_FIELDS[judged.kind]) : [];
      return ignored.length > 0 ? { status: 'accepted', ignored } : result;
    });
    const accepted = results.filter((r) => r.status === 'accepted').length;
    const out: EventsAccepted = { accepted, refused: results.length - accepted, results };
    const ignored = ignoredFields(body, KNOWN_TOP);
    if (ignored.length > 0) out.ignored = ignored;
    return answer(202, out);
  }

  /** Buckets held now, per caller (tests, metrics). */
  get trackedCallers(): number {
    return this.perIdentity.size;
  }

  /** The shape of one event: what to count, or why it is refused. */
  private judge(event: unknown): Judged | Extract<EventResult, { status: 'refused' }> {
    const refuse = (reason: Extract<EventResult, { status: 'refused' }>['reason'], details: string) => ({ status: 'refused' as const, reason, details });
    if (typeof event !== 'object' || event === null || Array.isArray(event)) return refuse('invalid_event', 'an event must be an object { "name": "...", "value"?: number } or { "type": "pageview" | "error" | "feedback", … }');
    const e = event as Record<string, unknown>;
    const type = own(e, 'type') ? e.type : undefined;
    if (type === undefined) {
      const name = own(e, 'name') ? e.name : undefined;
      if (typeof name !== 'string' || name === '') return refuse('invalid_event', '"name" must be a non-empty string');
      if (name.length > this.maxNameLength) return refuse('name_too_long', `"name" is longer than ${this.maxNameLength} characters`);
      if (!this.allowed.has(name)) return refuse('unknown_event', `${JSON.stringify(name)} is not an event this server accepts`);
      const value = own(e, 'value') ? e.value : undefined;
      if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value))) return refuse('invalid_value', '"value" must be a finite number');
      return { kind: 'tracked', name, value: value as number | undefined };
    }
    if (type === 'pageview') return { kind: 'pageview' };
    if (type === 'error') {
      if (this.errorDedupeMs === undefined) return refuse('not_accepted', 'this server does not accept error reports');
      const fingerprint = own(e, 'fingerprint') ? e.fingerprint : undefined;
      if (typeof fingerprint !== 'string' || !FINGERPRINT.test(fingerprint)) return refuse('invalid_event', '"fingerprint" must be 8 to 64 lowercase hex characters');
      return { kind: 'error', fingerprint };
    }
    if (type === 'feedback') {
      if (this.maxCommentLength === undefined) return refuse('not_accepted', 'this server does not accept feedback');
      const flag = own(e, 'flag') ? e.flag : undefined;
      const sentiment = own(e, 'sentiment') ? e.sentiment : undefined;
      const comment = own(e, 'comment') ? e.comment : undefined;
      if (typeof flag !== 'string' || flag === '') return refuse('invalid_feedback', '"flag" must name the flag the feedback is about');
      if (typeof sentiment !== 'string' || !SENTIMENTS.has(sentiment)) return refuse('invalid_feedback', '"sentiment" must be "positive", "neutral" or "negative"');
      if (comment !== undefined && (typeof comment !== 'string' || comment.length > this.maxCommentLength)) {
        return refuse('invalid_feedback', `"comment" must be a string of at most ${this.maxCommentLength} characters`);
      }
      return { kind: 'feedback', flag, sentiment: sentiment as 'positive' | 'neutral' | 'negative', comment: comment === '' ? undefined : (comment as string | undefined) };
    }
    return refuse('invalid_event', '"type" must be "pageview", "error" or "feedback" (or leave it out for a tracked event with a "name")');
  }

  /** Counts an accepted event in the arms the server evaluated for the caller. */
  private count(judged: Judged, subject: string, served: () => Exposure[], now: number): EventResult {
    const exposures = served();
    if (judged.kind === 'tracked') this.sink.recordEvent(judged.name, exposures, judged.value);
    else if (judged.kind === 'pageview') this.sink.recordEvent('$pageview', exposures);
    else if (judged.kind === 'error') {
      // the same error from the same caller counts once per window: a loop of reports cannot skew the arm
      for (const [key, at] of this.seenErrors) {
        if (at > now - this.errorDedupeMs!) break;
        this.seenErrors.delete(key);
      }
      const key = `${subject}\n${judged.fingerprint}`;
      if (this.seenErrors.has(key)) return { status: 'refused', reason: 'duplicate', details: 'this error was already counted for this caller; it counts once per window' };
      if (this.seenErrors.size >= 100_000) this.seenErrors.delete(this.seenErrors.keys().next().value as string);
      this.seenErrors.set(key, now);
      this.sink.recordEvent('$client_error', exposures);
    } else {
      // the subject of feedback is the flag it names; its variant is the one the server serves the caller
      const exposure = exposures.find((x) => x.flagKey === judged.flag);
      if (!exposure) return { status: 'refused', reason: 'not_served', details: `no variant of ${JSON.stringify(judged.flag)} is served to this caller here` };
      this.sink.recordEvent(`$feedback.${judged.sentiment}`, [exposure]);
      this.sink.recordFeedback?.({ flagKey: exposure.flagKey, variant: exposure.variant, split: exposure.split, sentiment: judged.sentiment, comment: judged.comment, unit: exposure.unit });
    }
    return { status: 'accepted' };
  }

  /**
   * What the server serves this caller: every attributed flag with a variant, in the split arm
   * when the percentage split chose it (reason SPLIT), else in the targeted arm — the rule of
   * `recordExposure` for requests. A disabled flag or an error has no variant: no arm.
   */
  private exposures(context: EvaluationContext): Exposure[] {
    const snapshot = this.evaluator.source.snapshot;
    const keys = this.flags ? this.flags.filter((k) => snapshot.definition(k) !== undefined) : this.evaluator.visibleKeys(snapshot);
    const unit = typeof context.targetingKey === 'string' ? context.targetingKey : undefined;
    const out: Exposure[] = [];
    for (const r of snapshot.evaluateAll(context, { keys })) {
      if (r.reason === 'ERROR' || r.variant === undefined) continue;
      out.push({ flagKey: r.flagKey, variant: r.variant, split: r.reason === 'SPLIT', unit });
    }
    return out;
  }
}

/** The answer to a request refused before it was judged; Express and Nest send exactly this. */
export function eventsError(refusal: EventsRefusal, options: { status?: number | undefined } = {}): OfrepResponse {
  switch (refusal) {
    case 'unauthorized':
      return ofrepError('unauthorized');
    case 'body-not-json':
      return answer(400, { errorCode: 'INVALID_BODY', errorDetails: 'request body is not valid JSON' });
    case 'body-too-large':
      return answer(413, { errorCode: 'BODY_TOO_LARGE', errorDetails: 'request body too large: send fewer events per request' });
    case 'body-refused': {
      const status = Number.isInteger(options.status) && options.status! >= 400 && options.status! <= 599 ? options.status! : 400;
      return answer(status, { errorCode: 'INVALID_BODY', errorDetails: 'request body refused' });
    }
    case 'not-configured':
      return answer(404, { errorCode: 'NOT_CONFIGURED', errorDetails: 'this server does not accept browser events' });
    case 'internal':
      return answer(500, { errorDetails: 'internal error' });
    default:
      throw new TypeError(`eventsError: unknown refusal ${String(refusal as unknown)}`);
  }
}

/** What body-parser refuses on the events route (too large, not JSON, another 4xx); undefined for any other error. */
export function eventsBodyParserRefusal(err: unknown): OfrepResponse | undefined {
  const { type, status } = (err ?? {}) as { type?: unknown; status?: unknown };
  if (type === 'entity.too.large') return eventsError('body-too-large');
  if (type === 'entity.parse.failed') return eventsError('body-not-json');
  if (typeof type === 'string' && BODY_PARSER_REFUSALS.has(type)) return eventsError('body-refused', { status: typeof status === 'number' ? status : undefined });
  return undefined;
}

/**
 * CORS headers of the events route for a request from `origin` (none when it is not listed):
 * credentials allowed, `Retry-After` readable (a 429 says when to come back), and for a
 * preflight the method and the headers a browser sends.
 */
export function eventsCorsHeaders(origin: unknown, origins: ReadonlySet<string>, preflight: boolean): Record<string, string> {
  if (typeof origin !== 'string' || !origins.has(origin)) return {};
  const headers: Record<string, string> = {
    'Access-Control-Allow-Origin': origin,
    'Access-Control-Allow-Credentials': 'true',
    'Access-Control-Expose-Headers': 'Retry-After',
    Vary: 'Origin, Authorization',
  };
  if (preflight) {
    headers['Access-Control-Allow-Methods'] = 'POST, OPTIONS';
    headers['Access-Control-Allow-Headers'] = 'Content-Type, Authorization';
    headers['Access-Control-Max-Age'] = '600';
  }
  return headers;
}
