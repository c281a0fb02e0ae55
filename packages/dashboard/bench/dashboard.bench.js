'use strict';
// The admin dashboard's weight and how soon it is usable (run by `npm run bench`, after
// `npm run build`; writes the "## Dashboard: bundle and time to interactive" section of
// docs/benchmarks.md).
//
//   node packages/dashboard/bench/dashboard.bench.js      (~5 min on 2 busy cores)
//   BENCH_LOADS=5 …                                        (loads per row; default 15)
//   BENCH_NO_DOC=1 …                                       (print only)
//   ROLLGATE_CHROMIUM=/path/to/chromium …                  (a Chromium installed elsewhere, as the e2e tests)
//
// 1. The bundle: every file of dist/app (what `npm run build` made and the admin router serves),
//    raw, gzip -9 (what the router sends: it gzips at level 9 once, when the file is first asked
//    for) and brotli (quality 11; what a proxy or CDN with brotli would send). What is in each
//    file: the same build again in memory (the package's vite.config.mts, with source maps,
//    nothing written), checked to produce the same content-hashed file names as dist/app, and its
//    minified bytes attributed to their sources through the source maps (each mapped segment to
//    its source; bytes no segment maps, such as the bundler's glue, counted apart). React, uPlot
//    and the app are separate chunks by the config's manualChunks, so their gzip sizes are exact;
//    inside a chunk only minified bytes can be attributed (gzip works across sources).
// 2. Time to interactive in Chromium (Debian's /usr/bin/chromium or ROLLGATE_CHROMIUM, headless,
//    playwright-core, the launch flags of test/support/browser.ts), on the real stack: a
//    throwaway redis-server, a RedisFlagStore with its defaults, 50 flags of the kinds an app
//    has, 4 segments (one of 300 values), a running rollout plan and an audit of about 90
//    changes, served by an Express app with
//    `adminRouter({ dashboard: true })`, signed in with an HS256 JWT as the e2e test does
//    (sessionStorage `rollgate.token`). Times are the page's own `performance.now()`, which counts
//    from navigation start, taken by a MutationObserver installed before any script of the page:
//      - flags on screen: the DOM mutation after which all 50 flag cards are in the document;
//      - live: the DOM mutation after which the status badge says "Live" (the admin API's
//        /events stream answered);
//      - TTI = the later of the two. Each load then proves the stream: a write made in Node
//        after TTI (a flag patched by a new actor) must appear on that flag's card, timed from
//        just before the write call to the mutation that shows it (Date.now() on both sides,
//        same machine), reported as "write → on screen".
//    Baseline in the same run, on the same server: a minimal page (an HTML file and one module
//    script that adds a marker element), timed to that marker in the same way.
//    Cold: a new browser context per load and the HTTP cache disabled (CDP
//    Network.setCacheDisabled). Warm: one context per CPU setting, primed with two loads of each
//    page (so the assets are in the HTTP cache and V8 may have cached their code), then each
//    load in a new tab. Every row again with the CPU throttled 4× (CDP
//    Emulation.setCPUThrottlingRate), a slow-phone proxy. Loads alternate baseline/dashboard
//    and cold/warm, so load on the shared machine hits both alike. Loopback network: the times
//    are parse, execute, API round trips and rendering, not transfer.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const { writeSection, machine, percentile } = require('../../../bench/doc-section');
const { startRedis } = require('../../../bench/redis-server');

const SECTION = '## Dashboard: bundle and time to interactive';
const PKG = path.resolve(__dirname, '..');
const ROOT = path.resolve(PKG, '../..');
const DIST = path.join(PKG, 'dist/app');
const LOADS = Number(process.env.BENCH_LOADS ?? 15);
// as test/support/browser-tests.ts and browser.ts (TypeScript modules: this plain-Node bench cannot import them)
const CHROMIUM = process.env.ROLLGATE_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const VIEWPORT = { width: 1280, height: 900 };
const SECRET = 'dashboard-bench-secret-of-32-bytes!';
const LOAD_TIMEOUT_MS = Number(process.env.BENCH_LOAD_TIMEOUT_MS ?? 60_000);

const kB = (n) => `${(n / 1000).toFixed(1)} kB`;
const ms = (n) => `${Math.round(n)}`;

// ---- 1. the bundle ----------------------------------------------------------------------------

function sizesOf(buf) {
  return { raw: buf.length, gzip: zlib.gzipSync(buf, { level: 9 }).length, brotli: zlib.brotliCompressSync(buf, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: buf.length } }).length };
}

