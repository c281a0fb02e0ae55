import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ProviderEvents, type OpenFeatureEventEmitter } from '@openfeature/server-sdk';
import type { FlagSnapshot } from '@rollgate/core';
import { ConfigError } from '@rollgate/redis';
import { BroadcastPacer, type PacerStats, type PacingOptions } from './broadcast-pacer';
import { takesAway, type ClientView } from './client-view';
import { ofrepError, writeOfrepResponse, type OfrepSource } from './ofrep';

// Server-Sent Events for OFREP ADR-0008: a notification-only stream telling browsers to refetch
// their bulk evaluation. It carries no flag data; a short-lived signed ticket in the URL (EventSource
// cannot send an Authorization header) keeps anonymous clients from holding connections.
//
// What is announced: only a change browsers can see. Followed by an OfrepEvaluator (its `stream`
// option), the stream announces a change only when one of the flags it names (the provider's
// `flagsChanged`: flags whose definition or `$evaluators` changed) is client-visible before or
// after it; a change to server-only flags or their segments sends nothing.
//
// How: paced (see BroadcastPacer). Every message comes back as a refetch on this process's event
// loop; they go out in slices so that the refetches take at most a share of it.
//
// Positions: every event carries `id: <position>`. Followed by an evaluator, the position is the
// revision of what browsers can see (a hash of the visible flags' definitions): the same in every
// process with the same flags, so a client that reconnects to another instance, or after a restart,
// with nothing changed gets nothing. Otherwise it is `<random id of this stream>.<n>`. A client that
// reconnects sends the last id it saw (Last-Event-ID; EventSource does it by itself); a stream URL
// carries the position of the bulk answer it came with (`since`) for a client that saw no event yet.
// When that position is not the current one — an older one, anything unknown — the stream gets a
// refetchEvaluation (paced as well): a change may have been missed. The position is only ever
// compared for equality with the current one; nothing else is read from it.

export interface ChangeStreamOptions {
  /** Emits ConfigurationChanged / Ready (e.g. `provider.events` of a RollgateProvider). */
  events: Pick<OpenFeatureEventEmitter, 'addHandler' | 'removeHandler'>;
  /** Comment line sent this often so proxies keep the connection. @default 25000 */
  heartbeatMs?: number;
  /** Concurrent streams per process; more get 429 with Retry-After (a caller at its own cap is served: see maxStreamsPerCaller). @default 1000 */
  maxStreams?: number;
  /**
   * Concurrent streams one caller may hold (a ticket names its caller, hashed). When a caller at
   * the cap opens another, its OLDEST stream is ended (the newest wins): a stream left behind — a
   * dead connection not yet noticed, a closed tab behind a proxy — never locks the caller out, and
   * a leaked ticket still cannot take more than this many slots. @default 5 (a few tabs)
   */
  maxStreamsPerCaller?: number;
  /** How long a ticket from a bulk response stays valid. @default 3600 (seconds) */
  ticketTtlSec?: number;
  /**
   * HMAC key for tickets (at least 32 bytes); give every instance behind one load balancer the
   * same, and a ticket issued by one works on any other. A list rotates it: tickets are signed
   * with the FIRST and accepted when signed with ANY — roll out `[old, new]` everywhere, then
   * `[new, old]`, then (a ticket lifetime later) `[new]`; see docs/operations.md, "Stream tickets
   * behind a load balancer". @default random per process
   */
  ticketSecret?: string | Buffer | readonly (string | Buffer)[];
  /** Reconnect delay suggested to EventSource (`retry:`). @default 3000 */
  retryMs?: number;
  /**
   * How announcements are spread so that the refetches they cause take at most a share of the
   * event loop (see docs/operations.md, "Many browsers on one instance"); false sends every
   * message at once. @default { share: 0.5, urgentShare: 0.75 }
   */
  pacing?: false | PacingOptions;
}

/** What the stream reads to tell which changes browsers can see: an OfrepEvaluator. */
export interface ClientViewSource {
  readonly source: OfrepSource;
  clientView(snapshot: FlagSnapshot): ClientView;
}

/** Counts for metrics (ChangeStream.stats()). */
export interface ChangeStreamStats extends PacerStats {
  /** Open streams. */
  streams: number;
  /** Changes announced, and changes not announced because browsers cannot see them, since start. */
  announced: number;
  skipped: number;
}

/** Longest position (Last-Event-ID or `since`) compared; a longer one is unknown (refetch). */
const MAX_POSITION_LENGTH = 64;
/** Heartbeats written per turn of the event loop. */
const PING_SLICE = 500;

