import express, { type Express } from 'express';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { MemoryFlagStore } from '@rollgate/redis';
import { defineIdentity, adminRouter } from '@rollgate/express';

// The admin API over the same write path as the CLI (the store contract suite covers Redis):
// authorization, If-Match versions, validation errors, prototype-pollution payloads.

const SECRET = 'admin-test-secret-that-is-32-bytes!!';
const jwtOptions = { secret: SECRET, algorithms: ['HS256' as const] };
const sign = (claims: Record<string, unknown>) => jwt.sign(claims, SECRET, { algorithm: 'HS256', expiresIn: 300 });
const flagAdmin = { Authorization: `Bearer ${sign({ sub: 'alice', roles: ['flag-admin'] })}` };
const agent = { Authorization: `Bearer ${sign({ sub: 'bob', roles: ['agent'] })}` };
const theme = { state: 'ENABLED', variants: { classic: 'classic', bold: 'bold' }, defaultVariant: 'classic' };

let store: MemoryFlagStore;
let app: Express;

beforeEach(async () => {
  store = new MemoryFlagStore();
  await store.putFlag('checkout-theme', theme, { actor: 'seed' });
  app = express();
  app.use(adminRouter({ store, identity: defineIdentity({ jwt: jwtOptions }), authorize: (who) => who.context.roles.includes('flag-admin') }));
});

it('refuses to be created without an authorize callback', () => {
  expect(() => adminRouter({ store } as never)).toThrow('options.authorize(identity) is required');
});

it('answers 401 without a token and 403 for callers authorize() rejects, changing nothing', async () => {
  await request(app).get('/rollgate/admin/flags').expect(401);
  await request(app).put('/rollgate/admin/flags/checkout-theme').set(agent).set('If-Match', '"1"').send(theme).expect(403, { error: 'forbidden' });
  const throwing = express().use(adminRouter({ store, identity: defineIdentity({ jwt: jwtOptions }), authorize: () => { throw new Error('db down'); } }));
  await request(throwing).delete('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '1').expect(403);
  expect((await store.load()).version).toBe(1);
});

it('without its own identity options, refuses a request no identity() authenticated, before reading its body', async () => {
  // an app that forgot to mount identity() before the router: every request is refused
  const open = express().use(adminRouter({ store, authorize: () => true }));
  const res = await request(open).put('/rollgate/admin/flags/checkout-theme').set('If-Match', '"1"').set('Content-Type', 'application/json').send('{not json');
  expect(res.status).toBe(401);
  expect(res.headers['www-authenticate']).toBe('Bearer');
  await request(open).get('/rollgate/admin/flags').expect(401);
  expect((await store.load()).version).toBe(1);
});

it('reads flags with their version as ETag, and writes with If-Match, attributed to the caller', async () => {
  const got = await request(app).get('/rollgate/admin/flags/checkout-theme').set(flagAdmin).expect(200);
  expect(got.body).toEqual({ version: 1, key: 'checkout-theme', definition: theme });
  expect(got.headers.etag).toBe('"1"');
  const put = await request(app)
    .patch('/rollgate/admin/flags/checkout-theme')
    .set(flagAdmin)
    .set('If-Match', got.headers.etag!)
    .set('Rollgate-Reason', 'bold for the sale')
    .send({ defaultVariant: 'bold' })
    .expect(200, { version: 2 });
  expect(put.headers.etag).toBe('"2"');
  const [entry] = await store.audit('checkout-theme', { limit: 1 });
  expect(entry).toMatchObject({ actor: 'alice', action: 'patch', reason: 'bold for the sale', version: 2 });
  const list = await request(app).get('/rollgate/admin/flags').set(flagAdmin).expect(200);
  expect(list.body.flags['checkout-theme'].defaultVariant).toBe('bold');
});

it('audits its writes with the CLI\'s words for the same operations (disable, enable, rollout), and writes nothing when nothing changes', async () => {
  const fast = {
    state: 'ENABLED',
    variants: { on: true, off: false },
    defaultVariant: 'off',
    targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { fractional: [['on', 5], ['off', 95]] }] },
  };
  await store.putFlag('fast-payment', fast, { actor: 'seed' }); // v2
  let version = 2;
  const write = async (method: 'patch' | 'put', body: object) => {
    const res = await request(app)[method]('/rollgate/admin/flags/fast-payment').set(flagAdmin).set('If-Match', `"${version}"`).send(body).expect(200);
    version = (res.body as { version: number }).version;
    return res.body as { version: number; unchanged?: true };
  };
  const lastAction = async () => (await store.audit('fast-payment', { limit: 1 }))[0]!.action;
  // what the dashboard sends
  await write('patch', { state: 'DISABLED' });
  expect(await lastAction()).toBe('disable');
  await write('patch', { state: 'ENABLED' });
  expect(await lastAction()).toBe('enable');
  await write('patch', { targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { fractional: [['on', 20], ['off', 80]] }] } });
  expect(await lastAction()).toBe('rollout');
  await write('put', { ...fast, targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { fractional: [['on', 50], ['off', 50]] }] } });
  expect(await lastAction()).toBe('rollout');
  await write('put', { ...fast, state: 'DISABLED', targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { fractional: [['on', 50], ['off', 50]] }] } });
  expect(await lastAction()).toBe('disable');
  // anything else keeps its own name
  await write('patch', { state: 'ENABLED', defaultVariant: 'on' });
  expect(await lastAction()).toBe('patch');
  await write('patch', { targeting: { if: [{ in: ['agent', { var: 'roles' }] }, 'on', { fractional: [['on', 50], ['off', 50]] }] } });
  expect(await lastAction()).toBe('patch'); // the rule changed, not only the split
  await write('put', { ...fast, defaultVariant: 'on', targeting: { if: [{ in: ['agent', { var: 'roles' }] }, 'on', { fractional: [{ var: 'tenant' }, ['on', 50], ['off', 50]] }] } });
  expect(await lastAction()).toBe('put'); // bucketing by another attribute is not a rollout %
  const entries = (await store.audit('fast-payment')).length;
  // nothing changed: 200 with the current version, no version, no audit entry
  const current = (await store.load()).flags['fast-payment'] as Record<string, unknown>;
  expect(await write('patch', { state: current.state })).toEqual({ version, unchanged: true });
  expect(await write('put', Object.fromEntries(Object.entries(current).reverse()))).toEqual({ version, unchanged: true });
  expect((await store.audit('fast-payment')).length).toBe(entries);
  expect((await store.load()).version).toBe(version);
});