/** What a chunk's name says it holds (the config's manualChunks). */
function chunkLabel(name) {
  if (/^react-/.test(name)) return 'React 19 + ReactDOM';
  if (/^uplot-/.test(name)) return 'uPlot';
  if (/^rolldown-runtime-/.test(name)) return 'Rolldown runtime';
  if (/^index-.*\.js$/.test(name)) return 'the app';
  if (/^index-.*\.css$/.test(name)) return "the app's and uPlot's styles";
  if (name === 'index.html') return 'the page';
  if (/^favicon-/.test(name)) return 'the icon';
  return '';
}

/** Who a source file belongs to. */
function ownerOf(file) {
  const rel = path.relative(ROOT, file).split(path.sep).join('/');
  const nm = rel.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (nm) return nm[1];
  if (rel.startsWith('packages/dashboard/src/app/')) return 'the app (packages/dashboard/src/app)';
  if (rel.startsWith('packages/core/src/')) return '@rollgate/core (split edit, compiled in from source)';
  if (/rolldown/.test(rel)) return 'Rolldown runtime';
  return rel;
}

/** Decodes a source map's `mappings` (base64 VLQ) into, per generated line, [column, sourceIndex | -1]. */
function decodeMappings(mappings) {
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const value = new Int8Array(128).fill(-1);
  for (let i = 0; i < B64.length; i++) value[B64.charCodeAt(i)] = i;
  const lines = [];
  let source = 0;
  for (const line of mappings.split(';')) {
    const segments = [];
    let column = 0;
    for (const seg of line.split(',')) {
      if (seg === '') continue;
      const fields = [];
      let shift = 0;
      let acc = 0;
      for (let i = 0; i < seg.length; i++) {
        const digit = value[seg.charCodeAt(i)];
        acc += (digit & 31) << shift;
        if (digit & 32) shift += 5;
        else {
          fields.push(acc & 1 ? -(acc >>> 1) : acc >>> 1);
          acc = 0;
          shift = 0;
        }
      }
      column += fields[0];
      if (fields.length >= 4) {
        source += fields[1];
        segments.push([column, source]);
      } else segments.push([column, -1]);
    }
    lines.push(segments);
  }
  return lines;
}

/** Minified bytes of `code` per owner, through its source map; unmapped bytes under '(unmapped: bundler glue, newlines)'. */
function attribute(code, map, mapDir) {
  const out = new Map();
  const add = (owner, n) => n > 0 && out.set(owner, (out.get(owner) ?? 0) + n);
  const owners = map.sources.map((s) => ownerOf(path.resolve(mapDir, s)));
  const decoded = decodeMappings(map.mappings);
  const lines = code.split('\n');
  lines.forEach((line, i) => {
    const segs = decoded[i] ?? [];
    let at = 0;
    for (let k = 0; k < segs.length; k++) {
      const [col, src] = segs[k];
      if (col > at) add('(unmapped: bundler glue, newlines)', Buffer.byteLength(line.slice(at, col)));
      const end = k + 1 < segs.length ? segs[k + 1][0] : line.length;
      add(src >= 0 ? owners[src] : '(unmapped: bundler glue, newlines)', Buffer.byteLength(line.slice(col, end)));
      at = end;
    }
    if (at < line.length) add('(unmapped: bundler glue, newlines)', Buffer.byteLength(line.slice(at)));
    if (i < lines.length - 1) add('(unmapped: bundler glue, newlines)', 1);
  });
  return out;
}

