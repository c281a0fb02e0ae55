import { currentSession } from './session';

// The admin API (same origin: /rollgate/admin/...). Reads return the store version as ETag;
// every write sends it back as If-Match, so a change made meanwhile by someone else (another
// admin, the CLI) is answered 409 instead of being overwritten.

export interface FlagDefinition {
  state: 'ENABLED' | 'DISABLED';
  variants: Record<string, unknown>;
  defaultVariant: string;
  targeting?: unknown;
  metadata?: Record<string, unknown>;
}

export interface FlagState {
  key: string;
  version: number;
  etag: string;
  definition: FlagDefinition;
}

export interface AuditEntry {
  /** The audit stream's id: unique per entry. */
  id: string;
  /** A flag write, a shared evaluator's, or a rollout plan's transition. */
  kind: 'flag' | 'evaluator' | 'plan';
  key: string;
  version: number;
  time: number;
  actor: string;
  action: string;
  reason: string;
}

export type WriteResult = { ok: true; version: number } | { ok: false; conflict: true; currentVersion: number } | { ok: false; conflict: false; message: string };

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = currentSession()?.token;
  return { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra };
}

/** The flag with its version, or null when the admin API does not let this user in (401/403). */
export async function loadFlag(key: string): Promise<FlagState | null> {
  const res = await fetch(`/rollgate/admin/flags/${encodeURIComponent(key)}`, { headers: headers() });
  if (res.status === 401 || res.status === 403) return null;
  if (!res.ok) throw new Error(`admin API: HTTP ${res.status}`);
  const body = (await res.json()) as { version: number; key: string; definition: FlagDefinition };
  return { key: body.key, version: body.version, etag: res.headers.get('ETag') ?? `"${body.version}"`, definition: body.definition };
}

export async function loadAudit(key: string, limit = 5): Promise<AuditEntry[]> {
  const res = await fetch(`/rollgate/admin/audit?key=${encodeURIComponent(key)}&limit=${limit}`, { headers: headers() });
  if (!res.ok) return [];
  return ((await res.json()) as { entries: AuditEntry[] }).entries;
}

/** PATCH the flag, pinned to the version it was read at. */
export async function patchFlag(flag: FlagState, patch: Partial<FlagDefinition>, reason: string): Promise<WriteResult> {
  const res = await fetch(`/rollgate/admin/flags/${encodeURIComponent(flag.key)}`, {
    method: 'PATCH',
    headers: headers({ 'Content-Type': 'application/json', 'If-Match': flag.etag, 'Rollgate-Reason': reason }),
    body: JSON.stringify(patch),
  });
  const body = (await res.json().catch(() => ({}))) as { version?: number; currentVersion?: number; message?: string; issues?: string[]; error?: string };
  if (res.ok) return { ok: true, version: body.version! };
  if (res.status === 409) return { ok: false, conflict: true, currentVersion: body.currentVersion! };
  return { ok: false, conflict: false, message: body.issues?.join('; ') ?? body.message ?? body.error ?? `HTTP ${res.status}` };
}

type Json = unknown;

/** The percentage split (`fractional`) the rollout buttons edit: its path in the targeting and the share of `variant`. */
export interface Split {
  percent: number;
  set(percent: number): Json;
}

/**
 * Finds the first `fractional` split in the targeting and returns the share of `variant` in it,
 * with a function that returns the targeting with that share set (the rest to `otherVariant`).
 * Null when there is no split the panel understands (then the CLI's `rollgate rollout` explains why).
 */
