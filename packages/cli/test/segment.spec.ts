import { EditRefusedError, MissingError, UsageError } from '../src/errors';
import { addToSegment, parseValueFile, readSegment, removeFromSegment, replaceSegment, segmentRule, segmentShapeProblem } from '../src/segment';

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

describe('replaceSegment (segment set)', () => {
  it('replaces the whole list, saying what was added and removed', () => {
    const { rule, added, removed, created } = replaceSegment('vip', vip, 'tenant', ['globex', 'initech', 'globex']);
    expect(rule).toEqual({ in: [{ var: 'tenant' }, ['globex', 'initech']] });
    expect({ added, removed, created }).toEqual({ added: ['initech'], removed: ['acme'], created: false });
  });

  it('keeps the stored order when the members are the same (nothing to write)', () => {
    expect(replaceSegment('vip', vip, 'tenant', ['globex', 'acme']).rule).toEqual(vip);
  });

  it('creates the segment when absent, and refuses another attribute or shape', () => {
    expect(replaceSegment('loyal', undefined, 'targetingKey', ['u1']).created).toBe(true);
    expect(() => replaceSegment('vip', vip, 'targetingKey', ['u1'])).toThrow(EditRefusedError);
    expect(() => replaceSegment('vip', { '==': [1, 1] }, 'tenant', ['u1'])).toThrow(EditRefusedError);
  });
});

describe('parseValueFile (--from-file)', () => {
  it('reads one value per line: trimmed, CRLF too, blank lines and # comments skipped', () => {
    expect(parseValueFile('ids.txt', '# loyal customers, 2026-06-01\r\nu-1\r\n  u-2  \n\n# end\nu-3')).toEqual(['u-1', 'u-2', 'u-3']);
  });

  it('refuses control and invisible characters, naming the line', () => {
    expect(() => parseValueFile('ids.txt', 'u-1\nu-\u202e2\n')).toThrow(new UsageError('ids.txt:2: the value holds a control or invisible character ("u-\u202e2"); nothing was written'));
    expect(() => parseValueFile('ids.txt', 'u-1\u0000\n')).toThrow(/^ids\.txt:1: /);
  });

  it('refuses a file without values', () => {
    expect(() => parseValueFile('ids.txt', '\n# nothing\n')).toThrow('ids.txt holds no values');
  });
});
