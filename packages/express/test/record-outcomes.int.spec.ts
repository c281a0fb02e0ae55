import express, { type Express } from 'express';
import request from 'supertest';
import { OpenFeature } from '@openfeature/server-sdk';
import { RedisFlagStore, RollgateProvider } from '@rollgate/redis';
import { OutcomeReader, OutcomeRecorder } from '@rollgate/rollouts';
import { getRequestIdentity, identity, recordOutcomes, requireFeature } from '@rollgate/express';
import { recordExposure } from '@rollgate/server';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';
import { bearer, jwtOptions, token } from '../../server/test/support/pilot-scenario';

// What a guarded rollout measures, end to end through Express: each request's outcome counted in
// the arm of the variant that served it, in memory, then in Redis per second.

let redis: TestRedis;
let store: RedisFlagStore;
let provider: RollgateProvider;
let recorder: OutcomeRecorder;
let app: Express;
let clockMs = Date.UTC(2026, 11, 1, 9, 0, 0);

// half the split gets the fast payment; admins always do (a targeting rule: not randomized)
const fastPayment = {
  state: 'ENABLED',
  variants: { on: true, off: false },
  defaultVariant: 'off',
  targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { fractional: [['on', 50], ['off', 50]] }] },
};

beforeAll(async () => {
  redis = await startRedis();
  const env = `outcomes-${process.pid}`;
  store = new RedisFlagStore({ redis: redis.url, env, pollIntervalMs: 60_000 });
  await store.putFlag('fast-payment', fastPayment, { actor: 'ada' });
  provider = new RollgateProvider({ store });
  await OpenFeature.setProviderAndWait('outcomes', provider);
  recorder = new OutcomeRecorder({ store, now: () => clockMs, flushIntervalMs: 2 ** 31 - 1 });

  app = express();
  app.use(recordOutcomes({ sink: recorder, provider }));
  app.use(identity({ jwt: jwtOptions }));
  const client = OpenFeature.getClient('outcomes');
  app.post('/payments/fast', requireFeature('fast-payment', { domain: 'outcomes' }), (req, res) => {
    if (req.query.fail) {
      client.track('payment.failed', {}, { value: 1250 }); // the amount that failed, in cents: a value guard can compare it
      throw new Error('the fast payment provider is down'); // → 500 from Express' error handler
    }
    res.json({ paid: true });
  });
  // the old path evaluates the flag too, so its requests count in the caller's arm
  app.post('/payments', async (req, res) => {
    const ctx = { ...getRequestIdentity(req)!.context } as Record<string, string>;
    recordExposure('fast-payment', await client.getBooleanDetails('fast-payment', false, ctx), ctx);
    res.json({ paid: true });
  });
  app.use((_err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).json({ error: 'internal' });
  });
});

afterAll(async () => {
  await recorder.close();
  await OpenFeature.clearProviders();
  await store.close();
  await redis.stop();
});

/** Users of the split, found by evaluating the flag as it is stored. */
function usersServed(variant: 'on' | 'off', n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const r = provider.snapshot.evaluate('fast-payment', { targetingKey: `user-${i}`, roles: ['customer'] }, { defaultValue: false, type: 'boolean' });
    if (r.variant === variant) out.push(`user-${i}`);
  }
  return out;
}

const as = (sub: string, roles = ['customer']) => bearer(token({ sub, roles }));

it('counts an allowed request in its arm, a failing one as an error, a refused one not at all; and an event tracked while handling it, with its value', async () => {
  const second = Math.floor(clockMs / 1000);
  const [treated1, treated2] = usersServed('on', 2);
  const [control] = usersServed('off', 1);
  await request(app).post('/payments/fast').set(as(treated1!)).expect(200);
  await request(app).post('/payments/fast?fail=1').set(as(treated2!)).expect(500);
  await request(app).post('/payments/fast').set(as(control!)).expect(403); // never reached the code: not counted
  await request(app).post('/payments').set(as(control!)).expect(200); // the old path, in the control arm
  await request(app).post('/payments/fast').set(as('ada', ['admin'])).expect(200); // pilot: counted apart
  await recorder.flush();

  const [counts] = await new OutcomeReader(store).seconds('fast-payment', second, second);
  expect(counts!.arms.get('split:on')).toMatchObject({ requests: 2, errors: 1, events: { 'payment.failed': 1 } });
  expect(counts!.arms.get('split:on')!.values['payment.failed']).toMatchObject({ n: 1, sum: 1250, sumSquares: 1250 * 1250 });
  expect(counts!.arms.get('split:off')).toMatchObject({ requests: 1, errors: 0 });
  expect(counts!.arms.get('targeted:on')).toMatchObject({ requests: 1, errors: 0 });
  expect([...counts!.arms.keys()].sort()).toEqual(['split:off', 'split:on', 'targeted:on']);
  expect(counts!.arms.get('split:on')!.histogram.reduce((a, b) => a + b, 0)).toBe(2);
});

it('records nothing for a request that evaluates no flag, and never counts a flag twice in one request', async () => {
  clockMs += 10_000;
  const second = Math.floor(clockMs / 1000);
  const [user] = usersServed('on', 1);
  const twice = express();
  twice.use(recordOutcomes({ sink: recorder }));
  twice.use(identity({ jwt: jwtOptions }));
  twice.get('/plain', (_req, res) => void res.json({}));
  twice.get('/twice', requireFeature('fast-payment', { domain: 'outcomes' }), requireFeature('fast-payment', { domain: 'outcomes' }), (_req, res) => void res.json({}));
  await request(twice).get('/plain').set(as(user!)).expect(200);
  await request(twice).get('/twice').set(as(user!)).expect(200);
  await recorder.flush();
  const [counts] = await new OutcomeReader(store).seconds('fast-payment', second, second);
  expect(counts!.arms.get('split:on')).toMatchObject({ requests: 1 });
});
