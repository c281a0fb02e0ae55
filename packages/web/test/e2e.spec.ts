import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { BrowserContext, Page } from 'playwright-core';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { launchChromium, LIVE_MS, type Browser } from '../../../test/support/browser';
import { buildProjects, withBuildLock } from '../../../test/support/packaging';

// The booking demo in a real browser: Debian's Chromium driven by playwright-core, the UI built
// by Vite, served with its API by examples/booking-web/server.js (the Express flavour) over a real
// redis-server. Screenshots of each state go to packages/web/test-output/e2e/. (The NestJS demo
// that `npm start` runs has its own: examples/booking-api/test/demo.e2e.spec.ts.)

jest.setTimeout(90_000);

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../../..');
const EXAMPLE = path.join(ROOT, 'examples/booking-web');
const SHOTS = path.join(__dirname, '../test-output/e2e');
// its own build of the UI: examples/booking-web/dist belongs to `npm start` and the demo's e2e test
const UI = path.join(__dirname, '../test-output/e2e-ui');

interface BookingServer {
  url: string;
  store: { patchFlag(key: string, patch: Record<string, unknown>, options: { actor: string; reason?: string }): Promise<unknown> };
  close(): Promise<void>;
}

let redis: TestRedis | undefined;
let server: BookingServer | undefined;
let browser: Browser | undefined;
let context: BrowserContext | undefined;
const pageErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // The UI imports @rollgate/web's ES-module build: bring it up to date (a no-op after `npm run build`), then build the UI.
  await buildProjects(['packages/web/tsconfig.esm.json']);
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  await run(process.execPath, [tsc, '--noEmit', '-p', 'examples/booking-web'], { cwd: ROOT }); // Vite does not type-check
  await withBuildLock(() =>
    run(process.execPath, [path.join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn', '--outDir', UI, '--emptyOutDir'], {
      cwd: EXAMPLE,
      env: { ...process.env, VITE_CONFIG_NATIVE_IGNORE_WARNING: 'true' },
    }),
  );

  redis = await startRedis();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startServer } = require('../../../examples/booking-web/server.js') as { startServer: (o: object) => Promise<BookingServer> };
  server = await startServer({ redisUrl: redis.url, env: `e2e-${process.pid}`, port: 0, staticDir: UI });

  browser = await launchChromium();
  context = browser.context;
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await redis?.stop();
});

async function signedIn(user: 'ada' | 'bo' | 'carol'): Promise<Page> {
  const page = await context!.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${user}: ${e.message}`));
  await page.goto(server!.url);
  await page.getByTestId(`login-${user}`).click();
  await page.getByTestId('provider-status').filter({ hasText: 'READY' }).waitFor();
  return page;
}

it('shows Fast payment to the VIP agent, hides it from the customer, hides it live when the flag is switched off, and the API refuses the customer', async () => {
  // A VIP agency's agent (tenant atlas-travel) sees the button, and paying with it works.
  const agent = await signedIn('bo');
  await agent.getByTestId('fast-payment').waitFor();
  await agent.getByTestId('fast-payment').click();
  await agent.getByTestId('payment-result').filter({ hasText: 'Paid (fast)' }).waitFor();
  await agent.screenshot({ path: path.join(SHOTS, '1-vip-agent-sees-fast-payment.png') });

  // A customer outside the 20% rollout does not.
  const customer = await signedIn('carol');
  expect(await customer.getByTestId('flag-value').textContent()).toBe('false');
  expect(await customer.getByTestId('fast-payment').count()).toBe(0);
  await customer.screenshot({ path: path.join(SHOTS, '2-customer-has-no-fast-payment.png') });

  // The UI is not the security boundary: the customer calling the API directly gets 403.
  const direct = await customer.evaluate(async () => {
    const { token } = JSON.parse(sessionStorage.getItem('booking-web.session')!) as { token: string };
    const res = await fetch('/payments/fast', { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    return { status: res.status, body: await res.json() };
  });
  expect(direct).toEqual({ status: 403, body: { error: 'feature_not_enabled' } });
  await customer.getByTestId('try-fast-api').click();
  await customer.getByTestId('payment-result').filter({ hasText: 'Refused by the server (403 feature_not_enabled)' }).waitFor();
  await customer.screenshot({ path: path.join(SHOTS, '3-customer-calling-the-api-gets-403.png') });

  // Kill switch in Redis: the agent's button disappears, pushed, without a reload (how fast: printed).
  const navigations: string[] = [];
  agent.on('framenavigated', (frame) => navigations.push(frame.url()));
  const started = Date.now();
  await server!.store.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'e2e', reason: 'kill switch' });
  await agent.getByTestId('fast-payment').waitFor({ state: 'detached', timeout: LIVE_MS });
  const elapsed = Date.now() - started; // printed below; "within a second" is measured, not asserted
  expect(navigations).toEqual([]); // pushed (SSE → refetch; no polling by default), not reloaded
  // and the server refuses it too
  await agent.getByTestId('try-fast-api').click();
  await agent.getByTestId('payment-result').filter({ hasText: 'Refused by the server (403 feature_not_enabled)' }).waitFor();
  await agent.screenshot({ path: path.join(SHOTS, '4-flag-off-button-gone-without-reload.png') });

  expect(pageErrors).toEqual([]);
  console.log(`e2e: the button disappeared ${elapsed} ms after the write to Redis; screenshots in ${path.relative(ROOT, SHOTS)}`);
});
