import express from 'express';
import request from 'supertest';
import { MemoryFlagStore } from '@rollgate/redis';
import { defineIdentity, adminRouter, type AdminRouter, type AdminRouterOptions } from '@rollgate/express';
import { DashboardError, dashboardDir } from '@rollgate/dashboard';
import { bearer, jwtOptions, token } from '../../server/test/support/pilot-scenario';
import { buildDashboard } from '../../dashboard/test/support/build';

// adminRouter({ dashboard }): the built dashboard's static files beside the admin API — the page
// (no-store, CSP), its hashed files (immutable), 404 for anything else, nothing when the option
// is off. The files are public; the API calls the page makes keep the admin API's authorize.

const admin = bearer(token({ sub: 'ada', roles: ['flag-admin'] }));
const agent = bearer(token({ sub: 'bo', roles: ['agent'] }));
const theme = { state: 'ENABLED', variants: { classic: 'classic', bold: 'bold' }, defaultVariant: 'classic' };

let store: MemoryFlagStore;
const routers: AdminRouter[] = [];

function app(options: Partial<AdminRouterOptions> = {}, mount = '/'): express.Express {
  const router = adminRouter({ store, identity: defineIdentity({ jwt: jwtOptions }), authorize: (who) => (who.context.roles as string[]).includes('flag-admin'), ...options });
  routers.push(router);
  return express().use(mount, router);
}

/** The files the page loads, from its HTML. */
function assetsOf(html: string): string[] {
  return [...html.matchAll(/(?:src|href)="\.\/(assets\/[^"]+)"/g)].map((m) => m[1]!);
}

beforeAll(async () => {
  await buildDashboard();
}, 180_000);
beforeEach(async () => {
  store = new MemoryFlagStore();
  await store.putFlag('checkout-theme', theme, { actor: 'seed' });
});
afterEach(async () => {
  for (const r of routers.splice(0)) r.close();
  await store.close();
});

it('serves nothing when the option is off (the default), and the admin API as before', async () => {
  for (const options of [{}, { dashboard: false }]) {
    const a = app(options);
    await request(a).get('/rollgate/').expect(404);
    await request(a).get('/rollgate/index.html').expect(404);
    await request(a).get('/rollgate/assets/index.js').expect(404);
    await request(a).get('/rollgate/admin/flags').set(admin).expect(200);
  }
});

