import { ProviderEvents } from '@openfeature/server-sdk';
import { MemoryFlagStore, RollgateProvider } from '@rollgate/redis';
import { ChangeStream, OfrepEvaluator, type PacingOptions } from '@rollgate/server';
import { openStream, serve, type OpenStream, type Served } from './support/pilot-scenario';
import { FakePacingClock } from './support/fake-pacing-clock';

// The change stream with many browsers in mind: it announces only what browsers can see, paces
// its announcements, and lets a client resume (Last-Event-ID) without a refetch when nothing it
// can see changed — on this instance, another one, or after a restart. Real HTTP, a real
// provider over the in-memory store; no timing (the pacing clock is the test's).

const on = { on: true, off: false };
const initial = () => ({
  flags: {
    banner: { state: 'ENABLED', variants: on, defaultVariant: 'off', targeting: { if: [{ $ref: 'beta-tenants' }, 'on', null] }, metadata: { clientVisible: true } },
    checkout: { state: 'ENABLED', variants: { classic: 'classic', fast: 'fast' }, defaultVariant: 'classic', metadata: { clientVisible: true } },
    rollout: { state: 'ENABLED', variants: on, defaultVariant: 'off', targeting: { fractional: [['on', 50], ['off', 50]] }, metadata: { clientVisible: true } },
    limits: { state: 'ENABLED', variants: { low: 10, high: 100 }, defaultVariant: 'low', targeting: { if: [{ $ref: 'internal' }, 'high', null] } },
    audit: { state: 'ENABLED', variants: on, defaultVariant: 'off' },
  },
  $evaluators: { 'beta-tenants': { in: [{ var: 'tenant' }, ['atlas']] }, internal: { in: [{ var: 'tenant' }, ['ops']] } },
});
const SECRET = 'change-stream-fanout-secret-32-bytes!';
const REFETCH = /id: ([\w-]+)\nevent: message\ndata: (.+)\n\n/;

interface Instance {
  provider: RollgateProvider;
  stream: ChangeStream;
  evaluator: OfrepEvaluator;
  served: Served;
  /** Opens a stream for `caller` with `headers` (Last-Event-ID), from `since` (the URL's position) when given. */
  open(caller: string, options?: { since?: string; headers?: Record<string, string> }): Promise<OpenStream>;
  close(): Promise<void>;
}

async function instance(store: MemoryFlagStore, pacing?: PacingOptions | false): Promise<Instance> {
  const provider = new RollgateProvider({ store });
  await provider.initialize();
  const stream = new ChangeStream({ events: provider.events, ticketSecret: SECRET, ...(pacing === undefined ? {} : { pacing }) });
  const evaluator = new OfrepEvaluator({ source: provider, stream });
  const served = await serve((req, res) => {
    const url = new URL(req.url!, 'http://x');
    stream.handle(req, res, url.searchParams.get('ticket'), url.searchParams.get('since') ?? undefined);
  });
  const open = async (caller: string, options: { since?: string; headers?: Record<string, string> } = {}) => {
    const query = `ticket=${stream.issueTicket(caller)}${options.since === undefined ? '' : `&since=${options.since}`}`;
    const s = await openStream(served.port, `/events?${query}`, options.headers ?? {});
    await s.waitFor(/: connected\n\n/);
    return s;
  };
  return {
    provider,
    stream,
    evaluator,
    served,
    open,
    close: async () => {
      stream.close();
      await served.close();
      await provider.onClose();
    },
  };
}

/** Runs a write and resolves once `provider` has announced it (the stream, registered first, has handled it by then). */
function heard(provider: RollgateProvider, write: () => Promise<unknown>): Promise<void> {
  const done = new Promise<void>((resolve) => {
    const handler = () => {
      provider.events.removeHandler(ProviderEvents.ConfigurationChanged, handler);
      resolve();
    };
    provider.events.addHandler(ProviderEvents.ConfigurationChanged, handler);
  });
  return write().then(() => done);
}

const messages = (s: OpenStream) => s.text().match(/event: message/g)?.length ?? 0;
const actor = { actor: 'test' };

let store: MemoryFlagStore;
let a: Instance;
const streams: OpenStream[] = [];
const track = (s: OpenStream) => (streams.push(s), s);

