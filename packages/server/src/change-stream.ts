import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ProviderEvents, type OpenFeatureEventEmitter } from '@openfeature/server-sdk';
import { ConfigError } from '@rollgate/redis';
import { ofrepError, writeOfrepResponse } from './ofrep';

// Server-Sent Events for OFREP ADR-0008: a notification-only stream telling browsers to refetch
// their bulk evaluation. It carries no flag data; a short-lived signed ticket in the URL (EventSource
// cannot send an Authorization header) keeps anonymous clients from holding connections.
//
// Positions: every event carries `id: <stream id>.<n>` — a random id of this ChangeStream (so of
// this process) and the number of changes it has announced. A client that reconnects sends the
// last id it saw (Last-Event-ID; EventSource does it by itself); a stream URL carries the position
// of the bulk answer it came with (`since`) for a client that saw no event yet. When that position
// is not the current one — an older event, another process, a restart, anything unknown — the
// stream starts with a refetchEvaluation: a change may have been missed. The position is only ever
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
}

/** Longest position (Last-Event-ID or `since`) compared; a longer one is unknown (refetch). */
const MAX_POSITION_LENGTH = 64;

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
  private readonly onChange = () => this.broadcast();

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
    this.events.addHandler(ProviderEvents.ConfigurationChanged, this.onChange);
    this.events.addHandler(ProviderEvents.Ready, this.onChange); // back from an outage: flags may differ
    this.heartbeat = setInterval(() => this.write(': ping\n\n'), options.heartbeatMs ?? 25_000);
    this.heartbeat.unref();
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
   * The position of the latest change this stream announced (the `id:` of its events). Changes
   * with every announcement; only ever compared for equality.
   */
  get position(): string {
    return `${this.streamId}.${this.sequence}`;
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
    // position than the current one (older, another process's, malformed): refetch now.
    const missed = from !== undefined && !(typeof from === 'string' && from.length <= MAX_POSITION_LENGTH && from === current);
    // `id:` without data still sets the browser's last event id, so a reconnect tells its position
    res.write(`retry: ${this.retryMs}\nid: ${current}\n: connected\n\n${missed ? this.refetchEvent() : ''}`);
    mine.add(res);
    this.perCaller.set(caller, mine);
    const drop = () => {
      if (!this.streams.delete(res)) return; // close after error, or evicted: counted once
      mine.delete(res);
      if (mine.size === 0 && this.perCaller.get(caller) === mine) this.perCaller.delete(caller);
    };
    this.streams.set(res, drop);
    // the response's close is the connection's; the request's also fires once a middleware has
    // read its (empty) body, with the client still listening
    res.on('close', drop);
    res.on('error', drop);
  }

  /** Tells every open stream to refetch. */
  broadcast(): void {
    this.sequence++;
    this.write(this.refetchEvent());
  }

  /** Ends every stream and stops listening; nothing is left running. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.events.removeHandler(ProviderEvents.ConfigurationChanged, this.onChange);
    this.events.removeHandler(ProviderEvents.Ready, this.onChange);
    for (const res of this.streams.keys()) res.end();
    this.streams.clear();
    this.perCaller.clear();
  }

  /** The refetchEvaluation event at the current position. */
  private refetchEvent(): string {
    const id = this.position;
    return `id: ${id}\nevent: message\ndata: ${JSON.stringify({ type: 'refetchEvaluation', etag: id })}\n\n`;
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
