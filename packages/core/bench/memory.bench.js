'use strict';
// Memory and compile time of a whole flag set: 10,000 and 100,000 flags (the seed flag and flags of
// the other shapes of scenario.js, cycling), for Rollgate and @openfeature/flagd-core, each
// measurement in a fresh process.
//
//   node packages/core/bench/memory.bench.js          (after npm run build; run by npm run bench)
//   BENCH_COMPARE=/path/to/other/core/dist …          (adds that build of @rollgate/core)
//   BENCH_NO_DOC=1 …                                  (print only)
//
// Retained heap: heapUsed after a full GC with the compiled set held, minus heapUsed after a full GC
// before it was built (the JSON text held in both readings). Compile time: from the JSON text
// to a usable set (parse, validation, compilation), median of 3 compilations in the process.

const path = require('node:path');
const { fork } = require('node:child_process');

const SIZES = (process.env.BENCH_SIZES || '10000,100000').split(',').map(Number);
const COMPARE = process.env.BENCH_COMPARE;

function flagSetText(n) {
  const S = require('./scenario');
  return JSON.stringify(S.appFlagSet(n - 1).set);
}

function child(impl, n) {
  const v8 = require('node:v8');
  const vm = require('node:vm');
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  const text = flagSetText(n);
  const heap = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };
  let load;
  if (impl === 'json') {
    load = () => JSON.parse(text);
  } else if (impl === 'flagd') {
    const { FlagdCore } = require('@openfeature/flagd-core');
    const silent = { debug() {}, info() {}, warn() {}, error() {} };
    load = () => {
      const fc = new FlagdCore(undefined, silent);
      fc.setConfigurations(text);
      return fc;
    };
  } else {
    const core = require(impl === 'compare' ? path.resolve(COMPARE) : '../dist');
    const limits = { maxFlags: n, maxInputLength: text.length };
    load = () => {
      const { snapshot, errors } = core.compileFlagSet(text, { limits });
      if (errors.length) throw new Error(`rejected: ${JSON.stringify(errors.slice(0, 2))}`);
      if (snapshot.keys().length !== n) throw new Error('not every flag compiled');
      return snapshot;
    };
  }
  // Retained heap: after a full GC with one set held, minus before it was built (modules and the JSON
  // text already loaded). Measured on the first build, before any other: dropping a set and
  // reading the heap again undercounts an implementation that keeps module-level caches (flagd-core
  // read as 0 that way).
  const before = heap();
  const times = [];
  let t0 = process.hrtime.bigint();
  let held = load();
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  const withSet = heap();
  // a flagd-core or Rollgate set evaluates: check it is alive and usable
  if (impl !== 'json') {
    const ctx = { targetingKey: 'user-1', role: 'member', tenant: 'x', requests: 5 };
    const r = impl === 'flagd' ? held.resolve('boolean', 'fast-payment', false, ctx) : held.evaluate('fast-payment', ctx);
    if (typeof r.value !== 'boolean') throw new Error('the compiled set does not evaluate');
  }
  for (let i = 0; i < 2; i++) {
    held = undefined;
    heap();
    t0 = process.hrtime.bigint();
    held = load();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  held = undefined;
  times.sort((a, b) => a - b);
  process.send({ retained: withSet - before, ms: times[1], textBytes: text.length });
}

function measure(impl, n) {
  return new Promise((resolve, reject) => {
    const p = fork(__filename, ['--child', impl, String(n)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=4096'] });
    let result;
    p.on('message', (m) => (result = m));
    p.on('exit', (code) => (code === 0 && result ? resolve(result) : reject(new Error(`${impl} ${n}: exited with ${code}`))));
  });
}

async function main() {
  const impls = [
    { id: 'rollgate', name: 'Rollgate `compileFlagSet`' },
    ...(COMPARE ? [{ id: 'compare', name: 'Rollgate (compare)' }] : []),
    { id: 'flagd', name: 'flagd-core `setConfigurations`' },
    { id: 'json', name: '`JSON.parse` of the same text (reference)' },
  ];
  const rows = [];
  for (const n of SIZES) {
    for (const impl of impls) {
      const m = await measure(impl.id, n);
      rows.push({ n, ...impl, ...m });
      console.log(`${impl.id} ${n}: ${(m.retained / 1048576).toFixed(1)} MB retained, ${m.ms.toFixed(0)} ms`);
    }
  }
  const mb = (b) => (b / 1048576).toFixed(1);
  const lines = ['| flags (JSON text) | implementation | retained heap | per flag | compile time (median of 3) |', '|---|---|---:|---:|---:|'];
  for (const r of rows) {
    lines.push(`| ${r.n.toLocaleString('en-US')} (${mb(r.textBytes)} MB) | ${r.name} | ${mb(r.retained)} MB | ${Math.round(r.retained / r.n).toLocaleString('en-US')} B | ${r.id === 'json' ? '' : `${r.ms.toFixed(0)} ms`} |`);
  }
  const table = lines.join('\n');
  console.log(`\n${table}`);
  const ratio = (n) => {
    const rg = rows.find((r) => r.n === n && r.id === 'rollgate');
    const fd = rows.find((r) => r.n === n && r.id === 'flagd');
    return rg.retained / fd.retained;
  };
  const verdict = SIZES.map((n) => `${n.toLocaleString('en-US')} flags: Rollgate retains ${ratio(n).toFixed(2)}× what flagd-core does`).join('; ');
  console.log(verdict);
  return { table, verdict, rows };
}

const SECTION = '## Core memory and compile time';

function writeDoc({ table, verdict, rows }) {
  const { writeSection, machine } = require('../../../bench/doc-section');
  const at = (n, id) => rows.find((r) => r.n === n && r.id === id);
  const bar = SIZES.every((n) => at(n, 'rollgate').retained < at(n, 'flagd').retained);
  const md = `${SECTION}

${machine()}. A whole flag set compiled from its JSON text: the seed flag and 200-flag app's shapes
(scenario.js), cycled to 10,000 and 100,000 flags. Each measurement in a fresh process:
**retained heap** = heap used after a full GC with one compiled set held, minus before it was built (the
JSON text and the modules already loaded in both readings); **compile time** = parse, validation and
compilation, median of 3. \`JSON.parse\` of the same text is shown as a reference (what holding the
definitions alone costs).

${table}

${verdict}. Bar (below flagd-core at 10k and 100k flags): **${bar ? 'met' : 'not met'}**.

Reproduce: \`npm run bench\` (or \`node packages/core/bench/memory.bench.js\` after \`npm run build\`;
\`BENCH_SIZES=10000\` for one size).
`;
  writeSection(SECTION, md);
}

if (process.argv[2] === '--child') child(process.argv[3], Number(process.argv[4]));
else if (require.main === module)
  main()
    .then((result) => {
      if (!process.env.BENCH_NO_DOC) writeDoc(result);
    })
    .catch((e) => (console.error(e), process.exit(1)));

module.exports = { main };
