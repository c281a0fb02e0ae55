import { OpenFeature, ProviderEvents, ProviderStatus, type Client, type EvaluationContext, type EventDetails } from '@openfeature/web-sdk';
import { RollgateWebProvider, WebConfigError, type RollgateWebProviderOptions } from '@rollgate/web';
import { startOfrepServer, tokenFor, type OfrepTestServer } from './support/ofrep-server';
import { trackingEventSource, type TrackedStreams } from './support/tracking-event-source';

// The provider against a real OFREP server (Express router, RollgateProvider, redis-server):
// real HTTP, real SSE, real ETags. No fetch mocks; waits are on events, not sleeps.

let server: OfrepTestServer;
let domainSeq = 0;

// The SDK logs rejected context changes (two tests cause one on purpose): keep them, quietly.
const sdkErrors: unknown[][] = [];
beforeAll(async () => {
  OpenFeature.setLogger({ error: (...args) => sdkErrors.push(args), warn: () => undefined, info: () => undefined, debug: () => undefined });
  server = await startOfrepServer('provider');
});

afterEach(async () => {
  await OpenFeature.clearProviders();
});

afterAll(async () => {
  await server.close();
});

interface Setup {
  client: Client;
  provider: RollgateWebProvider;
  streams: TrackedStreams;
  domain: string;
  /** The token the headers factory sends next (undefined: no Authorization header). */
  token: { current: string | undefined };
  calls: { url: string; ifNoneMatch: string | null; credentials: RequestCredentials | undefined }[];
}

function setup(options: Partial<RollgateWebProviderOptions> = {}, token: string | null = tokenFor('bo')): Setup {
  const domain = `test-${++domainSeq}`;
  const streams = trackingEventSource();
  const tokenRef = { current: token ?? undefined };
  const calls: Setup['calls'] = [];
  const provider = new RollgateWebProvider({
    baseUrl: server.baseUrl,
    eventSource: streams.EventSource,
    headersFactory: () => ({ Authorization: tokenRef.current && `Bearer ${tokenRef.current}` }),
    reconnectDelayMs: 20,
    maxReconnectDelayMs: 200,
    fetchImplementation: (input, init) => {
      const request = input as Request;
      calls.push({ url: request.url, ifNoneMatch: request.headers.get('If-None-Match'), credentials: init?.credentials });
      return fetch(input, init);
    },
    ...options,
  });
  return { client: OpenFeature.getClient(domain), provider, streams, domain, token: tokenRef, calls };
}

function next(client: Client, event: ProviderEvents): Promise<EventDetails> {
  return new Promise((resolve) => {
    const handler = (details?: EventDetails) => {
      client.removeHandler(event, handler);
      resolve(details ?? ({} as EventDetails));
    };
    client.addHandler(event, handler);
  });
}

/** Writes to Redis and waits until this client heard about it; returns flagsChanged. */
async function flip(client: Client, key: string, patch: Record<string, unknown>, writer = server.writer): Promise<string[] | undefined> {
  const changed = next(client, ProviderEvents.ConfigurationChanged);
  await writer.patchFlag(key, patch as never, { actor: 'test' });
  return (await changed).flagsChanged as string[] | undefined;
}

async function start(s: Setup, context: EvaluationContext = { targetingKey: 'bo' }): Promise<void> {
  const opened = s.streams.nextOpen();
  await OpenFeature.setProviderAndWait(s.domain, s.provider, context);
  await opened;
}

