import { useMemo, useState } from 'react';
import { setRollout, SplitEditError } from '../../../core/src/split-edit';
import { ApiError } from './api';
import { ConflictNote } from './Conflict';
import { FeedbackView } from './Feedback';
import { branches, describeSegment, diff, changeText, killSwitchImpact, rolloutImpact, rolloutVariant, segmentsUsed, splitOf, type Branch, type Outcome } from './describe';
import type { AuditEntry, Explanation, FlagDefinition } from './model';
import { href, useDashboardContext, useNow, type Snapshot } from './state';
import { Ago, ConfirmDialog, Empty, ErrorNote, JsonBlock, Parts, SplitBar, StateBadge } from './ui';
import { useWrite } from './write';

function lastChange(snapshot: Snapshot, key: string): AuditEntry | undefined {
  const own = snapshot.keyAudit?.key === key ? snapshot.keyAudit.entries : [];
  return [...own, ...snapshot.audit].filter((e) => e.key === key && e.kind === 'flag').sort((a, b) => b.version - a.version)[0];
}

function visibleTo(def: FlagDefinition): string {
  return def.metadata?.clientVisible === true ? 'servers and browsers (OFREP)' : 'servers only';
}

export function FlagList({ snapshot }: { snapshot: Snapshot }) {
  const now = useNow();
  const [query, setQuery] = useState('');
  const keys = Object.keys(snapshot.flags).sort();
  const shown = keys.filter((k) => k.toLowerCase().includes(query.trim().toLowerCase()));
  if (keys.length === 0) {
    return (
      <Empty>
        <p>No flags in this environment yet.</p>
        <p>
          Push a flag set with <code>rollgate flags push flags.json</code>, or PUT one through the admin API.
        </p>
      </Empty>
    );
  }
  return (
    <>
      <label className="field search">
        <span>Filter flags</span>
        <input type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="flag key" />
      </label>
      {shown.length === 0 && <Empty>No flag matches “{query}”.</Empty>}
      <ul className="cards" aria-label="Flags">
        {shown.map((key) => {
          const def = snapshot.flags[key]!;
          const split = splitOf(def);
          const last = lastChange(snapshot, key);
          const plan = snapshot.plans?.find((p) => p.flag === key && (p.state === 'running' || p.state === 'paused' || p.state === 'draft'));
          return (
            <li key={key} className="card flag-card" data-testid={`flag-${key}`}>
              <div className="card-head">
                <a href={href('flags', key)} className="flag-key">
                  {key}
                </a>
                <StateBadge state={def.state} />
              </div>
              <dl className="facts">
                <div>
                  <dt>Default</dt>
                  <dd>{def.defaultVariant ? <code>{def.defaultVariant}</code> : '—'}</dd>
                </div>
                <div>
                  <dt>Seen by</dt>
                  <dd>{visibleTo(def)}</dd>
                </div>
                <div>
                  <dt>Last change</dt>
                  <dd>
                    {last ? (
                      <>
                        {last.actor}, <Ago time={last.time} now={now} />
                      </>
                    ) : (
                      'not in the recent audit'
                    )}
                  </dd>
                </div>
                {plan && (
                  <div>
                    <dt>Plan</dt>
                    <dd>
                      <a href={href('plans', key)}>
                        {plan.state}, stage {plan.stage + 1}/{plan.stages.length}
                      </a>
                    </dd>
                  </div>
                )}
              </dl>
              {split && <SplitBar buckets={split.buckets} label="Split" />}
            </li>
          );
        })}
      </ul>
    </>
  );
}

function OutcomeView({ outcome }: { outcome: Outcome }) {
  if ('variant' in outcome) return <code className="variant">{outcome.variant}</code>;
  if ('split' in outcome)
    return (
      <span className="outcome-split">
        a split{outcome.by ? ` by ${outcome.by}` : ''}: <SplitBar buckets={outcome.split} />
      </span>
    );
  if ('nested' in outcome) return <BranchList list={outcome.nested} nested />;
  if ('none' in outcome) return <span>the default variant</span>;
  return <code className="raw">{JSON.stringify(outcome.code)}</code>;
}

