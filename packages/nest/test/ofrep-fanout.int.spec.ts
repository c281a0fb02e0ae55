import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import type { BulkEvaluationSuccessResponse } from '@openfeature/ofrep-core';
import { ProviderEvents } from '@openfeature/server-sdk';
import type { RedisFlagStore, RollgateProvider } from '@rollgate/redis';
import { ROLLGATE_PROVIDER, RollgateModule } from '@rollgate/nest';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { bearer, customer, jwtOptions, nextEvent, openStream, recordingLogger, seed, type OpenStream } from '../../server/test/support/pilot-scenario';

// The Nest OFREP controller shares the Express router's change stream and evaluator: it
// announces only what browsers can see (paced), and resumes a stream by what browsers can see
// (Last-Event-ID), across a restart of the app.

let redis: TestRedis;
let writer: RedisFlagStore;
const env = `nest-fanout-${process.pid}`;
const TICKETS = 'nest-fanout-ticket-secret-32-bytes!';
const REFETCH = /id: ([\w-]+)\nevent: message\ndata: (.+)\n\n/;
const actor = { actor: 'ops' };
const apps: INestApplication[] = [];
const streams: OpenStream[] = [];

beforeAll(async () => {
  redis = await startRedis();
  writer = await seed(redis.url, env);
  await writer.apply([{ kind: 'evaluator', key: 'staff', definition: { in: [{ var: 'tenant' }, ['internal']] } }, { kind: 'flag', key: 'max-seats', definition: { state: 'ENABLED', variants: { few: 2, many: 9 }, defaultVariant: 'few', targeting: { if: [{ $ref: 'staff' }, 'many', null] } } }], actor);
});

afterEach(async () => {
  for (const s of streams.splice(0)) s.destroy();
  for (const app of apps.splice(0)) await app.close();
});

afterAll(async () => {
  await writer.close();
  await redis.stop();
});

async function start(): Promise<{ app: INestApplication; port: number }> {
  const moduleRef = await Test.createTestingModule({
    imports: [RollgateModule.forRoot({ store: { redis: redis.url, env }, jwt: jwtOptions, ofrep: { stream: { ticketSecret: TICKETS } }, logger: recordingLogger() })],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  apps.push(app);
  return { app, port: (app.getHttpServer().address() as AddressInfo).port };
}

async function streamUri(app: INestApplication): Promise<string> {
  const res = await request(app.getHttpServer()).post('/ofrep/v1/evaluate/flags').set(bearer(customer)).send({}).expect(200);
  return (res.body as BulkEvaluationSuccessResponse).eventStreams![0]!.endpoint!.requestUri!;
}

/** A write, once `app`'s provider has adopted it (each write on its own: none is folded into the next). */
async function heard(app: INestApplication, write: () => Promise<unknown>): Promise<void> {
  const changed = nextEvent(app.get<RollgateProvider>(ROLLGATE_PROVIDER), ProviderEvents.ConfigurationChanged);
  await write();
  await changed;
}

async function flipCheckout(app: INestApplication): Promise<void> {
  const current = (await writer.load()).flags['checkout-variant'] as { defaultVariant: string };
  await heard(app, () => writer.patchFlag('checkout-variant', { defaultVariant: current.defaultVariant === 'fast' ? 'classic' : 'fast' }, actor));
}

const messages = (s: OpenStream) => s.text().match(/event: message/g)?.length ?? 0;

it('changes browsers cannot see send nothing; a visible change sends one refetch', async () => {
  const { app, port } = await start();
  const s = await openStream(port, await streamUri(app));
  streams.push(s);
  await s.waitFor(/: connected\n\n/);
  await heard(app, () => writer.patchFlag('max-seats', { defaultVariant: 'many' }, actor));
  await heard(app, () => writer.apply([{ kind: 'evaluator', key: 'staff', definition: { in: [{ var: 'tenant' }, ['internal', 'ops']] } }], actor));
  await flipCheckout(app);
  await s.waitFor(REFETCH);
  expect(messages(s)).toBe(1);
});

it('a restarted app with the same flags resumes the stream without a refetch (Last-Event-ID)', async () => {
  const first = await start();
  const uri = await streamUri(first.app);
  const s = await openStream(first.port, uri);
  const [, seen] = await s.waitFor(/id: ([\w-]+)\n: connected/);
  await first.app.close();
  apps.splice(apps.indexOf(first.app), 1);

  const restarted = await start();
  const back = await openStream(restarted.port, uri, { 'Last-Event-ID': seen! });
  streams.push(back);
  await back.waitFor(/: connected\n\n/);
  await flipCheckout(restarted.app);
  await back.waitFor(REFETCH);
  expect(messages(back)).toBe(1); // the change's only: nothing on connect
});
