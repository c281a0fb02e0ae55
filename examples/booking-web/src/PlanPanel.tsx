import { planAction, quantileMs, setFault, setTraffic, startPlan, type AdminState, type ArmSummary, type GuardEvidence, type GuardSpec, type Plan } from './admin';
import type { Notice } from './AdminPanel';

/** The share of fast payments the panel's fault switch breaks. */
const FAULT_RATE = 0.3;

const STATE_WORDS: Record<Plan['state'], string> = { draft: 'DRAFT', running: 'RUNNING', paused: 'PAUSED', rolled_back: 'ROLLED BACK', completed: 'COMPLETED' };

function pct(x: number): string {
  return `${(100 * x).toFixed(x > 0 && x < 0.01 ? 2 : 1)}%`;
}

function ms(v: number | null): string {
  return v === null ? '–' : v === Infinity ? '> 56 s' : `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ms`;
}

function guardName(g: GuardSpec): string {
  switch (g.metric) {
    case 'errors':
      return 'errors';
    case 'latency':
      return `p${Math.round(g.quantile * 100)}`;
    case 'event':
      return `event ${g.name}`;
    case 'clientErrors':
      return 'page errors';
    case 'feedback':
      return 'negative feedback';
    case 'value':
      return g.name;
  }
}

/**
 * The guarded rollout of `flag`: the demo's switches (simulated customers, the fault), and the
 * plan as the controller last wrote it — state, stage, why it holds, each arm's error rate and
 * p99, each guard's evidence, and the last transition with its reason (a rollback's evidence).
 */
