import { useEffect, useState } from 'react';
import { ApiError } from './api';
import { commentParts, negativeShareWords, percent } from './describe';
import type { FeedbackEntry, FeedbackSummary, VariantFeedback } from './model';
import { useDashboardContext, useNow } from './state';
import { Ago, ErrorNote } from './ui';

// What users said about a flag, per variant (`GET /feedback/:flag`): sentiment counts, the share
// of negative answers with its anytime-valid interval, and the latest comments. A comment is
// untrusted text: it is rendered as React text nodes only (markup stays characters), and its
// unprintable characters (terminal escapes, bidi overrides) are shown escaped, as the CLI does.

/** Reports read for the latest comments (the counts cover the stream: up to 10,000 per flag). */
const LATEST = 100;
/** Comments shown per variant, newest first. */
const SHOWN = 6;
/** Feedback is not announced on the admin event stream: read again this often while shown. */
const REFRESH_MS = 5000;

const SENTIMENTS = ['positive', 'neutral', 'negative'] as const;

/** An untrusted comment as text: printable runs as they are, unprintable characters as escapes. */
export function CommentText({ text }: { text: string }) {
  return (
    <>
      {commentParts(text).map((p, i) =>
        'text' in p ? (
          <span key={i}>{p.text}</span>
        ) : (
          <span key={i} className="esc" title="an unprintable character (a terminal escape, a control or format character), shown escaped">
            {p.escape}
          </span>
        ),
      )}
    </>
  );
}

type Load = { kind: 'loading' } | { kind: 'ok'; summary: FeedbackSummary } | { kind: 'unavailable'; message: string };

function useFeedback(flag: string): { load: Load; error: unknown } {
  const { client } = useDashboardContext();
  const [load, setLoad] = useState<Load>({ kind: 'loading' });
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let stopped = false;
    const read = () => {
      if (document.visibilityState === 'hidden') return;
      client.request<FeedbackSummary>('GET', `feedback/${encodeURIComponent(flag)}?limit=${LATEST}`).then(
        (summary) => {
          if (stopped) return;
          setLoad({ kind: 'ok', summary });
          setError(null);
        },
        (e: unknown) => {
          if (stopped) return;
          // 501: feedback lives in Redis, and this admin API runs over another store
          if (e instanceof ApiError && e.status === 501) setLoad({ kind: 'unavailable', message: 'Feedback lives in Redis: this admin API runs over another store, so there is none here.' });
          else setError(e);
        },
      );
    };
    read();
    const timer = setInterval(read, REFRESH_MS);
    document.addEventListener('visibilitychange', read);
    return () => {
      stopped = true;
      clearInterval(timer);
      document.removeEventListener('visibilitychange', read);
    };
  }, [client, flag]);
  return { load, error };
}

function none(variant: string): VariantFeedback {
  return { variant, positive: 0, neutral: 0, negative: 0, total: 0, negativeShare: { status: 'not-enough-data', n: 0, bad: 0 } };
}

function SentimentBar({ v }: { v: VariantFeedback }) {
  const text = SENTIMENTS.map((s) => `${v[s]} ${s}`).join(', ');
  return (
    <div className="sentiments" role="img" aria-label={`${v.total} answers: ${text}`}>
      {SENTIMENTS.map((s) => (v[s] > 0 ? <span key={s} className={`sentiment-${s}`} style={{ width: `${(100 * v[s]) / v.total}%` }} /> : null))}
    </div>
  );
}

/** The negative share as a mark on a 0–100% track, with its interval as a band. */
function ShareBar({ v }: { v: VariantFeedback }) {
  const s = v.negativeShare;
  if (s.status !== 'ok') return null;
  return (
    <div className="share-bar" aria-hidden="true">
      <span className="share-range" style={{ left: `${100 * s.lower}%`, width: `${Math.max(0.5, 100 * (s.upper - s.lower))}%` }} />
      <span className="share-mark" style={{ left: `${100 * s.share}%` }} />
    </div>
  );
}

