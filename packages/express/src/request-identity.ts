import type { Request } from 'express';
import type { Identity, IdentityDefinition } from '@rollgate/server';

// The verified identity of a request, kept beside it (not on it): nothing a client sends can
// set or overwrite it, and the Request type needs no augmentation. With it, the definition that
// resolved it: a router with its own definition refuses a request another one has identified.

const identities = new WeakMap<Request, { identity: Identity; definition: IdentityDefinition }>();

export function setRequestIdentity(req: Request, identity: Identity, definition: IdentityDefinition): void {
  identities.set(req, { identity, definition });
}

/** The identity established by `identity()` for this request, if any. */
export function getRequestIdentity(req: Request): Identity | undefined {
  return identities.get(req)?.identity;
}

/** The definition that identified this request, if any. */
export function requestIdentityDefinition(req: Request): IdentityDefinition | undefined {
  return identities.get(req)?.definition;
}
