'use strict';
// Evaluation cost at the budget: for flags built to use as much of the budget as validation lets
// them (each operator in a loop, nested loops, growing accumulators, long strings), how long one
// evaluation takes and how much it allocates. This is what backs "about 1 ms and 1 MB per
// evaluation at most" in docs/flag-format.md, and it calibrates the operator weights in
// src/cost.ts (ns per step should be about the same for every case).
//
//   npm run build && node --expose-gc --max-semi-space-size=256 packages/core/bench/cost.bench.js
//
// Heap bytes per evaluation: heapUsed before/after a batch run with a young generation large
// enough that no GC runs in between (checked with a GC observer; a batch with a GC is retried).

const v8 = require('node:v8');
const vm = require('node:vm');
const os = require('node:os');
const { PerformanceObserver } = require('node:perf_hooks');

const { compileFlagSet, DEFAULT_LIMITS } = require('../dist');
const { compileRule, newEnv, DEFAULT_BUDGET } = require('../dist/compiler');
const { sizeOf, CONTEXT_SIZE } = require('../dist/cost');

v8.setFlagsFromString('--expose-gc');
const gc = globalThis.gc ?? vm.runInNewContext('gc');

const ROUNDS = Number(process.env.BENCH_ROUNDS) || 7;

let gcs = 0;
new PerformanceObserver((list) => {
  gcs += list.getEntries().length;
}).observe({ entryTypes: ['gc'] });

const range = (n, f = (i) => i) => Array.from({ length: n }, (_, i) => f(i));
const str = (n, c = 'x') => c.repeat(n);

/** A context at the static bound's assumption: 4,096 characters of JSON, strings ≤ 256. */
function fullContext() {
  const ctx = { targetingKey: 'user-0123456789', role: 'member', tenant: 'acme', email: 'someone@example.com', appVersion: '2.1.0', groups: [] };
  while (sizeOf(ctx) < CONTEXT_SIZE - 20) ctx.groups.push(`g${ctx.groups.length}`);
  return ctx;
}

// Each case: a targeting rule parameterised by n; the bench finds the largest n that validation
// accepts and measures that flag.
const CASES = [
  { id: 'all over a constant list', rule: (n) => ({ all: [range(n), { '>=': [{ var: '' }, 0] }] }) },
  { id: 'two nested loops (all/all)', rule: (n) => ({ all: [range(n), { all: [range(n), { '>=': [{ var: '' }, 0] }] }] }) },
  { id: 'sem_ver in a loop', rule: (n) => ({ some: [range(n, (i) => `1.${i}.0`), { sem_ver: [{ var: '' }, '>=', '99.0.0'] }] }) },
  { id: 'fractional (dynamic key) in a loop', rule: (n) => ({ some: [range(n, (i) => `user-${i}`), { '==': [{ fractional: [{ var: '' }, ['a', 1], ['b', 1]] }, 'zz'] }] }) },
  { id: 'dynamic var path in a loop', rule: (n) => ({ some: [range(n, (i) => ({ k: 0, z: '', i })), { var: [{ cat: ['k', { var: 'z' }] }, null] }] }) },
  { id: 'missing in a loop', rule: (n) => ({ all: [range(n, (i) => ({ a: i, b: i })), { missing: ['a', 'b', 'c'] }] }) },
  { id: 'merge growing an accumulator', rule: (n) => ({ '!!': [{ reduce: [range(n), { merge: [{ var: 'accumulator' }, [{ var: 'current' }]] }, []] }] }) },
  { id: 'cat + substring search in a loop', rule: (n) => ({ some: [range(n, (i) => `k${i}`), { in: ['zz', { cat: [{ var: '' }, str(500)] }] }] }) },
  { id: 'long string compare in a loop', rule: (n) => ({ some: [range(n, () => [str(2000), `${str(1999)}y`]), { '==': [{ var: '0' }, { var: '1' }] }] }) },
  { id: 'map building arrays', rule: (n) => ({ '!!': [{ map: [range(n), [{ var: '' }, { var: '' }]] }] }) },
  { id: 'filter over objects (truthiness)', rule: (n) => ({ '!!': [{ filter: [range(n, (i) => ({ a: i, b: 'x' })), { var: '' }] }] }) },
  { id: 'comparisons, no loop', rule: (n) => ({ or: range(n, (i) => ({ '==': [{ var: 'tenant' }, `t${i}`] })) }) },
  { id: 'join strings with reduce', rule: (n) => ({ in: ['zz', { reduce: [range(n, (i) => `item-${i}`), { cat: [{ var: 'accumulator' }, ',', { var: 'current' }] }, ''] }] }) },
  { id: 'some over context groups × constant list', rule: (n) => ({ some: [{ var: 'groups' }, { some: [range(n), { '==': [{ var: '' }, -1] }] }] }), context: fullContext },
  { id: 'in over context lists, no loop', rule: (n) => ({ or: range(n, (i) => ({ in: [`g${i}x`, { var: 'groups' }] })) }), context: fullContext },
];

