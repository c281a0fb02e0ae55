import { ErrorReporter, describeThrown, fingerprint, listenForErrors, normaliseFrame, scrubMessage, topFrame, truncate, errorEvent, type ErrorEventBody } from '../src/error-capture';

// Fingerprints, normalisation and scrubbing of browser errors, and the per-page dedupe and rate
// limit with an injected clock. Stacks are the formats browsers produce (V8, SpiderMonkey,
// JavaScriptCore), written out, plus real V8 ones from this process.

const chromeStack = (url: string, fn = 'HTMLButtonElement.onclick') => `TypeError: Cannot read properties of undefined (reading 'total')
    at ${fn} (${url})
    at dispatch (https://shop.example.com/assets/vendor-9c1d.js:2:331)`;
const firefoxStack = (url: string) => `onclick@${url}\ndispatch@https://shop.example.com/assets/vendor-9c1d.js:2:331\n`;

function thrown(message: string, stack: string, name = 'TypeError'): Error {
  const e = new Error(message);
  e.name = name;
  e.stack = stack;
  return e;
}

describe('top frame and its normalisation', () => {
  it('reads the first located frame of V8, SpiderMonkey and JavaScriptCore stacks', () => {
    expect(topFrame(chromeStack('https://shop.example.com/assets/index-3f2a.js?v=12:1:48213'))).toEqual({ url: 'https://shop.example.com/assets/index-3f2a.js?v=12', line: '1', column: '48213' });
    expect(topFrame(firefoxStack('https://shop.example.com/assets/index-3f2a.js:1:48213'))).toEqual({ url: 'https://shop.example.com/assets/index-3f2a.js', line: '1', column: '48213' });
    expect(topFrame('Error: x\n    at https://a.example/app.js:3:4\n')).toEqual({ url: 'https://a.example/app.js', line: '3', column: '4' });
    expect(topFrame('Error: x\n    at async pay (https://a.example/app.js:3:4)')).toEqual({ url: 'https://a.example/app.js', line: '3', column: '4' });
    expect(topFrame('Error: x\n    at eval (eval at run (https://a.example/app.js:7:9), <anonymous>:1:1)')).toEqual({ url: 'https://a.example/app.js', line: '1', column: '1' });
    // a message spanning lines, frames without a location first
    expect(topFrame('Error: line one\nline two at nowhere\n    at new Promise (<anonymous>)\n    at go (https://a.example/app.js:10:20)')).toEqual({ url: 'https://a.example/app.js', line: '10', column: '20' });
    expect(topFrame(undefined)).toBeUndefined();
    expect(topFrame('Error: no frames')).toBeUndefined();
  });

  it('a real V8 stack of this process gives this file', () => {
    const frame = topFrame(new Error('here').stack);
    expect(frame?.url).toMatch(/error-capture\.spec\.ts$/);
    expect(Number(frame?.line)).toBeGreaterThan(0);
  });

  it('strips the query string, fragment and origin, and keeps line:column', () => {
    expect(normaliseFrame({ url: 'https://cdn.example.com/assets/index-3f2a.js?v=12&token=abc#x', line: '1', column: '48213' })).toBe('/assets/index-3f2a.js:1:48213');
    expect(normaliseFrame({ url: 'http://127.0.0.1:5173/src/App.tsx?t=1712', line: '40', column: '7' })).toBe('/src/App.tsx:40:7');
    expect(normaliseFrame({ url: '<anonymous>', line: '1', column: '1' })).toBe('<anonymous>:1:1');
    expect(normaliseFrame({ url: 'blob:https://a.example/5f0c', line: '1', column: '2' })).toBe('blob:https://a.example/5f0c:1:2');
    expect(normaliseFrame(undefined)).toBe('');
  });
});

describe('fingerprint', () => {
  it('is 16 hex characters, and the same error gives the same fingerprint (across engines, hosts and cache busters)', () => {
    const a = errorEvent(thrown("Cannot read properties of undefined (reading 'total')", chromeStack('https://shop.example.com/assets/index-3f2a.js?v=12:1:48213')), 'error');
    const b = errorEvent(thrown("Cannot read properties of undefined (reading 'total')", chromeStack('https://cdn.example.net/assets/index-3f2a.js?v=13:1:48213', 'Object.onclick')), 'error');
    const c = errorEvent(thrown("Cannot read properties of undefined (reading 'total')", firefoxStack('https://shop.example.com/assets/index-3f2a.js:1:48213')), 'unhandledrejection');
    expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(b.fingerprint).toBe(a.fingerprint);
    expect(c.fingerprint).toBe(a.fingerprint); // the source is not part of it: an error seen twice is one error
  });

  it('differs for another top frame (another column of the same minified bundle, another file) or another message', () => {
    const at = (url: string, message = 'boom') => errorEvent(thrown(message, chromeStack(url)), 'error').fingerprint;
    const base = at('https://a.example/assets/index.js:1:48213');
    expect(at('https://a.example/assets/index.js:1:48214')).not.toBe(base);
    expect(at('https://a.example/assets/index.js:2:48213')).not.toBe(base);
    expect(at('https://a.example/assets/other.js:1:48213')).not.toBe(base);
    expect(at('https://a.example/assets/index.js:1:48213', 'bang')).not.toBe(base);
  });

  it('numbers and ids in the message do not split one error into many', () => {
    const at = (message: string) => errorEvent(thrown(message, chromeStack('https://a.example/app.js:1:2')), 'error');
    expect(at('order 123456 not found').fingerprint).toBe(at('order 987654 not found').fingerprint);
    expect(at('order 123456 not found').message).toBe('TypeError: order <n> not found');
  });

  it('spreads: 20,000 distinct inputs, no collision', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(fingerprint(`TypeError: x${i % 100} is not a function`, `/assets/index.js:1:${i}`));
    expect(seen.size).toBe(20_000);
  });
});

