import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import jwt from 'jsonwebtoken';
import { EventSource } from 'eventsource';
import { OpenFeature as ServerOpenFeature } from '@openfeature/server-sdk';
import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
import { MemoryFlagStore, RollgateProvider } from '@rollgate/redis';
import { defineIdentity, ofrep, type OfrepRouter } from '@rollgate/express';

// Interop: the official OFREP web provider (run in Node) against our router gets the caller's
// values and re-emits ConfigurationChanged after a write, through the SSE eventStreams.

const SECRET = 'interop-secret-that-is-32-bytes-ok!';
const flagOn = { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ '==': [{ var: 'tenant' }, 'atlas'] }, 'on', 'off'] }, metadata: { clientVisible: true } };

let server: http.Server;
let router: OfrepRouter;
let store: MemoryFlagStore;

beforeAll(async () => {
  // the official provider opens its stream with the global EventSource (browsers have one; Node 20 does not)
  (globalThis as { EventSource?: unknown }).EventSource = EventSource;
  store = new MemoryFlagStore({ initial: { flags: { 'fast-payment': flagOn, 'server-only': { ...flagOn, metadata: {} } } } });
  const provider = new RollgateProvider({ store });
  await ServerOpenFeature.setProviderAndWait(provider);
  router = ofrep({ provider, identity: defineIdentity({ jwt: { secret: SECRET, algorithms: ['HS256'] } }) });
  server = http.createServer(express().use(router)).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
});

afterAll(async () => {
  await OpenFeature.close();
  router.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await ServerOpenFeature.close();
});

it('@openfeature/ofrep-web-provider reads the caller’s values and hears a change', async () => {
  const token = jwt.sign({ sub: 'bo', tenant: 'atlas' }, SECRET, { algorithm: 'HS256', expiresIn: 300 });
  const { port } = server.address() as AddressInfo;
  const provider = new OFREPWebProvider({ baseUrl: `http://127.0.0.1:${port}`, headers: [['Authorization', `Bearer ${token}`]], cacheMode: 'disabled' });
  await OpenFeature.setContext({ targetingKey: 'someone-else', tenant: 'smallco' }); // ignored: identity comes from the token
  await OpenFeature.setProviderAndWait(provider);
  const client = OpenFeature.getClient();
  expect(client.getBooleanDetails('fast-payment', false)).toMatchObject({ value: true, variant: 'on' });
  expect(client.getBooleanDetails('server-only', false)).toMatchObject({ value: false, errorCode: 'FLAG_NOT_FOUND' });

  // this client does not refetch when its stream opens: write only once it listens
  while (router.openStreams() === 0) await new Promise((r) => setTimeout(r, 10));
  const changed = new Promise<string[] | undefined>((resolve) => client.addHandler(ProviderEvents.ConfigurationChanged, (e) => resolve(e?.flagsChanged)));
  await store.patchFlag('fast-payment', { state: 'DISABLED' }, { actor: 'ops' });
  expect(await changed).toEqual(['fast-payment']);
  expect(client.getBooleanDetails('fast-payment', false)).toMatchObject({ value: false, reason: 'DISABLED' });
});