export function PlanPanel({ flag, state, busy, act, notice }: { flag: string; state: AdminState; busy: boolean; act: (action: () => Promise<Notice>) => Promise<void>; notice: Notice }) {
  const { plan, demo } = state;
  if (demo && !demo.guardedRollouts.available) {
    return (
      <section className="card admin" data-testid="plan-card">
        <h2>Guarded rollout</h2>
        <p className="notice conflict" data-testid="plan-unavailable">
          {demo.guardedRollouts.why}
        </p>
      </section>
    );
  }
  if (plan.kind === 'unavailable') {
    return (
      <section className="card admin" data-testid="plan-card">
        <h2>Guarded rollout</h2>
        <p className="notice conflict" data-testid="plan-unavailable">
          {plan.message}
        </p>
      </section>
    );
  }
  const p = plan.kind === 'plan' ? plan.plan : null;
  const live = p !== null && (p.state === 'running' || p.state === 'paused');
  const spec = demo?.guardedRollouts.available ? demo.guardedRollouts.plan : undefined;
  const failed = (message: string | null, ok: string): Notice => (message ? { kind: 'error', text: message, where: 'plan' } : { kind: 'ok', text: ok, where: 'plan' });

  return (
    <section className="card admin" data-testid="plan-card">
      <h2>
        Guarded rollout · <code>{flag}</code>{' '}
        {demo?.guardedRollouts.available && (
          <small className="meta">
            controller tick <span data-testid="controller-ticks">{demo.guardedRollouts.controller.ticks}</span>, every {demo.guardedRollouts.controller.intervalMs / 1000} s
          </small>
        )}
      </h2>
      {demo && (
        <>
          <div className="row">
            <button
              className={demo.traffic.on ? 'classic' : 'step'}
              data-testid="traffic-toggle"
              disabled={busy}
              onClick={() => act(async () => failed(await setTraffic(!demo.traffic.on), demo.traffic.on ? 'Simulated customers stopped' : 'Simulated customers are paying'))}
            >
              {demo.traffic.on ? 'Stop the simulated customers' : `Simulate customers (${demo.traffic.ratePerSec || 50} payments/s)`}
            </button>
            <span className="meta" data-testid="traffic-stats">
              <span data-testid="traffic-sent">{demo.traffic.sent}</span> payments: {demo.traffic.fast} fast, {demo.traffic.classic} classic, {demo.traffic.refused} refused (403),{' '}
              {demo.traffic.fastFailed + demo.traffic.classicFailed} failed (5xx)
              {demo.traffic.pages && (
                <>
                  {' '}
                  · their pages: <span data-testid="traffic-pageviews">{demo.traffic.pages.views}</span> views, <span data-testid="traffic-page-errors">{demo.traffic.pages.errors}</span> errors thrown,{' '}
                  {demo.traffic.pages.feedback} feedback answers
                </>
              )}
            </span>
          </div>
          <div className="row">
            <button
              className={demo.fault.failRate > 0 ? 'classic' : 'danger'}
              data-testid="fault-toggle"
              disabled={busy}
              onClick={() => act(async () => failed(await setFault(demo.fault.failRate > 0 ? 0 : FAULT_RATE), demo.fault.failRate > 0 ? 'Fast payment repaired' : 'Fast payment broken'))}
            >
              {demo.fault.failRate > 0 ? 'Repair fast payment' : `Break fast payment (${pct(FAULT_RATE)} fail)`}
            </button>
            <span data-testid="fault-state" className={demo.fault.failRate > 0 ? 'pill off' : 'pill on'}>
              {demo.fault.failRate > 0 ? `fast payment failing: ${pct(demo.fault.failRate)} answer 502` : 'fast payment healthy'}
            </span>
          </div>
        </>
      )}
      {p ? <PlanView plan={p} /> : <p data-testid="plan-state">No plan yet.</p>}
      <div className="row">
        {!live && spec !== undefined && (
          <button
            className="step current"
            data-testid="plan-start"
            disabled={busy}
            onClick={() => act(async () => failed(await startPlan(spec, 'demo plan from the admin panel'), 'Plan started: the controller takes it from here'))}
          >
            {p ? 'Start the demo plan again' : 'Start the demo plan'} (5% → 20% → 50% → 100%)
          </button>
        )}
        {live && (
          <button className="danger" data-testid="plan-rollback" disabled={busy} onClick={() => act(async () => failed(await planAction(flag, 'rollback', 'rolled back from the admin panel'), 'Rolled back'))}>
            Roll back now
          </button>
        )}
      </div>
      {notice && (
        <p className={`notice ${notice.kind}`} role={notice.kind === 'ok' ? 'status' : 'alert'} data-testid={`plan-notice-${notice.kind}`}>
          {notice.text}
        </p>
      )}
      <p className="meta">
        In a terminal: <code>npx rollgate --env demo plan status {flag} --watch</code>
      </p>
    </section>
  );
}

