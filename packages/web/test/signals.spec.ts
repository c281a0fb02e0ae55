import { OpenFeature, type Client, type Logger } from '@openfeature/web-sdk';
import { RollgateWebProvider, WebConfigError, reportCaughtError, sendFeedback, startTask, type RollgateWebProviderOptions } from '@rollgate/web';
import { startOfrepServer, tokenFor, type OfrepTestServer, type ReceivedEvents } from './support/ofrep-server';

// The provider's own signals on the wire: pageviews, error reports (uncaught, unhandled
// rejections, caught by a boundary), feedback, and task timing as a tracked event with a value.
// `stub` answers 202 to every body and keeps it (the kinds the server does not accept yet: what
// the browser sends is what is checked); `real` is the real intake over Redis with tracking, which
// counts a tracked event with a value in the arm it evaluates for the caller.

const EVENTS = '/rollgate/v1/events';
let stub: OfrepTestServer;
let real: OfrepTestServer;
let domainSeq = 0;

beforeAll(async () => {
  OpenFeature.setLogger({ error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined });
  [stub, real] = await Promise.all([
    startOfrepServer('signals-stub', { events: 'stub' }),
    startOfrepServer('signals-real', { events: 'record', tracking: { trackedEvents: ['checkout.completed'] } }),
  ]);
});

afterEach(async () => {
  await OpenFeature.clearProviders();
});

afterAll(async () => {
  await stub?.close();
  await real?.close();
});

function logger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (m: string) => void warnings.push(m), error: () => undefined, info: () => undefined, debug: () => undefined };
}

interface Sent {
  keepalive: boolean | undefined;
  body: ReceivedEvents['body'];
}

function setup(options: Partial<RollgateWebProviderOptions> = {}, on = stub) {
  const domain = `signals-${++domainSeq}`;
  const token = { current: tokenFor('bo') as string };
  const sent: Sent[] = [];
  const log = logger();
  const provider = new RollgateWebProvider({
    baseUrl: on.baseUrl,
    changeDetection: 'none',
    headersFactory: () => ({ Authorization: `Bearer ${token.current}` }),
    logger: log,
    fetchImplementation: (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      if (url.endsWith(EVENTS)) sent.push({ keepalive: init?.keepalive, body: JSON.parse(String(init?.body)) as Sent['body'] });
      return fetch(input, init);
    },
    tracking: { flushIntervalMs: 600_000 }, // only what is sent promptly (or flushed) goes out during a test
    ...options,
  });
  return { domain, provider, client: OpenFeature.getClient(domain) as Client, token, sent, log };
}

/** Resolves when `on` has answered `n` more event requests than it had before this call. */
function eventRequests(on: OfrepTestServer, n: number) {
  const from = on.requests.length;
  let seen = 0;
  return on.request((r) => r.path === EVENTS && ++seen === n, from);
}

/** globalThis as a window for the duration of a test: addEventListener, dispatchEvent, a document. */
function fakeWindow() {
  const win = new EventTarget();
  const listeners = new Map<string, number>();
  const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' as DocumentVisibilityState });
  const g = globalThis as Record<string, unknown>;
  g.addEventListener = (type: string, fn: EventListener) => {
    listeners.set(type, (listeners.get(type) ?? 0) + 1);
    win.addEventListener(type, fn);
  };
  g.removeEventListener = (type: string, fn: EventListener) => {
    listeners.set(type, (listeners.get(type) ?? 0) - 1);
    win.removeEventListener(type, fn);
  };
  g.document = doc;
  return {
    listeners,
    /** An uncaught error as the browser dispatches it (ErrorEvent fields on an Event: Node has no ErrorEvent). */
    throwUncaught(error: unknown, at = { filename: 'https://shop.example.com/assets/index-3f2a.js', lineno: 1, colno: 4821 }) {
      win.dispatchEvent(Object.assign(new Event('error'), { error, message: `Uncaught ${String(error)}`, ...at }));
    },
    reject(reason: unknown) {
      win.dispatchEvent(Object.assign(new Event('unhandledrejection'), { reason }));
    },
    pagehide() {
      win.dispatchEvent(new Event('pagehide'));
    },
    remove() {
      delete g.addEventListener;
      delete g.removeEventListener;
      delete g.document;
    },
  };
}

function failure(message: string, frame: string): Error {
  const error = new TypeError(message);
  error.stack = `TypeError: ${message}\n    at pay (https://shop.example.com/assets/index-3f2a.js?v=3:${frame})\n    at dispatch (https://shop.example.com/assets/vendor.js:2:331)`;
  return error;
}

