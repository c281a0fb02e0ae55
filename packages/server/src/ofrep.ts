import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { EvaluationContext, EvaluationResult, FlagDefinition, FlagSnapshot } from '@rollgate/core';
import { ConfigError } from '@rollgate/redis';
import type { ChangeStream } from './change-stream';
import { clientViewOf, type ClientView } from './client-view';
import type { Identity } from './identity';

// OFREP (OpenFeature Remote Evaluation Protocol) evaluation, independent of any HTTP framework:
// the adapters turn requests into calls here and the returned {status, headers, body} into responses.

/** Where the flags are read: a RollgateProvider, or anything with a snapshot. */
export interface OfrepSource {
  /** The current flags (a RollgateProvider's swaps on change). */
  readonly snapshot: FlagSnapshot;
  /** When present, flags are only served once loaded: `syncedAt` is undefined before the first load. */
  health?(): { readonly syncedAt: number | undefined };
}

export interface OfrepOptions {
  /** Where the current flags are read (e.g. a RollgateProvider, whose `snapshot` swaps on change). */
  source: OfrepSource;
  /**
   * Which flags browsers may see. Server-only flags never appear, not even by name.
   * @default flags whose metadata has `clientVisible: true`
   */
  clientVisible?: (flagKey: string, definition: Readonly<FlagDefinition>) => boolean;
  /**
   * Context attributes a client may add (e.g. ['locale', 'appVersion']). Identity attributes
   * (targetingKey, roles, tenant and mapped claims) can never be set by the client. @default []
   */
  clientAttributes?: readonly string[];
  /** Names the identity sets, refused in clientAttributes. @default ['targetingKey', 'roles', 'tenant'] */
  identityAttributes?: readonly string[];
  /** Flag metadata keys returned to clients; the rest stays on the server. @default [] */
  exposedMetadata?: readonly string[];
  /**
   * The SSE change stream whose URL the adapters hand out with bulk answers. The evaluator tells it
   * which flags browsers can see (a change to any other flag is not announced) and how many bulk
   * evaluations it serves (so that it can pace its announcements), and its `etagSalt()` goes into
   * the ETag. @default none
   */
  stream?: ChangeStream;
  /**
   * Mixed into the bulk ETag: a restarted server (new ticket key) or an ageing ticket changes the
   * ETag, so a client revalidating gets a 200 with a fresh stream URL instead of a 304 that keeps a
   * dead one. @default the stream's `etagSalt()` when `stream` is given
   */
  etagSalt?: () => string;
}

export interface OfrepResponse {
  status: number;
  headers: Record<string, string>;
  body?: unknown;
}

/** The verified caller an evaluation is for. */
type Caller = Pick<Identity, 'context' | 'mappedNames'>;

type OfrepFlag =
  | { key: string; value?: unknown; reason: string; variant?: string; metadata?: Record<string, string | number | boolean> }
  | { key: string; errorCode: string; errorDetails?: string };

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);
/** Headers of every OFREP (and events) answer: per user, never cached. */
export const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'private, no-store', Vary: 'Authorization' };
const MAX_CLIENT_STRING = 256;
/**
 * Before the first load. OFREP's error statuses are 400, 404 and 500 (clients treat others as
 * malformed), so 500 with OpenFeature's PROVIDER_NOT_READY code, no ETag, and a Retry-After.
 */
const NOT_LOADED = {
  status: 500,
  headers: { ...JSON_HEADERS, 'Retry-After': '5' },
  body: { errorCode: 'PROVIDER_NOT_READY', errorDetails: 'flags are not loaded yet; retry later' },
} as const;

function defaultVisible(_key: string, definition: Readonly<FlagDefinition>): boolean {
  return definition.metadata?.clientVisible === true;
}

/** An ETag's two parts: `<revalidation>.<content>` (see {@link OfrepEvaluator.bulk}). */
const REVALIDATION_LENGTH = 16;
const CONTENT_LENGTH = 22;

