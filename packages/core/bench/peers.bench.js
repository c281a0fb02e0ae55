'use strict';
// Peer table: Rollgate against the evaluation engines of other flag systems, in-process, on the same
// rule and contexts (`npm run bench:peers`; writes the "## Peers" section of docs/benchmarks.md).
//
//   npm run bench:peers                              (builds, then runs this; ~2 min)
//   node packages/core/bench/peers.bench.js          (after npm run build)
//   BENCH_RUNS=1 BENCH_ROUNDS=5 …                    (quicker, noisier)
//   BENCH_NO_DOC=1 …                                 (print only)
//
// Peers (devDependencies of the repository root, never of a published package):
//  - @openfeature/flagd-core: flagd's JavaScript evaluator, the same flag JSON as Rollgate;
//  - @growthbook/growthbook: GrowthBookClient (the multi-user server client), features given with
//    initSync (no clientKey, no streaming, no polling), evaluated with isOn(key, { attributes });
//  - unleash-client: the SDK's own Repository loading a bootstrap (`bootstrap.data`, in-memory
//    storage) and nothing else — Unleash's start() always fetches from its server once, so the
//    repository's start is the bootstrap load; metrics disabled; evaluated with isEnabled(key, ctx);
//  - @launchdarkly/node-server-sdk: init() with the TestData data source (flags given as LaunchDarkly
//    flag JSON: rules and a percentage rollout), events and diagnostics off; evaluated with
//    `await client.variation(key, ctx, false)` (its only server-side evaluation API is async).
// LaunchDarkly's `offline: true` is not used: in offline mode every evaluation returns the default.
// No network: every way out of the process (sockets, DNS, http/https, fetch) is replaced before the
// SDKs load by a function that records the attempt and throws; the bench fails if any was made.
//
// Method: as evaluate.bench.js (which see): separate processes, alternating rounds, CPU time, no
// forced GC, every engine warmed on an app's flag set of several shapes before timing; ratios
// against the hand-written function in the same round. Each engine gets each context in its own
// form (GrowthBook { attributes }, Unleash { userId, properties }, LaunchDarkly { kind, key, … }),
// built once before timing, as a server builds it once per request.

const os = require('node:os');
const path = require('node:path');
const { fork } = require('node:child_process');

const RUNS = Number(process.env.BENCH_RUNS) || 3;
const ROUNDS = Number(process.env.BENCH_ROUNDS) || 15;
const BATCH_MS = Number(process.env.BENCH_MS) || 40;
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS) || 250;
const POOL = 20_000;
const APP_FLAGS = 200;
const SECTION = '## Peers';
const SPLIT_TOLERANCE = 0.01; // the split fraction of every engine within 1 percentage point of 20%

const PEERS = {
  flagd: '@openfeature/flagd-core',
  growthbook: '@growthbook/growthbook',
  unleash: 'unleash-client',
  launchdarkly: '@launchdarkly/node-server-sdk',
};

function fail(message) {
  console.error(`\nBENCHMARK ABORTED: ${message}`);
  process.exit(1);
}

// ---- no network ------------------------------------------------------------------------------------

const attempts = [];
function forbidNetwork() {
  const refuse = (what) =>
    function refused(...args) {
      const target = typeof args[0] === 'string' ? args[0] : args[0] && typeof args[0] === 'object' ? args[0].href ?? args[0].host ?? args[0].hostname ?? args[0].path ?? JSON.stringify(args[0]).slice(0, 80) : String(args[0]);
      attempts.push(`${what} ${target}`);
      throw new Error(`benchmark: no network (${what} ${target})`);
    };
  const net = require('node:net');
  net.Socket.prototype.connect = refuse('net.Socket.connect');
  net.connect = net.createConnection = refuse('net.connect');
  const tls = require('node:tls');
  tls.connect = refuse('tls.connect');
  const dns = require('node:dns');
  dns.lookup = refuse('dns.lookup');
  dns.promises.lookup = refuse('dns.promises.lookup');
  for (const mod of ['node:http', 'node:https']) {
    const m = require(mod);
    m.request = refuse(`${mod}.request`);
    m.get = refuse(`${mod}.get`);
  }
  globalThis.fetch = refuse('fetch');
}

