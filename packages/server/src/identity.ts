import type { IncomingHttpHeaders } from 'node:http';
import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt, { type Algorithm, type JwtPayload } from 'jsonwebtoken';
import ms from 'ms';
import { RollgateError, type EvaluationContext } from '@rollgate/core';
import { ConfigError } from '@rollgate/redis';
import { Enrichment, type EnrichmentOptions } from './enrichment';

/** Which claims become which evaluation-context attributes. Nothing else is ever copied. */
export interface ClaimMapping {
  /** Claim holding the subject, copied to `targetingKey`. @default 'sub' */
  targetingKey?: string;
  /** Claim holding the roles (a string or an array of strings), copied to `roles` (always an array). @default 'roles' */
  roles?: string;
  /** Claim holding the tenant, copied to `tenant`. @default 'tenant' */
  tenant?: string;
  /** Further claims copied under their own name when they are primitives or arrays of primitives. @default [] */
  attributes?: readonly string[];
}

export interface JwtVerifyOptions {
  /** HMAC secret (HS* algorithms), at least 32 bytes. Exactly one of secret / publicKey. */
  secret?: string | Buffer;
  /** PEM public key or KeyObject (RS*, PS*, ES* algorithms). */
  publicKey?: string | Buffer | KeyObject;
  /** Accepted algorithms, all of one family (e.g. ['RS256']). Required: never taken from the token. */
  algorithms: Algorithm[];
  /** Required `iss`, when given. */
  issuer?: string | string[];
  /** Required `aud`, when given. */
  audience?: string | RegExp | (string | RegExp)[];
  /** Allowed clock skew in seconds for exp / nbf, 0 to 300. @default 5 */
  clockTolerance?: number;
  /** Oldest accepted token age (needs `iat`), e.g. '12h'. */
  maxAge?: string | number;
  /**
   * How many verified tokens to remember, so that a caller's next request with the same token
   * skips the signature check (a browser repeats its token on every OFREP refetch). Only a
   * byte-identical token hits; `exp`, `nbf` and `maxAge` are checked again on every hit. Each
   * entry holds the token and its payload (about 0.5 KB). 0 turns it off. @default 10000
   */
  cacheSize?: number;
}

export interface IdentityOptions {
  /** Verify `Authorization: Bearer <jwt>` with these settings. */
  jwt?: JwtVerifyOptions;
  /**
   * Or take the identity your own auth already established (e.g. `req => req.user` after
   * passport). Return the claims object, or undefined when the request is not authenticated.
   * Used before `jwt` when both are given.
   */
  getIdentity?: (request: never) => unknown;
  /** Claim → context mapping. */
  claims?: ClaimMapping;
  /** Longest accepted Authorization header, checked before parsing. @default 8192 */
  maxHeaderLength?: number;
  /**
   * Trusted server-side attributes added to every caller's context after the claims (e.g.
   * bookings this month, from your database), cached per caller: see {@link EnrichmentOptions}.
   * @default none
   */
  enrich?: EnrichmentOptions;
}

/** What an identity resolves a caller from: the request's headers (and, for getIdentity, whatever your auth put on it). */
export type IdentityRequest = { headers: IncomingHttpHeaders };

const DEFINITION = Symbol.for('rollgate.identity-definition');

/**
 * Who is calling, defined once: the token check, the claims mapping and the enrichment. Create it
 * with {@link defineIdentity} and hand the same object to everything that identifies callers —
 * `identity()`, `ofrep()`, `adminRouter()` — so that the guard and OFREP can never disagree.
 */
export interface IdentityDefinition {
  readonly [DEFINITION]: true;
  /** The caller of a request (getIdentity, then a verified Bearer JWT), mapped and enriched. Rejects with IdentityError. */
  resolve(request: IdentityRequest): Promise<Identity>;
  /** Every context name this identity owns (targetingKey, roles, tenant, mapped claims, enriched attributes): a client may never set them. */
  readonly ownedNames: readonly string[];
}

/** Whether `value` is an identity made by {@link defineIdentity} (not plain options). */
export function isIdentityDefinition(value: unknown): value is IdentityDefinition {
  return typeof value === 'object' && value !== null && (value as { [DEFINITION]?: unknown })[DEFINITION] === true;
}

