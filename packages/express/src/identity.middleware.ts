import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { AsyncLocalStorageTransactionContextPropagator, OpenFeature } from '@openfeature/server-sdk';
import { ConfigError } from '@rollgate/redis';
import { defineIdentity, IdentityError, isIdentityDefinition, type IdentityDefinition, type IdentityOptions } from '@rollgate/server';
import { requestIdentityDefinition, setRequestIdentity } from './request-identity';

/** How the middleware behaves, apart from who the caller is. */
export interface IdentityMiddlewareBehaviour {
  /**
   * Run the rest of the request inside OpenFeature's transaction context, so every evaluation
   * made while handling it (without passing a context) uses the caller's identity. Installs the
   * AsyncLocalStorage propagator. @default true
   */
  transactionContext?: boolean;
  /** Receives one line per rejected request (never the token). @default silent */
  logger?: { debug(message: string): void };
}

export interface IdentityMiddlewareOptions extends IdentityOptions, IdentityMiddlewareBehaviour {}

/** Sends the 401 every authentication failure gets: no detail for the client. */
export function sendUnauthorized(res: Response): void {
  res.status(401).set('WWW-Authenticate', 'Bearer').set('Cache-Control', 'no-store').json({ error: 'unauthorized' });
}

/**
 * Establishes who is calling, from a verified Bearer JWT or from your own auth (`getIdentity`),
 * and builds the evaluation context through the claims allow-list (and `enrich`). Rejects with
 * 401 otherwise. Give it the identity you define once with `defineIdentity()` and hand to
 * `ofrep()` and `adminRouter()` too — or, when nothing else identifies callers, its options.
 */
export function identity(definition: IdentityDefinition, options?: IdentityMiddlewareBehaviour): RequestHandler;
export function identity(options: IdentityMiddlewareOptions): RequestHandler;
export function identity(given: IdentityDefinition | IdentityMiddlewareOptions, behaviour?: IdentityMiddlewareBehaviour): RequestHandler {
  const options = isIdentityDefinition(given) ? (behaviour ?? {}) : (given ?? {});
  return authenticate(defineIdentity(given), options, sendUnauthorized);
}

/**
 * Where a request already identified by ANOTHER identity definition arrives: two definitions
 * in one app can map the same token to different contexts, so the guard and OFREP would disagree.
 */
export function twoDefinitionsError(where: string): ConfigError {
  return new ConfigError(
    `${where}: this request was already identified by another identity definition. Define the identity once — ` +
      'const callers = defineIdentity({ jwt, claims }) — and give that same object to identity(), ofrep() and adminRouter() (see docs/express.md#identity-define-it-once)',
  );
}

/**
 * identity() with the 401 answer chosen by the caller: the OFREP and admin routers answer in
 * their own error format. A request already identified by the same definition goes on as it is.
 * Not exported from the package.
 */
export function authenticate(definition: IdentityDefinition, options: IdentityMiddlewareBehaviour, unauthorized: (res: Response) => void, where = 'identity()'): RequestHandler {
  const propagate = options.transactionContext !== false;
  if (propagate) OpenFeature.setTransactionContextPropagator(new AsyncLocalStorageTransactionContextPropagator());
  const logger = options.logger;
  return (req: Request, res: Response, next: NextFunction) => {
    const known = requestIdentityDefinition(req);
    if (known === definition) return next();
    if (known !== undefined) return next(twoDefinitionsError(where));
    definition
      .resolve(req)
      .then(
        (who) => {
          setRequestIdentity(req, who, definition);
          if (propagate) OpenFeature.setTransactionContext({ ...who.context } as never, () => next());
          else next();
        },
        (err: unknown) => {
          if (err instanceof IdentityError) {
            logger?.debug(`rollgate: 401 ${req.method} ${req.path}: ${err.message}`);
            unauthorized(res);
          } else next(err); // a bug in getIdentity: let the app's error handler answer (never an allow)
        },
      )
      .catch(next);
  };
}
