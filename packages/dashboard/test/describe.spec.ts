import { SplitEditError, setRollout } from '../../core/src/split-edit';
import { ago, branches, changeText, commentParts, condition, diff, killSwitchImpact, negativeShareWords, partsText, percent, readSegment, rolloutImpact, segmentsUsed, splitOf } from '../src/app/describe';
import { proportionInterval } from '../../core/src/proportion-interval';
import { backoffMs, SseParser } from '../src/app/sse';
import type { FlagDefinition } from '../src/app/model';

// The dashboard's pure parts: flags in words, diffs, the SSE parser (the components render what
// these return; the browser test covers the rest).

const fastPayment: FlagDefinition = {
  state: 'ENABLED',
  variants: { on: true, off: false },
  defaultVariant: 'off',
  targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { $ref: 'vip-agencies' }, 'on', { fractional: [['on', 20], ['off', 80]] }] },
};

describe('targeting in words', () => {
  it('reads an if chain as ordered branches, segments by name, the split as buckets', () => {
    const list = branches(fastPayment.targeting);
    expect(list.map((b) => (b.when ? partsText(b.when) : null))).toEqual(['roles includes "admin"', 'in segment vip-agencies', null]);
    expect(list.map((b) => b.outcome)).toEqual([{ variant: 'on' }, { variant: 'on' }, { split: [['on', 20], ['off', 80]], by: null }]);
    expect(list.map((b) => b.path)).toEqual(['targeting.if[1]', 'targeting.if[3]', 'targeting.if[4]']);
    expect(segmentsUsed(fastPayment.targeting)).toEqual(['vip-agencies']);
    expect(splitOf(fastPayment)).toMatchObject({ variant: 'on', percent: 20, path: 'targeting.if[4]' });
  });

  it('says what it knows and shows the rest as JSON', () => {
    expect(partsText(condition({ in: [{ var: 'tenant' }, ['a', 'b', 'c', 'd', 'e', 'f', 'g']] }))).toBe('tenant is one of "a", "b", "c", "d", "e" (+2 more)');
    expect(partsText(condition({ and: [{ '==': [{ var: 'plan' }, 'pro'] }, { or: [{ '>=': [{ var: 'age' }, 18] }, { '!': { var: 'beta' } }] }] }))).toBe(
      'plan is "pro" and (age ≥ 18 or not (beta is set))',
    );
    expect(partsText(condition({ sem_ver: [{ var: 'version' }, '>=', '2.0.0'] }))).toBe('version >= "2.0.0" (semver)');
    expect(partsText(condition({ starts_with: [{ var: 'email' }, '@acme.com'] }))).toBe('email starts with "@acme.com"');
    expect(condition({ weird: [1, 2] })).toEqual([{ code: { weird: [1, 2] } }]);
    expect(branches(undefined)).toEqual([]);
    expect(branches('on')).toEqual([{ when: null, outcome: { variant: 'on' }, path: 'targeting' }]);
  });

  it('says who a kill switch and a rollout change affect', () => {
    expect(killSwitchImpact('fast-payment', fastPayment, true).join(' ')).toContain('It serves now: roles includes "admin" → "on"; in segment vip-agencies → "on"; everyone else → on 20% / off 80%.');
    const lines = rolloutImpact(fastPayment, 20, 50, 'on');
    expect(lines[0]).toBe('The split applies to users who match none of the earlier rules (roles includes "admin"; in segment vip-agencies), bucketed by user (targetingKey).');
    expect(lines[1]).toBe('"on" goes from 20% to 50% of them: about 30% of them switch to "on"; those who had it keep it.');
    expect(rolloutImpact(fastPayment, 20, 5, 'on')[1]).toContain('about 15% of them lose "on"');
  });

  it('edits the split with core, as `rollgate rollout` does, and refuses what it cannot edit', () => {
    expect(splitOf(setRollout('fast-payment', fastPayment, 50).definition as unknown as FlagDefinition)?.percent).toBe(50);
    expect(() => setRollout('x', { ...fastPayment, targeting: { $ref: 'vip-agencies' } }, 50)).toThrow(SplitEditError);
  });
});

