import { OpenFeature } from '@openfeature/web-sdk';
import { createElement as h } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { RollgateWebProvider } from '@rollgate/web';
import { FeedbackPrompt, RollgateErrorBoundary } from '../src/react';
import { startOfrepServer, tokenFor, type OfrepTestServer } from './support/ofrep-server';

// The React entry without a browser: the markup the feedback prompt renders (what assistive
// technology gets), and the error boundary's reporting and fallback, called as React calls them.
// What a user does with them (keyboard, submit, a component throwing) is in signals.e2e.spec.ts,
// in Chromium.

let server: OfrepTestServer;

beforeAll(async () => {
  OpenFeature.setLogger({ error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined });
  server = await startOfrepServer('react', { events: 'stub' });
});

afterEach(async () => {
  await OpenFeature.clearProviders();
});

afterAll(async () => {
  await server?.close();
});

describe('FeedbackPrompt markup', () => {
  it('a fieldset whose legend is the question, three labelled radios (one group, required), a labelled textarea limited to 1000, a submit button, an empty status region', () => {
    const html = renderToStaticMarkup(h(FeedbackPrompt, { flag: 'fast-payment', question: 'How was the new payment flow?' }));
    const ids = [...html.matchAll(/name="([^"]+)"/g)].map((m) => m[1]);
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(1); // one radio group: arrow keys move within it
    const name = ids[0]!;
    const commentId = /<textarea id="([^"]+)"/.exec(html)![1]!;
    expect(html).toBe(
      '<div class="rollgate-feedback"><form><fieldset class="rollgate-feedback-choices"><legend>How was the new payment flow?</legend>' +
        `<label><input type="radio" required="" name="${name}" value="positive"/> Good</label>` +
        `<label><input type="radio" required="" name="${name}" value="neutral"/> Okay</label>` +
        `<label><input type="radio" required="" name="${name}" value="negative"/> Bad</label>` +
        `</fieldset><label for="${commentId}">Anything to add? (optional)</label>` +
        `<textarea id="${commentId}" class="rollgate-feedback-comment" maxLength="1000" rows="3"></textarea>` +
        '<button type="submit">Send</button></form>' +
        '<p role="status" aria-live="polite" tabindex="-1" class="rollgate-feedback-status"></p></div>',
    );
  });

  it('takes its texts and a class name as props, and renders them as text (never as markup)', () => {
    const html = renderToStaticMarkup(
      h(FeedbackPrompt, {
        flag: 'fast-payment',
        question: 'Was <b>paying</b> easy?',
        labels: { positive: 'Yes', negative: 'No' },
        commentLabel: 'Tell us more',
        submitLabel: 'Submit',
        className: 'checkout-survey',
      }),
    );
    expect(html).toContain('<div class="rollgate-feedback checkout-survey">');
    expect(html).toContain('<legend>Was &lt;b&gt;paying&lt;/b&gt; easy?</legend>');
    expect(html.match(/<label>[^]*?<\/label>/g)!.map((l) => l.replace(/<[^>]+>/g, ''))).toEqual([' Yes', ' Okay', ' No']);
    expect(html).toContain('>Tell us more</label>');
    expect(html).toContain('<button type="submit">Submit</button>');
  });

  it('two prompts on one page have separate groups and ids', () => {
    const html = renderToStaticMarkup(h('div', null, h(FeedbackPrompt, { flag: 'a', question: 'A?' }), h(FeedbackPrompt, { flag: 'b', question: 'B?' })));
    expect(new Set([...html.matchAll(/name="([^"]+)"/g)].map((m) => m[1])).size).toBe(2);
    expect(new Set([...html.matchAll(/id="([^"]+)"/g)].map((m) => m[1])).size).toBe(2);
  });
});

describe('RollgateErrorBoundary', () => {
  it('renders its children while nothing threw', () => {
    expect(renderToStaticMarkup(h(RollgateErrorBoundary, { fallback: h('p', null, 'broken') }, h('p', null, 'fine')))).toBe('<p>fine</p>');
  });

  it('reports what it caught to the provider of its domain (source "boundary"), calls onError, and renders the fallback with a reset', async () => {
    const domain = 'react-boundary';
    const provider = new RollgateWebProvider({ baseUrl: server.baseUrl, changeDetection: 'none', headersFactory: () => ({ Authorization: `Bearer ${tokenFor('bo')}` }) });
    await OpenFeature.setProviderAndWait(domain, provider, { targetingKey: 'bo' });
    const caught: unknown[] = [];
    const fallback = jest.fn(({ error }: { error: unknown; reset: () => void }) => h('p', null, `broken: ${(error as Error).message}`));
    const boundary = new RollgateErrorBoundary({
      domain,
      fallback,
      onError: (error) => {
        caught.push(error);
        throw new Error('a callback that throws is ignored');
      },
    });
    const error = new Error('PaymentForm exploded');
    const received = server.receivedEvent((e) => e.type === 'error' && e.message === 'Error: PaymentForm exploded');
    boundary.state = RollgateErrorBoundary.getDerivedStateFromError(error);
    expect(() => boundary.componentDidCatch(error, { componentStack: '\n    at PaymentForm' })).not.toThrow();
    expect(await received).toEqual({ type: 'error', fingerprint: expect.stringMatching(/^[0-9a-f]{16}$/), message: 'Error: PaymentForm exploded', source: 'boundary' });
    expect(caught).toEqual([error]);
    expect(renderToStaticMarkup(h('div', null, boundary.render()))).toBe('<div><p>broken: PaymentForm exploded</p></div>');
    expect(fallback).toHaveBeenCalledWith({ error, reset: boundary.reset });
    expect(JSON.stringify(server.received)).not.toContain('componentStack');
  });

  it('report={false} sends nothing; without a Rollgate provider nothing is sent and nothing throws; no fallback renders nothing', () => {
    const before = server.received.length;
    const quiet = new RollgateErrorBoundary({ report: false });
    expect(() => quiet.componentDidCatch(new Error('x'), { componentStack: '' })).not.toThrow();
    const orphan = new RollgateErrorBoundary({ domain: 'nobody-registered-this' });
    expect(() => orphan.componentDidCatch(new Error('y'), { componentStack: '' })).not.toThrow();
    orphan.state = RollgateErrorBoundary.getDerivedStateFromError(new Error('y'));
    expect(orphan.render()).toBeNull();
    expect(server.received.length).toBe(before);
  });
});
