import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { Controller, Get, Injectable, SetMetadata, UnauthorizedException, type CanActivate, type ExecutionContext, type INestApplication } from '@nestjs/common';
import { APP_GUARD, Reflector } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import type { BulkEvaluationSuccessResponse, EvaluationResponse } from '@openfeature/ofrep-core';
import type { RedisFlagStore } from '@rollgate/redis';
import { RollgateModule } from '@rollgate/nest';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { admin, bearer, customer, firstMessageAfter, openStream, jwtOptions, recordingLogger, seed, vipAgent } from '../../server/test/support/pilot-scenario';

// The OFREP controller answers as @rollgate/express's ofrep() router does (see its tests).

let redis: TestRedis;
let writer: RedisFlagStore;
let app: INestApplication;
let port: number;
const env = `nest-ofrep-${process.pid}`;

beforeAll(async () => {
  redis = await startRedis();
  writer = await seed(redis.url, env);
  const moduleRef = await Test.createTestingModule({
    imports: [
      RollgateModule.forRoot({
        store: { redis: redis.url, env },
        jwt: jwtOptions,
        ofrep: { cors: { origins: ['https://app.test'] }, clientAttributes: ['locale'] },
        logger: recordingLogger(),
      }),
    ],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  port = (app.getHttpServer().address() as AddressInfo).port;
});

afterAll(async () => {
  await app?.close();
  await writer?.close();
  await redis?.stop();
});

const api = () => request(app.getHttpServer());

describe('OFREP controller', () => {
  it('bulk: returns values of client-visible flags only, for the verified caller, never rules', async () => {
    const res = await api()
      .post('/ofrep/v1/evaluate/flags')
      .set(bearer(vipAgent))
      .send({ context: { targetingKey: 'ada', roles: ['admin'], tenant: 'internal', locale: 'fr' } })
      .expect(200);
    const body = res.body as BulkEvaluationSuccessResponse;
    expect(body.flags).toEqual([
      { key: 'checkout-variant', value: 'fast', variant: 'fast', reason: 'TARGETING_MATCH' },
      { key: 'fast-payment', value: true, variant: 'on', reason: 'TARGETING_MATCH' },
    ]);
    expect(JSON.stringify(body)).not.toContain('atlas'); // no segment lists or rules
    expect(JSON.stringify(body)).not.toContain('admin-tools'); // server-only flags are invisible
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['cache-control']).toBe('private, no-store');
    expect(res.headers.vary).toBe('Authorization');
    expect(res.headers.etag).toMatch(/^".+"$/);
    expect(body.eventStreams).toEqual([{ type: 'sse', endpoint: { requestUri: expect.stringMatching(/^\/ofrep\/v1\/events\?ticket=\d+\.[\w-]{16}\.[\w-]{43}&since=[\w-]{22}$/) } }]);
  });

  it('bulk: answers 304 to a matching If-None-Match, per user', async () => {
    const first = await api().post('/ofrep/v1/evaluate/flags').set(bearer(customer)).send({}).expect(200);
    const again = await api().post('/ofrep/v1/evaluate/flags').set(bearer(customer)).set('If-None-Match', first.headers.etag!).send({}).expect(304);
    expect(again.text).toBe('');
    expect(again.headers.etag).toBe(first.headers.etag);
    await api().post('/ofrep/v1/evaluate/flags').set(bearer(admin)).set('If-None-Match', first.headers.etag!).send({}).expect(200);
  });

  it('bulk: accepts no body at all, and a JSON body sent as text/plain', async () => {
    await api().post('/ofrep/v1/evaluate/flags').set(bearer(customer)).expect(200);
    const res = await api().post('/ofrep/v1/evaluate/flags').set(bearer(customer)).set('Content-Type', 'text/plain').send('{"context":{"locale":"de"}}').expect(200);
    expect((res.body as BulkEvaluationSuccessResponse).flags).toHaveLength(2);
  });

  it('single: evaluates a visible flag, 404 for server-only or unknown flags', async () => {
    const ok = await api().post('/ofrep/v1/evaluate/flags/fast-payment').set(bearer(customer)).send({ context: {} }).expect(200);
    expect(ok.body as EvaluationResponse).toEqual({ key: 'fast-payment', value: false, variant: 'off', reason: 'TARGETING_MATCH' });
    await api().post('/ofrep/v1/evaluate/flags/admin-tools').set(bearer(admin)).send({}).expect(404, { key: 'admin-tools', errorCode: 'FLAG_NOT_FOUND', errorDetails: 'flag "admin-tools" not found' });
    await api().post('/ofrep/v1/evaluate/flags/nope').set(bearer(admin)).send({}).expect(404);
  });

  it('refuses unauthenticated, malformed and oversized requests with OFREP error bodies', async () => {
    // the same 401 as the Express router's (see ofrep-parity.int.spec.ts)
    const unauth = await api().post('/ofrep/v1/evaluate/flags').send({}).expect(401, { errorDetails: 'unauthorized' });
    expect(unauth.headers).toMatchObject({ 'www-authenticate': 'Bearer', 'cache-control': 'private, no-store', vary: 'Authorization' });
    await api().post('/ofrep/v1/evaluate/flags/fast-payment').set('Authorization', 'Bearer nope').send({}).expect(401);
    // refused by Nest's own body parser (application/json) and by ours (other types)
    await api().post('/ofrep/v1/evaluate/flags').set(bearer(admin)).set('Content-Type', 'application/json').send('{"context":').expect(400, { errorCode: 'INVALID_CONTEXT', errorDetails: 'request body is not valid JSON' });
    await api().post('/ofrep/v1/evaluate/flags').set(bearer(admin)).set('Content-Type', 'text/plain').send('{"context":').expect(400, { errorCode: 'INVALID_CONTEXT', errorDetails: 'request body is not valid JSON' });
    await api().post('/ofrep/v1/evaluate/flags').set(bearer(admin)).send({ context: 'nope' }).expect(400);
    // 16kb limit: below Nest's 100kb parser limit, above it, and in a body Nest does not parse
    await api().post('/ofrep/v1/evaluate/flags').set(bearer(admin)).send({ context: { locale: 'x'.repeat(20_000) } }).expect(413, { errorDetails: 'request body too large' });
    await api().post('/ofrep/v1/evaluate/flags').set(bearer(admin)).send({ context: { locale: 'x'.repeat(200_000) } }).expect(413, { errorDetails: 'request body too large' });
    await api().post('/ofrep/v1/evaluate/flags').set(bearer(admin)).set('Content-Type', 'text/plain').send(JSON.stringify({ context: { locale: 'x'.repeat(20_000) } })).expect(413);
    // a form body is not JSON
    await api().post('/ofrep/v1/evaluate/flags').set(bearer(admin)).type('form').send('context=1').expect(400);
  });

  it('answers CORS preflights for allowed origins only, exposing ETag and keeping Vary: Origin', async () => {
    const ok = await api().options('/ofrep/v1/evaluate/flags').set('Origin', 'https://app.test').set('Access-Control-Request-Method', 'POST').expect(204);
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.test');
    expect(ok.headers['access-control-expose-headers']).toBe('ETag');
    expect(ok.headers['access-control-allow-headers']).toContain('If-None-Match');
    const allowed = await api().post('/ofrep/v1/evaluate/flags').set('Origin', 'https://app.test').set(bearer(admin)).send({}).expect(200);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.test');
    expect(allowed.headers.vary).toBe('Origin, Authorization');
    const other = await api().post('/ofrep/v1/evaluate/flags').set('Origin', 'https://evil.test').set(bearer(admin)).send({});
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('SSE: announces a write with refetchEvaluation, and refuses streams without a valid ticket', async () => {
    const bulk = await api().post('/ofrep/v1/evaluate/flags').set(bearer(customer)).send({});
    const uri = (bulk.body as BulkEvaluationSuccessResponse).eventStreams![0]!.endpoint!.requestUri;
    await api().get('/ofrep/v1/events?ticket=123.bad').expect(401);
    await api().get('/ofrep/v1/events').expect(401);

    const message = await firstMessageAfter(port, uri!, () => writer.patchFlag('checkout-variant', { defaultVariant: 'fast' }, { actor: 'ops' }));
    expect(message).toEqual({ status: 200, contentType: expect.stringContaining('text/event-stream'), data: { type: 'refetchEvaluation', etag: expect.any(String) } });
  });
});

describe('OFREP under a prefix, behind a global auth guard', () => {
  const IS_PUBLIC = 'test:is-public';

  /** A typical app-wide auth guard with a @Public() escape hatch. */
  @Injectable()
  class AppAuthGuard implements CanActivate {
    constructor(private readonly reflector: Reflector) {}
    canActivate(context: ExecutionContext): boolean {
      if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()])) return true;
      const req = context.switchToHttp().getRequest<{ headers: Record<string, string> }>();
      if (req.headers.authorization) return true;
      throw new UnauthorizedException();
    }
  }

  @Controller()
  class PingController {
    @Get('ping')
    ping() {
      return 'pong';
    }
  }

  let prefixed: INestApplication;
  let prefixedPort: number;
  let closed = false;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        RollgateModule.forRootAsync({
          ofrep: { path: 'flags', decorators: [SetMetadata(IS_PUBLIC, true)] },
          useFactory: () => ({ store: { redis: redis.url, env }, jwt: jwtOptions, domain: 'ofrep-prefixed', logger: recordingLogger() }),
        }),
      ],
      controllers: [PingController],
      providers: [{ provide: APP_GUARD, useClass: AppAuthGuard }],
    }).compile();
    prefixed = moduleRef.createNestApplication({ logger: false });
    prefixed.setGlobalPrefix('api');
    await prefixed.listen(0, '127.0.0.1');
    prefixedPort = (prefixed.getHttpServer().address() as AddressInfo).port;
  });
  afterAll(async () => {
    if (!closed) await prefixed?.close();
  });

  it('serves under globalPrefix/path, with the stream URI following it; the stream passes the app guard by the ticket', async () => {
    await request(prefixed.getHttpServer()).get('/api/ping').expect(401);
    const bulk = await request(prefixed.getHttpServer()).post('/api/flags/ofrep/v1/evaluate/flags').set(bearer(vipAgent)).send({}).expect(200);
    const uri = (bulk.body as BulkEvaluationSuccessResponse).eventStreams![0]!.endpoint!.requestUri;
    expect(uri).toMatch(/^\/api\/flags\/ofrep\/v1\/events\?ticket=/);
    const stream = await openStream(prefixedPort, uri!);
    stream.destroy();
    expect(stream.status).toBe(200);
  });

  it('closes open SSE streams on app.close(), so shutdown does not hang', async () => {
    const bulk = await request(prefixed.getHttpServer()).post('/api/flags/ofrep/v1/evaluate/flags').set(bearer(vipAgent)).send({}).expect(200);
    const uri = (bulk.body as BulkEvaluationSuccessResponse).eventStreams![0]!.endpoint!.requestUri;
    const stream = await openStream(prefixedPort, uri!);
    expect(stream.status).toBe(200);
    await prefixed.close();
    closed = true;
    await stream.ended;
  });
});
