import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ProviderEvents, type OpenFeatureEventEmitter } from '@openfeature/server-sdk';
import { ConfigError } from '@rollgate/redis';

// Server-Sent Events for OFREP ADR-0008: a notification-only stream telling browsers to refetch
// their bulk evaluation. It carries no flag data; a short-lived signed ticket in the URL (EventSource
// cannot send an Authorization header) keeps anonymous clients from holding connections.

export interface ChangeStreamOptions {
  /** Emits ConfigurationChanged / Ready (e.g. `provider.events` of a RollgateProvider). */
  events: Pick<OpenFeatureEventEmitter, 'addHandler' | 'removeHandler'>;
  /** Comment line sent this often so proxies keep the connection. @default 25000 */
  heartbeatMs?: number;
  /** Concurrent streams per process; more get 429 with Retry-After. @default 1000 */
  maxStreams?: number;
  /**
   * Concurrent streams one caller may hold (a ticket names its caller, hashed); more get 429. A
   * leaked ticket can then not take every slot. @default 5 (a few tabs)
   */
  maxStreamsPerCaller?: number;
  /** How long a ticket from a bulk response stays valid. @default 3600 (seconds) */
  ticketTtlSec?: number;
  /** HMAC key for tickets; share it across instances behind one load balancer. @default random per process */
  ticketSecret?: string | Buffer;
  /** Reconnect delay suggested to EventSource (`retry:`). @default 3000 */
  retryMs?: number;
}

export class ChangeStream {
  private readonly streams = new Set<ServerResponse>();
  /** Open streams per caller tag. */
  private readonly perCaller = new Map<string, number>();
  private readonly maxStreamsPerCaller: number;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly maxStreams: number;
  private readonly ticketTtlSec: number;
  private readonly secret: Buffer;
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
    this.secret = options.ticketSecret !== undefined ? Buffer.from(options.ticketSecret) : randomBytes(32);
    if (this.secret.length < 32) throw new ConfigError('changeStream: ticketSecret must be at least 32 bytes');
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

  /** The caller tag of a valid, unexpired ticket; undefined otherwise. */
  verifyTicket(ticket: unknown, now = Date.now()): string | undefined {
    if (typeof ticket !== 'string' || ticket.length > 128) return undefined;
    const [exp, tag, sig, extra] = ticket.split('.');
    if (!exp || !tag || !sig || extra !== undefined || !/^\d+$/.test(exp) || Number(exp) * 1000 < now) return undefined;
    const expected = Buffer.from(this.sign(`${exp}.${tag}`));
    const given = Buffer.from(sig);
    return expected.length === given.length && timingSafeEqual(expected, given) ? tag : undefined;
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

  /** Serves one SSE connection until the client goes away or the stream is closed. */
  handle(req: IncomingMessage, res: ServerResponse, ticket: unknown): void {
    // The client may have left while the app's middleware ran: its close event has fired already,
    // so a stream counted now would never be dropped. (Not req.destroyed: a request whose empty
    // body some middleware read is destroyed too, with its client still there.)
    if (res.destroyed || res.writableEnded || req.socket.destroyed) return;
    const caller = this.closed ? undefined : this.verifyTicket(ticket);
    if (caller === undefined) {
      res.writeHead(401, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' }).end('{"errorDetails":"invalid or expired stream ticket"}');
      return;
    }
    const mine = this.perCaller.get(caller) ?? 0;
    if (this.streams.size >= this.maxStreams || mine >= this.maxStreamsPerCaller) {
      const why = mine >= this.maxStreamsPerCaller ? 'too many open streams for this caller' : 'too many open streams';
      res.writeHead(429, { 'Content-Type': 'application/json; charset=utf-8', 'Retry-After': '30' }).end(JSON.stringify({ errorDetails: why }));
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no', // nginx: do not buffer the stream
    });
    res.write(`retry: ${this.retryMs}\n: connected\n\n`);
    this.streams.add(res);
    this.perCaller.set(caller, mine + 1);
    const drop = () => {
      if (!this.streams.delete(res)) return; // close after error: counted once
      const left = (this.perCaller.get(caller) ?? 1) - 1;
      if (left > 0) this.perCaller.set(caller, left);
      else this.perCaller.delete(caller);
    };
    // the response's close is the connection's; the request's also fires once a middleware has
    // read its (empty) body, with the client still listening
    res.on('close', drop);
    res.on('error', drop);
  }

  /** Tells every open stream to refetch. */
  broadcast(): void {
    const data = JSON.stringify({ type: 'refetchEvaluation', etag: `change-${++this.sequence}` });
    this.write(`event: message\ndata: ${data}\n\n`);
  }

  /** Ends every stream and stops listening; nothing is left running. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.events.removeHandler(ProviderEvents.ConfigurationChanged, this.onChange);
    this.events.removeHandler(ProviderEvents.Ready, this.onChange);
    for (const res of this.streams) res.end();
    this.streams.clear();
    this.perCaller.clear();
  }

  private write(chunk: string): void {
    for (const res of this.streams) res.write(chunk);
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(`rollgate-sse:${payload}`).digest('base64url');
  }
}