const FP = /^[0-9a-f]{16}$/;

describe('pageviews', () => {
  it('one when the provider is ready, one after a change of context (sign-in as someone else), none again for the same page and context', async () => {
    const s = setup({ pageviews: true, tracking: { flushIntervalMs: 20 } });
    const first = eventRequests(stub, 1);
    await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
    await first;
    s.token.current = tokenFor('carol');
    const second = eventRequests(stub, 1);
    await OpenFeature.setContext(s.domain, { targetingKey: 'carol' });
    await second;
    expect(s.sent.map((b) => [b.body.context, b.body.events])).toEqual([
      [{ targetingKey: 'bo' }, [{ type: 'pageview' }]],
      [{ targetingKey: 'carol' }, [{ type: 'pageview' }]],
    ]);
    // the same instance initialised again on this page, for the same context: no second pageview
    await s.provider.onClose();
    await s.provider.initialize({ targetingKey: 'carol' });
    await s.provider.onClose();
    expect(s.sent).toHaveLength(2);
  });

  it('are on with captureErrors and off without it, unless set; a bootstrapped provider sends its pageview at once', async () => {
    const off = new RollgateWebProvider({ baseUrl: stub.baseUrl });
    const on = new RollgateWebProvider({ baseUrl: stub.baseUrl, captureErrors: true });
    const forced = new RollgateWebProvider({ baseUrl: stub.baseUrl, pageviews: true });
    expect([off, on, forced].map((p) => (p as unknown as { options: { pageviews: boolean } }).options.pageviews)).toEqual([false, true, true]);

    const s = setup({ pageviews: true, bootstrap: { 'fast-payment': true }, tracking: { flushIntervalMs: 20 } });
    const answered = eventRequests(stub, 1);
    await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
    await answered;
    expect(s.sent.map((b) => b.body.events)).toEqual([[{ type: 'pageview' }]]);
  });

  it('pageviews or captureErrors without tracking are refused at construction, naming the option', () => {
    expect(() => new RollgateWebProvider({ baseUrl: stub.baseUrl, tracking: false, captureErrors: true })).toThrow(WebConfigError);
    expect(() => new RollgateWebProvider({ baseUrl: stub.baseUrl, tracking: false, captureErrors: true })).toThrow('options.captureErrors needs tracking');
    expect(() => new RollgateWebProvider({ baseUrl: stub.baseUrl, tracking: false, pageviews: true })).toThrow('options.pageviews needs tracking');
    expect(() => new RollgateWebProvider({ baseUrl: stub.baseUrl, captureErrors: { maxPerMinute: 0 } })).toThrow('options.captureErrors.maxPerMinute must be an integer from 1 to 1000');
    expect(() => new RollgateWebProvider({ baseUrl: stub.baseUrl, captureErrors: { dedupeMinutes: -1 } })).toThrow('options.captureErrors.dedupeMinutes must be a number >= 0');
    expect(() => new RollgateWebProvider({ baseUrl: stub.baseUrl, captureErrors: 'yes' as never })).toThrow('options.captureErrors must be a boolean or');
    expect(() => new RollgateWebProvider({ baseUrl: stub.baseUrl, captureErrors: { ignore: /x/ as never } })).toThrow('options.captureErrors.ignore must be a function');
    expect(() => new RollgateWebProvider({ baseUrl: stub.baseUrl, pageviews: 1 as never })).toThrow('options.pageviews must be a boolean');
    // tracking: false alone (no capture, no pageviews) is fine: reportError and sendFeedback just return false
    const quiet = new RollgateWebProvider({ baseUrl: stub.baseUrl, tracking: false });
    expect(quiet.reportError(new Error('x'))).toBe(false);
    expect(quiet.sendFeedback({ flag: 'fast-payment', sentiment: 'positive' })).toBe(false);
  });
});