describe('initialize', () => {
  it('loads the verified caller’s values in one bulk request; server-only flags do not exist for the browser', async () => {
    const s = setup();
    await start(s);
    expect(s.client.providerStatus).toBe(ProviderStatus.READY);
    expect(s.client.getBooleanDetails('fast-payment', false)).toMatchObject({ value: true, variant: 'on', reason: 'TARGETING_MATCH' });
    expect(s.client.getStringValue('banner-text', 'x')).toBe('Hello');
    expect(s.client.getBooleanDetails('admin-tools', false)).toMatchObject({ value: false, reason: 'ERROR', errorCode: 'FLAG_NOT_FOUND' });
    expect(s.client.getNumberDetails('banner-text', 1)).toMatchObject({ value: 1, errorCode: 'TYPE_MISMATCH' });
    expect(s.calls[0]).toMatchObject({ url: `${server.baseUrl}/ofrep/v1/evaluate/flags`, ifNoneMatch: null });
  });

  it('ignores identity claims sent in the context: the token decides', async () => {
    const s = setup({}, tokenFor('carol'));
    await start(s, { targetingKey: 'ada', roles: ['admin'], tenant: 'atlas-travel' });
    expect(s.client.getBooleanValue('fast-payment', true)).toBe(false);
  });

  it('fails FATAL on 401 and answers defaults with PROVIDER_FATAL', async () => {
    const s = setup({}, null);
    await expect(OpenFeature.setProviderAndWait(s.domain, s.provider, {})).rejects.toThrow(/401/);
    expect(s.client.providerStatus).toBe(ProviderStatus.FATAL);
    expect(s.client.getBooleanDetails('fast-payment', true)).toMatchObject({ value: true, errorCode: 'PROVIDER_FATAL' });
  });

  it('validates options at construction, naming the option', () => {
    expect(() => new RollgateWebProvider({})).toThrow(WebConfigError);
    expect(() => new RollgateWebProvider({})).toThrow('options.baseUrl is required');
    expect(() => new RollgateWebProvider({ baseUrl: 'not a url' })).toThrow('options.baseUrl must be an absolute URL');
    expect(() => new RollgateWebProvider({ baseUrl: server.baseUrl, pollInterval: -1 })).toThrow('options.pollInterval must be a number >= 0');
    expect(() => new RollgateWebProvider({ baseUrl: server.baseUrl, credentials: 'always' as never })).toThrow('options.credentials must be one of');
    expect(() => new RollgateWebProvider({ baseUrl: server.baseUrl, bootstrap: { a: null as never } })).toThrow('options.bootstrap["a"]');
  });
});

describe('context change', () => {
  it('refetches as the new user: RECONCILING, then ContextChanged with their values; a new identity drops If-None-Match', async () => {
    const s = setup({}, tokenFor('carol'));
    await start(s, { targetingKey: 'carol' });
    expect(s.client.getBooleanValue('fast-payment', true)).toBe(false);

    const reconciling = next(s.client, ProviderEvents.Reconciling);
    const changed = next(s.client, ProviderEvents.ContextChanged);
    s.token.current = tokenFor('bo'); // login as someone else: fresh headers on the next request
    const done = OpenFeature.setContext(s.domain, { targetingKey: 'bo' });
    await reconciling;
    await done;
    await changed;
    expect(s.client.providerStatus).toBe(ProviderStatus.READY);
    expect(s.client.getBooleanValue('fast-payment', false)).toBe(true);
    expect(s.calls.at(-1)!.ifNoneMatch).toBeNull();
  });

  it('answers 304 when nothing changed for the same identity, and emits no ConfigurationChanged', async () => {
    const s = setup();
    await start(s);
    const configurationChanged = jest.fn();
    s.client.addHandler(ProviderEvents.ConfigurationChanged, configurationChanged);
    const before = server.requests.length;
    await OpenFeature.setContext(s.domain, { targetingKey: 'bo', locale: 'fr' });
    const bulk = server.requests.slice(before).filter((r) => r.path === '/ofrep/v1/evaluate/flags');
    expect(bulk.at(-1)).toMatchObject({ status: 304, ifNoneMatch: expect.stringMatching(/^".+"$/) });
    expect(s.client.getBooleanValue('fast-payment', false)).toBe(true);
    expect(configurationChanged).not.toHaveBeenCalled();
  });

  it('after a refused context change, serves defaults (never the previous user’s values) until a request succeeds', async () => {
    const s = setup();
    await start(s);
    expect(s.client.getBooleanValue('fast-payment', false)).toBe(true);
    s.token.current = 'garbage';
    await OpenFeature.setContext(s.domain, { targetingKey: 'ada' });
    expect(s.client.providerStatus).toBe(ProviderStatus.ERROR);
    expect(s.client.getBooleanDetails('fast-payment', false)).toMatchObject({ value: false, reason: 'ERROR', errorCode: 'GENERAL' });
    expect(String(sdkErrors.at(-1)?.[0])).toContain('flags for the current context could not be loaded: the server answered 401 Unauthorized');

    s.token.current = tokenFor('ada');
    await OpenFeature.setContext(s.domain, { targetingKey: 'ada' });
    expect(s.client.providerStatus).toBe(ProviderStatus.READY);
    expect(s.client.getBooleanValue('fast-payment', false)).toBe(true);
  });
});