export class ChangeStream {
  /** Open streams, each with what drops it from the counts. */
  private readonly streams = new Map<ServerResponse, () => void>();
  /** Open streams per caller tag, oldest first. */
  private readonly perCaller = new Map<string, Set<ServerResponse>>();
  /** Random per instance: positions of another process or an earlier run never match. */
  private readonly streamId = randomBytes(9).toString('base64url');
  private readonly maxStreamsPerCaller: number;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly maxStreams: number;
  private readonly ticketTtlSec: number;
  /** [0] signs; all verify. */
  private readonly secrets: readonly Buffer[];
  private readonly retryMs: number;
  private readonly events: ChangeStreamOptions['events'];
  private sequence = 0;
  private readonly keyId: string;
  private closed = false;
  private readonly pacer: BroadcastPacer<ServerResponse> | undefined;
  private view: ClientViewSource | undefined;
  /** The snapshot whose changes were last looked at (followed by an evaluator). */
  private seen: FlagSnapshot | undefined;
  private announced = 0;
  private skipped = 0;
  private event: { id: string; text: string } | undefined;
  private readonly onChange = (details?: object) => {
    const named = (details as { flagsChanged?: unknown } | undefined)?.flagsChanged;
    this.changed(Array.isArray(named) && named.every((k) => typeof k === 'string') ? (named as string[]) : undefined);
  };
  private readonly onReady = () => this.changed(undefined);

  constructor(options: ChangeStreamOptions) {
    if (!options?.events) throw new ConfigError('changeStream: options.events is required (e.g. provider.events)');
    this.events = options.events;
    this.maxStreams = options.maxStreams ?? 1000;
    this.maxStreamsPerCaller = options.maxStreamsPerCaller ?? 5;
    for (const [name, value] of [['maxStreams', this.maxStreams], ['maxStreamsPerCaller', this.maxStreamsPerCaller]] as const) {
      if (!Number.isInteger(value) || value < 1) throw new ConfigError(`changeStream: options.${name} must be an integer >= 1, got ${String(value)}`);
    }
    this.ticketTtlSec = options.ticketTtlSec ?? 3600;
    this.retryMs = options.retryMs ?? 3000;
    this.secrets = secretsOf(options.ticketSecret);
    this.keyId = this.sign('key-id').slice(0, 12);
    this.pacer = options.pacing === false ? undefined : new BroadcastPacer<ServerResponse>((res) => this.sendRefetch(res), options.pacing ?? {});
    this.events.addHandler(ProviderEvents.ConfigurationChanged, this.onChange);
    this.events.addHandler(ProviderEvents.Ready, this.onReady); // back from an outage: flags may differ
    this.heartbeat = setInterval(() => this.ping(), options.heartbeatMs ?? 25_000);
    this.heartbeat.unref();
  }

  /**
   * Announce only the changes browsers can see, as `view` (an OfrepEvaluator) tells them, and take
   * positions from its revisions. Called by the evaluator given this stream (OfrepOptions.stream).
   */
  follow(view: ClientViewSource): void {
    if (this.view !== undefined && this.view !== view) throw new ConfigError('changeStream: already followed by another OfrepEvaluator; give each evaluator its own stream');
    this.view = view;
    this.seen = view.source.snapshot;
  }

  /** A bulk evaluation was served in `ms` (the evaluator reports it): the pacer measures refetches with it. */
  noteBulk(ms: number): void {
    this.pacer?.noteBulk(ms);
  }

  /** Open streams, messages waiting to go out, the measured cost of a refetch, changes announced and skipped. */
  stats(): ChangeStreamStats {
    return { streams: this.streams.size, ...(this.pacer?.stats() ?? { pending: 0, refetchCostMs: 0, share: 0 }), announced: this.announced, skipped: this.skipped };
  }

  /** Open streams (for metrics and tests). */
  get size(): number {
    return this.streams.size;
  }

  /**
   * A ticket to put in the stream URL of a bulk response for `caller` (the verified subject). It
   * carries an expiry and a keyed hash of the caller (not the caller's name: URLs end up in logs).
   */
  issueTicket(caller: string, now = Date.now()): string {
    if (typeof caller !== 'string' || caller === '') throw new TypeError('changeStream.issueTicket(caller): give the verified subject');
    const exp = Math.floor(now / 1000) + this.ticketTtlSec;
    const tag = this.sign(`caller:${caller}`).slice(0, 16);
    return `${exp}.${tag}.${this.sign(`${exp}.${tag}`)}`;
  }

