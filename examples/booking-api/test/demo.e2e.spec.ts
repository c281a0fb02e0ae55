import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Page } from 'playwright-core';
import { freePort, startRedis, type TestRedis } from '../../../packages/redis/test/support/redis-server';
import { launchChromium, type Browser } from '../../../test/support/browser';
import { childEnv, ROOT, run, withBuildLock } from '../../../test/support/packaging';

// The bar of issue 8, in headless Chromium: the artefact `npm start` builds and runs (the
// compiled booking-api serving the Vite-built UI on one port), over a throwaway redis-server.
// The demo users see the right UI, the API enforces it, the admin's panel flips the kill switch
// and moves the rollout, and pages that are already open follow within a second.
// Screenshots: examples/booking-api/test-output/e2e/.

jest.setTimeout(120_000);

const MAIN = path.join(ROOT, 'examples/booking-api/dist/main.js');
const SHOTS = path.join(__dirname, '../test-output/e2e');

interface Demo {
  url: string;
  lines: string[];
  stop(): Promise<number | null>;
}

/** Starts `node examples/booking-api/dist/main.js` (what `npm start` runs after building) and waits for its URL line. */
async function startDemo(env: Record<string, string>): Promise<Demo> {
  const child: ChildProcess = spawn(process.execPath, [MAIN], { cwd: ROOT, env: childEnv({ HOST: '127.0.0.1', ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const errors: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => errors.push(l));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      const m = /^booking demo: (http:\/\/\S+)$/.exec(line);
      if (m) resolve(m[1]!);
    });
    void exited.then(([code]) => reject(new Error(`the demo exited (${code}) before serving:\n${[...lines, ...errors].join('\n')}`)));
  });
  return {
    url,
    lines,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const [code] = await exited;
      return code;
    },
  };
}

let redis: TestRedis | undefined;
let demo: Demo | undefined;
let browser: Browser | undefined;
const pageErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // What `npm start` builds: the packages and booking-api (tsc -b), then the UI (type check + vite build).
  // After `npm run build` / `npm start` this is a no-op for tsc and ~2 s for the UI.
  await withBuildLock(() => run('npm', ['run', '-s', 'build:demo'], ROOT, 180_000));
  redis = await startRedis();
  demo = await startDemo({ REDIS_URL: redis.url, PORT: String(await freePort()) });
  browser = await launchChromium({ width: 900, height: 760 });
});

afterAll(async () => {
  await browser?.close();
  const code = await demo?.stop();
  await redis?.stop();
  expect(code).toBe(0); // SIGTERM: SSE streams ended, provider and store closed, clean exit
});

type User = 'ada' | 'bo' | 'carol' | 'dale';

