import { useEffect, useMemo, useState } from 'react';
import type uPlot from 'uplot';
import { Chart } from './Chart';
import { ConflictNote } from './Conflict';
import { FeedbackView } from './Feedback';
import type { GuardEvidence, Plan, PlanSeries } from './model';
import { href, useDashboardContext, useNow, type Snapshot } from './state';
import { Ago, ConfirmDialog, Empty, ErrorNote, StateBadge } from './ui';
import { useWrite } from './write';

type Action = 'start' | 'pause' | 'resume' | 'advance' | 'approve' | 'rollback';

function guardName(g: GuardEvidence['guard']): string {
  switch (g.metric) {
    case 'errors':
      return 'Error rate';
    case 'latency':
      return `Latency (slower than the control's p${Math.round(g.quantile * 100)})`;
    case 'event':
      return `Event “${g.name}”`;
    case 'clientErrors':
      return 'Errors in users’ pages (per page view)';
    case 'feedback':
      return 'Negative feedback (share)';
    case 'value':
      return `“${g.name}” (${g.better === 'higher' ? 'higher' : 'lower'} is better)`;
  }
}

function ms(v: number | null): string {
  return v === null ? '–' : `${Math.round(v)} ms`;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(x < 0.01 ? 2 : 1)}%`;
}

function stageLine(plan: Plan, i: number): string {
  const s = plan.stages[i]!;
  const parts = [`${s.percent === 0 ? 'pilot (targeting only)' : `${s.percent}%`}`];
  if (s.minDurationSec > 0) parts.push(`at least ${s.minDurationSec >= 120 ? `${Math.round(s.minDurationSec / 60)} min` : `${s.minDurationSec} s`}`);
  parts.push(`${s.minRequests} requests and ${s.minUnits} units per arm`);
  if (s.approval) parts.push(plan.approvedStages.includes(i) ? 'approved' : 'needs approval');
  if (s.absolute) parts.push(`limits: ${[s.absolute.maxErrorRate !== undefined ? `errors ≤ ${pct(s.absolute.maxErrorRate)}` : '', s.absolute.maxP99Ms !== undefined ? `p99 ≤ ${s.absolute.maxP99Ms} ms` : ''].filter(Boolean).join(', ')}`);
  return parts.join(' · ');
}

function stageStatus(plan: Plan, i: number): string {
  if (plan.state === 'completed') return 'done';
  if (i < plan.stage) return 'done';
  if (i > plan.stage) return plan.state === 'rolled_back' ? 'skipped' : 'upcoming';
  return plan.state === 'draft' ? 'first' : plan.state === 'rolled_back' ? 'rolled back here' : plan.state === 'paused' ? 'current (paused)' : 'current';
}

export function PlanList({ snapshot }: { snapshot: Snapshot }) {
  if (snapshot.plans === null) return <Empty>Rollout plans live in Redis: this admin API runs over another store, so there are none here.</Empty>;
  if (snapshot.plans.length === 0) {
    return (
      <Empty>
        <p>No rollout plans.</p>
        <p>
          Create one with <code>rollgate plan create plan.json</code> (see docs/guarded-rollouts.md), then start it here.
        </p>
      </Empty>
    );
  }
  return (
    <ul className="cards" aria-label="Rollout plans">
      {[...snapshot.plans]
        .sort((a, b) => a.flag.localeCompare(b.flag))
        .map((p) => (
          <li key={p.id} className="card">
            <div className="card-head">
              <a href={href('plans', p.flag)} className="flag-key">
                {p.flag}
              </a>
              <StateBadge state={p.state} />
            </div>
            <p>
              Stage {p.stage + 1} of {p.stages.length}: {p.stages[p.stage]?.percent}% <code>{p.treatment}</code> vs <code>{p.control}</code>
            </p>
            {p.holdReason && <p className="muted small">Holding: {p.holdReason}</p>}
          </li>
        ))}
    </ul>
  );
}

function Timeline({ plan }: { plan: Plan }) {
  return (
    <ol className="timeline" aria-label="Stages" data-testid="timeline">
      {plan.stages.map((_, i) => {
        const status = stageStatus(plan, i);
        return (
          <li key={i} className={`stage stage-${status.split(' ')[0]}`} aria-current={i === plan.stage && plan.state !== 'completed' ? 'step' : undefined}>
            <span className="stage-dot" aria-hidden="true" />
            <span className="stage-name">
              Stage {i + 1}: {plan.stages[i]!.percent}%
            </span>{' '}
            <span className="stage-status">{status}</span>
            <div className="muted small">{stageLine(plan, i)}</div>
          </li>
        );
      })}
    </ol>
  );
}

function Evidence({ plan }: { plan: Plan }) {
  const threshold = plan.guards.length / plan.alpha;
  const guards = plan.evidence?.guards ?? [];
  return (
    <section aria-labelledby="evidence-h">
      <h2 id="evidence-h">Evidence per guard</h2>
      <p className="muted small">
        A guard rolls the plan back when its evidence reaches {threshold.toFixed(0)} (= {plan.guards.length} guard{plan.guards.length === 1 ? '' : 's'} / α {plan.alpha}): the chance of rolling back a healthy treatment
        stays under {pct(plan.alpha)}.
      </p>
      {guards.length === 0 ? (
        <p className="muted">No evidence yet: the controller has not read any traffic of this run.</p>
      ) : (
        <ul className="guards">
          {guards.map((g, i) => {
            const share = Math.max(0, Math.min(1, Math.log(Math.max(1, g.evidence)) / Math.log(threshold)));
            const rt = g.treatment.n ? g.treatment.bad / g.treatment.n : 0;
            const rc = g.control.n ? g.control.bad / g.control.n : 0;
            return (
              <li key={i} className="guard">
                <div className="card-head">
                  <strong>{guardName(g.guard)}</strong>
                  {g.regressed ? <span className="badge badge-rolled-back">regressed</span> : null}
                </div>
                <div
                  className={`meter ${share >= 1 ? 'meter-full' : share > 0.5 ? 'meter-high' : ''}`}
                  role="meter"
                  aria-valuemin={0}
                  aria-valuemax={threshold}
                  aria-valuenow={Math.min(g.evidence, threshold)}
                  aria-valuetext={`evidence ${g.evidence.toFixed(1)} of ${threshold.toFixed(0)}`}
                  aria-label={`${guardName(g.guard)}: evidence against its threshold`}
                >
                  <span style={{ width: `${share * 100}%` }} />
                </div>
                <p className="small" data-testid={`guard-${g.guard.metric}`}>
                  Evidence {g.evidence.toFixed(2)} of {threshold.toFixed(0)} (log scale). <GuardCounts g={g} rt={rt} rc={rc} />
                </p>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}

/** What a guard's test has seen, in the words of its signal; "not enough data yet" until both arms have some. */
function GuardCounts({ g, rt, rc }: { g: GuardEvidence; rt: number; rc: number }) {
  const worse = g.ratioLowerBound > 1 ? `The treatment is at least ${g.ratioLowerBound.toFixed(2)}× as bad as the control.` : 'No sign that the treatment is worse.';
  switch (g.guard.metric) {
    case 'value':
      // the controller's words: "checkout.completed 25% faster (95% interval 12–36%), 1,240 values per arm", or why it cannot say yet
      return <span data-testid="guard-words">{g.words ?? `${g.guard.name}: not enough data yet (the controller has not read any value)`}</span>;
    case 'clientErrors':
      if (g.treatment.n === 0 || g.control.n === 0) {
        return <>Not enough data yet: no page views in the {g.treatment.n === 0 && g.control.n === 0 ? 'treatment nor the control' : g.treatment.n === 0 ? 'treatment' : 'control'} (pages send them with <code>captureErrors</code> or <code>pageviews: true</code>).</>;
      }
      return (
        <>
          {worse} Errors thrown in users’ pages per page view: treatment {g.treatment.bad}/{g.treatment.n} ({pct(rt)}), control {g.control.bad}/{g.control.n} ({pct(rc)}); compared per minute.
        </>
      );
    case 'feedback':
      if (g.treatment.n === 0 || g.control.n === 0) return <>Not enough data yet: no feedback from the {g.treatment.n === 0 ? 'treatment' : 'control'} (both arms must be asked).</>;
      return (
        <>
          {worse} Negative answers: treatment {g.treatment.bad}/{g.treatment.n} ({pct(rt)}), control {g.control.bad}/{g.control.n} ({pct(rc)}); compared per minute.
        </>
      );
    default:
      return (
        <>
          {worse} Treatment {g.treatment.bad}/{g.treatment.n} ({pct(rt)}), control {g.control.bad}/{g.control.n} ({pct(rc)}).
        </>
      );
  }
}

/**
 * What users live through in each arm: errors thrown in their pages (the clientErrors guard),
 * how long their task took (value guards, in words), and what they said (feedback per variant).
 */
function UsersSignals({ plan }: { plan: Plan }) {
  const guards = plan.evidence?.guards ?? [];
  const found = (metric: string) => plan.guards.findIndex((g) => g.metric === metric);
  const ce = found('clientErrors');
  const ceEvidence = ce >= 0 ? guards[ce] : undefined;
  const values = plan.guards.map((g, i) => [g, guards[i]] as const).filter(([g]) => g.metric === 'value');
  const arm = (c: { n: number; bad: number }) => (c.n > 0 ? `${c.bad} in ${c.n.toLocaleString('en')} page views (${pct(c.bad / c.n)})` : 'no page views yet');
  return (
    <section aria-labelledby="users-h" data-testid="users-signals">
      <h2 id="users-h">What users live through</h2>
      <h3>Errors in users’ pages</h3>
      {ce < 0 ? (
        <p className="muted" data-testid="client-errors">
          Not guarded: add <code>{'{ "metric": "clientErrors" }'}</code> to the plan’s guards to compare the errors thrown in users’ pages per page view (the web provider’s <code>captureErrors</code>).
        </p>
      ) : !ceEvidence || ceEvidence.treatment.n === 0 || ceEvidence.control.n === 0 ? (
        <p className="muted" data-testid="client-errors">
          Not enough data yet: {ceEvidence ? `treatment ${arm(ceEvidence.treatment)}, control ${arm(ceEvidence.control)}` : 'the controller has not read any page view of this run'}.
        </p>
      ) : (
        <table className="arms" data-testid="client-errors">
          <thead>
            <tr>
              <th scope="col">Arm</th>
              <th scope="col">Page views</th>
              <th scope="col">Errors thrown</th>
              <th scope="col">Per page view</th>
            </tr>
          </thead>
          <tbody>
            {(
              [
                [`treatment (${plan.treatment})`, ceEvidence.treatment, 'treatment'],
                [`control (${plan.control})`, ceEvidence.control, 'control'],
              ] as const
            ).map(([name, c, id]) => (
              <tr key={id} data-testid={`client-errors-${id}`}>
                <th scope="row">{name}</th>
                <td>{c.n.toLocaleString('en')}</td>
                <td>{c.bad.toLocaleString('en')}</td>
                <td>{pct(c.bad / c.n)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Time to complete</h3>
      {values.length === 0 ? (
        <p className="muted">
          Not guarded: a value guard (<code>{'{ "metric": "value", "name": "checkout.completed" }'}</code>) compares how long a task takes in each arm (the web provider’s <code>startTask</code>).
        </p>
      ) : (
        <ul className="value-words">
          {values.map(([g, e]) => (
            <li key={JSON.stringify(g)} data-testid={`value-words-${(g as { name: string }).name}`}>
              {e?.words ?? `${(g as { name: string }).name}: not enough data yet (the controller has not read any value of this run)`}
            </li>
          ))}
        </ul>
      )}
      <FeedbackView flag={plan.flag} arms={{ treatment: plan.treatment, control: plan.control }} headingLevel={3} />
    </section>
  );
}

function Charts({ plan }: { plan: Plan }) {
  const { client } = useDashboardContext();
  const [series, setSeries] = useState<PlanSeries | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let stopped = false;
    const load = () =>
      client.request<PlanSeries>('GET', `plans/${encodeURIComponent(plan.flag)}/series?seconds=600`).then(
        (s) => {
          if (!stopped) {
            setSeries(s);
            setError(null);
          }
        },
        (e: unknown) => !stopped && setError(e),
      );
    void load();
    const timer = setInterval(() => void load(), 5000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [client, plan.flag, plan.planVersion]);
  const charts = useMemo(() => {
    if (!series) return null;
    const x = series.points.map((p) => p.t);
    const rate = (a: { requests: number; errors: number }) => (a.requests > 0 ? (100 * a.errors) / a.requests : null);
    const errors: uPlot.AlignedData = [x, series.points.map((p) => rate(p.treatment)), series.points.map((p) => rate(p.control))];
    const th = series.thresholds;
    const latency: uPlot.AlignedData = [
      x,
      series.points.map((p) => p.treatment.p95Ms),
      series.points.map((p) => p.treatment.p99Ms),
      series.points.map((p) => p.control.p95Ms),
      series.points.map((p) => p.control.p99Ms),
      ...(th ? [x.map(() => th.p99Ms)] : []),
    ];
    const sum = (k: 'treatment' | 'control', f: 'requests' | 'errors') => series.points.reduce((a, p) => a + p[k][f], 0);
    const tr = sum('treatment', 'requests');
    const cr = sum('control', 'requests');
    const last = [...series.points].reverse().find((p) => p.treatment.p99Ms !== null || p.control.p99Ms !== null);
    return {
      errors,
      latency,
      thresholds: th,
      errorSummary: `Last ${Math.round((series.to - series.from + 1) / 60)} min: treatment ${sum('treatment', 'errors')} errors in ${tr} requests${tr ? ` (${pct(sum('treatment', 'errors') / tr)})` : ''}, control ${sum('control', 'errors')} in ${cr}${cr ? ` (${pct(sum('control', 'errors') / cr)})` : ''}.`,
      latencySummary: last
        ? `Latest: treatment p95 ${ms(last.treatment.p95Ms)}, p99 ${ms(last.treatment.p99Ms)}; control p95 ${ms(last.control.p95Ms)}, p99 ${ms(last.control.p99Ms)}${th ? `; threshold p99 ${ms(th.p99Ms)}` : ''}.`
        : 'No requests in this window.',
    };
  }, [series]);
  return (
    <section aria-labelledby="charts-h">
      <h2 id="charts-h">Arms, live</h2>
      <ErrorNote error={error} />
      {!charts ? (
        <p className="muted">Loading the series…</p>
      ) : (
        <div className="charts">
          <Chart
            title="Error rate per arm"
            unit="%"
            lines={[
              { label: `treatment (${plan.treatment})`, color: '#1a5fb4' },
              { label: `control (${plan.control})`, color: '#5e5c64', dash: [6, 4] },
            ]}
            data={charts.errors}
            summary={charts.errorSummary}
          />
          <Chart
            title="Latency p95 / p99 per arm"
            unit="ms"
            lines={[
              { label: 'treatment p95', color: '#1a5fb4', width: 1.5 },
              { label: 'treatment p99', color: '#1a5fb4', width: 2.5 },
              { label: 'control p95', color: '#5e5c64', dash: [6, 4], width: 1.5 },
              { label: 'control p99', color: '#5e5c64', dash: [6, 4], width: 2.5 },
              ...(charts.thresholds ? [{ label: 'p99 threshold', color: '#a51d2d', dash: [2, 4], width: 1.5 }] : []),
            ]}
            data={charts.latency}
            summary={charts.latencySummary}
          />
        </div>
      )}
    </section>
  );
}

const LABELS: Record<Action, string> = { start: 'Start', pause: 'Pause', resume: 'Resume', advance: 'Advance', approve: 'Approve', rollback: 'Roll back' };

function impact(plan: Plan, action: Action): string[] {
  const here = plan.stages[plan.stage]!;
  const next = plan.stages[plan.stage + 1];
  switch (action) {
    case 'start':
      return [`Sets the split of “${plan.flag}” to ${plan.stages[0]!.percent}% ${plan.treatment}, ${100 - plan.stages[0]!.percent}% ${plan.control}; from then on the controller advances or rolls back by itself.`];
    case 'pause':
      return [`The controller stops acting on this plan; the split stays at ${here.percent}% ${plan.treatment}. Nobody's variant changes.`];
    case 'resume':
      return [`The controller acts again; the split goes back to the stage's ${here.percent}% ${plan.treatment} if it was changed meanwhile.`];
    case 'approve':
      return [`Lets stage ${plan.stage + 1} (${here.percent}%) advance once its checks pass. Nobody's variant changes now.`];
    case 'advance':
      return next
        ? [`Moves to stage ${plan.stage + 2} now, whatever the checks say (recorded as a manual advance): the split goes from ${here.percent}% to ${next.percent}% ${plan.treatment}, so about ${next.percent - here.percent}% of the users in the split switch to ${plan.treatment}.`]
        : [`Completes the plan: the split stays at ${here.percent}% ${plan.treatment}.`];
    case 'rollback':
      return [
        `Everyone in the split of “${plan.flag}” gets ${plan.control}: the split goes to 0% ${plan.treatment} in one write, and the plan ends rolled back.`,
        'Users that earlier targeting rules (pilot groups) give the treatment keep it: change those rules on the flag.',
      ];
  }
}

