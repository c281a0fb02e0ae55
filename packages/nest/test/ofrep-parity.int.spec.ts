import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import express from 'express';
import request from 'supertest';
import { RollgateProvider, type RedisFlagStore } from '@rollgate/redis';
import { defineIdentity, ofrep, type OfrepRouter } from '@rollgate/express';
import { RollgateModule } from '@rollgate/nest';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { checkOfrepAnswer } from '../../server/test/support/ofrep-schema';
import { admin, bearer, customer, jwtOptions, recordingLogger, seed } from '../../server/test/support/pilot-scenario';

// The Nest OFREP controller and the Express ofrep() router give the SAME answer — status, body
// bytes and the headers a client or a cache acts on — to the same refused or failed requests
// (both send what one function of @rollgate/server produces), and every answer the OFREP
// document describes matches its schema.

const env = `nest-ofrep-parity-${process.pid}`;
const ofrepOptions = { cors: { origins: ['https://app.test'] }, clientAttributes: ['locale'], stream: { ticketSecret: 'parity-ticket-secret-of-32-bytes!!' } };
/** What a client, a browser (CORS) or a cache acts on; Date, Connection, X-Powered-By... are the app's. */
const HEADERS = ['content-type', 'content-length', 'cache-control', 'vary', 'www-authenticate', 'retry-after', 'etag', 'access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers'];

let redis: TestRedis;
let writer: RedisFlagStore;
let provider: RollgateProvider;
let router: OfrepRouter;
let expressApp: express.Express;
let nestApp: INestApplication;

beforeAll(async () => {
  redis = await startRedis();
  writer = await seed(redis.url, env);
  provider = new RollgateProvider({ store: { redis: redis.url, env } });
  await provider.initialize();
  router = ofrep({ provider, identity: defineIdentity({ jwt: jwtOptions }), ...ofrepOptions });
  expressApp = express().use(router);
  const moduleRef = await Test.createTestingModule({
    imports: [RollgateModule.forRoot({ store: { redis: redis.url, env }, jwt: jwtOptions, ofrep: ofrepOptions, logger: recordingLogger() })],
  }).compile();
  nestApp = moduleRef.createNestApplication({ logger: false });
  await nestApp.init();
});

afterAll(async () => {
  await nestApp?.close();
  router?.close();
  await provider?.onClose();
  await writer?.close();
  await redis?.stop();
});

interface Case {
  name: string;
  method?: 'post' | 'get';
  path: string;
  headers?: Record<string, string>;
  /** JSON text sent as is (with headers' Content-Type, default application/json); undefined: no body. */
  body?: string;
}

