import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { OpenFeature, type Client } from '@openfeature/server-sdk';
import { decideFeature, decideFeatureNow, featureRequirement, type FeatureDecision, type FeatureRequirementOptions } from '@rollgate/server';
import { getRequestIdentity } from './request-identity';
import { sendUnauthorized } from './identity.middleware';

export interface RequireFeatureOptions extends FeatureRequirementOptions {
  /** Answer 404 instead of 403 when denied, hiding that the route exists. @default false */
  hide?: boolean;
  /**
   * When no decision can be made (provider not ready, in error, too stale): 'unavailable' answers
   * 503 with Retry-After; 'deny' answers like a denial. Either way the handler does not run. @default 'unavailable'
   */
  whenUnavailable?: 'unavailable' | 'deny';
  /** Retry-After seconds on 503. @default 5 */
  retryAfterSec?: number;
  /** Your own denial response (called instead of the default 403/404/503). */
  onDeny?: (req: Request, res: Response, decision: Exclude<FeatureDecision, { outcome: 'allow' }>) => void;
  /** OpenFeature client to evaluate with. @default OpenFeature.getClient(options.domain) */
  client?: Client;
  /** Receives one line per denial, with the reason (never the token). @default silent */
  logger?: { debug(message: string): void };
}

/**
 * Lets the request through only when the feature is on for the caller (`identity()` must run
 * first). Fails closed: no identity → 401; flag off, missing or mistyped → 403 (404 with `hide`);
 * no decision possible → 503. The handler never runs unless the decision is allow.
 */
export function requireFeature(flagKeys: string | readonly string[], options: RequireFeatureOptions = {}): RequestHandler {
  const requirement = featureRequirement(flagKeys, options);
  const client = options.client ?? (options.domain === undefined ? OpenFeature.getClient() : OpenFeature.getClient(options.domain));
  const retryAfter = String(options.retryAfterSec ?? 5);
  const whenUnavailable = options.whenUnavailable ?? 'unavailable';
  const answer = (req: Request, res: Response, next: NextFunction, subject: string, decision: FeatureDecision): void => {
    if (decision.outcome === 'allow') {
      next();
      return;
    }
    options.logger?.debug(`rollgate: ${decision.outcome} ${req.method} ${req.path} for ${subject}: ${decision.flagKey}: ${decision.reason}`);
    if (options.onDeny) {
      options.onDeny(req, res, decision);
      return;
    }
    res.set('Cache-Control', 'no-store');
    if (decision.outcome === 'unavailable' && whenUnavailable === 'unavailable') {
      res.status(503).set('Retry-After', retryAfter).json({ error: 'feature_decision_unavailable' });
    } else if (options.hide) {
      res.status(404).json({ error: 'not_found' });
    } else {
      res.status(403).json({ error: 'feature_not_enabled' });
    }
  };
  return (req: Request, res: Response, next: NextFunction) => {
    const who = getRequestIdentity(req);
    if (!who) {
      options.logger?.debug(`rollgate: 401 ${req.method} ${req.path}: requireFeature(${requirement.flags.join(', ')}) found no identity; mount identity() before it`);
      sendUnauthorized(res);
      return;
    }
    // On the direct path the decision is made here, without a promise: a throwing onDeny then
    // reaches the app's error handler through Express, as below through .catch(next).
    const now = decideFeatureNow(client, requirement, who.context);
    if (now) {
      answer(req, res, next, who.subject, now);
      return;
    }
    decideFeature(client, requirement, who.context).then((decision) => answer(req, res, next, who.subject, decision)).catch(next); // never an allow on error
  };
}