async function signedIn(user: User): Promise<Page> {
  const page = await browser!.context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${user}: ${e.message}`));
  await page.goto(demo!.url);
  await page.getByTestId(`login-${user}`).click();
  await page.getByTestId('provider-status').filter({ hasText: 'READY' }).waitFor();
  return page;
}

/** POST as the page's signed-in user, from inside the page (same origin, the user's own token). */
function callAs(page: Page, method: string, url: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  return page.evaluate(
    async ({ method, url, body }) => {
      const { token } = JSON.parse(sessionStorage.getItem('booking-web.session')!) as { token: string };
      const res = await fetch(url, { method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      const text = await res.text();
      return { status: res.status, body: text ? (JSON.parse(text) as unknown) : null };
    },
    { method, url, body },
  );
}

/** Clicks on the admin's page and measures how long until `page` shows `state` for the Fast payment button. */
async function followMs(admin: Page, control: string, page: Page, state: 'attached' | 'detached'): Promise<number> {
  const started = Date.now();
  await admin.getByTestId(control).click();
  await page.getByTestId('fast-payment').waitFor({ state, timeout: 1000 });
  return Date.now() - started;
}

it('says "Redis" on its first line when REDIS_URL answers, and seeds the empty namespace', () => {
  expect(demo!.lines[0]).toMatch(new RegExp(`^store: Redis at ${redis!.url.replace(/[.]/g, '\\.')} \\(namespace rollgate:\\{demo\\}\\)`));
  expect(demo!.lines[1]).toBe('flags: seeded from examples/booking-api/flags.json (version 1)');
  expect(demo!.lines.slice(2).join('\n')).toMatch(/sign in as:\n {2}ada .*\n {2}bo .*\n {2}carol .*\n {2}dale /);
});

it('shows each demo user the right UI, the API enforces it, and the admin panel drives every open page within a second', async () => {
  const timings: Record<string, number> = {};

  // The VIP agency's agent sees Fast payment, and paying with it works; no admin panel.
  const agent = await signedIn('bo');
  await agent.getByTestId('fast-payment').click();
  await agent.getByTestId('payment-result').filter({ hasText: 'Paid (fast)' }).waitFor();
  expect(await agent.getByTestId('admin-panel').count()).toBe(0);
  await agent.screenshot({ path: path.join(SHOTS, '1-vip-agent-sees-fast-payment.png') });

  // The customer outside the 20% does not; calling the API anyway is refused by the guard.
  const customer = await signedIn('carol');
  expect(await customer.getByTestId('flag-value').textContent()).toBe('false');
  expect(await customer.getByTestId('fast-payment').count()).toBe(0);
  expect(await callAs(customer, 'POST', '/payments/fast')).toEqual({ status: 403, body: { error: 'feature_not_enabled' } });
  expect(await callAs(customer, 'POST', '/payments')).toEqual({ status: 200, body: { paid: true, flow: 'classic', by: 'carol' } });
  await customer.getByTestId('try-fast-api').click();
  await customer.getByTestId('payment-result').filter({ hasText: 'Refused: HTTP 403' }).waitFor();
  await customer.screenshot({ path: path.join(SHOTS, '2-customer-no-fast-payment-api-403.png') });

  // A customer inside the 20% bucket sees it.
  const lucky = await signedIn('dale');
  await lucky.getByTestId('fast-payment').waitFor();
  expect(await lucky.getByTestId('flag-value').textContent()).toBe('true');
  await lucky.close();

  // Only the admin gets the panel — and the admin API itself refuses the others.
  const admin = await signedIn('ada');
  await admin.getByTestId('fast-payment').waitFor();
  await admin.getByTestId('admin-panel').waitFor();
  expect(await admin.getByTestId('admin-state').textContent()).toBe('ENABLED');
  expect(await admin.getByTestId('rollout-20').getAttribute('aria-pressed')).toBe('true');
  expect((await callAs(agent, 'GET', '/rollgate/admin/flags/fast-payment')).status).toBe(403);
  expect((await callAs(agent, 'PATCH', '/rollgate/admin/flags/fast-payment', { state: 'DISABLED' })).status).toBe(403);
  await admin.screenshot({ path: path.join(SHOTS, '3-admin-panel.png') });

  // Kill switch in the panel: the agent's already-open page hides the button within 1 s, without a reload.
  const navigations: string[] = [];
  agent.on('framenavigated', (frame) => navigations.push(frame.url()));
  timings.killSwitch = await followMs(admin, 'kill-switch', agent, 'detached');
  expect(timings.killSwitch).toBeLessThan(1000);
  expect(navigations).toEqual([]);
  await admin.getByTestId('admin-state').filter({ hasText: 'DISABLED' }).waitFor();
  await admin.getByTestId('fast-payment').waitFor({ state: 'detached', timeout: 1000 }); // the admin's own button too
  expect(await callAs(agent, 'POST', '/payments/fast')).toEqual({ status: 403, body: { error: 'feature_not_enabled' } });
  await agent.screenshot({ path: path.join(SHOTS, '4-kill-switch-agent-button-gone.png') });
  await admin.screenshot({ path: path.join(SHOTS, '5-admin-after-kill-switch.png') });

  // Back on, then ramp to 50%: the customer (in the 50% bucket) gets the button live.
  timings.reEnable = await followMs(admin, 'kill-switch', agent, 'attached');
  expect(timings.reEnable).toBeLessThan(1000);
  await admin.getByTestId('admin-state').filter({ hasText: 'ENABLED' }).waitFor();
  timings.rollout50 = await followMs(admin, 'rollout-50', customer, 'attached');
  expect(timings.rollout50).toBeLessThan(1000);
  expect((await callAs(customer, 'POST', '/payments/fast')).status).toBe(200);
  await customer.screenshot({ path: path.join(SHOTS, '6-rollout-50-customer-gets-it.png') });

  // Someone else changes the flag with the CLI meanwhile: the panel's next write is answered 409
  // and shown as such, nothing is overwritten, and the panel now shows the latest state.
  await admin.locator('[data-testid="rollout-50"][aria-pressed="true"]').waitFor();
  const cli = path.join(ROOT, 'packages/cli/dist/bin.js');
  await run(process.execPath, [cli, '--redis', redis!.url, '--env', 'demo', '--actor', 'ops', 'rollout', 'fast-payment', '20', '--reason', 'back to 20% from the CLI'], ROOT, 30_000);
  await customer.getByTestId('fast-payment').waitFor({ state: 'detached', timeout: 1000 }); // the CLI's change reaches the open page too
  await admin.getByTestId('rollout-100').click(); // the panel still shows 50%: its If-Match is stale
  await admin.getByTestId('admin-conflict').waitFor();
  expect(await admin.getByTestId('admin-conflict').textContent()).toMatch(/someone else changed fast-payment first \(it is now at version \d+\)/);
  await admin.locator('[data-testid="rollout-20"][aria-pressed="true"]').waitFor(); // reloaded: the CLI's 20%
  expect(await customer.getByTestId('fast-payment').count()).toBe(0); // the stale write did not happen
  await admin.screenshot({ path: path.join(SHOTS, '7-admin-409-conflict.png') });

  // The audit shows who did what, the panel's changes under the admin's name.
  const audit = (await callAs(admin, 'GET', '/rollgate/admin/audit?key=fast-payment&limit=10')).body as { entries: { actor: string; action: string; reason: string }[] };
  expect(audit.entries.map((e) => `${e.actor} ${e.action}: ${e.reason}`)).toEqual([
    'ops rollout: back to 20% from the CLI',
    'ada patch: rollout 50% from the admin panel',
    'ada patch: re-enabled from the admin panel',
    'ada patch: kill switch from the admin panel',
    expect.stringMatching(/^booking-api seed: seed from /),
  ]);

  expect(pageErrors).toEqual([]);
  console.log(`demo e2e: open pages followed the admin panel in ${timings.killSwitch} ms (kill switch), ${timings.reEnable} ms (back on), ${timings.rollout50} ms (rollout 50%); screenshots in ${path.relative(ROOT, SHOTS)}`);
});

it('says "in-memory" on its first line with BOOKING_STORE=memory (no Redis asked for), and still serves the demo', async () => {
  const started = Date.now();
  const memory = await startDemo({ REDIS_URL: '', BOOKING_STORE: 'memory', PORT: '0' });
  try {
    expect(memory.lines[0]).toMatch(/^store: embedded in-memory \(BOOKING_STORE=memory\)/);
    expect(memory.lines[1]).toBe('flags: seeded from examples/booking-api/flags.json (version 1)');
    const page = await browser!.context.newPage();
    await page.goto(memory.url);
    await page.getByTestId('login-carol').click();
    await page.getByTestId('provider-status').filter({ hasText: 'READY' }).waitFor();
    expect(await page.getByTestId('fast-payment').count()).toBe(0);
    expect(await callAs(page, 'POST', '/payments/fast')).toEqual({ status: 403, body: { error: 'feature_not_enabled' } });
    await page.close();
  } finally {
    expect(await memory.stop()).toBe(0);
  }
  console.log(`demo e2e: in-memory start to clean stop in ${Date.now() - started} ms`);
});
