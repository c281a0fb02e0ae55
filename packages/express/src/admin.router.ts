import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { ConfigError } from '@rollgate/redis';
import { AdminApi, ADMIN_BODY_METHODS, type AdminApiOptions, type AdminRequest, type AdminResponse, type IdentityDefinition } from '@rollgate/server';
import type * as Dashboard from '@rollgate/dashboard';
import { getRequestIdentity } from './request-identity';
import { authenticate as authenticateWith, sendUnauthorized } from './identity.middleware';
import { routerIdentity } from './ofrep.router';

/** Where the dashboard is served and from which files (see {@link AdminRouterOptions.dashboard}). */
export interface AdminDashboardOptions {
  /** The page is `${path}/` below the router's mount point, its files `${path}/assets/…`. @default '/rollgate' */
  path?: string;
  /** The built files. @default @rollgate/dashboard's `dashboardDir` */
  dir?: string;
}

export interface AdminRouterOptions extends AdminApiOptions {
  /**
   * Who is calling: the identity defined once with `defineIdentity()` (the object `identity()`
   * and `ofrep()` get). Without it, `identity()` must run before this router. Plain options are
   * refused: a second copy of the identity config can drift from the first.
   */
  identity?: IdentityDefinition;
  /** Largest JSON body accepted. @default '256kb' */
  bodyLimit?: string;
  /**
   * Serve the admin dashboard (the `@rollgate/dashboard` package, installed beside this one) at
   * `/rollgate/` — or `${path}/` — below the router. The page and its files are public static
   * files (they hold no data); everything it shows comes from the admin API, behind `authorize`.
   * @default off
   */
  dashboard?: boolean | AdminDashboardOptions;
}

/**
 * @rollgate/dashboard, loaded only when the dashboard is on: this package has no runtime
 * dependency on it (an optional peer).
 */
function loadDashboard(): typeof Dashboard {
  try {
    return require('@rollgate/dashboard') as typeof Dashboard; // eslint-disable-line @typescript-eslint/no-require-imports
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && String((e as Error).message).includes('@rollgate/dashboard')) {
      throw new ConfigError('adminRouter: `dashboard` needs the @rollgate/dashboard package: `npm install @rollgate/dashboard` (or turn the option off)');
    }
    throw e;
  }
}

function serveDashboard(router: Router, option: true | AdminDashboardOptions): void {
  const files = loadDashboard().openDashboard(option, 'adminRouter: dashboard');
  const at = files.path === '/' ? '' : files.path;
  const handle = (req: Request, res: Response, next: NextFunction) => {
    // below the mount point: '' for `/rollgate` (redirected to `/rollgate/`), '/', '/index.html', '/assets/…'
    const url = req.originalUrl ?? req.url;
    const q = url.indexOf('?');
    const urlPath = q < 0 ? url : url.slice(0, q);
    const below = req.path.slice(at.length);
    // `/ops` for a router mounted at /ops reaches it as '/': the page still needs its trailing slash
    const path = below === '/' && !urlPath.endsWith('/') ? '' : below;
    files.serve({ path, urlPath, search: q < 0 ? '' : url.slice(q), acceptEncoding: req.headers['accept-encoding'] }).then((out) => {
      res.status(out.status).set(out.headers);
      if (out.body) res.send(out.body);
      else res.end();
    }, next);
  };
  router.get([at === '' ? '/' : at, `${at}/index.html`, `${at}/assets`, `${at}/assets/*file`], handle);
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
 * explain, plans and their actions and series, and `/events` (server-sent events). With
 * `dashboard: true`, the admin dashboard's static files at `/rollgate/`.
 */
export function adminRouter(options: AdminRouterOptions): AdminRouter {
  const definition = routerIdentity('adminRouter', options?.identity);
  const api = new AdminApi(options);
  const router = Router() as AdminRouter;
  if (options.dashboard !== undefined && options.dashboard !== false) serveDashboard(router, options.dashboard);
  const streams = new Set<() => void>();
  // Without its own identity options the router relies on an identity() mounted before it; a
  // request that arrives without one is refused before its body is read.
  const authenticate = definition
    ? authenticateWith(definition, { transactionContext: false }, sendUnauthorized, 'adminRouter()')
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