function accepted(rule) {
  const { errors } = compileFlagSet({ flags: { f: { state: 'ENABLED', variants: { on: true, off: false }, targeting: { if: [rule, 'on', 'off'] } } } });
  return errors.length === 0;
}

/** Largest n in [1, 10^6] the validation accepts (costs grow with n). */
function largestAccepted(c) {
  if (c.fixed) return accepted(c.rule(0)) ? 0 : -1;
  let lo = 0;
  let hi = 1;
  while (hi <= 1_000_000 && accepted(c.rule(hi))) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (accepted(c.rule(mid))) lo = mid;
    else hi = mid;
  }
  return lo;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function measure(c) {
  const n = largestAccepted(c);
  if (n < 0) throw new Error(`${c.id}: refused at any size`);
  const rule = { if: [c.rule(n), 'on', 'off'] };
  const ctx = c.context ? c.context() : { targetingKey: 'u1' };
  const { snapshot } = compileFlagSet({ flags: { f: { state: 'ENABLED', variants: { on: true, off: false }, targeting: rule } } });
  const compiled = compileRule(rule, 'f');
  const env = newEnv(ctx, 'f', DEFAULT_BUDGET);
  try {
    compiled.fn(ctx, env);
  } catch (e) {
    if (e && e.constructor && e.constructor.name === 'BudgetExceeded') throw new Error(`${c.id}: over budget at run time`);
  }
  const counted = { steps: DEFAULT_BUDGET.steps - env.steps, bytes: DEFAULT_BUDGET.bytes - env.alloc };
  const r = snapshot.evaluate('f', ctx);
  if (r.errorMessage && r.errorMessage.includes('budget')) throw new Error(`${c.id}: ${r.errorMessage}`);

  // time: warm up, then ROUNDS batches of ≥ 50 ms
  let iters = 1;
  for (let t0 = Date.now(); Date.now() - t0 < 200; ) {
    const s = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) snapshot.evaluate('f', ctx);
    if (Number(process.hrtime.bigint() - s) < 50e6) iters *= 2;
    else break;
  }
  const times = [];
  for (let round = 0; round < ROUNDS; round++) {
    gc();
    const s = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) snapshot.evaluate('f', ctx);
    times.push(Number(process.hrtime.bigint() - s) / iters);
  }
  // heap bytes per evaluation, from a batch without GC
  let heap = NaN;
  for (let attempt = 0; attempt < 5 && Number.isNaN(heap); attempt++) {
    const batch = Math.max(1, Math.min(200, Math.floor(100e6 / Math.max(1, counted.bytes * 4))));
    gc();
    const before = gcs;
    const h0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < batch; i++) snapshot.evaluate('f', ctx);
    const h1 = process.memoryUsage().heapUsed;
    if (gcs === before) heap = (h1 - h0) / batch;
  }
  const ns = median(times);
  return { id: c.id, n, staticSteps: compiled.maxSteps, staticBytes: compiled.maxBytes, counted, ns, heap, nsPerStep: ns / compiled.maxSteps };
}

function main() {
  console.log(`Node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length}; limits: ${DEFAULT_LIMITS.maxEvaluationSteps} steps, ${DEFAULT_LIMITS.maxEvaluationBytes} bytes\n`);
  console.log('| case | n (largest accepted) | static steps | static bytes | counted steps | counted bytes | heap bytes / evaluation | time / evaluation | ns / static step |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  const rows = [];
  for (const c of CASES) {
    const m = measure(c);
    rows.push(m);
    const f = (x) => Math.round(x).toLocaleString('en-US');
    console.log(
      `| ${m.id} | ${f(m.n)} | ${f(m.staticSteps)} | ${f(m.staticBytes)} | ${f(m.counted.steps)} | ${f(m.counted.bytes)} | ${Number.isNaN(m.heap) ? 'n/a' : f(m.heap)} | ${(m.ns / 1000).toFixed(0)} µs | ${m.nsPerStep.toFixed(1)} |`,
    );
  }
  const worst = rows.reduce((a, b) => (b.ns > a.ns ? b : a));
  const heaviest = rows.filter((r) => !Number.isNaN(r.heap)).reduce((a, b) => (b.heap > a.heap ? b : a));
  console.log(`\nslowest: ${worst.id}, ${(worst.ns / 1000).toFixed(0)} µs per evaluation; most allocated: ${heaviest.id}, ${Math.round(heaviest.heap).toLocaleString('en-US')} bytes per evaluation`);
}

main();