it('serves the page with no-store and a CSP that allows only this origin, to anyone: it holds no data', async () => {
  const a = app({ dashboard: true });
  const page = await request(a).get('/rollgate/').expect(200);
  expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(page.headers['cache-control']).toBe('no-store');
  const csp = page.headers['content-security-policy'] as string;
  expect(csp).toContain("default-src 'self'");
  expect(csp).toContain("script-src 'self'");
  expect(csp).toContain("style-src 'self'");
  expect(csp).toContain("connect-src 'self'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).not.toMatch(/unsafe|\*|https?:/);
  expect(page.headers['x-content-type-options']).toBe('nosniff');
  // the page finds the admin API relative to itself
  expect(page.text).toContain('<meta name="rollgate-api" content="admin" />');
  expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
  expect((await request(a).get('/rollgate/index.html').expect(200)).text).toBe(page.text);
  // HEAD: the headers without the body
  const head = await request(a).head('/rollgate/').expect(200);
  expect(head.headers['content-security-policy']).toBe(csp);

  // the API the page calls keeps the admin API's authorize: the page alone gives nothing away
  await request(a).get('/rollgate/admin/flags').expect(401);
  await request(a).get('/rollgate/admin/flags').set(agent).expect(403);
  await request(a).get('/rollgate/admin/events').set(agent).expect(403);
  await request(a).get('/rollgate/admin/flags').set(admin).expect(200);
});

it('redirects the mount point to its trailing slash (the page uses relative URLs), keeping the query', async () => {
  const a = app({ dashboard: true });
  const res = await request(a).get('/rollgate?x=1').expect(301);
  expect(res.headers.location).toBe('rollgate/?x=1');
  // under a prefix too: the redirect is relative, so it needs no knowledge of the mount point
  const mounted = app({ dashboard: true }, '/ops');
  expect((await request(mounted).get('/ops/rollgate').expect(301)).headers.location).toBe('rollgate/');
  expect((await request(mounted).get('/ops/rollgate/').expect(200)).text).toContain('content="admin"');
});

it('serves the hashed files with their content types, cached for a year, gzipped when asked; 404 for anything else', async () => {
  const a = app({ dashboard: true });
  const page = await request(a).get('/rollgate/').expect(200);
  const assets = assetsOf(page.text);
  expect(assets.filter((f) => f.endsWith('.js')).length).toBeGreaterThanOrEqual(1);
  expect(assets.filter((f) => f.endsWith('.css')).length).toBe(1);
  for (const file of assets) {
    const res = await request(a).get(`/rollgate/${file}`).set('Accept-Encoding', 'gzip').expect(200);
    const type = file.endsWith('.js') ? 'text/javascript; charset=utf-8' : file.endsWith('.css') ? 'text/css; charset=utf-8' : 'image/svg+xml';
    expect(res.headers['content-type']).toBe(type);
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    // gzipped unless too small to gain (≤ 512 bytes: the bundler's tiny runtime chunk) or an image
    if (!file.endsWith('.svg') && Buffer.byteLength(res.text) > 512) {
      expect(res.headers['content-encoding']).toBe('gzip');
      expect(res.headers.vary).toBe('Accept-Encoding');
    }
  }
  const js = assets.find((f) => f.endsWith('.js'))!;
  const plain = await request(a).get(`/rollgate/${js}`).set('Accept-Encoding', 'identity').expect(200);
  expect(plain.headers['content-encoding']).toBeUndefined();
  expect(Number(plain.headers['content-length'])).toBeGreaterThan(1000);

  for (const missing of ['/rollgate/assets/nope.js', '/rollgate/assets/..%2Findex.html', '/rollgate/assets/', `/rollgate/assets/${js.slice(7)}.map`]) {
    const res = await request(a).get(missing);
    expect([missing, res.status]).toEqual([missing, 404]);
    expect(res.headers['cache-control']).toBe('no-store');
  }
  // only GET and HEAD; other paths below the mount point are the app's
  await request(a).post('/rollgate/').expect(404);
  await request(a).get('/rollgate/other').expect(404);
});

it('mounts at another path, with the admin API found relative to it', async () => {
  const a = app({ dashboard: { path: '/ops/flags' } });
  await request(a).get('/rollgate/').expect(404);
  const page = await request(a).get('/ops/flags/').expect(200);
  expect(page.text).toContain('<meta name="rollgate-api" content="../../rollgate/admin" />');
  const js = assetsOf(page.text).find((f) => f.endsWith('.js'))!;
  await request(a).get(`/ops/flags/${js}`).expect(200);
  const root = app({ dashboard: { path: '/' } });
  expect((await request(root).get('/').expect(200)).text).toContain('content="rollgate/admin"');
});

it('refuses a wrong option or a missing build when the router is created, saying what to do', () => {
  const make = (dashboard: unknown) => () => app({ dashboard: dashboard as AdminRouterOptions['dashboard'] });
  expect(make({ path: '/rollgate/admin/ui' })).toThrow(DashboardError);
  expect(make({ path: '/rollgate/admin/ui' })).toThrow('adminRouter: dashboard.path: "/rollgate/admin/ui" is inside the admin API (/rollgate/admin)');
  expect(make({ path: 'rollgate' })).toThrow('must be a path starting with "/"');
  expect(make({ path: '/a/../b' })).toThrow('no "." or ".." segments');
  expect(make({ root: '/x' })).toThrow('adminRouter: dashboard: unknown option "root" (allowed: path, dir)');
  expect(make('yes')).toThrow('adminRouter: dashboard must be true or { path?, dir? }');
  expect(make({ dir: '/nonexistent/dashboard' })).toThrow('the dashboard is not built: /nonexistent/dashboard/index.html is missing. Run `npm run build`');
  expect(dashboardDir).toMatch(/packages[\\/]dashboard[\\/]dist[\\/]app$/);
});
