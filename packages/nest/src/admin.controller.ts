import { Controller, Delete, Get, Inject, Optional, Patch, Post, Put, Req, Res, VERSION_NEUTRAL, type OnModuleInit, type Type } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ConfigError } from '@rollgate/redis';
import { IdentityError, type AdminRequest, type AdminResponse, type Identity } from '@rollgate/server';
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
 *   GET    /rollgate/admin/flags                 GET/PUT/PATCH/DELETE /rollgate/admin/flags/:key
 *   GET/PUT/DELETE /rollgate/admin/evaluators/:key
 *   GET    /rollgate/admin/audit?key=&limit=     POST /rollgate/admin/revert {key, toVersion?}
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

  @Get('rollgate/admin/flags')
  async list(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    send(res, await this.admin.api.list(await this.request(req)));
  }

  @Get('rollgate/admin/flags/:key')
  async getFlag(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    send(res, await this.admin.api.get(await this.request(req), 'flag', key(req)));
  }

  @Put('rollgate/admin/flags/:key')
  async putFlag(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    await this.withBody(req, res, (ctx, body) => this.admin.api.put(ctx, 'flag', key(req), body));
  }

  @Patch('rollgate/admin/flags/:key')
  async patchFlag(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    await this.withBody(req, res, (ctx, body) => this.admin.api.patch(ctx, key(req), body));
  }

  @Delete('rollgate/admin/flags/:key')
  async removeFlag(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    send(res, await this.admin.api.remove(await this.request(req), 'flag', key(req)));
  }

  @Get('rollgate/admin/evaluators/:key')
  async getEvaluator(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    send(res, await this.admin.api.get(await this.request(req), 'evaluator', key(req)));
  }

  @Put('rollgate/admin/evaluators/:key')
  async putEvaluator(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    await this.withBody(req, res, (ctx, body) => this.admin.api.put(ctx, 'evaluator', key(req), body));
  }

  @Delete('rollgate/admin/evaluators/:key')
  async removeEvaluator(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    send(res, await this.admin.api.remove(await this.request(req), 'evaluator', key(req)));
  }

  @Get('rollgate/admin/audit')
  async audit(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    const { key: flagKey, limit } = req.query ?? {};
    send(res, await this.admin.api.audit(await this.request(req), typeof flagKey === 'string' ? flagKey : undefined, limit === undefined ? undefined : Number(limit)));
  }

  @Post('rollgate/admin/revert')
  async revert(@Req() req: ExpressRequest, @Res() res: ExpressResponse): Promise<void> {
    await this.withBody(req, res, (ctx, body) => this.admin.api.revert(ctx, body));
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
    return { identity: await this.caller(req), ifMatch: header(req, 'if-match'), reason: header(req, 'rollgate-reason') };
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

function key(req: ExpressRequest): string {
  return String(req.params?.key);
}

/** The controller class for one module: its route prefix and your class decorators applied. */
export function adminControllerFor(registration: AdminRegistration): Type<AdminController> {
  class RollgateAdminController extends AdminController {}
  Controller({ path: registration.path, version: VERSION_NEUTRAL })(RollgateAdminController);
  for (const decorate of [...registration.decorators].reverse()) decorate(RollgateAdminController);
  return RollgateAdminController;
}
