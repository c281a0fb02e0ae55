import type { Request } from 'express';
import type { Identity } from '@rollgate/server';

// The verified identity of a request, kept beside it (not on it): nothing a client sends can
// set or overwrite it, and the Request type needs no augmentation.
const identities = new WeakMap<Request, Identity>();

export function setRequestIdentity(req: Request, identity: Identity): void {
  identities.set(req, identity);
}

/** The identity established by `identity()` for this request, if any. */
export function getRequestIdentity(req: Request): Identity | undefined {
  return identities.get(req);
}
