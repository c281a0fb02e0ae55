import jwt from 'jsonwebtoken';
import { RedisFlagStore } from '@rollgate/redis';
import type { IdentityOptions } from '@rollgate/server';

// The README's pilot, as the Express and Nest identity tests run it: an IdP whose tenant claim is
// `agency_id` (mapped with claims: { tenant: 'agency_id' }), VIP agencies by tenant, and a
// behaviour segment from the app's own data (bookings this month, added by `enrich`).

export const SECRET = 'identity-once-secret-of-32-bytes-at-least';
export const jwtOptions = { secret: SECRET, algorithms: ['HS256' as const], issuer: 'https://idp.test/', audience: 'booking-api' };

export const flags = {
  'fast-payment': {
    state: 'ENABLED',
    variants: { on: true, off: false },
    defaultVariant: 'off',
    targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { $ref: 'vip-agencies' }, 'on', 'off'] },
    metadata: { clientVisible: true },
  },
  'priority-support': {
    state: 'ENABLED',
    variants: { on: true, off: false },
    defaultVariant: 'off',
    targeting: { if: [{ $ref: 'busy-agents' }, 'on', 'off'] },
    metadata: { clientVisible: true },
  },
};
export const evaluators = {
  'vip-agencies': { in: [{ var: 'tenant' }, ['atlas', 'nordic', 'blue-lagoon']] },
  // behaviour: from the app's data, never from the token or the client
  'busy-agents': { '>': [{ var: 'bookingsThisMonth' }, 50] },
};

/** Bookings this month per agent, as the app's database would say. */
export const bookings: Record<string, number> = { v1: 80, v2: 3, v3: 51, v4: 50, v5: 120, v6: 0, n1: 77, n2: 10, n3: 0, ada: 0, mallory: 99 };

export interface Caller {
  name: string;
  claims: Record<string, unknown>;
  /** What fast-payment should be for them (the test checks the expectation, not only agreement). */
  fast: boolean;
  busy: boolean;
}

export const callers: Caller[] = [
  // six VIP agents, as in the issue: every one must get the button AND the API
  { name: 'v1', claims: { sub: 'v1', roles: ['agent'], agency_id: 'atlas' }, fast: true, busy: true },
  { name: 'v2', claims: { sub: 'v2', roles: ['agent'], agency_id: 'atlas' }, fast: true, busy: false },
  { name: 'v3', claims: { sub: 'v3', roles: ['agent'], agency_id: 'nordic' }, fast: true, busy: true },
  { name: 'v4', claims: { sub: 'v4', roles: ['agent'], agency_id: 'nordic' }, fast: true, busy: false },
  { name: 'v5', claims: { sub: 'v5', roles: ['agent'], agency_id: 'blue-lagoon' }, fast: true, busy: true },
  { name: 'v6', claims: { sub: 'v6', roles: ['agent'], agency_id: 'blue-lagoon' }, fast: true, busy: false },
  { name: 'n1', claims: { sub: 'n1', roles: ['agent'], agency_id: 'smallco' }, fast: false, busy: true },
  { name: 'n2', claims: { sub: 'n2', roles: ['agent'], agency_id: 'smallco' }, fast: false, busy: false },
  // a `tenant` claim the mapping does not read: never the tenant, anywhere
  { name: 'n3', claims: { sub: 'n3', roles: ['agent'], tenant: 'atlas', agency_id: 'smallco' }, fast: false, busy: false },
  { name: 'ada', claims: { sub: 'ada', roles: ['admin'], agency_id: 'internal' }, fast: true, busy: false },
  // a token that claims the behaviour attribute itself: the app's data wins (99 bookings), the claim is not read
  { name: 'mallory', claims: { sub: 'mallory', roles: ['agent'], agency_id: 'smallco', bookingsThisMonth: 0 }, fast: false, busy: true },
];

export function tokenOf(caller: Caller): string {
  return jwt.sign(caller.claims, SECRET, { algorithm: 'HS256', issuer: jwtOptions.issuer, audience: jwtOptions.audience, expiresIn: 300 });
}

/** The identity every set-up uses: verified JWT, the IdP's tenant claim, the app's bookings (counting loads). */
export function identityOptions(loads: { count: number } = { count: 0 }): IdentityOptions {
  return {
    jwt: jwtOptions,
    claims: { tenant: 'agency_id' },
    enrich: {
      attributes: ['bookingsThisMonth'],
      load: async (who) => {
        loads.count++;
        return { bookingsThisMonth: bookings[who.subject] ?? 0 };
      },
    },
  };
}

export async function seedIdentityScenario(redisUrl: string, env: string): Promise<RedisFlagStore> {
  const writer = new RedisFlagStore({ redis: redisUrl, env });
  await writer.apply(
    [
      ...Object.entries(evaluators).map(([key, definition]) => ({ kind: 'evaluator' as const, key, definition })),
      ...Object.entries(flags).map(([key, definition]) => ({ kind: 'flag' as const, key, definition })),
    ],
    { actor: 'test' },
  );
  return writer;
}
