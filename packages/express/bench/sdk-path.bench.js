'use strict';
// The OpenFeature SDK path: what one `client.getBooleanValue` costs through @openfeature/server-sdk,
// with Rollgate's provider and with a bare provider that returns a constant, and where the time
// goes (a V8 CPU profile, node --cpu-prof). Writes the "## OpenFeature SDK path" section of
// docs/benchmarks.md (run by `npm run bench`).
//
//   node packages/express/bench/sdk-path.bench.js     (after npm run build; ~1 min)
//   BENCH_RUNS=1 BENCH_ROUNDS=5 …                      (quicker, noisier)
//   BENCH_NO_DOC=1 …                                   (print only)
//
// Method as the core benchmark (separate processes, rounds in a random order, process CPU time, no forced
// GC), the app flag set of packages/core/bench/scenario.js warmed with varied contexts, the seed flag
// evaluated for 20,000 varied contexts; ratios against the bare provider in the same round.
// Two more rows measure what the SDK could gain, on the same client code with two changes applied
// to a client instance in this process only: (1) hook stages skipped when no hook is registered;
// (2) the SDK's own `evaluate` as native async/await with object spread (what an es2017+ build of
// the same source gives), plus (1). They are measurements of proposals, not of anything shipped.

const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');
const { fork } = require('node:child_process');
const S = require('../../core/bench/scenario');
const cpuProfile = require('./cpu-profile');

const RUNS = Number(process.env.BENCH_RUNS) || 3;
const ROUNDS = Number(process.env.BENCH_ROUNDS) || 11;
const BATCH_MS = Number(process.env.BENCH_MS) || 40;
const PROFILE_MS = Number(process.env.BENCH_PROFILE_MS) || 3000;
const SECTION = '## OpenFeature SDK path';
const SDK_FILE = require.resolve('@openfeature/server-sdk');

// ---- the clients ---------------------------------------------------------------------------------

const CONSTANT = Object.freeze({ value: true, variant: 'on', reason: 'STATIC' });
/** A provider that does nothing: every evaluation resolves to the same constant, as Rollgate's provider resolves (a resolved promise). */
class BareProvider {
  constructor() {
    this.metadata = { name: 'bare' };
    this.runsOn = 'server';
    this.hooks = [];
  }
  resolveBooleanEvaluation() {
    return Promise.resolve(CONSTANT);
  }
}

/** Proposal 1, on one client instance: a hook stage with no hook returns at once (no async function, no generator, no promise). */
function skipEmptyHookStages(client) {
  const proto = Object.getPrototypeOf(client);
  client.beforeHooks = function (hooks, hookContexts, mergedContext, options) {
    return hooks.length === 0 ? Object.freeze(mergedContext) : proto.beforeHooks.call(this, hooks, hookContexts, mergedContext, options);
  };
  for (const stage of ['afterHooks', 'errorHooks', 'finallyHooks']) {
    client[stage] = function (hooks, ...rest) {
      return hooks.length === 0 ? undefined : proto[stage].call(this, hooks, ...rest);
    };
  }
}

/**
 * Proposal 2, on one client instance: the SDK's own `evaluate` and `getBooleanValue` (1.x, as in its
 * dist) written with native async/await and object spread — what compiling the same source for
 * es2017+ gives — with empty hook stages skipped (proposal 1). Same steps, same order.
 */
