import { FlagValidationError, formatIssue } from '@rollgate/core';
import { ConfigError, InvalidWriteError, NotFoundError, StoreUnavailableError, VersionConflictError, type BaseFlagStore, type FlagChange } from '@rollgate/redis';
import type { Identity } from './identity';

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
}

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

export class AdminApi {
  private readonly store: BaseFlagStore;
  private readonly authorize: (identity: Identity) => boolean | Promise<boolean>;

  constructor(options: AdminApiOptions) {
    if (!options?.store) throw new ConfigError('admin API: options.store is required');
    if (typeof options.authorize !== 'function') {
      throw new ConfigError('admin API: options.authorize(identity) is required; without it nobody may change flags');
    }
    this.store = options.store;
    this.authorize = options.authorize;
  }

  async list(req: AdminRequest): Promise<AdminResponse> {
    return this.guarded(req, async () => {
      const set = await this.store.load();
      return json(200, { version: set.version, flags: set.flags, $evaluators: set.evaluators }, etag(set.version));
    });
  }

  async get(req: AdminRequest, kind: Kind, key: string): Promise<AdminResponse> {
    return this.guarded(req, async () => {
      const set = await this.store.load();
      const map = kind === 'flag' ? set.flags : set.evaluators;
      if (!Object.prototype.hasOwnProperty.call(map, key)) return json(404, { error: 'not_found', message: `${kind} "${key}" does not exist` });
      return json(200, { version: set.version, key, definition: map[key] }, etag(set.version));
    });
  }

  async put(req: AdminRequest, kind: Kind, key: string, definition: unknown): Promise<AdminResponse> {
    // a null definition means "remove" to the store: deleting is DELETE's job, never a PUT's
    if (definition === null || definition === undefined) {
      return this.refuse(req, `PUT needs the ${kind} definition as its JSON body (got ${definition === null ? 'null' : 'none'}); to delete the ${kind}, send DELETE`);
    }
    const problem = bodyProblem(definition);
    if (problem) return this.refuse(req, problem);
    return this.write(req, (version) => this.store.apply([{ kind, key, definition } as FlagChange], this.writeOptions(req, version, 'put')));
  }

  async patch(req: AdminRequest, key: string, patch: unknown): Promise<AdminResponse> {
    const problem = bodyProblem(patch);
    if (problem) return this.refuse(req, problem);
    return this.write(req, (version) => this.store.patchFlag(key, patch as Record<string, unknown>, this.writeOptions(req, version, 'patch')));
  }

  async remove(req: AdminRequest, kind: Kind, key: string): Promise<AdminResponse> {
    return this.write(req, (version) => this.store.apply([{ kind, key, definition: null } as FlagChange], this.writeOptions(req, version, 'remove')));
  }

  async revert(req: AdminRequest, body: unknown): Promise<AdminResponse> {
    const b = (body ?? {}) as { key?: unknown; toVersion?: unknown; kind?: unknown };
    if (typeof b.key !== 'string' || b.key === '') return this.refuse(req, 'body.key (the flag to revert) is required');
    if (b.toVersion !== undefined && !Number.isInteger(b.toVersion)) return this.refuse(req, 'body.toVersion must be an integer');
    const kind: Kind = b.kind === 'evaluator' ? 'evaluator' : 'flag';
    return this.write(req, (version) =>
      this.store.revert(b.key as string, { kind, ...(b.toVersion !== undefined ? { toVersion: b.toVersion as number } : {}) }, this.writeOptions(req, version, 'revert')),
    );
  }

  async audit(req: AdminRequest, key: string | undefined, limit: number | undefined): Promise<AdminResponse> {
    return this.guarded(req, async () => {
      const n = limit === undefined ? 50 : limit;
      if (!Number.isInteger(n) || n < 1 || n > 1000) return json(400, { error: 'invalid', message: 'limit must be an integer from 1 to 1000' });
      return json(200, { entries: await this.store.audit(key, { limit: n }) });
    });
  }

  /** 400 for a body of the wrong shape, after the caller is authorized (others get 401/403 as for any request). */
  private refuse(req: AdminRequest, message: string): Promise<AdminResponse> {
    return this.guarded(req, async () => json(400, { error: 'invalid', message }));
  }

  private writeOptions(req: AdminRequest, expectedVersion: number, action: string) {
    return { actor: req.identity!.subject, expectedVersion, action, ...(req.reason ? { reason: req.reason.slice(0, 500) } : {}) };
  }

  /** Writes need If-Match: the version the caller based the change on. */
  private async write(req: AdminRequest, run: (expectedVersion: number) => Promise<{ version: number }>): Promise<AdminResponse> {
    return this.guarded(req, async () => {
      const raw = req.ifMatch?.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
      if (raw === undefined || raw === '') {
        return json(428, { error: 'precondition_required', message: 'send If-Match with the version you read (GET returns it as ETag)' });
      }
      if (!/^\d+$/.test(raw)) return json(400, { error: 'invalid', message: `If-Match must be a version number, got ${JSON.stringify(req.ifMatch)}` });
      const result = await run(Number(raw));
      return json(200, { version: result.version }, etag(result.version));
    });
  }

  private async guarded(req: AdminRequest, run: () => Promise<AdminResponse>): Promise<AdminResponse> {
    if (!req.identity) return json(401, { error: 'unauthorized' }, { 'WWW-Authenticate': 'Bearer' });
    let allowed = false;
    try {
      allowed = (await this.authorize(req.identity)) === true;
    } catch {
      allowed = false; // a failing authorize callback denies
    }
    if (!allowed) return json(403, { error: 'forbidden' });
    try {
      return await run();
    } catch (e) {
      if (e instanceof FlagValidationError) return json(400, { error: 'invalid', message: e.message, issues: e.issues.map(formatIssue) });
      if (e instanceof VersionConflictError) return json(409, { error: 'version_conflict', message: e.message, currentVersion: e.currentVersion }, etag(e.currentVersion));
      if (e instanceof NotFoundError) return json(404, { error: 'not_found', message: e.message });
      if (e instanceof InvalidWriteError) return json(400, { error: 'invalid', message: e.message });
      if (e instanceof StoreUnavailableError) return json(503, { error: 'store_unavailable', message: 'the flag store did not answer; reload before retrying (a write may or may not have been applied)' }, { 'Retry-After': '5' });
      throw e;
    }
  }
}
