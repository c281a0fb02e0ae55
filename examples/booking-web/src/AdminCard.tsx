import { useCallback, useEffect, useState } from 'react';
import { loadDemoStatus, setFault, setTraffic, startPlan, type DemoStatus } from './admin';

const FLAG = 'fast-payment';
/** Where the admin router serves @rollgate/dashboard (booking-api's `admin: { dashboard: true }`). */
const DASHBOARD = '/rollgate/';
/** The share of fast payments the fault switch breaks. */
const FAULT_RATE = 0.3;

type Notice = { kind: 'ok' | 'error'; text: string } | null;

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/**
 * What an admin gets below the checkout: the way to the Rollgate dashboard, where fast-payment is
 * steered (kill switch, rollout %, its rollout plan, the audit; every flag), and the demo's own
 * switches, which no real service has and the dashboard has no business with: simulated
 * customers, the fault that breaks fast payment, and starting the demo plan (the dashboard steers
 * a plan; it does not write one).
 *
 * It shows no flag state of its own: the checkout above is this page's view of the flag, and the
 * dashboard is the admin's. The links open it in a new tab that keeps this tab's sign-in (a tab's
 * sessionStorage is copied to the tabs it opens: `rel="opener"`).
 */
export function AdminCard() {
  const [demo, setDemo] = useState<DemoStatus | null | undefined>(undefined); // undefined: loading; null: no demo switches here
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<Notice>(null);

  const refresh = useCallback(async () => {
    try {
      setDemo(await loadDemoStatus());
    } catch (e) {
      setNotice({ kind: 'error', text: (e as Error).message });
    }
  }, []);
  useEffect(() => void refresh(), [refresh]);

  // the simulated customers' counters: read again every second while they run and the tab is in view
  const trafficOn = demo?.traffic.on === true;
  useEffect(() => {
    if (!trafficOn) return;
    const timer = setInterval(() => document.visibilityState === 'visible' && void refresh(), 1000);
    return () => clearInterval(timer);
  }, [trafficOn, refresh]);

  /** Runs a switch (null: done; else why not), says how it went, and reads the switches again. */
  const act = async (action: () => Promise<string | null>, done: string) => {
    setBusy(true);
    setNotice(null);
    try {
      const refused = await action();
      setNotice(refused ? { kind: 'error', text: refused } : { kind: 'ok', text: done });
    } catch (e) {
      setNotice({ kind: 'error', text: (e as Error).message });
    } finally {
      await refresh();
      setBusy(false);
    }
  };

  const dashboard = (hash: string, text: string, testId: string) => (
    <a href={`${DASHBOARD}#/${hash}`} target="_blank" rel="opener" data-testid={testId}>
      {text}
    </a>
  );

  return (
    <section className="card admin" data-testid="admin-card">
      <h2>Admin</h2>
      <p className="dashboard">{dashboard(`flags/${FLAG}`, `Steer ${FLAG} in the Rollgate dashboard ↗`, 'dashboard-link')}</p>
      <p className="meta">
        Its kill switch and rollout % (every open page follows within a second, this checkout too), its guarded rollout (
        {dashboard(`plans/${FLAG}`, 'the plan', 'dashboard-plan-link')}), who changed what ({dashboard(`audit?key=${FLAG}`, 'the audit', 'dashboard-audit-link')}), and every other
        flag. The same write path from a terminal: <code>npx rollgate --env demo disable {FLAG}</code>, <code>npx rollgate --env demo rollout {FLAG} 50</code>.
      </p>
      {demo && (
        <>
          <h3>Demo switches</h3>
          {!demo.guardedRollouts.available ? (
            <p className="notice conflict" data-testid="plan-unavailable">
              {demo.guardedRollouts.why}
            </p>
          ) : (
            <>
              <div className="row">
                <button
                  className={demo.traffic.on ? 'classic' : 'step'}
                  data-testid="traffic-toggle"
                  disabled={busy}
                  onClick={() => act(() => setTraffic(!demo.traffic.on), demo.traffic.on ? 'Simulated customers stopped' : 'Simulated customers are paying')}
                >
                  {demo.traffic.on ? 'Stop the simulated customers' : `Simulate customers (${demo.traffic.ratePerSec || 50} payments/s)`}
                </button>
                <span className="meta" data-testid="traffic-stats">
                  <span data-testid="traffic-sent">{demo.traffic.sent}</span> payments: {demo.traffic.fast} fast, {demo.traffic.classic} classic, {demo.traffic.refused} refused (403),{' '}
                  {demo.traffic.fastFailed + demo.traffic.classicFailed} failed (5xx)
                  {demo.traffic.pages && (
                    <>
                      {' '}
                      · their pages: {demo.traffic.pages.views} views, {demo.traffic.pages.errors} errors thrown, {demo.traffic.pages.feedback} feedback answers
                    </>
                  )}
                </span>
              </div>
              <div className="row">
                <button
                  className="step"
                  data-testid="plan-start"
                  disabled={busy}
                  onClick={() => act(() => startPlan(demo.guardedRollouts.available ? demo.guardedRollouts.plan : undefined, 'demo plan from the booking page'), 'Plan started: the controller takes it from here; follow it in the dashboard')}
                >
                  Start the demo plan (5% → 20% → 50% → 100%)
                </button>
                <span className="meta">a new plan, replacing a finished one; watch it, pause it or roll it back in the dashboard</span>
              </div>
              <div className="row">
                <button
                  className={demo.fault.failRate > 0 ? 'classic' : 'danger'}
                  data-testid="fault-toggle"
                  disabled={busy}
                  onClick={() => act(() => setFault(demo.fault.failRate > 0 ? 0 : FAULT_RATE), demo.fault.failRate > 0 ? 'Fast payment repaired' : 'Fast payment broken')}
                >
                  {demo.fault.failRate > 0 ? 'Repair fast payment' : `Break fast payment (${pct(FAULT_RATE)} fail)`}
                </button>
                <span data-testid="fault-state" className={demo.fault.failRate > 0 ? 'pill off' : 'pill on'}>
                  {demo.fault.failRate > 0 ? `fast payment failing: ${pct(demo.fault.failRate)} answer 502` : 'fast payment healthy'}
                </span>
              </div>
            </>
          )}
        </>
      )}
      {notice && (
        <p className={`notice ${notice.kind}`} role={notice.kind === 'ok' ? 'status' : 'alert'} data-testid={`admin-${notice.kind}`}>
          {notice.text}
        </p>
      )}
    </section>
  );
}