function nativeAsync(client) {
  const { MapHookData } = require('@openfeature/core');
  skipEmptyHookStages(client);
  for (const name of ['apiHooksAccessor', 'apiContextAccessor', 'transactionContextAccessor', 'shortCircuitIfNotReady', 'getErrorEvaluationDetails']) {
    if (typeof client[name] !== 'function') return false; // another SDK layout: the row is left out
  }
  client.evaluate = async function (flagKey, resolver, defaultValue, flagType, invocationContext = {}, options = {}) {
    const allHooks = [...this.apiHooksAccessor(), ...this.getHooks(), ...(options.hooks || []), ...(this._provider.hooks || [])];
    const allHooksReversed = [...allHooks].reverse();
    const mergedContext = { ...this.apiContextAccessor(), ...this.transactionContextAccessor(), ...this._context, ...invocationContext };
    const hookContexts = allHooksReversed.map(() =>
      Object.freeze({ flagKey, defaultValue, flagValueType: flagType, clientMetadata: this.metadata, providerMetadata: this._provider.metadata, context: mergedContext, logger: this._logger, hookData: new MapHookData() }),
    );
    let evaluationDetails;
    try {
      const frozenContext = await this.beforeHooks(allHooks, hookContexts, mergedContext, options);
      this.shortCircuitIfNotReady();
      const resolution = await resolver.call(this._provider, flagKey, defaultValue, frozenContext, this._logger);
      const resolutionDetails = { ...resolution, flagMetadata: Object.freeze(resolution.flagMetadata ?? {}), flagKey };
      if (resolutionDetails.errorCode) {
        const { instantiateErrorByErrorCode } = require('@openfeature/core');
        const err = instantiateErrorByErrorCode(resolutionDetails.errorCode, resolutionDetails.errorMessage);
        await this.errorHooks(allHooksReversed, hookContexts, err, options);
        evaluationDetails = this.getErrorEvaluationDetails(flagKey, defaultValue, err, resolutionDetails.flagMetadata);
      } else {
        await this.afterHooks(allHooksReversed, hookContexts, resolutionDetails, options);
        evaluationDetails = resolutionDetails;
      }
    } catch (err) {
      await this.errorHooks(allHooksReversed, hookContexts, err, options);
      evaluationDetails = this.getErrorEvaluationDetails(flagKey, defaultValue, err);
    }
    await this.finallyHooks(allHooksReversed, hookContexts, evaluationDetails, options);
    return evaluationDetails;
  };
  client.getBooleanValue = async function (flagKey, defaultValue, context, options) {
    return (await this.getBooleanDetails(flagKey, defaultValue, context, options)).value;
  };
  return true;
}

async function setUp() {
  const { OpenFeature } = require('@openfeature/server-sdk');
  const { MemoryFlagStore, RollgateProvider } = require('@rollgate/redis');
  const { set } = S.appFlagSet(200, S.TENANTS_50);
  const rollgate = new RollgateProvider({ store: new MemoryFlagStore({ initial: set }) });
  await OpenFeature.setProviderAndWait('rollgate', rollgate);
  await OpenFeature.setProviderAndWait('bare', new BareProvider());
  const pool = S.contexts('mix', 20_000, { seed: 5 });
  for (const ctx of pool.slice(0, 4000)) rollgate.snapshot.evaluateAll(ctx);
  const clients = {
    bare: OpenFeature.getClient('bare'),
    rollgate: OpenFeature.getClient('rollgate'),
    bareSkip: OpenFeature.getClient('bare'),
    bareNative: OpenFeature.getClient('bare'),
    rollgateNative: OpenFeature.getClient('rollgate'),
  };
  if (new Set(Object.values(clients)).size !== Object.keys(clients).length) throw new Error('OpenFeature.getClient returned a shared client: the patched rows would change the others');
  skipEmptyHookStages(clients.bareSkip);
  const native = nativeAsync(clients.bareNative) && nativeAsync(clients.rollgateNative);
  // the same answers on every path, for every context
  const hand = S.handWrittenFor('seed', S.SEED_KEY, set.flags[S.SEED_KEY]);
  for (const ctx of pool.slice(0, 2000)) {
    const want = hand(ctx).value;
    const got = [await clients.rollgate.getBooleanValue(S.SEED_KEY, false, ctx), native ? await clients.rollgateNative.getBooleanValue(S.SEED_KEY, false, ctx) : want];
    if (got.some((v) => v !== want)) throw new Error(`the client answers ${got} instead of ${want} for ${JSON.stringify(ctx)}`);
    for (const c of [clients.bare, clients.bareSkip, native ? clients.bareNative : clients.bare]) if ((await c.getBooleanValue(S.SEED_KEY, false, ctx)) !== true) throw new Error('the bare provider path lost its constant');
  }
  return { OpenFeature, rollgate, clients, pool, native };
}