const auth = bearer(customer);
const deep = `{"context":{"deep":${'['.repeat(8000)}${']'.repeat(8000)}}}`;
const cases: Case[] = [
  { name: 'bulk, no token', path: '/ofrep/v1/evaluate/flags', body: '{}' },
  { name: 'bulk, a bad token', path: '/ofrep/v1/evaluate/flags', headers: { Authorization: 'Bearer nope' }, body: '{}' },
  { name: 'bulk, no token, from an allowed origin', path: '/ofrep/v1/evaluate/flags', headers: { Origin: 'https://app.test' }, body: '{}' },
  { name: 'single, no token', path: '/ofrep/v1/evaluate/flags/fast-payment', body: '{}' },
  { name: 'single, a token signed with another key', path: '/ofrep/v1/evaluate/flags/fast-payment', headers: { Authorization: `Bearer ${admin.slice(0, -4)}AAAA` }, body: '{}' },
  { name: 'bulk, body not JSON', path: '/ofrep/v1/evaluate/flags', headers: auth, body: '{"context":' },
  { name: 'bulk, no token and a body not JSON (who first)', path: '/ofrep/v1/evaluate/flags', body: '{"context":' },
  { name: 'single, a bad token and a body too large (who first)', path: '/ofrep/v1/evaluate/flags/fast-payment', headers: { Authorization: 'Bearer nope' }, body: JSON.stringify({ context: { locale: 'x'.repeat(20_000) } }) },
  { name: 'single, body not JSON', path: '/ofrep/v1/evaluate/flags/fast-payment', headers: auth, body: '{"context":' },
  { name: 'single, body not JSON, as text/plain', path: '/ofrep/v1/evaluate/flags/fast-payment', headers: { ...auth, 'Content-Type': 'text/plain' }, body: '{"context":' },
  { name: 'single, body not JSON, from an allowed origin', path: '/ofrep/v1/evaluate/flags/fast-payment', headers: { ...auth, Origin: 'https://app.test' }, body: '{"context":' },
  { name: 'bulk, context not an object', path: '/ofrep/v1/evaluate/flags', headers: auth, body: '{"context":"nope"}' },
  { name: 'single, context not an object', path: '/ofrep/v1/evaluate/flags/fast-payment', headers: auth, body: '{"context":"nope"}' },
  { name: 'bulk, body too large', path: '/ofrep/v1/evaluate/flags', headers: auth, body: JSON.stringify({ context: { locale: 'x'.repeat(20_000) } }) },
  { name: 'single, body too large', path: '/ofrep/v1/evaluate/flags/fast-payment', headers: auth, body: JSON.stringify({ context: { locale: 'x'.repeat(20_000) } }) },
  { name: 'bulk, unsupported charset', path: '/ofrep/v1/evaluate/flags', headers: { ...auth, 'Content-Type': 'application/json; charset=koi8-r' }, body: '{}' },
  { name: 'single, a key that is not valid percent-encoding', path: '/ofrep/v1/evaluate/flags/%E0%A4%A', headers: auth, body: '{}' },
  { name: 'single, a key that is not valid percent-encoding, no token', path: '/ofrep/v1/evaluate/flags/%E0%A4%A', body: '{}' },
  { name: 'single, a key that is not valid percent-encoding, from an allowed origin', path: '/ofrep/v1/evaluate/flags/%E0%A4%A', headers: { ...auth, Origin: 'https://app.test' }, body: '{}' },
  { name: 'single, a server-only flag', path: '/ofrep/v1/evaluate/flags/admin-tools', headers: auth, body: '{}' },
  { name: 'single, an unknown flag with an encoded key', path: '/ofrep/v1/evaluate/flags/no%20such%2Fflag', headers: auth, body: '{}' },
  { name: 'single, a visible flag', path: '/ofrep/v1/evaluate/flags/fast-payment', headers: auth, body: '{"context":{"locale":"fr"}}' },
  { name: 'single, a body nested 8000 levels deep', path: '/ofrep/v1/evaluate/flags/fast-payment', headers: auth, body: deep },
  { name: 'stream, no ticket', method: 'get', path: '/ofrep/v1/events' },
  { name: 'stream, a forged ticket', method: 'get', path: '/ofrep/v1/events?ticket=9999999999.AAAAAAAAAAAAAAAA.x&since=x' },
];

async function answer(app: Parameters<typeof request>[0], c: Case) {
  let req = request(app)[c.method ?? 'post'](c.path).set({ 'Content-Type': 'application/json', ...(c.headers ?? {}) });
  if (c.body !== undefined) req = req.send(c.body);
  const res = await req.buffer(true).parse((r, done) => {
    let text = '';
    r.setEncoding('utf8');
    r.on('data', (chunk: string) => (text += chunk));
    r.on('end', () => done(null, text));
  });
  const headers = Object.fromEntries(HEADERS.filter((h) => res.headers[h] !== undefined).map((h) => [h, res.headers[h] as string]));
  return { status: res.status, body: res.body as string, headers };
}

describe('the same request, the same answer, from Express and Nest', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const [fromExpress, fromNest] = [await answer(expressApp, c), await answer(nestApp.getHttpServer(), c)];
    expect(fromNest).toEqual(fromExpress);
    expect(fromExpress.headers.etag).toBeUndefined(); // never Express's weak ETag on these answers
    if (c.method !== 'get') {
      const operation = c.path.startsWith('/ofrep/v1/evaluate/flags/') ? 'single' : 'bulk';
      expect(checkOfrepAnswer(operation, fromExpress.status, JSON.parse(fromExpress.body)).errors).toEqual([]);
    }
  });

  it('sends the 401 and the other refusals in OFREP\'s shape, with the caching headers of every OFREP answer', async () => {
    const unauthorized = await answer(nestApp.getHttpServer(), cases[0]!);
    expect(unauthorized).toEqual({
      status: 401,
      body: '{"errorDetails":"unauthorized"}',
      headers: { 'content-type': 'application/json; charset=utf-8', 'content-length': '31', 'cache-control': 'private, no-store', vary: 'Authorization', 'www-authenticate': 'Bearer' },
    });
    const badKey = await answer(nestApp.getHttpServer(), cases.find((c) => c.name === 'single, a key that is not valid percent-encoding')!);
    expect([badKey.status, JSON.parse(badKey.body)]).toEqual([400, { key: '%E0%A4%A', errorCode: 'GENERAL', errorDetails: 'the flag key in the path is not valid percent-encoding' }]);
    const notJson = await answer(nestApp.getHttpServer(), cases.find((c) => c.name === 'single, body not JSON')!);
    expect([notJson.status, JSON.parse(notJson.body)]).toEqual([400, { key: 'fast-payment', errorCode: 'INVALID_CONTEXT', errorDetails: 'request body is not valid JSON' }]);
  });
});
