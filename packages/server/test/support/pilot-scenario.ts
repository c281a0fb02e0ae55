import http from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import { ProviderEvents } from '@openfeature/server-sdk';
import type { RollgateProvider } from '@rollgate/redis';
import { RedisFlagStore } from '@rollgate/redis';

// The pilot scenario the Express and Nest adapter tests share: flags, users, tokens, seeding,
// provider events and reading an SSE stream over real HTTP.

export const SECRET = 'test-secret-that-is-long-enough-32b!';
export const ISSUER = 'https://idp.test/';
export const AUDIENCE = 'booking-api';
export const jwtOptions = { secret: SECRET, algorithms: ['HS256' as const], issuer: ISSUER, audience: AUDIENCE };

export const flags = {
  'fast-payment': {
    state: 'ENABLED',
    variants: { on: true, off: false },
    defaultVariant: 'off',
    targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { $ref: 'vip-agencies' }, 'on', 'off'] },
    metadata: { clientVisible: true, owner: 'payments' },
  },
  'checkout-variant': {
    state: 'ENABLED',
    variants: { classic: 'classic', fast: 'fast' },
    defaultVariant: 'classic',
    targeting: { if: [{ '==': [{ var: 'tenant' }, 'atlas'] }, 'fast', null] },
    metadata: { clientVisible: true },
  },
  'admin-tools': { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', 'off'] } },
  'max-seats': { state: 'ENABLED', variants: { few: 2, many: 9 }, defaultVariant: 'few', targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'many', null] } },
};
export const evaluators = { 'vip-agencies': { in: [{ var: 'tenant' }, ['atlas', 'nordic']] } };

export function token(claims: Record<string, unknown>, options: jwt.SignOptions = {}): string {
  return jwt.sign(claims, SECRET, { algorithm: 'HS256', issuer: ISSUER, audience: AUDIENCE, expiresIn: 300, ...options });
}
export const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

export const users = {
  admin: { sub: 'ada', roles: ['admin'], tenant: 'internal' },
  vipAgent: { sub: 'bo', roles: ['agent'], tenant: 'atlas' },
  customer: { sub: 'cy', roles: ['customer'], tenant: 'smallco' },
};
export const admin = token(users.admin);
export const vipAgent = token(users.vipAgent);
export const customer = token(users.customer);

/** Writes the flag set into a fresh environment and returns the writer (close it in afterAll). */
export async function seed(redisUrl: string, env: string): Promise<RedisFlagStore> {
  const writer = new RedisFlagStore({ redis: redisUrl, env });
  await writer.apply(
    [
      { kind: 'evaluator', key: 'vip-agencies', definition: evaluators['vip-agencies'] },
      ...Object.entries(flags).map(([key, definition]) => ({ kind: 'flag' as const, key, definition })),
    ],
    { actor: 'test' },
  );
  return writer;
}

/** Resolves on the provider's next event of this kind. */
export function nextEvent(provider: RollgateProvider, event: ProviderEvents.ConfigurationChanged | ProviderEvents.Ready | ProviderEvents.Stale): Promise<void> {
  return new Promise((resolve) => {
    const handler = () => {
      provider.events.removeHandler(event, handler);
      resolve();
    };
    provider.events.addHandler(event, handler);
  });
}

/** Resolves once `ready()` holds, checked now and after each Ready / ConfigurationChanged of the provider. */
export function until(provider: RollgateProvider, ready: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (!ready()) return;
      provider.events.removeHandler(ProviderEvents.Ready, check);
      provider.events.removeHandler(ProviderEvents.ConfigurationChanged, check);
      resolve();
    };
    provider.events.addHandler(ProviderEvents.Ready, check);
    provider.events.addHandler(ProviderEvents.ConfigurationChanged, check);
    check();
  });
}

/** A logger that keeps what it is told, for assertions and a quiet test run. */
export function recordingLogger(): { warn(m: string): void; debug(m: string): void; lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (m) => lines.push(`warn ${m}`), debug: (m) => lines.push(`debug ${m}`) };
}

/** An SSE response being read: status, headers, what has arrived so far, and its end. */
export interface OpenStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  text(): string;
  /** Resolves once the text received so far matches (checked on every chunk); rejects if the stream ends first. */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
  /** Resolves when the connection closes (either side). */
  ended: Promise<void>;
  destroy(): void;
}

/** GETs an SSE endpoint on a listening server (with these request headers, e.g. Last-Event-ID) and resolves once the response headers arrive. */
export function openStream(port: number, path: string, headers: http.OutgoingHttpHeaders = {}): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const req = http.get({ port, host: '127.0.0.1', path, headers }, (res) => {
      let text = '';
      let closed = false;
      const waiting = new Set<() => void>();
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        for (const check of [...waiting]) check();
      });
      const ended = new Promise<void>((done) =>
        res.on('close', () => {
          closed = true;
          for (const check of [...waiting]) check();
          done();
        }),
      );
      const waitFor = (pattern: RegExp) =>
        new Promise<RegExpExecArray>((found, fail) => {
          const check = () => {
            const match = pattern.exec(text);
            if (match || closed) waiting.delete(check);
            if (match) found(match);
            else if (closed) fail(new Error(`the stream ended without ${String(pattern)}; it sent: ${JSON.stringify(text)}`));
          };
          waiting.add(check);
          check();
        });
      resolve({ status: res.statusCode!, headers: res.headers, text: () => text, waitFor, ended, destroy: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

/** Polls `ready()` every 10 ms; rejects after `timeoutMs`, a bound on a hang (generous: a loaded machine is slow, not stuck). */
export async function eventually(ready: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Opens the stream at `path`, runs `write` once the server says it is connected, and resolves to
 * the data of the first message that follows (a refetchEvaluation, when the write changed flags).
 */
export async function firstMessageAfter(port: number, path: string, write: () => Promise<unknown>): Promise<{ status: number; contentType: string | undefined; data: unknown }> {
  const stream = await openStream(port, path);
  try {
    await eventually(() => stream.text().includes(': connected'));
    await write();
    let match: RegExpExecArray | null = null;
    await eventually(() => (match = /event: message\ndata: (.+)\n\n/.exec(stream.text())) !== null, 5000);
    return { status: stream.status, contentType: stream.headers['content-type'], data: JSON.parse(match![1]!) };
  } finally {
    stream.destroy();
  }
}

/** A listening HTTP server on an ephemeral loopback port, for tests that need real sockets (SSE). */
export interface Served {
  server: http.Server;
  port: number;
  /** Ends open connections (streams included) and stops listening. */
  close(): Promise<void>;
}

export async function serve(handler: http.RequestListener): Promise<Served> {
  const server = http.createServer(handler).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
