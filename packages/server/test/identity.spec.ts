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
