import jwt from 'jsonwebtoken';

// DEMO ONLY. A hard-coded HMAC key that is public in this repository: anyone can mint an admin
// token with it. Real apps verify tokens from their identity provider (RS256/ES256 with
// issuer and audience pinned) — see docs/security.md.
export const DEMO_ONLY_JWT_SECRET = 'DEMO-ONLY-never-use-this-key-in-production!!';

export const DEMO_JWT = { secret: DEMO_ONLY_JWT_SECRET, algorithms: ['HS256' as const], issuer: 'rollgate-demo', audience: 'booking-api' };

export interface DemoUser {
  roles: string[];
  tenant: string;
  /** What the demo shows this user, for the start-up banner. */
  story: string;
}

/** The demo's people; `sub` is the key. Bucketing is by flag key + sub, so these stay put. */
export const DEMO_USERS: Readonly<Record<string, DemoUser>> = Object.freeze({
  ada: { roles: ['admin'], tenant: 'internal', story: 'admin: sees Fast payment, the demo switches and the link to the Rollgate dashboard' },
  bo: { roles: ['agent'], tenant: 'atlas-travel', story: 'agent at Atlas Travel, a VIP agency: sees Fast payment' },
  carol: { roles: ['customer'], tenant: 'smallco', story: 'customer outside the 20% rollout: no Fast payment, and the API answers 403' },
  dale: { roles: ['customer'], tenant: 'smallco', story: 'customer inside the 20% rollout: sees Fast payment' },
});

/** A demo token for `name` (12 h), or undefined for anyone else. */
export function demoToken(name: string): string | undefined {
  if (!Object.prototype.hasOwnProperty.call(DEMO_USERS, name)) return undefined;
  const { roles, tenant } = DEMO_USERS[name]!;
  return signDemoToken({ sub: name, roles, tenant }, '12h');
}

/** A token for any identity, signed with the demo key: the traffic generator's simulated customers. */
export function signDemoToken(claims: { sub: string; roles: string[]; tenant: string }, expiresIn: '12h' | '5m' = '5m'): string {
  return jwt.sign(claims, DEMO_ONLY_JWT_SECRET, { algorithm: 'HS256', issuer: DEMO_JWT.issuer, audience: DEMO_JWT.audience, expiresIn });
}