/** The evaluation context built from a verified identity: these names always, plus mapped claims. */
export interface IdentityContext extends EvaluationContext {
  targetingKey: string;
  /** Always an array (empty when the claim is absent). */
  roles: string[];
  tenant?: string;
}

/** The verified caller: subject plus the allow-listed evaluation context (frozen). */
export interface Identity {
  readonly subject: string;
  readonly context: Readonly<IdentityContext>;
  /**
   * Every context name the claims mapping owns (targetingKey, roles, tenant and the mapped
   * attributes), whether or not this caller's claims carried it: a client may never set them.
   */
  readonly mappedNames: readonly string[];
}

/** The request carries no acceptable identity. Always answered with 401; never says which check failed to the client. */
export class IdentityError extends RollgateError {
  readonly code = 'ERR_ROLLGATE_IDENTITY';
  readonly status = 401;
}

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);
const RESERVED = new Set(['targetingKey', 'roles', 'tenant']);
const FAMILY: Record<string, string> = { HS: 'hmac', RS: 'rsa', PS: 'rsa', ES: 'ec' };
const MAX_STRING = 1024;
const MAX_ARRAY = 256;
const MAX_SUBJECT = 256;
/** Skew beyond a few minutes is not skew: it would keep expired tokens alive. */
const MAX_CLOCK_TOLERANCE_SEC = 300;
const DEFAULT_TOKEN_CACHE = 10_000;
const MAX_TOKEN_CACHE = 1_000_000;
const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/i;

interface ResolvedMapping {
  targetingKey: string;
  roles: string;
  tenant: string;
  attributes: readonly string[];
  /** The context names this mapping owns (frozen). */
  names: readonly string[];
}

/**
 * Defines who is calling, once: checks the options at start-up (ConfigError) and returns the
 * object to hand to `identity()`, `ofrep()`, `adminRouter()` (or Nest's module). A definition
 * given again is returned as it is.
 */
export function defineIdentity(options: IdentityOptions | IdentityDefinition): IdentityDefinition {
  if (isIdentityDefinition(options)) return options;
  if (!options || (!options.jwt && !options.getIdentity)) {
    throw new ConfigError('identity: give options.jwt (verify a Bearer token) or options.getIdentity (use your auth, e.g. req => req.user)');
  }
  const mapping = resolveMapping(options.claims);
  const maxHeaderLength = options.maxHeaderLength ?? 8192;
  const verify = options.jwt ? createVerifier(options.jwt) : undefined;
  const getIdentity = options.getIdentity as ((request: unknown) => unknown) | undefined;
  const enrichment = options.enrich === undefined ? undefined : new Enrichment(options.enrich, new Set(mapping.names));
  const owned: readonly string[] = enrichment ? Object.freeze([...mapping.names, ...enrichment.attributes]) : mapping.names;

  const fromClaims = async (request: IdentityRequest): Promise<Identity> => {
    if (getIdentity) {
      const claims = await getIdentity(request);
      if (claims !== undefined && claims !== null) return identityFromClaims(claims, mapping);
      if (!verify) throw new IdentityError('not authenticated');
    }
    const header = request.headers.authorization;
    if (typeof header !== 'string' || header.length === 0) throw new IdentityError('missing bearer token');
    if (header.length > maxHeaderLength) throw new IdentityError('authorization header too long');
    const match = BEARER.exec(header);
    if (!match) throw new IdentityError('malformed authorization header');
    return identityFromClaims(verify!(match[1]!), mapping);
  };

  const resolve = enrichment
    ? async (request: IdentityRequest): Promise<Identity> => {
        const who = await fromClaims(request);
        const extra = await enrichment.attributesOf(who);
        // the claims' context first, then the enriched names (disjoint from the claims' by construction)
        const context = { ...who.context, ...extra } as IdentityContext;
        return Object.freeze({ subject: who.subject, context: Object.freeze(context), mappedNames: owned });
      }
    : fromClaims;
  return Object.freeze({ [DEFINITION]: true as const, resolve, ownedNames: owned });
}