async function bundle() {
  if (!fs.existsSync(path.join(DIST, 'index.html'))) throw new Error(`dashboard bench: ${DIST}/index.html is missing. Run \`npm run build\` at the repository root first.`);
  const files = [{ name: 'index.html', file: path.join(DIST, 'index.html') }, ...fs.readdirSync(path.join(DIST, 'assets')).sort().map((name) => ({ name, file: path.join(DIST, 'assets', name) }))];
  const assets = files.map(({ name, file }) => ({ name, label: chunkLabel(name), ...sizesOf(fs.readFileSync(file)) }));

  // the same build in memory, with source maps, to see what each chunk holds
  process.env.VITE_CONFIG_NATIVE_IGNORE_WARNING = 'true';
  const vite = await import('vite');
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rollgate-dashboard-bench-'));
  let outputs;
  try {
    const result = await vite.build({ configFile: path.join(PKG, 'vite.config.mts'), root: PKG, logLevel: 'silent', build: { write: false, outDir, emptyOutDir: false, sourcemap: 'hidden' } });
    outputs = (Array.isArray(result) ? result : [result]).flatMap((r) => r.output);
  } finally {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
  const built = outputs.filter((o) => !o.fileName.endsWith('.map')).map((o) => path.basename(o.fileName)).sort();
  const sameBuild = JSON.stringify(built) === JSON.stringify(files.map((f) => f.name).sort());
  const composition = [];
  for (const chunk of outputs.filter((o) => o.type === 'chunk')) {
    const owners = chunk.map ? attribute(chunk.code, chunk.map, path.join(outDir, path.dirname(chunk.fileName))) : new Map([[ownerOf(chunk.moduleIds[0] ?? ''), Buffer.byteLength(chunk.code)]]);
    composition.push({ name: path.basename(chunk.fileName), modules: chunk.moduleIds.length, owners: [...owners].sort((a, b) => b[1] - a[1]) });
  }
  return { assets, sameBuild, composition, vite: vite.version };
}

// ---- 2. time to interactive -------------------------------------------------------------------

const TEAMS = ['payments', 'search', 'checkout', 'growth', 'platform', 'mobile-web'];
const AREAS = ['checkout', 'search', 'payments', 'booking', 'profile', 'pricing', 'inbox', 'reports', 'onboarding', 'support'];
const FEATURES = ['new-flow', 'fast-path', 'redesign', 'banner', 'v2-api'];
const EU = ['AT', 'BE', 'BG', 'HR', 'CY', 'CZ', 'DK', 'EE', 'FI', 'FR', 'DE', 'GR', 'HU', 'IE', 'IT', 'LV', 'LT', 'LU', 'MT', 'NL', 'PL', 'PT', 'RO', 'SK', 'SI', 'ES', 'SE'];
const PLAN_FLAG = 'search-ranking-v2';

/** 50 flags of the shapes an app has, 4 segments; deterministic. */
function flagSet() {
  const evaluators = {
    staff: { ends_with: [{ var: 'email' }, '@example.com'] },
    'beta-testers': { in: [{ var: 'targetingKey' }, Array.from({ length: 300 }, (_, i) => `user-${String(i * 7919).padStart(6, '0')}`)] },
    'vip-agencies': { in: [{ var: 'tenant' }, Array.from({ length: 40 }, (_, i) => `agency-${String(i + 1).padStart(3, '0')}`)] },
    eu: { in: [{ var: 'country' }, EU] },
  };
  const bool = { on: true, off: false };
  const shapes = [
    () => ({ state: 'ENABLED', variants: bool, defaultVariant: 'on' }), // a kill switch
    (i) => ({ state: 'ENABLED', variants: bool, defaultVariant: 'off', targeting: { fractional: [['on', 5 + (i % 4) * 15], ['off', 95 - (i % 4) * 15]] } }),
    () => ({ state: 'ENABLED', variants: bool, defaultVariant: 'off', targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { $ref: 'staff' }, 'on', 'off'] } }),
    () => ({ state: 'ENABLED', variants: { classic: 'classic', bold: 'bold', compact: 'compact' }, defaultVariant: 'classic', targeting: { fractional: [['classic', 34], ['bold', 33], ['compact', 33]] } }),
    () => ({ state: 'ENABLED', variants: bool, defaultVariant: 'off', targeting: { if: [{ $ref: 'vip-agencies' }, 'on', { $ref: 'beta-testers' }, 'on', { fractional: [['on', 10], ['off', 90]] }] } }),
    () => ({ state: 'DISABLED', variants: bool, defaultVariant: 'off' }),
    () => ({ state: 'ENABLED', variants: { low: 20, default: 50, high: 200 }, defaultVariant: 'default', targeting: { if: [{ $ref: 'eu' }, 'low', { '>=': [{ var: 'plan_level' }, 3] }, 'high', 'default'] } }),
    () => ({ state: 'ENABLED', variants: bool, defaultVariant: 'off', targeting: { if: [{ sem_ver: [{ var: 'appVersion' }, '>=', '4.2.0'] }, 'on', 'off'] } }),
  ];
  const flags = {};
  for (let i = 0; i < 49; i++) {
    const key = `${AREAS[i % AREAS.length]}-${FEATURES[Math.floor(i / AREAS.length) % FEATURES.length]}`;
    flags[key] = { ...shapes[i % shapes.length](i), metadata: { owner: TEAMS[i % TEAMS.length], clientVisible: i % 3 === 0 } };
  }
  // the flag under a rollout plan: beta testers first, then a split the plan moves
  flags[PLAN_FLAG] = { state: 'ENABLED', variants: bool, defaultVariant: 'off', targeting: { if: [{ $ref: 'beta-testers' }, 'on', { fractional: [['on', 0], ['off', 100]] }] }, metadata: { owner: 'search' } };
  return { flags, evaluators };
}

