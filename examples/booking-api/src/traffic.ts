import { createHash } from 'node:crypto';
import { OpenFeature } from '@openfeature/server-sdk';
import { CARDS } from './gateway';
import { signDemoToken } from './demo-users';

// The demo has four people; a guarded rollout needs many. This generator simulates customers
// paying: each payment is a random customer out of 100,000 (their own `sub`, role customer, a
// tenant that is not a VIP agency), signed with the demo's key, sent over HTTP to this very API —
// so it goes through the same identity, guard and outcome recording as a browser's. A customer
// pays through the fast path when fast-payment is on for them (evaluated as the page would) and
// through the classic path otherwise; a fast payment refused with 403 (the split moved between the
// evaluation and the payment) falls back to the classic path, as a customer would.
//
// And what their browsers would send (booking-web's page: captureErrors, page views, a timed
// checkout, the feedback prompt on the fast path), to POST /rollgate/v1/events with the same
// token, once the payment is answered, as the page's batcher would send it:
//   - a page view, for every simulated page;
//   - `checkout.completed` with the time the checkout took, when the payment went through: the
//     customer's own time on the page (simulated, log-normal: the fast flow skips the card form,
//     so its median is 25% lower) plus the API's answer (measured);
//   - an error report ONLY when the fast payment failed because of the demo's fault switch: the
//     page of the new flow throws then (see booking-web's App.tsx); the classic page and the
//     sandbox card's failures throw nothing;
//   - now and then, feedback about fast-payment from those who paid the fast way (the prompt is on
//     that page only): mostly positive while it works, mostly negative after a failure.

export const CUSTOMERS = 100_000;
/** Share of payments made with the sandbox card that always fails (both flows alike). */
export const GATEWAY_ERROR_SHARE = 0.005;
const MAX_IN_FLIGHT = 200;
const TICK_MS = 100;

/** Median time a customer spends on the checkout page before the payment goes through, ms, per flow. */
export const CHECKOUT_MEDIAN_MS = { classic: 48_000, fast: 36_000 } as const;
const CHECKOUT_SIGMA = 0.45;
/** What the fast-payment page throws when the demo fault breaks it (booking-web's App.tsx), and its fingerprint. */
export const PAGE_ERROR_MESSAGE = 'fast payment: the new flow could not handle the failed payment (demo fault)';
const PAGE_ERROR_FINGERPRINT = createHash('sha256').update(PAGE_ERROR_MESSAGE).digest('hex').slice(0, 16);
/** Share of fast payers who answer the feedback prompt: after a success, after a failure. */
const FEEDBACK_SHARE = { ok: 0.03, failed: 0.3 } as const;

