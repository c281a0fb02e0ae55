import { Controller, Get, Req, Res, VERSION_NEUTRAL, type Type } from '@nestjs/common';
import { ConfigError } from '@rollgate/redis';
import type * as Dashboard from '@rollgate/dashboard';
import type { ExpressRequest, ExpressResponse } from './http-body';
import type { AdminRegistration } from './rollgate-module-options';

// The admin dashboard's static files beside the admin API, answering as @rollgate/express's
// adminRouter({ dashboard }) does: the page at `${path}/rollgate/` (no-store), its hashed files
// under `assets/` (immutable), 404 for any other file, a CSP that allows only this origin. The
// files are public (they hold no data); the page reads everything from the admin API.

/** @rollgate/dashboard, loaded only when the dashboard is on: an optional peer of this package. */
function loadDashboard(): typeof Dashboard {
  try {
    return require('@rollgate/dashboard') as typeof Dashboard; // eslint-disable-line @typescript-eslint/no-require-imports
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && String((e as Error).message).includes('@rollgate/dashboard')) {
      throw new ConfigError('RollgateModule: admin.dashboard needs the @rollgate/dashboard package: `npm install @rollgate/dashboard` (or turn the option off) (see docs/nest.md)');
    }
    throw e;
  }
}

/**
 * The dashboard's controller for one module, under the admin controller's path and with its
 * class decorators. Reads the built files now: a missing build fails where the module is defined.
 */
export function dashboardControllerFor(registration: AdminRegistration): Type<unknown> {
  const files = loadDashboard().openDashboard(registration.dashboard ?? true, 'RollgateModule: admin.dashboard');
  const at = files.path === '/' ? '' : files.path;

  class RollgateDashboardController {
    async serve(req: ExpressRequest, res: ExpressResponse): Promise<void> {
      const url = req.originalUrl ?? req.url ?? '/';
      const q = url.indexOf('?');
      const urlPath = q < 0 ? url : url.slice(0, q);
      const file = (req as { params?: Record<string, unknown> }).params?.file;
      const below =
        file !== undefined
          ? `/assets/${Array.isArray(file) ? file.join('/') : String(file)}`
          : /\/assets\/?$/.test(urlPath)
            ? '/assets/'
            : urlPath.endsWith('/index.html')
              ? '/index.html'
              : urlPath.endsWith('/')
                ? '/'
                : '';
      const accept = req.headers['accept-encoding'];
      const out = await files.serve({ path: below, urlPath, search: q < 0 ? '' : url.slice(q), acceptEncoding: Array.isArray(accept) ? accept.join(',') : accept });
      res.status(out.status);
      for (const [name, value] of Object.entries(out.headers)) res.setHeader(name, value);
      if (out.body) res.send(out.body);
      else res.end();
    }
  }
  const descriptor = Object.getOwnPropertyDescriptor(RollgateDashboardController.prototype, 'serve')!;
  Get([at === '' ? '/' : at, `${at}/index.html`, `${at}/assets`, `${at}/assets/*file`])(RollgateDashboardController.prototype, 'serve', descriptor);
  Req()(RollgateDashboardController.prototype, 'serve', 0);
  Res()(RollgateDashboardController.prototype, 'serve', 1);
  Controller({ path: registration.path, version: VERSION_NEUTRAL })(RollgateDashboardController);
  for (const decorate of [...registration.decorators].reverse()) decorate(RollgateDashboardController);
  return RollgateDashboardController;
}