// ---- timing (a child) ------------------------------------------------------------------------------

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function runChild() {
  const { rollgate, clients, pool, native } = await setUp();
  const { decideFeatureNow, featureRequirement } = require('@rollgate/server');
  const requirement = featureRequirement(S.SEED_KEY);
  const key = S.SEED_KEY;
  const impls = [
    { id: 'bare', name: '`getBooleanValue`, bare provider (constant)', baseline: true, run: (c) => clients.bare.getBooleanValue(key, false, c) },
    { id: 'rollgate', name: '`getBooleanValue`, `RollgateProvider`', run: (c) => clients.rollgate.getBooleanValue(key, false, c) },
    { id: 'bareSkip', name: 'proposal 1: empty hook stages skipped, bare provider', run: (c) => clients.bareSkip.getBooleanValue(key, false, c) },
    ...(native
      ? [
          { id: 'bareNative', name: 'proposal 2: native async + spread, and 1, bare provider', run: (c) => clients.bareNative.getBooleanValue(key, false, c) },
          { id: 'rollgateNative', name: 'proposal 2, `RollgateProvider`', run: (c) => clients.rollgateNative.getBooleanValue(key, false, c) },
        ]
      : []),
    { id: 'direct', name: "the guards' direct path (`decideFeatureNow`, sync)", sync: true, run: (c) => decideFeatureNow(clients.rollgate, requirement, c) },
    { id: 'snapshot', name: 'Rollgate `snapshot.evaluate` alone (sync)', sync: true, run: (c) => rollgate.snapshot.evaluate(key, c) },
  ];
  const batch = async (impl, n) => {
    let j = 0;
    const len = pool.length;
    const c0 = process.cpuUsage();
    if (impl.sync) for (let i = 0; i < n; i++) impl.run(pool[j++ % len]);
    else for (let i = 0; i < n; i++) await impl.run(pool[j++ % len]);
    const c = process.cpuUsage(c0);
    return ((c.user + c.system) * 1000) / n;
  };
  for (const impl of impls) {
    // calibrate: ~BATCH_MS per batch
    let n = 256;
    for (;;) {
      const t = process.hrtime.bigint();
      await batch(impl, n);
      const ns = Number(process.hrtime.bigint() - t);
      if (ns > 20e6) {
        impl.iters = Math.max(64, Math.round((BATCH_MS * 1e6 * n) / ns));
        break;
      }
      n *= 2;
    }
    impl.cpu = [];
  }
  // a fresh random order every round: without forced GC, a batch pays for garbage its predecessor
  // left, so no implementation may always follow the same one
  const rand = S.generator(0x5d4).rand;
  for (let round = 0; round < ROUNDS; round++) {
    const order = [...impls];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const impl of order) impl.cpu.push(await batch(impl, impl.iters));
  }
  const base = impls[0];
  process.send({ impls: impls.map((i) => ({ id: i.id, name: i.name, ns: median(i.cpu), ratio: median(i.cpu.map((x, r) => x / base.cpu[r])) })) }, () => process.exit(0));
}

/** A child run under node --cpu-prof: only the bare-provider loop, timed in a window the profile is cut to. */
async function runProfileChild() {
  const { clients, pool } = await setUp();
  const loop = async (ms) => {
    const until = Date.now() + ms;
    let j = 0;
    while (Date.now() < until) for (let i = 0; i < 1000; i++) await clients.bare.getBooleanValue(S.SEED_KEY, false, pool[j++ % pool.length]);
    return j;
  };
  await loop(500); // warm
  const from = Number(process.hrtime.bigint() / 1000n);
  const n = await loop(PROFILE_MS);
  const to = Number(process.hrtime.bigint() / 1000n);
  process.send({ window: [from, to], n }, () => process.exit(0)); // exiting writes the profile
}