async function seed(store) {
  const { flags, evaluators } = flagSet();
  await store.apply(
    Object.entries(evaluators).map(([key, definition]) => ({ kind: 'evaluator', key, definition })),
    { actor: 'ada', reason: 'segments' },
  );
  // one write per flag, by a few people: an audit as a real environment has
  const keys = Object.keys(flags);
  const people = ['ada', 'bo', 'chen', 'ci-deploy'];
  for (const [i, key] of keys.entries()) await store.apply([{ kind: 'flag', key, definition: flags[key] }], { actor: people[i % people.length], reason: `create ${key}` });
  for (let i = 0; i < 36; i++) {
    const key = keys[(i * 7) % keys.length];
    if (key === PLAN_FLAG) continue;
    await store.patchFlag(key, { metadata: { ...flags[key].metadata, note: `change ${i}` } }, { actor: people[(i + 1) % people.length], reason: 'tuning' });
  }
  const { Rollouts } = require('@rollgate/rollouts');
  const rollouts = new Rollouts({ store });
  await rollouts.create(
    { flag: PLAN_FLAG, treatment: 'on', control: 'off', stages: [{ percent: 5, minDurationSec: 1800 }, { percent: 25 }, { percent: 50, approval: true }, { percent: 100, absolute: { maxErrorRate: 0.05, maxP99Ms: 800 } }], guards: [{ metric: 'errors' }, { metric: 'latency', quantile: 0.99 }] },
    { actor: 'ada', reason: 'new ranking, guarded' },
  );
  await rollouts.start(PLAN_FLAG, { actor: 'ada', reason: 'go' });
  const audit = (await store.audit(undefined, { limit: 10_000 })).length;
  return { keys, flags, audit };
}

const BASELINE_HTML = '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Baseline</title><link rel="icon" href="data:,"><script type="module" src="./ready.js"></script></head><body><p>A minimal page.</p></body></html>\n';
const BASELINE_JS = "const p = document.createElement('p');\np.id = 'ready';\np.textContent = 'ready';\ndocument.body.append(p);\n";

