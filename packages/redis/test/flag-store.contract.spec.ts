import { FlagValidationError } from '@rollgate/core';
import { InvalidWriteError, MemoryFlagStore, NotFoundError, RedisFlagStore, VersionConflictError, type BaseFlagStore } from '@rollgate/redis';
import { startRedis, type TestRedis } from './support/redis-server';
import { actor, checkoutTheme, fastPayment, vipAgencies } from './support/flags';

// One contract, two stores: everything a caller relies on must hold for both.

let redis: TestRedis;
let envCounter = 0;
const opened: BaseFlagStore[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

const factories: [string, () => BaseFlagStore][] = [
  ['MemoryFlagStore', () => new MemoryFlagStore()],
  ['RedisFlagStore', () => new RedisFlagStore({ redis: redis.url, env: `contract-${process.pid}-${++envCounter}`, pollIntervalMs: 60_000 })],
];

describe.each(factories)('%s', (_name, create) => {
  let store: BaseFlagStore;
  beforeEach(() => {
    store = create();
    opened.push(store);
  });

  it('starts empty at version 0', async () => {
    expect(await store.load()).toEqual({ version: 0, revision: '', flags: {}, evaluators: {}, problems: [] });
  });

  it('stores flags and evaluators, bumping the version once per write', async () => {
    const a = await store.putEvaluator('vip-agencies', vipAgencies, actor);
    const b = await store.putFlag('fast-payment', fastPayment, actor);
    expect([a.version, b.version]).toEqual([1, 2]);
    const loaded = await store.load();
    expect(loaded).toEqual({ version: 2, revision: expect.any(String), flags: { 'fast-payment': fastPayment }, evaluators: { 'vip-agencies': vipAgencies }, problems: [] });
    // every write gets a revision of its own: (version, revision) names one state exactly
    expect(loaded.revision).not.toBe('');
    await store.putFlag('checkout-theme', checkoutTheme, actor);
    const next = await store.load();
    expect(next.revision).not.toBe(loaded.revision);
    expect((await store.load()).revision).toBe(next.revision);
  });

  it('applies a write id at most once: a retry answers the version it produced and writes nothing', async () => {
    await store.putFlag('checkout-theme', checkoutTheme, actor);
    const first = await store.putFlag('checkout-theme', { ...checkoutTheme, defaultVariant: 'bold' }, { ...actor, writeId: 'deploy-42', expectedVersion: 1 });
    expect(first).toEqual({ version: 2, writeId: 'deploy-42', alreadyApplied: false, unchanged: false, flags: ['checkout-theme'], evaluators: [] });
    await store.putEvaluator('vip-agencies', vipAgencies, { ...actor, writeId: 'other' }); // version 3
    const before = await store.load();
    // the same write again, pinned to the version it was based on: not a conflict, not a second write
    const retry = await store.putFlag('checkout-theme', { ...checkoutTheme, defaultVariant: 'bold' }, { ...actor, writeId: 'deploy-42', expectedVersion: 1 });
    expect(retry).toEqual({ version: 2, writeId: 'deploy-42', alreadyApplied: true, unchanged: false, flags: ['checkout-theme'], evaluators: [] });
    expect(await store.load()).toEqual(before);
    const audit = await store.audit();
    expect(audit.map((e) => [e.version, e.writeId])).toEqual([
      [3, 'other'],
      [2, 'deploy-42'],
      [1, expect.stringMatching(/^[0-9a-f-]{36}$/)],
    ]);
  });

  it.each([[''], ['has space'], ['x'.repeat(129)], ['a{b}'], [42]])('refuses the write id %j before writing anything', async (writeId) => {
    const err = await store.putFlag('checkout-theme', checkoutTheme, { ...actor, writeId: writeId as string }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidWriteError);
    expect((err as Error).message).toMatch(/^options\.writeId must be 1-128 characters/);
    expect(await store.load()).toMatchObject({ version: 0, flags: {} });
  });

  it('writes several changes as one version', async () => {
    const r = await store.apply(
      [
        { kind: 'evaluator', key: 'vip-agencies', definition: vipAgencies },
        { kind: 'flag', key: 'fast-payment', definition: fastPayment },
        { kind: 'flag', key: 'checkout-theme', definition: checkoutTheme },
      ],
      actor,
    );
    expect(r).toEqual({ version: 1, writeId: expect.any(String), alreadyApplied: false, unchanged: false, flags: ['fast-payment', 'checkout-theme'], evaluators: ['vip-agencies'] });
    expect(Object.keys((await store.load()).flags).sort()).toEqual(['checkout-theme', 'fast-payment']);
  });

  it('writes nothing when nothing changes, key order aside: no version, no audit entry', async () => {
    await store.apply(
      [
        { kind: 'evaluator', key: 'vip-agencies', definition: vipAgencies },
        { kind: 'flag', key: 'fast-payment', definition: fastPayment },
      ],
      actor,
    );
    const before = await store.load();
    // the same definitions with every object's keys in reverse order
    const reordered = (value: unknown): unknown =>
      Array.isArray(value) ? value.map(reordered) : value !== null && typeof value === 'object' ? Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reordered(v)])) : value;
    expect(JSON.stringify(reordered(fastPayment))).not.toBe(JSON.stringify(fastPayment));
    const same = await store.apply(
      [
        { kind: 'flag', key: 'fast-payment', definition: reordered(fastPayment) },
        { kind: 'evaluator', key: 'vip-agencies', definition: reordered(vipAgencies) },
      ],
      { ...actor, action: 'push' },
    );
    expect(same).toEqual({ version: 1, writeId: expect.any(String), alreadyApplied: false, unchanged: true, flags: [], evaluators: [] });
    expect(await store.load()).toEqual(before); // same version, same revision, same stored text
    const patched = await store.patchFlag('fast-payment', { state: fastPayment.state }, actor);
    expect(patched).toMatchObject({ version: 1, unchanged: true });
    // a revert to a definition equal to the stored one
    await store.putFlag('fast-payment', { ...fastPayment, state: 'DISABLED' }, actor); // v2
    await store.putFlag('fast-payment', reordered(fastPayment), actor); // v3: a real change back
    expect(await store.revert('fast-payment', { toVersion: 1 }, actor)).toMatchObject({ version: 3, unchanged: true });
    // in a write with a real change, only the changed definition is written and audited
    const mixed = await store.apply(
      [
        { kind: 'flag', key: 'fast-payment', definition: fastPayment },
        { kind: 'flag', key: 'checkout-theme', definition: checkoutTheme },
      ],
      actor,
    );
    expect(mixed).toMatchObject({ version: 4, unchanged: false, flags: ['checkout-theme'] });
    expect((await store.audit()).map((e) => [e.version, e.kind, e.key])).toEqual([
      [4, 'flag', 'checkout-theme'],
      [3, 'flag', 'fast-payment'],
      [2, 'flag', 'fast-payment'],
      [1, 'flag', 'fast-payment'],
      [1, 'evaluator', 'vip-agencies'],
    ]);
    expect((await store.load()).revision).not.toBe(before.revision);
  });

  it('patches only the named fields', async () => {
    await store.putFlag('checkout-theme', checkoutTheme, actor);
    await store.patchFlag('checkout-theme', { defaultVariant: 'bold' }, actor);
    expect((await store.load()).flags['checkout-theme']).toEqual({ ...checkoutTheme, defaultVariant: 'bold' });
    await expect(store.patchFlag('checkout-theme', { evil: 1 } as never, actor)).rejects.toThrow('cannot patch "evil"');
    await expect(store.patchFlag('missing', { state: 'DISABLED' }, actor)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('refuses a stale writer with VersionConflictError and writes nothing', async () => {
    await store.putFlag('checkout-theme', checkoutTheme, actor);
    const err = await store.putFlag('checkout-theme', { ...checkoutTheme, defaultVariant: 'bold' }, { ...actor, expectedVersion: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VersionConflictError);
    expect(err).toMatchObject({ expectedVersion: 0, currentVersion: 1, code: 'ERR_ROLLGATE_VERSION_CONFLICT' });
    expect(await store.load()).toMatchObject({ version: 1, flags: { 'checkout-theme': checkoutTheme } });
    expect(await store.audit()).toHaveLength(1);
  });

  it('lets exactly one of several concurrent writers at the same version win', async () => {
    await store.putFlag('checkout-theme', checkoutTheme, actor);
    const attempts = ['classic', 'bold', 'classic', 'bold', 'bold'].map((v, i) =>
      store.putFlag('checkout-theme', { ...checkoutTheme, defaultVariant: v, metadata: { writer: i } }, { actor: `writer-${i}`, expectedVersion: 1 }),
    );
    const settled = await Promise.allSettled(attempts);
    const won = settled.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of settled) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(VersionConflictError);
    const winner = settled.indexOf(won[0]!);
    expect(await store.load()).toMatchObject({ version: 2, flags: { 'checkout-theme': { metadata: { writer: winner } } } });
    expect((await store.audit('checkout-theme')).map((e) => e.actor)).toEqual([`writer-${winner}`, 'test-suite']);
  });

  it('serialises unpinned concurrent writers without losing any', async () => {
    const results = await Promise.all(['a', 'b', 'c'].map((k) => store.putFlag(k, checkoutTheme, actor)));
    expect(results.map((r) => r.version).sort()).toEqual([1, 2, 3]);
    expect(Object.keys((await store.load()).flags).sort()).toEqual(['a', 'b', 'c']);
  });

  it('refuses an invalid flag with the core path-qualified message, leaving the store untouched', async () => {
    await store.putFlag('checkout-theme', checkoutTheme, actor);
    const before = await store.load();
    const err = await store.putFlag('fast-payment', { ...fastPayment, targeting: undefined, defaultVariant: 'nope' }, actor).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FlagValidationError);
    expect((err as Error).message).toContain('flags.fast-payment.defaultVariant: "nope" is not one of the variants on, off');
    expect(await store.load()).toEqual(before);
    expect(await store.audit()).toHaveLength(1);
  });

  it('refuses prototype-pollution payloads and leaves Object.prototype alone', async () => {
    const payload = JSON.parse('{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on","__proto__":{"polluted":true}}') as unknown;
    await expect(store.putFlag('evil', payload, actor)).rejects.toThrow('the key "__proto__" is forbidden');
    await expect(store.putFlag('__proto__', checkoutTheme, actor)).rejects.toThrow(FlagValidationError);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await store.load()).version).toBe(0);
  });

  it('refuses removing an evaluator that flags still use', async () => {
    await store.putEvaluator('vip-agencies', vipAgencies, actor);
    await store.putFlag('fast-payment', fastPayment, actor);
    await expect(store.removeEvaluator('vip-agencies', actor)).rejects.toThrow('unknown $ref "vip-agencies"');
    expect((await store.load()).evaluators).toEqual({ 'vip-agencies': vipAgencies });
  });

  it('refuses a string with a lone UTF-16 surrogate (not valid Unicode), writing nothing; an escaped backslash-u text is fine', async () => {
    const cut = '🚀 launch'.slice(1); // starts with the low half of the rocket
    await expect(store.putFlag('theme', { ...checkoutTheme, variants: { classic: cut, bold: 'bold' } }, actor)).rejects.toThrow(
      new InvalidWriteError('flag "theme": a string holds a broken character (a lone UTF-16 surrogate, e.g. an emoji cut in half), which is not valid Unicode and cannot be stored'),
    );
    expect((await store.load()).version).toBe(0);
    const literal = { ...checkoutTheme, variants: { classic: '\\ud800 and 🚀', bold: 'bold' } };
    await store.putFlag('theme', literal, actor);
    expect((await store.load()).flags.theme).toEqual(literal);
  });

  it('requires an actor', async () => {
    await expect(store.putFlag('checkout-theme', checkoutTheme, { actor: '' })).rejects.toThrow('options.actor is required');
  });

  it('audits every change with actor, action, before, after, reason and version, newest first', async () => {
    await store.putFlag('checkout-theme', checkoutTheme, { actor: 'alice', reason: 'launch' });
    await store.patchFlag('checkout-theme', { state: 'DISABLED' }, { actor: 'bob', reason: 'incident 42' });
    await store.removeFlag('checkout-theme', { actor: 'carol' });
    const entries = await store.audit('checkout-theme');
    expect(entries.map((e) => [e.version, e.actor, e.action, e.reason])).toEqual([
      [3, 'carol', 'remove', ''],
      [2, 'bob', 'patch', 'incident 42'],
      [1, 'alice', 'put', 'launch'],
    ]);
    expect(entries[1]!.before).toEqual(checkoutTheme);
    expect(entries[1]!.after).toEqual({ ...checkoutTheme, state: 'DISABLED' });
    expect(entries[0]!.after).toBeNull();
    expect(entries[2]!.before).toBeNull();
    expect(await store.audit(undefined, { limit: 2 })).toHaveLength(2);
  });

  it('reverts to the exact definition of an earlier version, as a new audited write', async () => {
    await store.putFlag('checkout-theme', checkoutTheme, actor); // v1
    await store.patchFlag('checkout-theme', { defaultVariant: 'bold' }, actor); // v2
    await store.patchFlag('checkout-theme', { state: 'DISABLED' }, actor); // v3
    const r = await store.revert('checkout-theme', { toVersion: 1 }, { actor: 'ops' });
    expect(r.version).toBe(4);
    expect((await store.load()).flags['checkout-theme']).toEqual(checkoutTheme);
    const [latest] = await store.audit('checkout-theme', { limit: 1 });
    expect(latest).toMatchObject({ action: 'revert', actor: 'ops', version: 4, reason: 'revert to version 1' });
  });

  it('reverts the latest change by default, and a creation by removing', async () => {
    await store.putFlag('checkout-theme', checkoutTheme, actor);
    await store.patchFlag('checkout-theme', { defaultVariant: 'bold' }, actor);
    await store.revert('checkout-theme', {}, actor);
    expect((await store.load()).flags['checkout-theme']).toEqual(checkoutTheme);
    await store.putFlag('new-flag', checkoutTheme, actor);
    await store.revert('new-flag', { toVersion: 1 }, actor);
    expect((await store.load()).flags['new-flag']).toBeUndefined();
    await expect(store.revert('never-existed', {}, actor)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('tells watchers about every write', async () => {
    const heard: number[] = [];
    const changed = new Promise<void>((resolve) => {
      const stop = store.watch({
        onChange: (v) => {
          heard.push(v);
          if (v === 2) {
            stop();
            resolve();
          }
        },
      });
    });
    // let the Redis subscriber connect before writing (its initial version check announces 0)
    await new Promise<void>((resolve) => {
      const stop = store.watch({ onChange: () => (stop(), resolve()) });
      if (store instanceof MemoryFlagStore) (stop(), resolve());
    });
    await store.putFlag('checkout-theme', checkoutTheme, actor);
    await store.patchFlag('checkout-theme', { state: 'DISABLED' }, actor);
    await changed;
    expect(heard).toContain(2);
  });

  it('records tracking events', async () => {
    await store.recordEvent({ name: 'payment-completed', targetingKey: 'u1', time: 1, details: { value: 12.5 } });
    const events = store instanceof MemoryFlagStore ? store.trackedEvents() : await (store as RedisFlagStore).trackedEvents();
    expect(events).toEqual([{ name: 'payment-completed', targetingKey: 'u1', time: 1, details: { value: 12.5 } }]);
  });
});

it('MemoryFlagStore: an audit id is never reused once old entries are trimmed (a client reading `after` an id relies on it)', async () => {
  const store = new MemoryFlagStore({ auditMaxLength: 3 });
  opened.push(store);
  const seen: string[] = [];
  for (let n = 0; n < 6; n++) {
    await store.putFlag('checkout-theme', { ...checkoutTheme, defaultVariant: n % 2 ? 'bold' : 'classic', metadata: { n } }, actor);
    seen.push((await store.audit(undefined, { limit: 1 }))[0]!.id);
  }
  expect(new Set(seen).size).toBe(6);
  expect((await store.audit()).map((e) => e.id)).toEqual(seen.slice(3).reverse());
});
