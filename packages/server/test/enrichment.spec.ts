import { defineIdentity, type EnrichmentOptions, type Identity } from '@rollgate/server';

// The enrichment step: trusted attributes from the app's data, allow-listed, cached per caller,
// bounded in time; a failure leaves them out (rules on them do not match) and is retried later.

type Req = { headers: Record<string, string>; user: { sub: string; roles?: string[]; tenant?: string; [k: string]: unknown } };
const req = (sub: string, extra: Record<string, unknown> = {}): Req => ({ headers: {}, user: { sub, roles: ['agent'], ...extra } });

function setUp(enrich: Partial<EnrichmentOptions> & Pick<EnrichmentOptions, 'load'>, claims = {}) {
  let now = 1_000_000;
  const warnings: string[] = [];
  const who = defineIdentity({
    getIdentity: (r: Req) => r.user,
    claims,
    enrich: { attributes: ['bookingsThisMonth', 'cohorts'], now: () => now, logger: { warn: (m) => warnings.push(m) }, ...enrich },
  });
  return { resolve: (r: Req) => who.resolve(r as never), who, warnings, advance: (ms: number) => (now += ms) };
}

afterEach(() => jest.useRealTimers());

it('adds the allow-listed attributes after the claims, frozen, and owns their names', async () => {
  const { resolve, who } = setUp({ load: async () => ({ bookingsThisMonth: 51, cohorts: ['loyal', 7, { no: 1 }], roles: ['admin'], secret: 'x', tenant: 'atlas' }) });
  const got = await resolve(req('bo', { tenant: 'smallco' }));
  // roles and tenant come from the claims only; unknown names and non-primitive values are dropped
  expect(got.context).toEqual({ targetingKey: 'bo', roles: ['agent'], tenant: 'smallco', bookingsThisMonth: 51, cohorts: ['loyal', 7] });
  expect(Object.isFrozen(got.context)).toBe(true);
  expect(Object.isFrozen(got.context.cohorts)).toBe(true);
  expect(who.ownedNames).toEqual(['targetingKey', 'roles', 'tenant', 'bookingsThisMonth', 'cohorts']);
  expect(got.mappedNames).toEqual(who.ownedNames);
});

it('never reads an enriched attribute from the claims: a token claiming it gets the value of the data', async () => {
  const { resolve } = setUp({ load: async () => ({ bookingsThisMonth: 2 }) }, { attributes: ['plan'] });
  const got = await resolve(req('bo', { bookingsThisMonth: 999, plan: 'gold' }));
  expect(got.context).toEqual({ targetingKey: 'bo', roles: ['agent'], plan: 'gold', bookingsThisMonth: 2 });
});

it('loads once per caller per ttlMs, and once for concurrent requests', async () => {
  const calls: string[] = [];
  const { resolve, advance } = setUp({ ttlMs: 60_000, load: async (w: Identity) => (calls.push(w.subject), { bookingsThisMonth: calls.length }) });
  const [a, b] = await Promise.all([resolve(req('bo')), resolve(req('bo'))]);
  expect([a.context.bookingsThisMonth, b.context.bookingsThisMonth]).toEqual([1, 1]);
  advance(59_999);
  expect((await resolve(req('bo'))).context.bookingsThisMonth).toBe(1);
  await resolve(req('cy'));
  advance(2);
  expect((await resolve(req('bo'))).context.bookingsThisMonth).toBe(3);
  expect(calls).toEqual(['bo', 'cy', 'bo']);
});

