import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { launchChromium, type Browser } from '../../../test/support/browser';
import { buildProjects, withBuildLock } from '../../../test/support/packaging';
import { startOfrepServer, tokenFor, type OfrepTestServer } from './support/ofrep-server';

// The browser side of user signals in Debian's Chromium (playwright-core): a checkout page
// (test/signals-page, built by Vite against @rollgate/web and @rollgate/web/react through the
// package's "exports", as an app gets them) served by a real OFREP server (Express router, Redis,
// JWT identity) that records every body POSTed to the events endpoint and lets the real intake
// judge it. The page throws, rejects a promise, breaks a component inside the error boundary,
// sends feedback whose comment carries markup and terminal escapes, and times a checkout; the
// test checks what reached the server, byte for byte, and that the app kept working.
// Screenshots: packages/web/test-output/signals-e2e/*.png.

jest.setTimeout(90_000);

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../../..');
const PAGE = path.join(__dirname, 'signals-page');
const OUT = path.join(__dirname, '../test-output/signals-page');
const SHOTS = path.join(__dirname, '../test-output/signals-e2e');

let server: OfrepTestServer | undefined;
let browser: Browser | undefined;
const pageErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // The page imports @rollgate/web's ES-module build: bring it up to date (a no-op after `npm run build`), then build the page.
  await buildProjects(['packages/web/tsconfig.esm.json']);
  await withBuildLock(() =>
    run(process.execPath, [path.join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', PAGE, '--logLevel', 'warn', '--outDir', OUT, '--emptyOutDir'], {
      cwd: ROOT,
      env: { ...process.env, VITE_CONFIG_NATIVE_IGNORE_WARNING: 'true' },
    }),
  );
  server = await startOfrepServer('signals-e2e', { events: 'record', tracking: { trackedEvents: ['checkout.completed'] }, staticDir: OUT });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

type Received = Record<string, unknown>;
const events = (): Received[] => server!.received.flatMap((r) => r.body.events);
const ofType = (type: string) => events().filter((e) => e.type === type);
const FP = /^[0-9a-f]{16}$/;
/** Resolves once every events request the server received has been answered (judged and counted). */
const allAnswered = () => server!.request(() => server!.requests.filter((r) => r.path === '/rollgate/v1/events').length >= server!.received.length);