describe('message', () => {
  it('scrubs URLs’ query strings, e-mails, card and long numbers, UUIDs, tokens, control characters and line breaks', () => {
    expect(scrubMessage('GET https://api.example.com/pay?card=4242&token=x#frag failed')).toBe('GET https://api.example.com/pay failed');
    expect(scrubMessage('no account for ada.lovelace+test@example.co.uk')).toBe('no account for <email>');
    expect(scrubMessage('card 4242 4242 4242 4242 declined, card 4000-0000-0000-0002 too')).toBe('card <n> declined, card <n> too');
    expect(scrubMessage('booking 3e1f0c52-9a7b-4c1e-8f00-2b7d6a9c0d11 failed')).toBe('booking <id> failed');
    expect(scrubMessage('bad token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.sig-nature_1')).toBe('bad token <token>');
    expect(scrubMessage('session sk_live_51HcVbT2eZvKYlo2C0a9bX8c7d6e5f4g3h2 expired')).toBe('session <token> expired');
    expect(scrubMessage('status 404 after 3 retries')).toBe('status 404 after 3 retries');
    expect(scrubMessage('a\u001b[31mred\u001b[0m\nnext\tline\u0007')).toBe('a [31mred [0m next line');
  });

  it('is "Name: message" for an Error, the string for a thrown string, the event’s message without an Error, a neutral text for other values', () => {
    expect(describeThrown(new RangeError('too far'), 'error').message).toBe('RangeError: too far');
    expect(describeThrown(Object.assign(new Error(''), { name: 'AbortError' }), 'error').message).toBe('AbortError');
    expect(describeThrown('plain string', 'unhandledrejection').message).toBe('plain string');
    expect(describeThrown(null, 'error', { message: 'Script error.', filename: '', lineno: 0, colno: 0 })).toEqual({ message: 'Script error.', frame: undefined });
    expect(describeThrown(null, 'error', { message: 'Uncaught SyntaxError: bad', filename: 'https://a.example/x.js?v=1', lineno: 3, colno: 9 })).toEqual({ message: 'SyntaxError: bad', frame: { url: 'https://a.example/x.js?v=1', line: '3', column: '9' } });
    expect(describeThrown({ secret: 'card 4242' }, 'unhandledrejection').message).toBe('Unhandled rejection with a non-Error value (object)');
    expect(describeThrown(undefined, 'unhandledrejection').message).toBe('Unhandled rejection with a non-Error value (undefined)');
    expect(describeThrown(42, 'error').message).toBe('Non-Error value thrown (number)');
    expect(describeThrown({ message: 'error-like', stack: 'x\n    at f (https://a.example/y.js:1:2)' }, 'error')).toEqual({ message: 'Error: error-like', frame: { url: 'https://a.example/y.js', line: '1', column: '2' } });
  });

  it('is cut to 200 characters, never in the middle of a surrogate pair', () => {
    const long = errorEvent(new Error('x'.repeat(5000)), 'error').message;
    expect(long).toHaveLength(200);
    expect(long.endsWith('…')).toBe(true);
    const emoji = truncate(`${'a'.repeat(198)}😀😀`, 200); // the pair at 198-199 would be cut after its first half
    expect(emoji).toBe(`${'a'.repeat(198)}…`);
    expect(truncate('short', 200)).toBe('short');
  });

  it('sends nothing of the stack but what is hashed into the fingerprint', () => {
    const event = errorEvent(thrown('boom', chromeStack('https://a.example/assets/index.js:1:2')), 'boundary');
    expect(Object.keys(event).sort()).toEqual(['fingerprint', 'message', 'source', 'type']);
    expect(JSON.stringify(event)).not.toMatch(/index\.js|vendor|dispatch|onclick/);
  });
});