it('a failed load: the caller goes without the attributes (fail closed), logged, retried after retryAfterMs', async () => {
  let fail = true;
  let calls = 0;
  const { resolve, advance, warnings } = setUp({
    retryAfterMs: 5_000,
    load: async () => {
      calls++;
      if (fail) throw new Error('db down');
      return { bookingsThisMonth: 80 };
    },
  });
  expect((await resolve(req('bo'))).context).toEqual({ targetingKey: 'bo', roles: ['agent'] });
  expect(warnings).toEqual(['rollgate: enrich.load failed for "bo" (db down); evaluating without bookingsThisMonth, cohorts for 5000 ms']);
  fail = false;
  advance(4_999);
  expect((await resolve(req('bo'))).context.bookingsThisMonth).toBeUndefined(); // not hammering a failing database
  advance(1);
  expect((await resolve(req('bo'))).context.bookingsThisMonth).toBe(80);
  expect(calls).toBe(2);
});

it('a load that returns something other than an object is a failure too', async () => {
  const { resolve, warnings } = setUp({ load: async () => 42 as never });
  expect((await resolve(req('bo'))).context).toEqual({ targetingKey: 'bo', roles: ['agent'] });
  expect(warnings[0]).toMatch(/returned no attributes object/);
});

it('a slow load: the request goes on without the attributes after timeoutMs; the late answer serves the next request', async () => {
  jest.useFakeTimers();
  let answer: (v: Record<string, unknown>) => void = () => undefined;
  let calls = 0;
  const { resolve, warnings } = setUp({ timeoutMs: 200, load: () => (calls++, new Promise((r) => (answer = r))) });
  const pending = resolve(req('bo'));
  await jest.advanceTimersByTimeAsync(200);
  expect((await pending).context).toEqual({ targetingKey: 'bo', roles: ['agent'] });
  expect(warnings).toEqual(['rollgate: enrich.load for "bo" took longer than 200 ms; evaluating without bookingsThisMonth, cohorts']);
  answer({ bookingsThisMonth: 77 });
  await jest.advanceTimersByTimeAsync(0);
  expect((await resolve(req('bo'))).context.bookingsThisMonth).toBe(77);
  expect(calls).toBe(1);
});

it('keeps at most maxEntries callers (least recently used dropped first)', async () => {
  const calls: string[] = [];
  const { resolve } = setUp({ maxEntries: 2, load: async (w: Identity) => (calls.push(w.subject), { bookingsThisMonth: 1 }) });
  for (const sub of ['a', 'b', 'a', 'c', 'a', 'b']) await resolve(req(sub));
  // a stays (recently used), b was dropped when c came, so b loads twice
  expect(calls).toEqual(['a', 'b', 'c', 'b']);
});

it('refuses bad options at start-up, naming the option', () => {
  const base = { getIdentity: () => undefined };
  const load = async () => ({});
  expect(() => defineIdentity({ ...base, enrich: { attributes: [], load } })).toThrow("enrich.attributes must list the context names load() may set, e.g. ['bookingsThisMonth']");
  expect(() => defineIdentity({ ...base, enrich: { attributes: ['x'] } as never })).toThrow('enrich.load(identity) is required');
  expect(() => defineIdentity({ ...base, enrich: { attributes: ['tenant'], load } })).toThrow('enrich.attributes may not include "tenant": the verified token\'s claims set it');
  expect(() => defineIdentity({ ...base, claims: { attributes: ['plan'] }, enrich: { attributes: ['plan'], load } })).toThrow('may not include "plan"');
  expect(() => defineIdentity({ ...base, enrich: { attributes: ['__proto__'], load } })).toThrow('invalid attribute "__proto__"');
  expect(() => defineIdentity({ ...base, enrich: { attributes: ['$ref'], load } })).toThrow('invalid attribute "$ref"');
  expect(() => defineIdentity({ ...base, enrich: { attributes: ['a'], load, ttlMs: 0 } })).toThrow('enrich.ttlMs must be a positive number of milliseconds, got 0');
  expect(() => defineIdentity({ ...base, enrich: { attributes: ['a'], load, maxEntries: 1.5 } })).toThrow('enrich.maxEntries must be a positive integer');
});

it('a definition given again is the same definition', () => {
  const who = defineIdentity({ getIdentity: () => undefined });
  expect(defineIdentity(who)).toBe(who);
});