/** A standard normal draw (Box–Muller). */
function normal(): number {
  const u = 1 - Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

function pick<T extends string>(weights: Record<T, number>): T {
  let r = Math.random();
  const entries = Object.entries(weights) as [T, number][];
  for (const [k, w] of entries) if ((r -= w) < 0) return k;
  return entries[entries.length - 1]![0];
}

/** What one simulated page sends to the events endpoint (the wire format of @rollgate/web). */
type PageEvent =
  | { type: 'pageview' }
  | { name: 'checkout.completed'; value: number }
  | { type: 'error'; fingerprint: string; message: string; source: 'unhandledrejection' }
  | { type: 'feedback'; flag: 'fast-payment'; sentiment: 'positive' | 'neutral' | 'negative' };

export interface TrafficStats {
  on: boolean;
  /** Payments per second while on. */
  ratePerSec: number;
  startedAt: number | null;
  /** Payments sent since the demo started (a fallback after a 403 is part of the same payment). */
  sent: number;
  /** Answered 200 by the fast path. */
  fast: number;
  /** Answered 200 by the classic path. */
  classic: number;
  /** Fast payments refused with 403 (then paid the classic way). */
  refused: number;
  /** Fast payments answered with a 5xx. */
  fastFailed: number;
  /** Classic payments answered with a 5xx. */
  classicFailed: number;
  /** What their pages sent to the events endpoint: page views, errors thrown by the page, feedback answers, and batches the endpoint refused. */
  pages: { views: number; errors: number; feedback: number; refused: number };
  inFlight: number;
}

export class DemoTraffic {
  /** Where the API listens (set once it does). */
  target: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private due = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly stats: Omit<TrafficStats, 'on' | 'inFlight'> = {
    ratePerSec: 0,
    startedAt: null,
    sent: 0,
    fast: 0,
    classic: 0,
    refused: 0,
    fastFailed: 0,
    classicFailed: 0,
    pages: { views: 0, errors: 0, feedback: 0, refused: 0 },
  };

  get status(): TrafficStats {
    return { ...this.stats, pages: { ...this.stats.pages }, on: this.timer !== undefined, inFlight: this.inFlight.size };
  }

  /** Starts (or changes the rate of) the simulated customers' payments. */
  start(ratePerSec: number): void {
    if (!(Number.isFinite(ratePerSec) && ratePerSec > 0 && ratePerSec <= 500)) throw new RangeError('ratePerSec must be a number above 0 and at most 500');
    if (!this.target) throw new Error('the API is not listening yet');
    this.stats.ratePerSec = ratePerSec;
    if (this.timer) return;
    this.stats.startedAt = Date.now();
    this.due = 0;
    this.timer = setInterval(() => this.fire(), TICK_MS);
    this.timer.unref();
  }

  /** Stops sending; waits (up to 3 s) for the payments in flight. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.stats.startedAt = null;
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((resolve) => setTimeout(resolve, 3000).unref())]);
  }

  private fire(): void {
    this.due += (this.stats.ratePerSec * TICK_MS) / 1000;
    while (this.due >= 1 && this.inFlight.size < MAX_IN_FLIGHT) {
      this.due--;
      const payment = this.pay().finally(() => this.inFlight.delete(payment));
      this.inFlight.add(payment);
    }
    if (this.due > 1) this.due = 1; // saturated: drop what cannot be sent rather than bursting later
  }

  private async pay(): Promise<void> {
    const n = Math.floor(Math.random() * CUSTOMERS);
    const claims = { sub: `customer-${String(n).padStart(5, '0')}`, roles: ['customer'], tenant: `travel-club-${n % 25}` };
    const token = signDemoToken(claims);
    const card = Math.random() < GATEWAY_ERROR_SHARE ? CARDS.gatewayError : CARDS.ok;
    // what the customer's page shows: the same flag, the same identity
    const fast = await OpenFeature.getClient().getBooleanValue('fast-payment', false, { targetingKey: claims.sub, roles: claims.roles, tenant: claims.tenant });
    this.stats.sent++;
    const page: PageEvent[] = [{ type: 'pageview' }];
    try {
      let flow: 'fast' | 'classic' | undefined = fast ? 'fast' : 'classic';
      let answer = await this.post(fast ? '/payments/fast' : '/payments', token, card);
      if (fast && answer.status === 403) {
        this.stats.refused++;
        flow = 'classic';
        answer = await this.post('/payments', token, card);
      }
      if (answer.status === 200) {
        this.stats[flow]++;
        // capped at 10 min, as the statistics want (docs/user-signals.md)
        const onPage = Math.min(600_000, CHECKOUT_MEDIAN_MS[flow] * Math.exp(CHECKOUT_SIGMA * normal()));
        page.push({ name: 'checkout.completed', value: Math.round(onPage + answer.ms) });
      } else if (answer.status >= 500) {
        this.stats[flow === 'fast' ? 'fastFailed' : 'classicFailed']++;
        // the new flow's page throws on the fault's failures only (see booking-web's App.tsx)
        if (flow === 'fast' && answer.reason === 'demo_fault') page.push({ type: 'error', fingerprint: PAGE_ERROR_FINGERPRINT, message: PAGE_ERROR_MESSAGE, source: 'unhandledrejection' });
      } else flow = undefined;
      if (flow === 'fast') {
        const failed = answer.status !== 200;
        if (Math.random() < FEEDBACK_SHARE[failed ? 'failed' : 'ok']) {
          page.push({ type: 'feedback', flag: 'fast-payment', sentiment: failed ? pick({ negative: 0.8, neutral: 0.15, positive: 0.05 }) : pick({ positive: 0.7, neutral: 0.2, negative: 0.1 }) });
        }
      }
      await this.sendPage(token, page);
    } catch {
      // the API is going away (shutdown): nothing to count
    }
  }

  /** The page's events, in one batch (as @rollgate/web's batcher sends those of one second). */
  private async sendPage(token: string, events: PageEvent[]): Promise<void> {
    const res = await fetch(`${this.target}/rollgate/v1/events`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ events }),
      signal: AbortSignal.timeout(5000),
    });
    await res.arrayBuffer();
    if (res.status !== 202) return void this.stats.pages.refused++;
    for (const e of events) {
      if ('name' in e) continue;
      if (e.type === 'pageview') this.stats.pages.views++;
      else if (e.type === 'error') this.stats.pages.errors++;
      else this.stats.pages.feedback++;
    }
  }

  /** One payment: its status, how long the API took, and the reason of a failure. */
  private async post(path: string, token: string, card: string): Promise<{ status: number; ms: number; reason?: string }> {
    const started = performance.now();
    const res = await fetch(`${this.target}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ card }),
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    const ms = performance.now() - started;
    if (res.status < 500) return { status: res.status, ms };
    let reason: string | undefined;
    try {
      const body = JSON.parse(text) as { reason?: unknown };
      if (typeof body.reason === 'string') reason = body.reason;
    } catch {
      // not JSON: no reason
    }
    return { status: res.status, ms, ...(reason !== undefined ? { reason } : {}) };
  }
}
