import { useEffect, useRef, useState } from 'react';
import { AuditView } from './Audit';
import { FlagDetail, FlagList } from './Flags';
import { PlanDetail, PlanList } from './Plans';
import { SegmentDetail, SegmentList } from './Segments';
import { DashboardContext, href, useDashboard, useRoute, type Dashboard, type Route } from './state';
import { ErrorNote } from './ui';
import { TOKEN_KEY } from './api';

const VIEWS: { view: Route['view']; label: string }[] = [
  { view: 'flags', label: 'Flags' },
  { view: 'segments', label: 'Segments' },
  { view: 'audit', label: 'Audit' },
  { view: 'plans', label: 'Rollout plans' },
];

function title(route: Route): string {
  if (route.key !== undefined) return route.key;
  if (route.view === 'audit') return route.filter ? `Audit of ${route.filter}` : 'Audit';
  return VIEWS.find((v) => v.view === route.view)!.label;
}

function SignIn({ dashboard }: { dashboard: Dashboard }) {
  const [token, setToken] = useState('');
  return (
    <main id="main" className="signin">
      <h1>Sign in to Rollgate</h1>
      <p>The dashboard uses the admin API with your identity. Paste a token (a JWT the admin API accepts), or sign in to your app first if it uses its own session.</p>
      {dashboard.state.signInNote && (
        <p className="note note-error" role="alert">
          {dashboard.state.signInNote}
        </p>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (token.trim()) dashboard.signIn(token);
        }}
      >
        <label className="field">
          <span>Bearer token</span>
          <textarea rows={4} value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" spellCheck={false} className="mono" data-testid="token" required />
        </label>
        <button type="submit" className="primary">
          Sign in
        </button>
      </form>
      <p className="muted small">
        Kept in this tab only (sessionStorage <code>{TOKEN_KEY}</code>); sent as <code>Authorization: Bearer</code> to the admin API.
      </p>
    </main>
  );
}

function LiveBadge({ dashboard }: { dashboard: Dashboard }) {
  const { live, loadError, snapshot } = dashboard.state;
  const down = live === 'store_unavailable' || loadError?.kind === 'store_unavailable';
  const text = down ? 'Redis unreachable' : live === 'live' ? 'Live' : live === 'reconnecting' ? 'Reconnecting…' : 'Connecting…';
  return (
    <p className={`live live-${down ? 'down' : live}`} role="status" data-testid="live">
      <span className="live-dot" aria-hidden="true" />
      {text}
      {snapshot ? <span className="muted"> · version {snapshot.version}</span> : null}
    </p>
  );
}

function Content({ dashboard, route }: { dashboard: Dashboard; route: Route }) {
  const { snapshot } = dashboard.state;
  if (!snapshot) return null;
  switch (route.view) {
    case 'flags':
      return route.key !== undefined ? <FlagDetail key={route.key} flagKey={route.key} snapshot={snapshot} /> : <FlagList snapshot={snapshot} />;
    case 'segments':
      return route.key !== undefined ? <SegmentDetail key={route.key} name={route.key} snapshot={snapshot} /> : <SegmentList snapshot={snapshot} />;
    case 'audit':
      return <AuditView key={route.filter ?? ''} snapshot={snapshot} {...(route.filter !== undefined ? { filter: route.filter } : {})} />;
    case 'plans':
      return route.key !== undefined ? <PlanDetail key={route.key} flag={route.key} snapshot={snapshot} /> : <PlanList snapshot={snapshot} />;
  }
}

export function App() {
  const route = useRoute();
  const dashboard = useDashboard(route.key ?? route.filter);
  const heading = useRef<HTMLHeadingElement>(null);
  const first = useRef(true);
  // a new view: move focus to its heading, as a page load would
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    heading.current?.focus();
  }, [route.view, route.key, route.filter]);
  const { access, snapshot, loadError } = dashboard.state;

  if (access === 'signin') return <SignIn dashboard={dashboard} />;
  return (
    <DashboardContext.Provider value={dashboard}>
      <a className="skip" href="#main" onClick={(e) => (e.preventDefault(), heading.current?.focus())}>
        Skip to content
      </a>
      <header className="top">
        <div className="brand">
          <a href={href('flags')}>Rollgate</a>
        </div>
        {access === 'ok' && (
          <nav aria-label="Sections">
            <ul>
              {VIEWS.map((v) => (
                <li key={v.view}>
                  <a href={href(v.view)} aria-current={route.view === v.view ? 'page' : undefined}>
                    {v.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
        )}
        <div className="who">
          {access === 'ok' && <LiveBadge dashboard={dashboard} />}
          {dashboard.subject && <span className="muted small">{dashboard.subject}</span>}
          <button type="button" className="link" onClick={dashboard.signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main">
        <h1 ref={heading} tabIndex={-1} className="view-title">
          {access === 'forbidden' ? (
            'Not authorized'
          ) : (
            <>
              {route.key !== undefined && <span className="muted crumb">{VIEWS.find((v) => v.view === route.view)!.label} / </span>}
              {title(route)}
            </>
          )}
        </h1>
        {access === 'forbidden' ? (
          <div className="note note-error" role="alert" data-testid="forbidden">
            <p>
              The admin API does not let {dashboard.subject ? <code>{dashboard.subject}</code> : 'this identity'} in: its <code>authorize</code> callback refused it. Nothing is shown.
            </p>
            <button type="button" onClick={dashboard.signOut}>
              Sign in as someone else
            </button>
          </div>
        ) : !snapshot ? (
          loadError ? (
            <div className="error-state">
              <ErrorNote error={loadError} title={loadError.kind === 'store_unavailable' ? 'Redis unreachable' : undefined} />
              <button type="button" onClick={() => void dashboard.reload()}>
                Retry
              </button>
            </div>
          ) : (
            <p className="muted" aria-busy="true">
              Loading…
            </p>
          )
        ) : (
          <>
            {loadError && (
              <div className="stale">
                <ErrorNote error={loadError} />
                <p className="muted small">Showing what was loaded at {new Date(snapshot.loadedAt).toLocaleTimeString()} (version {snapshot.version}). It reloads by itself once the server answers.</p>
              </div>
            )}
            <Content dashboard={dashboard} route={route} />
          </>
        )}
      </main>
    </DashboardContext.Provider>
  );
}