describe('segments and diffs', () => {
  it('reads a value list; anything else is a custom rule', () => {
    expect(readSegment({ in: [{ var: 'tenant' }, ['a', 'b']] })).toEqual({ attribute: 'tenant', values: ['a', 'b'] });
    expect(readSegment({ in: [{ var: 'tenant' }, ['a', 1]] })).toBeUndefined();
    expect(readSegment({ '==': [{ var: 'tenant' }, 'a'] })).toBeUndefined();
  });

  it('diffs path by path, lists of strings as added / removed', () => {
    expect(diff({ state: 'ENABLED', variants: { on: true } }, { state: 'DISABLED', variants: { on: true } }).map(changeText)).toEqual(['state: "ENABLED" → "DISABLED"']);
    const list = diff({ in: [{ var: 't' }, ['a', 'b', 'c', 'd']] }, { in: [{ var: 't' }, ['a', 'b', 'c', 'e', 'f']] });
    expect(list).toEqual([{ path: 'in[1]', before: ['a', 'b', 'c', 'd'], after: ['a', 'b', 'c', 'e', 'f'], added: ['e', 'f'], removed: ['d'] }]);
    expect(diff(null, { a: 1 }).map(changeText)).toEqual(['(value): null → {"a":1}']);
    expect(diff({ a: 1 }, { a: 1 })).toEqual([]);
  });

  it('tells times relative to now', () => {
    expect(ago(1_000_000 - 5_000, 1_000_000)).toBe('5 s ago');
    expect(ago(1_000_000 - 180_000, 1_000_000)).toBe('3 min ago');
    expect(ago(0, 7_200_000)).toBe('2 h ago');
  });
});

describe('server-sent events over fetch', () => {
  it('parses events split anywhere across chunks, ignoring comments', () => {
    const parser = new SseParser();
    expect(parser.push(': connected\n\nevent: fla')).toEqual([]);
    expect(parser.push('gs\ndata: {"version":3,')).toEqual([]);
    expect(parser.push('"revision":"r"}\n\n: keep-alive\n\nevent: plan\r\ndata: {"flag":"x",\r\ndata: "planVersion":2}\r\n\r\n')).toEqual([
      { event: 'flags', data: '{"version":3,"revision":"r"}' },
      { event: 'plan', data: '{"flag":"x",\n"planVersion":2}' },
    ]);
  });

  it('backs off from 250 ms to 10 s, with jitter', () => {
    expect([0, 1, 2, 6, 20].map((n) => backoffMs(n, () => 0.5))).toEqual([250, 500, 1000, 10_000, 10_000]);
    expect(backoffMs(0, () => 0)).toBe(200);
    expect(backoffMs(0, () => 1)).toBe(300);
  });
});

describe("users' feedback in words", () => {
  it('cuts a comment into text and escaped unprintable characters, markup left as characters', () => {
    const markup = '<img src=x onerror="alert(1)"> & <b>bold</b>';
    expect(commentParts(markup)).toEqual([{ text: markup }]);
    expect(commentParts('\u001b[31mred\u001b[0m ok')).toEqual([{ escape: '\\x1b' }, { text: '[31mred' }, { escape: '\\x1b' }, { text: '[0m ok' }]);
    // a bidi override, a zero-width space, a C1 control, a tag character; line breaks stay
    expect(commentParts('a\u202eb\u200bc\u009bd\u{e0041}e\nf')).toEqual([
      { text: 'a' },
      { escape: '\\u202e' },
      { text: 'b' },
      { escape: '\\u200b' },
      { text: 'c' },
      { escape: '\\x9b' },
      { text: 'd' },
      { escape: '\\u{e0041}' },
      { text: 'e\nf' },
    ]);
    expect(commentParts('')).toEqual([]);
    // joined, the parts are what the CLI prints for the same comment
    const text = (s: string) => commentParts(s).map((p) => ('text' in p ? p.text : p.escape)).join('');
    expect(text('\u001b]8;;https://evil\u0007link\u001b]8;;\u0007')).toBe('\\x1b]8;;https://evil\\x07link\\x1b]8;;\\x07');
  });

  it('says the negative share with its interval, or that there are no answers yet', () => {
    expect(negativeShareWords(proportionInterval({ n: 0, bad: 0 }) as never)).toBe('not enough data yet: no answers');
    const words = negativeShareWords(proportionInterval({ n: 180, bad: 22 }) as never);
    expect(words).toMatch(/^12\.2% negative \(95% interval \d+\.\d%–\d+\.\d%\), 180 answers$/);
    expect(negativeShareWords(proportionInterval({ n: 1, bad: 1 }) as never)).toMatch(/^100% negative \(95% interval [\d.]+%–100%\), 1 answer$/);
    expect([0, 0.004, 0.5, 1].map(percent)).toEqual(['0%', '0.40%', '50.0%', '100%']);
  });
});
