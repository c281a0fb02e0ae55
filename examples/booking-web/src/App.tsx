import { Suspense, useState } from 'react';
import { OpenFeatureProvider, useFlag, useOpenFeatureClientStatus } from '@openfeature/react-sdk';
import { AdminPanel } from './AdminPanel';
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
                <Checkout />
              </Suspense>
            </OpenFeatureProvider>
            {sessionRoles(currentSession()).includes('admin') && <AdminPanel key={user} />}
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

function Checkout() {
  // Re-renders when the server says fast-payment changed for this user (SSE → ConfigurationChanged).
  const fastPayment = useFlag('fast-payment', false);
  const status = useOpenFeatureClientStatus();
  const [result, setResult] = useState<string>('');

  const pay = async (path: string) => {
    const { status: code, body } = await post(path);
    if (code === 200) setResult(`Paid (${(body as { flow: string }).flow})`);
    else if (code >= 500) setResult(`Failed: HTTP ${code}${(body as { reason?: string })?.reason ? ` (${(body as { reason: string }).reason})` : ''}`);
    else setResult(`Refused: HTTP ${code}`);
  };

  return (
    <section className="card">
      <h2>Lisbon, 3 nights — €420</h2>
      <p>Hotel Miradouro · 12–15 March · 2 guests</p>
      <div className="actions">
        <button className="classic" onClick={() => pay('/payments')}>
          Pay
        </button>
        {fastPayment.value && (
          <button className="fast" data-testid="fast-payment" onClick={() => pay('/payments/fast')}>
            ⚡ Fast payment
          </button>
        )}
      </div>
      <p role="status" data-testid="payment-result">
        {result}
      </p>
      <p className="meta">
        The button is a convenience, not the security boundary:{' '}
        <button className="link" data-testid="try-fast-api" onClick={() => pay('/payments/fast')}>
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