it('answers 409 to a stale If-Match and 428 without one, writing nothing', async () => {
  await store.patchFlag('checkout-theme', { defaultVariant: 'bold' }, { actor: 'someone-else' }); // now v2
  const stale = await request(app).put('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '"1"').send(theme).expect(409);
  expect(stale.body).toMatchObject({ error: 'version_conflict', currentVersion: 2 });
  await request(app).put('/rollgate/admin/flags/checkout-theme').set(flagAdmin).send(theme).expect(428);
  expect((await store.load()).flags['checkout-theme']).toMatchObject({ defaultVariant: 'bold' });
});

it('answers 400 with the path-qualified message for invalid input, writing nothing', async () => {
  const res = await request(app)
    .put('/rollgate/admin/flags/fast-payment')
    .set(flagAdmin)
    .set('If-Match', '1')
    .send({ state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'nope' })
    .expect(400);
  expect(res.body.issues).toEqual(['flags.fast-payment.defaultVariant: "nope" is not one of the variants on, off']);
  await request(app).put('/rollgate/admin/flags/x').set(flagAdmin).set('If-Match', '1').set('Content-Type', 'application/json').send('{"state":').expect(400);
  await request(app)
    .patch('/rollgate/admin/flags/checkout-theme')
    .set(flagAdmin)
    .set('If-Match', '1')
    .send({ owner: 'x' })
    .expect(400, { error: 'invalid', message: 'cannot patch "owner"; patchable fields are state, variants, defaultVariant, targeting, metadata' });
  expect((await store.load()).version).toBe(1);
});

it('answers a bug in the store as a server error, not as the caller\'s bad input with its message', async () => {
  const buggy = Object.create(store, { apply: { value: () => Promise.reject(new TypeError("Cannot read properties of undefined (reading 'x')")) } }) as MemoryFlagStore;
  const a = express().use(adminRouter({ store: buggy, identity: defineIdentity({ jwt: jwtOptions }), authorize: () => true }));
  a.use((_err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => res.status(500).json({ error: 'internal' }));
  await request(a).put('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '1').send(theme).expect(500, { error: 'internal' });
});

it('refuses prototype-pollution payloads', async () => {
  const body = '{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on","__proto__":{"polluted":true}}';
  const res = await request(app).put('/rollgate/admin/flags/evil').set(flagAdmin).set('If-Match', '1').set('Content-Type', 'application/json').send(body).expect(400);
  expect(res.body.message).toContain('the key "__proto__" is forbidden');
  await request(app).patch('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '1').set('Content-Type', 'application/json').send('{"__proto__":{"polluted":true}}').expect(400);
  await request(app).put('/rollgate/admin/evaluators/constructor').set(flagAdmin).set('If-Match', '1').send({ in: [1, [1]] }).expect(400);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect((await store.load()).version).toBe(1);
});

it('manages evaluators, shows the audit and reverts', async () => {
  await request(app).put('/rollgate/admin/evaluators/vip').set(flagAdmin).set('If-Match', '1').send({ in: [{ var: 'tenant' }, ['atlas']] }).expect(200, { version: 2 });
  await request(app).get('/rollgate/admin/evaluators/vip').set(flagAdmin).expect(200);
  await request(app).delete('/rollgate/admin/flags/checkout-theme').set(flagAdmin).set('If-Match', '2').expect(200, { version: 3 });
  await request(app).get('/rollgate/admin/flags/checkout-theme').set(flagAdmin).expect(404);
  await request(app).post('/rollgate/admin/revert').set(flagAdmin).set('If-Match', '3').send({ key: 'checkout-theme', toVersion: 1 }).expect(200, { version: 4 });
  expect((await store.load()).flags['checkout-theme']).toEqual(theme);
  const audit = await request(app).get('/rollgate/admin/audit?key=checkout-theme&limit=2').set(flagAdmin).expect(200);
  expect(audit.body.entries.map((e: { action: string; actor: string }) => [e.action, e.actor])).toEqual([
    ['revert', 'alice'],
    ['remove', 'alice'],
  ]);
  await request(app).get('/rollgate/admin/audit?limit=5000').set(flagAdmin).expect(400);
});

it('reads only the audit entries newer than one the caller has (after=), and says whether that is all of them', async () => {
  type Page = { entries: { id: string; version: number; key: string }[]; complete?: boolean };
  const audit = async (query: string): Promise<Page> => (await request(app).get(`/rollgate/admin/audit?${query}`).set(flagAdmin).expect(200)).body as Page;
  const versions = (page: Page) => page.entries.map((e) => e.version);
  for (let i = 0; i < 3; i++) await store.patchFlag('checkout-theme', { metadata: { n: i } }, { actor: 'seed' });
  const first = await audit('limit=200');
  expect(versions(first)).toEqual([4, 3, 2, 1]);
  expect(first).not.toHaveProperty('complete'); // without after=, the answer is as before
  const newest = first.entries[0]!.id;

  expect(await audit(`after=${encodeURIComponent(newest)}&limit=50`)).toEqual({ entries: [], complete: true });
  await store.putFlag('other', theme, { actor: 'bo' });
  await store.patchFlag('checkout-theme', { defaultVariant: 'bold' }, { actor: 'ada' });
  const next = await audit(`after=${encodeURIComponent(newest)}&limit=50`);
  expect([versions(next), next.complete]).toEqual([[6, 5], true]);
  expect(next.entries.map((e) => e.key)).toEqual(['checkout-theme', 'other']);
  // with a key: only that key's newer entries
  const own = await audit(`key=checkout-theme&after=${encodeURIComponent(newest)}&limit=50`);
  expect([versions(own), own.complete]).toEqual([[6], true]);
  // more newer entries than the limit: the latest `limit`, not complete (read the page again)
  const more = await audit(`after=${encodeURIComponent(first.entries[3]!.id)}&limit=2`);
  expect([versions(more), more.complete]).toEqual([[6, 5], false]);
  // an entry that is not (or no longer) in the audit: the latest page, not complete
  const gone = await audit('after=no-such-entry&limit=3');
  expect([versions(gone), gone.complete]).toEqual([[6, 5, 4], false]);
  // more new entries than the first short read holds: still all of them
  const at = next.entries[0]!.id;
  for (let i = 0; i < 12; i++) await store.patchFlag('checkout-theme', { metadata: { n: 10 + i } }, { actor: 'seed' });
  const many = await audit(`after=${encodeURIComponent(at)}&limit=50`);
  expect([versions(many), many.complete]).toEqual([[18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7], true]);

  await request(app).get('/rollgate/admin/audit?after=').set(flagAdmin).expect(400);
  await request(app).get(`/rollgate/admin/audit?after=${newest}`).set(agent).expect(403);
});

it('announces the state on the event stream as soon as it is open (a store without version checks is asked), as GET /flags answers it', async () => {
  const { get } = await import('node:http');
  const server = app.listen(0, '127.0.0.1');
  try {
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const port = (server.address() as { port: number }).port;
    const listed = (await request(app).get('/rollgate/admin/flags').set(flagAdmin).expect(200)).body as { version: number; revision: string };
    expect(listed).toMatchObject({ version: 1, revision: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const stream = await new Promise<import('node:http').IncomingMessage>((resolve) => get({ port, path: '/rollgate/admin/events', headers: flagAdmin }, resolve).end());
    stream.setEncoding('utf8');
    let text = '';
    await new Promise<void>((resolve) => stream.on('data', (chunk: string) => ((text += chunk), /event: flags\n/.test(text) && resolve())));
    expect(text).toContain(`event: flags\ndata: ${JSON.stringify({ version: 1, revision: listed.revision })}\n\n`);
    stream.destroy();
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

it('answers 503 with Retry-After when the store does not answer', async () => {
  const { RedisFlagStore, StoreUnavailableError } = await import('@rollgate/redis');
  const { freePort } = await import('../../redis/test/support/redis-server');
  const dead = new RedisFlagStore({ redis: { port: await freePort(), host: '127.0.0.1', retryStrategy: () => null } });
  try {
    await expect(dead.load()).rejects.toBeInstanceOf(StoreUnavailableError);
    const deadApp = express().use(adminRouter({ store: dead, identity: defineIdentity({ jwt: jwtOptions }), authorize: () => true }));
    const res = await request(deadApp).get('/rollgate/admin/flags').set(flagAdmin).expect(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.body.error).toBe('store_unavailable');
  } finally {
    await dead.close();
  }
});
