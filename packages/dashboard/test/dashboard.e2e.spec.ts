import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import path from 'node:path';
import express from 'express';
import jwt from 'jsonwebtoken';
import type { Page } from 'playwright-core';
import { RedisFlagStore } from '@rollgate/redis';
import { OutcomeRecorder, RolloutController, Rollouts } from '@rollgate/rollouts';
import { defineIdentity, adminRouter, type AdminRouter } from '@rollgate/express';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { launchChromium, LIVE_MS, type Browser } from '../../../test/support/browser';
import { buildDashboard } from './support/build';

// The dashboard in a real browser: Debian's Chromium driven by playwright-core, the built app
// served by adminRouter({ dashboard: true }) from a real Express app over a throwaway
// redis-server. Every wait is for a condition on the page or in Redis, never a fixed time.
// Screenshots go to packages/dashboard/test-output/e2e/.

jest.setTimeout(120_000);

const SECRET = 'dashboard-e2e-secret-of-32-bytes!!';
const sign = (claims: Record<string, unknown>) => jwt.sign(claims, SECRET, { algorithm: 'HS256', expiresIn: 600 });
const ADA = sign({ sub: 'ada', roles: ['flag-admin'] });
const BO = sign({ sub: 'bo', roles: ['agent'] });
const SHOTS = path.join(__dirname, '../test-output/e2e');
const vip = ['atlas-travel', 'blue-lagoon-tours', 'nordic-trips', ...Array.from({ length: 117 }, (_, i) => `agency-${String(i + 1).padStart(3, '0')}`)];

let redis: TestRedis;
let store: RedisFlagStore;
let router: AdminRouter;
let server: Server;
let browser: Browser;
let base: string;
const problems: string[] = [];

async function seed(): Promise<void> {
  await store.apply(
    [
      { kind: 'evaluator', key: 'vip-agencies', definition: { in: [{ var: 'tenant' }, vip] } },
      {
        kind: 'flag',
        key: 'fast-payment',
        definition: {
          state: 'ENABLED',
          variants: { on: true, off: false },
          defaultVariant: 'off',
          targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { $ref: 'vip-agencies' }, 'on', { fractional: [['on', 20], ['off', 80]] }] },
          metadata: { owner: 'payments', clientVisible: true },
        },
      },
      { kind: 'flag', key: 'checkout-theme', definition: { state: 'ENABLED', variants: { classic: 'classic', bold: 'bold' }, defaultVariant: 'classic' } },
      {
        kind: 'flag',
        key: 'fast-checkout',
        definition: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { fractional: [['on', 0], ['off', 100]] }, metadata: { clientVisible: true } },
      },
      {
        kind: 'flag',
        key: 'new-search',
        definition: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ in: ['beta', { var: 'roles' }] }, 'on', { fractional: [['on', 0], ['off', 100]] }] } },
      },
    ],
    { actor: 'seed', reason: 'e2e flags' },
  );
}

/**
 * A running plan with traffic: control traffic before the start (the latency baseline), then a
 * few minutes of both arms, read by one controller tick — all on fake clocks in the past, so the
 * charts and the evidence have data and the plan holds (its first stage lasts 30 minutes).
 */
