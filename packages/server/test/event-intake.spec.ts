import { compileFlagSet, type FlagSnapshot } from '@rollgate/core';
import { EventIntake, OfrepEvaluator, eventsCorsHeaders, eventsError, type EventIntakeOptions, type Exposure, type OutcomeSink, type TrackingOptions } from '@rollgate/server';

// The events endpoint's logic, without HTTP: what is accepted, what it is attributed to (what the
// server evaluates, never what the body says), and the limits with an injected clock. The
// adapters' answers, real Redis counts and Express/Nest parity are in the express and nest tests.

const flagSet = {
  flags: {
    // admins are a pilot (targeted); everyone else is split 50/50 on targetingKey
    checkout: {
      state: 'ENABLED',
      variants: { fast: 'fast', classic: 'classic' },
      defaultVariant: 'classic',
      targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'fast', { fractional: [['fast', 50], ['classic', 50]] }] },
      metadata: { clientVisible: true },
    },
    // French speakers get the new banner: a client attribute decides, as it does for OFREP
    banner: { state: 'ENABLED', variants: { new: 'new', old: 'old' }, defaultVariant: 'old', targeting: { if: [{ '==': [{ var: 'locale' }, 'fr'] }, 'new', 'old'] }, metadata: { clientVisible: true } },
    'kill-switched': { state: 'DISABLED', variants: { on: true, off: false }, defaultVariant: 'off', metadata: { clientVisible: true } },
    'server-only': { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' },
  },
};

function snapshot(): FlagSnapshot {
  const { snapshot: s, errors } = compileFlagSet(flagSet);
  expect(errors).toEqual([]);
  return s;
}

const mappedNames = ['targetingKey', 'roles', 'tenant'];
const caller = (sub: string, roles: string[] = ['customer']) => ({ subject: sub, context: { targetingKey: sub, roles }, mappedNames });

function recordingSink(): OutcomeSink & { events: { name: string; exposures: readonly Exposure[] }[] } {
  const events: { name: string; exposures: readonly Exposure[] }[] = [];
  return { events, recordRequest: () => undefined, recordEvent: (name, exposures) => void events.push({ name, exposures }) };
}

function setup(options: Partial<TrackingOptions> = {}, source: { snapshot: FlagSnapshot; health?: () => { syncedAt: number | undefined } } = { snapshot: snapshot() }) {
  const clock = { ms: Date.UTC(2026, 11, 1) };
  const sink = recordingSink();
  const evaluator = new OfrepEvaluator({ source, clientAttributes: ['locale'] });
  const intake = new EventIntake({ evaluator, sink, trackedEvents: ['checkout.completed', 'search.done'], now: () => clock.ms, ...options });
  return { intake, sink, clock };
}

/** A user the split puts in `variant` (found by evaluating, as the server does). */
function splitUser(variant: 'fast' | 'classic', skip = 0): string {
  const s = snapshot();
  for (let i = 0, found = 0; ; i++) {
    const r = s.evaluate('checkout', { targetingKey: `u${i}`, roles: ['customer'] });
    if (r.reason === 'SPLIT' && r.variant === variant && found++ === skip) return `u${i}`;
  }
}

describe('attribution', () => {
  it('counts each accepted event in the arm of every client-visible flag the server serves the caller', () => {
    const { intake, sink } = setup();
    const fast = splitUser('fast');
    const out = intake.handle(caller(fast), { events: [{ name: 'checkout.completed', value: 42 }] });
    expect(out.status).toBe(202);
    expect(out.body).toEqual({ accepted: 1, refused: 0, results: [{ status: 'accepted' }] });
    expect(sink.events).toEqual([
      {
        name: 'checkout.completed',
        exposures: [
          { flagKey: 'checkout', variant: 'fast', split: true, unit: fast },
          { flagKey: 'banner', variant: 'old', split: false, unit: fast },
        ],
      },
    ]);
  });

  it('a pilot (targeting rule) is counted in the targeted arm; a disabled flag in none', () => {
    const { intake, sink } = setup();
    intake.handle(caller('ada', ['admin']), { events: [{ name: 'checkout.completed' }] });
    expect(sink.events[0]!.exposures.find((e) => e.flagKey === 'checkout')).toEqual({ flagKey: 'checkout', variant: 'fast', split: false, unit: 'ada' });
    expect(sink.events[0]!.exposures.map((e) => e.flagKey)).not.toContain('kill-switched');
  });

  it('never uses a flag or variant from the body: they are ignored and named in the answer', () => {
    const { intake, sink } = setup();
    const classic = splitUser('classic');
    const out = intake.handle(caller(classic), {
      events: [{ name: 'checkout.completed', flagKey: 'checkout', variant: 'fast', split: true }],
      flags: { checkout: 'fast' },
      context: { targetingKey: splitUser('fast'), roles: ['admin'] }, // identity attributes: never taken from the client
    });
    expect(out.body).toEqual({ accepted: 1, refused: 0, results: [{ status: 'accepted', ignored: ['flagKey', 'variant', 'split'] }], ignored: ['flags'] });
    expect(sink.events[0]!.exposures.find((e) => e.flagKey === 'checkout')).toEqual({ flagKey: 'checkout', variant: 'classic', split: true, unit: classic });
  });

  it('evaluates with the client attributes OFREP allows, so an event lands where the page was served', () => {
    const { intake, sink } = setup();
    intake.handle(caller('bo'), { events: [{ name: 'search.done' }], context: { locale: 'fr' } });
    expect(sink.events[0]!.exposures.find((e) => e.flagKey === 'banner')).toMatchObject({ variant: 'new' });
  });

  it('`flags` names what events are attributed to, server-only flags included; unknown keys are skipped', () => {
    const { intake, sink } = setup({ flags: ['server-only', 'no-such-flag'] });
    intake.handle(caller('bo'), { events: [{ name: 'search.done' }] });
    expect(sink.events[0]!.exposures).toEqual([{ flagKey: 'server-only', variant: 'on', split: false, unit: 'bo' }]);
  });
});

