import { setTimeout as sleep } from 'node:timers/promises';

// The demo's payment provider, simulated: each flow has its own latency (log-normal, as request
// latencies are), a sandbox card that always fails with a gateway error, and — for the guarded
// rollout demo — a fault switch that makes a share of FAST payments fail.

export type PaymentFlow = 'fast' | 'classic';

/** Sandbox cards, as in every payment provider's test mode. */
export const CARDS = {
  /** Pays. What the UI and curl send (or no body at all). */
  ok: 'tok_visa',
  /** The provider answers with an error (a 5xx for the caller) on either flow. */
  gatewayError: 'tok_gateway_error',
} as const;

export class PaymentFailedError extends Error {
  constructor(
    readonly flow: PaymentFlow,
    readonly why: 'gateway_error' | 'demo_fault',
  ) {
    super(why === 'demo_fault' ? 'the fast payment provider failed (the demo fault switch is on)' : 'the payment provider answered with an error');
  }
}

/** Median and spread (log-normal sigma) of each flow's latency, ms. Fast is the new, quicker provider. */
const LATENCY: Record<PaymentFlow, { medianMs: number; sigma: number }> = {
  classic: { medianMs: 90, sigma: 0.3 },
  fast: { medianMs: 40, sigma: 0.3 },
};

/** A standard normal draw (Box–Muller). */
function normal(): number {
  const u = 1 - Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

export class DemoGateway {
  /** Share of FAST payments that fail (0..1): the demo's fault switch. */
  private failRate = 0;
  /** When the fault was last changed (ms since the epoch), for the status. */
  changedAt: number | null = null;

  get fault(): { failRate: number; changedAt: number | null } {
    return { failRate: this.failRate, changedAt: this.changedAt };
  }

  setFault(failRate: number): void {
    if (!(Number.isFinite(failRate) && failRate >= 0 && failRate <= 1)) throw new RangeError('failRate must be a number from 0 to 1');
    this.failRate = failRate;
    this.changedAt = Date.now();
  }

  /** Charges through one flow: waits as long as the provider does, then pays or throws PaymentFailedError. */
  async charge(flow: PaymentFlow, card: string = CARDS.ok): Promise<void> {
    const { medianMs, sigma } = LATENCY[flow];
    await sleep(Math.min(2000, medianMs * Math.exp(sigma * normal())));
    if (card === CARDS.gatewayError) throw new PaymentFailedError(flow, 'gateway_error');
    if (flow === 'fast' && this.failRate > 0 && Math.random() < this.failRate) throw new PaymentFailedError(flow, 'demo_fault');
  }
}