describe('captureErrors', () => {
  it('reports uncaught errors and unhandled rejections promptly (not after flushIntervalMs), each fingerprint once; nothing of the stack is sent', async () => {
    const win = fakeWindow();
    try {
      const s = setup({ captureErrors: true, pageviews: false });
      await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
      const answered = eventRequests(stub, 1);
      const error = failure('Cannot read properties of undefined (reading "total") for card 4242 4242 4242 4242', '1:4821');
      win.throwUncaught(error);
      win.throwUncaught(error); // the same error again: deduplicated
      win.reject(new Error('gateway timeout'));
      win.reject({ card: '4242 4242 4242 4242' }); // a non-Error reason: its content is never sent
      await answered;
      expect(s.sent).toHaveLength(1);
      const [a, b, c, ...rest] = s.sent[0]!.body.events as { type: string; fingerprint: string; message: string; source: string }[];
      expect(rest).toEqual([]);
      expect(a).toEqual({ type: 'error', fingerprint: expect.stringMatching(FP), message: 'TypeError: Cannot read properties of undefined (reading "total") for card <n>', source: 'error' });
      expect(b).toEqual({ type: 'error', fingerprint: expect.stringMatching(FP), message: 'Error: gateway timeout', source: 'unhandledrejection' });
      expect(c).toEqual({ type: 'error', fingerprint: expect.stringMatching(FP), message: 'Unhandled rejection with a non-Error value (object)', source: 'unhandledrejection' });
      expect(new Set([a!.fingerprint, b!.fingerprint, c!.fingerprint]).size).toBe(3);
      expect(JSON.stringify(s.sent)).not.toMatch(/index-3f2a|vendor|dispatch|4242/);
      expect(s.sent[0]!.keepalive).toBeUndefined();
    } finally {
      win.remove();
    }
  });

  it('listens only while the provider is active: the listeners are removed on close', async () => {
    const win = fakeWindow();
    try {
      const s = setup({ captureErrors: { unhandledRejections: false } });
      await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
      expect(win.listeners.get('error')).toBe(1);
      expect(win.listeners.get('unhandledrejection') ?? 0).toBe(0);
      await OpenFeature.clearProviders();
      expect(win.listeners.get('error')).toBe(0);
      const before = s.sent.length;
      win.throwUncaught(new Error('after close'));
      expect(s.sent).toHaveLength(before);
    } finally {
      win.remove();
    }
  });

  it('rate-limits per page (maxPerMinute), then says how many were dropped in one warning', async () => {
    const win = fakeWindow();
    try {
      const s = setup({ captureErrors: { maxPerMinute: 3 }, pageviews: false });
      await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
      const answered = eventRequests(stub, 1);
      for (let i = 0; i < 8; i++) win.throwUncaught(failure(`failure number ${i}`, `1:${100 + i}`));
      await answered;
      expect(s.sent[0]!.body.events).toHaveLength(3);
      await OpenFeature.clearProviders();
      expect(s.log.warnings).toEqual(['@rollgate/web: dropped 5 error report(s): more than 3 in a minute on this page (captureErrors.maxPerMinute)']);
    } finally {
      win.remove();
    }
  });

  it('sends what is pending when the page is left (pagehide), with keepalive', async () => {
    const win = fakeWindow();
    try {
      const s = setup({ captureErrors: true, tracking: { flushIntervalMs: 600_000 } });
      await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
      const answered = eventRequests(stub, 1);
      win.pagehide(); // the pageview is still waiting for flushIntervalMs
      await answered;
      expect(s.sent).toEqual([{ keepalive: true, body: { events: [{ type: 'pageview' }], context: { targetingKey: 'bo' } } }]);
    } finally {
      win.remove();
    }
  });
});

describe('errors caught by the app (error boundary)', () => {
  it('provider.reportError and reportCaughtError({ domain }) send source "boundary", deduplicated with the uncaught ones, without captureErrors', async () => {
    const s = setup();
    await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
    const answered = eventRequests(stub, 1);
    const error = failure('Payment form crashed', '7:1200');
    expect(s.provider.reportError(error)).toBe(true);
    expect(reportCaughtError(error, { domain: s.domain })).toBe(false); // the same fingerprint: not again
    expect(reportCaughtError(failure('Summary crashed', '9:30'), { domain: s.domain })).toBe(true);
    expect(reportCaughtError(new Error('no provider there'), { domain: 'nobody-registered-this' })).toBe(false);
    await answered;
    expect(s.sent.map((b) => b.body.events)).toEqual([
      [
        { type: 'error', fingerprint: expect.stringMatching(FP), message: 'TypeError: Payment form crashed', source: 'boundary' },
        { type: 'error', fingerprint: expect.stringMatching(FP), message: 'TypeError: Summary crashed', source: 'boundary' },
      ],
    ]);
  });

  it('never throws, whatever was thrown', async () => {
    const s = setup();
    await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('a getter that throws');
        },
      },
    );
    expect(() => s.provider.reportError(hostile)).not.toThrow();
    expect(() => reportCaughtError(hostile, { domain: s.domain })).not.toThrow();
    expect(() => s.provider.reportError(Symbol('x'))).not.toThrow();
    expect(() => s.provider.reportError(undefined)).not.toThrow();
  });
});