function BranchList({ list, nested }: { list: Branch[]; nested?: boolean }) {
  return (
    <ol className={`branches${nested ? ' nested' : ''}`}>
      {list.map((b) => (
        <li key={b.path}>
          <span className="when">
            {b.when ? (
              <>
                If <Parts parts={b.when} />
              </>
            ) : (
              'Everyone else'
            )}
          </span>{' '}
          <span aria-hidden="true">→</span>
          <span className="visually-hidden"> gets</span> <OutcomeView outcome={b.outcome} />
        </li>
      ))}
    </ol>
  );
}

function Targeting({ def, snapshot }: { def: FlagDefinition; snapshot: Snapshot }) {
  const list = branches(def.targeting);
  const used = segmentsUsed(def.targeting);
  return (
    <section aria-labelledby="targeting-h">
      <h2 id="targeting-h">Targeting</h2>
      {def.state === 'DISABLED' && <p className="note note-warn">DISABLED: nobody gets these rules; every evaluation serves the code default.</p>}
      {list.length === 0 ? (
        <p>
          No targeting: everyone gets <code>{def.defaultVariant ?? 'the code default'}</code>.
        </p>
      ) : (
        <>
          <p className="muted">The first rule that matches decides{def.defaultVariant ? <>; none matching: <code>{def.defaultVariant}</code></> : null}.</p>
          <BranchList list={list} />
        </>
      )}
      {used.length > 0 && (
        <p>
          Segments:{' '}
          {used.map((name, i) => (
            <span key={name}>
              {i > 0 ? '; ' : ''}
              <a href={href('segments', name)}>{name}</a> ({name in snapshot.evaluators ? describeSegment(snapshot.evaluators[name]) : 'missing!'})
            </span>
          ))}
        </p>
      )}
      <details>
        <summary>Definition (JSON)</summary>
        <JsonBlock value={def} label={`Definition of the flag`} />
      </details>
    </section>
  );
}

function KillSwitch({ flagKey, def, snapshot }: { flagKey: string; def: FlagDefinition; snapshot: Snapshot }) {
  const { client } = useDashboardContext();
  const now = useNow();
  const [pinned, setPinned] = useState<number | null>(null);
  const write = useWrite();
  const disabling = def.state !== 'DISABLED';
  return (
    <div className="control">
      <h3>Kill switch</h3>
      <p>{disabling ? 'On: its rules apply.' : 'Off: everyone gets the code default.'}</p>
      <button type="button" className={disabling ? 'danger' : 'primary'} onClick={() => (write.start(), setPinned(snapshot.version))} data-testid="kill-switch">
        {disabling ? 'Disable…' : 'Enable…'}
      </button>
      {write.conflict && <ConflictNote conflict={write.conflict} snapshot={snapshot} now={now} onDismiss={write.clearConflict} />}
      {pinned !== null && (
        <ConfirmDialog
          title={`${disabling ? 'Disable' : 'Enable'} “${flagKey}”?`}
          confirmLabel={disabling ? 'Disable everywhere' : 'Enable'}
          danger={disabling}
          busy={write.busy}
          error={write.error}
          onClose={() => setPinned(null)}
          onConfirm={async (reason) => {
            const out = await write.run({ pinned, key: flagKey, kind: 'flag' }, (writeId) =>
              client.request('PATCH', `flags/${encodeURIComponent(flagKey)}`, { body: { state: disabling ? 'DISABLED' : 'ENABLED' }, ifMatch: pinned, reason, writeId }),
            );
            if (out !== 'failed') setPinned(null);
          }}
        >
          <p data-testid="impact">{killSwitchImpact(flagKey, def, disabling).join(' ')}</p>
          <p className="muted">Written against version {pinned}: if anything changes first, nothing is written and you will see what changed.</p>
        </ConfirmDialog>
      )}
    </div>
  );
}