export function findSplit(targeting: Json, variant = 'on', otherVariant = 'off'): Split | null {
  const visit = (node: Json, replace: (value: Json) => Json): Split | null => {
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const found = visit(node[i], (value) => replace(node.map((n, j) => (j === i ? value : n))));
        if (found) return found;
      }
      return null;
    }
    if (!node || typeof node !== 'object') return null;
    const obj = node as Record<string, Json>;
    const args = obj.fractional;
    if (Array.isArray(args)) {
      const by = Array.isArray(args[0]) ? [] : [args[0]]; // optional bucketing expression first
      const buckets = args.slice(by.length) as Json[];
      if (!buckets.every((b) => Array.isArray(b) && typeof b[0] === 'string' && (b.length === 1 || typeof b[1] === 'number'))) return null;
      const pairs = buckets as [string, number?][];
      const total = pairs.reduce((sum, [, w]) => sum + (w ?? 1), 0);
      const mine = pairs.filter(([v]) => v === variant).reduce((sum, [, w]) => sum + (w ?? 1), 0);
      return {
        percent: total > 0 ? Math.round((mine / total) * 100) : 0,
        set: (percent) => replace({ ...obj, fractional: [...by, [variant, percent], [otherVariant, 100 - percent]] }),
      };
    }
    for (const k of Object.keys(obj)) {
      const found = visit(obj[k], (value) => replace({ ...obj, [k]: value }));
      if (found) return found;
    }
    return null;
  };
  return visit(targeting, (value) => value);
}

// ---- guarded rollouts: the plan of a flag (admin API) and the demo's switches (/demo/*) ----------

export type GuardSpec =
  | { metric: 'errors' }
  | { metric: 'latency'; quantile: number }
  | { metric: 'event'; name: string }
  /** Uncaught errors in users' pages per page view (compared per minute). */
  | { metric: 'clientErrors' }
  /** The share of negative feedback about the flag (compared per minute). */
  | { metric: 'feedback' }
  /** A tracked value, e.g. checkout.completed's ms: the treatment's mean against the control's. */
  | { metric: 'value'; name: string; better?: 'lower' | 'higher'; margin?: number; unit?: string };

/** One arm over the current stage, as the controller summed it. */
export interface ArmSummary {
  requests: number;
  errors: number;
  /** Log-spaced latency histogram: bucket i holds (1.25^(i-1), 1.25^i] ms. */
  histogram: number[];
  units: number;
}

export interface GuardEvidence {
  guard: GuardSpec;
  /** A value guard's comparison in words ("checkout.completed 25% faster (95% interval …)", or "not enough data yet (…)"). */
  words?: string;
  evidence: number;
  ratioLowerBound: number;
  regressed: boolean;
  control: { n: number; bad: number };
  treatment: { n: number; bad: number };
}

export type PlanState = 'draft' | 'running' | 'paused' | 'rolled_back' | 'completed';

/** A rollout plan as the admin API returns it (the fields the panel shows). */
export interface Plan {
  flag: string;
  treatment: string;
  control: string;
  stages: { percent: number; minDurationSec: number; minRequests: number; minUnits: number; absolute?: { maxErrorRate?: number; maxP99Ms?: number } }[];
  guards: GuardSpec[];
  alpha: number;
  state: PlanState;
  stage: number;
  holdReason: string | null;
  evidence: { stage: { treatment: ArmSummary; control: ArmSummary; targeted: ArmSummary }; guards: GuardEvidence[] } | null;
  last: { action: string; reason: string; actor: string; at: number } | null;
  planVersion: number;
  stageEnteredAt: number | null;
}

export type PlanLoad = { kind: 'plan'; plan: Plan } | { kind: 'none' } | { kind: 'unavailable'; message: string };

/** The demo's switches and the controller's pulse (`GET /demo/status`, the Nest demo only). */
export interface DemoStatus {
  store: 'redis' | 'memory';
  guardedRollouts: { available: true; controller: { intervalMs: number; ticks: number; leader: boolean | null }; plan: unknown } | { available: false; why: string };
  traffic: {
    on: boolean;
    ratePerSec: number;
    sent: number;
    fast: number;
    classic: number;
    refused: number;
    fastFailed: number;
    classicFailed: number;
    customers: number;
    /** What the simulated customers' pages sent to the events endpoint. */
    pages?: { views: number; errors: number; feedback: number; refused: number };
  };
  fault: { failRate: number };
}

/** Everything the panel shows, read together: one fresh state per load, never pieces of different ages. */
export interface AdminState {
  flag: FlagState;
  audit: AuditEntry[];
  plan: PlanLoad;
  /** null: this server has no demo switches (e.g. examples/booking-web/server.js). */
  demo: DemoStatus | null;
}

