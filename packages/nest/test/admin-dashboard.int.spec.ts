import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { MemoryFlagStore } from '@rollgate/redis';
import { RollgateModule, type RollgateModuleOptions } from '@rollgate/nest';
import { DashboardError } from '@rollgate/dashboard';
import { bearer, jwtOptions, recordingLogger, token } from '../../server/test/support/pilot-scenario';
import { buildDashboard } from '../../dashboard/test/support/build';

// admin.dashboard: the dashboard's static files beside the admin controller, as
// @rollgate/express's adminRouter({ dashboard }) serves them (packages/express/test/admin-dashboard.spec.ts).

const admin = bearer(token({ sub: 'ada', roles: ['flag-admin'] }));
const agent = bearer(token({ sub: 'bo', roles: ['agent'] }));
const isFlagAdmin = (who: { context: Record<string, unknown> }) => (who.context.roles as string[]).includes('flag-admin');

let store: MemoryFlagStore;
const apps: INestApplication[] = [];

async function boot(rollgate: ReturnType<typeof RollgateModule.forRoot>, prefix?: string): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [rollgate] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  if (prefix) app.setGlobalPrefix(prefix);
  apps.push(app);
  await app.init();
  return app;
}

function options(adminOptions: Partial<NonNullable<RollgateModuleOptions['admin']>>): RollgateModuleOptions {
  return { store, jwt: jwtOptions, logger: recordingLogger(), admin: { authorize: isFlagAdmin, ...adminOptions } };
}

beforeAll(async () => {
  await buildDashboard();
}, 180_000);
beforeEach(async () => {
  store = new MemoryFlagStore();
  await store.putFlag('checkout-theme', { state: 'ENABLED', variants: { classic: 'classic', bold: 'bold' }, defaultVariant: 'classic' }, { actor: 'seed' });
});
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
  await store.close();
});

it('serves nothing when admin.dashboard is off (the default)', async () => {
  for (const dashboard of [undefined, false]) {
    const app = await boot(RollgateModule.forRoot(options(dashboard === undefined ? {} : { dashboard })));
    await request(app.getHttpServer()).get('/rollgate/').expect(404);
    await request(app.getHttpServer()).get('/rollgate/assets/index.js').expect(404);
    await request(app.getHttpServer()).get('/rollgate/admin/flags').set(admin).expect(200);
  }
});

it('serves the page (no-store, CSP), its hashed files (immutable) and 404 for others; the API keeps authorize', async () => {
  const app = await boot(RollgateModule.forRoot(options({ dashboard: true })));
  const api = () => request(app.getHttpServer());
  expect((await api().get('/rollgate').expect(301)).headers.location).toBe('rollgate/');
  const page = await api().get('/rollgate/').expect(200);
  expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(page.headers['cache-control']).toBe('no-store');
  expect(page.headers['content-security-policy']).toContain("default-src 'self'");
  expect(page.headers['content-security-policy']).not.toMatch(/unsafe|\*|https?:/);
  expect(page.text).toContain('<meta name="rollgate-api" content="admin" />');
  expect((await api().get('/rollgate/index.html').expect(200)).text).toBe(page.text);
  const files = [...page.text.matchAll(/(?:src|href)="\.\/(assets\/[^"]+)"/g)].map((m) => m[1]!);
  expect(files.length).toBeGreaterThanOrEqual(3);
  for (const file of files) {
    const res = await api().get(`/rollgate/${file}`).expect(200);
    expect(res.headers['content-type']).toMatch(file.endsWith('.js') ? /^text\/javascript/ : file.endsWith('.css') ? /^text\/css/ : /^image\/svg\+xml/);
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  }
  for (const missing of ['/rollgate/assets/nope.js', '/rollgate/assets/', '/rollgate/assets/..%2Findex.html']) {
    const res = await api().get(missing).expect(404);
    expect(res.headers['cache-control']).toBe('no-store');
  }
  // the page is public; what it shows is not
  await api().get('/rollgate/admin/flags').expect(401);
  await api().get('/rollgate/admin/flags').set(agent).expect(403);
  await api().get('/rollgate/admin/flags').set(admin).expect(200);
});

it('follows the global prefix, admin.path and dashboard.path, finding the admin API relative to the page', async () => {
  const app = await boot(RollgateModule.forRoot(options({ path: 'ops', dashboard: { path: '/console' } })), 'api');
  const api = () => request(app.getHttpServer());
  await api().get('/api/ops/rollgate/').expect(404);
  expect((await api().get('/api/ops/console').expect(301)).headers.location).toBe('console/');
  const page = await api().get('/api/ops/console/').expect(200);
  expect(page.text).toContain('<meta name="rollgate-api" content="../rollgate/admin" />');
  await api().get('/api/ops/rollgate/admin/flags').set(admin).expect(200);
});

it('forRootAsync registers it when the module is defined; the factory may not contradict it', async () => {
  const app = await boot(RollgateModule.forRootAsync({ useFactory: () => options({}), admin: { dashboard: true } }));
  await request(app.getHttpServer()).get('/rollgate/').expect(200);
  await expect(boot(RollgateModule.forRootAsync({ useFactory: () => options({ dashboard: { path: '/other' } }), admin: { dashboard: true } }))).rejects.toThrow(
    "admin.dashboard from the factory ({\"path\":\"/other\"}) differs from forRootAsync's admin.dashboard (true)",
  );
});

it('refuses a wrong option or a missing build where the module is defined', () => {
  expect(() => RollgateModule.forRoot(options({ dashboard: 'yes' as never }))).toThrow('admin.dashboard must be true, false or { path?, dir? }');
  expect(() => RollgateModule.forRoot(options({ dashboard: { path: '/rollgate/admin' } }))).toThrow(DashboardError);
  expect(() => RollgateModule.forRoot(options({ dashboard: { dir: '/nonexistent/dashboard' } }))).toThrow('RollgateModule: admin.dashboard: the dashboard is not built');
});
