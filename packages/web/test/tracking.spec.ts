import { OpenFeature, type Client, type EvaluationContext, type Logger } from '@openfeature/web-sdk';
import { RollgateWebProvider, WebConfigError, type RollgateWebProviderOptions } from '@rollgate/web';
import { startOfrepServer, tokenFor, type OfrepTestServer } from './support/ofrep-server';

// The provider's track() against a real server (Express ofrep() router with tracking, a real
// OutcomeRecorder over a throwaway redis-server): batching, flushing when the page is hidden,
// one batch per user, and what the server refuses dropped with one warning. No sleeps: every wait
// is on a request the server finished.

const EVENTS = '/rollgate/v1/events';
let server: OfrepTestServer;
let untracked: OfrepTestServer;
let domainSeq = 0;

beforeAll(async () => {
  OpenFeature.setLogger({ error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined });
  [server, untracked] = await Promise.all([startOfrepServer('tracking', { tracking: { trackedEvents: ['checkout.completed', 'search.done'] } }), startOfrepServer('untracked')]);
});

afterEach(async () => {
  await OpenFeature.clearProviders();
});

afterAll(async () => {
  await server?.close();
  await untracked?.close();
});

interface Sent {
  url: string;
  keepalive: boolean | undefined;
  authorization: string | null;
  body: { events: { name: string; value?: number }[]; context: EvaluationContext };
}

/** A logger that keeps its warnings; `warned(n)` resolves once it holds n of them (the provider has handled an answer). */
function logger(): Logger & { warnings: string[]; warned(n: number): Promise<void> } {
  const warnings: string[] = [];
  const waiting = new Set<() => void>();
  return {
    warnings,
    warn: (m: string) => {
      warnings.push(m);
      for (const check of [...waiting]) check();
    },
    warned: (n) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (warnings.length < n) return;
          waiting.delete(check);
          resolve();
        };
        waiting.add(check);
        check();
      }),
    error: () => undefined,
    info: () => undefined,
    debug: () => undefined,
  };
}

function setup(options: Partial<RollgateWebProviderOptions> = {}, on = server) {
  const domain = `tracking-${++domainSeq}`;
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
      if (url.endsWith(EVENTS)) {
        sent.push({ url, keepalive: init?.keepalive, authorization: new Headers(init?.headers).get('Authorization'), body: JSON.parse(String(init?.body)) as Sent['body'] });
      }
      return fetch(input, init);
    },
    ...options,
  });
  return { domain, provider, client: OpenFeature.getClient(domain) as Client, token, sent, log };
}

/** Resolves when the server has answered `n` more event requests than it had before this call. */
function eventRequests(on: OfrepTestServer, n: number) {
  const from = on.requests.length;
  let seen = 0;
  return on.request((r) => r.path === EVENTS && ++seen === n, from);
}

/** Events counted so far per `flag` arm, from the real recorder. */
function counted(flag: string): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const t of server.recorder!.armTotals()) if (t.flagKey === flag) out[t.arm] = Object.fromEntries(t.events);
  return out;
}

function fakeDocument() {
  const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' as DocumentVisibilityState });
  (globalThis as { document?: unknown }).document = doc;
  return {
    hide() {
      doc.visibilityState = 'hidden';
      doc.dispatchEvent(new Event('visibilitychange'));
    },
    remove: () => delete (globalThis as { document?: unknown }).document,
  };
}

