import { compileFlagSet, formatIssue } from '@rollgate/core';

// Segments from a batch job: a shared evaluator holding 100,000 ids, used with $ref. It must
// validate (a list of values counts as one node of the $ref expansion, its values in a budget of
// their own), match exactly its members, and keep $ref expansion bounded.

const ids = (n: number, prefix = 'c') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const perk = (targeting: unknown) => ({ state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting });

it('a 100,000-id segment validates and matches its members only', () => {
  const loyal = ids(100_000);
  const { snapshot, errors } = compileFlagSet({
    $evaluators: { loyal: { in: [{ var: 'targetingKey' }, loyal] } },
    flags: { perk: perk({ if: [{ $ref: 'loyal' }, 'on', 'off'] }), other: perk({ if: [{ $ref: 'loyal' }, 'off', 'on'] }) },
  });
  expect(errors).toEqual([]);
  for (const member of ['c-0', 'c-31337', 'c-99999']) expect(snapshot.evaluate('perk', { targetingKey: member }).value).toBe(true);
  for (const stranger of ['c-100000', 'c-', '', 'C-1', ' c-1']) expect(snapshot.evaluate('perk', { targetingKey: stranger }).value).toBe(false);
  expect(snapshot.evaluate('perk', {}).value).toBe(false); // no key: not a member
  expect(snapshot.evaluate('other', { targetingKey: 'c-5' }).value).toBe(false);
});

it('bounds the expansion: more than 1,000,000 list values once $refs are substituted is refused with the flag\'s path', () => {
  const { snapshot, errors } = compileFlagSet({
    $evaluators: { big: { in: [{ var: 'targetingKey' }, ids(400_000)] }, twice: { or: [{ $ref: 'big' }, { $ref: 'big' }] } },
    flags: { ok: perk({ if: [{ $ref: 'twice' }, 'on', 'off'] }), thrice: perk({ if: [{ or: [{ $ref: 'twice' }, { $ref: 'big' }] }, 'on', 'off'] }) },
  });
  expect(errors.map(formatIssue)).toEqual(['flags.thrice.targeting: targeting holds more than 1000000 list values once $refs are substituted']);
  // served as a parse error (fail closed), the other flag as usual
  expect(snapshot.evaluate('thrice', { targetingKey: 'c-1' }, { defaultValue: false })).toMatchObject({ value: false, reason: 'ERROR', errorCode: 'PARSE_ERROR' });
  expect(snapshot.evaluate('ok', { targetingKey: 'c-1' }).value).toBe(true);
});

it('lists of rules (not plain values) still count node by node', () => {
  const nested = { or: Array.from({ length: 60_000 }, () => ({ $ref: 'one' })) };
  const { errors } = compileFlagSet({ $evaluators: { one: { '==': [{ var: 'tenant' }, 'x'] } }, flags: { f: perk({ if: [nested, 'on', 'off'] }) } });
  expect(errors.map(formatIssue)).toEqual(['flags.f.targeting: targeting expands to more than 100000 nodes once $refs are substituted']);
});
