import { useState } from 'react';
import { ApiError } from './api';
import { ConflictNote } from './Conflict';
import { changeText, describeSegment, diff, readSegment, segmentRule, segmentsUsed } from './describe';
import { href, useDashboardContext, useNow, type Snapshot } from './state';
import { Ago, ConfirmDialog, Empty, ErrorNote, JsonBlock } from './ui';
import { useWrite } from './write';

const PAGE = 50;

function usedBy(snapshot: Snapshot, name: string): string[] {
  return Object.keys(snapshot.flags)
    .filter((k) => segmentsUsed(snapshot.flags[k]!.targeting).includes(name))
    .sort();
}

export function SegmentList({ snapshot }: { snapshot: Snapshot }) {
  const names = Object.keys(snapshot.evaluators).sort();
  if (names.length === 0) {
    return (
      <Empty>
        <p>No segments (shared evaluators) yet.</p>
        <p>
          Create one with <code>rollgate segment add vip-agencies --attribute tenant atlas-travel</code>; flags use it as <code>{'{"$ref": "vip-agencies"}'}</code>.
        </p>
      </Empty>
    );
  }
  return (
    <ul className="cards" aria-label="Segments">
      {names.map((name) => {
        const flags = usedBy(snapshot, name);
        return (
          <li key={name} className="card">
            <div className="card-head">
              <a href={href('segments', name)} className="flag-key">
                {name}
              </a>
            </div>
            <p>{describeSegment(snapshot.evaluators[name])}</p>
            <p className="muted small">
              {flags.length === 0 ? 'No flag uses it.' : <>Used by {flags.map((f, i) => <span key={f}>{i > 0 ? ', ' : ''}<a href={href('flags', f)}>{f}</a></span>)}</>}
            </p>
          </li>
        );
      })}
    </ul>
  );
}

function parseValues(text: string): string[] {
  return [...new Set(text.split(/[\n,]+/).map((v) => v.trim()).filter(Boolean))];
}

function ListEditor({ name, rule, snapshot }: { name: string; rule: unknown; snapshot: Snapshot }) {
  const { client } = useDashboardContext();
  const now = useNow();
  const write = useWrite();
  const segment = readSegment(rule)!;
  const [query, setQuery] = useState('');
  const [page, setPage] = useState(0);
  const [removed, setRemoved] = useState<Set<string>>(new Set());
  const [addText, setAddText] = useState('');
  const [pending, setPending] = useState<{ pinned: number; values: string[]; added: string[]; removed: string[] } | null>(null);
  const matching = segment.values.filter((v) => v.toLowerCase().includes(query.trim().toLowerCase()));
  const pages = Math.max(1, Math.ceil(matching.length / PAGE));
  const current = Math.min(page, pages - 1);
  const shown = matching.slice(current * PAGE, current * PAGE + PAGE);
  const present = new Set(segment.values);
  const toAdd = parseValues(addText).filter((v) => !present.has(v));
  const toRemove = [...removed].filter((v) => present.has(v));
  const flags = usedBy(snapshot, name);
  const toggle = (v: string) => {
    const next = new Set(removed);
    if (next.has(v)) next.delete(v);
    else next.add(v);
    setRemoved(next);
  };
  return (
    <section aria-labelledby="values-h">
      <h2 id="values-h">
        Values of <code>{segment.attribute}</code> ({segment.values.length})
      </h2>
      <label className="field search">
        <span>Search values</span>
        <input
          type="search"
          value={query}
          onChange={(e) => {
            setQuery(e.target.value);
            setPage(0);
          }}
          data-testid="segment-search"
        />
      </label>
      {matching.length === 0 ? (
        <p className="muted">{segment.values.length === 0 ? 'The list is empty: the segment matches nobody.' : `No value matches “${query}”.`}</p>
      ) : (
        <ul className="values" aria-label={`Values, page ${current + 1} of ${pages}`}>
          {shown.map((v) => (
            <li key={v}>
              <label>
                <input type="checkbox" checked={removed.has(v)} onChange={() => toggle(v)} /> <span className={removed.has(v) ? 'struck' : ''}>{v}</span>
                <span className="visually-hidden"> (select to remove)</span>
              </label>
            </li>
          ))}
        </ul>
      )}
      <nav className="pager" aria-label="Pages of values">
        <button type="button" onClick={() => setPage(current - 1)} disabled={current === 0}>
          Previous
        </button>
        <span aria-live="polite" data-testid="segment-page">
          {matching.length === 0 ? 'none' : `${current * PAGE + 1}–${current * PAGE + shown.length} of ${matching.length}`}
        </span>
        <button type="button" onClick={() => setPage(current + 1)} disabled={current >= pages - 1}>
          Next
        </button>
      </nav>
      <label className="field">
        <span>Add values (one per line or comma-separated)</span>
        <textarea rows={3} value={addText} onChange={(e) => setAddText(e.target.value)} data-testid="segment-add" />
      </label>
      <p>
        {toAdd.length} to add, {toRemove.length} to remove.{' '}
        <button
          type="button"
          className="primary"
          disabled={toAdd.length === 0 && toRemove.length === 0}
          onClick={() => {
            write.start();
            const drop = new Set(toRemove);
            setPending({ pinned: snapshot.version, values: [...segment.values.filter((v) => !drop.has(v)), ...toAdd], added: toAdd, removed: toRemove });
          }}
        >
          Save…
        </button>
      </p>
      {write.conflict && <ConflictNote conflict={write.conflict} snapshot={snapshot} now={now} onDismiss={write.clearConflict} />}
      <ErrorNote error={pending ? null : write.error} />
      {pending && (
        <ConfirmDialog
          title={`Change segment “${name}”?`}
          confirmLabel="Save"
          busy={write.busy}
          error={write.error}
          onClose={() => setPending(null)}
          onConfirm={async (reason) => {
            const out = await write.run({ pinned: pending.pinned, key: name, kind: 'evaluator' }, (writeId) =>
              client.request('PUT', `evaluators/${encodeURIComponent(name)}`, { body: segmentRule({ attribute: segment.attribute, values: pending.values }), ifMatch: pending.pinned, reason, writeId }),
            );
            if (out !== 'failed') setPending(null);
            if (out === 'done') {
              setRemoved(new Set());
              setAddText('');
            }
          }}
        >
          <p>
            {pending.added.length > 0 ? `Adds ${pending.added.length} (${pending.added.slice(0, 5).join(', ')}${pending.added.length > 5 ? ', …' : ''}). ` : ''}
            {pending.removed.length > 0 ? `Removes ${pending.removed.length} (${pending.removed.slice(0, 5).join(', ')}${pending.removed.length > 5 ? ', …' : ''}). ` : ''}
          </p>
          <p>
            {flags.length === 0
              ? 'No flag uses this segment: nobody is affected now.'
              : `Everyone whose ${segment.attribute} is added or removed changes in: ${flags.join(', ')} — at once, in every app.`}
          </p>
          <p className="muted">Written against version {pending.pinned}.</p>
        </ConfirmDialog>
      )}
    </section>
  );
}