describe('feedback', () => {
  it('provider.sendFeedback and sendFeedback({ domain }) send it promptly; a comment with markup and terminal escapes is sent as typed (trimmed)', async () => {
    const s = setup();
    await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
    const answered = eventRequests(stub, 1);
    const comment = '<img src=x onerror=alert(1)><b>slow</b> \u001b[31mred\u001b[0m\u0007 “quotes” 😀';
    expect(s.provider.sendFeedback({ flag: 'fast-payment', sentiment: 'negative', comment: `  ${comment}\n` })).toBe(true);
    expect(sendFeedback({ flag: 'fast-payment', sentiment: 'positive' }, { domain: s.domain })).toBe(true);
    expect(sendFeedback({ flag: 'fast-payment', sentiment: 'neutral', comment: '   ' }, { domain: s.domain })).toBe(true);
    await answered;
    expect(s.sent).toEqual([
      {
        keepalive: undefined,
        body: {
          context: { targetingKey: 'bo' },
          events: [
            { type: 'feedback', flag: 'fast-payment', sentiment: 'negative', comment },
            { type: 'feedback', flag: 'fast-payment', sentiment: 'positive' },
            { type: 'feedback', flag: 'fast-payment', sentiment: 'neutral' },
          ],
        },
      },
    ]);
    expect(stub.received.at(-1)!.body.events[0]!.comment).toBe(comment); // byte for byte on the server side too
  });

  it('invalid input is a TypeError naming the field (with or without a provider); no provider is false, not an error', () => {
    const cases: [unknown, string][] = [
      [undefined, 'sendFeedback: expected { flag, sentiment, comment? }, got undefined'],
      ['fast-payment', 'sendFeedback: expected { flag, sentiment, comment? }, got "fast-payment"'],
      [{ sentiment: 'positive' }, 'sendFeedback: "flag" must be the key of a flag (a non-empty string), got undefined'],
      [{ flag: '', sentiment: 'positive' }, 'sendFeedback: "flag" must be the key of a flag (a non-empty string), got ""'],
      [{ flag: 'fast\u202epayment', sentiment: 'positive' }, 'sendFeedback: "flag" must be a flag key (at most 256 characters, no control characters)'],
      [{ flag: 'x'.repeat(257), sentiment: 'positive' }, 'sendFeedback: "flag" must be a flag key (at most 256 characters'],
      [{ flag: 'fast-payment', sentiment: 'good' }, 'sendFeedback: "sentiment" must be "positive", "neutral" or "negative", got "good"'],
      [{ flag: 'fast-payment' }, 'sendFeedback: "sentiment" must be "positive", "neutral" or "negative", got undefined'],
      [{ flag: 'fast-payment', sentiment: 'negative', comment: 42 }, 'sendFeedback: "comment" must be a string, got number'],
      [{ flag: 'fast-payment', sentiment: 'negative', comment: 'x'.repeat(1001) }, 'sendFeedback: "comment" must be at most 1000 characters, got 1001'],
      [{ flag: 'fast-payment', sentiment: 'negative', comments: 'typo' }, 'sendFeedback: unknown field "comments" (expected flag, sentiment, comment?)'],
    ];
    const provider = new RollgateWebProvider({ baseUrl: stub.baseUrl });
    for (const [input, message] of cases) {
      expect(() => sendFeedback(input as never)).toThrow(TypeError);
      expect(() => sendFeedback(input as never)).toThrow(message);
      expect(() => provider.sendFeedback(input as never)).toThrow(message);
    }
    expect(sendFeedback({ flag: 'fast-payment', sentiment: 'negative', comment: 'x'.repeat(1000) })).toBe(false); // valid; no provider registered
    expect(sendFeedback({ flag: 'fast-payment', sentiment: 'negative', comment: `\ud800${'x'.repeat(10)}` })).toBe(false); // a lone surrogate is replaced, not refused
  });
});

