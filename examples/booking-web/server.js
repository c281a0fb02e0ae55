'use strict';
// The Express flavour of the booking demo: API + built UI on one port. `npm start` at the repo
// root runs the NestJS one (examples/booking-api); this one serves the same UI from Express:
//   npm run build:demo && node examples/booking-web/server.js
// then open http://localhost:3000. The UI only needs these routes, so either server can serve it:
//   POST /demo/login/:user        → a demo JWT (text/plain)
//   POST /ofrep/v1/evaluate/flags → OFREP bulk evaluation for the token's user (+ SSE eventStreams)
//   POST /payments/fast           → guarded by requireFeature('fast-payment') (403 when off)
//   /rollgate/admin/*             → the admin API (role admin), and the Rollgate dashboard at /rollgate/
const path = require('node:path');
const fs = require('node:fs');
const express = require('express');
const jwt = require('jsonwebtoken');
const { OpenFeature } = require('@openfeature/server-sdk');
const { MemoryFlagStore, RedisFlagStore, RollgateProvider, VersionConflictError } = require('@rollgate/redis');
const { defineIdentity, adminRouter, identity, ofrep, requireFeature } = require('@rollgate/express');
const flagSet = require('../booking-api/flags.json');

// DEMO ONLY: a hard-coded HMAC key, public in this repository. Real apps verify tokens from their identity provider (RS256).
const DEMO_SECRET = 'demo-only-secret-never-use-in-production!';
const JWT = { secret: DEMO_SECRET, algorithms: ['HS256'], issuer: 'rollgate-demo', audience: 'booking-api' };
const DEMO_USERS = {
  ada: { roles: ['admin'], tenant: 'internal' },
  bo: { roles: ['agent'], tenant: 'atlas-travel' }, // a VIP agency
  carol: { roles: ['customer'], tenant: 'smallco' }, // outside the 20% rollout
  dale: { roles: ['customer'], tenant: 'smallco' }, // inside the 20% rollout
};

/**
 * The booking-api's rule: write flags.json only into an EMPTY namespace (version 0), pinned to
 * version 0, so flags someone changed (kill switch, rollout %) or deleted stay as they are across
 * restarts, and of two servers starting at once exactly one seeds.
 */
async function seedIfEmpty(store) {
  if ((await store.load()).version !== 0) return;
  const changes = [
    ...Object.entries(flagSet.$evaluators ?? {}).map(([key, definition]) => ({ kind: 'evaluator', key, definition })),
    ...Object.entries(flagSet.flags).map(([key, definition]) => ({ kind: 'flag', key, definition })),
  ];
  try {
    await store.apply(changes, { actor: 'booking-web', reason: 'seed from examples/booking-api/flags.json', expectedVersion: 0, action: 'seed' });
  } catch (e) {
    if (!(e instanceof VersionConflictError)) throw e; // another server seeded first: keep theirs
  }
}

/**
 * @param {{ redisUrl?: string, env?: string, port?: number, host?: string, staticDir?: string, ticketSecret?: string }} [options]
 *   redisUrl: flags in Redis (seeded from examples/booking-api/flags.json when the namespace is empty);
 *   without it, an in-memory store. staticDir: the `vite build` output. @default ./dist
 */
async function startServer(options = {}) {
  const store = options.redisUrl ? new RedisFlagStore({ redis: options.redisUrl, env: options.env ?? 'booking-demo' }) : new MemoryFlagStore();
  await seedIfEmpty(store);
  // requireFeature decides with the provider registered in OpenFeature; the OFREP router reads the same provider.
  const provider = new RollgateProvider({ store });
  await OpenFeature.setProviderAndWait(provider);

  const app = express();
  app.disable('x-powered-by');
  app.post('/demo/login/:user', (req, res) => {
    const user = Object.hasOwn(DEMO_USERS, req.params.user) ? DEMO_USERS[req.params.user] : undefined;
    if (!user) return res.status(404).json({ error: 'unknown demo user' });
    res.type('text/plain').send(jwt.sign({ sub: req.params.user, ...user }, DEMO_SECRET, { algorithm: 'HS256', issuer: JWT.issuer, audience: JWT.audience, expiresIn: '1h' }));
  });
  // A shared ticket secret lets SSE streams survive a restart (and work across instances).
  // Who is calling, defined once and handed to every router and guard: they cannot disagree.
  const callers = defineIdentity({ jwt: JWT });
  const router = ofrep({ provider, identity: callers, stream: options.ticketSecret ? { ticketSecret: options.ticketSecret } : {} });
  app.use(router);
  app.use(adminRouter({ store, identity: callers, authorize: (who) => who.context.roles.includes('admin'), dashboard: true }));
  app.post('/payments/fast', identity(callers), requireFeature('fast-payment'), (req, res) => res.json({ paid: true, flow: 'fast' }));
  app.post('/payments', identity(callers), (req, res) => res.json({ paid: true, flow: 'classic' }));

  const staticDir = options.staticDir ?? path.join(__dirname, 'dist');
  if (fs.existsSync(path.join(staticDir, 'index.html'))) {
    app.use(express.static(staticDir, { index: 'index.html' }));
  } else {
    app.get('/', (req, res) => res.type('text/plain').send('UI not built: run `npm run build -w examples/booking-web`'));
  }

  const server = await new Promise((resolve, reject) => {
    const s = app.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve(s)).once('error', reject);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    store,
    close: async () => {
      router.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await OpenFeature.close();
      await store.close();
    },
  };
}

if (require.main === module) {
  const redisUrl = process.env.REDIS_URL;
  startServer({ redisUrl, port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1', ticketSecret: process.env.SSE_TICKET_SECRET }).then(
    ({ url }) => console.log(`booking-web on ${url} (flags: ${redisUrl ? `Redis at ${redisUrl}` : 'in memory; set REDIS_URL to share them'})`),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}

module.exports = { startServer, DEMO_USERS };
