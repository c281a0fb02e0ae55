import { OpenFeature } from '@openfeature/web-sdk';
import { RollgateWebProvider, startTask, type Task } from '@rollgate/web';
import { FeedbackPrompt, RollgateErrorBoundary } from '@rollgate/web/react';
import { StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';

// A checkout page for signals.e2e.spec.ts, built by Vite against the package as an app gets it
// (`@rollgate/web` and `@rollgate/web/react` through package.json "exports"): it throws, rejects,
// breaks a component inside the error boundary, asks for feedback and times the checkout.

const token = new URLSearchParams(location.search).get('token') ?? '';
const provider = new RollgateWebProvider({
  headersFactory: () => ({ Authorization: `Bearer ${token}` }),
  changeDetection: 'none',
  captureErrors: true,
  tracking: { flushIntervalMs: 200 },
});
void OpenFeature.setProviderAndWait(provider, { targetingKey: 'bo' }).then(() => {
  document.body.dataset.status = 'ready';
});

/** Thrown outside React (a timer): an uncaught error. */
function explode(): never {
  throw new Error('Payment widget exploded for order 123456789');
}

function PaymentSummary(): never {
  throw new Error('PaymentSummary failed to render order 88231234');
}

function App() {
  const [broken, setBroken] = useState(false);
  const [clicks, setClicks] = useState(0);
  const [task, setTask] = useState<Task>();
  const [elapsed, setElapsed] = useState<number>();
  return (
    <main>
      <h1>Checkout</h1>
      <button data-testid="throw" onClick={() => setTimeout(explode)}>
        Throw
      </button>
      <button data-testid="reject" onClick={() => void Promise.reject(new TypeError('card gateway timed out'))}>Reject</button>
      <button data-testid="break" onClick={() => setBroken(true)}>Break the summary</button>
      <RollgateErrorBoundary
        fallback={({ reset }) => (
          <p data-testid="fallback">
            Summary unavailable.{' '}
            <button
              onClick={() => {
                setBroken(false);
                reset();
              }}
            >
              Retry
            </button>
          </p>
        )}
      >
        {broken ? <PaymentSummary /> : <p data-testid="summary">Total: 42 EUR</p>}
      </RollgateErrorBoundary>
      <button data-testid="start" onClick={() => setTask(startTask('checkout'))}>Open payment</button>
      <button data-testid="pay" onClick={() => setElapsed(task?.complete())}>Pay</button>
      <span data-testid="elapsed">{elapsed ?? ''}</span>
      <button data-testid="alive" onClick={() => setClicks((n) => n + 1)}>Clicked {clicks}</button>
      <FeedbackPrompt flag="fast-payment" question="How was the new payment flow?" />
    </main>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