beforeEach(async () => {
  store = new MemoryFlagStore({ initial: initial() });
  a = await instance(store);
});

afterEach(async () => {
  for (const s of streams.splice(0)) s.destroy();
  await a.close();
});

describe('only what browsers can see is announced', () => {
  it('a change to a server-only flag, or to a segment only server-only flags use, sends nothing; a visible change sends one refetch', async () => {
    const s = track(await a.open('bo'));
    const before = a.stream.stats();
    await heard(a.provider, () => store.patchFlag('limits', { defaultVariant: 'high' }, actor));
    await heard(a.provider, () => store.patchFlag('audit', { state: 'DISABLED' }, actor));
    await heard(a.provider, () => store.apply([{ kind: 'evaluator', key: 'internal', definition: { in: [{ var: 'tenant' }, ['ops', 'sre']] } }], actor));
    expect(a.stream.stats()).toMatchObject({ announced: before.announced, skipped: before.skipped + 3 });

    await heard(a.provider, () => store.patchFlag('checkout', { defaultVariant: 'fast' }, actor));
    const [, id, data] = await s.waitFor(REFETCH);
    // the visible change's message is the first and only one: the invisible ones sent nothing before it
    expect(messages(s)).toBe(1);
    expect(id).toBe(a.stream.position);
    expect(JSON.parse(data!)).toEqual({ type: 'refetchEvaluation', etag: id });
    expect(a.stream.stats()).toMatchObject({ announced: before.announced + 1, skipped: before.skipped + 3 });
  });

  it('announces a change to a segment that a visible flag uses', async () => {
    const s = track(await a.open('bo'));
    await heard(a.provider, () => store.apply([{ kind: 'evaluator', key: 'beta-tenants', definition: { in: [{ var: 'tenant' }, ['atlas', 'nordic']] } }], actor));
    await s.waitFor(REFETCH);
    expect(messages(s)).toBe(1);
  });

  it('announces a flag made visible, and one hidden again (browsers lose it)', async () => {
    const s = track(await a.open('bo'));
    await heard(a.provider, () => store.patchFlag('audit', { metadata: { clientVisible: true } }, actor));
    await s.waitFor(REFETCH);
    await heard(a.provider, () => store.patchFlag('audit', { metadata: {} }, actor));
    await s.waitFor(/(event: message[\s\S]*){2}/);
    expect(messages(s)).toBe(2);
  });

  it('a kill switch or a rollback goes out at the urgent share; an ordinary change at the share', async () => {
    // on the test's clock: the share applied also depends on how busy the process is
    const onTestClock = async () => {
      await a.close();
      store = new MemoryFlagStore({ initial: initial() });
      a = await instance(store, { clock: new FakePacingClock() });
      track(await a.open('bo'));
    };
    await onTestClock();
    const shareAfter = async (write: () => Promise<unknown>) => {
      let share = -1;
      const look = () => (share = a.stream.stats().share);
      a.provider.events.addHandler(ProviderEvents.ConfigurationChanged, look);
      await heard(a.provider, write);
      a.provider.events.removeHandler(ProviderEvents.ConfigurationChanged, look);
      return share;
    };
    expect(await shareAfter(() => store.patchFlag('checkout', { defaultVariant: 'fast' }, actor))).toBe(0.5);
    const fresh = onTestClock;
    await fresh();
    expect(await shareAfter(() => store.patchFlag('banner', { state: 'DISABLED' }, actor))).toBe(0.75); // kill switch
    await fresh();
    expect(await shareAfter(() => store.patchFlag('rollout', { targeting: { fractional: [['on', 10], ['off', 90]] } }, actor))).toBe(0.75); // rolled back towards "off"
    await fresh();
    expect(await shareAfter(() => store.patchFlag('rollout', { targeting: { fractional: [['on', 90], ['off', 10]] } }, actor))).toBe(0.5); // ramped up
  });
});