async function runningPlan(): Promise<void> {
  const now = Date.now();
  let clock = now - 400_000;
  const recorder = new OutcomeRecorder({ store, now: () => clock, maxPendingSeconds: 3600, flushIntervalMs: 60_000 });
  const rollouts = new Rollouts({ store, now: () => clock });
  await rollouts.create(
    {
      flag: 'new-search',
      treatment: 'on',
      control: 'off',
      stages: [{ percent: 5, minDurationSec: 1800 }, { percent: 20 }, { percent: 50, approval: true }, { percent: 100, absolute: { maxErrorRate: 0.05, maxP99Ms: 800 } }],
      guards: [{ metric: 'errors' }, { metric: 'latency', quantile: 0.99 }],
    },
    { actor: 'ada', reason: 'new search, guarded' },
  );
  // a healthy treatment: both arms fail and are slow alike (a seeded generator, so every run is the same)
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const traffic = (seconds: number, treatmentShare: number) => {
    for (let s = 0; s < seconds; s++, clock += 1000) {
      for (let i = 0; i < 12; i++) {
        const treatment = random() < treatmentShare;
        recorder.recordRequest([{ flagKey: 'new-search', variant: treatment ? 'on' : 'off', split: true, unit: `u${Math.floor(random() * 500)}` }], {
          error: random() < 0.015,
          durationMs: 30 + random() * 90 + (random() < 0.02 ? 250 + random() * 150 : 0),
        });
      }
    }
  };
  traffic(60, 0);
  await recorder.flush();
  await rollouts.start('new-search', { actor: 'ada', reason: 'go' });
  traffic(300, 0.05);
  await recorder.flush();
  await recorder.close();
  clock = now;
  const controller = new RolloutController({ store, now: () => clock, name: 'e2e' });
  const tick = await controller.tick();
  expect(tick.plans).toEqual([expect.objectContaining({ flag: 'new-search', action: 'hold' })]);
  await controller.stop();
}

/** What users typed in the feedback prompt: markup, a terminal escape (colour, an OSC 8 link), a bidi override. */
const HOSTILE = {
  markup: '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> the button froze',
  escape: '\u001b[31mred alert\u001b[0m \u001b]8;;https://evil.example\u0007click\u001b]8;;\u0007',
  bidi: 'refund \u202egnp.exe',
};

/**
 * A plan guarded by what users live through (errors thrown in their pages per page view, the time
 * to complete a checkout, negative feedback), with six minutes of both arms at 50% recorded on a
 * fake clock in the past, starting on a minute boundary so that closed minutes are compared; the
 * treatment checks out faster and is as healthy otherwise. Feedback with hostile comments.
 */