describe('live updates over SSE', () => {
  it('a write in Redis → refetch → ConfigurationChanged listing only the changed keys', async () => {
    const s = setup();
    await start(s);
    const changed = next(s.client, ProviderEvents.ConfigurationChanged);
    await server.writer.patchFlag('banner-text', { defaultVariant: 'hi' }, { actor: 'test' });
    expect((await changed).flagsChanged).toEqual(['banner-text']);
    expect(s.client.getStringValue('banner-text', 'x')).toBe('Hi');
    expect(s.client.getBooleanValue('fast-payment', false)).toBe(true);
    const refetch = s.calls.at(-1)!;
    expect(refetch.url).toContain('flagConfigEtag=');
    expect(refetch.ifNoneMatch).not.toBeNull();
    await flip(s.client, 'banner-text', { defaultVariant: 'hello' });
  });

  it('reconnects after the server restarts (new ticket secret): Stale, then the change made meanwhile, then Ready', async () => {
    const s = setup();
    await start(s);
    const stale = next(s.client, ProviderEvents.Stale);
    await server.stop();
    await stale;
    expect(s.client.providerStatus).toBe(ProviderStatus.STALE);
    await server.writer.patchFlag('checkout-variant', { defaultVariant: 'fast' }, { actor: 'test' }); // while the server is down

    const changed = next(s.client, ProviderEvents.ConfigurationChanged);
    const ready = next(s.client, ProviderEvents.Ready);
    const reopened = s.streams.nextOpen();
    await server.start(); // the old stream ticket is refused (401): the provider fetches a fresh one
    expect((await changed).flagsChanged).toEqual(['checkout-variant']);
    await ready;
    expect(s.client.providerStatus).toBe(ProviderStatus.READY);
    expect(s.client.getStringValue('checkout-variant', 'x')).toBe('fast');

    await reopened;
    expect(await flip(s.client, 'checkout-variant', { defaultVariant: 'classic' })).toEqual(['checkout-variant']);
  });

  it('after a restart with nothing changed, fetches a fresh stream URL (a 304 carries none) instead of retrying the refused one', async () => {
    const s = setup();
    await start(s);
    const stale = next(s.client, ProviderEvents.Stale);
    await server.stop();
    await stale;
    const ready = next(s.client, ProviderEvents.Ready);
    const reopened = s.streams.nextOpen();
    await server.start();
    await ready;
    await reopened;
    expect(s.streams.created).toHaveLength(2);
    expect(s.streams.created[1]!.url).not.toBe(s.streams.created[0]!.url);
    expect(await flip(s.client, 'banner-text', { defaultVariant: 'hi' })).toEqual(['banner-text']);
    await flip(s.client, 'banner-text', { defaultVariant: 'hello' });
  });

  it('polls instead when asked to (changeDetection: polling)', async () => {
    const s = setup({ changeDetection: 'polling', pollInterval: 100 });
    await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
    expect(s.streams.created).toHaveLength(0);
    const changed = next(s.client, ProviderEvents.ConfigurationChanged);
    await server.writer.patchFlag('banner-text', { defaultVariant: 'hi' }, { actor: 'test' });
    expect((await changed).flagsChanged).toEqual(['banner-text']);
    await flip(s.client, 'banner-text', { defaultVariant: 'hello' });
  });

  it('closes the stream after the page is hidden for inactivityDelaySec, and reopens with an unconditional refetch when shown', async () => {
    const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' as DocumentVisibilityState });
    (globalThis as { document?: unknown }).document = doc;
    try {
      const s = setup({ inactivityDelaySec: 0.05 });
      await start(s);
      const closed = s.streams.nextClose();
      doc.visibilityState = 'hidden';
      doc.dispatchEvent(new Event('visibilitychange'));
      await closed;
      expect(s.streams.created.at(-1)!.readyState).toBe(2);

      const reopened = s.streams.nextOpen();
      const before = s.calls.length;
      doc.visibilityState = 'visible';
      doc.dispatchEvent(new Event('visibilitychange'));
      await reopened;
      expect(s.streams.created).toHaveLength(2);
      expect(s.calls[before]).toMatchObject({ ifNoneMatch: null }); // unconditional: a fresh stream URL
    } finally {
      delete (globalThis as { document?: unknown }).document;
    }
  });
});