describe('resume with Last-Event-ID', () => {
  it('a client that saw the current position gets nothing on reconnect; one from before a change gets a refetch', async () => {
    const first = track(await a.open('bo', { since: a.stream.position }));
    const [, seen] = await first.waitFor(/id: ([\w-]+)\n: connected/);
    expect(seen).toBe(a.stream.position);
    first.destroy();

    const back = track(await a.open('bo', { headers: { 'Last-Event-ID': seen! } }));
    await heard(a.provider, () => store.patchFlag('checkout', { defaultVariant: 'fast' }, actor));
    const [, id] = await back.waitFor(REFETCH);
    expect(messages(back)).toBe(1); // the change's, nothing on connect
    expect(id).not.toBe(seen);

    const late = track(await a.open('bo', { headers: { 'Last-Event-ID': seen! }, since: id! }));
    const [, current] = await late.waitFor(REFETCH); // Last-Event-ID wins over the URL's since: a change was missed
    expect(current).toBe(a.stream.position);
  });

  it('positions are what browsers can see: another instance with the same flags (or this one restarted) resumes without a refetch', async () => {
    const b = await instance(store); // another process on the same store, with its own random state
    try {
      expect(b.stream.position).toBe(a.stream.position);
      const onA = track(await a.open('bo'));
      const [, seen] = await onA.waitFor(/id: ([\w-]+)\n: connected/);
      onA.destroy();
      // a change browsers cannot see moves nothing
      await Promise.all([heard(a.provider, async () => undefined), heard(b.provider, () => store.patchFlag('limits', { defaultVariant: 'high' }, actor))]);
      const onB = track(await b.open('bo', { headers: { 'Last-Event-ID': seen! } }));
      await heard(b.provider, () => store.patchFlag('checkout', { defaultVariant: 'fast' }, actor));
      const [, id] = await onB.waitFor(REFETCH);
      expect(messages(onB)).toBe(1); // the change's only
      expect(id).toBe(b.stream.position);
      expect(id).toBe(a.stream.position);
    } finally {
      await b.close();
    }
  });

  it('a stream that is not followed by an evaluator keeps per-process positions', () => {
    const bare = new ChangeStream({ events: a.provider.events });
    try {
      expect(bare.position).toMatch(/^[\w-]{12}\.0$/);
    } finally {
      bare.close();
    }
  });
});

describe('pacing', () => {
  it('spreads the messages of one change across slices sized by the share and the refetch cost', async () => {
    const clock = new FakePacingClock();
    const paced = await instance(store, { share: 0.5, initialRefetchCostMs: 1, sliceMs: 20, clock }); // 10 messages a slice
    try {
      const open: OpenStream[] = [];
      for (let i = 0; i < 35; i++) open.push(track(await paced.open(`caller-${i}`)));
      await heard(paced.provider, () => store.patchFlag('checkout', { defaultVariant: 'fast' }, actor));
      const pending = [paced.stream.stats().pending];
      while (paced.stream.stats().pending > 0) {
        clock.fire();
        pending.push(paced.stream.stats().pending);
      }
      expect(pending).toEqual([25, 15, 5, 0]);
      // every stream gets exactly one message, at the position current when it went out
      const ids = await Promise.all(open.map((s) => s.waitFor(REFETCH).then(([, id]) => id)));
      expect(new Set(ids)).toEqual(new Set([paced.stream.position]));
      expect(open.map(messages)).toEqual(open.map(() => 1));
      // streams that reconnect having missed it are paced too: the first ones at once, the rest on the next slices
      while (clock.scheduled) clock.fire();
      const stale = ids[0] === 'x' ? 'y' : 'x';
      const back: OpenStream[] = [];
      for (let i = 0; i < 12; i++) back.push(track(await paced.open(`back-${i}`, { headers: { 'Last-Event-ID': stale } })));
      expect(paced.stream.stats().pending).toBe(2);
      clock.fire();
      expect(paced.stream.stats().pending).toBe(0);
      await Promise.all(back.map((s) => s.waitFor(REFETCH)));
    } finally {
      await paced.close();
    }
  });

  it('pacing: false sends every message at once', async () => {
    const unpaced = await instance(store, false);
    try {
      const open = [];
      for (let i = 0; i < 30; i++) open.push(track(await unpaced.open(`caller-${i}`)));
      await heard(unpaced.provider, () => store.patchFlag('checkout', { defaultVariant: 'fast' }, actor));
      expect(unpaced.stream.stats().pending).toBe(0);
      await Promise.all(open.map((s) => s.waitFor(REFETCH)));
    } finally {
      await unpaced.close();
    }
  });
});