export class OfrepEvaluator {
  /** Where the flags are read. */
  readonly source: OfrepSource;
  private readonly visible: (flagKey: string, definition: Readonly<FlagDefinition>) => boolean;
  private readonly clientAttributes: ReadonlySet<string>;
  private readonly exposedMetadata: readonly string[];
  private readonly etagSalt: () => string;
  private readonly stream: ChangeStream | undefined;
  /** The options that shape answers besides the flags, in every client view's revision. */
  private readonly fingerprint: string;
  private readonly views = new WeakMap<FlagSnapshot, ClientView>();
  /** Each engine result's OFREP answer and its JSON text (see answerOf). */
  private readonly answers = new WeakMap<EvaluationResult, { flag: OfrepFlag; text: string }>();

  constructor(options: OfrepOptions) {
    if (!options?.source) throw new ConfigError('ofrep: options.source is required (e.g. your RollgateProvider)');
    this.source = options.source;
    this.visible = options.clientVisible ?? defaultVisible;
    const identity = new Set(options.identityAttributes ?? ['targetingKey', 'roles', 'tenant']);
    for (const name of options.clientAttributes ?? []) {
      if (identity.has(name) || FORBIDDEN.has(name) || name.startsWith('$')) {
        throw new ConfigError(`ofrep: clientAttributes may not include "${name}": it is set from the verified identity only`);
      }
    }
    this.clientAttributes = new Set(options.clientAttributes ?? []);
    this.exposedMetadata = [...(options.exposedMetadata ?? [])];
    this.stream = options.stream;
    const stream = options.stream;
    this.etagSalt = options.etagSalt ?? (stream ? () => stream.etagSalt() : () => '');
    // a custom clientVisible cannot be fingerprinted: its source text stands for it
    this.fingerprint = JSON.stringify(['ofrep.v1', [...this.clientAttributes], this.exposedMetadata, options.clientVisible ? String(options.clientVisible) : '']);
    stream?.follow(this);
  }

  /**
   * `POST /ofrep/v1/evaluate/flags`: every client-visible flag, values only, with an ETag.
   *
   * The ETag has two parts, `"<revalidation>.<content>"`. The first hashes the client view's
   * revision with this caller's evaluation context: while neither changed, the answer cannot have
   * changed, and a revalidation with that ETag gets its 304 without evaluating anything (not when a
   * visible flag reads the clock). The second hashes the answer itself: a caller whose values did
   * not change across a change of flags gets a 304 too, after the evaluation. Both include the
   * `etagSalt`, so an ageing or foreign stream ticket is never kept by a 304.
   */
  bulk(caller: Caller, body: unknown, ifNoneMatch: string | undefined): OfrepResponse {
    if (!this.loaded()) return NOT_LOADED;
    const started = performance.now();
    const ctx = this.contextFor(caller, body);
    if ('error' in ctx) return { status: 400, headers: JSON_HEADERS, body: { errorCode: 'INVALID_CONTEXT', errorDetails: ctx.error } };
    const snapshot = this.source.snapshot;
    const view = this.clientView(snapshot);
    const salt = this.etagSalt();
    const tags = ifNoneMatch === undefined ? undefined : entityTags(ifNoneMatch);
    const revalidation = view.readsClock ? '-' : digest(salt, view.revision, JSON.stringify(ctx.context)).slice(0, REVALIDATION_LENGTH);
    let out: OfrepResponse | undefined;
    if (tags !== undefined && !view.readsClock) {
      const current = tags.find((t) => t.length === REVALIDATION_LENGTH + 1 + CONTENT_LENGTH && t.startsWith(revalidation) && t[REVALIDATION_LENGTH] === '.');
      if (current !== undefined) out = { status: 304, headers: { ...JSON_HEADERS, ETag: `"${current}"` } };
    }
    if (out === undefined) {
      const results = snapshot.evaluateAll(ctx.context, { keys: view.keys });
      const list: OfrepFlag[] = new Array(results.length);
      let json = '[';
      for (let i = 0; i < results.length; i++) {
        const { flag, text } = this.answerOf(results[i]!);
        list[i] = flag;
        json += i === 0 ? text : `,${text}`;
      }
      json += ']';
      const flags = Object.freeze(list);
      SERIALIZED.set(flags, json); // frozen: the text stays true, and writeOfrepResponse need not serialize them again
      const content = digest(salt, json).slice(0, CONTENT_LENGTH);
      const headers = { ...JSON_HEADERS, ETag: `"${revalidation}.${content}"` };
      out = tags?.some((t) => t.slice(-CONTENT_LENGTH - 1) === `.${content}`) ? { status: 304, headers } : { status: 200, headers, body: { flags } };
    }
    this.stream?.noteBulk(performance.now() - started);
    return out;
  }

