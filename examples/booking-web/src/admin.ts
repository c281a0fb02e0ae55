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