// ---- the rule in each peer's format ----------------------------------------------------------------

const STAFF = '@example.com';

function growthbookFeature(shape, key, flag) {
  switch (shape) {
    case 'seed':
      return {
        defaultValue: false,
        rules: [
          { condition: { role: 'admin' }, force: true },
          { condition: { tenant: { $in: flag.targeting.if[2].in[1] } }, force: true },
          { force: true, coverage: 0.2, hashAttribute: 'targetingKey' },
        ],
      };
    case 'banner':
      return { defaultValue: 'Hello', rules: [{ condition: { email: { $regex: '@example\\.com$' } }, force: 'Hi team' }, { force: 'Welcome', coverage: 0.5, hashAttribute: 'targetingKey' }] };
    case 'rate':
      return { defaultValue: 1000, rules: [{ condition: { requests: { $lt: 100 } }, force: 10 }] };
    case 'static':
      return { defaultValue: 'Get started' };
    case 'beta':
      return { defaultValue: false, rules: [{ condition: { groups: { $elemMatch: { $eq: 'beta' } } }, force: true }] };
    case 'plan':
      return { defaultValue: flag.variants.no, rules: [{ condition: { plan: 'enterprise' }, force: flag.variants.yes }] };
    default:
      throw new Error(shape);
  }
}

function launchdarklyFlag(shape, key, flag) {
  const clause = (attribute, op, values) => ({ contextKind: 'user', attribute, op, values, negate: false });
  const rule = (id, clauses, variation) => ({ id, clauses, variation, trackEvents: false });
  const base = { key, version: 1, on: true, targets: [], contextTargets: [], prerequisites: [], salt: `salt-${key}`, offVariation: 1, trackEvents: false, trackEventsFallthrough: false, deleted: false };
  const rollout = (weights) => ({ rollout: { variations: weights.map(([variation, weight]) => ({ variation, weight })) } });
  switch (shape) {
    case 'seed':
      return {
        ...base,
        variations: [true, false],
        rules: [rule('admin', [clause('role', 'in', ['admin'])], 0), rule('vip', [clause('tenant', 'in', flag.targeting.if[2].in[1])], 0)],
        fallthrough: rollout([[0, 20_000], [1, 80_000]]),
      };
    case 'banner':
      return { ...base, variations: ['Hi team', 'Welcome', 'Hello'], offVariation: 2, rules: [rule('staff', [clause('email', 'endsWith', [STAFF])], 0)], fallthrough: rollout([[1, 50_000], [2, 50_000]]) };
    case 'rate':
      return { ...base, variations: [10, 1000], rules: [rule('low', [clause('requests', 'lessThan', [100])], 0)], fallthrough: { variation: 1 } };
    case 'static':
      return { ...base, variations: ['Buy now', 'Get started'], rules: [], fallthrough: { variation: 1 } };
    case 'beta':
      return { ...base, variations: [true, false], rules: [rule('beta', [clause('groups', 'in', ['beta'])], 0)], fallthrough: { variation: 1 } };
    case 'plan':
      return { ...base, variations: [flag.variants.yes, flag.variants.no], rules: [rule('ent', [clause('plan', 'in', ['enterprise'])], 0)], fallthrough: { variation: 1 } };
    default:
      throw new Error(shape);
  }
}