it('coalesces events within flushIntervalMs into one request, which the server counts in the arm IT evaluated for the caller', async () => {
  const s = setup({ tracking: { flushIntervalMs: 50 } });
  await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo', locale: 'fr' });
  const before = counted('fast-payment')['targeted:on'] ?? {};
  const answered = eventRequests(server, 1);
  s.client.track('checkout.completed', { value: 99.5, currency: 'EUR' });
  s.client.track('search.done');
  s.client.track('checkout.completed');
  expect((await answered).status).toBe(202);
  expect(s.sent).toEqual([
    {
      url: `${server.baseUrl}${EVENTS}`,
      keepalive: undefined,
      authorization: `Bearer ${s.token.current}`, // the headersFactory's, as for the OFREP requests
      body: { events: [{ name: 'checkout.completed', value: 99.5 }, { name: 'search.done' }, { name: 'checkout.completed' }], context: { targetingKey: 'bo', locale: 'fr' } },
    },
  ]);
  // bo is an agent of a VIP agency: a targeting rule serves them fast-payment "on"
  expect(counted('fast-payment')['targeted:on']).toEqual({ 'checkout.completed': (before['checkout.completed'] ?? 0) + 2, 'search.done': (before['search.done'] ?? 0) + 1 });
});

it('sends a full batch at once (maxBatchSize), and the rest with keepalive when the page is hidden', async () => {
  const doc = fakeDocument();
  try {
    const s = setup({ tracking: { flushIntervalMs: 600_000, maxBatchSize: 20 } });
    await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
    const first = eventRequests(server, 1);
    for (let i = 0; i < 25; i++) s.client.track('search.done', { value: i });
    expect((await first).status).toBe(202);
    expect(s.sent.map((b) => [b.body.events.length, b.keepalive])).toEqual([[20, undefined]]);

    const second = eventRequests(server, 1);
    doc.hide();
    expect((await second).status).toBe(202);
    expect(s.sent.map((b) => [b.body.events.length, b.keepalive])).toEqual([
      [20, undefined],
      [5, true],
    ]);
    expect(s.sent[1]!.body.events.map((e) => e.value)).toEqual([20, 21, 22, 23, 24]);
  } finally {
    doc.remove();
  }
});

it('keeps each user’s events in their own batch, sent with that user’s token: a login switch never moves events to the next user', async () => {
  const s = setup({ tracking: { flushIntervalMs: 600_000 } });
  await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
  const before = { bo: counted('fast-payment')['targeted:on']?.['checkout.completed'] ?? 0, carol: counted('fast-payment')['targeted:off']?.['checkout.completed'] ?? 0 };
  const boToken = s.token.current;
  const boSent = eventRequests(server, 1);
  s.client.track('checkout.completed');
  s.token.current = tokenFor('carol');
  await OpenFeature.setContext(s.domain, { targetingKey: 'carol' });
  s.client.track('checkout.completed');
  await boSent; // the context change closed bo's batch
  const carolSent = eventRequests(server, 1);
  await s.provider.onClose(); // sends what is pending
  await carolSent;
  expect(s.sent.map((b) => [b.body.context.targetingKey, b.authorization])).toEqual([
    ['bo', `Bearer ${boToken}`],
    ['carol', `Bearer ${s.token.current}`],
  ]);
  expect(counted('fast-payment')['targeted:on']!['checkout.completed']).toBe(before.bo + 1);
  expect(counted('fast-payment')['targeted:off']!['checkout.completed']).toBe(before.carol + 1);
});

it('drops what the server refuses with one warning per reason, and never throws into the app', async () => {
  const s = setup({ tracking: { flushIntervalMs: 20 } });
  await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
  for (let round = 0; round < 2; round++) {
    const answered = eventRequests(server, 1);
    s.client.track('admin.deleted');
    s.client.track('search.done', { value: Number.NaN }); // not a number: sent without a value
    await answered;
    await s.log.warned(1);
  }
  expect(s.sent.map((b) => b.body.events)).toEqual([
    [{ name: 'admin.deleted' }, { name: 'search.done' }],
    [{ name: 'admin.deleted' }, { name: 'search.done' }],
  ]);
  expect(s.log.warnings).toEqual(['@rollgate/web: the server refused an event (unknown_event: "admin.deleted" is not an event this server accepts); such events are dropped']);
  expect(counted('fast-payment')['targeted:on']!['admin.deleted']).toBeUndefined();

  // a token the server refuses: one warning, nothing thrown, nothing counted
  s.token.current = 'not-a-token';
  for (let round = 0; round < 2; round++) {
    const answered = eventRequests(server, 1);
    expect(() => s.client.track('search.done')).not.toThrow();
    expect((await answered).status).toBe(401);
    await s.log.warned(2);
  }
  expect(s.log.warnings.slice(1)).toEqual(['@rollgate/web: the server refused 1 event(s) with HTTP 401: unauthorized; dropped']);
  expect(() => s.provider.track('', {}, {})).not.toThrow();
  expect(() => s.provider.track(undefined as never, undefined as never, undefined as never)).not.toThrow();
});

