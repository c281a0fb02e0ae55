import { useCallback, useEffect, useState } from 'react';
import { findSplit, loadAudit, loadFlag, patchFlag, type AuditEntry, type FlagDefinition, type FlagState } from './admin';

const FLAG = 'fast-payment';
const STEPS = [0, 5, 20, 50, 100];

type Notice = { kind: 'ok' | 'conflict' | 'error'; text: string } | null;

/**
 * Kill switch and rollout % for fast-payment, over the admin API. Shown only to users the
 * server's `authorize` lets in (the GET answers 403 to everyone else). Every open page — this
 * one included — follows a change through the OFREP SSE stream, not through this panel.
 */
export function AdminPanel() {
  const [flag, setFlag] = useState<FlagState | null | undefined>(undefined); // undefined: loading; null: not an admin
  const [audit, setAudit] = useState<AuditEntry[]>([]);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<Notice>(null);

  const refresh = useCallback(async () => {
    try {
      const next = await loadFlag(FLAG);
      setFlag(next);
      if (next) setAudit(await loadAudit(FLAG));
    } catch (e) {
      setNotice({ kind: 'error', text: (e as Error).message });
    }
  }, []);

  useEffect(() => {
    void refresh();
    // someone else (another admin, the CLI) may have changed it while this tab was in the background
    const onVisible = () => document.visibilityState === 'visible' && void refresh();
    window.addEventListener('focus', onVisible);
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      window.removeEventListener('focus', onVisible);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [refresh]);

  if (!flag) return null;

  const split = findSplit(flag.definition.targeting);
  const enabled = flag.definition.state === 'ENABLED';

  const write = async (patch: Partial<FlagDefinition>, reason: string, done: string) => {
    setBusy(true);
    setNotice(null);
    try {
      const result = await patchFlag(flag, patch, reason);
      if (result.ok) setNotice({ kind: 'ok', text: `${done} (version ${result.version})` });
      else if (result.conflict) {
        setNotice({
          kind: 'conflict',
          text: `Not applied: someone else changed ${FLAG} first (it is now at version ${result.currentVersion}). The panel shows the latest state — check it and choose again.`,
        });
      } else setNotice({ kind: 'error', text: `Refused: ${result.message}` });
    } catch (e) {
      setNotice({ kind: 'error', text: (e as Error).message });
    } finally {
      await refresh();
      setBusy(false);
    }
  };

  return (
    <section className="card admin" data-testid="admin-panel">
      <h2>
        Admin · <code>{FLAG}</code> <small className="meta">version <span data-testid="admin-version">{flag.version}</span></small>
      </h2>
      <div className="row">
        <span>
          Kill switch:{' '}
          <strong className={enabled ? 'pill on' : 'pill off'} data-testid="admin-state">
            {flag.definition.state}
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
                disabled={busy || split.percent === p}
                onClick={() => write({ targeting: split.set(p) as FlagDefinition['targeting'] }, `rollout ${p}% from the admin panel`, `Rollout set to ${p}%`)}
              >
                {p}%
              </button>
            ))}
          </span>
        ) : (
          <span className="meta">no percentage split in the targeting to edit</span>
        )}
      </div>
      {notice && (
        <p className={`notice ${notice.kind}`} role={notice.kind === 'ok' ? 'status' : 'alert'} data-testid={`admin-${notice.kind}`}>
          {notice.text}
        </p>
      )}
      {audit.length > 0 && (
        <details>
          <summary className="meta">Recent changes (audit)</summary>
          <ul className="audit" data-testid="admin-audit">
            {audit.map((e) => (
              <li key={`${e.version}-${e.action}`}>
                v{e.version} · {new Date(e.time).toLocaleTimeString()} · <strong>{e.actor}</strong> {e.action}
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
  );
}