async function usersSignalsPlan(): Promise<void> {
  const now = Date.now();
  let clock = (Math.floor(now / 60_000) - 8) * 60_000;
  const recorder = new OutcomeRecorder({ store, now: () => clock, maxPendingSeconds: 3600, flushIntervalMs: 60_000 });
  const rollouts = new Rollouts({ store, now: () => clock });
  await rollouts.create(
    {
      flag: 'fast-checkout',
      treatment: 'on',
      control: 'off',
      stages: [{ percent: 50, minDurationSec: 3600 }, { percent: 100, absolute: { maxErrorRate: 0.05 } }],
      guards: [{ metric: 'errors' }, { metric: 'clientErrors' }, { metric: 'value', name: 'checkout.completed', unit: 'ms', margin: 0.1 }, { metric: 'feedback' }],
    },
    { actor: 'ada', reason: 'fast checkout, judged by users' },
  );
  await rollouts.start('fast-checkout', { actor: 'ada', reason: 'go' });
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  let user = 0;
  for (let s = 0; s < 360; s++, clock += 1000) {
    for (let i = 0; i < 8; i++) {
      const treatment = i % 2 === 0;
      const x = [{ flagKey: 'fast-checkout', variant: treatment ? 'on' : 'off', split: true, unit: `u${user++}` }];
      recorder.recordRequest(x, { error: random() < 0.01, durationMs: 40 + random() * 40 });
      recorder.recordEvent('$pageview', x);
      if (random() < 0.01) recorder.recordEvent('$client_error', x);
      recorder.recordEvent('checkout.completed', x, (treatment ? 36_000 : 48_000) * Math.exp(0.45 * normal()));
      if (s % 10 === 0 && i < 2) {
        const sentiment = random() < 0.15 ? 'negative' : random() < 0.8 ? 'positive' : 'neutral';
        recorder.recordEvent(`$feedback.${sentiment}`, x);
        recorder.recordFeedback({ flagKey: 'fast-checkout', variant: x[0]!.variant, split: true, sentiment, unit: x[0]!.unit, ...(s % 60 === 0 ? { comment: treatment ? 'Quick, two clicks.' : 'Fine, as always.' } : {}) });
      }
    }
  }
  const hostile = (comment: string, unit: string) => {
    const x = [{ flagKey: 'fast-checkout', variant: 'on', split: true, unit }];
    recorder.recordEvent('$feedback.negative', x);
    recorder.recordFeedback({ flagKey: 'fast-checkout', variant: 'on', split: true, sentiment: 'negative', comment, unit });
  };
  hostile(HOSTILE.bidi, 'mallory');
  hostile(HOSTILE.escape, 'mallory');
  hostile(HOSTILE.markup, '<b>mallory</b>');
  await recorder.close();
  clock = now;
  const controller = new RolloutController({ store, now: () => clock, name: 'e2e' });
  const tick = await controller.tick();
  expect(tick.plans).toEqual(expect.arrayContaining([expect.objectContaining({ flag: 'fast-checkout', action: 'hold' })]));
  await controller.stop();
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  await buildDashboard(); // a hash check after `npm run build`
  redis = await startRedis();
  store = new RedisFlagStore({ redis: redis.url, env: `dashboard-e2e-${process.pid}`, pollIntervalMs: 100 });
  await seed();
  await runningPlan();
  await usersSignalsPlan();
  router = adminRouter({ store, identity: defineIdentity({ jwt: { secret: SECRET, algorithms: ['HS256'] } }), authorize: (who) => (who.context.roles as string[]).includes('flag-admin'), dashboard: true });
  server = express().use(router).listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rollgate/`;
  browser = await launchChromium({ width: 1280, height: 900 });
});

afterAll(async () => {
  await browser?.close();
  router?.close();
  if (server) await new Promise((resolve) => server.close(resolve));
  await store?.close();
  await redis?.stop();
});

/** A page of the dashboard; with a token it is signed in as the demo does it (sessionStorage). `before` runs before it loads. */
async function open(hash = '', token?: string, before?: (page: Page) => Promise<void>): Promise<Page> {
  const page = await browser.context.newPage();
  await before?.(page);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // refusals the tests cause on purpose (401, 403, a 409, a 503 while Redis hangs) are logged by Chromium as failed loads
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of (40[139]|503)/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  if (token) await page.addInitScript((t) => sessionStorage.setItem('rollgate.token', t), token);
  await page.goto(`${base}${hash}`);
  // any CSP violation (an inline style or script the build should not have) fails the run
  await page.evaluate(() => document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`)));
  return page;
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, name), fullPage: true });

it("is React's production build, even when built under jest (NODE_ENV=test)", () => {
  const assets = path.join(__dirname, '../dist/app/assets');
  const app = readdirSync(assets).find((f) => /^index-.*\.js$/.test(f))!;
  expect(readFileSync(path.join(assets, app), 'utf8')).not.toContain('jsxDEV'); // the development JSX runtime
});

it('signs in with a pasted token and shows every flag with its state, split and last change', async () => {
  const page = await open();
  await page.getByRole('heading', { name: 'Sign in to Rollgate' }).waitFor();
  await page.getByTestId('token').fill(ADA);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('flag-fast-payment').waitFor();
  for (const key of ['checkout-theme', 'new-search']) await page.getByTestId(`flag-${key}`).waitFor();
  expect(await page.evaluate(() => sessionStorage.getItem('rollgate.token'))).toBe(ADA);
  const card = page.getByTestId('flag-fast-payment');
  expect(await card.textContent()).toContain('ENABLED');
  expect(await card.textContent()).toContain('servers and browsers (OFREP)');
  expect(await card.textContent()).toContain('seed');
  expect(await card.getByRole('img', { name: 'Split: on 20%, off 80%' }).count()).toBe(1);
  await page.getByTestId('live').filter({ hasText: 'Live' }).waitFor();
  await shot(page, '1-flags.png');
  await page.close();
});

