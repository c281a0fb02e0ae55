import { Registry } from 'prom-client';
import { RedisFlagStore } from '@rollgate/redis';
import { OutcomeRecorder, registerRolloutMetrics, Rollouts } from '@rollgate/rollouts';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';

// The Prometheus view, through a real prom-client registry: scraped values come from the
// recorder's totals and the stored plans.

let redis: TestRedis;
let store: RedisFlagStore;

beforeAll(async () => {
  redis = await startRedis();
  store = new RedisFlagStore({ redis: redis.url, env: 'prom', pollIntervalMs: 60_000 });
  await store.putFlag('fast-payment', { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { fractional: [['on', 0], ['off', 100]] } }, { actor: 'ada' });
});
afterAll(async () => {
  await store.close();
  await redis.stop();
});

it('exposes requests, latency histogram, events and plan state with OpenTelemetry-style labels', async () => {
  const registry = new Registry();
  const recorder = new OutcomeRecorder({ store, flushIntervalMs: 2 ** 31 - 1 });
  const rollouts = new Rollouts({ store });
  const unregister = registerRolloutMetrics({ registry, recorder, rollouts });
  const on = { flagKey: 'fast-payment', variant: 'on', split: true, unit: 'u1' };
  recorder.recordRequest([on], { error: false, durationMs: 3 });
  recorder.recordRequest([on], { error: true, durationMs: 120 });
  recorder.recordRequest([{ ...on, variant: 'off' }], { error: false, durationMs: 20 });
  recorder.recordEvent('payment.failed', [on]);
  await rollouts.create({ flag: 'fast-payment', treatment: 'on', control: 'off', stages: [{ percent: 5 }, { percent: 100, absolute: { maxErrorRate: 0.05 } }] }, { actor: 'ada' });
  await rollouts.start('fast-payment', { actor: 'ada' });

  const text = await registry.metrics();
  const lines = text.split('\n');
  const on_ = 'feature_flag_key="fast-payment",feature_flag_result_variant="on",rollgate_arm="split"';
  expect(lines).toContain(`rollgate_requests_total{${on_},outcome="success"} 1`);
  expect(lines).toContain(`rollgate_requests_total{${on_},outcome="error"} 1`);
  expect(lines).toContain('rollgate_requests_total{feature_flag_key="fast-payment",feature_flag_result_variant="off",rollgate_arm="split",outcome="success"} 1');
  // cumulative buckets: 3 ms is under the 5.96 ms boundary, 120 ms under 211.76 ms
  expect(lines).toContain(`rollgate_request_duration_seconds_bucket{${on_},le="0.001"} 0`);
  expect(lines).toContain(`rollgate_request_duration_seconds_bucket{${on_},le="0.00596046"} 1`);
  expect(lines).toContain(`rollgate_request_duration_seconds_bucket{${on_},le="0.211758"} 2`);
  expect(lines).toContain(`rollgate_request_duration_seconds_bucket{${on_},le="+Inf"} 2`);
  expect(lines).toContain(`rollgate_request_duration_seconds_count{${on_}} 2`);
  expect(lines.find((l) => l.startsWith(`rollgate_request_duration_seconds_sum{${on_}}`))).toMatch(/ 0\.123$/);
  expect(lines).toContain(`rollgate_events_total{${on_},event="payment.failed"} 1`);
  expect(lines).toContain('rollgate_plan_percent{feature_flag_key="fast-payment"} 5');
  expect(lines).toContain('rollgate_plan_stage{feature_flag_key="fast-payment"} 1');
  expect(lines).toContain('rollgate_plan_state{feature_flag_key="fast-payment",state="running"} 1');
  expect(lines).toContain('rollgate_plan_state{feature_flag_key="fast-payment",state="rolled_back"} 0');
  expect(lines).toContain('# TYPE rollgate_request_duration_seconds histogram');
  unregister();
  expect(await registry.metrics()).toBe('\n');
  await recorder.close();
});
