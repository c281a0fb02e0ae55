import { OpenFeature, type TrackingEventDetails } from '@openfeature/web-sdk';
import type { ErrorSource } from './error-capture';

// What users live through, as signals for a rollout: feedback about a flag, errors caught by a
// framework's error boundary, and how long a task takes. The functions here find the Rollgate
// provider registered with OpenFeature (no import of the provider class: the React entry stays
// small), validate what the app passes, and hand it over. Sending never throws and never waits.

export type Sentiment = 'positive' | 'neutral' | 'negative';

export const SENTIMENTS: readonly Sentiment[] = ['positive', 'neutral', 'negative'];
/** Longest comment accepted, in UTF-16 code units (String.length), as the server counts. */
export const MAX_COMMENT = 1000;
/** Longest flag key accepted. */
export const MAX_FLAG_KEY = 256;

export interface FeedbackInput {
  /** The flag the feedback is about: it names the subject; the variant is the one the server evaluates for this user. */
  flag: string;
  sentiment: Sentiment;
  /** Free text, at most 1000 characters; sent as typed (trimmed), shown as text. */
  comment?: string | undefined;
}

export interface FeedbackEventBody {
  type: 'feedback';
  flag: string;
  sentiment: Sentiment;
  comment?: string;
}

/** What the Rollgate provider offers to these helpers (duck-typed: CommonJS and ES builds may both be loaded). */
export interface RollgateSignalTarget {
  sendFeedback(input: FeedbackInput): boolean;
  reportError(error: unknown, source?: ErrorSource): boolean;
}

/** Control and format characters (as @rollgate/core refuses in flag keys), line/paragraph separators, lone surrogates. */
const UNPRINTABLE_KEY = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
/** A pair, or a surrogate alone (no lookbehind: older Safari cannot parse one). */
const SURROGATES = /[\uD800-\uDBFF][\uDC00-\uDFFF]|[\uD800-\uDFFF]/g;

function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null || Array.isArray(value)) return value === null ? 'null' : 'an array';
  return typeof value;
}

/**
 * Checks what an app passes to sendFeedback and returns the event to send. Throws a TypeError
 * that names the field: these are mistakes in the calling code, not in what a user typed (the
 * comment's length is the app's to limit, as the React component does with maxLength).
 */
export function feedbackEvent(input: FeedbackInput): FeedbackEventBody {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new TypeError(`sendFeedback: expected { flag, sentiment, comment? }, got ${shown(input)}`);
  }
  for (const key of Object.keys(input)) {
    if (key !== 'flag' && key !== 'sentiment' && key !== 'comment') throw new TypeError(`sendFeedback: unknown field "${key.slice(0, 40)}" (expected flag, sentiment, comment?)`);
  }
  const { flag, sentiment, comment } = input;
  if (typeof flag !== 'string' || flag === '') throw new TypeError(`sendFeedback: "flag" must be the key of a flag (a non-empty string), got ${shown(flag)}`);
  if (flag.length > MAX_FLAG_KEY || UNPRINTABLE_KEY.test(flag)) throw new TypeError(`sendFeedback: "flag" must be a flag key (at most ${MAX_FLAG_KEY} characters, no control characters), got ${shown(flag)}`);
  if (!SENTIMENTS.includes(sentiment)) throw new TypeError(`sendFeedback: "sentiment" must be "positive", "neutral" or "negative", got ${shown(sentiment)}`);
  const event: FeedbackEventBody = { type: 'feedback', flag, sentiment };
  if (comment !== undefined && comment !== null) {
    if (typeof comment !== 'string') throw new TypeError(`sendFeedback: "comment" must be a string, got ${shown(comment)}`);
    const text = comment.trim().replace(SURROGATES, (m) => (m.length === 2 ? m : '\uFFFD')); // well-formed for JSON
    if (text.length > MAX_COMMENT) throw new TypeError(`sendFeedback: "comment" must be at most ${MAX_COMMENT} characters, got ${text.length}`);
    if (text !== '') event.comment = text;
  }
  return event;
}

