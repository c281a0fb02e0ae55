'use strict';
// Core evaluation benchmark, measured the way a server runs: Rollgate vs @openfeature/flagd-core
// vs hand-written JavaScript with the same logic (the baseline, ratio 1.0).
//
//   npm run bench                                   (builds, then runs this and the other benches)
//   node packages/core/bench/evaluate.bench.js      (after npm run build; ~1 min)
//   BENCH_RUNS=1 BENCH_ROUNDS=5 node packages/core/bench/evaluate.bench.js   (quicker, noisier)
//   BENCH_NO_DOC=1 …                                (print only, leave docs/benchmarks.md alone)
//   BENCH_COMPARE=/path/to/other/core/dist …        (adds that build of @rollgate/core as "Rollgate (compare)",
//                                                    for before/after ratios measured in the same run)
//
// Method (see the section it writes in docs/benchmarks.md):
//  - BENCH_RUNS separate processes (3 by default), each: warm-up, then BENCH_ROUNDS rounds in which
//    every (case, implementation) runs one batch of ~BENCH_MS, in an order rotated each round;
//  - CPU time of the process (process.cpuUsage: user + system, GC threads included), not wall time;
//  - no forced GC: each implementation's garbage is collected as it would be in a server;
//  - before any timing, every flag of an app's flag set (several shapes) is evaluated for
//    thousands of contexts by every implementation, so V8's type feedback inside the engines is
//    as polymorphic as in an app that uses more than one flag;
//  - contexts: 20,000 per decision path, built from JSON text (as a server builds them), with
//    varied targetingKeys (UUIDs, ids, e-mails, numbers, a few non-ASCII) and optional attributes;
//  - the reported ratio is the median over rounds of (implementation / hand-written in the same
//    round), then the median over runs, with the range over runs.

const os = require('node:os');
const path = require('node:path');
const { fork } = require('node:child_process');

const S = require('./scenario');

const RUNS = Number(process.env.BENCH_RUNS) || 3;
const ROUNDS = Number(process.env.BENCH_ROUNDS) || 15;
const BATCH_MS = Number(process.env.BENCH_MS) || 40;
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS) || 250;
const POOL = 20_000;
const APP_FLAGS = 200; // the other flags of the app (cycling through the shapes); also the bulk case
const SECTION = '## Core evaluation engine';
const COMPARE = process.env.BENCH_COMPARE;

const SILENT = { debug() {}, info() {}, warn() {}, error() {} };

// ---- one run (a child process) --------------------------------------------------------------------

function fail(message) {
  console.error(`\nBENCHMARK ABORTED: ${message}`);
  process.exit(1);
}

/** A timing loop of its own per (case, implementation), so call sites' feedback is not shared. */
function makeLoop(callExpr, resultExpr) {
  // eslint-disable-next-line no-new-func
  return new Function(
    'target',
    'pool',
    'n',
    `let sum = 0;
     const len = pool.length;
     let j = 0;
     for (let i = 0; i < n; i++) {
       const ctx = pool[j];
       if (++j === len) j = 0;
       const r = ${callExpr};
       sum += ${resultExpr};
     }
     return sum;`,
  );
}

let checksum = 0;

/** CPU and wall nanoseconds per operation of one batch. */
function timeBatch(impl, n) {
  const c0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();
  const sum = impl.loop(impl.target, impl.pool, n);
  const w1 = process.hrtime.bigint();
  const c = process.cpuUsage(c0);
  checksum = (checksum + sum) % 1_000_000_007;
  return { cpu: ((c.user + c.system) * 1000) / n, wall: Number(w1 - w0) / n };
}