/** Installed before any script of the page: records when the page is ready (see the header). */
function installTimer({ kind, keys }) {
  const t = { flags: null, live: null, ready: null, dcl: null };
  window.__bench = t;
  // resolved when ready: the bench awaits it (no polling in a CPU-throttled page)
  let resolve;
  window.__benchReady = new Promise((r) => (resolve = r));
  const want = new Set(keys);
  document.addEventListener('DOMContentLoaded', () => (t.dcl = performance.now()));
  const check = () => {
    const now = performance.now();
    if (kind === 'baseline') {
      if (document.getElementById('ready')) t.ready = now;
    } else {
      if (t.flags === null) {
        let n = 0;
        for (const el of document.querySelectorAll('li.flag-card[data-testid]')) if (want.has(el.getAttribute('data-testid').slice(5))) n++;
        if (n === want.size) t.flags = now;
      }
      if (t.live === null) {
        const badge = document.querySelector('[data-testid="live"]');
        if (badge && /^Live\b/.test(badge.textContent.trim())) t.live = now; // "Live · version 87"
      }
      if (t.flags !== null && t.live !== null) t.ready = Math.max(t.flags, t.live);
    }
    if (t.ready !== null) {
      observer.disconnect();
      resolve();
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(document, { childList: true, subtree: true, characterData: true });
}

async function tti(bundleInfo) {
  const express = require('express');
  const jwt = require('jsonwebtoken');
  const { chromium } = require('playwright-core');
  const { RedisFlagStore } = require('@rollgate/redis');
  const { adminRouter, defineIdentity } = require('@rollgate/express');
  if (!fs.existsSync(CHROMIUM)) throw new Error(`dashboard bench: ${CHROMIUM} is missing. Install Debian's Chromium (\`apt-get install -y chromium\`) or set ROLLGATE_CHROMIUM.`);

  const redis = await startRedis();
  const store = new RedisFlagStore({ redis: redis.url, env: `dashboard-bench-${process.pid}` });
  let server;
  let router;
  let browser;
  try {
    const { keys, flags, audit } = await seed(store);
    router = adminRouter({ store, identity: defineIdentity({ jwt: { secret: SECRET, algorithms: ['HS256'] } }), authorize: (who) => who.context.roles.includes('flag-admin'), dashboard: true });
    const app = express();
    app.get('/baseline/', (_req, res) => res.set({ 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).send(BASELINE_HTML));
    app.get('/baseline/ready.js', (_req, res) => res.set({ 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'public, max-age=31536000, immutable' }).send(BASELINE_JS));
    app.use(router);
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const origin = `http://127.0.0.1:${server.address().port}`;
    const URLS = { baseline: `${origin}/baseline/`, dashboard: `${origin}/rollgate/` };
    const token = jwt.sign({ sub: 'ada', roles: ['flag-admin'] }, SECRET, { algorithm: 'HS256', expiresIn: 3600 });

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const version = browser.version();
    const newContext = async () => {
      const context = await browser.newContext({ viewport: VIEWPORT });
      await context.addInitScript((t) => sessionStorage.setItem('rollgate.token', t), token);
      return context;
    };

    let writes = 0;
    const problems = [];
    /** One load of `kind` in a new tab of `context`; returns its times (ms from navigation start). */
    const load = async (context, kind, { cold, rate }) => {
      const page = await context.newPage();
      page.on('pageerror', (e) => problems.push(`${kind}: page error: ${e.message}`));
      page.on('console', (m) => m.type() === 'error' && problems.push(`${kind}: console: ${m.text()}`));
      try {
        await page.addInitScript(installTimer, { kind, keys });
        const cdp = await context.newCDPSession(page);
        if (cold) {
          await cdp.send('Network.enable');
          await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
        }
        await cdp.send('Emulation.setCPUThrottlingRate', { rate });
        await page.goto(URLS[kind], { waitUntil: 'commit' });
        let timer;
        const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), LOAD_TIMEOUT_MS)));
        await Promise.race([page.evaluate(() => window.__benchReady), late])
          .catch(async (e) => {
            const state = await page.evaluate(() => JSON.stringify({ bench: window.__bench, live: document.querySelector('[data-testid="live"]')?.textContent, body: document.body?.innerText.slice(0, 300) })).catch((x) => String(x));
            throw new Error(`dashboard bench: ${kind} (${cold ? 'cold' : 'warm'}, CPU ${rate}×) not ready within ${LOAD_TIMEOUT_MS / 1000} s: ${state}`, { cause: e });
          })
          .finally(() => clearTimeout(timer));
        const times = await page.evaluate(() => ({ ...window.__bench, fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null }));
        if (kind === 'dashboard') {
          // where the time went, from Resource Timing (every request of the first state is complete by now)
          const entries = await page.evaluate(() =>
            [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')].map((e) => ({ path: new URL(e.name).pathname + new URL(e.name).search, start: e.startTime, end: e.responseEnd, bytes: e.transferSize })),
          );
          const first = (re) => entries.find((e) => re.test(e.path));
          const api = [first(/\/admin\/flags$/), first(/\/admin\/audit\?/), first(/\/admin\/plans$/)];
          if (api.some((e) => !e)) throw new Error(`dashboard bench: the first load's requests are missing from Resource Timing: ${JSON.stringify(entries.map((e) => e.path))}`);
          const assets = entries.filter((e) => /\/assets\/.*\.(js|css)$/.test(e.path));
          times.assets = Math.max(...assets.map((e) => e.end));
          times.ask = api[0].start;
          times.loaded = Math.max(api[1].end, api[2].end);
          if (cold && rate === 1 && !transfer) {
            const own = entries.filter((e) => e.path === '/rollgate/' || /\/assets\//.test(e.path));
            transfer = { page: own.reduce((s, e) => s + e.bytes, 0), pageCount: own.length, api: api.reduce((s, e) => s + e.bytes, 0), sizes: Object.fromEntries(api.map((e) => [e.path, e.bytes])) };
          }

          // the stream is live: a write made now must reach this page's card
          const key = keys[writes % keys.length];
          const actor = `bench-${++writes}`;
          await page.evaluate(
            ({ key, actor }) => {
              window.__seen = new Promise((resolve) => {
                const card = () => document.querySelector(`[data-testid="flag-${key}"]`);
                const check = () => {
                  if (card()?.textContent.includes(`${actor},`)) {
                    observer.disconnect();
                    resolve(Date.now());
                  }
                };
                const observer = new MutationObserver(check);
                observer.observe(document.body, { childList: true, subtree: true, characterData: true });
              });
            },
            { key, actor },
          );
          const started = Date.now();
          await store.patchFlag(key, { metadata: { ...flags[key].metadata, benchLoad: writes } }, { actor, reason: 'bench: live check' });
          const seen = await Promise.race([page.evaluate(() => window.__seen), new Promise((_, reject) => setTimeout(() => reject(new Error(`dashboard bench: a write made after the page said "Live" did not reach it within 10 s (${key}, ${actor})`)), 10_000))]);
          times.write = seen - started;
          // how often the state was read before the write (once: the stream's announcements on
          // connecting matched the first read), and what reading the change cost
          const reads = await page.evaluate(
            (since) =>
              performance
                .getEntriesByType('resource')
                .filter((e) => new URL(e.name).pathname.includes('/admin/'))
                .map((e) => ({ path: new URL(e.name).pathname + new URL(e.name).search, bytes: e.transferSize, afterWrite: performance.timeOrigin + e.startTime >= since })),
            started,
          );
          times.reads = reads.filter((e) => !e.afterWrite && /\/admin\/flags$/.test(e.path)).length;
          if (cold && rate === 1 && transfer && !transfer.change) {
            transfer.change = Object.fromEntries(reads.filter((e) => e.afterWrite).map((e) => [e.path.replace(/after=[^&]+/, 'after=…'), e.bytes]));
          }
        }
        return times;
      } finally {
        await page.close();
      }
    };

    let transfer = null;
    const RATES = [1, 4];
    const rows = {};
    for (const rate of RATES) for (const cache of ['cold', 'warm']) for (const kind of ['baseline', 'dashboard']) rows[`${kind}/${cache}/${rate}`] = [];
    const warm = {};
    for (const rate of RATES) {
      warm[rate] = await newContext();
      for (let i = 0; i < 2; i++) for (const kind of ['baseline', 'dashboard']) await load(warm[rate], kind, { cold: false, rate });
    }
    const started = Date.now();
    for (let i = 0; i < LOADS; i++) {
      for (const rate of RATES) {
        const kinds = i % 2 === 0 ? ['baseline', 'dashboard'] : ['dashboard', 'baseline'];
        for (const kind of kinds) {
          const context = await newContext();
          try {
            rows[`${kind}/cold/${rate}`].push(await load(context, kind, { cold: true, rate }));
          } finally {
            await context.close();
          }
          rows[`${kind}/warm/${rate}`].push(await load(warm[rate], kind, { cold: false, rate }));
        }
      }
      process.stdout.write(`\r  loads: round ${i + 1}/${LOADS} (${Math.round((Date.now() - started) / 1000)} s)`);
    }
    process.stdout.write('\n');
    for (const context of Object.values(warm)) await context.close();
    if (problems.length) throw new Error(`dashboard bench: the pages reported errors:\n${[...new Set(problems)].join('\n')}`);
    return { rows, transfer, flags: keys.length, audit, writes, version };
  } finally {
    await browser?.close();
    router?.close();
    if (server) await new Promise((resolve) => server.close(resolve));
    await store.close();
    redis.stop();
  }
}

// ---- report -----------------------------------------------------------------------------------

function stats(values) {
  const sorted = values.filter((v) => v !== null && v !== undefined).sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), n: sorted.length };
}

