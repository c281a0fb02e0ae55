import type { ResolvedErrorSettings } from './options';

// Browser errors as per-variant signals: what was thrown becomes { fingerprint, message, source }
// — a hash of the scrubbed message and the top stack frame, and the message cut to 200
// characters. Nothing else of the stack leaves the page. Reports are deduplicated by fingerprint
// and rate-limited per page before they reach the event batcher. Nothing here throws.

export type ErrorSource = 'error' | 'unhandledrejection' | 'boundary';

export interface ErrorEventBody {
  type: 'error';
  /** 16 lowercase hex characters. */
  fingerprint: string;
  /** Scrubbed, on one line, at most MAX_MESSAGE characters. */
  message: string;
  source: ErrorSource;
}

export const MAX_MESSAGE = 200;
const WINDOW_MS = 60_000;
/** Fingerprints remembered for dedupe; older ones are forgotten first beyond this. */
const MAX_REMEMBERED = 500;

/** Where a frame's location is a browser extension's: not the app's error. */
const EXTENSION = /^(?:chrome|moz|safari|safari-web|ms-browser)-extension:/;

/**
 * Best-effort removal of personal data and unstable ids from a message before it is hashed and
 * sent: query strings and fragments of URLs, e-mail addresses, card-like and long numbers, UUIDs,
 * JWTs and long tokens. Then control characters become spaces and whitespace runs one space.
 */
