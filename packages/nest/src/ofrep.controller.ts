import { Controller, Get, Inject, Optional, Options, Post, Req, Res, VERSION_NEUTRAL, type OnModuleInit, type Type } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ConfigError } from '@rollgate/redis';
import {
  EVENTS_PATH,
  IdentityError,
  eventsBodyParserRefusal,
  eventsCorsHeaders,
  eventsError,
  ofrepBodyParserRefusal,
  ofrepError,
  ofrepPathKey,
  writeOfrepResponse,
  type Identity,
  type OfrepResponse,
} from '@rollgate/server';
import { readJsonBody, type ExpressRequest, type ExpressResponse } from './http-body';
import type { OfrepRegistration } from './rollgate-module-options';
import type { OfrepRuntime, RollgateRuntime } from './rollgate.runtime';
import { ROLLGATE_RUNTIME } from './tokens';

// OFREP over Nest's Express platform, answering exactly as @rollgate/express's ofrep() router:
// bulk + single evaluation of client-visible flags for the verified caller, ETag/304, SSE
// change stream with a ticket, OFREP error bodies, CORS for listed origins, a body size limit.

const EVALUATE_PATH = /\/ofrep\/v1\/evaluate\/flags(?:\/[^/]+)?\/?$/;
const EVENTS_ROUTE = EVENTS_PATH.slice(1); // 'rollgate/v1/events', under the controller's path
const EVENTS_PATH_END = /\/rollgate\/v1\/events\/?$/;
const EVENTS_REFUSALS = { tooLarge: eventsError('body-too-large'), notJson: eventsError('body-not-json') };

/** Every answer goes out as the Express router sends it (the same function). */
const send: (res: ExpressResponse, out: OfrepResponse) => void = writeOfrepResponse;

/** The body refusals of readJsonBody for a request (single-flag answers carry the key). */
function refusalsFor(key?: string) {
  return { tooLarge: ofrepError('body-too-large', { key }), notJson: ofrepError('body-not-json', { key }) };
}

/**
 * The OFREP endpoints. Registered by RollgateModule when `ofrep` is set, under `ofrep.path`
 * (see {@link ofrepControllerFor}); needs @nestjs/platform-express.
 */
export class OfrepController implements OnModuleInit {
  private readonly ofrep: OfrepRuntime;

