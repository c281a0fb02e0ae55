import type { Registry } from 'prom-client';
import { bucketUpperMs, LATENCY_BUCKETS } from './histogram';
import type { OutcomeRecorder } from './outcome-recorder';
import type { PlanState } from './plan';
import type { Rollouts } from './rollouts';

// Prometheus exposition through the app's prom-client registry. The values are read when the
// registry is scraped — from the recorder's running totals and the stored plans — so recording
// costs nothing more per request. Label names follow OpenTelemetry's feature-flag attributes
// (feature_flag.key, feature_flag.result.variant) as Prometheus spells them.

export interface RolloutMetricsOptions {
  /** The registry to register on: prom-client's `register`, or your own `new Registry()`. */
  registry: Pick<Registry, 'registerMetric' | 'removeSingleMetric'>;
  /** Request and event counts of this instance. */
  recorder?: OutcomeRecorder;
  /** Plan stage, state and evidence (one Redis read per scrape; the same for every instance). */
  rollouts?: Rollouts;
}

type Labels = Record<string, string | number>;
interface Value {
  value: number;
  labels: Labels;
  metricName?: string;
}
interface CustomMetric {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  aggregator: 'sum' | 'first';
  get(): Promise<{ name: string; help: string; type: string; values: Value[]; aggregator: string }>;
  reset(): void;
}

/** Every 4th boundary of the recording histogram (≈ ×2.4): exact cumulative counts at each. */
const EXPORTED_BUCKETS = Array.from({ length: Math.ceil((LATENCY_BUCKETS - 1) / 4) }, (_, k) => 4 * k);
const STATES: PlanState[] = ['draft', 'running', 'paused', 'rolled_back', 'completed'];

function metric(name: string, help: string, type: CustomMetric['type'], values: () => Promise<Value[]> | Value[]): CustomMetric {
  return {
    name,
    help,
    type,
    aggregator: type === 'gauge' ? 'first' : 'sum',
    async get() {
      return { name, help, type, values: await values(), aggregator: this.aggregator };
    },
    reset() {
      // the values are derived from the recorder and the plans; nothing to reset here
    },
  };
}

/**
 * Registers Rollgate's rollout metrics; returns a function that removes them.
 *
 * - `rollgate_requests_total{feature_flag_key, feature_flag_result_variant, rollgate_arm, outcome}`
 * - `rollgate_request_duration_seconds{feature_flag_key, feature_flag_result_variant, rollgate_arm}` (histogram)
 * - `rollgate_events_total{feature_flag_key, feature_flag_result_variant, rollgate_arm, event}`
 * - `rollgate_plan_percent`, `rollgate_plan_stage`, `rollgate_plan_state{state}` (1 for the current
 *   state), `rollgate_guard_evidence{guard}` per `feature_flag_key`
 */
export function registerRolloutMetrics(options: RolloutMetricsOptions): () => void {
  const { registry, recorder, rollouts } = options;
  const metrics: CustomMetric[] = [];
  if (recorder) {
    const arms = () => recorder.armTotals();
    const base = (t: ReturnType<typeof arms>[number]) => ({ feature_flag_key: t.flagKey, feature_flag_result_variant: t.variant, rollgate_arm: t.split ? 'split' : 'targeted' });
    metrics.push(
      metric('rollgate_requests_total', 'Requests counted in a flag variant\'s arm, by outcome (error: 5xx or thrown).', 'counter', () =>
        arms().flatMap((t) => [
          { value: t.requests - t.errors, labels: { ...base(t), outcome: 'success' } },
          { value: t.errors, labels: { ...base(t), outcome: 'error' } },
        ]),
      ),
      metric('rollgate_request_duration_seconds', 'Latency of requests counted in a flag variant\'s arm.', 'histogram', () =>
        arms().flatMap((t) => {
          const out: Value[] = [];
          let cumulative = 0;
          let next = 0;
          for (const i of EXPORTED_BUCKETS) {
            for (; next <= i; next++) cumulative += t.histogram[next]!;
            out.push({ metricName: 'rollgate_request_duration_seconds_bucket', value: cumulative, labels: { ...base(t), le: Number((bucketUpperMs(i) / 1000).toPrecision(6)) } });
          }
          out.push({ metricName: 'rollgate_request_duration_seconds_bucket', value: t.requests, labels: { ...base(t), le: '+Inf' } });
          out.push({ metricName: 'rollgate_request_duration_seconds_sum', value: t.durationSumMs / 1000, labels: base(t) });
          out.push({ metricName: 'rollgate_request_duration_seconds_count', value: t.requests, labels: base(t) });
          return out;
        }),
      ),
      metric('rollgate_events_total', 'Tracked events counted in a flag variant\'s arm.', 'counter', () =>
        arms().flatMap((t) => [...t.events].map(([event, value]) => ({ value, labels: { ...base(t), event } }))),
      ),
    );
  }
  if (rollouts) {
    const plans = () => rollouts.list().catch(() => []);
    metrics.push(
      metric('rollgate_plan_percent', 'Treatment share of the split the plan wants now (0 once rolled back).', 'gauge', async () =>
        (await plans()).map((p) => ({ value: rollouts.desiredPercent(p), labels: { feature_flag_key: p.flag } })),
      ),
      metric('rollgate_plan_stage', 'Current stage of the plan, from 1.', 'gauge', async () => (await plans()).map((p) => ({ value: p.stage + 1, labels: { feature_flag_key: p.flag } }))),
      metric('rollgate_plan_state', 'The plan\'s state: 1 for the current one.', 'gauge', async () =>
        (await plans()).flatMap((p) => STATES.map((state) => ({ value: p.state === state ? 1 : 0, labels: { feature_flag_key: p.flag, state } }))),
      ),
      metric('rollgate_guard_evidence', 'E-value of each guard\'s sequential test (rolls back at guards / alpha).', 'gauge', async () =>
        (await plans()).flatMap((p) =>
          (p.evidence?.guards ?? []).map((g) => ({
            value: g.evidence,
            labels: { feature_flag_key: p.flag, guard: g.guard.metric === 'latency' ? `latency_p${Math.round(g.guard.quantile * 100)}` : g.guard.metric === 'event' ? `event:${g.guard.name}` : 'errors' },
          })),
        ),
      ),
    );
  }
  for (const m of metrics) registry.registerMetric(m as never);
  return () => {
    for (const m of metrics) registry.removeSingleMetric(m.name);
  };
}