function calibrate(impl) {
  let n = 64;
  let t = 0;
  const deadline = Date.now() + WARMUP_MS;
  for (;;) {
    const w0 = process.hrtime.bigint();
    impl.loop(impl.target, impl.pool, n);
    t = Number(process.hrtime.bigint() - w0);
    if (Date.now() >= deadline && t >= 10e6) break;
    if (t < 10e6) n *= 2;
  }
  impl.iters = Math.max(16, Math.round((BATCH_MS * 1e6 * n) / t));
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function flagdOf(set) {
  const { FlagdCore } = require('@openfeature/flagd-core');
  const fc = new FlagdCore(undefined, SILENT);
  fc.setConfigurations(JSON.stringify(set));
  return fc;
}

function compileOrDie(core, set, label) {
  const { snapshot, errors } = core.compileFlagSet(set);
  if (errors.length) fail(`${label}: rollgate rejected the flag set: ${JSON.stringify(errors.slice(0, 3))}`);
  return snapshot;
}

/** Every implementation gives the same value and variant (and Rollgate the hand-written reason) for every context and flag. */
function check(label, engines, keys, pools) {
  let compared = 0;
  for (const pool of pools) {
    for (const ctx of pool) {
      for (const key of keys) {
        const h = engines.hand[key](ctx);
        if (JSON.stringify(engines.bare[key](ctx)) !== JSON.stringify(h.value)) fail(`${label}: the two hand-written forms disagree on ${key} for ${JSON.stringify(ctx)}`);
        for (const rg of engines.rollgate) {
          const r = rg.snapshot.evaluate(key, ctx);
          if (JSON.stringify(r.value) !== JSON.stringify(h.value) || r.variant !== h.variant || r.reason !== h.reason || r.errorCode) {
            fail(`${label}: ${rg.name} disagrees with the hand-written function on ${key} for ${JSON.stringify(ctx)}: ${JSON.stringify(r)} vs ${JSON.stringify(h)}`);
          }
        }
        compared++;
        // flagd-core hashes UTF-16 code units, flagd (Go) and Rollgate UTF-8 bytes: non-ASCII keys bucket differently there
        if (/[^\x00-\x7f]/.test(ctx.targetingKey)) continue;
        const type = typeof h.value === 'object' ? 'object' : typeof h.value;
        const f = engines.flagd.resolve(type, key, undefined, ctx);
        if (JSON.stringify(f.value) !== JSON.stringify(h.value) || f.variant !== h.variant || f.errorCode) {
          fail(`${label}: flagd-core disagrees with the hand-written function on ${key} for ${JSON.stringify(ctx)}: ${JSON.stringify(f)} vs ${JSON.stringify(h)}`);
        }
      }
    }
  }
  return compared;
}

function runChild() {
  const core = require('../dist');
  const cores = [{ id: 'rollgate', name: 'Rollgate', core }];
  if (COMPARE) cores.push({ id: 'compare', name: 'Rollgate (compare)', core: require(path.resolve(COMPARE)) });

  // the app: the seed flag and 200 flags of several shapes; and the same with a 10,000-tenant seed flag
  const app = S.appFlagSet(APP_FLAGS, S.TENANTS_50);
  const app10k = S.appFlagSet(APP_FLAGS, S.TENANTS_10K);
  const hand = S.handWrittenSet(app);
  const hand10k = S.handWrittenSet(app10k);
  const bare = S.handWrittenSet(app, 'value');
  const bare10k = S.handWrittenSet(app10k, 'value');
  const rollgate = cores.map((c) => ({ ...c, snapshot: compileOrDie(c.core, app.set, 'app'), snapshot10k: compileOrDie(c.core, app10k.set, 'app10k') }));
  const flagd = flagdOf(app.set);
  const flagd10k = flagdOf(app10k.set);
  const keys = Object.keys(app.set.flags);

  const pools = {
    admin: S.contexts('admin', POOL),
    vip: S.contexts('vip', POOL),
    split: S.contexts('split', POOL),
    mix: S.contexts('mix', POOL),
    mix10k: S.contexts('mix', POOL, { tenants: S.TENANTS_10K, seed: 2 }),
  };
  // correctness gate, on a sample of every pool (all flags) and every context for the seed flag
  const sample = Object.values(pools).map((p) => p.slice(0, 300));
  let compared = check('app', { rollgate, flagd, hand, bare }, keys, [sample[0], sample[1], sample[2], sample[3]]);
  compared += check('seed', { rollgate, flagd, hand, bare }, [S.SEED_KEY], [pools.admin, pools.vip, pools.split, pools.mix]);
  compared += check('seed 10k', { rollgate: rollgate.map((r) => ({ ...r, snapshot: r.snapshot10k })), flagd: flagd10k, hand: hand10k, bare: bare10k }, [S.SEED_KEY], [pools.mix10k]);
  for (const [p, pool] of Object.entries({ admin: pools.admin, vip: pools.vip, split: pools.split })) {
    for (const ctx of pool) if (S.pathOf(ctx, S.TENANTS_50) !== p) fail(`context of the ${p} pool takes another path`);
  }

  // warm-up as an app: every flag, every engine, thousands of varied contexts
  const warm = pools.mix.slice(0, 4000);
  for (let pass = 0; pass < 3; pass++) {
    for (const ctx of warm) {
      for (const r of rollgate) {
        r.snapshot.evaluateAll(ctx);
        r.snapshot10k.evaluate(S.SEED_KEY, ctx);
      }
      flagd.resolveAll(ctx);
      flagd10k.resolve('boolean', S.SEED_KEY, false, ctx);
      for (const key of keys) hand[key](ctx), bare[key](ctx);
      hand10k[S.SEED_KEY](ctx);
      bare10k[S.SEED_KEY](ctx);
    }
  }

  const key = JSON.stringify(S.SEED_KEY);
  const value = '(r.value === true ? 1 : 0)';
  const single = (id, title, pool, snapshotOf, fd, h, b) => ({
    id,
    title,
    impls: [
      { id: 'hand', name: 'hand-written', baseline: true, target: h[S.SEED_KEY], pool, loop: makeLoop('target(ctx)', value) },
      { id: 'bare', name: 'hand-written, bare value (info)', target: b[S.SEED_KEY], pool, loop: makeLoop('target(ctx)', '(r === true ? 1 : 0)') },
      ...rollgate.map((r) => ({ id: r.id, name: `${r.name} \`evaluate\``, target: snapshotOf(r), pool, loop: makeLoop(`target.evaluate(${key}, ctx)`, value) })),
      { id: 'flagd', name: 'flagd-core `resolve`', target: fd, pool, loop: makeLoop(`target.resolve('boolean', ${key}, false, ctx)`, value) },
    ],
  });
  const loopOver = (fns) => {
    const list = keys.map((k) => fns[k]);
    return (ctx) => {
      const out = new Array(list.length);
      for (let i = 0; i < list.length; i++) out[i] = list[i](ctx);
      return out;
    };
  };
  const countOn = '(r.length + (r[0].value === true ? 1 : 0))';
  const cases = [
    single('admin', 'admin (role == "admin")', pools.admin, (r) => r.snapshot, flagd, hand, bare),
    single('vip', 'VIP tenant (50-tenant list)', pools.vip, (r) => r.snapshot, flagd, hand, bare),
    single('split', 'sticky 20% split', pools.split, (r) => r.snapshot, flagd, hand, bare),
    single('mix', 'mix (20% admin, 30% VIP, 50% split)', pools.mix, (r) => r.snapshot, flagd, hand, bare),
    single('mix10k', 'mix, 10,000-tenant list', pools.mix10k, (r) => r.snapshot10k, flagd10k, hand10k, bare10k),
    {
      id: 'bulk',
      title: `bulk: all ${keys.length} flags, one context`,
      perCall: keys.length,
      impls: [
        { id: 'hand', name: 'hand-written loop', baseline: true, target: loopOver(hand), pool: pools.mix, loop: makeLoop('target(ctx)', countOn) },
        { id: 'bare', name: 'hand-written loop, bare values (info)', target: loopOver(bare), pool: pools.mix, loop: makeLoop('target(ctx)', '(r.length + (r[0] === true ? 1 : 0))') },
        ...rollgate.map((r) => ({ id: r.id, name: `${r.name} \`evaluateAll\``, target: r.snapshot, pool: pools.mix, loop: makeLoop('target.evaluateAll(ctx)', countOn) })),
        { id: 'flagd', name: 'flagd-core `resolveAll`', target: flagd, pool: pools.mix, loop: makeLoop('target.resolveAll(ctx)', countOn) },
      ],
    },
  ];

  const batches = [];
  for (const c of cases) for (const impl of c.impls) batches.push(impl);
  for (const impl of batches) {
    calibrate(impl);
    impl.cpu = [];
    impl.wall = [];
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < batches.length; k++) {
      const impl = batches[(k + round * 5) % batches.length];
      const t = timeBatch(impl, impl.iters);
      impl.cpu.push(t.cpu);
      impl.wall.push(t.wall);
    }
  }
  const out = cases.map((c) => {
    const base = c.impls.find((i) => i.baseline);
    return {
      id: c.id,
      title: c.title,
      perCall: c.perCall,
      impls: c.impls.map((i) => ({
        id: i.id,
        name: i.name,
        baseline: !!i.baseline,
        ns: median(i.cpu),
        wallNs: median(i.wall),
        ratio: median(i.cpu.map((s, r) => s / base.cpu[r])),
        wallRatio: median(i.wall.map((s, r) => s / base.wall[r])),
      })),
    };
  });
  process.send({ cases: out, compared, checksum });
}

