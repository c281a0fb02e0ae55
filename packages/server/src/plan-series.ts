import { addCounts, bucketUpperMs, emptyCounts, quantileMs, type ArmCounts, type Plan, type Rollouts } from '@rollgate/rollouts';

// What the dashboard charts for a plan: per-arm requests, errors and p95/p99 over the last
// minutes, from the per-second buckets every instance writes, merged per step.

export interface SeriesArm {
  requests: number;
  errors: number;
  /** ms (an over-estimate by at most 25%); null without requests or beyond the histogram. */
  p95Ms: number | null;
  p99Ms: number | null;
}

export interface PlanSeries {
  flag: string;
  /** Epoch seconds, inclusive. */
  from: number;
  to: number;
  step: number;
  /** The frozen latency thresholds (ms), when the plan has them. */
  thresholds: { p95Ms: number; p99Ms: number } | null;
  points: { t: number; treatment: SeriesArm; control: SeriesArm; targeted: SeriesArm }[];
}

function integer(raw: string | undefined, fallback: number, min: number, max: number, name: string): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

function arm(c: ArmCounts): SeriesArm {
  const ms = (q: number) => {
    const v = quantileMs(c.histogram, q);
    return v === undefined || !Number.isFinite(v) ? null : v;
  };
  return { requests: c.requests, errors: c.errors, p95Ms: ms(0.95), p99Ms: ms(0.99) };
}

/** The last `seconds` (10 to 3600, default 600) complete seconds, in steps of `step` seconds (default: 120 points). */
export async function planSeries(rollouts: Rollouts, plan: Plan, secondsRaw: string | undefined, stepRaw: string | undefined): Promise<PlanSeries> {
  const seconds = integer(secondsRaw, 600, 10, 3600, 'seconds');
  const step = integer(stepRaw, Math.max(1, Math.ceil(seconds / 120)), Math.max(1, Math.ceil(seconds / 720)), seconds, 'step');
  const to = Math.floor(rollouts.now() / 1000) - 1; // the second in progress is not complete
  const from = to - seconds + 1;
  const perSecond = await rollouts.outcomes.seconds(plan.flag, from, to);
  const names = { treatment: `split:${plan.treatment}`, control: `split:${plan.control}`, targeted: `targeted:${plan.treatment}` } as const;
  const points: PlanSeries['points'] = [];
  for (let start = from; start <= to; start += step) {
    const merged = { treatment: emptyCounts(), control: emptyCounts(), targeted: emptyCounts() };
    for (const { second, arms } of perSecond) {
      if (second < start || second >= start + step) continue;
      for (const k of ['treatment', 'control', 'targeted'] as const) {
        const c = arms.get(names[k]);
        if (c) addCounts(merged[k], c);
      }
    }
    points.push({ t: start, treatment: arm(merged.treatment), control: arm(merged.control), targeted: arm(merged.targeted) });
  }
  const thresholds = plan.thresholds ? { p95Ms: bucketUpperMs(plan.thresholds.p95), p99Ms: bucketUpperMs(plan.thresholds.p99) } : null;
  return { flag: plan.flag, from, to, step, thresholds, points };
}
