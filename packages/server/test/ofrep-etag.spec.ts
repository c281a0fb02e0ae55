import { MemoryFlagStore, RollgateProvider } from '@rollgate/redis';
import { OfrepEvaluator, writeOfrepResponse } from '@rollgate/server';

// The bulk ETag is what makes a refetch cheap: a revalidation that nothing it can see changed
// since gets its 304 without an evaluation; one whose values did not change across a change gets
// a 304 after one; and nothing stale is ever answered 304 (other callers, other client
// attributes, flags that read the clock, a new stream ticket key).

const on = { on: true, off: false };
const flags = {
  banner: { state: 'ENABLED', variants: on, defaultVariant: 'off', targeting: { if: [{ $ref: 'beta' }, 'on', null] }, metadata: { clientVisible: true } },
  greeting: { state: 'ENABLED', variants: { en: 'Hello', fr: 'Bonjour' }, defaultVariant: 'en', targeting: { if: [{ '==': [{ var: 'locale' }, 'fr'] }, 'fr', null] }, metadata: { clientVisible: true } },
  limits: { state: 'ENABLED', variants: { low: 10, high: 100 }, defaultVariant: 'low' },
};
const who = (targetingKey: string, tenant: string) => ({ context: Object.freeze({ targetingKey, roles: [], tenant }), mappedNames: ['targetingKey', 'roles', 'tenant'] });
const bo = who('bo', 'atlas');
const cy = who('cy', 'smallco');
const actor = { actor: 'test' };

let store: MemoryFlagStore;
let provider: RollgateProvider;
let salt = 'salt-1';
let evaluator: OfrepEvaluator;

beforeEach(async () => {
  store = new MemoryFlagStore({ initial: { flags, $evaluators: { beta: { in: [{ var: 'tenant' }, ['atlas']] } } } });
  provider = new RollgateProvider({ store });
  await provider.initialize();
  salt = 'salt-1';
  evaluator = new OfrepEvaluator({ source: provider, clientAttributes: ['locale'], etagSalt: () => salt });
});

afterEach(async () => {
  jest.restoreAllMocks();
  await provider.onClose();
});

/** The provider's next snapshot (a write, once adopted). */
async function written(write: () => Promise<unknown>): Promise<void> {
  const before = provider.snapshot;
  await write();
  for (let i = 0; i < 100 && provider.snapshot === before; i++) await new Promise((r) => setImmediate(r));
  expect(provider.snapshot).not.toBe(before);
}

it('answers a revalidation of an unchanged answer with 304 without evaluating any flag', () => {
  const first = evaluator.bulk(bo, {}, undefined);
  expect(first.status).toBe(200);
  const etag = first.headers.ETag!;
  expect(etag).toMatch(/^"[\w-]{16}\.[\w-]{22}"$/);
  const evaluateAll = jest.spyOn(provider.snapshot, 'evaluateAll');
  expect(evaluator.bulk(bo, {}, etag)).toEqual({ status: 304, headers: expect.objectContaining({ ETag: etag }) });
  expect(evaluator.bulk(bo, {}, `W/${etag}, "other"`).status).toBe(304);
  expect(evaluateAll).not.toHaveBeenCalled();
});

it('never answers another caller, or other client attributes, from the ETag alone', () => {
  const etag = evaluator.bulk(bo, {}, undefined).headers.ETag!;
  const other = evaluator.bulk(cy, {}, etag); // not in the beta segment: banner differs
  expect(other.status).toBe(200);
  expect(other.headers.ETag).not.toBe(etag);
  const french = evaluator.bulk(bo, { context: { locale: 'fr' } }, etag);
  expect(french.status).toBe(200);
  expect((french.body as { flags: { key: string; value: unknown }[] }).flags.find((f) => f.key === 'greeting')?.value).toBe('Bonjour');
});

it('after a change this caller cannot tell apart (a server-only flag, or values that stay the same), answers 304 after evaluating, with the current ETag', async () => {
  const etag = evaluator.bulk(cy, {}, undefined).headers.ETag!;
  await written(() => store.patchFlag('limits', { defaultVariant: 'high' }, actor)); // server-only
  expect(evaluator.bulk(cy, {}, etag)).toMatchObject({ status: 304, headers: { ETag: etag } });
  await written(() => store.apply([{ kind: 'evaluator', key: 'beta', definition: { in: [{ var: 'tenant' }, ['atlas', 'nordic']] } }], actor));
  const after = evaluator.bulk(cy, {}, etag); // the segment changed, cy is still outside it
  expect(after.status).toBe(304);
  expect(after.headers.ETag).not.toBe(etag); // a new revision: the next revalidation takes the short way
  expect(after.headers.ETag!.slice(-23)).toBe(etag.slice(-23));
  const evaluateAll = jest.spyOn(provider.snapshot, 'evaluateAll');
  expect(evaluator.bulk(cy, {}, after.headers.ETag).status).toBe(304);
  expect(evaluateAll).not.toHaveBeenCalled();
});