function RuleEditor({ name, rule, snapshot }: { name: string; rule: unknown; snapshot: Snapshot }) {
  const { client } = useDashboardContext();
  const now = useNow();
  const write = useWrite();
  const [text, setText] = useState<string | null>(null);
  const [pending, setPending] = useState<{ pinned: number; rule: unknown } | null>(null);
  const [parseError, setParseError] = useState<unknown>(null);
  const value = text ?? JSON.stringify(rule, null, 2);
  return (
    <section aria-labelledby="rule-h">
      <h2 id="rule-h">Rule</h2>
      <p className="muted">Not a list of values: edit the JsonLogic rule itself.</p>
      <label className="field">
        <span>Rule (JSON)</span>
        <textarea rows={8} value={value} onChange={(e) => setText(e.target.value)} className="mono" />
      </label>
      <button
        type="button"
        className="primary"
        disabled={text === null}
        onClick={() => {
          try {
            setParseError(null);
            write.start();
            setPending({ pinned: snapshot.version, rule: JSON.parse(value) });
          } catch (e) {
            setParseError(new ApiError('invalid', `Not valid JSON: ${(e as Error).message}`, 0));
          }
        }}
      >
        Save…
      </button>
      <ErrorNote error={parseError} />
      {write.conflict && <ConflictNote conflict={write.conflict} snapshot={snapshot} now={now} onDismiss={write.clearConflict} />}
      {pending && (
        <ConfirmDialog
          title={`Replace the rule of “${name}”?`}
          confirmLabel="Save"
          busy={write.busy}
          error={write.error}
          onClose={() => setPending(null)}
          onConfirm={async (reason) => {
            const out = await write.run({ pinned: pending.pinned, key: name, kind: 'evaluator' }, (writeId) =>
              client.request('PUT', `evaluators/${encodeURIComponent(name)}`, { body: pending.rule, ifMatch: pending.pinned, reason, writeId }),
            );
            if (out !== 'failed') setPending(null);
            if (out === 'done') setText(null);
          }}
        >
          <p>Flags using it: {usedBy(snapshot, name).join(', ') || 'none'}.</p>
          <ul>
            {diff(rule, pending.rule)
              .slice(0, 8)
              .map((c) => (
                <li key={c.path}>{changeText(c)}</li>
              ))}
          </ul>
        </ConfirmDialog>
      )}
    </section>
  );
}

export function SegmentDetail({ name, snapshot }: { name: string; snapshot: Snapshot }) {
  const now = useNow();
  if (!(name in snapshot.evaluators)) {
    return (
      <Empty>
        <p>
          There is no segment “{name}” (as of version {snapshot.version}). <a href={href('segments')}>All segments</a>
        </p>
      </Empty>
    );
  }
  const rule = snapshot.evaluators[name];
  const flags = usedBy(snapshot, name);
  const entries = snapshot.keyAudit?.key === name ? snapshot.keyAudit.entries.filter((e) => e.kind === 'evaluator').slice(0, 10) : [];
  return (
    <article>
      <p className="muted">
        {describeSegment(rule)} · as of version {snapshot.version} · used by{' '}
        {flags.length === 0 ? 'no flag' : flags.map((f, i) => <span key={f}>{i > 0 ? ', ' : ''}<a href={href('flags', f)}>{f}</a></span>)}
      </p>
      {readSegment(rule) ? <ListEditor key={name} name={name} rule={rule} snapshot={snapshot} /> : <RuleEditor key={name} name={name} rule={rule} snapshot={snapshot} />}
      <section aria-labelledby="seg-history-h">
        <h2 id="seg-history-h">Recent changes</h2>
        {entries.length === 0 ? (
          <p className="muted">No change in the audit.</p>
        ) : (
          <ul className="history">
            {entries.map((e) => (
              <li key={e.id}>
                <strong>{e.actor}</strong> {e.action} · <Ago time={e.time} now={now} /> · v{e.version}
                {e.reason ? <> — “{e.reason}”</> : null}
                <div className="muted small">{diff(e.before, e.after).map(changeText).join('; ')}</div>
              </li>
            ))}
          </ul>
        )}
        <details>
          <summary>Rule (JSON)</summary>
          <JsonBlock value={rule} />
        </details>
      </section>
    </article>
  );
}
