import jwt from 'jsonwebtoken';
import { createIdentityResolver } from '@rollgate/server';

// What a resolved identity promises the code after it: a context nobody can change, and the
// names the claims mapping owns.

const SECRET = 'identity-test-secret-that-is-32-bytes';

it('freezes the context, its roles and mapped arrays, so a handler cannot change what later guards decide', async () => {
  const resolve = createIdentityResolver({ jwt: { secret: SECRET, algorithms: ['HS256'] }, claims: { attributes: ['plan', 'regions'] } });
  const token = jwt.sign({ sub: 'bo', roles: ['agent'], regions: ['eu', 'us'], secret: 'x' }, SECRET, { algorithm: 'HS256', expiresIn: 60 });
  const who = await resolve({ headers: { authorization: `Bearer ${token}` } });
  expect(who.context).toEqual({ targetingKey: 'bo', roles: ['agent'], regions: ['eu', 'us'] });
  expect(() => who.context.roles.push('admin')).toThrow(TypeError);
  expect(() => (who.context.regions as string[]).push('cn')).toThrow(TypeError);
  expect(() => Object.assign(who.context, { tenant: 'atlas' })).toThrow(TypeError);
  expect(who.context.roles).toEqual(['agent']);
  // owned even though this token carries no plan: a client may not supply one
  expect(who.mappedNames).toEqual(['targetingKey', 'roles', 'tenant', 'plan', 'regions']);
});

describe('verified tokens remembered (jwt.cacheSize)', () => {
  const jwtOptions = { secret: SECRET, algorithms: ['HS256' as const] };
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
  const sign = (claims: object, options: jwt.SignOptions = { expiresIn: 60 }) => jwt.sign(claims, SECRET, { algorithm: 'HS256', ...options });
  let verify: jest.SpyInstance;
  beforeEach(() => {
    verify = jest.spyOn(jwt, 'verify');
  });
  afterEach(() => {
    verify.mockRestore();
    jest.useRealTimers();
  });

  it('checks a repeated token once, and a token with another signature in full: it is refused', async () => {
    const resolve = createIdentityResolver({ jwt: jwtOptions });
    const token = sign({ sub: 'ada', roles: ['agent'] });
    for (let i = 0; i < 5; i++) expect((await resolve(bearer(token))).context).toEqual({ targetingKey: 'ada', roles: ['agent'] });
    expect(verify).toHaveBeenCalledTimes(1);
    // the same header and payload, signed with another key: not the cached token
    const [header, payload] = token.split('.');
    const forged = `${header}.${payload}.${jwt.sign({ sub: 'ada', roles: ['agent'] }, 'another-secret-that-is-also-32-bytes!!', { algorithm: 'HS256' }).split('.')[2]}`;
    await expect(resolve(bearer(forged))).rejects.toThrow('token rejected: JsonWebTokenError');
    const admin = jwt.sign({ sub: 'ada', roles: ['admin'], exp: Math.floor(Date.now() / 1000) + 60 }, 'another-secret-that-is-also-32-bytes!!', { algorithm: 'HS256' });
    await expect(resolve(bearer(`${token.split('.').slice(0, 2).join('.')}.${admin.split('.')[2]}`))).rejects.toThrow('token rejected');
  });

  it('refuses a remembered token once it expires (exp + clockTolerance), as jsonwebtoken would', async () => {
    jest.useFakeTimers({ now: new Date('2026-12-01T10:00:00Z'), doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const resolve = createIdentityResolver({ jwt: { ...jwtOptions, clockTolerance: 5 } });
    const token = sign({ sub: 'ada' }, { expiresIn: 10 });
    await expect(resolve(bearer(token))).resolves.toBeDefined();
    jest.setSystemTime(new Date('2026-12-01T10:00:14Z'));
    await expect(resolve(bearer(token))).resolves.toBeDefined(); // 14 s: within exp + 5 s
    jest.setSystemTime(new Date('2026-12-01T10:00:15Z'));
    await expect(resolve(bearer(token))).rejects.toThrow('token rejected: TokenExpiredError');
  });

  it('refuses a remembered token past maxAge, and one whose nbf is ahead when the clock goes back', async () => {
    jest.useFakeTimers({ now: new Date('2026-12-01T10:00:00Z'), doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const resolve = createIdentityResolver({ jwt: { ...jwtOptions, clockTolerance: 0, maxAge: '1m' } });
    const token = sign({ sub: 'ada' }, { expiresIn: 3600 });
    await expect(resolve(bearer(token))).resolves.toBeDefined();
    jest.setSystemTime(new Date('2026-12-01T10:00:59Z'));
    await expect(resolve(bearer(token))).resolves.toBeDefined();
    jest.setSystemTime(new Date('2026-12-01T10:01:00Z'));
    await expect(resolve(bearer(token))).rejects.toThrow('token rejected: TokenExpiredError');

    const early = createIdentityResolver({ jwt: { ...jwtOptions, clockTolerance: 0 } });
    const notYet = sign({ sub: 'bo', nbf: Math.floor(Date.now() / 1000) - 1 }, { expiresIn: 3600 });
    await expect(early(bearer(notYet))).resolves.toBeDefined();
    jest.setSystemTime(new Date('2026-12-01T10:00:30Z')); // back before nbf
    await expect(early(bearer(notYet))).rejects.toThrow('token rejected: NotBeforeError');
  });

  it('holds at most cacheSize tokens, the oldest dropped first; 0 verifies every time; a bad size is a ConfigError', async () => {
    const resolve = createIdentityResolver({ jwt: { ...jwtOptions, cacheSize: 2 } });
    const [a, b, c] = ['a', 'b', 'c'].map((sub) => sign({ sub }));
    for (const t of [a, b, c, b, c]) await resolve(bearer(t!));
    expect(verify).toHaveBeenCalledTimes(3);
    await resolve(bearer(a!)); // dropped when c came
    expect(verify).toHaveBeenCalledTimes(4);

    const uncached = createIdentityResolver({ jwt: { ...jwtOptions, cacheSize: 0 } });
    for (let i = 0; i < 3; i++) await uncached(bearer(a!));
    expect(verify).toHaveBeenCalledTimes(7);
    for (const bad of [-1, 1.5, Number.NaN, 2_000_000]) {
      expect(() => createIdentityResolver({ jwt: { ...jwtOptions, cacheSize: bad } })).toThrow(/jwt.cacheSize must be a whole number from 0 to 1000000/);
    }
  });
});
