import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { CHROMIUM, missingChromiumLine } from './browser-tests';

// Headless Chromium for the browser end-to-end tests: Debian's /usr/bin/chromium (or
// ROLLGATE_CHROMIUM) driven by playwright-core (no browser download). .ci/run installs it when it
// is missing; without it, jest leaves these tests out and says so in one line (browser-tests.ts).

export { CHROMIUM };

/**
 * How long a page may take to follow a change before the test calls it a hang. Not the product's
 * "within a second": that is measured and printed by the tests (and benchmarked), because a
 * loaded 2-core machine stretches a browser's time; what the tests assert is the mechanism
 * (pushed over SSE, no reload, no polling).
 */
export const LIVE_MS = 10_000;

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh persistent profile in a temp dir, removed on close. Fails with the fix when Chromium is missing. */
export async function launchChromium(options: { width?: number; height?: number } = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(missingChromiumLine([expect.getState().testPath ?? 'this test'])); // run by path despite the config
  const profile = mkdtempSync(path.join(tmpdir(), 'rollgate-e2e-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: options.width ?? 900, height: options.height ?? 600 },
    });
    return {
      context,
      close: async () => {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
}
