import { useEffect, useId, useRef, useState, type ReactNode } from 'react';
import type { SplitBuckets } from '../../../core/src/split-edit';
import { ApiError } from './api';
import { ago, type Part } from './describe';
import { href } from './state';

// Small pieces shared by the views.

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge badge-${state.toLowerCase().replace(/_/g, '-')}`}>{state.replace(/_/g, ' ')}</span>;
}

const PALETTE = ['#1a5fb4', '#8a8f98', '#c64600', '#26a269', '#813d9c', '#a51d2d', '#986a44', '#1c71d8'];

/** The split as a bar: one labelled segment per variant, widths in percent. */
export function SplitBar({ buckets, label }: { buckets: SplitBuckets; label?: string }) {
  const total = buckets.reduce((a, [, w]) => a + w, 0) || 1;
  const text = buckets.map(([v, w]) => `${v} ${Math.round((100 * w) / total)}%`).join(', ');
  return (
    <div className="split">
      <div className="split-bar" role="img" aria-label={`${label ? `${label}: ` : ''}${text}`}>
        {buckets.map(([v, w], i) =>
          w > 0 ? (
            <span key={v} className={`split-part ${i === 0 ? 'split-first' : ''}`} style={{ width: `${(100 * w) / total}%`, background: PALETTE[i % PALETTE.length] }} />
          ) : null,
        )}
      </div>
      <ul className="split-legend" aria-hidden="true">
        {buckets.map(([v, w], i) => (
          <li key={v}>
            <span className="swatch" style={{ background: PALETTE[i % PALETTE.length] }} />
            {v} <strong>{Math.round((100 * w) / total)}%</strong>
          </li>
        ))}
      </ul>
    </div>
  );
}

/** A sentence from describe.ts: values in code style, segments as links. */
export function Parts({ parts }: { parts: Part[] }) {
  return (
    <>
      {parts.map((p, i) =>
        'text' in p ? (
          <span key={i}>{p.text}</span>
        ) : 'value' in p ? (
          <code key={i}>{JSON.stringify(p.value)}</code>
        ) : 'segment' in p ? (
          <a key={i} href={href('segments', p.segment)} className="segment-link">
            {p.segment}
          </a>
        ) : (
          <code key={i} className="raw">
            {JSON.stringify(p.code)}
          </code>
        ),
      )}
    </>
  );
}

export function Ago({ time, now }: { time: number; now: number }) {
  return (
    <time dateTime={new Date(time).toISOString()} title={new Date(time).toLocaleString()}>
      {ago(time, now)}
    </time>
  );
}

export function JsonBlock({ value, label }: { value: unknown; label?: string }) {
  return (
    <pre className="json" tabIndex={0} aria-label={label ?? 'JSON'}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

/** What went wrong with a request, in words, with the admin API's own message. */
export function ErrorNote({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : new ApiError('other', (error as Error).message ?? String(error), 0);
  const heading =
    title ??
    ({
      unauthorized: 'Not signed in',
      forbidden: 'Not authorized',
      store_unavailable: 'Redis unreachable',
      conflict: 'Changed meanwhile',
      plan_state: 'Not possible now',
      invalid: 'Refused',
      not_found: 'Not found',
      write_unknown: 'Write not confirmed',
      network: 'Server unreachable',
      other: 'Error',
    } as const)[e.kind];
  return (
    <div className="note note-error" role="alert">
      <strong>{heading}.</strong> {e.message}
      {e.kind === 'store_unavailable' ? ' Retry once it answers.' : ''}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

/**
 * A confirmation as a modal <dialog> (focus kept inside, Escape cancels): says what will happen
 * and to whom, takes an optional reason for the audit, and runs the write.
 */
export function ConfirmDialog({
  title,
  children,
  confirmLabel,
  danger,
  onConfirm,
  onClose,
  busy,
  error,
}: {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  onConfirm(reason: string): void;
  onClose(): void;
  busy?: boolean;
  error?: unknown;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState('');
  const id = useId();
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog ref={ref} className="dialog" aria-labelledby={`${id}-title`} onCancel={(e) => (e.preventDefault(), busy ? undefined : onClose())}>
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          if (!busy) onConfirm(reason);
        }}
      >
        <h2 id={`${id}-title`}>{title}</h2>
        <div className="dialog-body">{children}</div>
        <label className="field">
          <span>Reason (recorded in the audit)</span>
          <input type="text" value={reason} onChange={(e) => setReason(e.target.value)} maxLength={500} autoFocus placeholder="e.g. incident 42" />
        </label>
        <ErrorNote error={error} />
        <div className="actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className={danger ? 'danger' : 'primary'} disabled={busy} aria-busy={busy}>
            {busy ? 'Working…' : confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}
