import { RedisFlagStore } from '@rollgate/redis';
import {
  bucketUpperMs,
  PlanConflictError,
  PlanStateError,
  PlanValidationError,
  quantileMs,
  Rollouts,
  type ActionOptions,
  type ArmSummary,
  type GuardSpec,
  type Plan,
  type PlanSpec,
  type StageSpec,
} from '@rollgate/rollouts';
import type { Command } from 'commander';
import { CommandContext, type CliDependencies } from '../context';
import { FileValidationError, UsageError } from '../errors';
import { parseJsonFile } from '../flag-file';
import { jsonPathOffsets, lineStarts, locatePath } from '../json-locate';
import { table } from '../output';
import { parseVersion, usage } from '../parsers';

// rollgate plan create|start|pause|resume|advance|approve|rollback|status|list — guarded rollout
// plans (@rollgate/rollouts) over the same audited write path as every other command. The
// RolloutController (`rollgate controller`) drives running plans; these commands are what people do.

// ---- parsing -------------------------------------------------------------------------------

const STAGES_EXAMPLE = '--stages 5:15m,20:30m,50:1h,100:1h';
const CREATE_EXAMPLE = `rollgate plan create fast-payment --treatment on --control off ${STAGES_EXAMPLE} --max-error-rate 0.05`;

/** A stage from `--stages`: percent and least time in it. */
export interface StageArg {
  percent: number;
  minDurationSec: number;
}

const DURATION_UNITS = { ms: 0.001, s: 1, m: 60, h: 3600 } as const;

/**
 * A duration: one or more `<number><unit>` groups (`15m`, `1h30m`, `90s`; `ms` too where `allowMs`),
 * or `0`. Returns seconds (fractional only with ms).
 */
export function parseDuration(text: string, what: string, example: string, allowMs = false): number {
  const t = text.trim();
  if (t === '0') return 0;
  const units = allowMs ? 'ms, s, m or h' : 's, m or h';
  if (/^\d+$/.test(t)) throw new UsageError(`${what}: "${text}" has no unit: write it with ${units}, e.g. ${example}`);
  const group = allowMs ? /(\d{1,9})(ms|h|m|s)/y : /(\d{1,9})(h|m|s)/y;
  let seconds = 0;
  let at = 0;
  const seen = new Set<string>();
  while (at < t.length) {
    group.lastIndex = at;
    const m = group.exec(t);
    if (!m || seen.has(m[2]!)) throw new UsageError(`${what}: "${text}" is not a duration (a number with ${units}: 90s, 15m, 1h30m), e.g. ${example}`);
    seen.add(m[2]!);
    seconds += Number(m[1]) * DURATION_UNITS[m[2] as keyof typeof DURATION_UNITS];
    at = group.lastIndex;
  }
  return seconds;
}

/** `--stages 5:15m,20:30m,50:1h,100:1h`: percent (0..100, a trailing % allowed) and optional least time. */
export function parseStages(text: string): StageArg[] {
  const items = text.split(',').map((s) => s.trim());
  if (text.trim() === '' || items.some((s) => s === '')) {
    throw new UsageError(`--stages: give the stages as <percent>:<min duration> separated by commas, with no empty item, e.g. ${STAGES_EXAMPLE}`);
  }
  if (items.length > 20) throw new UsageError(`--stages: at most 20 stages, got ${items.length}`);
  const stages: StageArg[] = [];
  for (const item of items) {
    const m = /^(\d{1,3})%?(?::(.*))?$/.exec(item);
    if (!m) throw new UsageError(`--stages: "${item}" is not <percent>:<min duration> (a whole percent 0-100, a duration with s, m or h), e.g. ${STAGES_EXAMPLE}`);
    const percent = Number(m[1]);
    if (percent > 100) throw new UsageError(`--stages: "${item}": a stage's percent is 0 to 100, got ${percent}`);
    const minDurationSec = m[2] === undefined ? 0 : parseDuration(m[2], `--stages: "${item}"`, '5:15m');
    if (minDurationSec > 30 * 86_400) throw new UsageError(`--stages: "${item}": a stage's min duration is at most 30 days`);
    const previous = stages[stages.length - 1];
    if (previous && percent <= previous.percent) {
      throw new UsageError(`--stages: ${percent}% after ${previous.percent}%: each stage must be above the one before (a plan only ramps up; rollback is its own command), e.g. ${STAGES_EXAMPLE}`);
    }
    stages.push({ percent, minDurationSec });
  }
  return stages;
}

/**
 * `--guards errors,p95,p99,event:payment.failed,clientErrors,feedback,value:checkout.completed`;
 * a value guard takes `:lower` / `:higher` (which is better, default lower) and a margin,
 * `value:checkout.completed:lower:10%` (a plan file says the rest: `unit`).
 */
