import { Inject, Injectable, NotFoundException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { GUARDS_METADATA } from '@nestjs/common/constants';
import { decideFeature, IdentityError, withExposureScope, type FeatureRequirement, type Identity } from '@rollgate/server';
import { FeatureDeniedException, FeatureUnavailableException, IdentityRequiredException } from './feature-denied.exception';
import type { FeatureRequirementEntry } from './require-feature.decorator';
import type { RollgateRuntime } from './rollgate.runtime';
import { REQUIRE_FEATURE_METADATA, ROLLGATE_RUNTIME } from './tokens';

type HttpRequest = { method?: string; url?: string; originalUrl?: string; headers: Record<string, unknown> };
type HttpResponse = { setHeader?(name: string, value: string): unknown; header?(name: string, value: string): unknown };

/** Requests whose class-level feature guard has deferred to the handler-level one. */
const deferred = new WeakSet<object>();

function requirementsOf(context: ExecutionContext): FeatureRequirementEntry[] {
  const onClass = (Reflect.getMetadata(REQUIRE_FEATURE_METADATA, context.getClass()) as FeatureRequirementEntry[] | undefined) ?? [];
  const onHandler = (Reflect.getMetadata(REQUIRE_FEATURE_METADATA, context.getHandler()) as FeatureRequirementEntry[] | undefined) ?? [];
  return [...onClass, ...onHandler];
}

function hasRouteGuard(target: object): boolean {
  const guards = (Reflect.getMetadata(GUARDS_METADATA, target) as unknown[] | undefined) ?? [];
  return guards.some((g) => g === RouteFeatureGuard || g instanceof RouteFeatureGuard);
}

function setHeader(res: HttpResponse, name: string, value: string): void {
  if (typeof res.setHeader === 'function') res.setHeader(name, value);
  else if (typeof res.header === 'function') res.header(name, value); // fastify reply
}

/**
 * Enforces `@RequireFeature` before interceptors, pipes and the handler. `@RequireFeature` applies
 * it to its route by itself; registered as `APP_GUARD` it leaves routes without the decorator
 * untouched and lets the route-level check (which runs after your auth guards) decide the rest.
 */
@Injectable()
export class RequireFeatureGuard implements CanActivate {
  constructor(@Inject(ROLLGATE_RUNTIME) private readonly runtime: RollgateRuntime) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const requirements = requirementsOf(context);
    if (requirements.length === 0) return true;

    const onClass = hasRouteGuard(context.getClass());
    const onHandler = hasRouteGuard(context.getHandler());
    if (!(this instanceof RouteFeatureGuard)) {
      // global (or manual) registration: the route's own feature guard runs later, after the
      // route's auth guards, and decides; with none, decide here
      if (onClass || onHandler) return true;
    }

    if (context.getType() !== 'http') {
      this.runtime.logger.warn(`rollgate: @RequireFeature on a ${context.getType()} handler (${context.getClass().name}.${context.getHandler().name}) is refused: only HTTP is supported`);
      return false;
    }
    const http = context.switchToHttp();
    const req = http.getRequest<HttpRequest>();
    const res = http.getResponse<HttpResponse>();

    if (this instanceof RouteFeatureGuard && onClass && onHandler && !deferred.has(req)) {
      // class- and handler-level guards both run: decide at the later one, after every auth guard
      deferred.add(req);
      return true;
    }

    let who: Identity;
    try {
      who = await this.runtime.identify(req);
    } catch (e) {
      if (!(e instanceof IdentityError)) throw e; // a bug in getIdentity: an error, never an allow
      this.runtime.logger.debug?.(`rollgate: 401 ${req.method} ${req.originalUrl ?? req.url}: ${e.message}`);
      setHeader(res, 'WWW-Authenticate', 'Bearer');
      setHeader(res, 'Cache-Control', 'no-store');
      throw new IdentityRequiredException();
    }

    for (const entry of requirements) {
      const requirement: FeatureRequirement = entry.requirement.domain === undefined && this.runtime.domain !== undefined ? { ...entry.requirement, domain: this.runtime.domain } : entry.requirement;
      const exposures = this.runtime.exposuresOf(req, res);
      const decide = () => decideFeature(this.runtime.clientFor(requirement.domain), requirement, who.context);
      // an allowed request counts in the arms of the variants that let it in (when outcomes are recorded)
      const decision = await (exposures ? withExposureScope(exposures, decide) : decide());
      if (decision.outcome === 'allow') continue;
      this.runtime.logger.debug?.(`rollgate: ${decision.outcome} ${req.method} ${req.originalUrl ?? req.url} for ${who.subject}: ${decision.flagKey}: ${decision.reason}`);
      if (entry.exceptionFactory) {
        const custom = entry.exceptionFactory(decision, context);
        throw custom instanceof Error ? custom : new FeatureDeniedException(decision);
      }
      setHeader(res, 'Cache-Control', 'no-store');
      if (decision.outcome === 'unavailable' && entry.whenUnavailable === 'unavailable') {
        setHeader(res, 'Retry-After', String(entry.retryAfterSec));
        throw new FeatureUnavailableException(decision);
      }
      // the same body Nest sends for a route that does not exist
      if (entry.hide) throw new NotFoundException(`Cannot ${req.method} ${req.originalUrl ?? req.url}`);
      throw new FeatureDeniedException(decision);
    }
    return true;
  }
}

/** The guard `@RequireFeature` puts on its class or handler (the global one defers to it). */
@Injectable()
export class RouteFeatureGuard extends RequireFeatureGuard {}