  /** `POST /ofrep/v1/evaluate/flags/{key}`: one client-visible flag. */
  single(flagKey: string, caller: Caller, body: unknown): OfrepResponse {
    if (!this.loaded()) return { ...NOT_LOADED, body: { key: flagKey, ...NOT_LOADED.body } };
    const ctx = this.contextFor(caller, body);
    if ('error' in ctx) return { status: 400, headers: JSON_HEADERS, body: { key: flagKey, errorCode: 'INVALID_CONTEXT', errorDetails: ctx.error } };
    const snapshot = this.source.snapshot;
    const definition = snapshot.definition(flagKey);
    if (definition === undefined || !this.visible(flagKey, definition)) {
      return { status: 404, headers: JSON_HEADERS, body: { key: flagKey, errorCode: 'FLAG_NOT_FOUND', errorDetails: `flag "${flagKey}" not found` } };
    }
    const flag = this.toOfrep(snapshot.evaluate(flagKey, ctx.context));
    return { status: 'errorCode' in flag ? 400 : 200, headers: JSON_HEADERS, body: flag };
  }

  /** False until the provider has loaded its flags: an empty answer then would read as "no flags". */
  loaded(): boolean {
    return this.source.health === undefined || this.source.health().syncedAt !== undefined;
  }

  /** The keys of the flags browsers may see in this snapshot. */
  visibleKeys(snapshot: FlagSnapshot): string[] {
    return [...this.clientView(snapshot).keys];
  }

  /** What browsers can see of a snapshot (worked out once per snapshot). */
  clientView(snapshot: FlagSnapshot = this.source.snapshot): ClientView {
    let view = this.views.get(snapshot);
    if (view === undefined) {
      view = clientViewOf(snapshot, this.visible, this.fingerprint);
      this.views.set(snapshot, view);
    }
    return view;
  }

  /**
   * The context a request body's `context` evaluates with: only allow-listed, primitive client
   * attributes, never one the identity mapping owns (even when this caller's claims lack it);
   * then the identity, which always wins. The events endpoint builds its context here too, so an
   * event is attributed to what this caller's OFREP requests are served.
   */
  contextFor(caller: Caller, body: unknown): { context: EvaluationContext } | { error: string } {
    if (typeof caller?.context !== 'object' || caller.context === null || !Array.isArray(caller.mappedNames)) {
      throw new TypeError('ofrep: evaluate for the verified Identity ({ context, mappedNames }), not a bare context');
    }
    const identity = caller.context;
    if (body === undefined || body === null) return { context: identity };
    if (typeof body !== 'object' || Array.isArray(body)) return { error: 'the request body must be a JSON object' };
    const sent = Object.prototype.hasOwnProperty.call(body, 'context') ? (body as { context: unknown }).context : undefined;
    if (sent === undefined || sent === null) return { context: identity };
    if (typeof sent !== 'object' || Array.isArray(sent)) return { error: '"context" must be an object' };
    const context: EvaluationContext = {};
    for (const name of this.clientAttributes) {
      if (!Object.prototype.hasOwnProperty.call(sent, name) || caller.mappedNames.includes(name)) continue;
      const value = (sent as Record<string, unknown>)[name];
      if ((typeof value === 'string' && value.length <= MAX_CLIENT_STRING) || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) {
        context[name] = value;
      }
    }
    // identity last: it always wins
    for (const [name, value] of Object.entries(identity)) context[name] = value;
    return { context };
  }

  /**
   * A result's OFREP answer (frozen) and its JSON text. The engine's results are prebuilt and
   * frozen per flag, variant and reason, so most are the same objects request after request: their
   * answers are worked out once (a WeakMap: they go with their snapshot). Other results (errors,
   * a value read from the context) are answered afresh.
   */
  private answerOf(r: EvaluationResult): { flag: OfrepFlag; text: string } {
    let answer = this.answers.get(r);
    if (answer === undefined) {
      const flag = Object.freeze(this.toOfrep(r));
      answer = { flag, text: JSON.stringify(flag) };
      if (Object.isFrozen(r) && Object.isFrozen(r.flagMetadata) && Object.isFrozen(r.value)) this.answers.set(r, answer); // (primitives are frozen)
    }
    return answer;
  }

