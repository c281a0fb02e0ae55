import { currentSession } from './session';

// What the admin card calls: the demo's own switches (`/demo/*`, the Nest demo only: DEMO ONLY,
// no real service has them) and, to start the demo plan, the admin API (same origin:
// /rollgate/admin/...), so the plan is audited under the admin's name. Everything else an admin
// does — kill switch, rollout %, steering the plan, the audit — is in the Rollgate dashboard.

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = currentSession()?.token;
  return { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra };
}

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

/** The demo's switches; null when this server has none (e.g. examples/booking-web/server.js) or the user is not an admin. */
export async function loadDemoStatus(): Promise<DemoStatus | null> {
  const res = await fetch('/demo/status', { headers: headers() });
  return res.ok ? ((await res.json()) as DemoStatus) : null;
}

async function post(path: string, body: unknown, extra: Record<string, string> = {}): Promise<{ ok: boolean; status: number; body: { message?: string; error?: string } & Record<string, unknown> }> {
  const res = await fetch(path, { method: 'POST', headers: headers({ 'Content-Type': 'application/json', ...extra }), body: JSON.stringify(body ?? {}) });
  return { ok: res.ok, status: res.status, body: (await res.json().catch(() => ({}))) as { message?: string } };
}

function failure(r: { status: number; body: { message?: string; error?: string } }): string {
  return r.body.message ?? r.body.error ?? `HTTP ${r.status}`;
}

/** Creates the plan (replacing a finished one) and starts it, through the admin API: audited under the admin's name. Null when done, else why not. */
export async function startPlan(spec: unknown, reason: string): Promise<string | null> {
  const created = await post('/rollgate/admin/plans', spec, { 'Rollgate-Reason': reason });
  if (!created.ok) return failure(created);
  const started = await post(`/rollgate/admin/plans/${encodeURIComponent((spec as { flag: string }).flag)}/start`, {}, { 'Rollgate-Reason': reason });
  return started.ok ? null : failure(started);
}

export async function setTraffic(on: boolean): Promise<string | null> {
  const r = await post('/demo/traffic', { on });
  return r.ok ? null : failure(r);
}

export async function setFault(failRate: number): Promise<string | null> {
  const r = await post('/demo/fault', { failRate });
  return r.ok ? null : failure(r);
}