describe('task timing (startTask)', () => {
  it('tracks "<name>.completed" with the elapsed ms (injected monotonic clock) through the OpenFeature client; the real server counts it in the caller’s arm', async () => {
    const s = setup({ tracking: { flushIntervalMs: 20 } }, real);
    await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
    const countedBefore = real.recorder!.armTotals().find((t) => t.flagKey === 'fast-payment' && t.arm === 'targeted:on')?.events.get('checkout.completed') ?? 0;
    const clock = { now: 10_000.25 };
    const task = startTask('checkout', { domain: s.domain, now: () => clock.now });
    clock.now += 4200.4;
    const answered = eventRequests(real, 1);
    expect(task.complete({ currency: 'EUR' })).toBe(4200);
    expect(task.ended).toBe(true);
    expect(task.complete()).toBeUndefined(); // once
    expect((await answered).status).toBe(202);
    expect(s.sent.map((b) => b.body.events)).toEqual([[{ name: 'checkout.completed', value: 4200 }]]);
    expect(real.received.at(-1)!.body.events).toEqual([{ name: 'checkout.completed', value: 4200 }]);
    // bo is served fast-payment "on" by a targeting rule: the server counted it there
    const after = real.recorder!.armTotals().find((t) => t.flagKey === 'fast-payment' && t.arm === 'targeted:on')!.events.get('checkout.completed');
    expect(after).toBe(countedBefore + 1);
  });

  it('abandon() tracks nothing; the default clock is performance.now; invalid names are a TypeError; no provider: complete() still returns the time', async () => {
    const s = setup({ tracking: { flushIntervalMs: 20 } });
    await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
    const abandoned = startTask('checkout', { domain: s.domain });
    abandoned.abandon();
    expect(abandoned.complete()).toBeUndefined();
    const search = startTask('search', { domain: s.domain });
    const t0 = performance.now();
    while (performance.now() - t0 < 5); // a few ms pass
    const answered = eventRequests(stub, 1);
    const elapsed = search.complete()!;
    expect(elapsed).toBeGreaterThanOrEqual(4);
    await answered;
    expect(s.sent.map((b) => b.body.events)).toEqual([[{ name: 'search.completed', value: elapsed }]]);
    for (const bad of ['', ' checkout', 'check out', '.checkout', 'x'.repeat(55), 42]) {
      expect(() => startTask(bad as string)).toThrow(TypeError);
    }
    expect(() => startTask('')).toThrow('startTask: the name must be 1 to 54 letters, digits');
    expect(() => startTask('checkout', { now: 5 as never })).toThrow('startTask: options.now must be a function');
    expect(startTask('checkout', { domain: 'nobody-registered-this', now: () => 0 }).complete()).toBe(0);
  });
});

describe('batching', () => {
  it('every kind goes in the same batch for the same context, in order, with the context; errors and feedback make it go out promptly', async () => {
    const win = fakeWindow();
    try {
      const s = setup({ captureErrors: true });
      await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo', locale: 'fr' });
      const answered = eventRequests(stub, 1);
      s.client.track('checkout.started', { value: 3 });
      s.provider.sendFeedback({ flag: 'fast-payment', sentiment: 'positive' });
      win.throwUncaught(failure('boom', '1:1'));
      await answered;
      expect(s.sent).toEqual([
        {
          keepalive: undefined,
          body: {
            context: { targetingKey: 'bo', locale: 'fr' },
            events: [
              { type: 'pageview' },
              { name: 'checkout.started', value: 3 },
              { type: 'feedback', flag: 'fast-payment', sentiment: 'positive' },
              { type: 'error', fingerprint: expect.stringMatching(FP), message: 'TypeError: boom', source: 'error' },
            ],
          },
        },
      ]);
    } finally {
      win.remove();
    }
  });

  it('a full batch (maxBatchSize) goes at once, whatever the kinds', async () => {
    const s = setup({ pageviews: true, tracking: { flushIntervalMs: 600_000, maxBatchSize: 3 } });
    await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
    const answered = eventRequests(stub, 1);
    s.client.track('a');
    s.client.track('b'); // pageview + 2 = 3
    await answered;
    expect(s.sent.map((b) => b.body.events)).toEqual([[{ type: 'pageview' }, { name: 'a' }, { name: 'b' }]]);
  });

  it('the real server today: tracked events with a value are counted, the new kinds are answered one by one (never a failed batch)', async () => {
    const s = setup({ captureErrors: true, tracking: { flushIntervalMs: 20 } }, real);
    await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
    const answered = eventRequests(real, 1);
    s.client.track('checkout.completed', { value: 1234 });
    s.provider.sendFeedback({ flag: 'fast-payment', sentiment: 'neutral' });
    expect((await answered).status).toBe(202);
    expect(real.received.at(-1)!.body.events).toEqual([{ type: 'pageview' }, { name: 'checkout.completed', value: 1234 }, { type: 'feedback', flag: 'fast-payment', sentiment: 'neutral' }]);
  });
});