  private toOfrep(r: EvaluationResult): OfrepFlag {
    if (r.reason === 'ERROR') {
      const code = r.errorCode === 'FLAG_NOT_FOUND' || r.errorCode === 'PARSE_ERROR' || r.errorCode === 'TARGETING_KEY_MISSING' || r.errorCode === 'INVALID_CONTEXT' ? r.errorCode : 'GENERAL';
      // the server's message may name rules or segments: clients get the code only
      return { key: r.flagKey, errorCode: code, errorDetails: 'the flag could not be evaluated' };
    }
    const flag: OfrepFlag = { key: r.flagKey, reason: r.reason };
    // no value = "use your code default" (OFREP ADR-0006): DISABLED, or no variant applies
    if (r.value !== undefined) flag.value = r.value;
    if (r.variant !== undefined) flag.variant = r.variant;
    if (this.exposedMetadata.length > 0) {
      const metadata: Record<string, string | number | boolean> = {};
      for (const k of this.exposedMetadata) if (Object.prototype.hasOwnProperty.call(r.flagMetadata, k)) metadata[k] = r.flagMetadata[k]!;
      flag.metadata = metadata;
    }
    return flag;
  }
}

/** The JSON text of the flag lists bulk answers carry (frozen lists), serialized once. */
const SERIALIZED = new WeakMap<object, string>();

/** base64url SHA-256 of the parts, each ended by a NUL (which JSON text and the salts never hold). */
function digest(...parts: string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('base64url');
}

