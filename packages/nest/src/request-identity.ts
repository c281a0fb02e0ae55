import type { Identity } from '@rollgate/server';

// Per-request state kept beside the request (not on it): nothing a client sends can set or
// overwrite it, and the request type needs no augmentation.

const identities = new WeakMap<object, Identity>();
const pending = new WeakMap<object, Promise<Identity>>();

/**
 * Resolves the caller once per request. A success is cached; a failure is not, so that a later
 * check (after your auth guard has set `req.user`) resolves again.
 */
export function identifyOnce(request: object, resolve: () => Promise<Identity>): Promise<Identity> {
  const known = identities.get(request);
  if (known) return Promise.resolve(known);
  let inFlight = pending.get(request);
  if (!inFlight) {
    inFlight = resolve().then(
      (who) => {
        identities.set(request, who);
        pending.delete(request);
        return who;
      },
      (err: unknown) => {
        pending.delete(request);
        throw err;
      },
    );
    pending.set(request, inFlight);
  }
  return inFlight;
}

/** The identity Rollgate established for this request (by a guard, the interceptor or OFREP), if any. */
export function getRequestIdentity(request: object): Identity | undefined {
  return identities.get(request);
}