function actionsFor(plan: Plan): Action[] {
  const approvable = plan.stages[plan.stage]?.approval && !plan.approvedStages.includes(plan.stage);
  switch (plan.state) {
    case 'draft':
      return ['start', 'rollback'];
    case 'running':
      return ['pause', 'advance', ...(approvable ? (['approve'] as const) : []), 'rollback'];
    case 'paused':
      return ['resume', 'advance', ...(approvable ? (['approve'] as const) : []), 'rollback'];
    default:
      return [];
  }
}

export function PlanDetail({ flag, snapshot }: { flag: string; snapshot: Snapshot }) {
  const { client } = useDashboardContext();
  const now = useNow();
  const write = useWrite();
  const [pending, setPending] = useState<{ action: Action; pinned: number } | null>(null);
  if (snapshot.plans === null) return <PlanList snapshot={snapshot} />;
  const plan = snapshot.plans.find((p) => p.flag === flag);
  if (!plan) {
    return (
      <Empty>
        <p>
          “{flag}” has no rollout plan. <a href={href('plans')}>All plans</a>
        </p>
      </Empty>
    );
  }
  const status =
    plan.state === 'draft'
      ? 'Not started.'
      : plan.state === 'completed'
        ? 'Completed: every stage passed.'
        : plan.state === 'rolled_back'
          ? `Rolled back${plan.last?.action === 'rollback' && plan.last.reason ? `: ${plan.last.reason}` : '.'}`
          : plan.holdReason
            ? plan.holdReason
            : 'Nothing holds it: it advances when the stage’s checks pass.';
  const s = plan.evidence?.stage;
  return (
    <article data-testid="plan-detail">
      <div className="title-row">
        <StateBadge state={plan.state} />
        <span>
          <code>{plan.treatment}</code> vs <code>{plan.control}</code> on <a href={href('flags', plan.flag)}>{plan.flag}</a> · plan version {plan.planVersion}
        </span>
      </div>
      <p className={`hold ${plan.holdReason && (plan.state === 'running' || plan.state === 'paused') ? 'note note-warn' : 'note'}`} data-testid="hold-reason" aria-live="polite">
        <strong>{plan.holdReason && (plan.state === 'running' || plan.state === 'paused') ? (plan.state === 'paused' ? 'Paused: ' : 'Holding: ') : 'Status: '}</strong>
        {status}
      </p>
      {plan.last && (
        <p className="muted small">
          Last: {plan.last.action} by {plan.last.actor}, <Ago time={plan.last.at} now={now} />
          {plan.last.reason ? ` — ${plan.last.reason}` : ''}
        </p>
      )}
      <div className="actions plan-actions" role="group" aria-label="Plan actions">
        {actionsFor(plan).map((a) => (
          <button
            key={a}
            type="button"
            className={a === 'rollback' ? 'danger' : a === 'pause' ? '' : 'primary'}
            onClick={() => {
              write.start();
              setPending({ action: a, pinned: plan.planVersion });
            }}
            data-testid={`plan-${a}`}
          >
            {LABELS[a]}…
          </button>
        ))}
      </div>
      {write.conflict && <ConflictNote conflict={write.conflict} snapshot={snapshot} now={now} onDismiss={write.clearConflict} />}
      <section aria-labelledby="timeline-h">
        <h2 id="timeline-h">Stages</h2>
        <Timeline plan={plan} />
      </section>
      {s && (
        <section aria-labelledby="arms-h">
          <h2 id="arms-h">This stage so far</h2>
          <table className="arms">
            <thead>
              <tr>
                <th scope="col">Arm</th>
                <th scope="col">Requests</th>
                <th scope="col">Errors</th>
                <th scope="col">Units</th>
              </tr>
            </thead>
            <tbody>
              {(
                [
                  ['treatment', s.treatment],
                  ['control', s.control],
                  ...(s.targeted.requests > 0 ? [['pilot (targeted)', s.targeted] as const] : []),
                ] as const
              ).map(([name, a]) => (
                <tr key={name}>
                  <th scope="row">{name}</th>
                  <td>{a.requests}</td>
                  <td>
                    {a.errors}
                    {a.requests ? ` (${pct(a.errors / a.requests)})` : ''}
                  </td>
                  <td>{a.units}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      <Evidence plan={plan} />
      <UsersSignals plan={plan} />
      <Charts plan={plan} />
      {pending && (
        <ConfirmDialog
          title={`${LABELS[pending.action]} the plan of “${plan.flag}”?`}
          confirmLabel={LABELS[pending.action]}
          danger={pending.action === 'rollback'}
          busy={write.busy}
          error={write.error}
          onClose={() => setPending(null)}
          onConfirm={async (reason) => {
            const { action, pinned } = pending;
            // a pause or a rollback must work from a stale page: those are not pinned
            const pin = action === 'pause' || action === 'rollback' ? {} : { ifMatch: pinned };
            const out = await write.run({ pinned, key: plan.flag, kind: 'plan' }, (writeId) =>
              client.request('POST', `plans/${encodeURIComponent(plan.flag)}/${action}`, { ...pin, reason, writeId }),
            );
            if (out !== 'failed') setPending(null);
          }}
        >
          {impact(plan, pending.action).map((line) => (
            <p key={line}>{line}</p>
          ))}
        </ConfirmDialog>
      )}
      <ErrorNote error={pending ? null : write.error} />
    </article>
  );
}