/** The entity tags of an If-None-Match header, without quotes or the weak prefix. */
function entityTags(header: string): string[] {
  return header.split(',').map((t) => t.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1'));
}

/**
 * Why a request was refused before (or instead of) an evaluation. Every adapter answers these with
 * {@link ofrepError}, so Express and Nest send the same status, headers and body.
 */
export type OfrepRefusal =
  /** No identity, or one that failed verification. */
  | 'unauthorized'
  /** The body is not JSON (or not an object/array). */
  | 'body-not-json'
  /** The body is larger than the limit. */
  | 'body-too-large'
  /** Another refusal of the body reader (unsupported charset or encoding, aborted...): give its status. */
  | 'body-refused'
  /** The flag key in the path is not valid percent-encoding. */
  | 'bad-flag-key'
  /** The change stream's ticket is missing, invalid or expired. */
  | 'bad-stream-ticket'
  /** The change stream is turned off. */
  | 'stream-off'
  /** The process holds as many change streams as it may (maxStreams). */
  | 'too-many-streams'
  /** Anything else (a bug): no detail for the client. */
  | 'internal';

/**
 * The OFREP answer to a refused request. `key` is the flag key of a single-flag request (from its
 * path): OFREP's single-flag error bodies require it, and clients report an answer without it as a
 * GENERAL error instead of the real code.
 */
export function ofrepError(refusal: OfrepRefusal, options: { key?: string | undefined; status?: number | undefined } = {}): OfrepResponse {
  const keyed = options.key === undefined ? {} : { key: options.key };
  switch (refusal) {
    case 'unauthorized':
      return { status: 401, headers: { ...JSON_HEADERS, 'WWW-Authenticate': 'Bearer' }, body: { errorDetails: 'unauthorized' } };
    case 'body-not-json':
      return { status: 400, headers: { ...JSON_HEADERS }, body: { ...keyed, errorCode: 'INVALID_CONTEXT', errorDetails: 'request body is not valid JSON' } };
    case 'body-too-large':
      return { status: 413, headers: { ...JSON_HEADERS }, body: { ...keyed, errorDetails: 'request body too large' } };
    case 'body-refused': {
      const status = Number.isInteger(options.status) && options.status! >= 400 && options.status! <= 599 ? options.status! : 400;
      return { status, headers: { ...JSON_HEADERS }, body: { ...keyed, errorDetails: 'request body refused' } };
    }
    case 'bad-flag-key':
      return { status: 400, headers: { ...JSON_HEADERS }, body: { ...keyed, errorCode: 'GENERAL', errorDetails: 'the flag key in the path is not valid percent-encoding' } };
    case 'bad-stream-ticket':
      return { status: 401, headers: { ...JSON_HEADERS }, body: { errorDetails: 'invalid or expired stream ticket' } };
    case 'too-many-streams':
      return { status: 429, headers: { ...JSON_HEADERS, 'Retry-After': '30' }, body: { errorDetails: 'too many open streams' } };
    case 'stream-off':
      return { status: 404, headers: { ...JSON_HEADERS }, body: { errorDetails: 'the change stream is turned off' } };
    case 'internal':
      return { status: 500, headers: { ...JSON_HEADERS }, body: { ...keyed, errorDetails: 'internal error' } };
    default:
      throw new TypeError(`ofrepError: unknown refusal ${String(refusal as unknown)}`);
  }
}

/** body-parser's error types (besides too large / not JSON) that refuse the request: answered with their 4xx status. */
export const BODY_PARSER_REFUSALS: ReadonlySet<string> = new Set(['charset.unsupported', 'encoding.unsupported', 'request.aborted', 'request.size.invalid', 'entity.verify.failed']);

/**
 * The OFREP answer to what body-parser (express.json, Nest's own parser) refuses: too large, not
 * JSON, or another refusal of the request (415 unsupported charset, 400 aborted...), which keeps
 * its status. Undefined for any other error (a bug: the adapter answers `internal`).
 */
export function ofrepBodyParserRefusal(err: unknown, key?: string): OfrepResponse | undefined {
  const { type, status } = (err ?? {}) as { type?: unknown; status?: unknown };
  if (type === 'entity.too.large') return ofrepError('body-too-large', { key });
  if (type === 'entity.parse.failed') return ofrepError('body-not-json', { key });
  if (typeof type === 'string' && BODY_PARSER_REFUSALS.has(type)) return ofrepError('body-refused', { key, status: typeof status === 'number' ? status : undefined });
  return undefined;
}

const SINGLE_FLAG_PATH = /\/ofrep\/v1\/evaluate\/flags\/([^/?#]+)\/?(?:[?#]|$)/;

/**
 * The flag key of a single-flag request path (`…/ofrep/v1/evaluate/flags/<key>`, query allowed),
 * percent-decoded as the router decodes it. A segment that is not valid percent-encoding is
 * returned as sent (`decoded: false`); undefined for any other path.
 */
export function ofrepPathKey(path: string): { key: string; decoded: boolean } | undefined {
  const raw = SINGLE_FLAG_PATH.exec(path)?.[1];
  if (raw === undefined) return undefined;
  try {
    return { key: decodeURIComponent(raw), decoded: true };
  } catch {
    return { key: raw, decoded: false };
  }
}

/**
 * Writes an OFREP answer on a Node response (Express's and Nest's are both one): the status,
 * every header (Vary merged with what is there, e.g. Origin from CORS), and the JSON body. Never
 * through Express's send(), which would add its weak ETag to error answers.
 */
export function writeOfrepResponse(res: ServerResponse, out: OfrepResponse): void {
  res.statusCode = out.status;
  for (const [name, value] of Object.entries(out.headers)) {
    if (name.toLowerCase() !== 'vary') {
      res.setHeader(name, value);
      continue;
    }
    const merged = String(res.getHeader('Vary') ?? '').split(',').map((v) => v.trim()).filter(Boolean);
    for (const v of value.split(',').map((s) => s.trim())) if (v && !merged.some((m) => m.toLowerCase() === v.toLowerCase())) merged.push(v);
    res.setHeader('Vary', merged.join(', '));
  }
  if (out.body === undefined) res.end();
  else res.end(serialize(out.body));
}

/** JSON.stringify, with a bulk answer's flags taken as serialized already (the same text). */
function serialize(body: unknown): string {
  const flags = (body as { flags?: unknown }).flags;
  const known = typeof flags === 'object' && flags !== null ? SERIALIZED.get(flags) : undefined;
  if (known === undefined) return JSON.stringify(body);
  const keys = Object.keys(body as object);
  if (keys[0] !== 'flags' || keys.length > 2 || (keys.length === 2 && keys[1] !== 'eventStreams')) return JSON.stringify(body);
  const streams = (body as { eventStreams?: unknown }).eventStreams;
  const text = streams === undefined ? undefined : JSON.stringify(streams);
  return text === undefined ? `{"flags":${known}}` : `{"flags":${known},"eventStreams":${text}}`;
}