function PlanView({ plan }: { plan: Plan }) {
  const stage = plan.stages[plan.stage]!;
  const threshold = plan.guards.length / plan.alpha;
  const arms = plan.evidence?.stage;
  const stageClass = (i: number) =>
    plan.state === 'completed' || i < plan.stage ? 'step done' : i > plan.stage || plan.state === 'draft' ? 'step' : plan.state === 'rolled_back' ? 'step rolled-back' : 'step current';
  return (
    <div data-testid="plan-view">
      <div className="row">
        <strong className={`pill ${plan.state === 'rolled_back' ? 'off' : 'on'}`} data-testid="plan-state">
          {STATE_WORDS[plan.state]}
        </strong>
        <span className="steps">
          {plan.stages.map((s, i) => (
            <span key={i} className={stageClass(i)} data-testid={`plan-stage-${i + 1}`}>
              {s.percent}%
            </span>
          ))}
        </span>
        <span data-testid="plan-stage">
          stage {plan.stage + 1} of {plan.stages.length} ({stage.percent}%)
        </span>
      </div>
      {(plan.state === 'running' || plan.state === 'paused') && (
        <p data-testid="plan-hold">
          {plan.holdReason ? (
            <>
              <strong>Holding:</strong> {plan.holdReason}
            </>
          ) : plan.evidence ? (
            'Nothing holds it: the controller looks again at its next tick.'
          ) : (
            'Waiting for the controller’s first look.'
          )}
        </p>
      )}
      {plan.last && plan.last.action !== 'hold' && (
        <p data-testid="plan-last" className={plan.state === 'rolled_back' ? 'notice error' : 'meta'}>
          <strong>{plan.last.action === 'rollback' ? 'Rolled back' : `Last: ${plan.last.action}`}</strong> by {plan.last.actor} at {new Date(plan.last.at).toLocaleTimeString()}
          {plan.last.reason ? ` — ${plan.last.reason}` : ''}
        </p>
      )}
      {arms && (
        <table className="arms" data-testid="plan-arms">
          <thead>
            <tr>
              <th>stage {plan.stage + 1}</th>
              <th>requests</th>
              <th>errors</th>
              <th>error rate</th>
              <th>p99</th>
            </tr>
          </thead>
          <tbody>
            <Arm name={`treatment "${plan.treatment}"`} id="treatment" a={arms.treatment} />
            <Arm name={`control "${plan.control}"`} id="control" a={arms.control} />
            {arms.targeted.requests > 0 && <Arm name="pilot (admins, VIP agencies)" id="pilot" a={arms.targeted} />}
          </tbody>
        </table>
      )}
      <ul className="guards" data-testid="plan-guards">
        {plan.guards.map((g, i) => (
          <Guard key={i} g={plan.evidence?.guards[i]} spec={g} threshold={threshold} />
        ))}
      </ul>
      <p className="meta">
        What users said, per variant, and every guard’s evidence:{' '}
        <a href={`/rollgate/#/plans/${encodeURIComponent(plan.flag)}`} data-testid="dashboard-plan-link">
          the plan in the Rollgate dashboard
        </a>
      </p>
    </div>
  );
}

function Arm({ name, id, a }: { name: string; id: string; a: ArmSummary }) {
  return (
    <tr data-testid={`arm-${id}`}>
      <td>{name}</td>
      <td>{a.requests}</td>
      <td>{a.errors}</td>
      <td data-testid={`arm-${id}-error-rate`}>{a.requests > 0 ? pct(a.errors / a.requests) : '–'}</td>
      <td>{ms(quantileMs(a.histogram, 0.99))}</td>
    </tr>
  );
}

function Guard({ g, spec, threshold }: { g: GuardEvidence | undefined; spec: GuardSpec; threshold: number }) {
  const name = guardName(spec);
  const rate = (c: { n: number; bad: number }) => (c.n > 0 ? `${c.bad}/${c.n} (${pct(c.bad / c.n)})` : '0/0');
  const counts =
    spec.metric === 'value' ? (
      // the comparison in the controller's words, "not enough data yet (…)" included
      <span data-testid={`guard-${name}-words`}>{g?.words ?? `${spec.name}: not enough data yet (the controller has not read any)`}</span>
    ) : spec.metric === 'clientErrors' ? (
      <>
        errors thrown per page view: treatment {g ? rate(g.treatment) : '0/0'} vs control {g ? rate(g.control) : '0/0'}
        {!g || g.treatment.n === 0 || g.control.n === 0 ? ' — not enough data yet (no page views in an arm)' : ''}
      </>
    ) : spec.metric === 'feedback' ? (
      <>
        negative answers: treatment {g ? rate(g.treatment) : '0/0'} vs control {g ? rate(g.control) : '0/0'}
      </>
    ) : (
      <>
        treatment {g ? rate(g.treatment) : '0/0'} vs control {g ? rate(g.control) : '0/0'}
      </>
    );
  return (
    <li data-testid={`guard-${name}`}>
      <strong>{name}</strong>
      {spec.metric === 'latency' ? ' (slower than the control’s p99)' : spec.metric === 'clientErrors' || spec.metric === 'feedback' ? ' (compared per minute)' : ''}: {counts} · evidence{' '}
      {(g?.evidence ?? 1).toFixed(1)} of {threshold.toFixed(0)} to roll back
      {g?.regressed && (
        <>
          {' '}
          <strong className="pill off">REGRESSED</strong>
        </>
      )}
    </li>
  );
}
