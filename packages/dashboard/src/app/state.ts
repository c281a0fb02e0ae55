import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState } from 'react';
import { AdminClient, ApiError, apiBase, readToken, saveToken, tokenSubject } from './api';
import { followEvents, type LiveStatus } from './events';
import type { AuditEntry, FlagDefinition, Plan } from './model';

// One state object per load: flags, segments, audit and plans are read together and rendered
// together, so no part of the page can show an older state than another. Loads triggered while
// one is running are coalesced into one more load after it. A load reads the audit only past the
// newest entry the page has (`after=`), not the whole page of it again.

export interface Snapshot {
  /** The store version of everything below. */
  version: number;
  /** With the version, the state exactly (undefined from a server that does not say). */
  revision: string | undefined;
  flags: Record<string, FlagDefinition>;
  evaluators: Record<string, unknown>;
  /** The latest changes, newest first, up to `version` (a newer one arrives with the next load). */
  audit: AuditEntry[];
  /** The history of the flag or segment on screen, when there is one. */
  keyAudit: { key: string; entries: AuditEntry[] } | null;
  /** Rollout plans; null when this admin API has none (a store other than Redis). */
  plans: Plan[] | null;
  /** When it was read (this browser's clock). */
  loadedAt: number;
}

export type Access = 'checking' | 'signin' | 'forbidden' | 'ok';

export interface DashboardState {
  access: Access;
  snapshot: Snapshot | null;
  /** Why the last load failed (the snapshot shown, if any, is older). */
  loadError: ApiError | null;
  live: LiveStatus;
  /** Why the sign-in is shown again (a refused token). */
  signInNote: string | null;
}

export interface Dashboard {
  state: DashboardState;
  client: AdminClient;
  /** Loads everything again; resolves once a load that started after this call has finished. */
  reload(): Promise<void>;
  signIn(token: string): void;
  signOut(): void;
  subject: string | null;
  auditLimit: number;
  setAuditLimit(limit: number): void;
}

export const DashboardContext = createContext<Dashboard | null>(null);

export function useDashboardContext(): Dashboard {
  const d = useContext(DashboardContext);
  if (!d) throw new Error('DashboardContext missing');
  return d;
}

function keep(entries: AuditEntry[], version: number): AuditEntry[] {
  return entries.filter((e) => e.version <= version);
}

/** How many entries a load asks for past the newest one the page has; more new ones than that, and it reads the latest page again. */
const AUDIT_STEP = 50;
/** The history of the flag or segment on screen: its latest entries. */
const KEY_AUDIT_LIMIT = 50;

/** An audit read as the server answered it (newest first, not cut at the flags' version): the next load reads only what is newer. */
interface AuditRead {
  key: string | undefined;
  limit: number;
  entries: AuditEntry[];
}

/**
 * The latest `limit` entries of the audit (of `key`): when the page has them already (`have`),
 * only those newer than its newest (`after=`), put before them — unless the server says that is
 * not all of them (more than AUDIT_STEP, or that entry left the audit) or they do not reach
 * `atLeast` (the version the flags were read at, which every newer entry reaches): then the whole
 * page again.
 */
async function readAudit(client: AdminClient, have: AuditRead | null, key: string | undefined, limit: number, atLeast?: number): Promise<AuditRead> {
  const filter = key !== undefined ? `key=${encodeURIComponent(key)}&` : '';
  const newest = have && have.key === key && have.limit === limit ? have.entries[0] : undefined;
  if (have && newest) {
    const page = await client.request<{ entries: AuditEntry[]; complete?: boolean }>('GET', `audit?${filter}after=${encodeURIComponent(newest.id)}&limit=${Math.min(AUDIT_STEP, limit)}`);
    const entries = [...page.entries, ...have.entries].slice(0, limit);
    if (page.complete === true && (atLeast === undefined || entries[0]!.version >= atLeast)) return { key, limit, entries };
  }
  const page = await client.request<{ entries: AuditEntry[] }>('GET', `audit?${filter}limit=${limit}`);
  return { key, limit, entries: page.entries };
}