describe('stream URL from the response', () => {
  /** fetch that rewrites `eventStreams` in the server's 200 bulk answers; `ticketed` is the server's own stream path with its ticket. */
  function rewritingStreams(rewrite: (ticketed: string) => unknown[]): RollgateWebProviderOptions['fetchImplementation'] {
    return async (input, init) => {
      const response = await fetch(input, init);
      if (response.status !== 200 || !(input as Request).url.includes('/evaluate/flags')) return response;
      const body = (await response.json()) as { eventStreams?: { endpoint: { requestUri: string } }[] };
      const ticketed = body.eventStreams![0]!.endpoint.requestUri;
      return new Response(JSON.stringify({ ...body, eventStreams: rewrite(ticketed) }), { status: 200, headers: response.headers });
    };
  }

  function logger() {
    return { error: jest.fn(), warn: jest.fn(), info: jest.fn(), debug: jest.fn() };
  }

  it('refuses a stream on another origin (no EventSource, one warning naming it, never the ticket) and falls back to polling', async () => {
    const log = logger();
    const otherOrigin = server.baseUrl.replace('127.0.0.1', 'localhost'); // the same server, another origin
    const s = setup({
      credentials: 'include',
      pollInterval: 50,
      logger: log,
      fetchImplementation: rewritingStreams((ticketed) => [{ type: 'sse', url: `${otherOrigin}${ticketed}` }]),
    });
    await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
    expect(s.client.providerStatus).toBe(ProviderStatus.READY);
    expect(await flip(s.client, 'banner-text', { defaultVariant: 'hi' })).toEqual(['banner-text']); // heard by polling
    await flip(s.client, 'banner-text', { defaultVariant: 'hello' });
    expect(s.streams.created).toHaveLength(0);
    expect(log.warn).toHaveBeenCalledTimes(1); // not again on each refetch
    const [message] = log.warn.mock.calls[0] as [string];
    expect(message).toContain(`refused the change stream at ${otherOrigin}:`);
    expect(message).toContain(`only ${server.baseUrl} (the origin of options.baseUrl)`);
    expect(message).not.toMatch(/ticket=|\/events/);
  });

  it.each([
    ['an endpoint.origin', (ticketed: string) => [{ type: 'sse', endpoint: { origin: 'https://evil.example', requestUri: ticketed } }], 'https://evil.example'],
    ['an absolute requestUri', (ticketed: string) => [{ type: 'sse', endpoint: { requestUri: `https://evil.example${ticketed}` } }], 'https://evil.example'],
    ['a protocol-relative url', (ticketed: string) => [{ type: 'sse', url: `//evil.example${ticketed}` }], 'http://evil.example'],
  ])('refuses another origin given as %s', async (_, rewrite, where) => {
    const log = logger();
    const s = setup({ logger: log, fetchImplementation: rewritingStreams(rewrite) });
    await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
    expect(s.streams.created).toHaveLength(0);
    expect(log.warn).toHaveBeenCalledWith(expect.stringContaining(`refused the change stream at ${where}:`));
  });

  it.each([
    ['javascript:', () => [{ type: 'sse', url: 'javascript:alert(document.cookie)' }]],
    ['data:', () => [{ type: 'sse', endpoint: { requestUri: 'data:text/event-stream,data: {"type":"refetchEvaluation"}' } }]],
    ['blob:', () => [{ type: 'sse', url: `blob:${server.baseUrl}/0b6c1a52` }]], // its origin is baseUrl's: only the scheme check refuses it
    ['ws:', (ticketed: string) => [{ type: 'sse', url: `${server.baseUrl.replace('http:', 'ws:')}${ticketed}` }]],
  ])('refuses a %s stream URL', async (scheme, rewrite) => {
    const log = logger();
    const s = setup({ logger: log, fetchImplementation: rewritingStreams(rewrite) });
    await OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'bo' });
    expect(s.client.providerStatus).toBe(ProviderStatus.READY);
    expect(s.streams.created).toHaveLength(0);
    expect(log.warn).toHaveBeenCalledTimes(1);
    const [message] = log.warn.mock.calls[0] as [string];
    expect(message).toContain(`refused the change stream at ${scheme}`);
    expect(message).not.toMatch(/alert|event-stream|0b6c1a52|ticket=/);
  });

  it.each([
    ['a relative requestUri', (ticketed: string) => [{ type: 'sse', endpoint: { requestUri: ticketed } }]],
    ['a relative requestUri with endpoint.origin = baseUrl’s', (ticketed: string) => [{ type: 'sse', endpoint: { origin: server.baseUrl, requestUri: ticketed } }]],
    ['an absolute url on baseUrl’s origin', (ticketed: string) => [{ type: 'sse', url: `${server.baseUrl}${ticketed}` }]],
  ])('opens a same-origin stream given as %s', async (_, rewrite) => {
    const log = logger();
    const s = setup({ credentials: 'include', logger: log, fetchImplementation: rewritingStreams(rewrite) });
    await start(s);
    expect(s.streams.created).toHaveLength(1);
    expect(s.streams.created[0]!.url).toMatch(new RegExp(`^${server.baseUrl}/ofrep/v1/events\\?ticket=`));
    expect(s.streams.created[0]!.withCredentials).toBe(true);
    expect(log.warn).not.toHaveBeenCalled();
    expect(await flip(s.client, 'banner-text', { defaultVariant: 'hi' })).toEqual(['banner-text']);
    await flip(s.client, 'banner-text', { defaultVariant: 'hello' });
  });
});

