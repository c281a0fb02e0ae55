import { FileValidationError, formatFileIssue } from '../src/errors';
import { describeChange, diffFlagSets } from '../src/diff';
import { FLAGD_SCHEMA, parseFlagFile, toFlagdDocument } from '../src/flag-file';
import { jsonSyntaxError } from '../src/json-locate';

// Reading flag-set files (validation with lines), the push diff, and the pull document.

function issuesOf(text: string): string[] {
  try {
    parseFlagFile('flags.json', text);
  } catch (e) {
    expect(e).toBeInstanceOf(FileValidationError);
    return (e as FileValidationError).issues.map((i) => formatFileIssue('flags.json', i));
  }
  throw new Error('expected the file to be refused');
}

const valid = `{
  "$schema": "${FLAGD_SCHEMA}",
  "$evaluators": { "vip": { "in": [{ "var": "tenant" }, ["acme"]] } },
  "flags": {
    "a": { "state": "ENABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off",
           "targeting": { "if": [{ "$ref": "vip" }, "on", null] } }
  }
}`;

it('reads a valid file into flags and evaluators', () => {
  const file = parseFlagFile('flags.json', valid);
  expect(Object.keys(file.flags)).toEqual(['a']);
  expect(file.evaluators).toEqual({ vip: { in: [{ var: 'tenant' }, ['acme']] } });
  expect(file.hasSetMetadata).toBe(false);
});

it('reports every issue with the line of the element it is about', () => {
  const text = [
    '{',
    '  "flags": {',
    '    "ok": { "state": "ENABLED", "variants": { "on": true }, "defaultVariant": "on" },',
    '    "bad": {',
    '      "state": "ENABLED",',
    '      "variants": { "on": true, "off": false },',
    '      "defaultVariant": "nope"',
    '    },',
    '    "no.state": { "variants": { "on": true } },',
    '    "ref": { "state": "ENABLED", "variants": { "on": true }, "targeting": { "$ref": "missing" } }',
    '  }',
    '}',
  ].join('\n');
  const issues = issuesOf(text);
  expect(issues).toHaveLength(3);
  const [first, second, third] = issues;
  expect(first).toBe('flags.json:7: flags.bad.defaultVariant: "nope" is not one of the variants on, off');
  expect(second).toMatch(/^flags\.json:9: flags\.no\.state/);
  expect(third).toBe('flags.json:10: flags.ref.targeting: unknown $ref "missing"; $evaluators has none');
});

it('points at line and column of a JSON syntax error', () => {
  expect(issuesOf('{\n  "flags": {\n    "a": }\n}')).toEqual(['flags.json:3:10: not valid JSON: unexpected "}", expected a value']);
  expect(issuesOf('{"flags": {}}\n,')).toEqual(['flags.json:2:1: not valid JSON: unexpected "," after the JSON value']);
  expect(issuesOf('{"flags": {"a": "x\u0001"}}')[0]).toContain('control character');
  expect(issuesOf('')).toEqual(['flags.json:1:1: not valid JSON: unexpected end of input, expected a value']);
  // what JSON-with-comments editors let through is still refused, with its place
  expect(issuesOf('{"flags": {\n  "a": {},\n}}')).toEqual(['flags.json:3:1: not valid JSON: unexpected "}", expected a property name in double quotes']);
  expect(issuesOf('// flags\n{"flags": {}}')).toEqual(['flags.json:1:1: not valid JSON: comments are not allowed in JSON']);
  expect(issuesOf('{"flags": {"a": {"state" "ENABLED"}}}')).toEqual(['flags.json:1:26: not valid JSON: unexpected "\\"ENABLED\\"", expected \':\'']);
});

it('refuses text nested deeper than the parser can walk, without crashing', () => {
  const [issue] = issuesOf(`{"flags": ${'['.repeat(200_000)}`);
  expect(issue).toMatch(/^flags\.json: not valid JSON: /);
});

it('accepts a byte-order mark', () => {
  expect(Object.keys(parseFlagFile('f', `\ufeff${valid}`).flags)).toEqual(['a']);
});

it('refuses prototype-pollution keys', () => {
  expect(issuesOf('{"flags": {"__proto__": {"state": "ENABLED", "variants": {"on": true}}}}')[0]).toContain('forbidden');
});

it('notices flag-set metadata (which the store does not keep)', () => {
  expect(parseFlagFile('f', '{"metadata": {"team": "pay"}, "flags": {}}').hasSetMetadata).toBe(true);
});

it('finds nothing wrong in valid JSON', () => {
  expect(jsonSyntaxError(valid)).toBeUndefined();
  expect(jsonSyntaxError('[1, -2.5e3, "\\u00e9", true, false, null]')).toBeUndefined();
});

describe('diffFlagSets', () => {
  const store = {
    flags: { a: { state: 'ENABLED', variants: { on: true }, defaultVariant: 'on' }, gone: { state: 'ENABLED', variants: { on: true } } },
    evaluators: { vip: { in: [{ var: 'tenant' }, ['acme']] }, old: { in: [{ var: 'x' }, []] } },
  };
  const file = {
    flags: { a: { defaultVariant: 'on', variants: { on: true }, state: 'DISABLED' }, b: { state: 'ENABLED', variants: { on: true } } },
    evaluators: { vip: { in: [{ var: 'tenant' }, ['acme', 'globex']] } },
  };

  it('lists additions and changes, and keeps store-only entries unless pruning', () => {
    const d = diffFlagSets(store, file, { prune: false });
    expect(d.changes.map((c) => [c.change, c.kind, c.key])).toEqual([
      ['changed', 'evaluator', 'vip'],
      ['changed', 'flag', 'a'],
      ['added', 'flag', 'b'],
    ]);
    expect(d.onlyInStore).toEqual([
      { kind: 'evaluator', key: 'old' },
      { kind: 'flag', key: 'gone' },
    ]);
    const pruned = diffFlagSets(store, file, { prune: true });
    expect(pruned.onlyInStore).toEqual([]);
    expect(pruned.changes.filter((c) => c.change === 'removed').map((c) => c.key)).toEqual(['old', 'gone']);
  });

  it('ignores key order', () => {
    expect(diffFlagSets(store, { flags: { ...store.flags, a: { defaultVariant: 'on', variants: { on: true }, state: 'ENABLED' } }, evaluators: store.evaluators }, { prune: true }).changes).toEqual([]);
  });

  it('describes changes in a line', () => {
    const [vip, a, b] = diffFlagSets(store, file, { prune: false }).changes;
    expect(describeChange(vip!)).toBe('~ evaluator vip: +globex');
    expect(describeChange(a!)).toBe('~ flag a: state "ENABLED" → "DISABLED"');
    expect(describeChange(b!)).toBe('+ flag b');
  });
});

it('pulls a flagd document with sorted keys', () => {
  const doc = toFlagdDocument({ flags: { b: 1, a: 2 }, evaluators: { z: 1, y: 2 } });
  expect(JSON.stringify(doc)).toBe(`{"$schema":"${FLAGD_SCHEMA}","$evaluators":{"y":2,"z":1},"flags":{"a":2,"b":1}}`);
});
