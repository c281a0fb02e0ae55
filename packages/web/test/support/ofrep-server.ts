import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import jwt from 'jsonwebtoken';
import { RedisFlagStore, RollgateProvider } from '@rollgate/redis';
import { defineIdentity, ofrep, type OfrepRouter } from '@rollgate/express';
import { OutcomeRecorder } from '@rollgate/rollouts';
import type { TrackingOptions } from '@rollgate/server';
import { startRedis, type TestRedis } from '../../../redis/test/support/redis-server';

// A real OFREP server for the provider tests: redis-server + RollgateProvider + the Express
// router, on an ephemeral port. `restart()` replaces the HTTP server and router as a new process
// would (a new random SSE ticket secret), on the same port.
// `events: 'record'` keeps every body POSTed to the events endpoint and then lets the real intake
// judge it; `events: 'stub'` keeps it and answers 202 itself (event kinds the server does not
// accept yet: wire-format tests). `staticDir` serves a built page on the same origin.

const EVENTS_PATH = '/rollgate/v1/events';

export const SECRET = 'web-test-secret-that-is-32-bytes-long!';

export const flagSet = {
  $evaluators: { 'vip-agencies': { in: [{ var: 'tenant' }, ['atlas-travel', 'nordic-trips']] } },
  flags: {
    'fast-payment': {
      state: 'ENABLED',
      variants: { on: true, off: false },
      defaultVariant: 'off',
      targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { $ref: 'vip-agencies' }, 'on', 'off'] },
      metadata: { clientVisible: true },
    },
    'checkout-variant': {
      state: 'ENABLED',
      variants: { classic: 'classic', fast: 'fast' },
      defaultVariant: 'classic',
      metadata: { clientVisible: true },
    },
    'banner-text': { state: 'ENABLED', variants: { hello: 'Hello', hi: 'Hi' }, defaultVariant: 'hello', metadata: { clientVisible: true } },
    'admin-tools': { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' }, // server-only
  },
} as const;

export const users = {
  ada: { roles: ['admin'], tenant: 'internal' },
  bo: { roles: ['agent'], tenant: 'atlas-travel' },
  carol: { roles: ['customer'], tenant: 'smallco' },
} as const;

export function tokenFor(user: keyof typeof users, expiresIn = 300): string {
  return jwt.sign({ sub: user, ...users[user] }, SECRET, { algorithm: 'HS256', expiresIn });
}

type SeenRequest = { method: string; path: string; ifNoneMatch: string | undefined; status: number };

/** A request body the events endpoint received, as parsed JSON, with the caller's Authorization. */
export interface ReceivedEvents {
  authorization: string | undefined;
  body: { events: Record<string, unknown>[]; context?: Record<string, unknown> };
}

export interface OfrepTestServer {
  readonly baseUrl: string;
  readonly writer: RedisFlagStore;
  /** Requests the server saw: method, path (no query), If-None-Match, status. */
  readonly requests: SeenRequest[];
  /** Resolves with the first request (already seen or to come) at `index` or later that matches. */
  request(matches: (r: SeenRequest) => boolean, index?: number): Promise<SeenRequest>;
  /** With `tracking`: the OutcomeRecorder the events endpoint counts into (real, over the server's Redis). */
  readonly recorder: OutcomeRecorder | undefined;
  /** With `events`: every body received at the events endpoint, oldest first. */
  readonly received: ReceivedEvents[];
  /** Resolves once the received events (all bodies together) hold one matching `matches`. */
  receivedEvent(matches: (event: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
  /** Stops the HTTP server (dropping every connection); `start()` brings a new one up on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface OfrepTestServerOptions {
  ticketSecret?: string;
  tracking?: TrackingOptions;
  events?: 'record' | 'stub';
  staticDir?: string;
}

export async function startOfrepServer(name: string, options: OfrepTestServerOptions = {}): Promise<OfrepTestServer> {
  const { tracking, events: eventsMode, staticDir, ...streamOptions } = options;
  const redis: TestRedis = await startRedis();
  const env = `web-${name}-${process.pid}`;
  const writer = new RedisFlagStore({ redis: redis.url, env });
  await writer.apply(
    [
      { kind: 'evaluator', key: 'vip-agencies', definition: flagSet.$evaluators['vip-agencies'] },
      ...Object.entries(flagSet.flags).map(([key, definition]) => ({ kind: 'flag' as const, key, definition: structuredClone(definition) as never })),
    ],
    { actor: 'test' },
  );
  const provider = new RollgateProvider({ store: { redis: redis.url, env } });
  await provider.initialize();

  const recorder = tracking ? new OutcomeRecorder({ store: writer, flushIntervalMs: 2 ** 31 - 1 }) : undefined;
  const requests: OfrepTestServer['requests'] = [];
  const waiting = new Set<() => void>();
  const request = (matches: (r: SeenRequest) => boolean, index = 0) =>
    new Promise<SeenRequest>((resolve) => {
      const check = () => {
        const found = requests.slice(index).find(matches);
        if (!found) return;
        waiting.delete(check);
        resolve(found);
      };
      waiting.add(check);
      check();
    });
  const received: ReceivedEvents[] = [];
  const receivedWaiting = new Set<() => void>();
  const receivedEvent = (matches: (event: Record<string, unknown>) => boolean) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const check = () => {
        const found = received.flatMap((r) => (Array.isArray(r.body?.events) ? r.body.events : [])).find(matches);
        if (!found) return;
        receivedWaiting.delete(check);
        resolve(found);
      };
      receivedWaiting.add(check);
      check();
    });
  let server: http.Server | undefined;
  let router: OfrepRouter | undefined;
  let port = 0;

  const start = async () => {
    router = ofrep({
      provider,
      identity: defineIdentity({ jwt: { secret: SECRET, algorithms: ['HS256'] } }),
      clientAttributes: ['locale'],
      stream: { retryMs: 100, heartbeatMs: 60_000, ...streamOptions },
      ...(tracking ? { tracking, outcomes: { sink: recorder! } } : {}),
    });
    const app = express();
    app.use((req, res, next) => {
      res.on('finish', () => {
        requests.push({ method: req.method, path: req.path, ifNoneMatch: req.headers['if-none-match'], status: res.statusCode });
        for (const check of [...waiting]) check();
      });
      next();
    });
    if (eventsMode) {
      // read here once: the router's body parser skips a body that was already read
      app.post(EVENTS_PATH, express.json({ limit: '64kb', type: () => true }), (req, res, next) => {
        received.push({ authorization: req.headers.authorization, body: structuredClone(req.body) as ReceivedEvents['body'] });
        for (const check of [...receivedWaiting]) check();
        if (eventsMode === 'record') return next();
        const events = Array.isArray(req.body?.events) ? (req.body.events as unknown[]) : [];
        res.status(202).json({ accepted: events.length, refused: 0, results: events.map(() => ({ status: 'accepted' })) });
      });
    }
    app.use(router);
    if (staticDir) app.use(express.static(staticDir));
    const s = http.createServer(app);
    s.listen(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      s.once('listening', resolve);
      s.once('error', reject);
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  };

  const stop = async () => {
    const s = server;
    server = undefined;
    router?.close();
    if (!s) return;
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  };

  await start();
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    writer,
    requests,
    request,
    recorder,
    received,
    receivedEvent,
    start,
    stop,
    close: async () => {
      await stop();
      await recorder?.close();
      await provider.onClose();
      await writer.close();
      await redis.stop();
    },
  };
}
