'use strict';
// What @rollgate/web's user signals add to a page's JavaScript: gzipped bytes of minified
// bundles, built by Vite (Rolldown + its minifier) the way an app's build does, from small
// entries that import only what an app would import.
//
//   node packages/web/bench/bundle-size.js                   (a table; ~2 s, no build needed)
//   node packages/web/bench/bundle-size.js --json            (the same as JSON)
//   node packages/web/bench/bundle-size.js --src /other/src  (measure another tree of packages/web/src,
//                                                             e.g. a checkout of the commit before, for a before/after)
//
// Method:
//  - each entry is bundled on its own: ES module output, minified, tree-shaken, no source map;
//  - @openfeature/web-sdk, @openfeature/core, react, react-dom are external: an app that uses
//    this package has them already (peer dependencies), so they are not its cost. @rollgate/web's
//    own dependency @openfeature/ofrep-core is bundled (it is);
//  - sizes are gzip level 9 of the chunk (what Vite prints as "gzip"), and raw minified bytes;
//  - "error capture" is measured as the difference between the provider and the same provider
//    with src/error-capture replaced by a no-op stub: the option is a boolean at run time, so
//    its code is in every bundle that has the provider, used or not;
//  - the sources are bundled (TypeScript, through Vite's transform), so no build is needed and
//    any tree can be compared with --src.

const path = require('node:path');
const zlib = require('node:zlib');

const args = process.argv.slice(2);
const json = args.includes('--json');
const srcArg = args.indexOf('--src');
const SRC = path.resolve(srcArg >= 0 ? args[srcArg + 1] : path.join(__dirname, '../src'));
const ROOT = path.resolve(__dirname, '../../..');
const EXTERNAL = [/^@openfeature\/(web-sdk|core)(\/|$)/, /^react(\/|$)/, /^react-dom(\/|$)/];

const STUB_CAPTURE = `
export class ErrorReporter { report() { return 'ignored'; } close() {} }
export function listenForErrors() { return () => {}; }
`;

const ENTRIES = [
  { id: 'provider', label: 'RollgateWebProvider (with error capture, pageviews, feedback)', code: `export { RollgateWebProvider } from '@rollgate/web';` },
  { id: 'provider-no-capture', label: 'RollgateWebProvider, error capture stubbed out', code: `export { RollgateWebProvider } from '@rollgate/web';`, stubCapture: true },
  { id: 'provider+helpers', label: '+ sendFeedback, startTask, reportCaughtError', code: `export { RollgateWebProvider, sendFeedback, startTask, reportCaughtError } from '@rollgate/web';` },
  { id: 'react-feedback', label: '@rollgate/web/react FeedbackPrompt alone', code: `export { FeedbackPrompt } from '@rollgate/web/react';` },
  { id: 'react-boundary', label: '@rollgate/web/react RollgateErrorBoundary alone', code: `export { RollgateErrorBoundary } from '@rollgate/web/react';` },
  { id: 'react-both', label: '@rollgate/web/react both components', code: `export { FeedbackPrompt, RollgateErrorBoundary } from '@rollgate/web/react';` },
  {
    id: 'page',
    label: 'a page with everything (provider + helpers + both components)',
    code: `export { RollgateWebProvider, sendFeedback, startTask } from '@rollgate/web'; export { FeedbackPrompt, RollgateErrorBoundary } from '@rollgate/web/react';`,
  },
];

async function bundle(vite, entry) {
  const ENTRY_ID = '\0bundle-size-entry';
  const plugin = {
    name: 'bundle-size',
    enforce: 'pre',
    resolveId(id, importer) {
      if (id === ENTRY_ID || id === 'bundle-size-entry') return ENTRY_ID;
      if (id === '@rollgate/web') return path.join(SRC, 'index.ts');
      if (id === '@rollgate/web/react') return path.join(SRC, 'react.ts');
      if (entry.stubCapture && importer && /(^|\/)error-capture(\.[jt]s)?$/.test(id)) return '\0error-capture-stub';
      return null;
    },
    load(id) {
      if (id === ENTRY_ID) return entry.code;
      if (id === '\0error-capture-stub') return STUB_CAPTURE;
      return null;
    },
  };
  const result = await vite.build({
    configFile: false,
    root: ROOT,
    logLevel: 'silent',
    plugins: [plugin],
    build: {
      write: false,
      minify: true,
      sourcemap: false,
      target: 'es2022',
      modulePreload: false,
      reportCompressedSize: false,
      rolldownOptions: {
        input: 'bundle-size-entry',
        external: (id) => EXTERNAL.some((re) => re.test(id)),
        preserveEntrySignatures: 'exports-only',
        output: { format: 'es' },
      },
    },
  });
  const outputs = (Array.isArray(result) ? result : [result]).flatMap((r) => r.output);
  const code = outputs.filter((o) => o.type === 'chunk').map((o) => o.code).join('\n');
  return { raw: Buffer.byteLength(code), gzip: zlib.gzipSync(code, { level: 9 }).length };
}

async function main() {
  const vite = await import('vite');
  const sizes = {};
  for (const entry of ENTRIES) {
    // an older tree (--src) may not have the entry or the module to stub: n/a
    sizes[entry.id] = await bundle(vite, entry).catch(() => null);
  }
  const diff = (a, b) => (sizes[a] && sizes[b] ? { raw: sizes[a].raw - sizes[b].raw, gzip: sizes[a].gzip - sizes[b].gzip } : null);
  const derived = {
    'error capture (in every provider bundle)': diff('provider', 'provider-no-capture'),
    'sendFeedback + startTask + reportCaughtError helpers': diff('provider+helpers', 'provider'),
    'both React components, on top of the provider + helpers': diff('page', 'provider+helpers'),
    'capture + helpers + feedback widget + boundary, on top of the provider without capture': diff('page', 'provider-no-capture'),
  };
  if (json) {
    console.log(JSON.stringify({ src: SRC, bundles: sizes, added: derived }, null, 2));
    return;
  }
  const pad = (s, n) => String(s).padStart(n);
  console.log(`@rollgate/web bundle sizes (minified ES module, gzip -9; web-sdk/core/react external) — sources: ${path.relative(process.cwd(), SRC) || '.'}\n`);
  console.log(`${'bundle'.padEnd(66)}${pad('min B', 9)}${pad('gzip B', 9)}`);
  for (const entry of ENTRIES) {
    const size = sizes[entry.id];
    console.log(`${entry.label.padEnd(66)}${pad(size ? size.raw : 'n/a', 9)}${pad(size ? size.gzip : 'n/a', 9)}`);
  }
  console.log(`\n${'added'.padEnd(66)}${pad('min B', 9)}${pad('gzip B', 9)}`);
  for (const [label, d] of Object.entries(derived)) console.log(`${label.padEnd(66)}${pad(d ? `+${d.raw}` : 'n/a', 9)}${pad(d ? `+${d.gzip}` : 'n/a', 9)}`);
  console.log('\n(gzip differences of separately compressed bundles: ±20 B)');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
