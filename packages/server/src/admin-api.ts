import { compileFlagSet, FlagValidationError, formatIssue, type EvaluationContext } from '@rollgate/core';
import {
  ConfigError,
  InvalidWriteError,
  NotFoundError,
  RedisFlagStore,
  StoreUnavailableError,
  VersionConflictError,
  WriteNotAppliedError,
  WriteOutcomeUnknownError,
  type AuditEntry,
  type BaseFlagStore,
  type FlagChange,
} from '@rollgate/redis';
import { PlanConflictError, PlanStateError, PlanValidationError, readFeedback, Rollouts } from '@rollgate/rollouts';
import type { Identity } from './identity';
import { planSeries } from './plan-series';

// The admin API's behaviour, independent of any framework: every write goes through the store's
// one write path, pinned to the version the caller read (If-Match), attributed to the caller.

export interface AdminApiOptions {
  /** The store to manage (the same write path as the CLI). */
  store: BaseFlagStore;
  /**
   * Who may use the admin API. Required: without it every request is denied. Return true to
   * allow, e.g. `identity => identity.context.roles.includes('flag-admin')`.
   */
  authorize: (identity: Identity) => boolean | Promise<boolean>;
}

export interface AdminResponse {
  status: number;
  headers: Record<string, string>;
  body?: unknown;
}

export interface AdminRequest {
  identity: Identity | undefined;
  /** The If-Match header (a version, quoted or not). */
  ifMatch?: string | undefined;
  /** Why, recorded in the audit (e.g. from a Rollgate-Reason header). */
  reason?: string | undefined;
  /** The Idempotency-Key header: the write id (a retried write is applied at most once). */
  idempotencyKey?: string | undefined;
}

/** An HTTP request to the admin API, as an adapter hands it over. */
export interface AdminHttpRequest extends AdminRequest {
  method: string;
  /** The path below the admin mount point, still percent-encoded: `/flags/fast-payment`. */
  path: string;
  query: Record<string, unknown>;
  /** The parsed JSON body (undefined for methods without one). */
  body?: unknown;
}

/** A server-sent event stream the adapter writes out (`GET /events`). */
export interface AdminEventStream {
  /** Starts the stream: `write` gets text to send as is; returns the function that ends it. */
  open(write: (text: string) => void): () => void;
}

/** The methods whose requests carry a JSON body the adapter must read. */
export const ADMIN_BODY_METHODS: ReadonlySet<string> = new Set(['PUT', 'PATCH', 'POST']);

type Kind = 'flag' | 'evaluator';

const HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' };

function json(status: number, body: unknown, extra: Record<string, string> = {}): AdminResponse {
  return { status, headers: { ...HEADERS, ...extra }, body };
}

function etag(version: number): Record<string, string> {
  return { ETag: `"${version}"` };
}

/**
 * Deepest nesting of objects and arrays a request body may have: the flag format's limit
 * (core's `maxDepth`, 64). Deeper bodies are refused before anything reads them recursively (a
 * few thousand levels overflow JSON.stringify's stack).
 */
const MAX_BODY_DEPTH = 64;

