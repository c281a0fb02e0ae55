import { EditRefusedError, MissingError, UsageError } from '../src/errors';
import { addToSegment, readSegment, removeFromSegment, segmentRule, segmentShapeProblem } from '../src/segment';

// The pure value-list editor behind `rollgate segment`.

const vip = { in: [{ var: 'tenant' }, ['acme', 'globex']] };

describe('readSegment', () => {
  it('reads the in-list shape, with var as a string or a one-element array', () => {
    expect(readSegment(vip)).toEqual({ attribute: 'tenant', values: ['acme', 'globex'] });
    expect(readSegment({ in: [{ var: ['tenant'] }, []] })).toEqual({ attribute: 'tenant', values: [] });
  });

  it.each([
    [{ '==': [{ var: 'tenant' }, 'acme'] }],
    [{ in: [{ var: 'tenant' }, ['a'], 'extra'] }],
    [{ in: ['acme', { var: 'tenants' }] }],
    [{ in: [{ var: 'tenant' }, 'acme,globex'] }],
    [{ in: [{ var: 'tenant' }, [1, 2]] }],
    [{ in: [{ var: 'tenant' }, ['a']], other: 1 }],
    [null],
    [['acme']],
  ])('says why %j is not a segment', (rule) => {
    expect(readSegment(rule)).toBeUndefined();
    expect(segmentShapeProblem(rule)).toEqual(expect.any(String));
  });
});

describe('addToSegment', () => {
  it('creates the segment on the given attribute when absent', () => {
    const r = addToSegment('pilot', undefined, 'tenant', ['acme', 'acme', 'initech']);
    expect(r).toMatchObject({ created: true, changed: ['acme', 'initech'], unchanged: [] });
    expect(r.rule).toEqual({ in: [{ var: 'tenant' }, ['acme', 'initech']] });
  });

  it('appends new values, skips present ones, never mutates its input', () => {
    const input = JSON.parse(JSON.stringify(vip)) as typeof vip;
    const r = addToSegment('vip', input, 'tenant', ['globex', 'initech']);
    expect(r).toMatchObject({ created: false, changed: ['initech'], unchanged: ['globex'] });
    expect(r.rule).toEqual(segmentRule('tenant', ['acme', 'globex', 'initech']));
    expect(input).toEqual(vip);
  });

  it('refuses another attribute than the segment uses', () => {
    expect(() => addToSegment('vip', vip, 'org', ['x'])).toThrow(EditRefusedError);
    expect(() => addToSegment('vip', vip, 'org', ['x'])).toThrow('matches on "tenant", not "org"');
  });

  it('refuses an evaluator of another shape, saying what it is', () => {
    const rule = { '==': [{ var: 'tenant' }, 'acme'] };
    expect(() => addToSegment('single', rule, 'tenant', ['x'])).toThrow(/evaluator "single" is not a value list this command can edit: .*flags push/);
  });

  it('refuses empty values and no values', () => {
    expect(() => addToSegment('vip', vip, 'tenant', [])).toThrow(UsageError);
    expect(() => addToSegment('vip', vip, 'tenant', [''])).toThrow(UsageError);
    expect(() => addToSegment('vip', undefined, ' ', ['a'])).toThrow(UsageError);
  });
});

describe('removeFromSegment', () => {
  it('removes present values and reports absent ones', () => {
    const r = removeFromSegment('vip', vip, 'tenant', ['acme', 'nobody']);
    expect(r).toMatchObject({ changed: ['acme'], unchanged: ['nobody'], segment: { attribute: 'tenant', values: ['globex'] } });
  });

  it('keeps an emptied list (it matches nobody; flags still reference it)', () => {
    expect(removeFromSegment('vip', vip, 'tenant', ['acme', 'globex']).rule).toEqual({ in: [{ var: 'tenant' }, []] });
  });

  it('is a not-found error on a missing evaluator', () => {
    expect(() => removeFromSegment('nope', undefined, 'tenant', ['a'])).toThrow(MissingError);
  });
});
