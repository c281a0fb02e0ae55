import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { AsyncLocalStorageTransactionContextPropagator, OpenFeature } from '@openfeature/server-sdk';
import { createIdentityResolver, IdentityError, type IdentityOptions } from '@rollgate/server';
import { setRequestIdentity } from './request-identity';

export interface IdentityMiddlewareOptions extends IdentityOptions {
  /**
   * Run the rest of the request inside OpenFeature's transaction context, so every evaluation
   * made while handling it (without passing a context) uses the caller's identity. Installs the
   * AsyncLocalStorage propagator. @default true
   */
  transactionContext?: boolean;
  /** Receives one line per rejected request (never the token). @default silent */
  logger?: { debug(message: string): void };
}

/** Sends the 401 every authentication failure gets: no detail for the client. */
export function sendUnauthorized(res: Response): void {
  res.status(401).set('WWW-Authenticate', 'Bearer').set('Cache-Control', 'no-store').json({ error: 'unauthorized' });
}

/**
 * Establishes who is calling, from a verified Bearer JWT or from your own auth (`getIdentity`),
 * and builds the evaluation context through the claims allow-list. Rejects with 401 otherwise.
 */
export function identity(options: IdentityMiddlewareOptions): RequestHandler {
  return authenticate(options, sendUnauthorized);
}

/**
 * identity() with the 401 answer chosen by the caller: the OFREP and admin routers answer in
 * their own error format. Not exported from the package.
 */
export function authenticate(options: IdentityMiddlewareOptions, unauthorized: (res: Response) => void): RequestHandler {
  const resolve = createIdentityResolver(options);
  const propagate = options.transactionContext !== false;
  if (propagate) OpenFeature.setTransactionContextPropagator(new AsyncLocalStorageTransactionContextPropagator());
  const logger = options.logger;
  return (req: Request, res: Response, next: NextFunction) => {
    resolve(req)
      .then(
        (who) => {
          setRequestIdentity(req, who);
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