it('a server without tracking (404): one warning, then track() sends nothing more', async () => {
  const s = setup({ tracking: { flushIntervalMs: 20 } }, untracked);
  await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
  const answered = eventRequests(untracked, 1);
  s.client.track('checkout.completed');
  expect((await answered).status).toBe(404);
  await s.log.warned(1); // the provider has read the answer
  s.client.track('checkout.completed');
  const flag = untracked.requests.length;
  await s.provider.onClose();
  expect(untracked.requests.length).toBe(flag);
  expect(s.sent).toHaveLength(1);
  expect(s.log.warnings).toEqual([
    `@rollgate/web: the server does not accept events at ${untracked.baseUrl}${EVENTS} (404: this server does not accept browser events): enable \`tracking\` on its ofrep() router or Nest OFREP controller; track() is off for this provider`,
  ]);
});

it('uses sendBeacon when the page is hidden and the request needs no headers (cookies, same origin)', async () => {
  const beacons: { url: string; body: string; type: string }[] = [];
  const pending: Promise<void>[] = [];
  const globals = globalThis as { navigator?: unknown; location?: unknown };
  const saved = { navigator: Object.getOwnPropertyDescriptor(globalThis, 'navigator'), location: Object.getOwnPropertyDescriptor(globalThis, 'location') };
  Object.defineProperty(globalThis, 'navigator', {
    configurable: true,
    value: { sendBeacon: (url: string, data: Blob) => (pending.push(data.text().then((body) => void beacons.push({ url, body, type: data.type }))), true) },
  });
  Object.defineProperty(globalThis, 'location', { configurable: true, value: { origin: server.baseUrl } });
  const doc = fakeDocument();
  try {
    const provider = new RollgateWebProvider({ baseUrl: server.baseUrl, changeDetection: 'none', tracking: { flushIntervalMs: 600_000 } });
    provider.track('checkout.completed', { targetingKey: 'bo' }, { value: 1 });
    doc.hide();
    await Promise.all(pending);
    expect(beacons).toEqual([{ url: `${server.baseUrl}${EVENTS}`, type: 'application/json', body: JSON.stringify({ events: [{ name: 'checkout.completed', value: 1 }], context: { targetingKey: 'bo' } }) }]);
    await provider.onClose();
  } finally {
    doc.remove();
    for (const [name, descriptor] of Object.entries(saved)) {
      if (descriptor) Object.defineProperty(globalThis, name, descriptor);
      else delete globals[name as 'navigator' | 'location'];
    }
  }
});

it('tracking: false makes track() a no-op; bad tracking options are refused at construction, naming the option', async () => {
  const s = setup({ tracking: false });
  await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
  s.client.track('checkout.completed');
  await s.provider.onClose();
  expect(s.sent).toEqual([]);
  expect(() => new RollgateWebProvider({ baseUrl: server.baseUrl, tracking: { maxBatchSize: 0 } })).toThrow(WebConfigError);
  expect(() => new RollgateWebProvider({ baseUrl: server.baseUrl, tracking: { maxBatchSize: 0 } })).toThrow('options.tracking.maxBatchSize must be an integer from 1 to 1000');
  expect(() => new RollgateWebProvider({ baseUrl: server.baseUrl, tracking: { path: 'events' } })).toThrow('options.tracking.path must be a path under baseUrl');
  expect(() => new RollgateWebProvider({ baseUrl: server.baseUrl, tracking: { flushIntervalMs: -1 } })).toThrow('options.tracking.flushIntervalMs must be a number >= 0');
});