export function parseGuards(text: string): GuardSpec[] {
  const example = '--guards errors,p99,event:payment.failed';
  const kinds = 'errors, p95, p99, event:<name>, clientErrors, feedback or value:<name>[:lower|:higher[:<margin>]]';
  const guards: GuardSpec[] = [];
  const seen = new Set<string>();
  for (const raw of text.split(',')) {
    const item = raw.trim();
    let guard: GuardSpec;
    let identity = item;
    if (item === 'errors' || item === 'clientErrors' || item === 'feedback') guard = { metric: item };
    else if (item === 'p95' || item === 'p99') guard = { metric: 'latency', quantile: item === 'p95' ? 0.95 : 0.99 };
    else if (item.startsWith('event:') && item.length > 'event:'.length) guard = { metric: 'event', name: item.slice('event:'.length) };
    else if (item.startsWith('value:') && item.length > 'value:'.length) {
      guard = parseValueGuard(item, example);
      identity = `value:${guard.name}`;
    } else throw new UsageError(`--guards: ${item === '' ? 'empty item' : `unknown guard "${item}"`}: each guard is ${kinds}, e.g. ${example}`);
    if (seen.has(identity)) throw new UsageError(`--guards: "${identity}" is given twice`);
    seen.add(identity);
    guards.push(guard);
  }
  if (guards.length > 10) throw new UsageError('--guards: at most 10 guards');
  return guards;
}

/** `value:<name>[:lower|:higher[:<margin>]]`: a name with ':' in it needs a plan file (`--file`). */
function parseValueGuard(item: string, example: string): Extract<GuardSpec, { metric: 'value' }> {
  const [, name, better, margin, ...rest] = item.split(':');
  const usage = `--guards: "${item}": a value guard is value:<event name>[:lower|:higher[:<margin>]], e.g. value:checkout.completed:lower:10% (${example})`;
  if (name === undefined || name === '' || rest.length > 0 || (better !== undefined && better !== 'lower' && better !== 'higher')) throw new UsageError(usage);
  const guard: Extract<GuardSpec, { metric: 'value' }> = { metric: 'value', name, better: better ?? 'lower' };
  if (margin !== undefined) {
    const m = /^(\d+(?:\.\d+)?|\.\d+)(%?)$/.exec(margin);
    const value = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
    if (!(value >= 0 && value < 1)) throw new UsageError(`${usage}; the margin is a share from 0 to below 1, as 0.1 or 10%`);
    guard.margin = value;
  }
  return guard;
}

/** A share from 0 (excluded) to 1: `0.05` or `5%`. */
export function parseRate(option: string, text: string): number {
  const t = text.trim();
  const m = /^(\d+(?:\.\d+)?|\.\d+)(%?)$/.exec(t);
  const value = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
  if (!(value > 0 && value <= 1)) throw new UsageError(`${option}: expected a rate above 0 and at most 1, as 0.05 or 5%, got ${JSON.stringify(text)}`);
  return value;
}

export function parseAlpha(text: string): number {
  const t = text.trim();
  const value = /^(\d+(?:\.\d+)?|\.\d+)$/.test(t) ? Number(t) : NaN;
  if (!(value > 0 && value <= 0.5)) throw new UsageError(`--alpha: expected the chance of rolling back a healthy treatment, above 0 and at most 0.5 (e.g. --alpha 0.05), got ${JSON.stringify(text)}`);
  return value;
}

/** A latency limit in ms: `800`, `800ms` or `2s`. */
export function parseLatencyMs(option: string, text: string): number {
  const t = text.trim();
  const ms = /^\d{1,9}$/.test(t) ? Number(t) : Math.round(1000 * parseDuration(t, option, `${option} 800`, true));
  if (!(ms >= 1 && ms <= 3_600_000)) throw new UsageError(`${option}: expected a latency from 1 ms to 1 h, as 800 (ms), 800ms or 2s, got ${JSON.stringify(text)}`);
  return ms;
}

export function parseWhole(option: string, text: string): number {
  if (!/^\d{1,10}$/.test(text.trim()) || Number(text) > 1e9) throw new UsageError(`${option}: expected a whole number from 0 to 1000000000, got ${JSON.stringify(text)}`);
  return Number(text.trim());
}

/** `--approval 2,3`: stage numbers, 1-based. */
export function parseStageNumbers(text: string): number[] {
  const items = text.split(',').map((s) => s.trim());
  if (items.some((s) => !/^\d{1,2}$/.test(s) || Number(s) < 1)) {
    throw new UsageError(`--approval: expected stage numbers (1 is the first stage) separated by commas, e.g. --approval 2,3, got ${JSON.stringify(text)}`);
  }
  return [...new Set(items.map(Number))].sort((a, b) => a - b);
}

interface CreateOptions {
  file?: string;
  treatment?: string;
  control?: string;
  stages?: StageArg[];
  minRequests?: number;
  minUnits?: number;
  guards?: GuardSpec[];
  alpha?: number;
  approval?: number[];
  maxErrorRate?: number;
  maxP99Ms?: number;
  pilotMaxErrorRate?: number;
  pilotMaxP99Ms?: number;
  expectedPlanVersion?: number;
}

const SPEC_OPTIONS: [keyof CreateOptions, string][] = [
  ['treatment', '--treatment'],
  ['control', '--control'],
  ['stages', '--stages'],
  ['minRequests', '--min-requests'],
  ['minUnits', '--min-units'],
  ['guards', '--guards'],
  ['alpha', '--alpha'],
  ['approval', '--approval'],
  ['maxErrorRate', '--max-error-rate'],
  ['maxP99Ms', '--max-p99-ms'],
  ['pilotMaxErrorRate', '--pilot-max-error-rate'],
  ['pilotMaxP99Ms', '--pilot-max-p99-ms'],
];

