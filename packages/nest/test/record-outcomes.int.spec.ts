import 'reflect-metadata';
import { Controller, Get, HttpException, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { OpenFeature, type Client } from '@openfeature/server-sdk';
import { RedisFlagStore } from '@rollgate/redis';
import { OutcomeReader, OutcomeRecorder } from '@rollgate/rollouts';
import { FeatureValue, InjectFeatureClient, RequireFeature, RollgateModule } from '@rollgate/nest';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { bearer, jwtOptions, token } from '../../server/test/support/pilot-scenario';

// RollgateModule with `outcomes`: each request's outcome counted in the arm of the variant that
// served it — through @RequireFeature, @FeatureValue and client.track() — as Express does.

const fastPayment = {
  state: 'ENABLED',
  variants: { on: true, off: false },
  defaultVariant: 'off',
  targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { fractional: [['on', 50], ['off', 50]] }] },
};

@Controller()
class PaymentsController {
  constructor(@InjectFeatureClient() private readonly flags: Client) {}

  @Get('fast')
  @RequireFeature('fast-payment')
  fast() {
    return { paid: true };
  }

  @Get('fast-failing')
  @RequireFeature('fast-payment')
  failing() {
    this.flags.track('payment.failed', undefined, { value: 1250 }); // cents that failed: a value guard can compare it
    throw new HttpException('the fast payment provider is down', 502);
  }

  // the old path reads the flag too: its requests count in the caller's arm
  @Get('pay')
  pay(@FeatureValue('fast-payment', false) fast: boolean) {
    return { fast };
  }
}

let redis: TestRedis;
let store: RedisFlagStore;
let recorder: OutcomeRecorder;
let app: INestApplication;
const clockMs = Date.UTC(2026, 11, 1, 9, 0, 0);

beforeAll(async () => {
  redis = await startRedis();
  store = new RedisFlagStore({ redis: redis.url, env: 'nest-outcomes', pollIntervalMs: 60_000 });
  await store.putFlag('fast-payment', fastPayment, { actor: 'ada' });
  recorder = new OutcomeRecorder({ store, now: () => clockMs, flushIntervalMs: 2 ** 31 - 1 });
  const moduleRef = await Test.createTestingModule({
    imports: [RollgateModule.forRoot({ store, jwt: jwtOptions, domain: 'nest-outcomes', outcomes: { sink: recorder } })],
    controllers: [PaymentsController],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
});

afterAll(async () => {
  await app.close();
  await recorder.close();
  await store.close();
  await redis.stop();
});

function usersServed(variant: 'on' | 'off', n: number): string[] {
  const out: string[] = [];
  const provider = OpenFeature.getProvider('nest-outcomes') as unknown as { snapshot: { evaluate(k: string, c: object, o: object): { variant?: string } } };
  for (let i = 0; out.length < n; i++) {
    if (provider.snapshot.evaluate('fast-payment', { targetingKey: `user-${i}`, roles: ['customer'] }, { defaultValue: false, type: 'boolean' }).variant === variant) out.push(`user-${i}`);
  }
  return out;
}

const as = (sub: string, roles = ['customer']) => bearer(token({ sub, roles }));

it('counts allowed, failing and @FeatureValue requests in their arms, a refused one not at all, and a tracked event', async () => {
  const [treated1, treated2] = usersServed('on', 2);
  const [control] = usersServed('off', 1);
  const server = app.getHttpServer();
  await request(server).get('/fast').set(as(treated1!)).expect(200);
  await request(server).get('/fast-failing').set(as(treated2!)).expect(502);
  await request(server).get('/fast').set(as(control!)).expect(403);
  await request(server).get('/pay').set(as(control!)).expect(200, { fast: false });
  await request(server).get('/fast').set(as('ada', ['admin'])).expect(200);
  await recorder.flush();
  const second = Math.floor(clockMs / 1000);
  const [counts] = await new OutcomeReader(store).seconds('fast-payment', second, second);
  expect(counts!.arms.get('split:on')).toMatchObject({ requests: 2, errors: 1, events: { 'payment.failed': 1 } });
  expect(counts!.arms.get('split:on')!.values['payment.failed']).toMatchObject({ n: 1, sum: 1250 });
  expect(counts!.arms.get('split:off')).toMatchObject({ requests: 1, errors: 0 });
  expect(counts!.arms.get('targeted:on')).toMatchObject({ requests: 1, errors: 0 });
});
