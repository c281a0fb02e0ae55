import { useState } from 'react';
import { ConflictNote } from './Conflict';
import { diff, type Change } from './describe';
import type { AuditEntry } from './model';
import { href, useDashboardContext, useNow, type Snapshot } from './state';
import { Ago, ConfirmDialog, Empty } from './ui';
import { useWrite } from './write';

function short(v: unknown): string {
  if (v === undefined) return '(none)';
  const s = JSON.stringify(v);
  return s.length > 200 ? `${s.slice(0, 197)}…` : s;
}

function Diff({ changes }: { changes: Change[] }) {
  if (changes.length === 0) return <p className="muted small">No difference in the definition.</p>;
  return (
    <ul className="diff">
      {changes.slice(0, 20).map((c) => (
        <li key={c.path}>
          <code className="path">{c.path}</code>{' '}
          {c.added || c.removed ? (
            <>
              {c.added && c.added.length > 0 && <ins>+ {c.added.join(', ')}</ins>} {c.removed && c.removed.length > 0 && <del>− {c.removed.join(', ')}</del>}
            </>
          ) : (
            <>
              <del>{short(c.before)}</del> <span aria-label="becomes">→</span> <ins>{short(c.after)}</ins>
            </>
          )}
        </li>
      ))}
      {changes.length > 20 && <li className="muted">…and {changes.length - 20} more</li>}
    </ul>
  );
}

function link(e: AuditEntry): string {
  return e.kind === 'evaluator' ? href('segments', e.key) : e.kind === 'plan' ? href('plans', e.key) : href('flags', e.key);
}

export function AuditView({ snapshot, filter }: { snapshot: Snapshot; filter?: string }) {
  const { client, auditLimit, setAuditLimit } = useDashboardContext();
  const now = useNow();
  const write = useWrite();
  const [query, setQuery] = useState(filter ?? '');
  const [pending, setPending] = useState<{ entry: AuditEntry; pinned: number; current: unknown } | null>(null);
  const source = filter && snapshot.keyAudit?.key === filter ? snapshot.keyAudit.entries : snapshot.audit;
  const q = query.trim().toLowerCase();
  const entries = source.filter((e) => q === '' || e.key.toLowerCase().includes(q) || e.actor.toLowerCase().includes(q) || e.reason.toLowerCase().includes(q));
  return (
    <>
      <label className="field search">
        <span>Filter by key, actor or reason</span>
        <input type="search" value={query} onChange={(e) => setQuery(e.target.value)} />
      </label>
      {write.conflict && <ConflictNote conflict={write.conflict} snapshot={snapshot} now={now} onDismiss={write.clearConflict} />}
      {entries.length === 0 ? (
        <Empty>{source.length === 0 ? 'No change recorded yet.' : 'No change matches the filter.'}</Empty>
      ) : (
        <ol className="audit" aria-label="Changes, newest first">
          {entries.map((e) => {
            const revertible = e.kind === 'flag' || e.kind === 'evaluator';
            const map = e.kind === 'evaluator' ? snapshot.evaluators : snapshot.flags;
            return (
              <li key={e.id} className="card" data-testid={`audit-${e.version}`}>
                <div className="card-head">
                  <span>
                    <strong>{e.actor}</strong> {e.action} {e.kind} <a href={link(e)}>{e.key}</a>
                  </span>
                  <span className="muted small">
                    v{e.version} · <Ago time={e.time} now={now} />
                  </span>
                </div>
                {e.reason && <p className="reason">“{e.reason}”</p>}
                <Diff changes={diff(e.before, e.after)} />
                {revertible && (
                  <button
                    type="button"
                    onClick={() => {
                      write.start();
                      setPending({ entry: e, pinned: snapshot.version, current: Object.prototype.hasOwnProperty.call(map, e.key) ? map[e.key] : null });
                    }}
                  >
                    Revert to before this…
                  </button>
                )}
              </li>
            );
          })}
        </ol>
      )}
      {!filter && snapshot.audit.length >= auditLimit && auditLimit < 1000 && (
        <p>
          <button type="button" onClick={() => setAuditLimit(Math.min(1000, auditLimit + 200))}>
            Show older changes
          </button>
        </p>
      )}
      {pending && (
        <ConfirmDialog
          title={`Revert ${pending.entry.kind} “${pending.entry.key}” to version ${pending.entry.version - 1}?`}
          confirmLabel="Revert"
          danger
          busy={write.busy}
          error={write.error}
          onClose={() => setPending(null)}
          onConfirm={async (reason) => {
            const { entry, pinned } = pending;
            const out = await write.run({ pinned, key: entry.key, kind: entry.kind }, (writeId) =>
              client.request('POST', 'revert', { body: { key: entry.key, kind: entry.kind, toVersion: entry.version - 1 }, ifMatch: pinned, reason, writeId }),
            );
            if (out !== 'failed') setPending(null);
          }}
        >
          <p>
            {pending.entry.before === null
              ? `It did not exist before version ${pending.entry.version}: reverting removes it, for everyone.`
              : `It becomes what it was before ${pending.entry.actor}'s change, for everyone, at once. From what it is now:`}
          </p>
          {pending.entry.before !== null && <Diff changes={diff(pending.current, pending.entry.before)} />}
          <p className="muted">Written against version {pending.pinned}; recorded as a new change (action “revert”).</p>
        </ConfirmDialog>
      )}
    </>
  );
}