it('gives a non-admin no data: "not authorized", and the API refuses it too', async () => {
  const page = await open('', BO);
  await page.getByTestId('forbidden').waitFor();
  expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Not authorized');
  expect(await page.getByRole('navigation').count()).toBe(0);
  expect(await page.locator('[data-testid^="flag-"]').count()).toBe(0);
  const status = await page.evaluate(async (t) => (await fetch('admin/flags', { headers: { Authorization: `Bearer ${t}` } })).status, BO);
  expect(status).toBe(403);
  await shot(page, '2-not-authorized.png');
  await page.close();
});

it('shows the targeting in words, explains a decision, and flips the kill switch after a confirmation that says who is affected', async () => {
  const page = await open('#/flags/fast-payment', ADA);
  await page.getByTestId('flag-detail').waitFor();
  const targeting = page.locator('section', { has: page.getByRole('heading', { name: 'Targeting' }) });
  const rules = targeting.locator('ol.branches > li');
  const texts = (await rules.allTextContents()).map((t) => t.replace(/\s+/g, ' ').trim());
  expect(texts.slice(0, 2)).toEqual(['If roles includes "admin" → gets on', 'If in segment vip-agencies → gets on']);
  expect(texts[2]).toMatch(/^Everyone else → gets a split:/);
  expect(await rules.nth(2).getByRole('img', { name: 'on 20%, off 80%' }).count()).toBe(1);
  expect(await targeting.getByRole('link', { name: 'vip-agencies' }).count()).toBe(2);
  expect(await targeting.textContent()).toContain('vip-agencies (tenant is one of 120 values)');

  await page.getByTestId('explain-user').fill('carol');
  await page.getByRole('button', { name: 'Explain' }).click();
  await page.getByTestId('explanation').waitFor();
  expect(await page.getByTestId('explanation').textContent()).toMatch(/Gets (on|off)/);

  await page.getByTestId('kill-switch').click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  expect(await dialog.getByTestId('impact').textContent()).toContain('Everyone who evaluates "fast-payment", in every app and instance, gets the code default');
  expect(await dialog.getByTestId('impact').textContent()).toContain('roles includes "admin" → "on"');
  await dialog.getByLabel('Reason (recorded in the audit)').fill('incident 42');
  await shot(page, '3-kill-switch-confirmation.png');
  await dialog.getByRole('button', { name: 'Disable everywhere' }).click();
  await page.getByTestId('flag-detail').locator('.title-row').getByText('DISABLED').waitFor();
  await dialog.waitFor({ state: 'detached' });

  const stored = await store.load();
  expect((stored.flags['fast-payment'] as { state: string }).state).toBe('DISABLED');
  const [last] = await store.audit('fast-payment', { limit: 1 });
  expect(last).toMatchObject({ actor: 'ada', action: 'disable', reason: 'incident 42' });
  await page.close();
});

it('follows a change made elsewhere, pushed, without reloading the page (how fast: printed)', async () => {
  const page = await open('', ADA);
  await page.getByTestId('live').filter({ hasText: 'Live' }).waitFor();
  const card = page.getByTestId('flag-checkout-theme');
  await card.waitFor();
  const interactive = await page.evaluate(() => Math.round(performance.now())); // since navigation start: flags on screen
  const navigations: string[] = [];
  page.on('framenavigated', (frame) => navigations.push(frame.url()));
  const started = Date.now();
  await store.patchFlag('checkout-theme', { defaultVariant: 'bold' }, { actor: 'cli-user', reason: 'from the CLI' });
  await card.getByText('bold').waitFor({ timeout: LIVE_MS });
  const elapsed = Date.now() - started;
  expect(navigations).toEqual([]);
  expect(await card.textContent()).toContain('cli-user');
  console.log(`dashboard e2e: flags on screen ${interactive} ms after navigation; a store write appeared ${elapsed} ms later`);
  await page.close();
});

