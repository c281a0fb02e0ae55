// The signed-in demo user and their token (sessionStorage: gone when the tab closes).
// The UI talks only to same-origin routes, so the server behind them can be swapped.

export const DEMO_USERS = [
  { name: 'ada', label: 'Ada', description: 'admin' },
  { name: 'bo', label: 'Bo', description: 'agent at Atlas Travel (VIP agency)' },
  { name: 'carol', label: 'Carol', description: 'customer, outside the 20% rollout' },
  { name: 'dale', label: 'Dale', description: 'customer, inside the 20% rollout' },
] as const;
export type DemoUserName = (typeof DEMO_USERS)[number]['name'];

const KEY = 'booking-web.session';
/** Where @rollgate/dashboard reads its bearer token. */
const DASHBOARD_TOKEN_KEY = 'rollgate.token';

export interface Session {
  user: DemoUserName;
  token: string;
}

export function currentSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export async function signIn(user: DemoUserName): Promise<Session> {
  const res = await fetch(`/demo/login/${encodeURIComponent(user)}`, { method: 'POST' });
  if (!res.ok) throw new Error(`login failed: HTTP ${res.status}`);
  const session = { user, token: await res.text() };
  sessionStorage.setItem(KEY, JSON.stringify(session));
  // the Rollgate dashboard (/rollgate/, same origin) sends this token to the admin API
  sessionStorage.setItem(DASHBOARD_TOKEN_KEY, session.token);
  return session;
}

/**
 * The roles in the session's token, to decide whether to show the admin card. Display only:
 * the admin API checks the verified token itself and answers 403 to anyone else.
 */
export function sessionRoles(session: Session | null): string[] {
  try {
    const payload = session?.token.split('.')[1];
    if (!payload) return [];
    const claims = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { roles?: unknown };
    return Array.isArray(claims.roles) ? claims.roles.filter((r): r is string => typeof r === 'string') : [];
  } catch {
    return [];
  }
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(DASHBOARD_TOKEN_KEY);
}

/** Calls the API as the signed-in user. */
export async function post(path: string): Promise<{ status: number; body: unknown }> {
  const token = currentSession()?.token;
  const res = await fetch(path, { method: 'POST', headers: token ? { Authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body };
}
