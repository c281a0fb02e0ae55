import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { AdminApi, type AdminApiOptions, type AdminResponse, type IdentityOptions } from '@rollgate/server';
import { getRequestIdentity } from './request-identity';
import { identity as identityMiddleware, sendUnauthorized } from './identity.middleware';

export interface AdminRouterOptions extends AdminApiOptions {
  /** Verify callers here; without it, `identity()` must run before this router. */
  identity?: IdentityOptions;
  /** Largest JSON body accepted. @default '256kb' */
  bodyLimit?: string;
}

function send(res: Response, out: AdminResponse): void {
  res.status(out.status).set(out.headers).send(JSON.stringify(out.body));
}

/**
 * The admin API, opt-in: mount it explicitly. Every route requires an identity that
 * `authorize(identity)` accepts; writes require If-Match (the version read) and answer 409 on
 * conflict, 400 with the path-qualified message on invalid input.
 *
 *   GET    /rollgate/admin/flags                 GET/PUT/PATCH/DELETE /rollgate/admin/flags/:key
 *   GET/PUT/DELETE /rollgate/admin/evaluators/:key
 *   GET    /rollgate/admin/audit?key=&limit=     POST /rollgate/admin/revert {key, toVersion?}
 */
export function adminRouter(options: AdminRouterOptions): Router {
  const api = new AdminApi(options);
  const router = Router();
  // Without its own identity options the router relies on an identity() mounted before it; a
  // request that arrives without one is refused before its body is read.
  const authenticate = options.identity
    ? identityMiddleware({ ...options.identity, transactionContext: false })
    : (req: Request, res: Response, next: NextFunction) => (getRequestIdentity(req) ? next() : sendUnauthorized(res));
  const json = express.json({ limit: options.bodyLimit ?? '256kb', strict: false, type: () => true });
  const base = '/rollgate/admin';
  const ctx = (req: Request) => ({
    identity: getRequestIdentity(req),
    ifMatch: req.headers['if-match'],
    reason: typeof req.headers['rollgate-reason'] === 'string' ? req.headers['rollgate-reason'] : undefined,
  });
  const handle = (fn: (req: Request) => Promise<AdminResponse>) => (req: Request, res: Response, next: NextFunction) => {
    fn(req).then((out) => send(res, out)).catch(next);
  };
  const key = (req: Request) => String(req.params.key);

  router.use(base, authenticate);
  router.get(`${base}/flags`, handle((req) => api.list(ctx(req))));
  router.get(`${base}/flags/:key`, handle((req) => api.get(ctx(req), 'flag', key(req))));
  router.put(`${base}/flags/:key`, json, handle((req) => api.put(ctx(req), 'flag', key(req), req.body)));
  router.patch(`${base}/flags/:key`, json, handle((req) => api.patch(ctx(req), key(req), req.body)));
  router.delete(`${base}/flags/:key`, handle((req) => api.remove(ctx(req), 'flag', key(req))));
  router.get(`${base}/evaluators/:key`, handle((req) => api.get(ctx(req), 'evaluator', key(req))));
  router.put(`${base}/evaluators/:key`, json, handle((req) => api.put(ctx(req), 'evaluator', key(req), req.body)));
  router.delete(`${base}/evaluators/:key`, handle((req) => api.remove(ctx(req), 'evaluator', key(req))));
  router.get(`${base}/audit`, handle((req) => api.audit(ctx(req), typeof req.query.key === 'string' ? req.query.key : undefined, req.query.limit === undefined ? undefined : Number(req.query.limit))));
  router.post(`${base}/revert`, json, handle((req) => api.revert(ctx(req), req.body)));
  router.use(base, (err: { type?: string }, _req: Request, res: Response, next: NextFunction) => {
    if (err?.type === 'entity.parse.failed') return send(res, { status: 400, headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: { error: 'invalid', message: 'request body is not valid JSON' } });
    if (err?.type === 'entity.too.large') return send(res, { status: 413, headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: { error: 'too_large', message: 'request body too large' } });
    next(err);
  });
  return router;
}