function Rollout({ flagKey, def, snapshot }: { flagKey: string; def: FlagDefinition; snapshot: Snapshot }) {
  const { client } = useDashboardContext();
  const now = useNow();
  const write = useWrite();
  const names = Object.keys(def.variants ?? {});
  const [chosen, setChosen] = useState<string | null>(null);
  // the variant that gets the share: `on` or the true one (as `rollgate rollout`), else the split's first, else a non-default one
  const variant = chosen ?? rolloutVariant(def) ?? splitOf(def, names[0])?.buckets[0]?.[0] ?? names.find((n) => n !== def.defaultVariant) ?? names[0];
  const current = splitOf(def, variant)?.percent ?? 0;
  const [target, setTarget] = useState<number | null>(null);
  const [pending, setPending] = useState<{ percent: number; pinned: number; definition: unknown; from: number } | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const value = target ?? current;
  const plan = snapshot.plans?.find((p) => p.flag === flagKey && (p.state === 'running' || p.state === 'paused'));
  const refusal = useMemo(() => {
    try {
      setRollout(flagKey, def, current, variant ? { variant } : {});
      return null;
    } catch (e) {
      return e instanceof SplitEditError ? e.message : String(e);
    }
  }, [flagKey, def, current, variant]);
  if (refusal) {
    return (
      <div className="control">
        <h3>Rollout %</h3>
        <p className="muted">Not editable here: {refusal}</p>
      </div>
    );
  }
  const open = () => {
    write.start();
    try {
      const edit = setRollout(flagKey, def, value, variant ? { variant } : {});
      setProblem(null);
      setPending({ percent: value, pinned: snapshot.version, definition: edit.definition, from: current });
    } catch (e) {
      setProblem(e instanceof SplitEditError ? e.message : String(e));
    }
  };
  return (
    <div className="control">
      <h3>Rollout %</h3>
      <p>
        <code>{variant ?? '?'}</code> gets <strong>{current}%</strong> of the split now.
      </p>
      <form
        className="rollout-form"
        onSubmit={(e) => {
          e.preventDefault();
          open();
        }}
      >
        {names.length > 2 || rolloutVariant(def) === undefined ? (
          <label className="field inline">
            <span>Variant</span>
            <select value={variant} onChange={(e) => (setChosen(e.target.value), setTarget(null))}>
              {names.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </label>
        ) : null}
        <label className="field inline">
          <span>New share for “{variant}”</span>
          <input type="number" min={0} max={100} step={1} value={value} onChange={(e) => setTarget(Math.max(0, Math.min(100, Math.round(Number(e.target.value) || 0))))} data-testid="rollout-input" />
          <span aria-hidden="true">%</span>
        </label>
        <div className="presets" role="group" aria-label="Common shares">
          {[0, 5, 20, 50, 100].map((p) => (
            <button key={p} type="button" className={p === value ? 'chip chip-on' : 'chip'} aria-pressed={p === value} onClick={() => setTarget(p)}>
              {p}%
            </button>
          ))}
        </div>
        <button type="submit" className="primary" disabled={value === current}>
          Set to {value}%…
        </button>
      </form>
      {problem && <p className="note note-error">{problem}</p>}
      {write.conflict && <ConflictNote conflict={write.conflict} snapshot={snapshot} now={now} onDismiss={write.clearConflict} />}
      {pending && (
        <ConfirmDialog
          title={`Set “${flagKey}” to ${pending.percent}%?`}
          confirmLabel={`Set to ${pending.percent}%`}
          busy={write.busy}
          error={write.error}
          onClose={() => setPending(null)}
          onConfirm={async (reason) => {
            const out = await write.run({ pinned: pending.pinned, key: flagKey, kind: 'flag' }, (writeId) =>
              client.request('PUT', `flags/${encodeURIComponent(flagKey)}`, { body: pending.definition, ifMatch: pending.pinned, reason, writeId }),
            );
            if (out !== 'failed') {
              setPending(null);
              setTarget(null);
            }
          }}
        >
          {rolloutImpact(def, pending.from, pending.percent, variant ?? 'on').map((line) => (
            <p key={line}>{line}</p>
          ))}
          {plan && (
            <p className="note note-warn">
              A rollout plan drives this split ({plan.state}, stage {plan.stage + 1}: {plan.stages[plan.stage]?.percent}%). A change by hand pauses it.
            </p>
          )}
          <p className="muted">Written against version {pending.pinned}.</p>
        </ConfirmDialog>
      )}
    </div>
  );
}

function Variants({ def }: { def: FlagDefinition }) {
  return (
    <section aria-labelledby="variants-h">
      <h2 id="variants-h">Variants</h2>
      <table className="variants">
        <thead>
          <tr>
            <th scope="col">Variant</th>
            <th scope="col">Value</th>
          </tr>
        </thead>
        <tbody>
          {Object.entries(def.variants ?? {}).map(([name, value]) => (
            <tr key={name}>
              <th scope="row">
                <code>{name}</code>
                {name === def.defaultVariant ? <span className="tag">default</span> : null}
              </th>
              <td>
                <code className="wrap">{JSON.stringify(value)}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function Explain({ flagKey }: { flagKey: string }) {
  const { client } = useDashboardContext();
  const [user, setUser] = useState('');
  const [roles, setRoles] = useState('');
  const [tenant, setTenant] = useState('');
  const [json, setJson] = useState('');
  const [result, setResult] = useState<{ explanation: Explanation; version: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setError(null);
    let context: Record<string, unknown>;
    if (json.trim() !== '') {
      try {
        context = JSON.parse(json) as Record<string, unknown>;
        if (context === null || typeof context !== 'object' || Array.isArray(context)) throw new Error('not an object');
      } catch (e) {
        setError(new ApiError('invalid', `The pasted context is not a JSON object (${(e as Error).message}).`, 0));
        return;
      }
    } else {
      context = {};
      if (user.trim()) context.targetingKey = user.trim();
      const list = roles.split(',').map((r) => r.trim()).filter(Boolean);
      if (list.length > 0) context.roles = list;
      if (tenant.trim()) context.tenant = tenant.trim();
    }
    setBusy(true);
    try {
      setResult(await client.request<{ explanation: Explanation; version: number }>('POST', `flags/${encodeURIComponent(flagKey)}/explain`, { body: { context } }));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="explain-h">
      <h2 id="explain-h">Explain a decision</h2>
      <form
        className="explain-form"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <div className="row">
          <label className="field">
            <span>User (targetingKey)</span>
            <input value={user} onChange={(e) => setUser(e.target.value)} placeholder="e.g. carol" data-testid="explain-user" />
          </label>
          <label className="field">
            <span>Roles (comma-separated)</span>
            <input value={roles} onChange={(e) => setRoles(e.target.value)} placeholder="e.g. agent" />
          </label>
          <label className="field">
            <span>Tenant</span>
            <input value={tenant} onChange={(e) => setTenant(e.target.value)} placeholder="e.g. atlas-travel" />
          </label>
        </div>
        <details>
          <summary>…or paste a whole context (JSON)</summary>
          <label className="field">
            <span>Evaluation context (used instead of the fields above)</span>
            <textarea rows={4} value={json} onChange={(e) => setJson(e.target.value)} placeholder='{"targetingKey": "u-42", "roles": ["agent"], "tenant": "acme"}' />
          </label>
        </details>
        <button type="submit" className="primary" disabled={busy}>
          Explain
        </button>
      </form>
      <ErrorNote error={error} />
      {result && (
        <div className="explanation" aria-live="polite" data-testid="explanation">
          <p>
            <strong>
              {result.explanation.result.variant !== undefined ? (
                <>
                  Gets <code>{result.explanation.result.variant}</code> (<code>{JSON.stringify(result.explanation.result.value)}</code>)
                </>
              ) : (
                <>Gets the code default</>
              )}
            </strong>{' '}
            — reason {result.explanation.result.reason}
            {result.explanation.result.errorCode ? `, ${result.explanation.result.errorCode}` : ''}. {result.explanation.summary}
          </p>
          {result.explanation.steps.length > 0 && (
            <ol className="steps">
              {result.explanation.steps.map((s, i) => (
                <li key={i} className={i === result.explanation.steps.length - 1 ? 'decided' : ''}>
                  <code>{s.path}</code>: {s.note}
                  {i === result.explanation.steps.length - 1 ? <strong> (decided)</strong> : null}
                </li>
              ))}
            </ol>
          )}
          <p className="muted">As of version {result.version}.</p>
        </div>
      )}
    </section>
  );
}

function History({ flagKey, snapshot }: { flagKey: string; snapshot: Snapshot }) {
  const now = useNow();
  const entries = snapshot.keyAudit?.key === flagKey ? snapshot.keyAudit.entries.slice(0, 10) : [];
  return (
    <section aria-labelledby="history-h">
      <h2 id="history-h">Recent changes</h2>
      {entries.length === 0 ? (
        <p className="muted">No change in the audit.</p>
      ) : (
        <ul className="history">
          {entries.map((e) => (
            <li key={e.id}>
              <strong>{e.actor}</strong> {e.action} {e.kind !== 'flag' ? `(${e.kind})` : ''} · <Ago time={e.time} now={now} /> · v{e.version}
              {e.reason ? <> — “{e.reason}”</> : null}
              <div className="muted small">
                {diff(e.before, e.after)
                  .slice(0, 4)
                  .map(changeText)
                  .join('; ')}
              </div>
            </li>
          ))}
        </ul>
      )}
      <p>
        <a href={`${href('audit')}?key=${encodeURIComponent(flagKey)}`}>Full history and revert</a>
      </p>
    </section>
  );
}

export function FlagDetail({ flagKey, snapshot }: { flagKey: string; snapshot: Snapshot }) {
  const def = snapshot.flags[flagKey];
  const plan = snapshot.plans?.find((p) => p.flag === flagKey);
  if (!def) {
    return (
      <Empty>
        <p>
          There is no flag “{flagKey}” (as of version {snapshot.version}). <a href={href('flags')}>All flags</a>
        </p>
      </Empty>
    );
  }
  const meta = Object.entries(def.metadata ?? {}).filter(([k]) => k !== 'clientVisible');
  return (
    <article className="flag-detail" data-testid="flag-detail">
      <div className="title-row">
        <StateBadge state={def.state} />
        <span className="muted">as of version {snapshot.version}</span>
      </div>
      <dl className="facts">
        <div>
          <dt>Seen by</dt>
          <dd>{visibleTo(def)}</dd>
        </div>
        {meta.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{typeof v === 'string' ? v : JSON.stringify(v)}</dd>
          </div>
        ))}
        {plan && (
          <div>
            <dt>Rollout plan</dt>
            <dd>
              <a href={href('plans', flagKey)}>
                {plan.state.replace('_', ' ')}, stage {plan.stage + 1}/{plan.stages.length}
              </a>
            </dd>
          </div>
        )}
      </dl>
      <section className="controls" aria-label="Controls">
        <KillSwitch flagKey={flagKey} def={def} snapshot={snapshot} />
        <Rollout flagKey={flagKey} def={def} snapshot={snapshot} />
      </section>
      <Targeting def={def} snapshot={snapshot} />
      <Variants def={def} />
      {/* feedback lives in Redis, as plans do (snapshot.plans is null over another store) */}
      {snapshot.plans !== null && <FeedbackView flag={flagKey} {...(plan && plan.state !== 'draft' ? { arms: { treatment: plan.treatment, control: plan.control } } : {})} />}
      <Explain flagKey={flagKey} />
      <History flagKey={flagKey} snapshot={snapshot} />
    </article>
  );
}