describe('what is refused', () => {
  it('judges each event: unknown names, bad names and bad values are refused and not counted', () => {
    const { intake, sink } = setup();
    const out = intake.handle(caller('bo'), {
      events: [{ name: 'checkout.completed' }, { name: 'admin.deleted' }, { name: 'x'.repeat(65) }, { name: '' }, 'checkout.completed', { name: 'search.done', value: 'ten' }, null],
    });
    expect(out.status).toBe(202);
    expect(out.body).toEqual({
      accepted: 1,
      refused: 6,
      results: [
        { status: 'accepted' },
        { status: 'refused', reason: 'unknown_event', details: '"admin.deleted" is not an event this server accepts' },
        { status: 'refused', reason: 'name_too_long', details: '"name" is longer than 64 characters' },
        { status: 'refused', reason: 'invalid_event', details: '"name" must be a non-empty string' },
        { status: 'refused', reason: 'invalid_event', details: 'an event must be an object { "name": "...", "value"?: number } or { "type": "pageview" | "error" | "feedback", … }' },
        { status: 'refused', reason: 'invalid_value', details: '"value" must be a finite number' },
        { status: 'refused', reason: 'invalid_event', details: 'an event must be an object { "name": "...", "value"?: number } or { "type": "pageview" | "error" | "feedback", … }' },
      ],
    });
    expect(sink.events.map((e) => e.name)).toEqual(['checkout.completed']);
  });

  it('answers 400 for a body of the wrong shape or too many events, saying what is wrong; nothing counted', () => {
    const { intake, sink } = setup({ maxEventsPerRequest: 3 });
    const cases: [unknown, string, string][] = [
      [undefined, 'INVALID_BODY', 'the request body must be a JSON object: { "events": [{ "name": "...", "value"?: number }] }'],
      [[{ name: 'search.done' }], 'INVALID_BODY', 'the request body must be a JSON object: { "events": [{ "name": "...", "value"?: number }] }'],
      [{}, 'INVALID_BODY', '"events" must be an array of { "name": "...", "value"?: number }'],
      [{ events: { name: 'search.done' } }, 'INVALID_BODY', '"events" must be an array of { "name": "...", "value"?: number }'],
      [{ events: Array(4).fill({ name: 'search.done' }) }, 'TOO_MANY_EVENTS', '4 events in one request; at most 3: send them in several requests'],
      [{ events: [{ name: 'search.done' }], context: 'fr' }, 'INVALID_CONTEXT', '"context" must be an object'],
    ];
    for (const [body, errorCode, errorDetails] of cases) {
      expect(intake.handle(caller('bo'), body)).toMatchObject({ status: 400, body: { errorCode, errorDetails } });
    }
    expect(sink.events).toEqual([]);
  });

  it('answers 503 with Retry-After until the flags are loaded (events cannot be attributed)', () => {
    const { intake, sink } = setup({}, { snapshot: snapshot(), health: () => ({ syncedAt: undefined }) });
    const out = intake.handle(caller('bo'), { events: [{ name: 'search.done' }] });
    expect([out.status, out.headers['Retry-After'], (out.body as { errorCode: string }).errorCode]).toEqual([503, '5', 'PROVIDER_NOT_READY']);
    expect(sink.events).toEqual([]);
  });

  it('refuses a configuration that would accept nothing or could never pass a full request', () => {
    const evaluator = new OfrepEvaluator({ source: { snapshot: snapshot() } });
    const sink = recordingSink();
    const make = (o: Partial<EventIntakeOptions>) => () => new EventIntake({ evaluator, sink, trackedEvents: ['a'], ...o } as EventIntakeOptions);
    expect(make({ trackedEvents: [] })).toThrow('tracking.trackedEvents must be a non-empty array');
    expect(make({ trackedEvents: ['ok', 'bad\nname'] })).toThrow('tracking.trackedEvents: "bad\\nname" is not an event name');
    expect(make({ sink: undefined as never })).toThrow('tracking needs an outcome sink: give outcomes: { sink }');
    expect(make({ maxEventsPerRequest: 0 })).toThrow('tracking.maxEventsPerRequest must be an integer from 1 to 1000');
    expect(make({ perIdentity: { burst: 10, perSecond: 1 } })).toThrow('tracking.perIdentity.burst must be an integer >= 50');
    expect(make({ perProcess: { burst: 100, perSecond: 0 } })).toThrow('tracking.perProcess.perSecond must be a number > 0');
    expect(make({ maxEventsPerRequest: 200 })).toThrow('a burst below maxEventsPerRequest (200)');
    expect(make({ flags: 'checkout' as never })).toThrow('tracking.flags must be an array of flag keys');
  });
});