/** The PlanSpec that `plan create <flag> --treatment … --stages …` describes (UsageError naming the option). */
export function specFromOptions(flag: string | undefined, opts: CreateOptions): PlanSpec {
  const missing = [
    ...(flag === undefined ? ['<flag>'] : []),
    ...(opts.treatment === undefined ? ['--treatment'] : []),
    ...(opts.control === undefined ? ['--control'] : []),
    ...(opts.stages === undefined ? ['--stages'] : []),
  ];
  if (missing.length > 0) throw new UsageError(`plan create needs ${missing.join(', ')} (or --file plan.json), e.g. ${CREATE_EXAMPLE}`);
  const stages = opts.stages!;
  const n = stages.length;
  const pilot = stages[0]!.percent === 0;
  const bake = stages[n - 1]!.percent === 100;
  if ((opts.maxErrorRate !== undefined || opts.maxP99Ms !== undefined) && !pilot && !bake) {
    throw new UsageError(`--max-error-rate and --max-p99-ms guard the 0% and 100% stages, and --stages has neither (${stages.map((s) => `${s.percent}%`).join(', ')})`);
  }
  if ((opts.pilotMaxErrorRate !== undefined || opts.pilotMaxP99Ms !== undefined) && !pilot) {
    throw new UsageError('--pilot-max-error-rate and --pilot-max-p99-ms guard a pilot stage (0%, first in --stages), and --stages has none');
  }
  for (const s of opts.approval ?? []) {
    if (s > n) throw new UsageError(`--approval: there is no stage ${s}: --stages has ${n} stage${n === 1 ? '' : 's'} (numbered from 1)`);
  }
  const limits = (maxErrorRate: number | undefined, maxP99Ms: number | undefined) => ({
    ...(maxErrorRate !== undefined ? { maxErrorRate } : {}),
    ...(maxP99Ms !== undefined ? { maxP99Ms } : {}),
  });
  const outs: StageSpec[] = stages.map((stage, i) => {
    const out: StageSpec = { percent: stage.percent, minDurationSec: stage.minDurationSec };
    if (opts.minRequests !== undefined) out.minRequests = opts.minRequests;
    if (opts.minUnits !== undefined) out.minUnits = opts.minUnits;
    if (opts.approval?.includes(i + 1)) out.approval = true;
    if (stage.percent === 0 || stage.percent === 100) {
      const absolute =
        stage.percent === 0 ? limits(opts.pilotMaxErrorRate ?? opts.maxErrorRate, opts.pilotMaxP99Ms ?? opts.maxP99Ms) : limits(opts.maxErrorRate, opts.maxP99Ms);
      if (Object.keys(absolute).length === 0) {
        throw new UsageError(
          stage.percent === 0
            ? `stage ${i + 1} (0%) is a pilot stage: only targeting rules serve the treatment there, so nothing is randomized to compare with; ` +
                'give it absolute limits with --pilot-max-error-rate and/or --pilot-max-p99-ms (or --max-error-rate / --max-p99-ms, which also guard the 100% stage), e.g. --pilot-max-error-rate 0.02'
            : `stage ${i + 1} (100%) has no control left to compare with; give it absolute limits with --max-error-rate and/or --max-p99-ms, e.g. --max-error-rate 0.05 --max-p99-ms 800`,
        );
      }
      out.absolute = absolute;
    }
    return out;
  });
  const spec: PlanSpec = { flag: flag!, treatment: opts.treatment!, control: opts.control!, stages: outs };
  if (opts.guards) spec.guards = opts.guards;
  if (opts.alpha !== undefined) spec.alpha = opts.alpha;
  return spec;
}

/** A plan file's JSON (FileValidationError with the line and column when it is not JSON). */
export function parsePlanFile(file: string, input: string): Record<string, unknown> {
  const { parsed } = parseJsonFile(file, input);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new FileValidationError(file, [{ path: '', message: 'must be a JSON object (a plan: { "flag", "treatment", "control", "stages": [...] })', line: 1 }]);
  }
  return parsed as Record<string, unknown>;
}

/** A plan validation error about a file, with the line its path points at (`stages[1].percent: …`). */
function locatePlanError(error: PlanValidationError, file: string, text: string): PlanValidationError {
  const path = /^([A-Za-z_$][\w$]*(?:\[\d+\]|\.[A-Za-z_$][\w$]*)*): /.exec(error.message)?.[1];
  const pos = path === undefined ? undefined : locatePath(lineStarts(text), jsonPathOffsets(text), path);
  return new PlanValidationError(`${file}${pos ? `:${pos.line}` : ''}: ${error.message}`, { cause: error });
}

// ---- errors ----------------------------------------------------------------------------------

/** Opens the store (a RedisFlagStore: plans live in Redis) and runs `fn` with Rollouts over it. */
export async function withRollouts<T>(ctx: CommandContext, fn: (rollouts: Rollouts, store: RedisFlagStore) => Promise<T>, extra: { pollIntervalMs?: number } = {}): Promise<T> {
  return ctx.withStore(async (store) => {
    if (!(store instanceof RedisFlagStore)) throw new UsageError('rollout plans live in Redis: this command needs a Redis store (--redis <url>)');
    return fn(new Rollouts({ store }), store);
  }, extra);
}

// ---- views -----------------------------------------------------------------------------------

function pct(x: number): string {
  return `${(100 * x).toFixed(x < 0.01 ? 2 : 1)}%`;
}