// ---- the profile, grouped so the SDK's maintainers can act on it ---------------------------------------

/** For each line of the SDK's bundle: the top-level helper or class method it belongs to. */
function enclosingNames() {
  const lines = fs.readFileSync(SDK_FILE, 'utf8').split('\n');
  const names = [];
  let current = '(module)';
  for (const line of lines) {
    const helper = /^var (__\w+) = /.exec(line);
    const method = /^ {2}(?:async |static |get |set )*(\w+)\(.*\) \{$/.exec(line);
    if (helper) current = helper[1];
    else if (method) current = method[1];
    else if (/^(var|class|\/\/ src)/.test(line)) current = '(module)';
    names.push(current);
  }
  return names;
}

const GROUPS = [
  ['async', 'down-levelled async: the `__async` helper (a `new Promise`, three closures and a generator per async function; a `Promise.resolve(x).then` per `await`)'],
  ['gc', 'garbage collection (the promises, closures, generators and copies above)'],
  ['spread', 'down-levelled spreads: `__spreadValues` / `__spreadProps` / `__defNormalProp` (contexts merged, resolution copied)'],
  ['hooks', 'the hook stages (`beforeHooks`, `afterHooks`, `finallyHooks`) with no hook registered: their own code'],
  ['evaluate', "the client's own evaluation code (`evaluate`, `getBooleanValue`, context accessors, status checks)"],
  ['provider', 'the provider (here a constant)'],
  ['runtime', 'V8 and Node runtime (microtask queue, `(program)`)'],
  ['other', 'other'],
];

function classify(names) {
  return (frame, where) => {
    if (frame.functionName === '(garbage collector)') return 'gc';
    if (frame.url === `file://${SDK_FILE}` || frame.url === SDK_FILE || where.file.endsWith('server-sdk/dist/cjs/index.js')) {
      const owner = names[frame.lineNumber] ?? '(module)';
      if (owner === '__async') return 'async';
      if (['__spreadValues', '__spreadProps', '__defNormalProp'].includes(owner)) return 'spread';
      if (/^(before|after|error|finally)Hooks$/.test(owner)) return 'hooks';
      return 'evaluate';
    }
    if (where.file.includes('@openfeature/core')) return 'evaluate';
    if (frame.functionName === 'resolveBooleanEvaluation') return 'provider';
    if (!frame.url || frame.url.startsWith('node:')) return 'runtime';
    return 'other';
  };
}

function runProfile() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rollgate-sdk-prof-'));
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['--profile-child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-name=sdk.cpuprofile'] });
    let msg;
    child.on('message', (m) => (msg = m));
    child.on('exit', (code) => {
      if (code !== 0 || !msg) return reject(new Error(`profile run exited with ${code}`));
      const file = path.join(dir, 'sdk.cpuprofile');
      const prof = cpuProfile.load(file, msg.window);
      const idle = cpuProfile.inclusive(prof, (f) => f.functionName === '(idle)');
      const busy = prof.total - idle;
      const groups = new Map(cpuProfile.groups(prof, classify(enclosingNames())));
      groups.delete('runtime');
      const runtime = busy - [...groups.values()].reduce((a, b) => a + b, 0);
      groups.set('runtime', runtime);
      const top = cpuProfile.selfTimes(prof).filter(([k]) => !k.startsWith('(idle)')).slice(0, 12);
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({ busy, groups, top, n: msg.n, perEvalUs: busy / msg.n });
    });
  });
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

const fmtX = (x) => (x >= 10 ? x.toFixed(1) : x.toFixed(2));
const range = (xs) => (xs.length === 1 ? '' : ` (${fmtX(Math.min(...xs))}–${fmtX(Math.max(...xs))})`);
const us = (ns) => (ns / 1000).toFixed(ns < 1000 ? 2 : 1);