/** The Rollgate provider registered for `domain` (or the default one), if it is one. */
export function rollgateProvider(domain?: string): RollgateSignalTarget | undefined {
  try {
    const provider = (domain === undefined ? OpenFeature.getProvider() : OpenFeature.getProvider(domain)) as Partial<RollgateSignalTarget> & { metadata?: { name?: string } };
    if (provider?.metadata?.name === 'rollgate-web' && typeof provider.sendFeedback === 'function' && typeof provider.reportError === 'function') {
      return provider as RollgateSignalTarget;
    }
  } catch {
    // no OpenFeature API here: nothing to send to
  }
  return undefined;
}

export interface SignalOptions {
  /** The OpenFeature domain the Rollgate provider is registered under. @default the default provider */
  domain?: string;
}

/**
 * Sends feedback about a flag through the Rollgate provider registered with OpenFeature. The
 * server attributes it to the variant IT evaluates for this user. Returns true when it was
 * queued, false when there is no active Rollgate provider with tracking. Throws a TypeError for
 * invalid input (see feedbackEvent); never for anything else.
 */
export function sendFeedback(input: FeedbackInput, options: SignalOptions = {}): boolean {
  feedbackEvent(input); // the same TypeError with or without a provider
  const provider = rollgateProvider(options?.domain);
  if (!provider) return false;
  try {
    return provider.sendFeedback(input);
  } catch {
    return false;
  }
}

/**
 * Reports an error your code caught (a framework's error handler; the React entry's
 * RollgateErrorBoundary does this) as source "boundary", deduplicated and rate-limited with the
 * uncaught ones. Returns true when a report was queued. Never throws.
 */
export function reportCaughtError(error: unknown, options: SignalOptions = {}): boolean {
  try {
    return rollgateProvider(options?.domain)?.reportError(error, 'boundary') ?? false;
  } catch {
    return false;
  }
}

export interface TaskOptions extends SignalOptions {
  /** A monotonic clock in ms (tests). @default performance.now */
  now?: () => number;
}

export interface Task {
  /**
   * Tracks `<name>.completed` with the elapsed milliseconds (rounded) as `value`, through the
   * OpenFeature client (so any provider's track() gets it); `details` are passed along (the
   * Rollgate provider sends only the name and the value). Returns the elapsed ms, or undefined
   * if the task had already ended. Never throws.
   */
  complete(details?: TrackingEventDetails): number | undefined;
  /** Ends the task without tracking anything (a later complete() does nothing). */
  abandon(): void;
  /** The task has been completed or abandoned. */
  readonly ended: boolean;
}

const TASK_NAME = /^[A-Za-z0-9][\w.:-]*$/;
const MAX_TASK_NAME = 54; // + ".completed" = 64, the server's default maxNameLength

/**
 * Starts timing a task, e.g. `const t = startTask('checkout')` when the payment form opens and
 * `t.complete()` when the payment succeeded: tracks `checkout.completed` with the time it took
 * (ms) as value, which the server summarises per variant. Throws a TypeError for an invalid name.
 */
export function startTask(name: string, options: TaskOptions = {}): Task {
  if (typeof name !== 'string' || !TASK_NAME.test(name) || name.length > MAX_TASK_NAME) {
    throw new TypeError(`startTask: the name must be 1 to ${MAX_TASK_NAME} letters, digits, "_", ".", ":" or "-" (starting with a letter or digit), got ${shown(name)}`);
  }
  if (options?.now !== undefined && typeof options.now !== 'function') throw new TypeError('startTask: options.now must be a function returning ms');
  const now = options?.now ?? (() => performance.now());
  const domain = options?.domain;
  const started = now();
  let ended = false;
  return {
    complete(details?: TrackingEventDetails): number | undefined {
      if (ended) return undefined;
      ended = true;
      try {
        const elapsed = Math.max(0, Math.round(now() - started));
        const client = domain === undefined ? OpenFeature.getClient() : OpenFeature.getClient(domain);
        client.track(`${name}.completed`, { ...details, value: elapsed });
        return elapsed;
      } catch {
        return undefined;
      }
    },
    abandon(): void {
      ended = true;
    },
    get ended() {
      return ended;
    },
  };
}