/** Whole seconds as the shortest exact words: `90 s`, `15 min`, `1 h`, `1 h 30 min`. */
export function durationWords(sec: number): string {
  if (sec === 0) return '0';
  if (sec % 60 !== 0) return sec < 120 ? `${sec} s` : `${Math.floor(sec / 60)} min ${sec % 60} s`;
  const min = sec / 60;
  if (min < 60 || min % 60 !== 0) return min >= 60 && min % 60 !== 0 ? `${Math.floor(min / 60)} h ${min % 60} min` : `${min} min`;
  return `${min / 60} h`;
}

function iso(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '–' : new Date(ms).toISOString();
}

function guardName(guard: GuardSpec): string {
  switch (guard.metric) {
    case 'errors':
      return 'errors';
    case 'latency':
      return `p${Math.round(guard.quantile * 100)} latency`;
    case 'event':
      return `event ${guard.name}`;
    case 'clientErrors':
      return 'page errors';
    case 'feedback':
      return 'negative feedback';
    case 'value':
      return `value ${guard.name}`;
  }
}

function limitsWords(stage: Plan['stages'][number]): string {
  const a = stage.absolute;
  if (!a) return '';
  return [a.maxErrorRate !== undefined ? `error rate ≤ ${pct(a.maxErrorRate)}` : '', a.maxP99Ms !== undefined ? `p99 ≤ ${a.maxP99Ms} ms` : ''].filter(Boolean).join(', ');
}

export type StageStatus = 'done' | 'current' | 'next' | 'rolled_back' | 'not_reached';

export interface ArmView {
  requests: number;
  errors: number;
  errorRate: number | null;
  /** From the histogram (an over-estimate by at most 25%); null when empty or beyond its last bucket. */
  p99Ms: number | null;
  units: number;
}

/** What `plan status --json` prints: the plan and what it means. */
export interface PlanStatusView {
  env: string;
  flag: string;
  state: Plan['state'];
  /** 1-based. */
  stage: number;
  /** The split percent the plan has set the flag to (0 once rolled back); null for a draft. */
  percent: number | null;
  holdReason: string | null;
  stages: { number: number; percent: number; minDurationSec: number; minRequests: number; minUnits: number; approval: boolean; approved: boolean; absolute: Plan['stages'][number]['absolute'] | null; status: StageStatus }[];
  /** Evidence needed to roll back on one guard: guards / alpha. */
  evidenceThreshold: number;
  guards: {
    guard: GuardSpec;
    name: string;
    control: { n: number; bad: number; rate: number | null };
    treatment: { n: number; bad: number; rate: number | null };
    evidence: number;
    threshold: number;
    ratioLowerBound: number;
    regressed: boolean;
    /** A value guard's comparison in words (its counts are values, not bad ones). */
    words?: string;
  }[];
  /** The current stage's arms; `pilot` is the treatment served by targeting rules. */
  arms: { treatment: ArmView; control: ArmView; pilot: ArmView } | null;
  latencyThresholdsMs: { p95: number | null; p99: number | null; from: 'baseline' | 'control' } | null;
  plan: Plan;
}

function finite(x: number | undefined): number | null {
  return x === undefined || !Number.isFinite(x) ? null : x;
}

function armView(a: ArmSummary): ArmView {
  return { requests: a.requests, errors: a.errors, errorRate: a.requests > 0 ? a.errors / a.requests : null, p99Ms: finite(quantileMs(a.histogram, 0.99)), units: a.units };
}

function stageStatus(plan: Plan, i: number): StageStatus {
  switch (plan.state) {
    case 'draft':
      return 'next';
    case 'completed':
      return 'done';
    case 'rolled_back':
      return i < plan.stage ? 'done' : i === plan.stage ? 'rolled_back' : 'not_reached';
    default:
      return i < plan.stage ? 'done' : i === plan.stage ? 'current' : 'next';
  }
}

export function statusView(env: string, plan: Plan): PlanStatusView {
  const threshold = plan.guards.length / plan.alpha;
  const rate = (c: { n: number; bad: number }) => ({ n: c.n, bad: c.bad, rate: c.n > 0 ? c.bad / c.n : null });
  const guards = plan.guards.map((guard, i) => {
    const g = plan.evidence?.guards[i];
    const fresh = !g || JSON.stringify(g.guard) !== JSON.stringify(guard);
    return {
      guard,
      name: guardName(guard),
      control: rate(fresh ? { n: 0, bad: 0 } : g.control),
      treatment: rate(fresh ? { n: 0, bad: 0 } : g.treatment),
      evidence: fresh ? 1 : g.evidence,
      threshold,
      ratioLowerBound: fresh ? 0 : g.ratioLowerBound,
      regressed: fresh ? false : g.regressed,
      ...(!fresh && g.words !== undefined ? { words: g.words } : {}),
    };
  });
  const s = plan.evidence?.stage;
  return {
    env,
    flag: plan.flag,
    state: plan.state,
    stage: plan.stage + 1,
    percent: plan.state === 'draft' ? null : plan.state === 'rolled_back' ? 0 : plan.stages[plan.stage]!.percent,
    holdReason: plan.holdReason,
    stages: plan.stages.map((stage, i) => ({
      number: i + 1,
      percent: stage.percent,
      minDurationSec: stage.minDurationSec,
      minRequests: stage.minRequests,
      minUnits: stage.minUnits,
      approval: stage.approval,
      approved: plan.approvedStages.includes(i),
      absolute: stage.absolute ?? null,
      status: stageStatus(plan, i),
    })),
    evidenceThreshold: threshold,
    guards,
    arms: s ? { treatment: armView(s.treatment), control: armView(s.control), pilot: armView(s.targeted) } : null,
    latencyThresholdsMs: plan.thresholds
      ? { p95: finite(plan.thresholds.p95 < 0 ? undefined : bucketUpperMs(plan.thresholds.p95)), p99: finite(plan.thresholds.p99 < 0 ? undefined : bucketUpperMs(plan.thresholds.p99)), from: plan.thresholds.from }
      : null,
    plan,
  };
}