/** Checks the options once, at start-up, and returns a function that resolves a request's identity. */
export function createIdentityResolver(options: IdentityOptions | IdentityDefinition): (request: IdentityRequest) => Promise<Identity> {
  return defineIdentity(options).resolve;
}

function resolveMapping(claims: ClaimMapping | undefined): ResolvedMapping {
  const attributes = [...(claims?.attributes ?? [])];
  const m: ResolvedMapping = {
    targetingKey: claims?.targetingKey ?? 'sub',
    roles: claims?.roles ?? 'roles',
    tenant: claims?.tenant ?? 'tenant',
    attributes,
    names: Object.freeze(['targetingKey', 'roles', 'tenant', ...attributes]),
  };
  for (const name of [m.targetingKey, m.roles, m.tenant, ...m.attributes]) {
    if (typeof name !== 'string' || name === '' || FORBIDDEN.has(name)) throw new ConfigError(`identity: claims mapping names an invalid claim ${JSON.stringify(name)}`);
  }
  for (const name of m.attributes) {
    if (RESERVED.has(name)) throw new ConfigError(`identity: claims.attributes may not include "${name}"; it is set by the mapping itself`);
  }
  return m;
}

function createVerifier(options: JwtVerifyOptions): (token: string) => JwtPayload {
  const algorithms = options.algorithms;
  if (!Array.isArray(algorithms) || algorithms.length === 0) {
    throw new ConfigError('identity: jwt.algorithms is required (e.g. ["RS256"]); the algorithm is never taken from the token');
  }
  const families = new Set(algorithms.map((a) => FAMILY[String(a).slice(0, 2)]));
  if (families.has(undefined) || families.size !== 1) {
    throw new ConfigError(`identity: jwt.algorithms must all be of one family (HS*, RS*/PS* or ES*), got ${algorithms.join(', ')}`);
  }
  const hmac = families.has('hmac');
  if ((options.secret === undefined) === (options.publicKey === undefined)) {
    throw new ConfigError('identity: give exactly one of jwt.secret (HS*) or jwt.publicKey (RS*/PS*/ES*)');
  }
  if (hmac !== (options.secret !== undefined)) {
    throw new ConfigError(hmac ? 'identity: HS* algorithms need jwt.secret' : 'identity: RS*/PS*/ES* algorithms need jwt.publicKey, not a secret');
  }
  let key: string | Buffer | KeyObject;
  if (hmac) {
    const secret = options.secret!;
    if (Buffer.byteLength(secret) < 32) throw new ConfigError('identity: jwt.secret must be at least 32 bytes of random data');
    key = createSecretKey(typeof secret === 'string' ? Buffer.from(secret) : secret);
  } else {
    key = options.publicKey!;
  }
  const clockTolerance = options.clockTolerance ?? 5;
  if (typeof clockTolerance !== 'number' || !Number.isFinite(clockTolerance) || clockTolerance < 0 || clockTolerance > MAX_CLOCK_TOLERANCE_SEC) {
    throw new ConfigError(`identity: jwt.clockTolerance must be a number of seconds from 0 to ${MAX_CLOCK_TOLERANCE_SEC}, got ${String(clockTolerance)}`);
  }
  const verifyOptions: jwt.VerifyOptions = {
    algorithms,
    clockTolerance,
    ...(options.issuer !== undefined ? { issuer: options.issuer as jwt.VerifyOptions['issuer'] } : {}),
    ...(options.audience !== undefined ? { audience: options.audience as jwt.VerifyOptions['audience'] } : {}),
    ...(options.maxAge !== undefined ? { maxAge: options.maxAge } : {}),
  };
  const cacheSize = options.cacheSize ?? DEFAULT_TOKEN_CACHE;
  if (!Number.isInteger(cacheSize) || cacheSize < 0 || cacheSize > MAX_TOKEN_CACHE) {
    throw new ConfigError(`identity: jwt.cacheSize must be a whole number from 0 to ${MAX_TOKEN_CACHE}, got ${String(cacheSize)}`);
  }
  // when a verified token stops being valid, by the same arithmetic as jsonwebtoken's
  const maxAge = options.maxAge;
  const maxAgeEnd = (iat: number): number => (maxAge === undefined ? Infinity : typeof maxAge === 'number' ? iat + maxAge : Math.floor(iat + ((ms(maxAge as ms.StringValue) as number | undefined) ?? NaN) / 1000));
  const verified = new Map<string, VerifiedToken>();

  const verifyFully = (token: string): JwtPayload => {
    let payload: string | JwtPayload;
    try {
      payload = jwt.verify(token, key, verifyOptions);
    } catch (e) {
      throw new IdentityError(`token rejected: ${(e as Error).name}`);
    }
    // jsonwebtoken 9 accepts string payloads and tokens without exp: we do not
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) throw new IdentityError('token payload is not an object');
    if (typeof payload.exp !== 'number') throw new IdentityError('token has no exp');
    return payload;
  };
  if (cacheSize === 0) return verifyFully;

  return (token) => {
    const now = Math.floor(Date.now() / 1000);
    const known = verified.get(token);
    if (known !== undefined) {
      if (now < known.validUntil && now >= known.validFrom) return known.payload;
      verified.delete(token); // expired (or the clock went back): verify again, for the error jsonwebtoken gives
    }
    const payload = Object.freeze(verifyFully(token));
    const validUntil = Math.min(payload.exp!, typeof payload.iat === 'number' ? maxAgeEnd(payload.iat) : Infinity) + clockTolerance;
    const validFrom = typeof payload.nbf === 'number' ? payload.nbf - clockTolerance : -Infinity;
    if (!(validUntil > now)) return payload; // NaN or past: never kept
    if (verified.size >= cacheSize) verified.delete(verified.keys().next().value!); // the oldest first
    verified.set(token, { payload, validUntil, validFrom });
    return payload;
  };
}