function report(b, t) {
  const lines = [SECTION, ''];
  lines.push(`${machine()}. Chromium ${t.version}, headless. The machine is shared and noisy (1-minute load average ${t.load[0].toFixed(1)} at the start,`);
  lines.push(`${t.load[1].toFixed(1)} at the end, on ${os.cpus().length} cores): compare each row with the baseline measured beside it.`);
  lines.push('');
  lines.push(`**The bundle** — \`dist/app\` as \`npm run build\` makes it (Vite ${b.vite} / Rolldown, minified, no source maps). Every file is`);
  lines.push('fetched on the first load (the page preloads all its chunks). gzip -9 is what `adminRouter()` / the Nest');
  lines.push("controller send (they gzip each file once, at level 9); brotli (quality 11) is what a proxy or CDN with brotli would send.");
  lines.push('');
  lines.push('| file | holds | raw | gzip -9 | brotli 11 |');
  lines.push('|---|---|---:|---:|---:|');
  const sum = (list, f) => list.reduce((s, a) => s + a[f], 0);
  const pick = (re) => b.assets.filter((a) => re.test(a.name));
  for (const a of b.assets) lines.push(`| \`${a.name.replace(/-[A-Za-z0-9_-]{8}\./, '-*.')}\` | ${a.label} | ${kB(a.raw)} | ${kB(a.gzip)} | ${kB(a.brotli)} |`);
  const js = pick(/\.js$/);
  lines.push(`| **JavaScript** | | **${kB(sum(js, 'raw'))}** | **${kB(sum(js, 'gzip'))}** | **${kB(sum(js, 'brotli'))}** |`);
  lines.push(`| **everything** (page, JS, CSS, icon) | | **${kB(sum(b.assets, 'raw'))}** | **${kB(sum(b.assets, 'gzip'))}** | **${kB(sum(b.assets, 'brotli'))}** |`);
  lines.push('');
  const jsGzip = sum(js, 'gzip');
  const share = (re) => `${((100 * sum(pick(re), 'gzip')) / jsGzip).toFixed(0)}%`;
  lines.push(`Share of the JavaScript, gzipped: React + ReactDOM **${share(/^react-/)}**, uPlot **${share(/^uplot-/)}**, the app **${share(/^index-.*\.js$/)}** (exact: each is its own file, split by`);
  lines.push("the config's `manualChunks`, which also keeps React and uPlot cached when only the app changes).");
  lines.push('');
  lines.push(`What each chunk holds, in minified bytes, from the same build made again in memory with source maps`);
  lines.push(`(${b.sameBuild ? 'it produced the same content-hashed file names as `dist/app`, so the same bytes' : '**its file names differ from `dist/app`: rebuild with `FORCE=1 npm run build`**'}); each mapped segment's bytes go to`);
  lines.push('its source file, and unmapped bytes (the bundler\'s glue, newlines) are counted apart:');
  lines.push('');
  lines.push('| chunk | source | minified | share of the chunk |');
  lines.push('|---|---|---:|---:|');
  for (const c of b.composition) {
    const total = c.owners.reduce((s, [, n]) => s + n, 0);
    for (const [owner, n] of c.owners) lines.push(`| \`${c.name.replace(/-[A-Za-z0-9_-]{8}\./, '-*.')}\` | ${owner} | ${kB(n)} | ${((100 * n) / total).toFixed(1)}% |`);
  }
  lines.push('');

  const row = (label, key) => {
    const r = t.rows[key];
    const s = stats(r.map((x) => x.ready));
    return { label, key, s, r };
  };
  lines.push(`**Time to interactive** — headless Chromium (playwright-core) against an Express app with \`adminRouter({ dashboard: true })\``);
  lines.push(`over a throwaway \`redis-server\` (RedisFlagStore defaults): ${t.flags} flags of eight shapes (kill switches, splits, role and`);
  lines.push('segment rules, string and number variants, a disabled one, a semver rule), 4 segments (one of 300 values), a running');
  lines.push(`rollout plan and an audit of ${t.audit} changes; signed in with an HS256 JWT in \`sessionStorage\` as the e2e test does.`);
  lines.push('Times are `performance.now()` in the page (from navigation start), taken by a `MutationObserver` installed before');
  lines.push('the page\'s scripts. **TTI** = the later of *all flag cards in the DOM* and *the status badge says "Live"* (the');
  lines.push('`/events` stream answered); every dashboard load then proves the stream: a flag patched in Node after TTI must');
  lines.push(`appear on its card (${t.writes} writes, all seen). **Baseline**: a minimal page on the same server (the HTML and one module`);
  lines.push('script that adds a marker element), timed to the marker. **Cold**: a new browser context per load, HTTP cache');
  lines.push('disabled. **Warm**: a context primed with two loads of each page, each load in a new tab (assets from the HTTP cache,');
  lines.push(`index.html and the API never cached). **4× CPU**: \`Emulation.setCPUThrottlingRate\` 4, a slow-phone proxy. ${LOADS} loads per`);
  lines.push('row, alternating with the baseline. Loopback network: these are parse, execute, API round trips and render, not transfer.');
  lines.push('');
  lines.push('| load | CPU | baseline p50 / p90 ms | dashboard TTI p50 / p90 ms | TTI ÷ baseline (p50) | write → on screen p50 / p90 ms |');
  lines.push('|---|---|---:|---:|---:|---:|');
  const summary = {};
  const CPU = (rate) => (rate === 1 ? '1×' : `${rate}× slower`);
  for (const rate of [1, 4]) {
    for (const cache of ['cold', 'warm']) {
      const base = row('baseline', `baseline/${cache}/${rate}`);
      const dash = row('dashboard', `dashboard/${cache}/${rate}`);
      const w = stats(dash.r.map((x) => x.write));
      const ratio = dash.s.p50 / base.s.p50;
      summary[`${cache}/${rate}`] = { tti: dash.s, base: base.s, ratio, write: w };
      lines.push(`| ${cache} | ${CPU(rate)} | ${ms(base.s.p50)} / ${ms(base.s.p90)} | **${ms(dash.s.p50)}** / ${ms(dash.s.p90)} | ${ratio.toFixed(1)}× | ${ms(w.p50)} / ${ms(w.p90)} |`);
    }
  }
  lines.push('');
  lines.push(`p50 and p90 of ${LOADS} loads per row (the nearest-rank percentiles of bench/doc-section.js). "write → on screen": from just before`);
  lines.push('`store.patchFlag()` in Node to the mutation that shows the new actor on that flag\'s card: the write, the change event through');
  lines.push('Redis pub/sub and `/events`, and the page reading flags and plans again with the audit entries newer than its newest, and rendering them.');
  lines.push('');
  lines.push('Where the time goes (p50 ms from navigation start; Resource Timing and the same `MutationObserver`):');
  lines.push('');
  lines.push('| load | CPU | first paint | scripts and styles in | `GET flags` sent (scripts run, React mounted) | flags, audit, plans answered | all flag cards in the DOM | "Live" |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const rate of [1, 4]) {
    for (const cache of ['cold', 'warm']) {
      const r = t.rows[`dashboard/${cache}/${rate}`];
      const p = (f) => ms(stats(r.map((x) => x[f])).p50);
      lines.push(`| ${cache} | ${CPU(rate)} | ${p('fcp')} | ${p('assets')} | ${p('ask')} | ${p('loaded')} | ${p('flags')} | ${p('live')} |`);
    }
  }
  lines.push('');
  const loads = Object.entries(t.rows).filter(([k]) => k.startsWith('dashboard/')).flatMap(([, r]) => r);
  const twice = loads.filter((x) => x.reads > 1).length;
  lines.push('TTI is the later of the last two. The page opens `/events` beside its first load, not after it; on connecting the stream announces the');
  lines.push('state (the flags\' version and revision, each plan\'s version), which the page compares with what it read, and it reads again only');
  lines.push(`what moved: ${twice === 0 ? 'nothing did here, so every load read the state once before its write' : `${twice} of ${loads.length} loads read it twice before their write`}.`);
  lines.push('');
  if (t.transfer) {
    const api = Object.entries(t.transfer.sizes).map(([p, n]) => `\`${p.replace(/^\/rollgate\/admin\//, '')}\` ${kB(n)}`).join(', ');
    lines.push(`Over the wire on a cold load (Resource Timing \`transferSize\`, headers included): the page and its assets **${kB(t.transfer.page)}**`);
    lines.push(`(${t.transfer.pageCount} responses, gzip); the first read of the state ${kB(t.transfer.api)} (${api}), made once.`);
    if (t.transfer.change) {
      const change = Object.entries(t.transfer.change).map(([p, n]) => `\`${p.replace(/^\/rollgate\/admin\//, '')}\` ${kB(n)}`).join(', ');
      lines.push(`A change then reads ${kB(Object.values(t.transfer.change).reduce((a, n) => a + n, 0))} (${change}): the audit only past the newest entry on screen.`);
    }
    lines.push('');
  }
  lines.push('Reproduce: `npm run bench` (or, after `npm run build`, `node packages/dashboard/bench/dashboard.bench.js`; `BENCH_LOADS` to change the loads per row).');
  return { markdown: lines.join('\n'), summary };
}