/** Whether `value` nests objects/arrays more than `max` levels deep; iterative, so any depth is safe to check. */
function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > max) return true;
    for (const child of Object.values(node as Record<string, unknown>)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

/** What is wrong with the shape of a write's JSON body, before it reaches the store; undefined when nothing. */
function bodyProblem(body: unknown): string | undefined {
  return nestsDeeperThan(body, MAX_BODY_DEPTH) ? `the request body nests objects or arrays deeper than ${MAX_BODY_DEPTH} levels` : undefined;
}

const PLAN_ACTIONS = ['start', 'pause', 'resume', 'advance', 'approve', 'rollback'] as const;

/** `GET /audit?after=`: entries read first (the full `limit` + 1 only when `after` is not among them). */
const AUDIT_AFTER_FIRST_READ = 10;

/**
 * The admin API, independent of any framework: the adapters hand every request under their
 * mount point to {@link AdminApi.handle} and send what it answers.
 *
 *   GET    /flags                      GET PUT PATCH DELETE /flags/:key     POST /flags/:key/explain {context}
 *   GET    /evaluators                 GET PUT DELETE /evaluators/:key
 *   GET    /audit?key=&limit=&after=   POST /revert {key, toVersion?, kind?}
 *   GET    /plans                      POST /plans {PlanSpec}               GET /plans/:flag
 *   POST   /plans/:flag/(start|pause|resume|advance|approve|rollback)
 *   GET    /plans/:flag/series?seconds=&step=                               GET /events (server-sent events)
 *   GET    /feedback/:flag?variant=&limit=  users' feedback per variant (counts, negative share, latest comments)
 */
export class AdminApi {
  private readonly store: BaseFlagStore;
  private readonly authorize: (identity: Identity) => boolean | Promise<boolean>;
  /** Plans live in Redis: undefined over another store. */
  private readonly rollouts: Rollouts | undefined;

  constructor(options: AdminApiOptions) {
    if (!options?.store) throw new ConfigError('admin API: options.store is required');
    if (typeof options.authorize !== 'function') {
      throw new ConfigError('admin API: options.authorize(identity) is required; without it nobody may change flags');
    }
    this.store = options.store;
    this.authorize = options.authorize;
    this.rollouts = options.store instanceof RedisFlagStore ? new Rollouts({ store: options.store }) : undefined;
  }

  /** Answers one request: the route table of the admin API, for every adapter. */
  async handle(req: AdminHttpRequest): Promise<AdminResponse> {
    let segments: string[];
    try {
      segments = req.path.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
    } catch {
      return this.refuse(req, `the path ${JSON.stringify(req.path)} is not valid percent-encoding`);
    }
    const [resource, key, sub, ...rest] = segments;
    const method = req.method.toUpperCase();
    const q = (name: string) => (typeof req.query[name] === 'string' ? (req.query[name] as string) : undefined);
    if (rest.length > 0) return this.notFound(req);
    if ((resource === 'flags' || resource === 'evaluators') && sub === undefined) {
      const kind: Kind = resource === 'flags' ? 'flag' : 'evaluator';
      if (key === undefined) return method === 'GET' ? this.list(req, kind) : this.notAllowed(req, 'GET');
      if (method === 'GET') return this.get(req, kind, key);
      if (method === 'PUT') return this.put(req, kind, key, req.body);
      if (method === 'PATCH' && kind === 'flag') return this.patch(req, key, req.body);
      if (method === 'DELETE') return this.remove(req, kind, key);
      return this.notAllowed(req, kind === 'flag' ? 'GET, PUT, PATCH, DELETE' : 'GET, PUT, DELETE');
    }
    if (resource === 'flags' && key !== undefined && sub === 'explain') return method === 'POST' ? this.explain(req, key, req.body) : this.notAllowed(req, 'POST');
    if (resource === 'audit' && key === undefined) return method === 'GET' ? this.audit(req, q('key'), q('limit') === undefined ? undefined : Number(q('limit')), q('after')) : this.notAllowed(req, 'GET');
    if (resource === 'revert' && key === undefined) return method === 'POST' ? this.revert(req, req.body) : this.notAllowed(req, 'POST');
    if (resource === 'feedback' && key !== undefined && sub === undefined) {
      if (method !== 'GET') return this.notAllowed(req, 'GET');
      const limit = q('limit') === undefined ? 20 : Number(q('limit'));
      if (!Number.isInteger(limit) || limit < 0 || limit > 1000) return this.refuse(req, 'limit must be an integer from 0 to 1000');
      const variant = q('variant');
      return this.plans(req, async () => json(200, await readFeedback(this.store as RedisFlagStore, key, { limit, ...(variant !== undefined ? { variant } : {}) })));
    }
    if (resource === 'plans') {
      if (key === undefined) return method === 'GET' ? this.plans(req, (r) => r.list().then((plans) => json(200, { plans }))) : method === 'POST' ? this.createPlan(req, req.body) : this.notAllowed(req, 'GET, POST');
      if (sub === undefined) return method === 'GET' ? this.plans(req, async (r) => planJson(await r.get(key))) : this.notAllowed(req, 'GET');
      if (sub === 'series') {
        if (method !== 'GET') return this.notAllowed(req, 'GET');
        return this.plans(req, async (r) => {
          const plan = await r.get(key);
          try {
            return json(200, await planSeries(r, plan, q('seconds'), q('step')));
          } catch (e) {
            if (e instanceof RangeError) return json(400, { error: 'invalid', message: e.message });
            throw e;
          }
        });
      }
      if ((PLAN_ACTIONS as readonly string[]).includes(sub)) return method === 'POST' ? this.planAction(req, key, sub as (typeof PLAN_ACTIONS)[number]) : this.notAllowed(req, 'POST');
    }
    return this.notFound(req);
  }

  /**
   * `GET /events`: a server-sent event stream of every change from anywhere — `flags` with the
   * store's version and revision, `plan` with a plan's flag and planVersion — and a comment every
   * 15 s. An AdminResponse instead when the caller may not have it.
   *
   * On connecting it announces the state as it is once it listens: a `flags` event, and a `plan`
   * event per plan. A client that read before its stream was open compares them with what it read
   * (`GET /flags` answers the same version and revision, plans their planVersion), and reads again
   * only what moved.
   */
  async events(req: AdminRequest): Promise<AdminResponse | AdminEventStream> {
    const refusal = await this.refusal(req);
    if (refusal) return refusal;
    return {
      open: (write) => {
        const send = (event: string, data: unknown) => write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
        let last = '';
        const announce = (version: number, revision: string) => {
          // the heartbeat confirms the same state twice a second: announce changes only
          if (`${version}:${revision}` === last) return;
          last = `${version}:${revision}`;
          send('flags', { version, revision });
        };
        const unwatch = this.store.watch({
          onChange: announce,
          onUnavailable: (e) => send('unavailable', { message: e.message }),
          onAvailable: () => send('available', {}),
        });
        let open = true;
        // each plan as it is, read once the plan notices are subscribed: no write falls between
        const unwatchPlans = this.rollouts?.watchPlans(
          (flag, planVersion) => send('plan', { flag, planVersion }),
          () =>
            void this.rollouts?.list().then(
              (plans) => plans.forEach((p) => open && send('plan', { flag: p.flag, planVersion: p.planVersion })),
              () => undefined,
            ),
        );
        const heartbeat = setInterval(() => write(': keep-alive\n\n'), 15_000);
        heartbeat.unref();
        write(': connected\n\n');
        // the state as it is, read now that the watchers listen (a RedisFlagStore's watcher hears
        // the flags' version at its next check, within pollIntervalMs; other stores are asked)
        if (!(this.store instanceof RedisFlagStore)) {
          this.store.load().then(
            (set) => open && announce(set.version, set.revision),
            () => undefined, // unreachable: the watcher says so
          );
        }
        return () => {
          open = false;
          clearInterval(heartbeat);
          unwatch();
          unwatchPlans?.();
        };
      },
    };
  }

  private async list(req: AdminRequest, kind: Kind): Promise<AdminResponse> {
    return this.guarded(req, async () => {
      const set = await this.store.load();
      if (kind === 'evaluator') return json(200, { version: set.version, $evaluators: set.evaluators }, etag(set.version));
      // the revision with the version: a stream's `flags` event names the same state (see events())
      return json(200, { version: set.version, revision: set.revision, flags: set.flags, $evaluators: set.evaluators }, etag(set.version));
    });
  }

  /** `POST /flags/:key/explain {context}`: the decision for that context and the rule branch that made it, as `rollgate explain`. */
  private async explain(req: AdminRequest, key: string, body: unknown): Promise<AdminResponse> {
    const b = body as { context?: unknown } | undefined;
    const context = b?.context ?? {};
    if (context === null || typeof context !== 'object' || Array.isArray(context)) return this.refuse(req, 'body.context must be an object (the evaluation context: targetingKey, roles, tenant, …)');
    const problem = bodyProblem(context);
    if (problem) return this.refuse(req, problem);
    return this.guarded(req, async () => {
      const set = await this.store.load();
      if (!Object.prototype.hasOwnProperty.call(set.flags, key)) return json(404, { error: 'not_found', message: `flag "${key}" does not exist` });
      const { snapshot } = compileFlagSet({ flags: set.flags, $evaluators: set.evaluators });
      return json(200, { version: set.version, key, explanation: snapshot.explain(key, context as EvaluationContext) });
    });
  }

  private async createPlan(req: AdminRequest, body: unknown): Promise<AdminResponse> {
    const problem = bodyProblem(body);
    if (problem) return this.refuse(req, problem);
    return this.plans(req, async (r) => planJson(await r.create(body, { ...this.actor(req), ...this.pinnedPlan(req) }), 201));
  }

  /** Plan actions: If-Match (the planVersion shown) is optional — a rollback or a pause must work from a stale page. */
  private async planAction(req: AdminRequest, flag: string, action: (typeof PLAN_ACTIONS)[number]): Promise<AdminResponse> {
    return this.plans(req, async (r) => planJson(await r[action](flag, { ...this.actor(req), ...this.pinnedPlan(req) })));
  }

  private async plans(req: AdminRequest, run: (rollouts: Rollouts) => Promise<AdminResponse>): Promise<AdminResponse> {
    return this.guarded(req, async () => {
      if (!this.rollouts) return json(501, { error: 'not_implemented', message: 'rollout plans live in Redis: this admin API runs over another store' });
      return run(this.rollouts);
    });
  }

  private actor(req: AdminRequest): { actor: string; reason?: string } {
    return { actor: req.identity!.subject, ...(req.reason ? { reason: req.reason.slice(0, 500) } : {}) };
  }

  private pinnedPlan(req: AdminRequest): { expectedPlanVersion?: number } {
    const raw = req.ifMatch?.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
    return raw !== undefined && /^\d+$/.test(raw) ? { expectedPlanVersion: Number(raw) } : {};
  }

  private notFound(req: AdminRequest): Promise<AdminResponse> {
    return this.guarded(req, async () => json(404, { error: 'not_found', message: 'no such admin API route' }));
  }

  private notAllowed(req: AdminRequest, allow: string): Promise<AdminResponse> {
    return this.guarded(req, async () => json(405, { error: 'method_not_allowed', message: `allowed: ${allow}` }, { Allow: allow }));
  }

  private async get(req: AdminRequest, kind: Kind, key: string): Promise<AdminResponse> {
    return this.guarded(req, async () => {
      const set = await this.store.load();
      const map = kind === 'flag' ? set.flags : set.evaluators;
      if (!Object.prototype.hasOwnProperty.call(map, key)) return json(404, { error: 'not_found', message: `${kind} "${key}" does not exist` });
      return json(200, { version: set.version, key, definition: map[key] }, etag(set.version));
    });
  }

  private async put(req: AdminRequest, kind: Kind, key: string, definition: unknown): Promise<AdminResponse> {
    // a null definition means "remove" to the store: deleting is DELETE's job, never a PUT's
    if (definition === null || definition === undefined) {
      return this.refuse(req, `PUT needs the ${kind} definition as its JSON body (got ${definition === null ? 'null' : 'none'}); to delete the ${kind}, send DELETE`);
    }
    const problem = bodyProblem(definition);
    if (problem) return this.refuse(req, problem);
    return this.write(req, async (version) => {
      const action = kind === 'flag' ? flagAction((await this.store.load()).flags[key], definition, 'put') : 'put';
      return this.store.apply([{ kind, key, definition } as FlagChange], this.writeOptions(req, version, action));
    });
  }

  private async patch(req: AdminRequest, key: string, patch: unknown): Promise<AdminResponse> {
    const problem = bodyProblem(patch);
    if (problem) return this.refuse(req, problem);
    return this.write(req, async (version) => {
      const before = (await this.store.load()).flags[key];
      const action = flagAction(before, patchedFields(before, patch), 'patch');
      return this.store.patchFlag(key, patch as Record<string, unknown>, this.writeOptions(req, version, action));
    });
  }

  private async remove(req: AdminRequest, kind: Kind, key: string): Promise<AdminResponse> {
    return this.write(req, (version) => this.store.apply([{ kind, key, definition: null } as FlagChange], this.writeOptions(req, version, 'remove')));
  }

  private async revert(req: AdminRequest, body: unknown): Promise<AdminResponse> {
    const b = (body ?? {}) as { key?: unknown; toVersion?: unknown; kind?: unknown };
    if (typeof b.key !== 'string' || b.key === '') return this.refuse(req, 'body.key (the flag to revert) is required');
    if (b.toVersion !== undefined && !Number.isInteger(b.toVersion)) return this.refuse(req, 'body.toVersion must be an integer');
    const kind: Kind = b.kind === 'evaluator' ? 'evaluator' : 'flag';
    return this.write(req, (version) =>
      this.store.revert(b.key as string, { kind, ...(b.toVersion !== undefined ? { toVersion: b.toVersion as number } : {}) }, this.writeOptions(req, version, 'revert')),
    );
  }

  /**
   * `GET /audit?key=&limit=`: the latest entries, newest first. With `after=<entry id>` (an entry
   * the caller already has): only the entries newer than that one, and `complete` — true when they
   * are all of them (that entry was reached within `limit`), false when there are more than
   * `limit` or that entry is no longer in the audit: then read the latest page again.
   */
  private async audit(req: AdminRequest, key: string | undefined, limit: number | undefined, after: string | undefined): Promise<AdminResponse> {
    return this.guarded(req, async () => {
      const n = limit === undefined ? 50 : limit;
      if (!Number.isInteger(n) || n < 1 || n > 1000) return json(400, { error: 'invalid', message: 'limit must be an integer from 1 to 1000' });
      if (after === undefined) return json(200, { entries: await this.store.audit(key, { limit: n }) });
      if (after === '' || after.length > 200) return json(400, { error: 'invalid', message: 'after must be the id of an audit entry' });
      // usually a few entries are new: a short read first, the full one only when it did not reach `after`
      let entries: AuditEntry[] = [];
      for (const read of n + 1 > AUDIT_AFTER_FIRST_READ ? [AUDIT_AFTER_FIRST_READ, n + 1] : [n + 1]) {
        entries = await this.store.audit(key, { limit: read });
        const at = entries.findIndex((e) => e.id === after);
        if (at >= 0) return json(200, { entries: entries.slice(0, at), complete: true });
        if (entries.length < read) break; // the whole audit (of that key) read: `after` is not in it
      }
      return json(200, { entries: entries.slice(0, n), complete: false });
    });
  }

  /** 400 for a body of the wrong shape, after the caller is authorized (others get 401/403 as for any request). */
  private refuse(req: AdminRequest, message: string): Promise<AdminResponse> {
    return this.guarded(req, async () => json(400, { error: 'invalid', message }));
  }

  private writeOptions(req: AdminRequest, expectedVersion: number, action: string) {
    return { ...this.actor(req), expectedVersion, action, ...(req.idempotencyKey ? { writeId: req.idempotencyKey } : {}) };
  }

  /** Writes need If-Match: the version the caller based the change on. */
  private async write(req: AdminRequest, run: (expectedVersion: number) => Promise<{ version: number; unchanged?: boolean }>): Promise<AdminResponse> {
    return this.guarded(req, async () => {
      const raw = req.ifMatch?.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
      if (raw === undefined || raw === '') {
        return json(428, { error: 'precondition_required', message: 'send If-Match with the version you read (GET returns it as ETag)' });
      }
      if (!/^\d+$/.test(raw)) return json(400, { error: 'invalid', message: `If-Match must be a version number, got ${JSON.stringify(req.ifMatch)}` });
      const result = await run(Number(raw));
      // nothing changed (key order aside): nothing was written, the version is the current one
      return json(200, result.unchanged ? { version: result.version, unchanged: true } : { version: result.version }, etag(result.version));
    });
  }

  /** 401 / 403 for a caller who may not use the API; undefined for one who may. */
  private async refusal(req: AdminRequest): Promise<AdminResponse | undefined> {
    if (!req.identity) return json(401, { error: 'unauthorized' }, { 'WWW-Authenticate': 'Bearer' });
    let allowed = false;
    try {
      allowed = (await this.authorize(req.identity)) === true;
    } catch {
      allowed = false; // a failing authorize callback denies
    }
    return allowed ? undefined : json(403, { error: 'forbidden' });
  }

  private async guarded(req: AdminRequest, run: () => Promise<AdminResponse>): Promise<AdminResponse> {
    const refusal = await this.refusal(req);
    if (refusal) return refusal;
    try {
      return await run();
    } catch (e) {
      if (e instanceof FlagValidationError) return json(400, { error: 'invalid', message: e.message, issues: e.issues.map(formatIssue) });
      if (e instanceof VersionConflictError) return json(409, { error: 'version_conflict', message: e.message, currentVersion: e.currentVersion }, etag(e.currentVersion));
      if (e instanceof NotFoundError) return json(404, { error: 'not_found', message: e.message });
      if (e instanceof InvalidWriteError || e instanceof PlanValidationError) return json(400, { error: 'invalid', message: e.message });
      if (e instanceof PlanConflictError) return json(409, { error: 'version_conflict', message: e.message, currentPlanVersion: e.currentVersion }, etag(e.currentVersion));
      if (e instanceof PlanStateError) return json(409, { error: 'plan_state', message: e.message });
      // the store read the write back: say what happened
      if (e instanceof WriteNotAppliedError) return json(503, { error: 'write_not_applied', message: e.message, writeId: e.writeId }, { 'Retry-After': '5' });
      if (e instanceof WriteOutcomeUnknownError) return json(503, { error: 'write_outcome_unknown', message: e.message, writeId: e.writeId }, { 'Retry-After': '5' });
      if (e instanceof StoreUnavailableError) return json(503, { error: 'store_unavailable', message: 'the flag store did not answer; reload before retrying' }, { 'Retry-After': '5' });
      throw e;
    }
  }
}

// ---- audit actions: the CLI's words for the same operations ----------------------------------

/** JSON text with object keys sorted: equal text, equal JSON. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) Object.defineProperty(out, k, { value: (v as Record<string, unknown>)[k], enumerable: true, configurable: true, writable: true });
    return out;
  });
}

const FLAG_FIELDS = ['state', 'variants', 'defaultVariant', 'targeting', 'metadata'] as const;

/** What a PATCH makes of the definition, for naming the change only (the store builds what it writes). */
function patchedFields(before: unknown, patch: unknown): Record<string, unknown> {
  const base = (before ?? {}) as Record<string, unknown>;
  const p = (patch ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const field of FLAG_FIELDS) {
    const value = Object.prototype.hasOwnProperty.call(p, field) ? p[field] : base[field];
    if (value !== undefined) out[field] = value;
  }
  return out;
}

/**
 * Whether `a` and `b` are the same rule except for the weights of percentage splits (`fractional`
 * buckets: same variants, same bucketing expression, other numbers) — what `rollgate rollout` changes.
 */
function sameExceptSplitWeights(a: unknown, b: unknown, inSplit = false): boolean {
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    if (inSplit && a.length === 2 && typeof a[0] === 'string' && typeof a[1] === 'number' && typeof b[1] === 'number') return a[0] === b[0];
    return a.every((x, i) => sameExceptSplitWeights(x, b[i], inSplit));
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    if (ka.join('\0') !== kb.join('\0')) return false;
    return ka.every((k) => {
      const x = (a as Record<string, unknown>)[k];
      const y = (b as Record<string, unknown>)[k];
      // a split's buckets are arrays [variant, weight]; its optional first argument (what to bucket by) must not change
      if (k === 'fractional' && Array.isArray(x) && Array.isArray(y) && x.length === y.length) {
        return x.every((arg, i) => (Array.isArray(arg) ? sameExceptSplitWeights(arg, y[i], true) : canonical(arg) === canonical(y[i])));
      }
      return sameExceptSplitWeights(x, y, false);
    });
  }
  return canonical(a) === canonical(b);
}

/**
 * The audit action of a flag write from the admin API, in the CLI's words for the same operation:
 * `disable` / `enable` when only the state changes (`rollgate disable`), `rollout` when only split
 * weights change (`rollgate rollout`), else `fallback` (`put`, `patch`).
 */
function flagAction(before: unknown, after: unknown, fallback: 'put' | 'patch'): string {
  if (before === null || typeof before !== 'object' || after === null || typeof after !== 'object') return fallback;
  const b = before as Record<string, unknown>;
  const a = after as Record<string, unknown>;
  const fields = new Set([...Object.keys(b), ...Object.keys(a)]);
  const changed = [...fields].filter((f) => canonical(b[f]) !== canonical(a[f]));
  if (changed.length === 1 && changed[0] === 'state' && (a.state === 'DISABLED' || a.state === 'ENABLED')) return a.state === 'DISABLED' ? 'disable' : 'enable';
  if (changed.length === 1 && changed[0] === 'targeting' && sameExceptSplitWeights(b.targeting, a.targeting)) return 'rollout';
  return fallback;
}

function planJson(plan: { planVersion: number }, status = 200): AdminResponse {
  return json(status, { plan }, etag(plan.planVersion));
}