/** A token that passed verification: its payload, and the seconds (epoch) between which it stays valid. */
interface VerifiedToken {
  payload: JwtPayload;
  validUntil: number;
  validFrom: number;
}

function own(claims: object, name: string): unknown {
  return Object.prototype.hasOwnProperty.call(claims, name) ? (claims as Record<string, unknown>)[name] : undefined;
}

function primitive(value: unknown): string | number | boolean | undefined {
  if (typeof value === 'string') return value.length <= MAX_STRING ? value : undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'boolean') return value;
  return undefined;
}

/**
 * Builds the evaluation context from claims through the allow-list: a fresh object with only the
 * mapped names, primitive values of bounded size. Never a copy of the payload.
 */
export function identityFromClaims(claims: unknown, mapping: ResolvedMapping): Identity {
  if (claims === null || typeof claims !== 'object') throw new IdentityError('identity is not an object');
  const subject = own(claims, mapping.targetingKey);
  if (typeof subject !== 'string' || subject.length === 0 || subject.length > MAX_SUBJECT) {
    throw new IdentityError(`identity has no usable "${mapping.targetingKey}" claim`);
  }
  const context: IdentityContext = { targetingKey: subject, roles: [] };
  const rawRoles = own(claims, mapping.roles);
  const roles = (Array.isArray(rawRoles) ? rawRoles : rawRoles === undefined ? [] : [rawRoles])
    .slice(0, MAX_ARRAY)
    .filter((r): r is string => typeof r === 'string' && r.length <= MAX_STRING);
  context.roles = Object.freeze(roles) as string[]; // frozen: a handler cannot change what later guards decide
  const tenant = own(claims, mapping.tenant);
  if (typeof tenant === 'string' && tenant.length <= MAX_STRING) context.tenant = tenant;
  for (const name of mapping.attributes) {
    const value = own(claims, name);
    if (Array.isArray(value)) {
      context[name] = Object.freeze(value.slice(0, MAX_ARRAY).map(primitive).filter((v) => v !== undefined));
    } else {
      const v = primitive(value);
      if (v !== undefined) context[name] = v;
    }
  }
  return Object.freeze({ subject, context: Object.freeze(context), mappedNames: mapping.names });
}

/** @internal exposed for the adapters' option checks */
export function identityAttributeNames(claims: ClaimMapping | undefined): string[] {
  return [...resolveMapping(claims).names];
}