function msWords(ms: number | null, empty: boolean): string {
  if (ms !== null) return `${ms < 10 ? ms.toFixed(1) : ms.toFixed(0)} ms`;
  return empty ? '–' : `> ${(bucketUpperMs(49) / 1000).toFixed(0)} s`;
}

function countRate(bad: number, n: number): string {
  return n === 0 ? '0/0' : `${bad}/${n} (${pct(bad / n)})`;
}

/** One line per stage: where the plan is, as a phrase. */
function stageWhere(plan: Plan): string {
  const stage = plan.stages[plan.stage]!;
  return `stage ${plan.stage + 1}/${plan.stages.length} (${stage.percent}%)`;
}

/** `plan status` for people. */
export function statusLines(view: PlanStatusView): string[] {
  const plan = view.plan;
  const lines: string[] = [];
  const state = plan.state === 'rolled_back' ? 'rolled back' : plan.state;
  lines.push(`plan of "${plan.flag}" (env "${view.env}"): ${state}, ${stageWhere(plan)}${view.percent === null ? '' : `, split ${view.percent}% "${plan.treatment}"`} (plan version ${plan.planVersion})`);
  lines.push(
    `  treatment "${plan.treatment}" vs control "${plan.control}"; guards ${plan.guards.map(guardName).join(', ')}; alpha ${plan.alpha}; created ${iso(plan.created.at)} by ${plan.created.actor}` +
      (plan.startedAt !== null ? `; started ${iso(plan.startedAt)}` : ''),
  );
  if (plan.state === 'running' || plan.state === 'paused') {
    if (plan.holdReason) lines.push(`holding: ${plan.holdReason}`);
    else if (plan.evidence === null) lines.push('holding: no evidence yet — the controller has not looked at this plan (is `rollgate controller` running?)');
    else lines.push('holding: nothing — it advances on the controller\'s next tick');
  } else if (plan.state === 'draft') {
    lines.push(`draft: start it with \`rollgate plan start ${plan.flag}\``);
  }
  if (plan.last) lines.push(`last: ${plan.last.action} by ${plan.last.actor} at ${iso(plan.last.at)}${plan.last.reason ? `: ${plan.last.reason}` : ''}`);
  lines.push('stages:');
  const stageWords: Record<StageStatus, string> = { done: 'done', current: 'current', next: 'next', rolled_back: 'rolled back here', not_reached: 'not reached' };
  lines.push(
    ...table([
      ['#', 'SPLIT', 'MIN TIME', 'MIN REQUESTS', 'MIN UNITS', 'STATUS', 'NOTES'],
      ...view.stages.map((s) => {
        const notes = [
          s.approval ? (s.approved ? 'approval: given' : 'approval: needed') : '',
          limitsWords(plan.stages[s.number - 1]!) ? `limits: ${limitsWords(plan.stages[s.number - 1]!)}` : '',
          s.status === 'current' || s.status === 'rolled_back' ? `since ${iso(plan.stageEnteredAt)}` : '',
        ].filter(Boolean);
        return [String(s.number), `${s.percent}%`, durationWords(s.minDurationSec), String(s.minRequests), String(s.minUnits), stageWords[s.status], notes.join('; ')];
      }),
    ]).map((line) => `  ${line}`),
  );
  lines.push(`guards (roll back when evidence ≥ ${fmtEvidence(view.evidenceThreshold)} = ${plan.guards.length} guard${plan.guards.length === 1 ? '' : 's'} / alpha ${plan.alpha}):`);
  lines.push(
    ...table([
      ['GUARD', 'CONTROL BAD', 'TREATMENT BAD', 'EVIDENCE', 'RATIO ≥', ''],
      ...view.guards.map((g) => {
        const value = g.guard.metric === 'value';
        return [
          g.name,
          value ? `${g.control.n} values` : countRate(g.control.bad, g.control.n),
          value ? `${g.treatment.n} values` : countRate(g.treatment.bad, g.treatment.n),
          `${fmtEvidence(g.evidence)} / ${fmtEvidence(g.threshold)}`,
          value ? '–' : `${g.ratioLowerBound.toFixed(2)}×`,
          g.regressed ? 'REGRESSED' : '',
        ];
      }),
    ]).map((line) => `  ${line}`),
  );
  for (const g of view.guards) if (g.words !== undefined) lines.push(`  ${g.words}`);
  if (view.latencyThresholdsMs) {
    const t = view.latencyThresholdsMs;
    lines.push(`  latency thresholds: p95 ${msWords(t.p95, false)}, p99 ${msWords(t.p99, false)} (frozen from the ${t.from === 'baseline' ? 'control before the start' : 'control arm'})`);
  } else if (plan.guards.some((g) => g.metric === 'latency')) {
    lines.push('  latency thresholds: not frozen yet (they come from the control\'s traffic)');
  }
  if (view.arms) {
    lines.push(`current stage ${plan.stage + 1}/${plan.stages.length} (${plan.stages[plan.stage]!.percent}%), per arm:`);
    const rows = [
      ['ARM', 'REQUESTS', 'ERRORS', 'P99', 'UNITS'],
      ...(
        [
          ['treatment', view.arms.treatment],
          ['control', view.arms.control],
          ...(view.arms.pilot.requests > 0 ? [['pilot', view.arms.pilot] as const] : []),
        ] as const
      ).map(([name, a]) => [name, String(a.requests), a.requests ? `${a.errors} (${pct(a.errors / a.requests)})` : '0', msWords(a.p99Ms, a.requests === 0), String(a.units)]),
    ];
    lines.push(...table(rows).map((line) => `  ${line}`));
  }
  return lines;
}

