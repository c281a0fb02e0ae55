// The admin API's JSON, as the dashboard reads it (see @rollgate/server's AdminApi). Plans and
// explanations are the packages' own types; the rest is the wire format.

export type { Plan, GuardEvidence, GuardSpec, PlanState, Stage } from '../../../rollouts/src/plan';
export type { Explanation, ExplainStep } from '../../../core/src/types';
/** `GET /feedback/:flag`: users' feedback per variant (counts, negative share with its interval, latest comments as sent). */
export type { FeedbackSummary, FeedbackEntry, VariantFeedback } from '../../../rollouts/src/feedback';

export interface FlagDefinition {
  state: 'ENABLED' | 'DISABLED';
  variants: Record<string, unknown>;
  defaultVariant?: string | null;
  targeting?: unknown;
  metadata?: Record<string, unknown>;
}

/** One entry of `GET /audit`: newest first. */
export interface AuditEntry {
  id: string;
  version: number;
  /** ms since the epoch, on the server's clock. */
  time: number;
  actor: string;
  action: string;
  kind: 'flag' | 'evaluator' | 'plan';
  key: string;
  before: unknown;
  after: unknown;
  reason: string;
  writeId: string;
}

export interface SeriesArm {
  requests: number;
  errors: number;
  p95Ms: number | null;
  p99Ms: number | null;
}

/** `GET /plans/:flag/series`. */
export interface PlanSeries {
  flag: string;
  from: number;
  to: number;
  step: number;
  thresholds: { p95Ms: number; p99Ms: number } | null;
  points: { t: number; treatment: SeriesArm; control: SeriesArm; targeted: SeriesArm }[];
}
