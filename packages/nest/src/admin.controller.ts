import { All, Controller, Get, Inject, Optional, Req, Res, VERSION_NEUTRAL, type OnModuleInit, type Type } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ConfigError } from '@rollgate/redis';
import { ADMIN_BODY_METHODS, IdentityError, type AdminRequest, type AdminResponse, type Identity } from '@rollgate/server';
import { readJsonBody, type ExpressRequest, type ExpressResponse } from './http-body';
import type { AdminRegistration } from './rollgate-module-options';
import type { AdminRuntime, RollgateRuntime } from './rollgate.runtime';
import { ROLLGATE_RUNTIME } from './tokens';

// The admin API over Nest's Express platform, answering exactly as @rollgate/express's
// adminRouter(): every route needs an identity that `authorize(identity)` accepts; writes need
// If-Match (the version read) and go through the store's one write path (AdminApi).

const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' };
const tooLarge: AdminResponse = { status: 413, headers: JSON_HEADERS, body: { error: 'too_large', message: 'request body too large' } };
const notJson: AdminResponse = { status: 400, headers: JSON_HEADERS, body: { error: 'invalid', message: 'request body is not valid JSON' } };
const refusals = { tooLarge, notJson };
const ADMIN_PATH = /\/rollgate\/admin(?:\/|$)/;

function send(res: ExpressResponse, out: AdminResponse): void {
  res.status(out.status);
  for (const [name, value] of Object.entries(out.headers)) res.setHeader(name, value);
  res.send(JSON.stringify(out.body));
}

function header(req: ExpressRequest, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * The admin endpoints. Registered by RollgateModule when `admin` is set, under `admin.path`
 * (see {@link adminControllerFor}); needs @nestjs/platform-express.
 *
 * The routes, under `/rollgate/admin`, are AdminApi's (see @rollgate/server): flags, evaluators,
 * audit, revert, explain, plans and their actions and series, and `/events` (server-sent events).
 */
export class AdminController implements OnModuleInit {
  private readonly admin: AdminRuntime;

  constructor(
    @Inject(ROLLGATE_RUNTIME) private readonly runtime: RollgateRuntime,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {
    this.admin = runtime.admin!;
  }

  /** Nest's own body parser runs before any route: answer what it refuses here with the admin API's bodies. */
  onModuleInit(): void {
    const adapter = this.adapterHost?.httpAdapter;
    if (!adapter) return;
    if (adapter.getType() !== 'express') {
      throw new ConfigError(`RollgateModule: the admin controller needs @nestjs/platform-express (this app runs on ${adapter.getType()})`);
    }
    adapter.use((err: { type?: string } | undefined, req: ExpressRequest, res: ExpressResponse, next: (err?: unknown) => void) => {
      if (!err || !ADMIN_PATH.test((req.originalUrl ?? req.url ?? '').split('?')[0]!)) return next(err);
      if (err.type === 'entity.too.large') return send(res, tooLarge);
      if (err.type === 'entity.parse.failed') return send(res, notJson);
      return next(err);
    });
  }

  @Get('rollgate/admin/events')
  async events(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    const out = await this.admin.api.events(await this.request(req));
    if (!('open' in out)) return send(res, out);
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    const close = out.open((text) => res.write(text));
    const end = () => {
      if (!this.admin.streams.delete(end)) return;
      close();
      res.end();
    };
    this.admin.streams.add(end);
    res.on('close', end);
  }

  /** Every other admin route: AdminApi's route table answers (the same as @rollgate/express's). */
  @All('rollgate/admin/*path')
  async route(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    const path = req.path ?? (req.originalUrl ?? req.url ?? '').split('?')[0]!;
    const below = path.slice(path.indexOf('/rollgate/admin') + '/rollgate/admin'.length);
    const handle = (ctx: AdminRequest, body: unknown) => this.admin.api.handle({ ...ctx, method: req.method ?? 'GET', path: below, query: (req.query ?? {}) as Record<string, unknown>, body });
    if (ADMIN_BODY_METHODS.has((req.method ?? '').toUpperCase())) await this.withBody(req, res, handle);
    else send(res, await handle(await this.request(req), undefined));
  }

  /** Reads the JSON body (with the admin limit) and runs the write. An anonymous caller gets 401 first, as in Express. */
  private async withBody(req: ExpressRequest, res: ExpressResponse, write: (ctx: AdminRequest, body: unknown) => Promise<AdminResponse>): Promise<void> {
    const ctx = await this.request(req);
    if (!ctx.identity) return send(res, await write(ctx, undefined)); // AdminApi answers 401 without writing
    const read = await readJsonBody(req, res, this.admin.bodyLimit, refusals);
    send(res, read.ok ? await write(ctx, read.body) : read.response);
  }

  /** The caller (undefined when not identified: the API answers 401), If-Match and the audit reason. */
  private async request(req: ExpressRequest): Promise<AdminRequest> {
    return { identity: await this.caller(req), ifMatch: header(req, 'if-match'), reason: header(req, 'rollgate-reason'), idempotencyKey: header(req, 'idempotency-key') };
  }

  private async caller(req: ExpressRequest): Promise<Identity | undefined> {
    try {
      return await this.runtime.identify(req);
    } catch (e) {
      if (!(e instanceof IdentityError)) throw e; // a bug in getIdentity: an error, never an allow
      this.runtime.logger.debug?.(`rollgate: 401 ${req.method} ${req.originalUrl ?? req.url}: ${e.message}`);
      return undefined;
    }
  }
}

/** The controller class for one module: its route prefix and your class decorators applied. */
export function adminControllerFor(registration: AdminRegistration): Type<AdminController> {
  class RollgateAdminController extends AdminController {}
  Controller({ path: registration.path, version: VERSION_NEUTRAL })(RollgateAdminController);
  for (const decorate of [...registration.decorators].reverse()) decorate(RollgateAdminController);
  return RollgateAdminController;
}
