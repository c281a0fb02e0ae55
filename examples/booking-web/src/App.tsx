import { Suspense, useEffect, useRef, useState } from 'react';
import { OpenFeatureProvider, useFlag, useOpenFeatureClientStatus } from '@openfeature/react-sdk';
import { startTask, type Task } from '@rollgate/web';
import { FeedbackPrompt } from '@rollgate/web/react';
import { AdminCard } from './AdminCard';
import { DEMO_USERS, currentSession, post, sessionRoles, signIn, signOut, type DemoUserName } from './session';
import { loadFlagsFor } from './flags';

export function App() {
  const [user, setUser] = useState<DemoUserName | null>(() => currentSession()?.user ?? null);
  const [error, setError] = useState<string | null>(null);

  const choose = async (name: DemoUserName) => {
    setError(null);
    try {
      await signIn(name);
      await loadFlagsFor(name).catch(() => undefined); // a failed load shows as the provider status
      setUser(name);
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <>
      <header>
        <strong>Booking</strong>
        {user && (
          <span>
            <span data-testid="signed-in-as">{user}</span>{' '}
            <button
              onClick={() => {
                signOut();
                setUser(null);
              }}
            >
              Sign out
            </button>
          </span>
        )}
      </header>
      <main>
        {user ? (
          <>
            {/* Suspends until the provider is READY, and while a new user's flags load (no flash of
                the previous user's buttons). */}
            <OpenFeatureProvider suspendUntilReady suspendWhileReconciling>
              <Suspense fallback={<p className="card">Loading your options…</p>}>
                <Checkout key={user} />
              </Suspense>
            </OpenFeatureProvider>
            {/* admins: the way to the Rollgate dashboard, and the demo's own switches */}
            {sessionRoles(currentSession()).includes('admin') && <AdminCard key={user} />}
          </>
        ) : (
          <SignIn onChoose={choose} />
        )}
        {error && <p role="alert">{error}</p>}
      </main>
    </>
  );
}

function SignIn({ onChoose }: { onChoose: (name: DemoUserName) => void }) {
  return (
    <>
      <section className="card about" data-testid="about">
        <h2>Rolling out a risky feature, safely</h2>
        <p>
          <strong>Fast payment</strong> is a new way to pay, rolled out progressively with Rollgate: first to admins and
          a VIP travel agency, then to 20% of the other customers. The page shows or hides the button from the same
          rules the server enforces — and the <strong>server checks every call</strong>: a hidden button is a
          convenience, not the security boundary.
        </p>
        <ul>
          <li>Sign in as <strong>Carol</strong> (no fast payment) and call the API anyway: the server refuses, and says why.</li>
          <li>
            Open <strong>Bo</strong> or <strong>Dale</strong> in one tab and <strong>Ada</strong> in another: from her page, the
            Rollgate dashboard&rsquo;s kill switch and rollout % change their page within a second, without a reload.
          </li>
          <li>As Ada, run the guarded rollout: simulated customers, the demo plan, then break fast payment and watch the dashboard show it roll back by itself.</li>
        </ul>
      </section>
      <SignInUsers onChoose={onChoose} />
    </>
  );
}

function SignInUsers({ onChoose }: { onChoose: (name: DemoUserName) => void }) {
  return (
    <section className="card">
      <h2>Sign in as a demo user</h2>
      <div className="users">
        {DEMO_USERS.map((u) => (
          <button key={u.name} data-testid={`login-${u.name}`} onClick={() => onChoose(u.name)}>
            <strong>{u.label}</strong>
            <small>{u.description}</small>
          </button>
        ))}
      </div>
    </section>
  );
}

/**
 * What the fast-payment page throws when the demo's fault switch breaks the new flow. The
 * simulated customers' pages report the same message (booking-api's traffic.ts).
 */
export const PAGE_ERROR_MESSAGE = 'fast payment: the new flow could not handle the failed payment (demo fault)';

type Flow = 'fast' | 'classic' | 'direct';

/** A refused payment in words, with the server's reason from the body: the point of the demo is that the server says no. */
function refusal(code: number, error: string | undefined): string {
  const why = `${code}${error ? ` ${error}` : ''}`;
  if (error === 'feature_not_enabled') return `Refused by the server (${why}): fast payment is not enabled for you. Hiding the button was only a convenience; the API checks every call.`;
  if (code === 401) return `Refused by the server (${why}): not signed in, or the session expired. Sign in again.`;
  return `Refused by the server (${why}).`;
}

function Checkout() {
  // Re-renders when the server says fast-payment changed for this user (SSE → ConfigurationChanged).
  const fastPayment = useFlag('fast-payment', false);
  const status = useOpenFeatureClientStatus();
  const [result, setResult] = useState<string>('');
  // A result from before the flag changed describes a page that is gone (the button may have
  // vanished under it): cleared when the value flips.
  useEffect(() => setResult(''), [fastPayment.value]);
  // Paying is a timed task: from the checkout on screen to a payment that went through, tracked
  // as `checkout.completed` with the ms it took (then timed again for the next one). The server
  // counts it in the arm it serves this user: the plan's value guard compares the arms' times.
  const task = useRef<Task | null>(null);
  useEffect(() => {
    task.current = startTask('checkout');
    return () => task.current?.abandon();
  }, []);

  const pay = async (path: string, flow: Flow) => {
    const { status: code, body } = await post(path);
    const reason = (body as { reason?: unknown } | null)?.reason;
    const error = (body as { error?: unknown } | null)?.error;
    if (code === 200) {
      setResult(`Paid (${(body as { flow: string }).flow})`);
      task.current?.complete();
      task.current = startTask('checkout');
    } else if (code >= 500) {
      const detail = typeof reason === 'string' ? reason : typeof error === 'string' ? error : '';
      setResult(`Failed on the server (${code}${detail ? ` ${detail}` : ''})`);
      // DEMO: the fault switch stands for a bad release of the new flow — on the server (502) and
      // in this page, whose handling of that failure throws. Nothing catches it: an uncaught error
      // (this click's promise rejects unhandled), which captureErrors reports and the server
      // counts in this user's arm — what the plan's clientErrors guard compares.
      if (flow === 'fast' && reason === 'demo_fault') throw new Error(PAGE_ERROR_MESSAGE);
    } else setResult(refusal(code, typeof error === 'string' ? error : undefined));
  };

  return (
    <section className="card">
      <h2>Lisbon, 3 nights — €420</h2>
      <p>Hotel Miradouro · 12–15 March · 2 guests</p>
      <div className="actions">
        <button className="classic" onClick={() => pay('/payments', 'classic')}>
          Pay
        </button>
        {fastPayment.value && (
          <button className="fast" data-testid="fast-payment" onClick={() => pay('/payments/fast', 'fast')}>
            ⚡ Fast payment
          </button>
        )}
      </div>
      <p role="status" data-testid="payment-result">
        {result}
      </p>
      {/* @rollgate/web/react's prompt, asked in both arms (a share of negative answers is compared
          between them): the server attributes each answer to the variant it serves this user. The
          comment is untrusted text: the dashboard and the CLI show it as text. */}
      <div className="feedback" data-testid="feedback-prompt">
        <FeedbackPrompt flag="fast-payment" question="How was paying today?" />
      </div>
      <p className="meta">
        The button is a convenience, not the security boundary:{' '}
        <button className="link" data-testid="try-fast-api" onClick={() => pay('/payments/fast', 'direct')}>
          call <code>POST /payments/fast</code> anyway
        </button>
      </p>
      <p className="meta">
        <code>fast-payment</code> = <span data-testid="flag-value">{String(fastPayment.value)}</span> ({String(fastPayment.reason ?? "")}) · provider{' '}
        <span data-testid="provider-status">{status}</span>
      </p>
    </section>
  );
}
