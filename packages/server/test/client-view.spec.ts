import { compileFlagSet, type FlagDefinition } from '@rollgate/core';
import { clientViewOf } from '../src/client-view';

// What browsers can see of a snapshot: the revision follows the visible flags and the segments
// they use, nothing else; a flag whose answer can change with time, directly or through a
// segment, is noticed (its revalidations are then always evaluated).

const visible = (_key: string, d: Readonly<FlagDefinition>) => d.metadata?.clientVisible === true;
const on = { on: true, off: false };
const view = (flags: Record<string, unknown>, evaluators: Record<string, unknown> = {}, options = 'o') => {
  const { snapshot, errors } = compileFlagSet({ flags, $evaluators: evaluators } as never);
  expect(errors).toEqual([]);
  return clientViewOf(snapshot, visible, options);
};
const flag = (targeting?: unknown, shown = true) => ({ state: 'ENABLED', variants: on, defaultVariant: 'off', ...(targeting ? { targeting } : {}), metadata: shown ? { clientVisible: true } : {} });

it('lists the visible flags and hashes them with the segments they use, and only those', () => {
  const base = view({ a: flag({ if: [{ $ref: 'beta' }, 'on', null] }), b: flag(undefined, false) }, { beta: { in: [{ var: 'tenant' }, ['x']] }, staff: { in: [{ var: 'tenant' }, ['ops']] } });
  expect(base.keys).toEqual(['a']);
  expect(base.visible.has('b')).toBe(false);
  expect(base.revision).toMatch(/^[\w-]{22}$/);
  // a server-only flag or a segment only it uses: the same revision
  expect(view({ a: flag({ if: [{ $ref: 'beta' }, 'on', null] }), b: { ...flag(undefined, false), defaultVariant: 'on' } }, { beta: { in: [{ var: 'tenant' }, ['x']] }, staff: { in: [{ var: 'tenant' }, ['ops', 'qa']] } }).revision).toBe(base.revision);
  // the segment a visible flag uses, or another option set: another revision
  expect(view({ a: flag({ if: [{ $ref: 'beta' }, 'on', null] }), b: flag(undefined, false) }, { beta: { in: [{ var: 'tenant' }, ['x', 'y']] }, staff: { in: [{ var: 'tenant' }, ['ops']] } }).revision).not.toBe(base.revision);
  expect(view({ a: flag({ if: [{ $ref: 'beta' }, 'on', null] }), b: flag(undefined, false) }, { beta: { in: [{ var: 'tenant' }, ['x']] }, staff: { in: [{ var: 'tenant' }, ['ops']] } }, 'other').revision).not.toBe(base.revision);
  // a segment used through another segment counts
  const nested = (list: string[]) => view({ a: flag({ if: [{ $ref: 'outer' }, 'on', null] }) }, { outer: { or: [{ $ref: 'inner' }, false] }, inner: { in: [{ var: 'tenant' }, list] } }).revision;
  expect(nested(['x'])).not.toBe(nested(['x', 'y']));
});

it.each([
  ['$flagd.timestamp', { '>': [{ var: '$flagd.timestamp' }, 1] }, true],
  ['$flagd.timestamp with a default', { '>': [{ var: ['$flagd.timestamp', 0] }, 1] }, true],
  ['the whole data ("")', { '!!': [{ var: '' }] }, true],
  ['$flagd', { '!!': [{ var: '$flagd' }] }, true],
  ['a context attribute', { '==': [{ var: 'tenant' }, 'x'] }, false],
  ['$flagd.flagKey (a constant)', { '==': [{ var: '$flagd.flagKey' }, 'a'] }, false],
])('notices a rule reading %s', (_name, condition, clock) => {
  expect(view({ a: flag({ if: [condition, 'on', null] }) }).readsClock).toBe(clock);
});

it('notices the clock read through a segment, and ignores it in server-only flags', () => {
  expect(view({ a: flag({ if: [{ $ref: 'launch' }, 'on', null] }) }, { launch: { '>': [{ var: '$flagd.timestamp' }, 1] } }).readsClock).toBe(true);
  expect(view({ a: flag(), b: flag({ if: [{ '>': [{ var: '$flagd.timestamp' }, 1] }, 'on', null] }, false) }).readsClock).toBe(false);
});