async function main() {
  const loadBefore = os.loadavg()[0];
  const b = await bundle();
  console.log('bundle:');
  for (const a of b.assets) console.log(`  ${a.name.padEnd(34)} ${String(a.raw).padStart(8)} raw ${String(a.gzip).padStart(7)} gzip ${String(a.brotli).padStart(7)} br  ${a.label}`);
  console.log(`  same build as dist/app: ${b.sameBuild}`);
  for (const c of b.composition) for (const [owner, n] of c.owners) console.log(`  ${c.name.padEnd(34)} ${String(n).padStart(8)}  ${owner}`);
  const t = await tti(b);
  t.load = [loadBefore, os.loadavg()[0]];
  const { markdown, summary } = report(b, t);
  for (const [k, s] of Object.entries(summary)) console.log(`  ${k.padEnd(8)} TTI p50 ${ms(s.tti.p50)} p90 ${ms(s.tti.p90)} ms; baseline p50 ${ms(s.base.p50)} p90 ${ms(s.base.p90)}; ratio ${s.ratio.toFixed(2)}; write → screen p50 ${ms(s.write.p50)} p90 ${ms(s.write.p90)}`);
  if (process.env.BENCH_NO_DOC) console.log(`\n${markdown}`);
  else console.log(`wrote ${path.relative(process.cwd(), writeSection(SECTION, markdown))}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