/** Markup, ANSI colour, an OSC 8 terminal hyperlink, a bell, a bidi override, an emoji. */
const COMMENT = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> \u001b[31mred\u001b[0m \u001b]8;;https://evil.example\u0007click\u001b]8;;\u0007 \u202egnp.exe 😀';

it('uncaught errors, an unhandled rejection, a boundary error, feedback and a timed checkout reach the server as the wire format says; the app keeps working', async () => {
  const token = tokenFor('bo');
  const page: Page = await browser!.context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${server!.baseUrl}/?token=${token}`);
  await page.locator('body[data-status="ready"]').waitFor();

  // the pageview: once the provider is ready
  await server!.receivedEvent((e) => e.type === 'pageview');

  // an uncaught error, twice (one report: deduplicated), then an unhandled rejection
  await page.getByTestId('throw').click();
  await page.getByTestId('throw').click();
  await page.getByTestId('reject').click();
  const uncaught = await server!.receivedEvent((e) => e.type === 'error' && e.source === 'error');
  const rejection = await server!.receivedEvent((e) => e.type === 'error' && e.source === 'unhandledrejection');
  expect(uncaught).toEqual({ type: 'error', fingerprint: expect.stringMatching(FP), message: 'Error: Payment widget exploded for order <n>', source: 'error' });
  expect(rejection).toEqual({ type: 'error', fingerprint: expect.stringMatching(FP), message: 'TypeError: card gateway timed out', source: 'unhandledrejection' });

  // a component that throws inside the error boundary: the fallback, a report, the rest of the page unharmed
  await page.getByTestId('break').click();
  await page.getByTestId('fallback').waitFor();
  const boundary = await server!.receivedEvent((e) => e.type === 'error' && e.source === 'boundary');
  expect(boundary).toEqual({ type: 'error', fingerprint: expect.stringMatching(FP), message: 'Error: PaymentSummary failed to render order <n>', source: 'boundary' });
  await page.screenshot({ path: path.join(SHOTS, '1-boundary-fallback.png') });
  await page.getByRole('button', { name: 'Retry' }).click();
  await page.getByTestId('summary').waitFor();

  // feedback, with the keyboard: Send without a choice is refused by the browser (required radios)
  const status = page.getByRole('status');
  await page.getByRole('button', { name: 'Send' }).click();
  expect(await status.textContent()).toBe('');
  expect(await page.getByRole('radio', { name: 'Good' }).evaluate((el: HTMLInputElement) => el.validity.valueMissing)).toBe(true);
  await page.getByRole('group', { name: 'How was the new payment flow?' }).waitFor(); // the fieldset, named by its legend
  await page.getByRole('radio', { name: 'Good' }).focus();
  await page.keyboard.press('ArrowDown'); // → Okay
  await page.keyboard.press('ArrowDown'); // → Bad
  expect(await page.getByRole('radio', { name: 'Bad' }).isChecked()).toBe(true);
  await page.getByLabel('Anything to add? (optional)').fill(COMMENT);
  expect(await page.getByLabel('Anything to add? (optional)').inputValue()).toBe(COMMENT); // the browser kept every character
  await page.getByLabel('Anything to add? (optional)').press('Tab'); // → Send
  await page.keyboard.press('Enter');
  await status.filter({ hasText: 'Thanks for your feedback!' }).waitFor();
  expect(await status.evaluate((el) => el === document.activeElement)).toBe(true); // focus moved to the answer
  const feedback = await server!.receivedEvent((e) => e.type === 'feedback');
  expect(feedback).toEqual({ type: 'feedback', flag: 'fast-payment', sentiment: 'negative', comment: COMMENT });
  expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
  await page.screenshot({ path: path.join(SHOTS, '2-feedback-thanks.png') });

  // a timed checkout: checkout.completed with the elapsed ms, counted by the real server in bo's arm
  const countedBefore = server!.recorder!.armTotals().find((t) => t.flagKey === 'fast-payment' && t.arm === 'targeted:on')?.events.get('checkout.completed') ?? 0;
  await page.getByTestId('start').click();
  await page.getByTestId('pay').click();
  const shown = Number(await page.getByTestId('elapsed').filter({ hasText: /\d/ }).textContent());
  const completed = await server!.receivedEvent((e) => e.name === 'checkout.completed');
  expect(completed).toEqual({ name: 'checkout.completed', value: shown });
  expect(shown).toBeGreaterThanOrEqual(0);
  await allAnswered();
  expect(server!.requests.filter((r) => r.path === '/rollgate/v1/events').map((r) => r.status)).toEqual(server!.received.map(() => 202));
  expect(server!.recorder!.armTotals().find((t) => t.flagKey === 'fast-payment' && t.arm === 'targeted:on')!.events.get('checkout.completed')).toBe(countedBefore + 1);

  // the app did not crash: it still answers clicks
  await page.getByTestId('alive').click();
  await page.getByTestId('alive').filter({ hasText: 'Clicked 1' }).waitFor();

  // everything the server received, in total: one of each (the second throw deduplicated), the user's token on every request
  expect(events().map((e) => e.type ?? e.name).sort()).toEqual(['checkout.completed', 'error', 'error', 'error', 'feedback', 'pageview']);
  expect(ofType('error').map((e) => e.source)).toEqual(['error', 'unhandledrejection', 'boundary']);
  expect(server!.received.every((r) => r.authorization === `Bearer ${token}` && JSON.stringify(r.body.context) === '{"targetingKey":"bo"}')).toBe(true);
  // nothing of a stack: no file, line or function name of the bundle
  const wire = JSON.stringify(server!.received);
  expect(wire).not.toMatch(/assets\/|\.js|PaymentSummary \(|at [A-Za-z]+ \(|componentStack/);
  // the uncaught ones did reach the page's own error handling (nothing was swallowed)
  expect(pageErrors.sort()).toEqual(['Payment widget exploded for order 123456789', 'Payment widget exploded for order 123456789', 'card gateway timed out']);
  await page.screenshot({ path: path.join(SHOTS, '3-after-everything.png') });
  await page.close();
});