async function main() {
  const started = Date.now();
  const runs = [];
  for (let r = 0; r < RUNS; r++) {
    runs.push(await runOnce());
    console.log(`run ${r + 1}/${RUNS} done`);
  }
  const impls = runs[0].impls.map((impl, i) => ({ ...impl, ns: runs.map((r) => r.impls[i].ns), ratio: runs.map((r) => r.impls[i].ratio) }));
  const byId = Object.fromEntries(impls.map((i) => [i.id, i]));
  const rows = ['| path (one evaluation of the seed flag) | CPU µs | × bare provider through the SDK (range over runs) |', '|---|---:|---:|'];
  for (const i of impls) rows.push(`| ${i.baseline ? `**${i.name}** (baseline)` : i.name} | ${us(median(i.ns))} | ${i.baseline ? '1.00×' : `${fmtX(median(i.ratio))}×${range(i.ratio)}`} |`);
  const prof = await runProfile();
  const profRows = ['| where the time goes (bare provider: all of it is the SDK) | share of CPU samples | µs per evaluation |', '|---|---:|---:|'];
  for (const [id, text] of GROUPS) {
    const t = prof.groups.get(id) ?? 0;
    if (t === 0) continue;
    profRows.push(`| ${text} | ${((100 * t) / prof.busy).toFixed(1)}% | ${((t / prof.busy) * prof.perEvalUs).toFixed(2)} |`);
  }
  const topRows = ['| self time | function (file:line in `@openfeature/server-sdk/dist/cjs/index.js` unless named) |', '|---:|---|'];
  for (const [k, t] of prof.top) topRows.push(`| ${((100 * t) / prof.busy).toFixed(1)}% | \`${k.replace('@openfeature/server-sdk/dist/cjs/index.js', 'index.js')}\` |`);
  const sdkVersion = JSON.parse(fs.readFileSync(path.join(path.dirname(SDK_FILE), '../../package.json'), 'utf8')).version;
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  const native = byId.bareNative;
  const md = `${SECTION}

node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length}, ${new Date().toISOString()}; \`@openfeature/server-sdk\` ${sdkVersion}; run time ${seconds} s.

**What one \`client.getBooleanValue\` costs.** The seed flag of the core benchmark, in its app flag set of 201
flags (warmed), for 20,000 varied contexts; through the OpenFeature server SDK with Rollgate's provider, and
with a bare provider that resolves every flag to a constant (a resolved promise, as Rollgate's provider
answers), in the same rounds. Method as the core benchmark: ${RUNS} processes, ${ROUNDS} rounds of ~${BATCH_MS} ms batches in a fresh
random order each round (without forced GC a batch pays for its predecessor's garbage), process CPU time, no forced GC; ratios are medians of same-round quotients, range over runs in brackets.
No hook is registered, no transaction context propagator is set.

${rows.join('\n')}

With Rollgate's provider a \`getBooleanValue\` costs **${fmtX(median(byId.rollgate.ratio))}×** what it costs with a provider that does
nothing (range over runs ${fmtX(Math.min(...byId.rollgate.ratio))}–${fmtX(Math.max(...byId.rollgate.ratio))}×): most of a \`getBooleanValue\` is the SDK's own pipeline,
which costs the same whatever the provider (Rollgate's evaluation alone is the last row). The two "proposal" rows run the same SDK code with changes applied, in this
process only, to one client instance (see below); they measure what the changes would give, not anything shipped.

**The guards' direct path.** This is why \`requireFeature\` (Express) and \`@RequireFeature\` (Nest) do not go through
the client when nothing would observe it: they read the provider's snapshot with the context merged as the
client merges it, and the decision is the one the client would return (a test compares the two on every
outcome). Exactly when it applies — checked on every decision, so a hook added at run time is honoured from the
next one:

- the requirement does not set \`evaluation: 'client'\`;
- the client is the SDK's own (its prototype is the SDK client's: not a wrapper passed as \`client\`);
- no hook is registered on the API (\`OpenFeature.addHooks\`), on the client or on the provider;
- the provider bound to the client's domain is a \`RollgateProvider\` itself, not a subclass;
- and, as on every path, the provider is not NOT_READY, ERROR or FATAL, and within \`maxStalenessMs\` when set.

Otherwise every flag of the requirement is evaluated with \`client.getBooleanDetails\` (or the string/number
variant) and every hook sees it. On the direct path the decision is synchronous: Express calls \`next()\` without a
promise in between (\`decideFeatureNow\` in \`@rollgate/server\`).

**Where the SDK's time goes** — for its maintainers. A separate process runs only the bare-provider loop under
\`node --cpu-prof\` for ${(PROFILE_MS / 1000).toFixed(0)} s after a warm-up (${prof.n.toLocaleString('en-US')} evaluations, ${prof.perEvalUs.toFixed(2)} µs of CPU samples each, profiler
included); the samples are cut to the timed window and each one is attributed to the function of the SDK's
bundle (\`dist/cjs/index.js\`, built by esbuild with \`--target=es2015\`) it was taken in.

${profRows.join('\n')}

The functions with the most self time:

${topRows.join('\n')}

What it comes to. With \`--target=es2015\`, esbuild turns every \`async\` function into the \`__async\` helper: a
\`new Promise\`, a generator and three closures per call, and one \`Promise.resolve(x).then(…)\` per \`await\`. One
\`getBooleanValue\` with no hook runs five of them — \`getBooleanValue\`, \`evaluate\`, \`beforeHooks\`, \`afterHooks\`,
\`finallyHooks\` — and \`evaluate\` awaits each hook stage although each loops over an empty list. Object spread is
down-levelled too: \`mergeContexts\` copies four contexts property by property through \`__defNormalProp\` (a
\`key in obj\` test and a store each), and the resolution is copied with \`__spreadProps\`, which builds and applies
a property descriptor map. Most of the garbage collection above is these promises, generators, closures and copies.

Two changes, measured above on the same code:

1. **Skip hook stages that have nothing to run**: in \`evaluate\`, call \`beforeHooks\` / \`afterHooks\` /
   \`errorHooks\` / \`finallyHooks\` only when \`allHooks.length > 0\` (with none, \`beforeHooks\` only freezes the merged
   context). No behaviour changes: an empty stage has no effect. Measured: **${fmtX(median(byId.bareSkip.ratio))}×** the current cost.
${native ? `2. **Build for a target with native async functions and object spread** (es2017 / es2018; every Node the SDK
   supports has both), so that \`await\` is V8's own and spreads are \`CloneObjectIC\` fast paths. The row
   above runs the SDK's \`evaluate\` and \`getBooleanValue\` source as native async/await and spread, with change 1:
   **${fmtX(median(native.ratio))}×** the current cost; with Rollgate's provider ${us(median(byId.rollgateNative.ns))} µs instead of ${us(median(byId.rollgate.ns))} µs.` : '2. (The native-async row was left out: this SDK version\'s client has another internal layout.)'}

Reproduce: \`npm run bench\` (or, after \`npm run build\`, \`node packages/express/bench/sdk-path.bench.js\`; rewrites this
section; \`node packages/express/bench/cpu-profile.js <file.cpuprofile>\` prints any profile the same way).
`;
  console.log(md);
  if (!process.env.BENCH_NO_DOC) {
    const { writeSection } = require('../../../bench/doc-section');
    writeSection(SECTION, md);
  }
}

if (process.argv[2] === '--child') runChild().catch((e) => (console.error(e), process.exit(1)));
else if (process.argv[2] === '--profile-child') runProfileChild().catch((e) => (console.error(e), process.exit(1)));
else main().then(() => process.exit(0), (e) => (console.error(e), process.exit(1)));