describe('ErrorReporter: dedupe and rate limit per page', () => {
  function reporter(settings: Partial<{ dedupeMs: number; maxPerMinute: number; ignore: (m: string, e: unknown) => boolean }> = {}) {
    const clock = { now: 1_000 };
    const sent: ErrorEventBody[] = [];
    const warnings: string[] = [];
    const r = new ErrorReporter({ dedupeMs: 30 * 60_000, maxPerMinute: 10, ignore: undefined, ...settings }, (e) => sent.push(e), (m) => warnings.push(m), () => clock.now);
    return { r, clock, sent, warnings };
  }
  const at = (i: number) => thrown(`failure ${String.fromCharCode(97 + (i % 26))}${Math.floor(i / 26)}`, chromeStack(`https://a.example/app.js:1:${i}`));

  it('reports a fingerprint once per dedupe period, from any source', () => {
    const { r, clock, sent } = reporter();
    const error = at(1);
    expect(r.report(error, 'error')).toBe('sent');
    expect(r.report(error, 'unhandledrejection')).toBe('duplicate');
    clock.now += 29 * 60_000;
    expect(r.report(error, 'boundary')).toBe('duplicate');
    clock.now += 60_000 + 1;
    expect(r.report(error, 'boundary')).toBe('sent');
    expect(sent.map((e) => e.source)).toEqual(['error', 'boundary']);
  });

  it('at most maxPerMinute reports a minute, then one warning with the number dropped', () => {
    const { r, clock, sent, warnings } = reporter();
    for (let i = 0; i < 25; i++) r.report(at(i), 'error');
    expect(sent).toHaveLength(10);
    expect(warnings).toEqual([]);
    expect(r.report(at(0), 'error')).toBe('duplicate'); // deduped ones are not counted as dropped
    clock.now += 59_999;
    expect(r.report(at(100), 'error')).toBe('rate-limited');
    clock.now += 1;
    expect(r.report(at(101), 'error')).toBe('sent'); // a new minute
    expect(warnings).toEqual(['dropped 16 error report(s): more than 10 in a minute on this page (captureErrors.maxPerMinute)']);
    expect(sent).toHaveLength(11);
    // the dropped ones were not remembered: they are reported when they happen again
    expect(r.report(at(15), 'error')).toBe('sent');
    r.close();
    expect(warnings).toHaveLength(1); // nothing more was dropped
  });

  it('says what was dropped when it closes', () => {
    const { r, warnings } = reporter({ maxPerMinute: 1 });
    r.report(at(1), 'error');
    r.report(at(2), 'error');
    r.report(at(3), 'error');
    r.close();
    expect(warnings).toEqual(['dropped 2 error report(s): more than 1 in a minute on this page (captureErrors.maxPerMinute)']);
  });

  it('remembers a bounded number of fingerprints (oldest forgotten first)', () => {
    const { r, clock } = reporter({ maxPerMinute: 1000 });
    for (let i = 0; i < 600; i++) {
      r.report(at(i), 'error');
      clock.now += 1;
    }
    expect(r.report(at(599), 'error')).toBe('duplicate');
    clock.now += 60_000;
    expect(r.report(at(0), 'error')).toBe('sent'); // forgotten beyond 500
  });

  it('leaves out browser-extension errors and what ignore() returns true for (an ignore() that throws ignores nothing)', () => {
    const { r, sent } = reporter({ ignore: (message) => message.includes('ResizeObserver') });
    expect(r.report(thrown('x', 'Error: x\n    at chrome-extension://abcdef/content.js:1:2'), 'error')).toBe('ignored');
    expect(r.report(thrown('x', 'x@moz-extension://abcdef/content.js:1:2'), 'error')).toBe('ignored');
    expect(r.report(null, 'error', { message: 'ResizeObserver loop completed with undelivered notifications.' })).toBe('ignored');
    expect(sent).toEqual([]);
    const throwing = reporter({
      ignore: () => {
        throw new Error('bug in ignore');
      },
    });
    expect(throwing.r.report(at(1), 'error')).toBe('sent');
  });
});

describe('listenForErrors', () => {
  function errorEventLike(type: string, fields: Record<string, unknown>): Event {
    return Object.assign(new Event(type), fields);
  }

  it('reports `error` and `unhandledrejection` events, and stops listening when told', () => {
    const target = new EventTarget();
    const reports: [unknown, string][] = [];
    const stop = listenForErrors(target, { report: (error, source) => (reports.push([error, source]), 'sent') }, true);
    const boom = new Error('boom');
    target.dispatchEvent(errorEventLike('error', { error: boom, message: 'Uncaught Error: boom', filename: 'https://a.example/app.js', lineno: 1, colno: 2 }));
    target.dispatchEvent(errorEventLike('unhandledrejection', { reason: 'nope' }));
    expect(reports).toEqual([
      [boom, 'error'],
      ['nope', 'unhandledrejection'],
    ]);
    stop();
    target.dispatchEvent(errorEventLike('error', { error: boom }));
    target.dispatchEvent(errorEventLike('unhandledrejection', { reason: 'nope' }));
    expect(reports).toHaveLength(2);
  });

  it('without unhandledRejections listens for `error` only; a reporter that throws does not reach the page', () => {
    const target = new EventTarget();
    let calls = 0;
    listenForErrors(
      target,
      {
        report: () => {
          calls++;
          throw new Error('reporter bug');
        },
      },
      false,
    );
    expect(() => target.dispatchEvent(errorEventLike('error', { error: new Error('x') }))).not.toThrow();
    target.dispatchEvent(errorEventLike('unhandledrejection', { reason: 'x' }));
    expect(calls).toBe(1);
  });
});