describe('rate limits (injected clock)', () => {
  it('per caller: every event sent takes a token; a request that needs more than are left is a 429 with Retry-After and counts nothing', () => {
    const { intake, sink, clock } = setup({ maxEventsPerRequest: 4, perIdentity: { burst: 10, perSecond: 2 } });
    const send = (n: number, who = 'bo') => intake.handle(caller(who), { events: Array.from({ length: n }, () => ({ name: 'search.done' })) });
    expect([send(4).status, send(4).status]).toEqual([202, 202]); // 2 tokens left
    const flood = send(3);
    expect(flood).toMatchObject({ status: 429, headers: { 'Retry-After': '1' }, body: { errorCode: 'RATE_LIMITED', errorDetails: 'too many events from this caller; none of these were counted: retry after 1 s' } });
    expect(send(2).status).toBe(202); // a request that fits still goes through: 0 left
    expect(send(4)).toMatchObject({ status: 429, headers: { 'Retry-After': '2' } });
    expect(send(1, 'cy').status).toBe(202); // another caller has their own bucket
    expect(sink.events.filter((e) => e.exposures[0]!.unit === 'bo')).toHaveLength(10); // exactly the accepted ones
    clock.ms += 2000; // 4 tokens back
    expect(send(4).status).toBe(202);
    expect(send(1).status).toBe(429);
  });

  it('refused events cost tokens too, and an empty request costs one', () => {
    const { intake } = setup({ maxEventsPerRequest: 2, perIdentity: { burst: 3, perSecond: 1 } });
    expect(intake.handle(caller('bo'), { events: [{ name: 'nope' }, { name: 'nope' }] }).status).toBe(202);
    expect(intake.handle(caller('bo'), { events: [] })).toMatchObject({ status: 202, body: { accepted: 0, refused: 0, results: [] } });
    expect(intake.handle(caller('bo'), { events: [] }).status).toBe(429);
  });

  it('per process: all callers together', () => {
    const { intake, clock } = setup({ maxEventsPerRequest: 5, perProcess: { burst: 10, perSecond: 5 } });
    const send = (who: string) => intake.handle(caller(who), { events: Array.from({ length: 5 }, () => ({ name: 'search.done' })) });
    expect([send('a').status, send('b').status]).toEqual([202, 202]);
    expect(send('c')).toMatchObject({ status: 429, headers: { 'Retry-After': '1' }, body: { errorDetails: 'too many events on this server; none of these were counted: retry after 1 s' } });
    clock.ms += 1000;
    expect(send('c').status).toBe(202);
  });

  it('remembers at most maxIdentities callers, and forgets those whose bucket is full again', () => {
    const { intake, clock } = setup({ maxIdentities: 3, perIdentity: { burst: 60, perSecond: 1 } });
    for (const who of ['a', 'b', 'c', 'd', 'e']) intake.handle(caller(who), { events: [{ name: 'search.done' }] });
    expect(intake.trackedCallers).toBe(3);
    clock.ms += 5000; // every bucket is full again
    intake.handle(caller('f'), { events: [{ name: 'search.done' }] });
    expect(intake.trackedCallers).toBe(1);
  });
});

it('shares the OFREP 401 and answers the other refusals with a code and a message', () => {
  expect(eventsError('unauthorized')).toMatchObject({ status: 401, headers: { 'WWW-Authenticate': 'Bearer' }, body: { errorDetails: 'unauthorized' } });
  expect(eventsError('not-configured')).toMatchObject({ status: 404, body: { errorCode: 'NOT_CONFIGURED' } });
  expect(eventsError('body-too-large').status).toBe(413);
  expect(eventsError('body-refused', { status: 415 }).status).toBe(415);
  expect(eventsCorsHeaders('https://evil.test', new Set(['https://app.test']), true)).toEqual({});
  expect(eventsCorsHeaders('https://app.test', new Set(['https://app.test']), true)).toMatchObject({ 'Access-Control-Expose-Headers': 'Retry-After', 'Access-Control-Allow-Methods': 'POST, OPTIONS' });
});
