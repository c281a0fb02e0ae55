// The admin API client: the bearer token from sessionStorage (and the app's own cookies), every
// write pinned with If-Match and carrying an Idempotency-Key, errors turned into what the UI says.

/** sessionStorage key of the bearer token the dashboard sends (the demo sets it; "paste a token" too). */
export const TOKEN_KEY = 'rollgate.token';

export type ErrorKind = 'unauthorized' | 'forbidden' | 'store_unavailable' | 'conflict' | 'plan_state' | 'invalid' | 'not_found' | 'write_unknown' | 'network' | 'other';

/** A refused or failed request, with what to tell the operator. */
export class ApiError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly status: number,
    readonly body: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The store version a version conflict reports (409 on a flag or evaluator write). */
  get currentVersion(): number | undefined {
    return typeof this.body.currentVersion === 'number' ? this.body.currentVersion : undefined;
  }
}

export function readToken(): string | null {
  try {
    const token = sessionStorage.getItem(TOKEN_KEY);
    return token && token.trim() !== '' ? token.trim() : null;
  } catch {
    return null;
  }
}

export function saveToken(token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token.trim());
  } catch {
    // storage disabled: the token lives for this page only (see client.token)
  }
}

/** Who the token names (its `sub`), read without verifying it: for display only. */
export function tokenSubject(token: string | null): string | undefined {
  const payload = token?.split('.')[1];
  if (!payload) return undefined;
  try {
    const json = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(payload.length / 4) * 4, '='))) as { sub?: unknown };
    return typeof json.sub === 'string' ? json.sub : undefined;
  } catch {
    return undefined;
  }
}

/** A fresh Idempotency-Key (crypto.randomUUID needs a secure context; getRandomValues does not). */
export function newWriteId(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The admin API's base URL: the page's `<meta name="rollgate-api">`, relative to the page. */
export function apiBase(doc: Document = document): URL {
  const href = doc.querySelector('meta[name="rollgate-api"]')?.getAttribute('content') || 'admin';
  const url = new URL(href, doc.baseURI);
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

export interface WriteOptions {
  /** The version the change is based on (flags, evaluators: the store version; plans: planVersion). */
  ifMatch?: number;
  /** Recorded in the audit. */
  reason?: string;
  /** Reused when the same write is retried. */
  writeId?: string;
}

function describeFailure(status: number, body: Record<string, unknown>): ApiError {
  const message = typeof body.message === 'string' ? body.message : '';
  const issues = Array.isArray(body.issues) ? `: ${(body.issues as unknown[]).join('; ')}` : '';
  const code = body.error;
  if (status === 401) return new ApiError('unauthorized', 'Not signed in: the admin API wants a valid token (or your app session).', status, body);
  if (status === 403) return new ApiError('forbidden', 'Not authorized: this identity may not use the admin API.', status, body);
  if (status === 503 && code === 'store_unavailable') return new ApiError('store_unavailable', 'The flag store did not answer in time.', status, body);
  if (status === 503 && (code === 'write_not_applied' || code === 'write_outcome_unknown')) {
    return new ApiError('write_unknown', `${message || 'The write got no answer.'}${typeof body.writeId === 'string' ? ` (write id ${body.writeId})` : ''}`, status, body);
  }
  if (status === 409 && code === 'plan_state') return new ApiError('plan_state', message, status, body);
  if (status === 409) return new ApiError('conflict', message || 'Someone else changed it first.', status, body);
  if (status === 404) return new ApiError('not_found', message || 'Not found.', status, body);
  if (status === 400 || status === 428) return new ApiError('invalid', `${message}${issues}` || 'The request was refused.', status, body);
  if (status === 501) return new ApiError('other', message || 'Not available here.', status, body);
  return new ApiError('other', message || `The server answered HTTP ${status}.`, status, body);
}

export class AdminClient {
  constructor(
    readonly base: URL,
    /** The bearer token to send, or null for the app's own cookies only. */
    readonly token: () => string | null,
  ) {}

  url(path: string): string {
    return new URL(path.replace(/^\//, ''), this.base).toString();
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const token = this.token();
    return { Accept: 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra };
  }

  async request<T>(method: string, path: string, options: WriteOptions & { body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
    const extra: Record<string, string> = {};
    if (options.body !== undefined) extra['Content-Type'] = 'application/json';
    if (options.ifMatch !== undefined) extra['If-Match'] = `"${options.ifMatch}"`;
    if (options.reason) extra['Rollgate-Reason'] = options.reason.replace(/[\r\n]+/g, ' ').slice(0, 500);
    if (method !== 'GET') extra['Idempotency-Key'] = options.writeId ?? newWriteId();
    let res: Response;
    try {
      res = await fetch(this.url(path), {
        method,
        headers: this.headers(extra),
        credentials: 'include',
        cache: 'no-store',
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw new ApiError('network', 'Cannot reach the server: check the connection, then retry.', 0);
    }
    const text = await res.text();
    let body: unknown = undefined;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (!res.ok) throw describeFailure(res.status, body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {});
    return body as T;
  }
}
