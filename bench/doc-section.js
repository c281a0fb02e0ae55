'use strict';
// Writes one "## <title>" section of docs/benchmarks.md, leaving the other benchmarks' sections alone.
const fs = require('node:fs');
const path = require('node:path');

const DOC_PATH = path.resolve(__dirname, '../docs/benchmarks.md');

function writeSection(section, markdown) {
  let doc = fs.existsSync(DOC_PATH) ? fs.readFileSync(DOC_PATH, 'utf8') : '# Benchmarks\n';
  const start = doc.indexOf(section);
  if (start === -1) {
    doc = `${doc.trimEnd()}\n\n${markdown}\n`;
  } else {
    const next = doc.indexOf('\n## ', start + section.length);
    doc = doc.slice(0, start) + markdown + (next === -1 ? '\n' : `\n${doc.slice(next + 1)}`);
  }
  fs.writeFileSync(DOC_PATH, doc);
  return DOC_PATH;
}

function machine() {
  const os = require('node:os');
  return `node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length}, ${new Date().toISOString()}`;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

module.exports = { writeSection, machine, percentile, DOC_PATH };