  /**
   * Where the stream stands (the `id:` of its events): followed by an evaluator, the revision of
   * what browsers can see now (equal on every instance with the same flags); otherwise this
   * stream's id and the number of changes it announced. Only ever compared for equality.
   */
  get position(): string {
    const view = this.view;
    return view ? view.clientView(view.source.snapshot).revision : `${this.streamId}.${this.sequence}`;
  }

  /**
   * The query of the stream URL to hand out with a bulk answer for `caller`:
   * `ticket=<ticket>&since=<position>` (both URL-safe).
   */
  streamQuery(caller: string, now = Date.now()): string {
    return `ticket=${this.issueTicket(caller, now)}&since=${this.position}`;
  }

  /** The caller tag of a valid, unexpired ticket; undefined otherwise. */
  verifyTicket(ticket: unknown, now = Date.now()): string | undefined {
    if (typeof ticket !== 'string' || ticket.length > 128) return undefined;
    const [exp, tag, sig, extra] = ticket.split('.');
    if (!exp || !tag || !sig || extra !== undefined || !/^\d+$/.test(exp) || Number(exp) * 1000 < now) return undefined;
    const given = Buffer.from(sig);
    // signed with any of the secrets (the first signs; the others are being rotated in or out)
    let valid = false;
    for (const secret of this.secrets) {
      const expected = Buffer.from(this.sign(`${exp}.${tag}`, secret));
      if (expected.length === given.length && timingSafeEqual(expected, given)) valid = true;
    }
    return valid ? tag : undefined;
  }

  /**
   * Changes when tickets would change meaning: per ticket key, and every half ticket lifetime
   * (a ticket handed out with a response stays valid at least half a lifetime after its ETag
   * stops matching, so a revalidating client always has a working stream URL).
   */
  etagSalt(now = Date.now()): string {
    const window = Math.floor(now / 1000 / Math.max(1, this.ticketTtlSec / 2));
    return `t2.${this.keyId}.${window}`; // t2: the ticket format (with a caller tag)
  }