// ---- the parent: runs, aggregates, reports ---------------------------------------------------------

function runOnce() {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result;
    child.on('message', (m) => (result = m));
    child.on('exit', (code) => (code === 0 && result ? resolve(result) : reject(new Error(`benchmark run exited with ${code}`))));
  });
}

const fmtNs = (ns) => (ns >= 100_000 ? `${(ns / 1000).toFixed(0)} µs` : ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : ns >= 100 ? ns.toFixed(0) : ns.toFixed(1));
const fmtX = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const range = (xs) => (xs.length === 1 ? '' : ` (${fmtX(Math.min(...xs))}–${fmtX(Math.max(...xs))})`);

/** Per (case, implementation): the runs' values. */
function aggregate(runs) {
  return runs[0].cases.map((c, ci) => ({
    id: c.id,
    title: c.title,
    perCall: c.perCall,
    impls: c.impls.map((impl, ii) => {
      const of = (f) => runs.map((r) => f(r.cases[ci].impls[ii]));
      return { ...impl, ns: of((i) => i.ns), wallNs: of((i) => i.wallNs), ratio: of((i) => i.ratio), wallRatio: of((i) => i.wallRatio) };
    }),
  }));
}

function table(cases) {
  const lines = ['| case | implementation | CPU ns / op | ratio to hand-written (range over runs) | flagd-core / Rollgate |', '|---|---|---:|---:|---:|'];
  for (const c of cases) {
    const rg = c.impls.find((i) => i.id === 'rollgate');
    const fd = c.impls.find((i) => i.id === 'flagd');
    const vsFlagd = fd.ratio.map((x, r) => x / rg.ratio[r]);
    for (const impl of c.impls) {
      let ns = fmtNs(median(impl.ns));
      if (c.perCall) ns += ` (${fmtNs(median(impl.ns) / c.perCall)} / flag)`;
      const name = impl.baseline ? `**${impl.name}** (baseline)` : impl.name;
      const ratio = impl.baseline ? '1.00×' : `${impl.id === 'rollgate' ? '**' : ''}${fmtX(median(impl.ratio))}×${impl.id === 'rollgate' ? '**' : ''}${range(impl.ratio)}`;
      const speed = impl.id === 'rollgate' ? `${fmtX(median(vsFlagd))}×${range(vsFlagd)}` : '';
      lines.push(`| ${c.title} | ${name} | ${ns} | ${ratio} | ${speed} |`);
    }
  }
  return lines.join('\n');
}