function fmtEvidence(x: number): string {
  if (!Number.isFinite(x) || Number.isInteger(x)) return String(x);
  return x >= 100 ? x.toFixed(0) : x.toFixed(x >= 10 ? 1 : 2);
}

// ---- commands --------------------------------------------------------------------------------

const PLAN_VERSION_HELP = 'act only if the plan is still at this plan version (else exit 4, nothing written)';

function actionOptions(ctx: CommandContext, expectedPlanVersion: number | undefined): ActionOptions {
  const options: ActionOptions = { actor: ctx.actor() };
  if (ctx.options.reason !== undefined && ctx.options.reason !== '') options.reason = ctx.options.reason;
  if (expectedPlanVersion !== undefined) options.expectedPlanVersion = expectedPlanVersion;
  return options;
}

function refuseWriteId(ctx: CommandContext): void {
  if (ctx.options.writeId !== undefined) {
    throw new UsageError('plan commands do not take --write-id: plan writes are compare-and-set on the plan version; check `rollgate plan status <flag>` and re-run, or pin with --expected-plan-version');
  }
}

/** Warns when no controller holds the environment's lease: nothing would advance or roll back the plan. */
async function warnWithoutController(ctx: CommandContext, store: RedisFlagStore): Promise<void> {
  try {
    if ((await store.connection.exists(store.keys.lease)) === 0) {
      ctx.out.warn(`no rollout controller is running in env "${ctx.env}" (none holds its lease): the plan neither advances nor rolls back by itself until one runs (rollgate controller --env ${ctx.env})`);
    }
  } catch {
    // a hint only
  }
}

type ActionName = 'start' | 'pause' | 'resume' | 'advance' | 'approve' | 'rollback';

const ACTIONS: { name: ActionName; description: string; help: string }[] = [
  {
    name: 'start',
    description: "start a draft plan: freezes the latency thresholds from the control's recent traffic and sets the first stage's split",
    help: 'The flag\'s split is set to the first stage\'s percent in one audited flag write. A running controller (`rollgate controller`) then advances the plan stage by stage while the treatment is healthy and rolls it back when it regresses.',
  },
  {
    name: 'pause',
    description: 'pause a running plan: the controller leaves it (and the split) alone until resume',
    help: 'The split stays where it is; the evidence so far is kept. --reason is shown as the hold reason.',
  },
  {
    name: 'resume',
    description: 'resume a paused plan; a split changed meanwhile is put back to the stage\'s',
    help: 'The evidence carries on from where it was.',
  },
  {
    name: 'advance',
    description: 'move to the next stage now, whatever the checks say (audited as a manual advance); completes after the last',
    help: 'The next stage\'s split is set at once; its counts start afresh.',
  },
  {
    name: 'approve',
    description: 'approve the current stage (one that needs approval): the controller advances it once it is healthy',
    help: 'Approval does not skip the checks: the stage still needs its time, requests, units and a healthy treatment.',
  },
  {
    name: 'rollback',
    description: 'roll the plan back: the control is served to everyone in the split, in one flag write; the plan ends',
    help: 'Targeting rules before the split (pilot groups) keep matching. A rolled-back plan can be replaced with `plan create`.',
  },
];

function actionLine(action: ActionName, plan: Plan): string {
  const where = stageWhere(plan);
  const v = `(plan version ${plan.planVersion})`;
  switch (action) {
    case 'start':
      return `${plan.flag}: plan started at ${where}: split set to ${plan.stages[0]!.percent}% "${plan.treatment}" ${v}`;
    case 'pause':
      return `${plan.flag}: plan paused at ${where}; the split stays at ${plan.stages[plan.stage]!.percent}% ${v}`;
    case 'resume':
      return `${plan.flag}: plan resumed at ${where} ${v}`;
    case 'advance':
      return plan.state === 'completed'
        ? `${plan.flag}: plan completed at ${where} ${v}`
        : `${plan.flag}: advanced to ${where}: split set to ${plan.stages[plan.stage]!.percent}% "${plan.treatment}"${plan.state === 'paused' ? ' (the plan stays paused)' : ''} ${v}`;
    case 'approve':
      return `${plan.flag}: ${where} approved: the controller advances it once it is healthy ${v}`;
    case 'rollback':
      return `${plan.flag}: plan rolled back at ${where}: the split serves "${plan.control}" to everyone in it (0% "${plan.treatment}") ${v}`;
  }
}

function planListLine(plan: Plan): string[] {
  const state = plan.state === 'rolled_back' ? 'rolled back' : plan.state;
  const note = plan.state === 'running' || plan.state === 'paused' ? (plan.holdReason ?? '') : plan.state === 'draft' ? '' : (plan.last?.reason ?? '');
  return [plan.flag, state, stageWhere(plan), `"${plan.treatment}" vs "${plan.control}"`, plan.stages.map((s) => `${s.percent}`).join('→') + '%', String(plan.planVersion), note];
}

