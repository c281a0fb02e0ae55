import { useCallback, useEffect, useRef, useState } from 'react';
import { findSplit, loadAdminState, patchFlag, watchAdminEvents, type AdminState, type FlagDefinition } from './admin';
import { PlanPanel } from './PlanPanel';

const FLAG = 'fast-payment';
const STEPS = [0, 5, 20, 50, 100];

/** What the last action did; shown in the card it was made from (`where: 'plan'`: the guarded-rollout card). */
export type Notice = { kind: 'ok' | 'conflict' | 'error'; text: string; where?: 'plan' } | null;

/**
 * Kill switch, rollout % and the guarded rollout of fast-payment, over the admin API. Shown only
 * to users the server's `authorize` lets in (the GET answers 403 to everyone else).
 *
 * Everything on it comes from ONE state, loaded in one go (flag, audit, plan, demo switches) and
 * reloaded on every change from anywhere — the admin API's event stream reports the CLI's writes,
 * other admins' and the rollout controller's — so the kill switch, the highlighted percentage and
 * the plan never disagree with each other or with the checkout above. Every open page follows a
 * change through the OFREP SSE stream, not through this panel.
 */
export function AdminPanel() {
  const [state, setState] = useState<AdminState | null | undefined>(undefined); // undefined: loading; null: not an admin
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<Notice>(null);
  const loading = useRef<Promise<void> | null>(null);
  const again = useRef(false);

  // One load at a time; a change heard during a load loads again after it (never an older state last).
  const refresh = useCallback((): Promise<void> => {
    if (loading.current) {
      again.current = true;
      return loading.current;
    }
    const run = async () => {
      do {
        again.current = false;
        setState(await loadAdminState(FLAG));
      } while (again.current);
    };
    loading.current = run()
      .catch((e: unknown) => setNotice({ kind: 'error', text: (e as Error).message }))
      .finally(() => (loading.current = null));
    return loading.current;
  }, []);

  // Listens while the tab is visible (a browser allows only a few open connections per server, and
  // each page already holds its OFREP stream); back in view, it reconnects and reloads.
  useEffect(() => {
    let stop: (() => void) | undefined;
    const sync = () => {
      if (document.visibilityState !== 'visible') {
        stop?.();
        stop = undefined;
      } else if (!stop) stop = watchAdminEvents(() => void refresh()); // (re)connected: reloads too
    };
    void refresh();
    sync();
    document.addEventListener('visibilitychange', sync);
    return () => {
      stop?.();
      document.removeEventListener('visibilitychange', sync);
    };
  }, [refresh]);

  // the simulated customers' counters move without any change being announced: poll them while they run
  const trafficOn = state?.demo?.traffic.on === true;
  useEffect(() => {
    if (!trafficOn) return;
    const timer = setInterval(() => document.visibilityState === 'visible' && void refresh(), 1000);
    return () => clearInterval(timer);
  }, [trafficOn, refresh]);

  if (!state) return null;

  const { flag, audit, plan } = state;
  const split = findSplit(flag.definition.targeting);
  const enabled = flag.definition.state === 'ENABLED';
  const planDrives = plan.kind === 'plan' && (plan.plan.state === 'running' || plan.plan.state === 'paused');

  /** Runs an action, says how it went, and reloads. */
  const act = async (action: () => Promise<Notice>) => {
    setBusy(true);
    setNotice(null);
    try {
      setNotice(await action());
    } catch (e) {
      setNotice({ kind: 'error', text: (e as Error).message });
    } finally {
      await refresh();
      setBusy(false);
    }
  };

  const write = (patch: Partial<FlagDefinition>, reason: string, done: string) =>
    act(async () => {
      const result = await patchFlag(flag, patch, reason);
      if (result.ok) return { kind: 'ok', text: `${done} (version ${result.version})` };
      if (result.conflict) {
        return {
          kind: 'conflict',
          text: `Not applied: someone else changed ${FLAG} first (it is now at version ${result.currentVersion}). The panel shows the latest state — check it and choose again.`,
        };
      }
      return { kind: 'error', text: `Refused: ${result.message}` };
    });

  return (
    <>
      <section className="card admin" data-testid="admin-panel">
        <h2>
          Admin · <code>{FLAG}</code> <small className="meta">version <span data-testid="admin-version">{flag.version}</span></small>
        </h2>
        <p className="meta">
          Every flag, segment, plan and change: <a href="/rollgate/" data-testid="dashboard-link">open the Rollgate dashboard</a> · what users said about{' '}
          <a href={`/rollgate/#/flags/${FLAG}`} data-testid="dashboard-feedback-link">
            {FLAG}
          </a>
        </p>
        <div className="row">
          <span>
            Fast payment:{' '}
            {/* the feature's state in words: "Kill switch: ENABLED" read as if the switch were engaged */}
            <strong className={enabled ? 'pill on' : 'pill off'} data-testid="admin-state" title={`state: ${flag.definition.state}`}>
              {enabled ? 'ON for its audience' : 'OFF for everyone (kill switch engaged)'}
            </strong>
          </span>
          <button
            className={enabled ? 'danger' : 'classic'}
            data-testid="kill-switch"
            disabled={busy}
            onClick={() =>
              enabled
                ? write({ state: 'DISABLED' }, 'kill switch from the admin panel', 'Fast payment is OFF for everyone')
                : write({ state: 'ENABLED' }, 're-enabled from the admin panel', 'Fast payment is back ON')
            }
          >
            {enabled ? 'Turn fast payment OFF' : 'Turn fast payment back ON'}
          </button>
        </div>
        <div className="row">
          <span>Everyone else (after admins and VIP agencies):</span>
          {split ? (
            <span className="steps">
              {STEPS.map((p) => (
                <button
                  key={p}
                  data-testid={`rollout-${p}`}
                  aria-pressed={split.percent === p}
                  className={split.percent === p ? 'step current' : 'step'}
                  disabled={busy || planDrives || split.percent === p}
                  onClick={() => write({ targeting: split.set(p) as FlagDefinition['targeting'] }, `rollout ${p}% from the admin panel`, `Rollout set to ${p}%`)}
                >
                  {p}%
                </button>
              ))}
            </span>
          ) : (
            <span className="meta">no percentage split in the targeting to edit</span>
          )}
          {planDrives && split && <span className="meta">set by the rollout plan below</span>}
        </div>
        {notice && notice.where !== 'plan' && (
          <p className={`notice ${notice.kind}`} role={notice.kind === 'ok' ? 'status' : 'alert'} data-testid={`admin-${notice.kind}`}>
            {notice.text}
          </p>
        )}
        {audit.length > 0 && (
          <details>
            <summary className="meta">Recent changes (audit)</summary>
            <ul className="audit" data-testid="admin-audit">
              {audit.map((e) => (
                <li key={e.id}>
                  v{e.version} · {new Date(e.time).toLocaleTimeString()} · <strong>{e.actor}</strong> {e.kind === 'plan' ? `plan ${e.action}` : e.action}
                  {e.reason ? ` — ${e.reason}` : ''}
                </li>
              ))}
            </ul>
          </details>
        )}
        <p className="meta">
          Same write path as the CLI: <code>npx rollgate --env demo disable {FLAG}</code>, <code>npx rollgate --env demo rollout {FLAG} 50</code>.
        </p>
      </section>
      <PlanPanel flag={FLAG} state={state} busy={busy} act={act} notice={notice?.where === 'plan' ? notice : null} />
    </>
  );
}
