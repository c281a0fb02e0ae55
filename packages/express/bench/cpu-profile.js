'use strict';
// Reads a V8 CPU profile (node --cpu-prof) and says where the time went: self time per function,
// time per group of code (by a classifier over the file), and inclusive time under chosen frames.
// Used by sdk-path.bench.js; also a CLI:
//   node packages/express/bench/cpu-profile.js <file.cpuprofile> [top=25] [filter-substring]
const fs = require('node:fs');
const path = require('node:path');

/** `window`: [from, to] in µs of process.hrtime (the profile's clock): only samples taken in it. */
function load(file, window) {
  const p = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // sample weights: the time deltas V8 recorded (µs)
  const selfUs = new Map();
  let at = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    at += p.timeDeltas[i] ?? 0;
    if (window && (at < window[0] || at > window[1])) continue;
    const id = p.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0));
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  return { p, byId, parent, selfUs, total };
}

function where(frame) {
  const url = frame.url || '';
  const file = url.replace(/^file:\/\//, '');
  const nm = file.lastIndexOf('node_modules/');
  const short = nm >= 0 ? file.slice(nm + 'node_modules/'.length) : file ? path.relative(process.cwd(), file) : '';
  return { file: short, line: frame.lineNumber + 1 };
}

function label(frame) {
  const { file, line } = where(frame);
  return `${frame.functionName || '(anonymous)'}${file ? ` ${file}:${line}` : ''}`;
}

/** Self time per function (µs), highest first. */
function selfTimes(prof, filter) {
  const acc = new Map();
  for (const [id, us] of prof.selfUs) {
    const f = prof.byId.get(id).callFrame;
    const key = label(f);
    if (filter && !key.includes(filter)) continue;
    acc.set(key, (acc.get(key) ?? 0) + us);
  }
  return [...acc.entries()].sort((a, b) => b[1] - a[1]);
}

/** Self time grouped by classify(callFrame) → group name (µs). */
function groups(prof, classify) {
  const acc = new Map();
  for (const [id, us] of prof.selfUs) {
    const g = classify(prof.byId.get(id).callFrame, where(prof.byId.get(id).callFrame));
    acc.set(g, (acc.get(g) ?? 0) + us);
  }
  return [...acc.entries()].sort((a, b) => b[1] - a[1]);
}

/** Time (µs) of samples with a frame matching `match` on their stack (counted once per sample). */
function inclusive(prof, match) {
  let us = 0;
  for (const [id, t] of prof.selfUs) {
    for (let n = id; n !== undefined; n = prof.parent.get(n)) {
      if (match(prof.byId.get(n).callFrame)) {
        us += t;
        break;
      }
    }
  }
  return us;
}

module.exports = { load, selfTimes, groups, inclusive, label, where };

if (require.main === module) {
  const [file, top = '25', filter] = process.argv.slice(2);
  const prof = load(file);
  console.log(`total ${(prof.total / 1000).toFixed(1)} ms sampled`);
  for (const [k, us] of selfTimes(prof, filter).slice(0, Number(top))) console.log(`${((100 * us) / prof.total).toFixed(2).padStart(6)}%  ${k}`);
}