  constructor(
    @Inject(ROLLGATE_RUNTIME) private readonly runtime: RollgateRuntime,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {
    this.ofrep = runtime.ofrep!;
  }

  /**
   * Nest's own body parser (and the router's decoding of the key) runs before any route: answer
   * what they refuse on these routes as the Express router does — the same answers, in the same
   * order (an unidentified caller gets 401 before its body is judged). Registered before Nest's
   * error handler.
   */
  onModuleInit(): void {
    const adapter = this.adapterHost?.httpAdapter;
    if (!adapter) return;
    if (adapter.getType() !== 'express') {
      throw new ConfigError(`RollgateModule: the OFREP controller needs @nestjs/platform-express (this app runs on ${adapter.getType()}); the guard and decorators work on any platform`);
    }
    adapter.use((err: { status?: number; type?: string } | undefined, req: ExpressRequest, res: ExpressResponse, next: (err?: unknown) => void) => {
      const path = (req.originalUrl ?? req.url ?? '').split('?')[0]!;
      if (err && req.method === 'POST' && EVENTS_PATH_END.test(path)) return this.eventsBodyRefused(err, req, res, next);
      if (!err || req.method !== 'POST' || !EVALUATE_PATH.test(path)) return next(err);
      const key = ofrepPathKey(path);
      this.cors(req, res); // as the Express router, whose CORS step runs before its body parser
      // the router could not decode the key: a malformed percent-encoding
      if (err instanceof URIError && key?.decoded === false) return send(res, ofrepError('bad-flag-key', { key: key.key }));
      const refused = ofrepBodyParserRefusal(err, key?.key);
      if (!refused) return next(err);
      // the Express order: who is calling first (401), then the body (400 / 413 / 415)
      void this.runtime.identify(req).then(
        () => send(res, refused),
        (e: unknown) => send(res, e instanceof IdentityError ? ofrepError('unauthorized') : ofrepError('internal', { key: key?.key })),
      );
    });
  }

  @Options(['ofrep/v1/evaluate/flags', 'ofrep/v1/evaluate/flags/:key', 'ofrep/v1/events'])
  preflight(@Req() req: ExpressRequest, @Res() res: ExpressResponse): void {
    this.cors(req, res);
    res.status(204).end();
  }

  @Post('ofrep/v1/evaluate/flags')
  async bulk(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    this.cors(req, res);
    const who = await this.caller(req, res);
    if (!who) return;
    const read = await readJsonBody(req, res, this.ofrep.bodyLimit, refusalsFor());
    if (!read.ok) return send(res, read.response);
    const out = this.ofrep.evaluator.bulk(who, read.body, req.headers['if-none-match']);
    const stream = this.ofrep.stream;
    if (out.status === 200 && stream) {
      const base = (req.originalUrl ?? req.url ?? '').split('?')[0]!.replace(/\/evaluate\/flags\/?$/, '');
      (out.body as Record<string, unknown>).eventStreams = [{ type: 'sse', endpoint: { requestUri: `${base}/events?${stream.streamQuery(who.subject)}` } }];
    }
    send(res, out);
  }

  @Post('ofrep/v1/evaluate/flags/:key')
  async single(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    this.cors(req, res);
    const who = await this.caller(req, res);
    if (!who) return;
    const key = String(req.params?.key);
    const read = await readJsonBody(req, res, this.ofrep.bodyLimit, refusalsFor(key));
    if (!read.ok) return send(res, read.response);
    send(res, this.ofrep.evaluator.single(key, who, read.body));
  }

  @Options(EVENTS_ROUTE)
  eventsPreflight(@Req() req: ExpressRequest, @Res() res: ExpressResponse): void {
    this.eventsCors(req, res, true);
    res.status(204).end();
  }

  /** Browser events (the web provider's track()): judged and counted by the same EventIntake code as the Express router's. */
  @Post(EVENTS_ROUTE)
  async track(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    this.eventsCors(req, res, false);
    const intake = this.ofrep.tracking;
    if (!intake) return send(res, eventsError('not-configured'));
    const who = await this.caller(req, res);
    if (!who) return;
    const read = await readJsonBody(req, res, this.ofrep.bodyLimit, EVENTS_REFUSALS);
    if (!read.ok) return send(res, read.response);
    let out: OfrepResponse;
    try {
      out = intake.handle(who, read.body);
    } catch {
      out = eventsError('internal'); // a bug (or a throwing sink): as the Express router's error handler answers
    }
    send(res, out);
  }

  /** EventSource cannot send Authorization: the stream is authorised by the ticket from a bulk response. */
  @Get('ofrep/v1/events')
  events(@Req() req: ExpressRequest, @Res() res: ExpressResponse): void {
    this.cors(req, res);
    if (!this.ofrep.stream) {
      send(res, ofrepError('stream-off'));
      return;
    }
    this.ofrep.stream.handle(req, res, req.query?.ticket, req.query?.since);
  }

  /** Sets the events route's CORS headers (the server's function, as the Express router's). */
  private eventsCors(req: ExpressRequest, res: ExpressResponse, preflight: boolean): void {
    for (const [name, value] of Object.entries(eventsCorsHeaders(req.headers.origin, this.ofrep.origins, preflight))) res.setHeader(name, value);
  }

  /** What Nest's body parser refused on the events route, answered in the Express router's order. */
  private eventsBodyRefused(err: unknown, req: ExpressRequest, res: ExpressResponse, next: (err?: unknown) => void): void {
    this.eventsCors(req, res, false);
    if (!this.ofrep.tracking) return send(res, eventsError('not-configured'));
    const refused = eventsBodyParserRefusal(err);
    if (!refused) return next(err);
    void this.runtime.identify(req).then(
      () => send(res, refused),
      (e: unknown) => send(res, e instanceof IdentityError ? eventsError('unauthorized') : eventsError('internal')),
    );
  }

  private cors(req: ExpressRequest, res: ExpressResponse): void {
    const origin = req.headers.origin;
    if (typeof origin !== 'string' || !this.ofrep.origins.has(origin)) return;
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Allow-Credentials', 'true');
    res.setHeader('Access-Control-Expose-Headers', 'ETag');
    res.setHeader('Vary', 'Origin, Authorization');
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'POST, GET, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, If-None-Match, Authorization');
      res.setHeader('Access-Control-Max-Age', '600');
    }
  }

  /** The verified caller, or undefined after answering 401 as the Express router does (the same function). */
  private async caller(req: ExpressRequest, res: ExpressResponse): Promise<Identity | undefined> {
    try {
      return await this.runtime.identify(req);
    } catch (e) {
      if (!(e instanceof IdentityError)) {
        send(res, ofrepError('internal', { key: typeof req.params?.key === 'string' ? req.params.key : undefined }));
        return undefined;
      }
      this.runtime.logger.debug?.(`rollgate: 401 ${req.method} ${req.originalUrl ?? req.url}: ${e.message}`);
      send(res, ofrepError('unauthorized'));
      return undefined;
    }
  }
}

/** The controller class for one module: its route prefix and your class decorators applied. */
export function ofrepControllerFor(registration: OfrepRegistration): Type<OfrepController> {
  class RollgateOfrepController extends OfrepController {}
  Controller({ path: registration.path, version: VERSION_NEUTRAL })(RollgateOfrepController);
  for (const decorate of [...registration.decorators].reverse()) decorate(RollgateOfrepController);
  return RollgateOfrepController;
}