/** Unleash toggles are on or off: string, number and object flags become "is the first variant served". */
function unleashFeature(shape, key, flag) {
  // list operators read `values`; numeric ones (NUM_LT …) read the single `value`
  const constraint = (contextName, operator, values) => ({ contextName, operator, values, value: values[0], inverted: false, caseInsensitive: false });
  const strategy = (constraints, name = 'default', parameters = {}) => ({ name, constraints, parameters });
  const rollout = (pct) => strategy([], 'flexibleRollout', { rollout: String(pct), stickiness: 'userId', groupId: key });
  const feature = (strategies) => ({ name: key, enabled: true, type: 'release', project: 'default', stale: false, impressionData: false, strategies, variants: [] });
  switch (shape) {
    case 'seed':
      return feature([strategy([constraint('role', 'IN', ['admin'])]), strategy([constraint('tenant', 'IN', flag.targeting.if[2].in[1])]), rollout(20)]);
    case 'banner':
      return feature([strategy([constraint('email', 'STR_ENDS_WITH', [STAFF])]), rollout(50)]);
    case 'rate':
      return feature([strategy([constraint('requests', 'NUM_LT', ['100'])])]);
    case 'static': // serves its default variant, the second: off
      return { ...feature([strategy([])]), enabled: false };
    case 'beta': // Unleash context values are strings: the groups travel as "a,b,c"
      return feature([strategy([constraint('groups', 'STR_CONTAINS', ['beta'])])]);
    case 'plan':
      return feature([strategy([constraint('plan', 'IN', ['enterprise'])])]);
    default:
      throw new Error(shape);
  }
}

// ---- contexts in each peer's form ------------------------------------------------------------------

const gbContext = (ctx) => ({ attributes: ctx });
function ldContext(ctx) {
  const { targetingKey, ...rest } = ctx;
  return { kind: 'user', key: targetingKey, ...rest };
}
function unleashContext(ctx) {
  const { targetingKey, ...rest } = ctx;
  const properties = {};
  for (const [k, v] of Object.entries(rest)) properties[k] = Array.isArray(v) ? v.join(',') : String(v);
  return { userId: targetingKey, properties };
}

// ---- one run (a child process) ----------------------------------------------------------------------

function makeLoop(callExpr, resultExpr, isAsync) {
  // eslint-disable-next-line no-new-func
  return new Function(
    'target',
    'pool',
    'n',
    `${isAsync ? 'return (async () => {' : ''}
     let sum = 0;
     const len = pool.length;
     let j = 0;
     for (let i = 0; i < n; i++) {
       const ctx = pool[j];
       if (++j === len) j = 0;
       const r = ${isAsync ? 'await ' : ''}${callExpr};
       sum += ${resultExpr};
     }
     return sum;
     ${isAsync ? '})();' : ''}`,
  );
}

let checksum = 0;
async function timeBatch(impl, n) {
  const c0 = process.cpuUsage();
  const sum = await impl.loop(impl.target, impl.pool, n);
  const c = process.cpuUsage(c0);
  checksum = (checksum + sum) % 1_000_000_007;
  return ((c.user + c.system) * 1000) / n;
}