export function useDashboard(focusKey: string | undefined): Dashboard {
  const tokenRef = useRef<string | null>(readToken());
  const [token, setToken] = useState<string | null>(tokenRef.current);
  const client = useMemo(() => new AdminClient(apiBase(), () => tokenRef.current), []);
  const [state, setState] = useState<DashboardState>({ access: 'checking', snapshot: null, loadError: null, live: 'connecting', signInNote: null });
  const [auditLimit, setAuditLimit] = useState(200);
  const focusRef = useRef(focusKey);
  const limitRef = useRef(auditLimit);
  focusRef.current = focusKey;
  limitRef.current = auditLimit;
  const running = useRef<Promise<void> | null>(null);
  const again = useRef(false);
  const generation = useRef(0);
  /** The last snapshot loaded (what the change stream's announcements are compared with). */
  const latest = useRef<Snapshot | null>(null);
  const auditRead = useRef<AuditRead | null>(null);
  const keyAuditRead = useRef<AuditRead | null>(null);

  const loadOnce = useCallback(async () => {
    const gen = generation.current;
    try {
      const set = await client.request<{ version: number; revision?: string; flags: Record<string, FlagDefinition>; $evaluators: Record<string, unknown> }>('GET', 'flags');
      const key = focusRef.current;
      // read after the flags: the audit then holds at least every change up to their version
      const [audit, keyAudit, plans] = await Promise.all([
        readAudit(client, auditRead.current, undefined, limitRef.current, set.version),
        key ? readAudit(client, keyAuditRead.current, key, KEY_AUDIT_LIMIT) : Promise.resolve(null),
        client.request<{ plans: Plan[] }>('GET', 'plans').catch((e: unknown) => {
          if (e instanceof ApiError && e.status === 501) return null;
          throw e;
        }),
      ]);
      if (gen !== generation.current) return; // signed out or in as someone else meanwhile
      auditRead.current = audit;
      if (keyAudit) keyAuditRead.current = keyAudit;
      const snapshot: Snapshot = {
        version: set.version,
        revision: set.revision,
        flags: set.flags ?? {},
        evaluators: set.$evaluators ?? {},
        audit: keep(audit.entries, set.version),
        keyAudit: key && keyAudit ? { key, entries: keep(keyAudit.entries, set.version) } : null,
        plans: plans ? plans.plans : null,
        loadedAt: Date.now(),
      };
      latest.current = snapshot;
      setState((s) => ({ ...s, access: 'ok', snapshot, loadError: null, signInNote: null }));
    } catch (e) {
      if (gen !== generation.current) return;
      const error = e instanceof ApiError ? e : new ApiError('other', (e as Error).message, 0);
      if (error.kind === 'unauthorized') {
        setState((s) => ({ ...s, access: 'signin', snapshot: null, signInNote: tokenRef.current ? 'The admin API refused this token (expired, or not one it accepts). Paste a new one.' : null }));
      } else if (error.kind === 'forbidden') setState((s) => ({ ...s, access: 'forbidden', snapshot: null }));
      else setState((s) => ({ ...s, access: s.snapshot ? 'ok' : s.access === 'checking' ? 'checking' : s.access, loadError: error }));
    }
  }, [client]);

  const reload = useCallback((): Promise<void> => {
    if (running.current) {
      again.current = true;
      return running.current;
    }
    const run = async () => {
      do {
        again.current = false;
        await loadOnce();
      } while (again.current);
    };
    running.current = run().finally(() => {
      running.current = null;
    });
    return running.current;
  }, [loadOnce]);

  // first load, and again whenever the identity changes
  useEffect(() => {
    void reload();
  }, [reload, token]);
  // the flag or segment on screen: its history is part of the load
  useEffect(() => {
    if (state.access === 'ok') void reload();
  }, [focusKey, auditLimit]); // eslint-disable-line react-hooks/exhaustive-deps

  // a failed load (Redis unreachable, the server restarting) is retried by itself; the error stays on screen meanwhile
  useEffect(() => {
    if (!state.loadError || state.access === 'signin' || state.access === 'forbidden') return undefined;
    const timer = setTimeout(() => void reload(), 3000);
    return () => clearTimeout(timer);
  }, [state.loadError, state.access, reload]);

  // live: follow the change stream from the first load on, beside it rather than after it (the
  // stream's first announcements say whether anything moved since that load read)
  const following = state.access === 'checking' || state.access === 'ok';
  useEffect(() => {
    if (!following) return undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const soon = () => {
      // events come in bursts (a write, then the controller's plan update): one load for a burst
      clearTimeout(timer);
      timer = setTimeout(() => void reload(), 30);
    };
    // the state the stream announces against what the page shows, once a load under way has
    // finished: a load only when they differ (a change, or one the page's own write already read)
    const unless = (same: (s: Snapshot) => boolean) => {
      const check = () => {
        if (!latest.current || !same(latest.current)) soon();
      };
      if (running.current) void running.current.then(check);
      else check();
    };
    const stop = followEvents(client, {
      onOpen: (again) => {
        if (again) soon(); // events may have been missed while it was down
      },
      onFlags: (version, revision) => unless((s) => s.version === version && (revision === undefined || s.revision === undefined || s.revision === revision)),
      onPlan: (flag, planVersion) => unless((s) => s.plans?.find((p) => p.flag === flag)?.planVersion === planVersion),
      onStatus: (live) => setState((s) => (s.live === live ? s : { ...s, live })),
      onRefused: (status) =>
        setState((s) => ({
          ...s,
          access: status === 401 ? 'signin' : 'forbidden',
          snapshot: null,
          signInNote: status === 401 && tokenRef.current ? 'The admin API no longer accepts this token (expired?). Paste a new one.' : s.signInNote,
        })),
    });
    return () => {
      clearTimeout(timer);
      stop();
    };
  }, [following, token, client, reload]);

  const forget = () => {
    latest.current = null;
    auditRead.current = null;
    keyAuditRead.current = null;
  };
  const signIn = useCallback((t: string) => {
    generation.current++;
    forget();
    tokenRef.current = t.trim();
    saveToken(t);
    setState({ access: 'checking', snapshot: null, loadError: null, live: 'connecting', signInNote: null });
    setToken(tokenRef.current);
  }, []);
  const signOut = useCallback(() => {
    generation.current++;
    forget();
    tokenRef.current = null;
    saveToken(null);
    setState({ access: 'signin', snapshot: null, loadError: null, live: 'connecting', signInNote: null });
    setToken(null);
  }, []);

  return { state, client, reload, signIn, signOut, subject: tokenSubject(token) ?? null, auditLimit, setAuditLimit };
}

/** Re-renders every `ms` (relative times such as "5 s ago"). */
export function useNow(ms = 5000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}

export interface Route {
  view: 'flags' | 'segments' | 'audit' | 'plans';
  key?: string;
  /** `?key=` of the audit view: its filter. */
  filter?: string;
}

export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#/, '').split('?');
  const filter = new URLSearchParams(query).get('key') ?? undefined;
  if (path.replace(/^\//, '') === 'audit' && filter !== undefined) return { view: 'audit', filter };
  const [, view, ...rest] = path.split('/');
  let key: string | undefined;
  try {
    key = rest.length > 0 && rest.join('/') !== '' ? decodeURIComponent(rest.join('/')) : undefined;
  } catch {
    key = undefined;
  }
  if (view === 'segments' || view === 'audit' || view === 'plans') return { view, ...(key !== undefined ? { key } : {}) };
  return { view: 'flags', ...(view === 'flags' && key !== undefined ? { key } : {}) };
}

export function href(view: Route['view'], key?: string): string {
  return `#/${view}${key !== undefined ? `/${encodeURIComponent(key)}` : ''}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}