it('answers 200 with the new values once a change reaches this caller', async () => {
  const etag = evaluator.bulk(cy, {}, undefined).headers.ETag!;
  await written(() => store.apply([{ kind: 'evaluator', key: 'beta', definition: { in: [{ var: 'tenant' }, ['atlas', 'smallco']] } }], actor));
  const after = evaluator.bulk(cy, {}, etag);
  expect(after.status).toBe(200);
  expect((after.body as { flags: { key: string; value: unknown }[] }).flags.find((f) => f.key === 'banner')?.value).toBe(true);
});

it('a new salt (a new stream ticket key, an ageing ticket) is never answered 304', () => {
  const etag = evaluator.bulk(bo, {}, undefined).headers.ETag!;
  salt = 'salt-2';
  expect(evaluator.bulk(bo, {}, etag).status).toBe(200);
});

it('flags that read the clock are evaluated on every request: a revalidation after their moment gets the new value', async () => {
  const moment = 1_900_000_000;
  await written(() => store.apply([{ kind: 'flag', key: 'launch', definition: { state: 'ENABLED', variants: on, defaultVariant: 'off', targeting: { if: [{ '>=': [{ var: '$flagd.timestamp' }, moment] }, 'on', null] }, metadata: { clientVisible: true } } }], actor));
  const clock = jest.spyOn(Date, 'now').mockReturnValue((moment - 60) * 1000);
  const before = evaluator.bulk(bo, {}, undefined);
  expect((before.body as { flags: { key: string; value: unknown }[] }).flags.find((f) => f.key === 'launch')?.value).toBe(false);
  expect(evaluator.bulk(bo, {}, before.headers.ETag).status).toBe(304); // same values: 304 after evaluating
  clock.mockReturnValue((moment + 1) * 1000);
  const after = evaluator.bulk(bo, {}, before.headers.ETag);
  expect(after.status).toBe(200);
  expect((after.body as { flags: { key: string; value: unknown }[] }).flags.find((f) => f.key === 'launch')?.value).toBe(true);
  expect(evaluator.clientView().readsClock).toBe(true);
});

it('the client view changes exactly with what browsers can see', async () => {
  const first = evaluator.clientView();
  expect(first.keys).toEqual(['banner', 'greeting']);
  await written(() => store.patchFlag('limits', { defaultVariant: 'high' }, actor));
  expect(evaluator.clientView().revision).toBe(first.revision);
  await written(() => store.patchFlag('greeting', { defaultVariant: 'fr' }, actor));
  expect(evaluator.clientView().revision).not.toBe(first.revision);
  // the same flags and options in another evaluator (another process): the same revision
  const again = new OfrepEvaluator({ source: provider, clientAttributes: ['locale'] });
  expect(again.clientView().revision).toBe(evaluator.clientView().revision);
  // other options shape other answers: another revision
  const exposing = new OfrepEvaluator({ source: provider, clientAttributes: ['locale'], exposedMetadata: ['owner'] });
  expect(exposing.clientView().revision).not.toBe(evaluator.clientView().revision);
});

it('writes the answers it worked out once per engine result as the same JSON as the answer itself, and follows a write', async () => {
  const withMetadata = new OfrepEvaluator({ source: provider, clientAttributes: ['locale'], etagSalt: () => salt, exposedMetadata: ['team'] });
  await written(() => store.putFlag('greeting', { ...flags.greeting, metadata: { clientVisible: true, team: 'web' } }, actor));
  const text = (ev: OfrepEvaluator, caller: typeof bo, body: unknown) => {
    const out = ev.bulk(caller, body, undefined);
    let sent = '';
    const res = { statusCode: 0, headers: {} as Record<string, unknown>, setHeader(n: string, v: unknown) { this.headers[n] = v; }, getHeader(n: string) { return this.headers[n]; }, end(t?: string) { sent = t ?? ''; } };
    writeOfrepResponse(res as never, out);
    expect(JSON.parse(sent)).toEqual(out.body); // the text is the answer
    return JSON.parse(sent) as { flags: { key: string; value?: unknown; metadata?: unknown }[] };
  };
  for (let round = 0; round < 3; round++) {
    expect(text(withMetadata, bo, { context: { locale: 'fr' } }).flags).toEqual([
      { key: 'banner', value: true, variant: 'on', reason: 'TARGETING_MATCH', metadata: {} },
      { key: 'greeting', value: 'Bonjour', variant: 'fr', reason: 'TARGETING_MATCH', metadata: { team: 'web' } },
    ]);
    expect(text(evaluator, cy, {}).flags).toEqual([
      { key: 'banner', value: false, variant: 'off', reason: 'DEFAULT' },
      { key: 'greeting', value: 'Hello', variant: 'en', reason: 'DEFAULT' },
    ]);
  }
  await written(() => store.patchFlag('banner', { state: 'DISABLED' }, actor));
  expect(text(evaluator, bo, {}).flags[0]).toEqual({ key: 'banner', reason: 'DISABLED' });
});