/** Re-prints a plan's status on every change (pub/sub, and a check every second) until SIGINT/SIGTERM. */
async function watchStatus(ctx: CommandContext, deps: CliDependencies, flag: string): Promise<void> {
  const stop = deps.waitForStop();
  try {
    await withRollouts(
      ctx,
      async (rollouts) => {
        const print = (p: Plan) => {
          const view = statusView(ctx.env, p);
          if (ctx.out.json) ctx.out.record(view, '');
          else ctx.out.result(view, () => statusLines(view));
        };
        // a watcher may start before the plan exists (or after it was removed): it waits for one
        let plan = await rollouts.plans.get(flag);
        if (plan) print(plan);
        else ctx.out.warn(`flag "${flag}" has no rollout plan yet; waiting for one`);
        ctx.out.status({ status: 'watching', env: ctx.env, flag, planVersion: plan?.planVersion ?? 0 }, `watching the plan of "${flag}" in env "${ctx.env}" (Ctrl-C to stop)`);
        let stopped = false;
        let failing = false;
        let chain = Promise.resolve();
        const check = () => {
          chain = chain.then(async () => {
            if (stopped) return;
            let next: Plan | undefined;
            try {
              next = await rollouts.plans.get(flag);
            } catch (e) {
              if (!failing) ctx.out.status({ status: 'unavailable', message: (e as Error).message }, `Redis unreachable (${(e as Error).message}); waiting for it to come back`);
              failing = true;
              return;
            }
            if (failing) ctx.out.status({ status: 'available' }, 'Redis is reachable again');
            failing = false;
            if (next === undefined) {
              if (plan) ctx.out.warn(`the plan of "${flag}" was removed; waiting for a new one`);
              plan = undefined;
              return;
            }
            if (plan && next.planVersion === plan.planVersion && next.id === plan.id) return;
            const first = plan === undefined;
            plan = next;
            if (!ctx.out.json && !first) ctx.deps.io.stdout('\n');
            print(plan);
          });
        };
        // every plan write is announced; the periodic check covers a lost announcement
        const unwatch = rollouts.watchPlans((changed) => {
          if (changed === flag) check();
        });
        const timer = setInterval(check, 1000);
        try {
          await stop.promise;
        } finally {
          stopped = true;
          clearInterval(timer);
          unwatch();
          await chain;
        }
        ctx.out.info('stopped');
      },
      { pollIntervalMs: 60_000 },
    );
  } finally {
    stop.dispose();
  }
}