function bars(cases) {
  const rg = (c) => c.impls.find((i) => i.id === 'rollgate');
  const paths = cases.filter((c) => !c.perCall);
  const bulk = cases.find((c) => c.perCall);
  const worstPath = Math.max(...paths.map((c) => median(rg(c).ratio)));
  const checks = [
    { ok: worstPath <= 1.5, text: `every path within 1.5× of the hand-written function: ${paths.map((c) => `${c.id} ${fmtX(median(rg(c).ratio))}×`).join(', ')}` },
    { ok: median(rg(bulk).ratio) <= 2, text: `\`evaluateAll\` of ${bulk.perCall} flags within 2× of a hand-written loop: ${fmtX(median(rg(bulk).ratio))}×` },
  ];
  return { met: checks.every((c) => c.ok), lines: checks.map((c) => `- ${c.ok ? 'MET' : 'NOT MET'}: ${c.text}`) };
}

async function main() {
  const started = Date.now();
  const cpu = os.cpus();
  console.log(`Node ${process.version}, ${cpu[0]?.model ?? 'unknown CPU'} × ${cpu.length}; ${RUNS} runs × ${ROUNDS} rounds × ~${BATCH_MS} ms per implementation\n`);
  const runs = [];
  for (let r = 0; r < RUNS; r++) {
    runs.push(await runOnce());
    console.log(`run ${r + 1}/${RUNS} done (${runs[r].compared.toLocaleString('en-US')} evaluations checked against the hand-written functions)`);
  }
  const cases = aggregate(runs);
  const tbl = table(cases);
  const b = bars(cases);
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  console.log(`\n${tbl}\n\nBar ${b.met ? 'MET' : 'NOT MET'}:\n${b.lines.join('\n')}\n(${seconds} s)`);
  if (process.env.BENCH_NO_DOC) return;
  const { writeSection, DOC_PATH } = require('../../../bench/doc-section');
  const flagdVersion = require('@openfeature/flagd-core/package.json').version;
  const md = `${SECTION}

\`@rollgate/core\` against [\`@openfeature/flagd-core\`](https://www.npmjs.com/package/@openfeature/flagd-core) ${flagdVersion}
(flagd's JavaScript evaluator, on json-logic-engine) and hand-written JavaScript with the same logic, the
baseline (ratio 1.0): a \`Set\` for the tenant list, \`murmur3(flagKey + targetingKey)\` and flagd's bucket
math, and results built once, so it allocates nothing either.

The seed flag \`fast-payment\` (variants \`on: true\` / \`off: false\`, \`defaultVariant: "off"\`):

\`\`\`json
{"if": [{"==": [{"var": "role"}, "admin"]}, "on",
        {"in": [{"var": "tenant"}, ["<50 tenant ids>"]]}, "on",
        {"fractional": [["on", 20], ["off", 80]]}]}
\`\`\`

It lives in a flag set with ${APP_FLAGS} other flags of six shapes (the same rule with a 10-tenant list, an
\`ends_with\` + 50/50 split with string variants, a numeric \`<\`, a static flag, \`in\` over a context list,
\`==\` with object variants), as in an app.

- **Paths**: the same flag timed separately on contexts that all take one decision path — admin (decided by the
  first condition), VIP tenant (the \`in\`), sticky 20% split (reaches \`fractional\`: hashes the bucketing key) —
  and on the mix (20% / 30% / 50%, shuffled); the mix again with a **10,000-tenant** list; and **bulk**:
  all ${APP_FLAGS + 1} flags of the set for one context (\`evaluateAll\` / \`resolveAll\` / a loop over the
  hand-written functions), per call and per flag.
- **Contexts**: ${POOL.toLocaleString('en-US')} per path, parsed from JSON text as a server builds them from a token or a
  body; targetingKeys are UUIDs, prefixed ids, e-mail addresses, ObjectIds and numbers, 1% non-ASCII; 0–4 optional
  attributes (e-mail, plan, groups, country), so the contexts have several shapes.
- **Correctness gate**: before timing, the three must give the same value and variant (Rollgate also the same
  reason) for every seed-flag context of every pool and for every flag on a sample; the run aborts otherwise.
- **As a server runs**: no forced GC anywhere (an engine's garbage is collected on its own time, as in a
  server); before any timing every engine evaluates every flag of the set for thousands of contexts, so the
  type feedback inside each engine is as mixed as in an app with more than one flag.
- **Method**: ${RUNS} separate processes; in each, calibration, then ${ROUNDS} rounds in which every (case,
  implementation) runs one ~${BATCH_MS} ms batch, in an order rotated each round. Time is the **process CPU
  time** (user + system, GC threads included) per evaluation. A ratio is the median over rounds of
  *implementation ÷ hand-written in the same round*, then the median over runs, with the range over runs in
  brackets. Each (case, implementation) has its own timing loop; every result is folded into a checksum.

| | |
|---|---|
| date | ${new Date().toISOString()} |
| node | ${process.version} (${process.platform} ${process.arch}) |
| cpu | ${cpu[0]?.model ?? 'unknown'} × ${cpu.length} (shared with other work: only same-run ratios mean anything) |
| run time | ${seconds} s |

${tbl}

Bars: **${b.met ? 'met' : 'NOT met'}** in this run.

${b.lines.join('\n')}

Rollgate evaluates each of these flags with one generated function (its rule uses only operators that have
a template in \`packages/core/src/codegen.ts\`; see [flag-format.md](flag-format.md#how-a-flag-is-evaluated)).
Where the admin path's time over hand-written goes: the hand-written function is inlined into the timing
loop and reads \`ctx.role\`, a named property load V8 caches per context shape; Rollgate looks the flag up by
key, calls its function (one call site for every flag, so never inlined) and reads \`ctx[key]\` with the key
held as data: on contexts of many shapes that is V8's generic keyed load, about 10 ns more than the named
one here (a build that wrote \`ctx["role"]\` into the generated source measured 2.9× instead of 3.7× on
this path in the same run, and VIP 1.55× instead of 2.0×). The generator does not do that: no value from the
flag set, attribute names included, is ever written into generated source.

Reproduce: \`npm run bench\` (or, after \`npm run build\`, \`node packages/core/bench/evaluate.bench.js\`; rewrites this
section). What the figures were before these methods, and why they differ, is at the end of this file
("Why earlier figures differ").
`;
  writeSection(SECTION, md);
  console.log(`\nwrote ${path.relative(process.cwd(), DOC_PATH)}`);
}

if (process.argv[2] === '--child') runChild();
else main().catch((e) => fail(e.stack || String(e)));
