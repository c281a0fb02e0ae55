import { compileFlagSet } from '@rollgate/core';
import { EditRefusedError, UsageError } from '../src/errors';
import { bucketingKeyFor, describeSplit, parsePercent, setRollout, shareProportionally } from '../src/rollout';

// The pure split editor behind `rollgate rollout`.

const bool = { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off' };
const pilotThenSplit = {
  ...bool,
  targeting: {
    if: [{ '==': [{ var: 'role' }, 'admin'] }, 'on', { $ref: 'vip-agencies' }, 'on', { fractional: [['on', 20], ['off', 80]] }],
  },
};

function expectValid(definition: unknown, evaluators: Record<string, unknown> = { 'vip-agencies': { in: [{ var: 'tenant' }, ['acme']] } }) {
  expect(compileFlagSet({ flags: { f: definition }, $evaluators: evaluators } as never).errors).toEqual([]);
}

describe('parsePercent', () => {
  it.each([
    ['0', 0],
    ['5', 5],
    ['100', 100],
    ['25%', 25],
    [' 7 ', 7],
  ])('accepts %j', (text, n) => expect(parsePercent(text)).toBe(n));

  it.each(['101', '-1', '12.5', '1e2', '', 'abc', '50%%', '0x10', '1000'])('refuses %j as a usage error', (text) => {
    expect(() => parsePercent(text)).toThrow(UsageError);
    expect(() => parsePercent(text)).toThrow('whole number from 0 to 100');
  });
});

describe('setRollout', () => {
  it('creates the canonical split on a flag without targeting', () => {
    const r = setRollout('f', bool, 20);
    expect(r.definition.targeting).toEqual({ fractional: [['on', 20], ['off', 80]] });
    expect(r).toMatchObject({ created: true, path: 'targeting', variant: 'on', before: null, after: [['on', 20], ['off', 80]], by: null });
    expectValid(r.definition);
  });

  it('treats empty targeting as none', () => {
    expect(setRollout('f', { ...bool, targeting: {} }, 5).definition.targeting).toEqual({ fractional: [['on', 5], ['off', 95]] });
  });

  it('keeps both buckets at 0 and 100 on a two-variant flag', () => {
    expect(setRollout('f', bool, 0).after).toEqual([['on', 0], ['off', 100]]);
    expect(setRollout('f', bool, 100).after).toEqual([['on', 100], ['off', 0]]);
  });

  it('edits the split in the else branch of a top-level if, leaving the rules before it alone', () => {
    const r = setRollout('f', pilotThenSplit, 50);
    expect(r.path).toBe('targeting.if[4]');
    expect(r.created).toBe(false);
    expect(r.before).toEqual([['on', 20], ['off', 80]]);
    expect(r.after).toEqual([['on', 50], ['off', 50]]);
    expect(r.definition.targeting).toEqual({ if: [...pilotThenSplit.targeting.if.slice(0, 4), { fractional: [['on', 50], ['off', 50]] }] });
    expectValid(r.definition);
  });

  it('follows nested else branches to the tail', () => {
    const def = { ...bool, targeting: { if: [{ var: 'a' }, 'on', { if: [{ var: 'b' }, 'off', { fractional: [['off', 90], ['on', 10]] }] }] } };
    const r = setRollout('f', def, 30);
    expect(r.path).toBe('targeting.if[2].if[2]');
    // bucket order is kept (a monotonic ramp: users already "on" stay on)
    expect(r.after).toEqual([['off', 70], ['on', 30]]);
  });

  it('edits a split that is the whole targeting, keeping its bucketing key', () => {
    const def = { ...bool, targeting: { fractional: [{ var: 'email' }, ['on', 1], ['off', 9]] } };
    const r = setRollout('f', def, 40);
    expect(r.definition.targeting).toEqual({ fractional: [{ var: 'email' }, ['on', 40], ['off', 60]] });
    expect(r).toMatchObject({ by: null, bucketingKey: { var: 'email' } });
  });

  it('never mutates its input', () => {
    const input = JSON.parse(JSON.stringify(pilotThenSplit)) as typeof pilotThenSplit;
    setRollout('f', input, 90, { by: 'tenant' });
    expect(input).toEqual(pilotThenSplit);
  });

  it('--by writes the cat bucketing key, and "targetingKey" removes it again', () => {
    const by = setRollout('f', pilotThenSplit, 20, { by: 'tenant' });
    expect((by.definition.targeting as { if: unknown }).if).toEqual([...pilotThenSplit.targeting.if.slice(0, 4), { fractional: [bucketingKeyFor('tenant'), ['on', 20], ['off', 80]] }]);
    expect(bucketingKeyFor('tenant')).toEqual({ cat: [{ var: '$flagd.flagKey' }, { var: 'tenant' }] });
    expect(by.by).toBe('tenant');
    expectValid(by.definition);
    // kept on the next rollout without --by
    const next = setRollout('f', by.definition, 60);
    expect(next.by).toBe('tenant');
    expect(describeSplit(next.definition)).toEqual({ path: 'targeting.if[4]', buckets: [['on', 60], ['off', 40]], by: 'tenant' });
    const back = setRollout('f', next.definition, 60, { by: 'targetingKey' });
    expect(back.definition).toEqual({ ...pilotThenSplit, targeting: { if: [...pilotThenSplit.targeting.if.slice(0, 4), { fractional: [['on', 60], ['off', 40]] }] } });
    expect(back.by).toBeNull();
  });

  it('creates the canonical shape with --by on a flag without targeting', () => {
    const r = setRollout('f', bool, 10, { by: 'tenant' });
    expect(r.definition.targeting).toEqual({ fractional: [bucketingKeyFor('tenant'), ['on', 10], ['off', 90]] });
    expectValid(r.definition);
  });

  it('buckets by the attribute: everyone with the same tenant gets the same variant', () => {
    const r = setRollout('f', bool, 50, { by: 'tenant' });
    const { snapshot } = compileFlagSet({ flags: { f: r.definition } } as never);
    const variants = new Set(['u1', 'u2', 'u3', 'u4', 'u5', 'u6'].map((u) => snapshot.evaluate('f', { targetingKey: u, tenant: 'acme' }).variant));
    expect(variants.size).toBe(1);
  });

  it('refuses --by with an unusable attribute', () => {
    expect(() => setRollout('f', bool, 10, { by: '' })).toThrow(UsageError);
    expect(() => setRollout('f', bool, 10, { by: 'a.__proto__' })).toThrow(UsageError);
  });

  it('--variant names the variant that gets percent; in a two-variant flag the other gets the rest', () => {
    const theme = { state: 'ENABLED', variants: { classic: 'c', bold: 'b' }, defaultVariant: 'classic' };
    const r = setRollout('t', theme, 15, { variant: 'bold' });
    expect(r.definition.targeting).toEqual({ fractional: [['bold', 15], ['classic', 85]] });
    expect(() => setRollout('t', theme, 15)).toThrow('name the variant that gets the percentage with --variant');
    expect(() => setRollout('t', theme, 15, { variant: 'nope' })).toThrow(UsageError);
  });

  it('defaults to the variant whose value is true when there is no "on"', () => {
    const yesNo = { state: 'ENABLED', variants: { yes: true, no: false }, defaultVariant: 'no' };
    expect(setRollout('f', yesNo, 30).after).toEqual([['yes', 30], ['no', 70]]);
  });

  it('shares the rest between several other variants in proportion to their weights', () => {
    const abc = { state: 'ENABLED', variants: { a: 'a', b: 'b', c: 'c' }, defaultVariant: 'a', targeting: { fractional: [['a', 50], ['b', 30], ['c', 20]] } };
    expect(setRollout('x', abc, 60, { variant: 'c' }).after).toEqual([['a', 25], ['b', 15], ['c', 60]]);
    expect(setRollout('x', abc, 100, { variant: 'a' }).after).toEqual([['a', 100], ['b', 0], ['c', 0]]);
    // all others at 0: shared equally
    const zero = { ...abc, targeting: { fractional: [['a', 100], ['b', 0], ['c', 0]] } };
    expect(setRollout('x', zero, 0, { variant: 'a' }).after).toEqual([['a', 0], ['b', 50], ['c', 50]]);
  });

  it('adds the variant to a split that lacks it', () => {
    const def = { ...bool, targeting: { fractional: [['off', 100]] } };
    expect(setRollout('f', def, 5).after).toEqual([['off', 95], ['on', 5]]);
  });

  it('gives the rest of a created split to the defaultVariant when there are more than two variants', () => {
    const abc = { state: 'ENABLED', variants: { a: 'a', b: 'b', c: 'c' }, defaultVariant: 'a' };
    expect(setRollout('x', abc, 10, { variant: 'b' }).definition.targeting).toEqual({ fractional: [['b', 10], ['a', 90]] });
    expect(() => setRollout('x', { ...abc, defaultVariant: 'b' }, 10, { variant: 'b' })).toThrow(EditRefusedError);
  });

  it('refuses targeting with no split at its tail, explaining where a split is', () => {
    const noSplit = { ...bool, targeting: { if: [{ '==': [{ var: 'role' }, 'admin'] }, 'on', 'off'] } };
    expect(() => setRollout('f', noSplit, 10)).toThrow(EditRefusedError);
    expect(() => setRollout('f', noSplit, 10)).toThrow(/nothing to roll out: its targeting has no percentage split/);
    const splitInBranch = { ...bool, targeting: { if: [{ var: 'beta' }, { fractional: [['on', 50], ['off', 50]] }, 'off'] } };
    expect(() => setRollout('f', splitInBranch, 10)).toThrow('its split is at targeting.if[1], not at the tail');
    const noElse = { ...bool, targeting: { if: [{ var: 'beta' }, 'on'] } };
    expect(() => setRollout('f', noElse, 10)).toThrow(EditRefusedError);
  });

  it('refuses a split that lives in a shared evaluator', () => {
    const viaRef = { ...bool, targeting: { if: [{ var: 'beta' }, 'on', { $ref: 'standard-split' }] } };
    expect(() => setRollout('f', viaRef, 10)).toThrow('{"$ref": "standard-split"}, a shared evaluator');
  });

  it('refuses computed buckets, duplicate variants and variants the flag lacks', () => {
    expect(() => setRollout('f', { ...bool, targeting: { fractional: [['on', { var: 'w' }], ['off', 50]] } }, 10)).toThrow('computed or negative weight');
    expect(() => setRollout('f', { ...bool, targeting: { fractional: [['on', 10], ['on', 90]] } }, 10)).toThrow('appears twice');
    expect(() => setRollout('f', { ...bool, targeting: { fractional: [['maybe', 10], ['off', 90]] } }, 10)).toThrow('names variant "maybe"');
  });

  it('refuses a percent outside 0..100 or not whole', () => {
    for (const p of [-1, 101, 12.5, NaN]) expect(() => setRollout('f', bool, p)).toThrow(UsageError);
  });

  it('refuses a definition without variants', () => {
    expect(() => setRollout('f', { state: 'ENABLED' }, 10)).toThrow(EditRefusedError);
  });
});

describe('shareProportionally', () => {
  it('always sums to the total, by largest remainder', () => {
    expect(shareProportionally([1, 1, 1], 100)).toEqual([34, 33, 33]);
    expect(shareProportionally([2, 1], 10)).toEqual([7, 3]);
    expect(shareProportionally([0, 0], 5)).toEqual([3, 2]);
    expect(shareProportionally([], 5)).toEqual([]);
  });
});
