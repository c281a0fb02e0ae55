import { applyDecorators, UseGuards, type ExecutionContext } from '@nestjs/common';
import { GUARDS_METADATA } from '@nestjs/common/constants';
import { ConfigError } from '@rollgate/redis';
import { featureRequirement, type FeatureRequirement, type FeatureRequirementOptions } from '@rollgate/server';
import type { FeatureRefusal } from './feature-denied.exception';
import { RouteFeatureGuard } from './require-feature.guard';
import { REQUIRE_FEATURE_METADATA } from './tokens';

export interface RequireFeatureOptions extends FeatureRequirementOptions {
  /** Answer 404 (the body Nest gives an unknown route) instead of 403, hiding that the route exists. @default false */
  hide?: boolean;
  /**
   * When no decision can be made (provider not ready, in error, too stale): 'unavailable' answers
   * 503 with Retry-After; 'deny' answers like a denial. Either way the handler does not run. @default 'unavailable'
   */
  whenUnavailable?: 'unavailable' | 'deny';
  /** Retry-After seconds on 503. @default 5 */
  retryAfterSec?: number;
  /** Your own exception for a denial or an undecidable request (instead of the default 403/404/503). */
  exceptionFactory?: (decision: FeatureRefusal, context: ExecutionContext) => Error;
}

/** One @RequireFeature, checked and frozen when the decorator is evaluated. */
export interface FeatureRequirementEntry {
  readonly requirement: FeatureRequirement;
  readonly hide: boolean;
  readonly whenUnavailable: 'unavailable' | 'deny';
  readonly retryAfterSec: number;
  readonly exceptionFactory: RequireFeatureOptions['exceptionFactory'];
}

function fail(message: string): never {
  throw new ConfigError(`@RequireFeature: ${message} (see docs/nest.md)`);
}

function entryFor(flagKeys: string | readonly string[], options: RequireFeatureOptions): FeatureRequirementEntry {
  if (options === null || typeof options !== 'object') fail('options must be an object');
  let requirement: FeatureRequirement;
  try {
    requirement = featureRequirement(flagKeys, options);
  } catch (e) {
    return fail((e as Error).message.replace(/^requireFeature: /, ''));
  }
  const whenUnavailable = options.whenUnavailable ?? 'unavailable';
  if (whenUnavailable !== 'unavailable' && whenUnavailable !== 'deny') fail(`options.whenUnavailable must be 'unavailable' or 'deny', got ${JSON.stringify(whenUnavailable)}`);
  if (options.hide !== undefined && typeof options.hide !== 'boolean') fail('options.hide must be a boolean');
  const retryAfterSec = options.retryAfterSec ?? 5;
  if (!Number.isInteger(retryAfterSec) || retryAfterSec < 0) fail(`options.retryAfterSec must be a whole number of seconds >= 0, got ${JSON.stringify(options.retryAfterSec)}`);
  if (options.exceptionFactory !== undefined && typeof options.exceptionFactory !== 'function') fail('options.exceptionFactory must be a function');
  return Object.freeze({ requirement, hide: options.hide ?? false, whenUnavailable, retryAfterSec, exceptionFactory: options.exceptionFactory });
}

/** Adds a requirement (stacked @RequireFeature on one target all apply, in source order). */
function appendRequirement(entry: FeatureRequirementEntry): ClassDecorator & MethodDecorator {
  return (target: object, _key?: string | symbol, descriptor?: PropertyDescriptor) => {
    const holder = (descriptor ? descriptor.value : target) as object;
    const existing = (Reflect.getMetadata(REQUIRE_FEATURE_METADATA, holder) as FeatureRequirementEntry[] | undefined) ?? [];
    // decorators apply bottom-up: prepend, so the topmost requirement is checked first
    Reflect.defineMetadata(REQUIRE_FEATURE_METADATA, [entry, ...existing], holder);
    return descriptor as never;
  };
}

/**
 * Moves the feature guard behind the other guards declared on the same class or handler, once
 * every decorator on it has been applied (decorators run synchronously; routes are read later).
 * So `@UseGuards(AuthGuard('jwt'))` sets `req.user` before the feature is checked, whichever
 * decorator is written first.
 */
function runAfterSiblingGuards(): ClassDecorator & MethodDecorator {
  return (target: object, _key?: string | symbol, descriptor?: PropertyDescriptor) => {
    const holder = (descriptor ? descriptor.value : target) as object;
    queueMicrotask(() => {
      const guards = Reflect.getOwnMetadata(GUARDS_METADATA, holder) as unknown[] | undefined;
      if (!guards) return;
      Reflect.defineMetadata(GUARDS_METADATA, [...guards.filter((g) => g !== RouteFeatureGuard), RouteFeatureGuard], holder);
    });
    return descriptor as never;
  };
}

/**
 * Lets a request reach the handler only when the feature is on for the caller. A real guard: it
 * runs before interceptors and pipes, after your auth guards. Fails closed: no identity → 401,
 * flag off / missing / mistyped → 403 (404 with `hide`), no decision possible → 503.
 *
 * ```ts
 * @RequireFeature('fast-payment')
 * @RequireFeature(['beta-ui', 'beta-api'], { mode: 'any', hide: true })
 * @RequireFeature('checkout-flow', { expected: 'fast' })
 * ```
 */
export function RequireFeature(flagKeys: string | readonly string[], options: RequireFeatureOptions = {}): ClassDecorator & MethodDecorator {
  const entry = entryFor(flagKeys, options);
  return applyDecorators(appendRequirement(entry), UseGuards(RouteFeatureGuard), runAfterSiblingGuards());
}
