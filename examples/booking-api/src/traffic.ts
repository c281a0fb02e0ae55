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

export const CUSTOMERS = 100_000;
/** Share of payments made with the sandbox card that always fails (both flows alike). */
export const GATEWAY_ERROR_SHARE = 0.005;
const MAX_IN_FLIGHT = 200;
const TICK_MS = 100;

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
  inFlight: number;
}

export class DemoTraffic {
  /** Where the API listens (set once it does). */
  target: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private due = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly stats: Omit<TrafficStats, 'on' | 'inFlight'> = { ratePerSec: 0, startedAt: null, sent: 0, fast: 0, classic: 0, refused: 0, fastFailed: 0, classicFailed: 0 };

  get status(): TrafficStats {
    return { ...this.stats, on: this.timer !== undefined, inFlight: this.inFlight.size };
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
    try {
      if (fast) {
        const status = await this.post('/payments/fast', token, card);
        if (status === 200) return void this.stats.fast++;
        if (status >= 500) return void this.stats.fastFailed++;
        if (status !== 403) return;
        this.stats.refused++;
      }
      const status = await this.post('/payments', token, card);
      if (status === 200) this.stats.classic++;
      else if (status >= 500) this.stats.classicFailed++;
    } catch {
      // the API is going away (shutdown): nothing to count
    }
  }

  private async post(path: string, token: string, card: string): Promise<number> {
    const res = await fetch(`${this.target}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ card }),
      signal: AbortSignal.timeout(5000),
    });
    await res.arrayBuffer();
    return res.status;
  }
}
