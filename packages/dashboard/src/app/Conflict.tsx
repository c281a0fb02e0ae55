import { ago, changeText, diff } from './describe';
import type { AuditEntry } from './model';
import type { Snapshot } from './state';
import type { Conflict } from './write';

/** A refused write (409) explained from the fresh state: who changed what, and when. */
export function ConflictNote({ conflict, snapshot, now, onDismiss }: { conflict: Conflict; snapshot: Snapshot; now: number; onDismiss(): void }) {
  const seen = new Set<string>();
  const newer: AuditEntry[] = [...(snapshot.keyAudit?.entries ?? []), ...snapshot.audit]
    .filter((e) => e.version > conflict.pinned && !seen.has(e.id) && (seen.add(e.id), true))
    .sort((a, b) => b.version - a.version);
  const mine = newer.filter((e) => e.key === conflict.key && (conflict.kind === 'plan' ? e.kind === 'plan' || e.kind === 'flag' : e.kind === conflict.kind));
  const plan = conflict.kind === 'plan' ? snapshot.plans?.find((p) => p.flag === conflict.key) : undefined;
  const what = (e: AuditEntry) => {
    const changes = diff(e.before, e.after).slice(0, 3).map(changeText);
    return `${e.action}${changes.length > 0 ? ` (${changes.join('; ')})` : ''}${e.reason ? ` — “${e.reason}”` : ''}`;
  };
  let headline: string;
  if (plan?.last && conflict.kind === 'plan') headline = `${plan.last.actor} changed this plan ${ago(plan.last.at, now)}: ${plan.last.action}${plan.last.reason ? ` — ${plan.last.reason}` : ''}.`;
  else if (mine[0]) headline = `${mine[0].actor} changed this ${ago(mine[0].time, now)}: ${what(mine[0])}.`;
  else if (newer[0]) headline = `The store moved on (version ${conflict.pinned} → ${snapshot.version}): ${newer[0].actor} changed ${newer[0].kind} “${newer[0].key}” ${ago(newer[0].time, now)}. This ${conflict.kind} itself did not change.`;
  else headline = `The store moved on (version ${conflict.pinned} → ${snapshot.version}).`;
  const others = newer.filter((e) => e !== mine[0]).slice(0, 4);
  return (
    <div className="note note-warn" role="alert" data-testid="conflict">
      <p>
        <strong>Not written: changed meanwhile.</strong> {headline}
      </p>
      {others.length > 0 && (
        <ul>
          {others.map((e) => (
            <li key={e.id}>
              {e.actor} · {e.kind} “{e.key}” · {what(e)} · {ago(e.time, now)}
            </li>
          ))}
        </ul>
      )}
      <p>The page now shows the fresh state (version {snapshot.version}). Check it, then do it again if it still makes sense.</p>
      <button type="button" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}