it('explains a write refused because the flag changed meanwhile (409), with the fresh state', async () => {
  const page = await open('#/flags/checkout-theme', ADA);
  await page.getByTestId('flag-detail').waitFor();
  await page.getByTestId('kill-switch').click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  const before = (await store.load()).version;
  // someone else changes the flag while the confirmation is open
  await store.patchFlag('checkout-theme', { metadata: { owner: 'web' } }, { actor: 'bo', reason: 'owner tag' });
  await dialog.getByRole('button', { name: 'Disable everywhere' }).click();
  const note = page.getByTestId('conflict');
  await note.waitFor();
  const text = (await note.textContent())!;
  expect(text).toContain('Not written: changed meanwhile.');
  expect(text).toMatch(/bo changed this \d+ s ago: patch \(metadata: .*\) — “owner tag”/);
  expect(text).toContain(`version ${before + 1}`);
  // nothing was written, and the page shows the fresh state
  expect((await store.load()).flags['checkout-theme']).toMatchObject({ state: 'ENABLED', metadata: { owner: 'web' } });
  await page.getByText('owner').first().waitFor();
  await shot(page, '4-conflict-explained.png');
  await page.close();
});

it('pages and searches a large segment, and adds a value pinned to the version shown', async () => {
  const page = await open('#/segments/vip-agencies', ADA);
  await page.getByTestId('segment-page').filter({ hasText: '1–50 of 120' }).waitFor();
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByTestId('segment-page').filter({ hasText: '51–100 of 120' }).waitFor();
  await page.getByTestId('segment-search').fill('agency-11');
  await page.getByTestId('segment-page').filter({ hasText: '1–8 of 8' }).waitFor(); // agency-110 … agency-117
  await page.getByTestId('segment-add').fill('sunny-holidays');
  await shot(page, '5-segment-paged.png');
  await page.getByRole('button', { name: 'Save…' }).click();
  const dialog = page.getByRole('dialog');
  expect(await dialog.textContent()).toContain('changes in: fast-payment');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.getByRole('heading', { name: /Values of tenant \(121\)/ }).waitFor();
  const rule = (await store.load()).evaluators['vip-agencies'] as { in: [unknown, string[]] };
  expect(rule.in[1]).toContain('sunny-holidays');
  await page.close();
});

it('shows a plan: its stage timeline, the hold reason in words, the evidence and live charts; rolls it back', async () => {
  const plan = await new Rollouts({ store }).get('new-search');
  expect(plan.holdReason).toMatch(/^waiting: /);
  const page = await open('#/plans/new-search', ADA);
  await page.getByTestId('plan-detail').waitFor();
  const stages = page.getByTestId('timeline').locator('li');
  expect(await stages.count()).toBe(4);
  expect(await stages.nth(0).innerText()).toMatch(/^Stage 1: 5% current\n5% · at least 30 min · 100 requests and 10 units per arm$/);
  expect(await stages.nth(0).getAttribute('aria-current')).toBe('step');
  expect(await stages.nth(2).textContent()).toContain('needs approval');
  expect(await page.getByTestId('hold-reason').textContent()).toBe(`Holding: ${plan.holdReason}`);
  expect(await page.getByRole('meter').count()).toBe(2);
  await page.locator('.chart canvas').nth(1).waitFor();
  await shot(page, '6-plan-holding.png');

  await page.getByTestId('plan-rollback').click();
  const dialog = page.getByRole('dialog');
  expect(await dialog.textContent()).toContain('Everyone in the split of “new-search” gets off');
  await dialog.getByLabel('Reason (recorded in the audit)').fill('search relevance complaints');
  await dialog.getByRole('button', { name: 'Roll back' }).click();
  await page.getByTestId('hold-reason').filter({ hasText: 'Rolled back' }).waitFor();
  const after = await new Rollouts({ store }).get('new-search');
  expect(after).toMatchObject({ state: 'rolled_back', last: { action: 'rollback', actor: 'ada', reason: 'search relevance complaints' } });
  const def = (await store.load()).flags['new-search'] as { targeting: { if: [unknown, unknown, { fractional: unknown }] } };
  expect(def.targeting.if[2].fractional).toEqual([
    ['on', 0],
    ['off', 100],
  ]);
  await page.close();
});