export function scrubMessage(message: string): string {
  return message
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s?#'"`]*)[?#][^\s'"`]*/gi, '$1')
    .replace(/[\w.+-]+@[\w-]+(?:\.[\w-]+)+/g, '<email>')
    .replace(/\beyJ[\w-]*\.[\w-]+\.[\w-]*/g, '<token>')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<id>')
    .replace(/\b(?=[\w-]*\d)(?=[\w-]*[a-z])[\w-]{32,}\b/gi, '<token>')
    .replace(/\d(?:[ -]?\d){11,18}/g, '<n>')
    .replace(/\d{5,}/g, '<n>')
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** At most `max` characters, never ending in half a surrogate pair; "…" marks a cut. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

// V8: "    at fn (https://x/app.js?v=1:1:2345)", "    at https://x/app.js:1:2", "    at async fn (…)"
const V8_FRAME = /^\s*at (?:.*?\()?(.+?):(\d+):(\d+)\)?\s*$/;
// SpiderMonkey, JavaScriptCore: "fn@https://x/app.js:1:2345", "@https://x/app.js:1:2"
const GECKO_FRAME = /^[^@\s]*@(.+?):(\d+):(\d+)\s*$/;

export interface Frame {
  url: string;
  line: string;
  column: string;
}

/** The first frame of a V8, Firefox or Safari stack that has a location; undefined if none. */
export function topFrame(stack: unknown): Frame | undefined {
  if (typeof stack !== 'string') return undefined;
  for (const line of stack.split('\n', 50)) {
    const m = V8_FRAME.exec(line) ?? GECKO_FRAME.exec(line);
    if (!m) continue;
    let url = m[1]!;
    // V8 eval frames: "eval at fn (https://x/app.js:1:2), <anonymous>" — the outer location
    const inner = /\((.+?):\d+:\d+\)/.exec(url);
    if (url.startsWith('eval at ') && inner) url = inner[1]!;
    return { url, line: m[2]!, column: m[3]! };
  }
  return undefined;
}

/**
 * "path:line:column" of a frame: query string and fragment removed (cache busters, tokens),
 * scheme and host removed (the same bundle served from a CDN or another environment), line and
 * column kept (in a minified bundle they are what tells two errors apart).
 */
export function normaliseFrame(frame: Frame | undefined): string {
  if (!frame) return '';
  let url = frame.url.replace(/[?#].*$/, '');
  const origin = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(url);
  if (origin && /^https?:/i.test(url)) url = url.slice(origin[0].length) || '/';
  return `${url}:${frame.line}:${frame.column}`;
}

/** 16 hex characters: a 64-bit hash (two 32-bit FNV-1a/murmur-mixed halves) of message and frame. Not cryptographic. */
export function fingerprint(message: string, frame: string): string {
  const text = `${message}\n${frame}`;
  let h1 = 0x811c9dc5;
  let h2 = 0x9747b28c;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 0x85ebca6b);
  h1 = Math.imul(h1 ^ (h1 >>> 13), 0xc2b2ae35) ^ (h1 >>> 16);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 0x85ebca6b) ^ h1;
  h2 = Math.imul(h2 ^ (h2 >>> 13), 0xc2b2ae35) ^ (h2 >>> 16);
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

/** Where an `error` event came from when it carries no Error (cross-origin "Script error.", a thrown string). */
export interface ErrorLocation {
  message?: string;
  filename?: string;
  lineno?: number;
  colno?: number;
}

export interface DescribedError {
  message: string;
  frame: Frame | undefined;
}

/** The message (scrubbed, not yet cut) and top frame of anything thrown or rejected. */
export function describeThrown(thrown: unknown, source: ErrorSource, location?: ErrorLocation): DescribedError {
  let message: string;
  let frame: Frame | undefined;
  const error = thrown as { name?: unknown; message?: unknown; stack?: unknown } | null | undefined;
  if (error !== null && typeof error === 'object' && typeof error.message === 'string') {
    const name = typeof error.name === 'string' && error.name ? error.name : 'Error';
    message = error.message ? `${name}: ${error.message}` : name;
    frame = topFrame(error.stack);
  } else if (typeof thrown === 'string') {
    message = thrown;
  } else if (location?.message && (thrown === null || thrown === undefined)) {
    message = location.message.replace(/^Uncaught /, '');
  } else {
    const kind = thrown === null ? 'null' : typeof thrown;
    message = source === 'unhandledrejection' ? `Unhandled rejection with a non-Error value (${kind})` : `Non-Error value thrown (${kind})`;
  }
  if (!frame && location?.filename) frame = { url: location.filename, line: String(location.lineno ?? 0), column: String(location.colno ?? 0) };
  // bounded before the regular expressions run: a message can be a megabyte of JSON
  return { message: scrubMessage(message.slice(0, 4 * MAX_MESSAGE)) || 'Error', frame };
}

/** The wire event for something thrown: the message cut to MAX_MESSAGE, the fingerprint of that and the normalised top frame. */
export function errorEvent(thrown: unknown, source: ErrorSource, location?: ErrorLocation): ErrorEventBody {
  return toEvent(describeThrown(thrown, source, location), source);
}

function toEvent({ message, frame }: DescribedError, source: ErrorSource): ErrorEventBody {
  const cut = truncate(message, MAX_MESSAGE);
  return { type: 'error', fingerprint: fingerprint(cut, normaliseFrame(frame)), message: cut, source };
}

/** Monotonic by default: dedupe and rate windows do not jump with the wall clock. */
function monotonic(): number {
  const perf = (globalThis as { performance?: { now?: () => number } }).performance;
  return typeof perf?.now === 'function' ? perf.now() : Date.now();
}

export type ReportOutcome = 'sent' | 'duplicate' | 'rate-limited' | 'ignored';

/**
 * Per page: each fingerprint at most once per `dedupeMs`, at most `maxPerMinute` reports in a
 * minute (fixed windows); what is dropped for the rate is counted and said in one warning, when
 * the next report is allowed again or when the reporter closes.
 */
export class ErrorReporter {
  private readonly seen = new Map<string, number>();
  private windowStart = -Infinity;
  private inWindow = 0;
  private dropped = 0;

  constructor(
    private readonly settings: Pick<ResolvedErrorSettings, 'dedupeMs' | 'maxPerMinute' | 'ignore'>,
    private readonly send: (event: ErrorEventBody) => void,
    private readonly warn: (message: string) => void,
    private readonly now: () => number = monotonic,
  ) {}

  report(thrown: unknown, source: ErrorSource, location?: ErrorLocation): ReportOutcome {
    const described = describeThrown(thrown, source, location);
    if (described.frame && EXTENSION.test(described.frame.url)) return 'ignored';
    const ignore = this.settings.ignore;
    if (ignore) {
      try {
        if (ignore(described.message, thrown)) return 'ignored';
      } catch {
        // an ignore() that throws ignores nothing
      }
    }
    const event = toEvent(described, source);
    const now = this.now();
    const last = this.seen.get(event.fingerprint);
    if (last !== undefined && now - last < this.settings.dedupeMs) return 'duplicate';
    if (now - this.windowStart >= WINDOW_MS) {
      this.sayDropped();
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.settings.maxPerMinute) {
      this.dropped++;
      return 'rate-limited';
    }
    this.inWindow++;
    this.remember(event.fingerprint, now);
    this.send(event);
    return 'sent';
  }

  /** Says what the rate limit dropped, if anything. */
  close(): void {
    this.sayDropped();
  }

  private remember(fp: string, now: number): void {
    this.seen.delete(fp); // re-inserted last: the Map's order is oldest first
    this.seen.set(fp, now);
    if (this.seen.size <= MAX_REMEMBERED) return;
    for (const [key, at] of this.seen) {
      if (this.seen.size <= MAX_REMEMBERED && now - at < this.settings.dedupeMs) break;
      this.seen.delete(key);
    }
  }

  private sayDropped(): void {
    if (this.dropped === 0) return;
    this.warn(`dropped ${this.dropped} error report(s): more than ${this.settings.maxPerMinute} in a minute on this page (captureErrors.maxPerMinute)`);
    this.dropped = 0;
  }
}

interface ListenerTarget {
  addEventListener(type: string, listener: (event: Event) => void): void;
  removeEventListener(type: string, listener: (event: Event) => void): void;
}

/**
 * Listens for uncaught errors (and, if asked, unhandled rejections) on `target` (the window);
 * returns the function that stops. Only script errors: resource load errors do not bubble to
 * the window, and the listener is not a capturing one. The page's own handling is untouched
 * (no preventDefault: the console still shows the error).
 */
export function listenForErrors(target: ListenerTarget, reporter: Pick<ErrorReporter, 'report'>, unhandledRejections: boolean): () => void {
  const onError = (event: Event) => {
    try {
      const e = event as ErrorEvent;
      reporter.report(e.error, 'error', { message: e.message, filename: e.filename, lineno: e.lineno, colno: e.colno });
    } catch {
      // never into the page
    }
  };
  const onRejection = (event: Event) => {
    try {
      reporter.report((event as PromiseRejectionEvent).reason, 'unhandledrejection');
    } catch {
      // never into the page
    }
  };
  target.addEventListener('error', onError);
  if (unhandledRejections) target.addEventListener('unhandledrejection', onRejection);
  return () => {
    target.removeEventListener('error', onError);
    target.removeEventListener('unhandledrejection', onRejection);
  };
}