export function registerPlan(program: Command, deps: CliDependencies): void {
  const plan = program
    .command('plan')
    .description('guarded rollout plans: ramp a flag stage by stage (5% → 20% → 50% → 100%) while the treatment is healthy, roll back when it regresses')
    .addHelpText('after', '\nA running `rollgate controller` drives the plans. Run `rollgate plan <command> --help` for each command.');

  plan
    .command('create')
    .description('create a draft plan for a flag (replacing a finished one); `plan start` starts it')
    .argument('[flag]', 'flag key (with --file: taken from the file when left out)')
    .option('--file <path>', 'the whole plan as JSON (a PlanSpec; - reads stdin) instead of the options below')
    .option('--treatment <variant>', 'the variant being rolled out')
    .option('--control <variant>', 'the variant it is compared with (the rest of the split)')
    .option('--stages <list>', `<percent>:<min duration>,… (s, m, h), e.g. ${STAGES_EXAMPLE}`, usage(parseStages))
    .option('--min-requests <n>', 'least requests per arm before a stage advances (every stage; default 100)', usage((t: string) => parseWhole('--min-requests', t)))
    .option('--min-units <n>', 'least distinct units per arm before a stage advances (every stage; default 10)', usage((t: string) => parseWhole('--min-units', t)))
    .option('--guards <list>', 'health checks: errors, p95, p99, event:<name>, clientErrors, feedback, value:<name>[:lower|:higher[:<margin>]] (default errors,p99; a plan file sets the rest)', usage(parseGuards))
    .option('--alpha <x>', 'chance of rolling back a healthy treatment over the whole plan, split across guards (default 0.05)', usage(parseAlpha))
    .option('--approval <stages>', 'stage numbers (from 1) that need `plan approve` before they advance, e.g. 2,3', usage(parseStageNumbers))
    .option('--max-error-rate <rate>', 'absolute limit for the 0% and 100% stages (no randomized control there): 0.05 or 5%', usage((t: string) => parseRate('--max-error-rate', t)))
    .option('--max-p99-ms <ms>', 'absolute p99 limit for the 0% and 100% stages: 800, 800ms or 2s', usage((t: string) => parseLatencyMs('--max-p99-ms', t)))
    .option('--pilot-max-error-rate <rate>', 'absolute error-rate limit for the 0% (pilot) stage only', usage((t: string) => parseRate('--pilot-max-error-rate', t)))
    .option('--pilot-max-p99-ms <ms>', 'absolute p99 limit for the 0% (pilot) stage only', usage((t: string) => parseLatencyMs('--pilot-max-p99-ms', t)))
    .option('--expected-plan-version <n>', PLAN_VERSION_HELP, parseVersion)
    .addHelpText(
      'after',
      `
Stages: <percent>:<min duration>, comma separated, each above the one before; the duration is
the least time in the stage (s, m, h: 90s, 15m, 1h30m; left out: none). A stage advances once it
has its time, --min-requests and --min-units in each arm, a healthy treatment on every guard (and
approval where --approval asks for it). A 0% stage is a pilot (only targeting rules serve the
treatment) and 100% has no control left: both need absolute limits (--max-error-rate and/or
--max-p99-ms; --pilot-* override them for the pilot stage).
The file form takes every field of a plan (breaker, noDataHoldSec, baselineSec, per-stage
settings): see docs/cli.md.

Examples:
  ${CREATE_EXAMPLE}
  rollgate plan create fast-payment --treatment on --control off --stages 0:1h,5:15m,20:30m,100:1h \\
      --pilot-max-error-rate 0.02 --max-error-rate 0.05 --max-p99-ms 800 --guards errors,p99,event:payment.failed --approval 3
  rollgate plan create --file plan.json`,
    )
    .action(async (flag: string | undefined, opts: CreateOptions, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      refuseWriteId(ctx);
      const options = actionOptions(ctx, opts.expectedPlanVersion);
      let spec: unknown;
      let source: { file: string; text: string } | undefined;
      if (opts.file !== undefined) {
        const given = SPEC_OPTIONS.filter(([key]) => opts[key] !== undefined).map(([, name]) => name);
        if (given.length > 0) throw new UsageError(`--file gives the whole plan: leave out ${given.join(', ')} (or edit the file)`);
        const text = await deps.readFile(opts.file);
        const file = opts.file === '-' ? '(stdin)' : opts.file;
        const parsed = parsePlanFile(file, text);
        if (flag !== undefined) {
          if (parsed.flag === undefined) parsed.flag = flag;
          else if (parsed.flag !== flag) throw new UsageError(`the file's plan is for flag ${JSON.stringify(parsed.flag)}, not "${flag}": leave the flag out, or fix the file`);
        }
        spec = parsed;
        source = { file, text };
      } else {
        spec = specFromOptions(flag, opts);
      }
      await withRollouts(ctx, async (rollouts) => {
        let created: Plan;
        try {
          created = await rollouts.create(spec, options);
        } catch (e) {
          if (e instanceof PlanValidationError && source) throw locatePlanError(e, source.file, source.text);
          throw e;
        }
        ctx.out.result(created, () =>
          `${created.flag}: plan created (draft): ${created.stages.map((s) => `${s.percent}%`).join(' → ')}, treatment "${created.treatment}" vs control "${created.control}", guards ${created.guards.map(guardName).join(', ')} (plan version ${created.planVersion}); start it with \`rollgate plan start ${created.flag}\``,
        );
      });
    });

  for (const { name, description, help } of ACTIONS) {
    plan
      .command(name)
      .description(description)
      .argument('<flag>', 'flag key')
      .option('--expected-plan-version <n>', PLAN_VERSION_HELP, parseVersion)
      .addHelpText('after', `\n${help}\nWith --json, prints the plan as stored.\n\nExample:\n  rollgate plan ${name} fast-payment --env prod --reason "…"`)
      .action(async (flag: string, opts: { expectedPlanVersion?: number }, cmd: Command) => {
        const ctx = CommandContext.of(cmd, deps);
        refuseWriteId(ctx);
        const options = actionOptions(ctx, opts.expectedPlanVersion);
        await withRollouts(ctx, async (rollouts, store) => {
          const result = await rollouts[name](flag, options);
          if ((name === 'start' || name === 'resume') && result.state === 'running') await warnWithoutController(ctx, store);
          ctx.out.result(result, () => actionLine(name, result));
        });
      });
  }

  plan
    .command('status')
    .description("a plan's stages, state, why it holds, each guard's evidence and the current stage's counts")
    .argument('<flag>', 'flag key')
    .option('--watch', 'print it again on every change of the plan, until Ctrl-C')
    .addHelpText(
      'after',
      `
Guards: the bad requests of each arm seen by the sequential test (errors; requests slower than
the control's frozen p95/p99; tracked events), the evidence against the treatment and the level
at which the plan rolls back (guards / alpha), and a lower bound on the bad-rate ratio.
Current stage: requests, errors, p99 (from the latency histogram: at most 25% high) and distinct
units per arm. --watch re-prints on every plan change (--json: one JSON object per line) and
exits 0 on SIGINT or SIGTERM.

Example:
  rollgate plan status fast-payment --env prod --watch`,
    )
    .action(async (flag: string, opts: { watch?: boolean }, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      if (opts.watch) return watchStatus(ctx, deps, flag);
      await withRollouts(ctx, async (rollouts) => {
        const view = statusView(ctx.env, await rollouts.get(flag));
        ctx.out.result(view, () => statusLines(view));
      });
    });

  plan
    .command('list')
    .description('one line per plan: state, stage, treatment vs control, why it holds')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      await withRollouts(ctx, async (rollouts) => {
        const plans = await rollouts.list();
        ctx.out.result({ env: ctx.env, plans }, () =>
          plans.length === 0 ? [] : table([['FLAG', 'STATE', 'STAGE', 'VARIANTS', 'STAGES', 'PLAN VERSION', 'NOTE'], ...plans.map(planListLine)]),
        );
        if (plans.length === 0) ctx.out.info(`no rollout plans in env "${ctx.env}"`);
      });
    });
}