it('shows what users live through in a plan: errors thrown in pages per arm, the time to complete in words, feedback per variant with its interval and the comments as text', async () => {
  const page = await open('#/plans/fast-checkout', ADA);
  const signals = page.getByTestId('users-signals');
  await signals.waitFor();
  // errors thrown in users' pages, per page view, from the clientErrors guard's counts
  const treatment = (await signals.getByTestId('client-errors-treatment').innerText()).split('\t');
  expect(treatment[0]).toBe('treatment (on)');
  expect(Number(treatment[1]!.replace(/,/g, ''))).toBeGreaterThan(1000);
  expect(Number(treatment[2])).toBeGreaterThan(0);
  // the value guard in the controller's words
  expect(await signals.getByTestId('value-words-checkout.completed').textContent()).toMatch(/^checkout\.completed \d+% faster \([\d.]+% interval \d+–\d+%\), [\d,]+ values per arm$/);
  expect(await page.getByTestId('guard-value').textContent()).toContain('checkout.completed');
  expect(await page.getByTestId('guard-clientErrors').textContent()).toMatch(/Errors thrown in users’ pages per page view: treatment \d+\/[\d]+/);
  // feedback per variant: counts, the negative share with its interval, the latest comments
  const on = signals.getByTestId('feedback-variant-on');
  await on.getByTestId('feedback-comment').first().waitFor();
  expect(await on.getByTestId('feedback-share-on').textContent()).toMatch(/^\d+\.\d% negative \(95% interval \d+\.\d+%–\d+\.\d+%\), \d+ answers$/);
  expect(await signals.getByTestId('feedback-share-off').textContent()).toMatch(/negative \(95% interval/);
  expect((await on.textContent())!).toContain('treatment');
  // hostile comments: markup as characters, escapes escaped, the reporter's key as text too
  const comments = await on.getByTestId('feedback-comment').allTextContents();
  expect(comments[0]).toContain(HOSTILE.markup);
  expect(comments[0]).toContain('from <b>mallory</b>');
  expect(comments[1]).toContain('\\x1b[31mred alert\\x1b[0m \\x1b]8;;https://evil.example\\x07click\\x1b]8;;\\x07');
  expect(comments[2]).toContain('refund \\u202egnp.exe');
  expect(comments.join('')).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/);
  expect(await page.getByTestId('feedback').locator('img, script, b').count()).toBe(0);
  expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  await shot(page, '7a-plan-users-signals.png');
  // the flag's own page shows the same feedback
  await page.evaluate(() => (location.hash = '#/flags/fast-checkout'));
  await page.getByTestId('flag-detail').getByTestId('feedback-variant-on').getByTestId('feedback-comment').first().waitFor();
  await page.close();
});

it('says "not enough data yet" where users have said nothing and the plan has no users\' signals', async () => {
  const page = await open('#/plans/new-search', ADA);
  const signals = page.getByTestId('users-signals');
  await signals.getByTestId('feedback-share-on').waitFor();
  expect(await signals.getByTestId('client-errors').textContent()).toMatch(/^Not guarded: add/);
  expect(await signals.getByTestId('feedback-share-on').textContent()).toBe('Not enough data yet: no answers from users served “on”.');
  expect(await signals.getByTestId('feedback-share-off').textContent()).toBe('Not enough data yet: no answers from users served “off”.');
  await shot(page, '7b-plan-no-users-signals.png');
  await page.evaluate(() => (location.hash = '#/flags/checkout-theme'));
  await page.getByTestId('feedback-none').waitFor();
  expect(await page.getByTestId('feedback-none').textContent()).toMatch(/^No feedback about “checkout-theme” yet\./);
  await page.close();
});