async function calibrate(impl) {
  let n = 64;
  let t = 0;
  const deadline = Date.now() + WARMUP_MS;
  for (;;) {
    const w0 = process.hrtime.bigint();
    await impl.loop(impl.target, impl.pool, n);
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

const SILENT = { debug() {}, info() {}, warn() {}, error() {} };

/** Every engine on one app flag set: { id → { name, single(ctxForm) … } }. */
async function engines(app) {
  const S = require('./scenario');
  const keys = Object.keys(app.set.flags);
  const core = require('../dist');
  const { snapshot, errors } = core.compileFlagSet(app.set);
  if (errors.length) fail(`rollgate rejected the flag set: ${JSON.stringify(errors.slice(0, 3))}`);

  const { FlagdCore } = require('@openfeature/flagd-core');
  const flagd = new FlagdCore(undefined, SILENT);
  flagd.setConfigurations(JSON.stringify(app.set));

  const { GrowthBookClient } = require('@growthbook/growthbook');
  const features = {};
  for (const key of keys) features[key] = growthbookFeature(app.shapes[key], key, app.set.flags[key]);
  const gb = new GrowthBookClient({}).initSync({ payload: { features }, streaming: false });

  const { Unleash, InMemStorageProvider } = require('unleash-client');
  const Repository = require('unleash-client/lib/repository').default;
  const { resolveBootstrapProvider } = require('unleash-client/lib/repository/bootstrap-provider');
  const data = keys.map((key) => unleashFeature(app.shapes[key], key, app.set.flags[key]));
  const repository = new Repository({
    url: 'http://unleash.invalid/api/',
    appName: 'bench',
    instanceId: 'bench',
    connectionId: 'bench',
    refreshInterval: 0,
    bootstrapProvider: resolveBootstrapProvider({ data }, 'bench', 'bench'),
    storageProvider: new InMemStorageProvider(),
    mode: { type: 'polling', format: 'full' },
  });
  repository.start = () => repository.loadBootstrap(); // the bootstrap, never the server
  const unleash = new Unleash({ url: 'http://unleash.invalid/api/', appName: 'bench', repository, disableMetrics: true, refreshInterval: 0, skipInstanceCountWarning: true });
  unleash.on('error', (e) => fail(`unleash: ${e.message}`));
  await new Promise((resolve) => (unleash.isSynchronized() ? resolve() : unleash.once('ready', resolve)));

  const ldsdk = require('@launchdarkly/node-server-sdk');
  const td = new ldsdk.integrations.TestData();
  for (const key of keys) await td.usePreconfiguredFlag(launchdarklyFlag(app.shapes[key], key, app.set.flags[key]));
  const ld = ldsdk.init('sdk-bench-offline', { updateProcessor: td.getFactory(), sendEvents: false, diagnosticOptOut: true, logger: SILENT });
  await ld.waitForInitialization({ timeout: 10 });

  return {
    keys,
    close: async () => {
      unleash.destroy();
      gb.destroy();
      ld.close();
    },
    rollgate: { name: 'Rollgate `evaluate`', form: (c) => c, target: snapshot, call: `target.evaluate(KEY, ctx)`, value: '(r.value === true ? 1 : 0)', one: (k, c) => snapshot.evaluate(k, c).value },
    flagd: { name: 'flagd-core `resolve`', form: (c) => c, target: flagd, call: `target.resolve('boolean', KEY, false, ctx)`, value: '(r.value === true ? 1 : 0)', one: (k, c) => flagd.resolve('boolean', k, false, c).value, anyType: (k, c, t) => flagd.resolve(t, k, undefined, c).value },
    growthbook: { name: 'GrowthBook `isOn`', form: gbContext, target: gb, call: 'target.isOn(KEY, ctx)', value: '(r === true ? 1 : 0)', one: (k, c) => gb.isOn(k, c), anyType: (k, c) => gb.evalFeature(k, c).value },
    unleash: { name: 'Unleash `isEnabled`', form: unleashContext, target: unleash, call: 'target.isEnabled(KEY, ctx)', value: '(r === true ? 1 : 0)', one: (k, c) => unleash.isEnabled(k, c) },
    launchdarkly: { name: 'LaunchDarkly `variation` (async)', form: ldContext, target: ld, call: 'target.variation(KEY, ctx, false)', value: '(r === true ? 1 : 0)', isAsync: true, one: (k, c) => ld.variation(k, c, false), anyType: (k, c) => ld.variation(k, c, null) },
    S,
  };
}

const IMPLS = ['rollgate', 'flagd', 'growthbook', 'unleash', 'launchdarkly'];

/** Deterministic answers of the other shapes (no split involved): the translations must give them. */
function expectedOf(shape, flag, ctx) {
  const v = flag.variants;
  switch (shape) {
    case 'rate':
      return ctx.requests < 100 ? v.low : v.high;
    case 'static':
      return v.v2;
    case 'beta':
      return Array.isArray(ctx.groups) && ctx.groups.includes('beta');
    case 'plan':
      return ctx.plan === 'enterprise' ? v.yes : v.no;
    case 'banner':
      return typeof ctx.email === 'string' && ctx.email.endsWith(STAFF) ? v.staff : undefined; // split otherwise
    default:
      return undefined;
  }
}

async function checkAgreement(label, e, app, pools, report) {
  const { S } = e;
  const seedHand = S.handWrittenFor('seed', S.SEED_KEY, app.set.flags[S.SEED_KEY]);
  const tenants = app.set.flags[S.SEED_KEY].targeting.if[2].in[1];
  for (const id of IMPLS) {
    const eng = e[id];
    const on = { admin: 0, vip: 0, split: 0 };
    const n = { admin: 0, vip: 0, split: 0 };
    for (const pool of pools) {
      for (const ctx of pool) {
        const p = S.pathOf(ctx, tenants);
        const got = await eng.one(S.SEED_KEY, eng.form(ctx));
        if (typeof got !== 'boolean') fail(`${label}: ${id} answered ${JSON.stringify(got)} for ${JSON.stringify(ctx)}`);
        n[p]++;
        if (got) on[p]++;
        if (p !== 'split' && got !== true) fail(`${label}: ${id} says off for a context that must be on (${p}): ${JSON.stringify(ctx)}`);
        if (p !== 'split' && seedHand(ctx).value !== true) fail(`${label}: the hand-written function disagrees on ${JSON.stringify(ctx)}`);
      }
    }
    const fraction = on.split / n.split;
    if (Math.abs(fraction - 0.2) > SPLIT_TOLERANCE) fail(`${label}: ${id} puts ${(fraction * 100).toFixed(2)}% of ${n.split} split contexts in the 20% (tolerance ±${SPLIT_TOLERANCE * 100} points)`);
    report.push({ label, id, admin: n.admin, vip: n.vip, split: n.split, fraction });
  }
}

/** The other shapes' deterministic answers, on a sample: the translations are the same rules. */
async function checkShapes(e, app, sample) {
  let compared = 0;
  for (const key of e.keys) {
    const shape = app.shapes[key];
    if (shape === 'seed') continue;
    const flag = app.set.flags[key];
    for (const ctx of sample) {
      const want = expectedOf(shape, flag, ctx);
      if (want === undefined) continue;
      const type = typeof want === 'object' ? 'object' : typeof want;
      const answers = {
        rollgate: e.rollgate.one(key, ctx),
        flagd: /[^\x00-\x7f]/.test(ctx.targetingKey) ? want : e.flagd.anyType(key, ctx, type),
        growthbook: e.growthbook.anyType(key, gbContext(ctx)),
        launchdarkly: await e.launchdarkly.anyType(key, ldContext(ctx)),
        // Unleash is on/off: on means the first variant
        unleash: e.unleash.one(key, unleashContext(ctx)) === (JSON.stringify(want) === JSON.stringify(Object.values(flag.variants)[0])) ? want : '(differs)',
      };
      for (const [id, got] of Object.entries(answers)) {
        if (JSON.stringify(got) !== JSON.stringify(want)) fail(`${id} answers ${JSON.stringify(got)} instead of ${JSON.stringify(want)} for ${key} (${shape}) and ${JSON.stringify(ctx)}`);
      }
      compared++;
    }
  }
  return compared;
}

async function runChild() {
  forbidNetwork();
  const S = require('./scenario');
  const app = S.appFlagSet(APP_FLAGS, S.TENANTS_50);
  const app10k = S.appFlagSet(APP_FLAGS, S.TENANTS_10K);
  const e = await engines(app);
  const e10k = await engines(app10k);
  const pools = {
    admin: S.contexts('admin', POOL),
    vip: S.contexts('vip', POOL),
    split: S.contexts('split', POOL),
    mix: S.contexts('mix', POOL),
    mix10k: S.contexts('mix', POOL, { tenants: S.TENANTS_10K, seed: 2 }),
  };
  const agreement = [];
  await checkAgreement('50-tenant list', e, app, [pools.admin, pools.vip, pools.split, pools.mix], agreement);
  await checkAgreement('10,000-tenant list', e10k, app10k, [pools.mix10k], agreement);
  const shapesCompared = await checkShapes(e, app, pools.mix.slice(0, 500));

  // warm-up as an app: every flag of the set, every engine, thousands of varied contexts
  for (const [eng, warm] of [[e, pools.mix.slice(0, 3000)], [e10k, pools.mix10k.slice(0, 1000)]]) {
    for (const ctx of warm) {
      for (const id of IMPLS) {
        const c = eng[id].form(ctx);
        for (const key of eng.keys) await eng[id].one(key, c);
      }
    }
  }

  const hand = S.handWrittenFor('seed', S.SEED_KEY, app.set.flags[S.SEED_KEY]);
  const hand10k = S.handWrittenFor('seed', S.SEED_KEY, app10k.set.flags[S.SEED_KEY]);
  const key = JSON.stringify(S.SEED_KEY);
  const caseOf = (id, title, pool, eng, h) => ({
    id,
    title,
    impls: [
      { id: 'hand', name: 'hand-written', baseline: true, target: h, pool, loop: makeLoop('target(ctx)', '(r.value === true ? 1 : 0)') },
      ...IMPLS.map((impl) => ({ id: impl, name: eng[impl].name, target: eng[impl].target, pool: pool.map(eng[impl].form), loop: makeLoop(eng[impl].call.replace('KEY', key), eng[impl].value, eng[impl].isAsync) })),
    ],
  });
  const cases = [
    caseOf('admin', 'admin', pools.admin, e, hand),
    caseOf('vip', 'VIP tenant (50-tenant list)', pools.vip, e, hand),
    caseOf('split', 'sticky 20% split', pools.split, e, hand),
    caseOf('mix', 'mix (20% admin, 30% VIP, 50% split)', pools.mix, e, hand),
    caseOf('mix10k', 'mix, 10,000-tenant list', pools.mix10k, e10k, hand10k),
  ];
  const batches = cases.flatMap((c) => c.impls);
  for (const impl of batches) {
    await calibrate(impl);
    impl.cpu = [];
  }
  // a fresh random order every round: without forced GC, a batch pays for garbage its predecessor
  // left, so no implementation may always follow the same one
  const rand = S.generator(0x9ee5).rand;
  for (let round = 0; round < ROUNDS; round++) {
    const order = [...batches];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const impl of order) impl.cpu.push(await timeBatch(impl, impl.iters));
  }
  await e.close();
  await e10k.close();
  await new Promise((resolve) => setTimeout(resolve, 200)); // anything an SDK scheduled gets its chance to try the network
  if (attempts.length) fail(`an SDK tried to reach the network: ${attempts.slice(0, 5).join('; ')}`);
  const out = cases.map((c) => {
    const base = c.impls[0];
    return { id: c.id, title: c.title, impls: c.impls.map((i) => ({ id: i.id, name: i.name, ns: median(i.cpu), ratio: median(i.cpu.map((s, r) => s / base.cpu[r])) })) };
  });
  // a 10,000-tenant list against the 50-tenant one, per engine: median over rounds of mix10k ÷ mix
  const mix = cases.find((c) => c.id === 'mix');
  const mix10k = cases.find((c) => c.id === 'mix10k');
  const growth = mix.impls.map((i, ii) => ({ id: i.id, ratio: median(mix10k.impls[ii].cpu.map((s, r) => s / i.cpu[r])) }));
  process.send({ cases: out, growth, agreement, shapesCompared, checksum });
}

// ---- the parent ------------------------------------------------------------------------------------

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

function versionOf(pkg) {
  try {
    return require(`${pkg}/package.json`).version;
  } catch {
    // packages whose exports hide package.json
    const fs = require('node:fs');
    const dir = path.dirname(require.resolve(pkg));
    for (let d = dir; d !== path.dirname(d); d = path.dirname(d)) {
      const f = path.join(d, 'package.json');
      if (fs.existsSync(f)) {
        const p = JSON.parse(fs.readFileSync(f, 'utf8'));
        if (p.name === pkg) return p.version;
      }
    }
    return '?';
  }
}

async function main() {
  const started = Date.now();
  const cpu = os.cpus();
  console.log(`Node ${process.version}, ${cpu[0]?.model ?? 'unknown CPU'} × ${cpu.length}; ${RUNS} runs × ${ROUNDS} rounds × ~${BATCH_MS} ms per implementation\n`);
  const runs = [];
  for (let r = 0; r < RUNS; r++) {
    runs.push(await runOnce());
    console.log(`run ${r + 1}/${RUNS} done`);
  }
  const cases = runs[0].cases.map((c, ci) => ({
    ...c,
    impls: c.impls.map((impl, ii) => ({ ...impl, ns: runs.map((r) => r.cases[ci].impls[ii].ns), ratio: runs.map((r) => r.cases[ci].impls[ii].ratio) })),
  }));
  const lines = ['| case | implementation | CPU ns / evaluation | × hand-written (range over runs) | × Rollgate (range) |', '|---|---|---:|---:|---:|'];
  for (const c of cases) {
    const rg = c.impls.find((i) => i.id === 'rollgate');
    for (const impl of c.impls) {
      const vsRg = impl.ratio.map((x, r) => x / rg.ratio[r]);
      const name = impl.id === 'hand' ? '**hand-written** (baseline)' : impl.id === 'rollgate' ? `**${impl.name}**` : impl.name;
      const x = impl.id === 'hand' ? '1.00×' : `${fmtX(median(impl.ratio))}×${range(impl.ratio)}`;
      const y = impl.id === 'hand' || impl.id === 'rollgate' ? '' : `**${fmtX(median(vsRg))}×**${range(vsRg)}`;
      lines.push(`| ${c.title} | ${name} | ${fmtNs(median(impl.ns))} | ${x} | ${y} |`);
    }
  }
  const table = lines.join('\n');
  const growthRows = ['| implementation | mix with 10,000 tenants ÷ mix with 50 (range over runs) |', '|---|---:|'];
  for (let i = 0; i < runs[0].growth.length; i++) {
    const g = runs.map((r) => r.growth[i].ratio);
    const impl = cases[0].impls[i];
    growthRows.push(`| ${impl.id === 'hand' ? 'hand-written' : impl.name} | ${fmtX(median(g))}×${range(g)} |`);
  }
  const growth = growthRows.join('\n');
  const agreeRows = ['| flag | engine | admin contexts on | VIP contexts on | split contexts on |', '|---|---|---:|---:|---:|'];
  for (const a of runs[0].agreement) {
    const name = cases[0].impls.find((i) => i.id === a.id).name.replace(/ `.*$/, '');
    agreeRows.push(`| ${a.label} | ${name} | ${a.admin ? `all ${a.admin.toLocaleString('en-US')}` : '—'} | ${a.vip ? `all ${a.vip.toLocaleString('en-US')}` : '—'} | ${(a.fraction * 100).toFixed(2)}% of ${a.split.toLocaleString('en-US')} |`);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  console.log(`\n${table}\n\n${growth}\n\n${agreeRows.join('\n')}\n(${seconds} s)`);
  if (process.env.BENCH_NO_DOC) return;
  const { writeSection, DOC_PATH } = require('../../../bench/doc-section');
  const versions = Object.entries(PEERS).map(([, pkg]) => `\`${pkg}\` ${versionOf(pkg)}`).join(', ');
  const md = `${SECTION}

Rollgate against the in-process evaluators of other flag systems — ${versions} — on the seed
flag of the core benchmark above (admin OR VIP tenant OR sticky 20%), written in each system's own format,
and the same contexts. The hand-written function is the baseline again (ratio 1.0), measured in the same
rounds, so every figure is also comparable with the core table.

- **Each peer as its documentation runs it, with no server**: flagd-core with the same flag JSON as
  Rollgate; GrowthBook's \`GrowthBookClient\` (its multi-user server client) given the features with
  \`initSync\` (no client key, no streaming, no polling), \`isOn(key, { attributes })\`; Unleash's SDK with its
  own repository loading \`bootstrap.data\` into in-memory storage, metrics off, \`isEnabled(key, context)\` (its
  \`start()\` always fetches from the Unleash server once, so the repository's start is given the bootstrap
  load alone); LaunchDarkly's server SDK on its \`TestData\` data source with the flag as LaunchDarkly flag JSON
  (two rules and a 20/80 rollout), events and diagnostics off, \`await client.variation(key, context, false)\`
  — its evaluation calls answer asynchronously, by a promise or a callback (LaunchDarkly's \`offline: true\` would answer the
  default for every flag).
- **No network**: before any SDK loads, sockets, DNS, http/https and \`fetch\` are replaced by a function that
  records the attempt and throws; the run fails if any SDK tried.
- **The rules agree**: before timing, every engine is asked about every admin and VIP context of the pools
  (all must be on), and the share of split contexts it turns on must be within ±${SPLIT_TOLERANCE * 100} point of 20% (each
  system hashes differently — flagd and Rollgate murmur3 of flag key + targeting key, GrowthBook FNV-1a,
  Unleash murmur3 of group id + user id, LaunchDarkly SHA-1 of key, salt and user key — so which users are in
  the 20% differs, and only the share is comparable). The other five shapes' answers that involve no split
  are compared too (${runs[0].shapesCompared.toLocaleString('en-US')} evaluations). Unleash toggles are on or off, so its flags with
  string, number or object variants answer "is the first variant served".
- **As a server runs**: each engine holds the same app flag set as in the core benchmark (${APP_FLAGS + 1} flags, six shapes,
  in its own format) and evaluates all of them for thousands of contexts before timing; each engine gets each
  context in its own form (GrowthBook \`{ attributes }\`, Unleash \`{ userId, properties }\` with string values,
  LaunchDarkly \`{ kind: 'user', key, … }\`), built before timing as a server builds it once per request.
- **Method**: as the core benchmark — ${RUNS} processes, ${ROUNDS} rounds of ~${BATCH_MS} ms batches, process CPU time, no
  forced GC, the order of the batches drawn afresh each round (without forced GC a batch pays for
  the garbage of the one before it, so no engine may always follow the same one); a ratio is the median over rounds of the same-round quotient, then the median over
  runs (range over runs in brackets).

| | |
|---|---|
| date | ${new Date().toISOString()} |
| node | ${process.version} (${process.platform} ${process.arch}) |
| cpu | ${cpu[0]?.model ?? 'unknown'} × ${cpu.length} (shared with other work: only same-run ratios mean anything) |
| run time | ${seconds} s |

${table}

**A 10,000-tenant list**: each engine's time on the mix with a 10,000-tenant list ÷ its time on the mix with
the 50-tenant list (same contexts' shape, same rounds).

${growth}

**Agreement** (run 1; every run checks the same):

${agreeRows.join('\n')}

Reproduce: \`npm run bench:peers\` (builds, then runs \`node packages/core/bench/peers.bench.js\`; rewrites this
section). It is not part of \`npm run bench\`: it adds about ${Math.round(Number(seconds) / 10) * 10} s and four SDKs that only
this table needs.
`;
  writeSection(SECTION, md);
  console.log(`\nwrote ${path.relative(process.cwd(), DOC_PATH)}`);
}

if (process.argv[2] === '--child') runChild().catch((e) => fail(e.stack || String(e)));
else main().catch((e) => fail(e.stack || String(e)));