describe('with a shared ticket secret (several instances behind a load balancer)', () => {
  let shared: OfrepTestServer;
  beforeAll(async () => {
    shared = await startOfrepServer('shared', { ticketSecret: 'a-ticket-secret-shared-by-instances-32b' });
  });
  afterAll(async () => {
    await OpenFeature.clearProviders();
    await shared.close();
  });

  it('the EventSource reconnects by itself, and the provider catches up on what it missed', async () => {
    const s = setup({ baseUrl: shared.baseUrl });
    await start(s);
    const stale = next(s.client, ProviderEvents.Stale);
    await shared.stop();
    await stale;
    await shared.writer.patchFlag('banner-text', { defaultVariant: 'hi' }, { actor: 'test' });
    const changed = next(s.client, ProviderEvents.ConfigurationChanged);
    const ready = next(s.client, ProviderEvents.Ready);
    await shared.start();
    expect((await changed).flagsChanged).toEqual(['banner-text']);
    await ready;
    expect(s.streams.created).toHaveLength(1); // the same EventSource, reconnected with its ticket
    await flip(s.client, 'banner-text', { defaultVariant: 'hello' }, shared.writer);
  });
});

describe('bootstrap, auth options', () => {
  it('is READY at once with bootstrap values (reason CACHED), then ConfigurationChanged with the server’s', async () => {
    const s = setup({ bootstrap: { 'fast-payment': true, 'banner-text': 'Hello' } }, tokenFor('carol'));
    const changed = next(s.client, ProviderEvents.ConfigurationChanged);
    const pending = OpenFeature.setProviderAndWait(s.domain, s.provider, { targetingKey: 'carol' });
    await pending;
    expect(s.client.providerStatus).toBe(ProviderStatus.READY);
    expect(s.client.getBooleanDetails('fast-payment', false)).toMatchObject({ value: true, reason: 'CACHED' });
    expect((await changed).flagsChanged).toEqual(expect.arrayContaining(['fast-payment', 'banner-text', 'checkout-variant']));
    expect(s.client.getBooleanDetails('fast-payment', true)).toMatchObject({ value: false, reason: 'TARGETING_MATCH' });
  });

  it('a 401 after bootstrap turns the provider FATAL', async () => {
    const s = setup({ bootstrap: { 'fast-payment': true } }, null);
    const error = next(s.client, ProviderEvents.Error);
    await OpenFeature.setProviderAndWait(s.domain, s.provider, {});
    await error;
    expect(s.client.providerStatus).toBe(ProviderStatus.FATAL);
  });

  it('asks the headers factory before every request and passes credentials to fetch', async () => {
    let asked = 0;
    const s = setup();
    const provider = new RollgateWebProvider({
      baseUrl: server.baseUrl,
      changeDetection: 'none',
      eventSource: s.streams.EventSource,
      credentials: 'include',
      headersFactory: async () => {
        asked++;
        return [['Authorization', `Bearer ${tokenFor('bo')}`]];
      },
      fetchImplementation: (input, init) => {
        s.calls.push({ url: (input as Request).url, ifNoneMatch: null, credentials: init?.credentials });
        return fetch(input, init);
      },
    });
    await OpenFeature.setProviderAndWait(s.domain, provider, { targetingKey: 'bo' });
    await OpenFeature.setContext(s.domain, { targetingKey: 'bo', locale: 'de' });
    expect(asked).toBe(s.calls.length);
    expect(asked).toBeGreaterThanOrEqual(2);
    expect(s.calls.every((c) => c.credentials === 'include')).toBe(true);
  });
});