it('shows the audit with before → after, actor and reason, and reverts a change from there', async () => {
  const page = await open('#/audit?key=checkout-theme', ADA);
  const entry = page.locator('li.card', { hasText: 'from the CLI' });
  await entry.waitFor();
  expect((await entry.textContent())!.replace(/\s+/g, ' ')).toMatch(/cli-user patch flag checkout-theme.*“from the CLI”.*defaultVariant "classic" → "bold"/);
  await entry.getByRole('button', { name: 'Revert to before this…' }).click();
  const dialog = page.getByRole('dialog');
  expect((await dialog.textContent())!.replace(/\s+/g, ' ')).toContain('defaultVariant "bold" → "classic"');
  await dialog.getByLabel('Reason (recorded in the audit)').fill('back to classic');
  await dialog.getByRole('button', { name: 'Revert' }).click();
  await page.locator('li.card', { hasText: 'back to classic' }).waitFor();
  await shot(page, '7-audit-after-revert.png');
  expect((await store.load()).flags['checkout-theme']).toMatchObject({ defaultVariant: 'classic' });
  expect((await store.audit('checkout-theme', { limit: 1 }))[0]).toMatchObject({ actor: 'ada', action: 'revert', reason: 'back to classic' });
  await page.close();
});

it('says "Redis unreachable" while Redis hangs — live and on a fresh load — and recovers by itself', async () => {
  const live = await open('', ADA);
  await live.getByTestId('live').filter({ hasText: 'Live' }).waitFor();
  redis.pause(); // SIGSTOP: connections stay open, nothing answers
  try {
    await live.getByTestId('live').filter({ hasText: 'Redis unreachable' }).waitFor({ timeout: 15_000 });
    expect(await live.getByTestId('flag-fast-payment').count()).toBe(1); // the last state stays on screen
    const fresh = await open('', ADA);
    await fresh.getByRole('alert').filter({ hasText: 'Redis unreachable.' }).waitFor({ timeout: 15_000 });
    expect(await fresh.locator('[data-testid^="flag-"]').count()).toBe(0);
    await shot(fresh, '8-redis-unreachable.png');
    expect(await fresh.getByRole('button', { name: 'Retry' }).count()).toBe(1);
    redis.resume();
    // it retries by itself (and the Retry button does the same at once)
    await fresh.getByTestId('flag-fast-payment').waitFor({ timeout: 15_000 });
    await fresh.close();
  } finally {
    redis.resume();
  }
  await live.getByTestId('live').filter({ hasText: 'Live' }).waitFor({ timeout: 15_000 });
  await live.close();
});

/** The admin API requests a page makes (`flags`, `audit?limit=200`, …), in order. */
function apiRequests(page: Page): string[] {
  const seen: string[] = [];
  page.on('request', (r) => {
    const url = new URL(r.url());
    const at = url.pathname.indexOf('/admin/');
    if (at >= 0) seen.push(`${url.pathname.slice(at + '/admin/'.length)}${url.search}`);
  });
  return seen;
}

/** A page whose change stream is held back until `release()`: its first state is read and shown while the stream is not open yet. */
async function openHeld(): Promise<{ page: Page; requests: string[]; release(): void }> {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let requests: string[] = [];
  const page = await open('', ADA, async (p) => {
    requests = apiRequests(p);
    await p.route('**/admin/events', async (route) => {
      await held;
      await route.continue();
    });
  });
  await page.getByTestId('flag-checkout-theme').waitFor();
  expect(await page.getByTestId('live').textContent()).not.toContain('Live');
  return { page, requests, release };
}

it('opens the change stream beside the first load, and misses no flag change made between that read and the stream', async () => {
  const { page, requests, release } = await openHeld();
  await store.patchFlag('checkout-theme', { metadata: { owner: 'gap' } }, { actor: 'gap-writer', reason: 'between the first read and the stream' });
  release();
  // the stream's first announcement says the flags moved: the page reads them again
  await page.getByTestId('flag-checkout-theme').filter({ hasText: 'gap-writer' }).waitFor({ timeout: LIVE_MS });
  await page.getByTestId('live').filter({ hasText: 'Live' }).waitFor();
  expect(requests.filter((r) => r === 'flags')).toHaveLength(2);
  // the whole audit was read once; the second load read only what was newer
  expect(requests.filter((r) => r.startsWith('audit?'))).toEqual(['audit?limit=200', expect.stringMatching(/^audit\?after=[^&]+&limit=50$/)]);
  await page.close();
});