function Comments({ flag, entries, variant, total }: { flag: string; entries: FeedbackEntry[]; variant: string; total: number }) {
  const now = useNow();
  const comments = entries.filter((e) => e.variant === variant && e.comment !== '');
  if (total === 0) return null;
  if (comments.length === 0) return <p className="muted small">No comment in the latest {LATEST} reports (most people only choose an answer).</p>;
  return (
    <>
      <h4 className="comments-h">Latest comments</h4>
      <ul className="comments">
        {comments.slice(0, SHOWN).map((e) => (
          <li key={e.id} data-testid="feedback-comment">
            <blockquote className={`comment comment-${e.sentiment}`}>
              <p className="comment-text">
                <CommentText text={e.comment} />
              </p>
            </blockquote>
            <p className="muted small">
              {e.sentiment}
              {e.unit !== undefined ? (
                <>
                  {' '}
                  · from <CommentText text={e.unit} />
                </>
              ) : null}
              {e.split ? '' : ' · served by a targeting rule, not the split'} · <Ago time={e.time} now={now} />
            </p>
          </li>
        ))}
      </ul>
      {comments.length > SHOWN && (
        <p className="muted small">
          {comments.length - SHOWN} more in the latest {LATEST} reports: <code>{`rollgate feedback ${flag} --variant ${variant}`}</code>
        </p>
      )}
    </>
  );
}

/**
 * Feedback about `flag` per variant; with `arms` (a plan's), its treatment and control first and
 * always shown, with "not enough data yet" when they have no answers.
 */
export function FeedbackView({ flag, arms, headingLevel = 2 }: { flag: string; arms?: { treatment: string; control: string }; headingLevel?: 2 | 3 }) {
  const { load, error } = useFeedback(flag);
  const H = headingLevel === 2 ? 'h2' : 'h3';
  const id = `feedback-h-${headingLevel}`;
  let body;
  if (load.kind === 'loading') body = error ? null : <p className="muted">Loading what users said…</p>;
  else if (load.kind === 'unavailable') body = <p className="muted">{load.message}</p>;
  else {
    const { summary } = load;
    const byName = new Map(summary.variants.map((v) => [v.variant, v]));
    const order = [...(arms ? [arms.treatment, arms.control] : []), ...summary.variants.map((v) => v.variant).filter((v) => v !== arms?.treatment && v !== arms?.control)];
    body =
      order.length === 0 ? (
        <p className="empty" data-testid="feedback-none">
          No feedback about “{flag}” yet. Pages send it with <code>sendFeedback</code> or the <code>FeedbackPrompt</code> of <code>@rollgate/web/react</code>, through the events endpoint
          (<code>tracking</code> with an outcome sink).
        </p>
      ) : (
        <ul className="cards feedback-variants">
          {order.map((name) => {
            const v = byName.get(name) ?? none(name);
            const role = name === arms?.treatment ? 'treatment' : name === arms?.control ? 'control' : null;
            return (
              <li key={name} className="card" data-testid={`feedback-variant-${name}`}>
                <div className="card-head">
                  <span>
                    <code className="variant">{name}</code>
                    {role && <span className="tag">{role}</span>}
                  </span>
                  <span className="muted small">
                    {v.total.toLocaleString('en')} answer{v.total === 1 ? '' : 's'}
                  </span>
                </div>
                {v.total === 0 ? (
                  <p className="muted" data-testid={`feedback-share-${name}`}>
                    Not enough data yet: no answers from users served “{name}”.
                  </p>
                ) : (
                  <>
                    <SentimentBar v={v} />
                    <p className="small sentiment-legend">
                      {SENTIMENTS.map((s, i) => (
                        <span key={s}>
                          {i > 0 ? ' · ' : ''}
                          <span className={`swatch sentiment-${s}`} aria-hidden="true" />
                          {v[s]} {s} ({percent(v[s] / v.total)})
                        </span>
                      ))}
                    </p>
                    <p data-testid={`feedback-share-${name}`}>
                      <strong>{negativeShareWords(v.negativeShare)}</strong>
                    </p>
                    <ShareBar v={v} />
                    {v.total < 30 && <p className="muted small">Few answers so far: the interval is wide, and says so.</p>}
                  </>
                )}
                <Comments flag={flag} entries={summary.latest} variant={name} total={v.total} />
              </li>
            );
          })}
        </ul>
      );
  }
  return (
    <section aria-labelledby={id} data-testid="feedback">
      <H id={id}>What users say</H>
      <p className="muted small">
        Feedback about <code>{flag}</code> from users’ pages, attributed to the variant the server serves each of them (never one the page names). The interval of the negative share stays valid however
        often you look. Comments are shown as typed, as text: markup is not interpreted and unprintable characters are shown escaped (<code>\x1b</code>).
        {load.kind === 'ok' && load.summary.reports > 0 ? ` ${load.summary.reports.toLocaleString('en')} reports kept (by default the newest 10,000 per flag, for 30 days).` : ''}
      </p>
      <ErrorNote error={error} />
      {body}
    </section>
  );
}