  /**
   * Serves one SSE connection until the client goes away or the stream is closed. `since` is the
   * position from the stream URL (see {@link streamQuery}); the request's Last-Event-ID, when
   * present, takes its place.
   */
  handle(req: IncomingMessage, res: ServerResponse, ticket: unknown, since?: unknown): void {
    // The client may have left while the app's middleware ran: its close event has fired already,
    // so a stream counted now would never be dropped. (Not req.destroyed: a request whose empty
    // body some middleware read is destroyed too, with its client still there.)
    if (res.destroyed || res.writableEnded || req.socket.destroyed) return;
    const caller = this.closed ? undefined : this.verifyTicket(ticket);
    if (caller === undefined) {
      writeOfrepResponse(res, ofrepError('bad-stream-ticket'));
      return;
    }
    const mine = this.perCaller.get(caller) ?? new Set<ServerResponse>();
    // the newest stream wins: a caller at its cap loses its oldest stream, never the new one
    while (mine.size >= this.maxStreamsPerCaller) this.evict(mine.values().next().value!);
    if (this.streams.size >= this.maxStreams) {
      writeOfrepResponse(res, ofrepError('too-many-streams'));
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no', // nginx: do not buffer the stream
    });
    const lastEventId = req.headers['last-event-id'];
    const from = typeof lastEventId === 'string' ? lastEventId : since;
    const current = this.position;
    // No position at all (a client of another kind): nothing to compare, nothing sent. Any other
    // position than the current one (older, another process's, malformed): a refetch, paced.
    const missed = from !== undefined && !(typeof from === 'string' && from.length <= MAX_POSITION_LENGTH && from === current);
    // `id:` without data still sets the browser's last event id, so a reconnect tells its position
    res.write(`retry: ${this.retryMs}\nid: ${current}\n: connected\n\n${missed && !this.pacer ? this.refetchEvent() : ''}`);
    mine.add(res);
    this.perCaller.set(caller, mine);
    const drop = () => {
      if (!this.streams.delete(res)) return; // close after error, or evicted: counted once
      this.pacer?.remove(res);
      mine.delete(res);
      if (mine.size === 0 && this.perCaller.get(caller) === mine) this.perCaller.delete(caller);
    };
    this.streams.set(res, drop);
    // the response's close is the connection's; the request's also fires once a middleware has
    // read its (empty) body, with the client still listening
    res.on('close', drop);
    res.on('error', drop);
    // many clients reconnecting at once (after a restart) with a change missed: their refetches are paced too
    if (missed && this.pacer) this.pacer.enqueue(res);
  }

  /**
   * Tells every open stream to refetch (paced). `urgent`: something was taken away from browsers
   * (a kill switch, a rollback): the urgent share applies.
   */
  broadcast(urgent = false): void {
    if (this.closed) return;
    this.sequence++;
    this.announced++;
    if (this.pacer) this.pacer.announce(this.streams.keys(), urgent);
    else this.write(this.refetchEvent());
  }

  /** Ends every stream and stops listening; nothing is left running. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.pacer?.close();
    this.events.removeHandler(ProviderEvents.ConfigurationChanged, this.onChange);
    this.events.removeHandler(ProviderEvents.Ready, this.onReady);
    for (const res of this.streams.keys()) res.end();
    this.streams.clear();
    this.perCaller.clear();
  }

  /**
   * A change event: announced when browsers can see it. `flagsChanged` (the provider's) names the
   * flags whose behaviour changed, `$evaluators` included; without it (Ready after an outage, a
   * provider that does not say), the visible revisions before and after are compared.
   */
  private changed(flagsChanged: readonly string[] | undefined): void {
    const view = this.view;
    if (view === undefined) return this.broadcast(); // not followed: every change is announced
    const before = this.seen!;
    const after = view.source.snapshot;
    this.seen = after;
    if (after === before) return; // e.g. Ready after an outage that changed nothing: nothing to say
    const was = view.clientView(before);
    const is = view.clientView(after);
    const affected = flagsChanged
      ? flagsChanged.filter((key) => was.visible.has(key) || is.visible.has(key))
      : was.revision === is.revision
        ? []
        : [...new Set([...was.keys, ...is.keys])];
    if (affected.length === 0) {
      this.skipped++;
      return;
    }
    this.broadcast(takesAway(affected, before, was, after, is));
  }

  /** The refetchEvaluation event to one stream, at the position current when it goes out. */
  private sendRefetch(res: ServerResponse): void {
    if (!res.destroyed && !res.writableEnded) res.write(this.refetchEvent());
  }

  /** The heartbeat, written in slices so that thousands of streams do not hold the event loop at once. */
  private ping(): void {
    const all = [...this.streams.keys()];
    const next = (from: number) => {
      if (this.closed) return;
      const end = Math.min(all.length, from + PING_SLICE);
      for (let i = from; i < end; i++) if (!all[i]!.writableEnded) all[i]!.write(': ping\n\n');
      if (end < all.length) setImmediate(next, end);
    };
    next(0);
  }

  /** The refetchEvaluation event at the current position. */
  private refetchEvent(): string {
    const id = this.position;
    // built once per position: an announcement writes it to every stream
    if (this.event?.id !== id) this.event = { id, text: `id: ${id}\nevent: message\ndata: ${JSON.stringify({ type: 'refetchEvaluation', etag: id })}\n\n` };
    return this.event.text;
  }

  /** Ends a stream to make room for a newer one of its caller (EventSource reconnects to a full stream: see maxStreamsPerCaller). */
  private evict(res: ServerResponse): void {
    this.streams.get(res)?.();
    res.end(': replaced by a newer stream of this caller\n\n');
  }

  private write(chunk: string): void {
    for (const res of this.streams.keys()) res.write(chunk);
  }

  private sign(payload: string, secret = this.secrets[0]!): string {
    return createHmac('sha256', secret).update(`rollgate-sse:${payload}`).digest('base64url');
  }
}

/** The ticket secrets: one, or a list (the first signs); each at least 32 bytes. */
function secretsOf(given: ChangeStreamOptions['ticketSecret']): Buffer[] {
  if (given === undefined) return [randomBytes(32)];
  const list = Array.isArray(given) ? (given as readonly (string | Buffer)[]) : [given as string | Buffer];
  if (list.length === 0) throw new ConfigError('changeStream: ticketSecret is an empty list; give at least one secret (the first signs tickets)');
  return list.map((secret, i) => {
    if (typeof secret !== 'string' && !Buffer.isBuffer(secret)) {
      throw new ConfigError(`changeStream: ticketSecret${list.length > 1 || Array.isArray(given) ? `[${i}]` : ''} must be a string or a Buffer`);
    }
    const key = Buffer.from(secret);
    if (key.length < 32) throw new ConfigError(`changeStream: ticketSecret${Array.isArray(given) ? `[${i}]` : ''} must be at least 32 bytes`);
    return key;
  });
}
