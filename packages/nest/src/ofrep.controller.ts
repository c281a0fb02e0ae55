import type { ServerResponse } from 'node:http';
import { Controller, Get, Inject, Optional, Options, Post, Req, Res, VERSION_NEUTRAL, type OnModuleInit, type Type } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ConfigError } from '@rollgate/redis';
import { IdentityError, type Identity, type OfrepResponse } from '@rollgate/server';
import { readJsonBody, type ExpressRequest, type ExpressResponse } from './http-body';
import type { OfrepRegistration } from './rollgate-module-options';
import type { OfrepRuntime, RollgateRuntime } from './rollgate.runtime';
import { ROLLGATE_RUNTIME } from './tokens';

// OFREP over Nest's Express platform, answering exactly as @rollgate/express's ofrep() router:
// bulk + single evaluation of client-visible flags for the verified caller, ETag/304, SSE
// change stream with a ticket, OFREP error bodies, CORS for listed origins, a body size limit.

const ERROR_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'private, no-store' };
const EVALUATE_PATH = /\/ofrep\/v1\/evaluate\/flags(?:\/[^/]+)?\/?$/;

function setHeaders(res: ServerResponse, headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === 'vary') {
      // keep "Origin" from the CORS step: Vary is a list, not a value to overwrite
      const before = String(res.getHeader('Vary') ?? '').split(',').map((v) => v.trim()).filter(Boolean);
      const merged = [...before];
      for (const v of value.split(',').map((s) => s.trim())) if (v && !merged.some((m) => m.toLowerCase() === v.toLowerCase())) merged.push(v);
      res.setHeader('Vary', merged.join(', '));
    } else {
      res.setHeader(name, value);
    }
  }
}

function send(res: ExpressResponse, out: OfrepResponse): void {
  res.status(out.status);
  setHeaders(res, out.headers);
  // end(), not send(): send() would add Express's own weak ETag to error answers
  if (out.body === undefined) res.end();
  else res.end(JSON.stringify(out.body));
}

const tooLarge: OfrepResponse = { status: 413, headers: ERROR_HEADERS, body: { errorDetails: 'request body too large' } };
const notJson: OfrepResponse = { status: 400, headers: ERROR_HEADERS, body: { errorCode: 'INVALID_CONTEXT', errorDetails: 'request body is not valid JSON' } };
const refusals = { tooLarge, notJson };

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
   * Nest's own body parser runs before any route: answer what it refuses on these routes with
   * OFREP error bodies, as the Express router does. Registered before Nest's error handler.
   */
  onModuleInit(): void {
    const adapter = this.adapterHost?.httpAdapter;
    if (!adapter) return;
    if (adapter.getType() !== 'express') {
      throw new ConfigError(`RollgateModule: the OFREP controller needs @nestjs/platform-express (this app runs on ${adapter.getType()}); the guard and decorators work on any platform`);
    }
    adapter.use((err: { type?: string } | undefined, req: ExpressRequest, res: ExpressResponse, next: (err?: unknown) => void) => {
      if (!err || req.method !== 'POST' || !EVALUATE_PATH.test((req.originalUrl ?? req.url ?? '').split('?')[0]!)) return next(err);
      if (err.type === 'entity.too.large') return send(res, tooLarge);
      if (err.type === 'entity.parse.failed') return send(res, notJson);
      return next(err);
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
    const read = await readJsonBody(req, res, this.ofrep.bodyLimit, refusals);
    if (!read.ok) return send(res, read.response);
    const out = this.ofrep.evaluator.bulk(who, read.body, req.headers['if-none-match']);
    const stream = this.ofrep.stream;
    if (out.status === 200 && stream) {
      const base = (req.originalUrl ?? req.url ?? '').split('?')[0]!.replace(/\/evaluate\/flags\/?$/, '');
      (out.body as Record<string, unknown>).eventStreams = [{ type: 'sse', endpoint: { requestUri: `${base}/events?ticket=${stream.issueTicket(who.subject)}` } }];
    }
    send(res, out);
  }

  @Post('ofrep/v1/evaluate/flags/:key')
  async single(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    this.cors(req, res);
    const who = await this.caller(req, res);
    if (!who) return;
    const read = await readJsonBody(req, res, this.ofrep.bodyLimit, refusals);
    if (!read.ok) return send(res, read.response);
    send(res, this.ofrep.evaluator.single(String(req.params?.key), who, read.body));
  }

  /** EventSource cannot send Authorization: the stream is authorised by the ticket from a bulk response. */
  @Get('ofrep/v1/events')
  events(@Req() req: ExpressRequest, @Res() res: ExpressResponse): void {
    this.cors(req, res);
    if (!this.ofrep.stream) {
      send(res, { status: 404, headers: ERROR_HEADERS, body: { errorDetails: 'the change stream is turned off' } });
      return;
    }
    this.ofrep.stream.handle(req, res, req.query?.ticket);
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

  /** The verified caller, or undefined after answering 401 as the Express identity middleware does. */
  private async caller(req: ExpressRequest, res: ExpressResponse): Promise<Identity | undefined> {
    try {
      return await this.runtime.identify(req);
    } catch (e) {
      if (!(e instanceof IdentityError)) {
        send(res, { status: 500, headers: ERROR_HEADERS, body: { errorDetails: 'internal error' } });
        return undefined;
      }
      this.runtime.logger.debug?.(`rollgate: 401 ${req.method} ${req.originalUrl ?? req.url}: ${e.message}`);
      res.status(401);
      res.setHeader('WWW-Authenticate', 'Bearer');
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.send(JSON.stringify({ error: 'unauthorized' }));
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
