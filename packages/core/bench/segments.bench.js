'use strict';
// Large segments: does a flag whose targeting is `{"$ref": "loyal"}` over a list of 100,000 ids
// (a cohort from a batch job, loaded with `rollgate segment add … --from-file`) evaluate as fast
// as one over a short list? And what does compiling it cost (paid once per change, per process)?
//
//   node packages/core/bench/segments.bench.js      (after npm run build; ~20 s)
//
// Method: one process per segment size is overkill for a lookup; instead every size runs in the
// same process, in rounds whose order rotates, on CPU time (process.cpuUsage), each against the
// same 20,000 contexts (half in the segment, half not; targetingKeys built from JSON text as a
// server builds them). The reported ratio is the median over rounds of (size N / the 8-id segment
// in the same round). Compile time: median of 5 compileFlagSet() calls of the whole flag set.

const { compileFlagSet } = require('../dist');

const SIZES = [8, 1_000, 10_000, 100_000];
const ROUNDS = Number(process.env.BENCH_ROUNDS) || 15;
const BATCH = 200_000;
const POOL = 20_000;

function flagSet(n) {
  const ids = Array.from({ length: n }, (_, i) => `c-${(i * 2654435761) % 4294967296}`);
  return {
    ids,
    set: {
      $evaluators: { loyal: { in: [{ var: 'targetingKey' }, ids] } },
      flags: { perk: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ $ref: 'loyal' }, 'on', 'off'] } } },
    },
  };
}

function cpuNs(fn) {
  const a = process.cpuUsage();
  fn();
  const b = process.cpuUsage(a);
  return (b.user + b.system) * 1000;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const cases = SIZES.map((n) => {
  const { ids, set } = flagSet(n);
  const compileNs = [];
  let snapshot;
  for (let i = 0; i < 5; i++) {
    compileNs.push(
      cpuNs(() => {
        const out = compileFlagSet(set);
        if (out.errors.length > 0) throw new Error(`${n}: ${out.errors[0].message}`);
        snapshot = out.snapshot;
      }),
    );
  }
  // contexts from JSON text: half the callers in the segment, half not
  const pool = Array.from({ length: POOL }, (_, i) => JSON.parse(JSON.stringify({ targetingKey: i % 2 === 0 ? ids[(i * 7919) % n] : `x-${i}` })));
  return { n, snapshot, pool, compileMs: median(compileNs) / 1e6, perOp: [] };
});

let sink = 0;
function batch(c) {
  const { snapshot, pool } = c;
  return cpuNs(() => {
    for (let i = 0; i < BATCH; i++) if (snapshot.evaluate('perk', pool[i % POOL]).value === true) sink++;
  });
}

for (const c of cases) batch(c); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  const order = cases.map((_, i) => cases[(i + r) % cases.length]);
  const round = new Map(order.map((c) => [c.n, batch(c) / BATCH]));
  for (const c of cases) c.perOp.push({ ns: round.get(c.n), ratio: round.get(c.n) / round.get(SIZES[0]) });
}

console.log(`segment size  evaluate (ns/op, median)  ratio to 8 ids (median [min-max] over ${ROUNDS} rounds)  compile (ms)`);
for (const c of cases) {
  const ratios = c.perOp.map((p) => p.ratio);
  console.log(
    `${String(c.n).padStart(12)}  ${median(c.perOp.map((p) => p.ns)).toFixed(0).padStart(24)}  ${median(ratios).toFixed(2).padStart(10)} [${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}]${' '.repeat(40)}${c.compileMs.toFixed(1)}`,
  );
}
if (sink === 0) console.log('(no matches: the benchmark is broken)');