it('misses no plan change made between the first read and the stream either (a plan write moves no flag version)', async () => {
  const rollouts = new Rollouts({ store });
  expect((await rollouts.get('fast-checkout')).state).toBe('running');
  const { page, release } = await openHeld();
  await rollouts.pause('fast-checkout', { actor: 'gap-writer', reason: 'paused between the first read and the stream' });
  try {
    release();
    await page.getByTestId('live').filter({ hasText: 'Live' }).waitFor();
    await page.evaluate(() => (location.hash = '#/plans/fast-checkout'));
    await page.getByTestId('hold-reason').filter({ hasText: 'Paused: paused by gap-writer' }).waitFor({ timeout: LIVE_MS });
  } finally {
    await rollouts.resume('fast-checkout', { actor: 'gap-writer', reason: 'as it was' });
  }
  await page.getByTestId('hold-reason').filter({ hasNotText: 'Paused' }).waitFor({ timeout: LIVE_MS });
  await page.close();
});

it('reads the whole audit once, not again when the stream opens: a change then reads only the newer entries', async () => {
  let requests: string[] = [];
  const page = await open('', ADA, async (p) => void (requests = apiRequests(p)));
  await page.getByTestId('live').filter({ hasText: 'Live' }).waitFor();
  const card = page.getByTestId('flag-checkout-theme');
  await store.patchFlag('checkout-theme', { metadata: { owner: 'web' } }, { actor: 'incremental', reason: 'one more change' });
  await card.filter({ hasText: 'incremental' }).waitFor({ timeout: LIVE_MS });
  // one load on opening and one for the change: the stream's announcements on connecting matched what the first load read
  expect(requests.filter((r) => r === 'flags')).toHaveLength(2);
  const audit = requests.filter((r) => r.startsWith('audit?'));
  expect(audit).toEqual(['audit?limit=200', expect.stringMatching(/^audit\?after=[^&]+&limit=50$/)]);
  // the entry appears in the audit view, newest first, with the ones read before
  await page.evaluate(() => (location.hash = '#/audit'));
  const first = page.locator('ol.audit > li').first();
  await first.filter({ hasText: 'one more change' }).waitFor();
  expect(await page.locator('ol.audit > li').count()).toBeGreaterThan(10);
  await page.close();
});

it('fits a phone: nothing overflows horizontally at 390×844', async () => {
  const page = await open('', ADA);
  await page.setViewportSize({ width: 390, height: 844 });
  for (const hash of ['#/flags', '#/flags/fast-payment', '#/segments/vip-agencies', '#/audit', '#/plans/new-search', '#/plans/fast-checkout']) {
    await page.evaluate((h) => (location.hash = h), hash);
    await page.locator('main h1').filter({ hasNotText: 'Loading' }).waitFor();
    await page.locator('main').locator('[data-testid="flag-detail"], [data-testid="plan-detail"], .cards, .audit, article').first().waitFor();
    if (hash === '#/plans/fast-checkout') await page.getByTestId('feedback-comment').first().waitFor(); // the longest comments on screen
    const overflow = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, body: document.body.scrollWidth, width: window.innerWidth }));
    expect([hash, overflow.doc, overflow.body]).toEqual([hash, overflow.width, overflow.width]);
    if (hash === '#/flags' || hash === '#/plans/new-search') await shot(page, `9-phone-${hash.split('/')[1]}.png`);
    if (hash === '#/plans/fast-checkout') await shot(page, '9-phone-plan-users-signals.png');
  }
  await page.close();
  expect(problems).toEqual([]);
});
