import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { AdminApi, ADMIN_BODY_METHODS, type AdminApiOptions, type AdminRequest, type AdminResponse, type IdentityOptions } from '@rollgate/server';
import { getRequestIdentity } from './request-identity';
import { identity as identityMiddleware, sendUnauthorized } from './identity.middleware';

export interface AdminRouterOptions extends AdminApiOptions {
  /** Verify callers here; without it, `identity()` must run before this router. */
  identity?: IdentityOptions;
  /** Largest JSON body accepted. @default '256kb' */
  bodyLimit?: string;
}

/** The admin API router; `close()` ends its open event streams (call it before closing the server). */
export type AdminRouter = Router & { close(): void };

function send(res: Response, out: AdminResponse): void {
  res.status(out.status).set(out.headers).send(JSON.stringify(out.body));
}

/**
 * The admin API, opt-in: mount it explicitly. Every route requires an identity that
 * `authorize(identity)` accepts; flag writes require If-Match (the version read) and answer 409 on
 * conflict, 400 with the path-qualified message on invalid input. The routes, under
 * `/rollgate/admin`, are AdminApi's (see @rollgate/server): flags, evaluators, audit, revert,
 * explain, plans and their actions and series, and `/events` (server-sent events).
 */
export function adminRouter(options: AdminRouterOptions): AdminRouter {
  const api = new AdminApi(options);
  const router = Router() as AdminRouter;
  const streams = new Set<() => void>();
  // Without its own identity options the router relies on an identity() mounted before it; a
  // request that arrives without one is refused before its body is read.
  const authenticate = options.identity
    ? identityMiddleware({ ...options.identity, transactionContext: false })
    : (req: Request, res: Response, next: NextFunction) => (getRequestIdentity(req) ? next() : sendUnauthorized(res));
  const json = express.json({ limit: options.bodyLimit ?? '256kb', strict: false, type: () => true });
  const base = '/rollgate/admin';
  const header = (req: Request, name: string) => (typeof req.headers[name] === 'string' ? (req.headers[name] as string) : undefined);
  const ctx = (req: Request): AdminRequest => ({
    identity: getRequestIdentity(req),
    ifMatch: header(req, 'if-match'),
    reason: header(req, 'rollgate-reason'),
    idempotencyKey: header(req, 'idempotency-key'),
  });

  router.use(base, authenticate);
  router.get(`${base}/events`, (req, res, next) => {
    api.events(ctx(req)).then((out) => {
      if (!('open' in out)) return send(res, out);
      res.status(200).set({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
      res.flushHeaders();
      const close = out.open((text) => res.write(text));
      const end = () => {
        if (!streams.delete(end)) return;
        close();
        res.end();
      };
      streams.add(end);
      res.on('close', end);
    }, next);
  });
  router.use(base, (req, res, next) => {
    const run = () => {
      api.handle({ ...ctx(req), method: req.method, path: req.path, query: req.query as Record<string, unknown>, body: req.body as unknown }).then((out) => send(res, out), next);
    };
    if (ADMIN_BODY_METHODS.has(req.method)) json(req, res, (err?: unknown) => (err ? next(err) : run()));
    else run();
  });
  router.use(base, (err: { type?: string }, _req: Request, res: Response, next: NextFunction) => {
    if (err?.type === 'entity.parse.failed') return send(res, { status: 400, headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: { error: 'invalid', message: 'request body is not valid JSON' } });
    if (err?.type === 'entity.too.large') return send(res, { status: 413, headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: { error: 'too_large', message: 'request body too large' } });
    next(err);
  });
  router.close = () => {
    for (const end of [...streams]) end();
  };
  return router;
}