async function loadPlan(key: string): Promise<PlanLoad> {
  const res = await fetch(`/rollgate/admin/plans/${encodeURIComponent(key)}`, { headers: headers() });
  if (res.status === 404) return { kind: 'none' };
  const body = (await res.json().catch(() => ({}))) as { plan?: Plan; message?: string };
  if (res.ok && body.plan) return { kind: 'plan', plan: body.plan };
  return { kind: 'unavailable', message: body.message ?? `admin API: HTTP ${res.status}` };
}

async function loadDemoStatus(): Promise<DemoStatus | null> {
  const res = await fetch('/demo/status', { headers: headers() });
  return res.ok ? ((await res.json()) as DemoStatus) : null;
}

/** The flag, its recent audit, its plan and the demo's switches; null when the admin API does not let this user in. */
export async function loadAdminState(key: string): Promise<AdminState | null> {
  const [flag, audit, plan, demo] = await Promise.all([loadFlag(key), loadAudit(key, 8), loadPlan(key), loadDemoStatus()]);
  return flag ? { flag, audit, plan, demo } : null;
}

async function post(path: string, body: unknown, extra: Record<string, string> = {}): Promise<{ ok: boolean; status: number; body: { message?: string; error?: string } & Record<string, unknown> }> {
  const res = await fetch(path, { method: 'POST', headers: headers({ 'Content-Type': 'application/json', ...extra }), body: JSON.stringify(body ?? {}) });
  return { ok: res.ok, status: res.status, body: (await res.json().catch(() => ({}))) as { message?: string } };
}

function failure(r: { status: number; body: { message?: string; error?: string } }): string {
  return r.body.message ?? r.body.error ?? `HTTP ${r.status}`;
}

/** Creates the plan (replacing a finished one) and starts it, through the admin API: audited under the admin's name. */
export async function startPlan(spec: unknown, reason: string): Promise<string | null> {
  const created = await post('/rollgate/admin/plans', spec, { 'Rollgate-Reason': reason });
  if (!created.ok) return failure(created);
  const started = await post(`/rollgate/admin/plans/${encodeURIComponent((spec as { flag: string }).flag)}/start`, {}, { 'Rollgate-Reason': reason });
  return started.ok ? null : failure(started);
}

export async function planAction(key: string, action: 'rollback' | 'pause' | 'resume', reason: string): Promise<string | null> {
  const r = await post(`/rollgate/admin/plans/${encodeURIComponent(key)}/${action}`, {}, { 'Rollgate-Reason': reason });
  return r.ok ? null : failure(r);
}

export async function setTraffic(on: boolean): Promise<string | null> {
  const r = await post('/demo/traffic', { on });
  return r.ok ? null : failure(r);
}

export async function setFault(failRate: number): Promise<string | null> {
  const r = await post('/demo/fault', { failRate });
  return r.ok ? null : failure(r);
}

/**
 * Calls `onChange` on every change from anywhere — a flag (the CLI, another admin, the
 * controller) or a plan (every controller tick while one runs) — and when the stream (re)connects.
 * The admin API's `GET /events` stream is read with fetch, since EventSource cannot send the
 * Authorization header. Returns the function that stops.
 */
export function watchAdminEvents(onChange: (event: string) => void): () => void {
  const abort = new AbortController();
  const loop = async () => {
    while (!abort.signal.aborted) {
      try {
        const res = await fetch('/rollgate/admin/events', { headers: headers({ Accept: 'text/event-stream' }), signal: abort.signal });
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        onChange('connected'); // whatever changed while not connected
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const event = /^event: (.*)$/m.exec(buffer.slice(0, end))?.[1];
            buffer = buffer.slice(end + 2);
            if (event) onChange(event);
          }
        }
      } catch {
        // gone (server restart, network): try again in a second
      }
      if (!abort.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  void loop();
  return () => abort.abort();
}

/** Quantile `q` of a log-spaced histogram, ms (the upper edge of its bucket, as the controller reads it). */
export function quantileMs(histogram: readonly number[], q: number): number | null {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i]!;
    if (seen >= q * total) return i >= histogram.length - 1 ? Infinity : 1.25 ** i;
  }
  return null;
}
