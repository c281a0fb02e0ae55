'use strict';
// Minimal Express app with all three pieces: identity from a JWT, a route guarded by
// requireFeature, and the OFREP router. Run: `npm run build && node examples/express-basic`.
// Then:  TOKEN=$(curl -s -XPOST localhost:3000/demo/login/bo) ;
//        curl -XPOST -H "Authorization: Bearer $TOKEN" localhost:3000/payments/fast
const express = require('express');
const jwt = require('jsonwebtoken');
const { OpenFeature } = require('@openfeature/server-sdk');
const { MemoryFlagStore, RollgateProvider } = require('@rollgate/redis');
const { defineIdentity, identity, ofrep, requireFeature } = require('@rollgate/express');
const flagSet = require('../booking-api/flags.json');

// DEMO ONLY: a hard-coded HMAC key. Real apps verify tokens from their identity provider (RS256).
const DEMO_SECRET = 'demo-only-secret-never-use-in-production!';
const DEMO_USERS = {
  ada: { roles: ['admin'], tenant: 'internal' },
  bo: { roles: ['agent'], tenant: 'atlas-travel' },
  carol: { roles: ['customer'], tenant: 'smallco' }, // outside the 20% rollout
};

async function createApp() {
  // Swap MemoryFlagStore for { redis: process.env.REDIS_URL, env: 'prod' } to share flags across instances.
  const store = new MemoryFlagStore({ initial: flagSet });
  const provider = new RollgateProvider({ store });
  await OpenFeature.setProviderAndWait(provider);

  const jwtOptions = { secret: DEMO_SECRET, algorithms: ['HS256'], issuer: 'rollgate-demo', audience: 'booking-api' };
  const app = express();
  app.post('/demo/login/:user', (req, res) => {
    const user = DEMO_USERS[req.params.user];
    if (!user) return res.status(404).json({ error: 'unknown demo user' });
    res.type('text/plain').send(jwt.sign({ sub: req.params.user, ...user }, DEMO_SECRET, { algorithm: 'HS256', issuer: 'rollgate-demo', audience: 'booking-api', expiresIn: '1h' }));
  });
  // who is calling, defined once: OFREP and requireFeature decide for the same caller
  const callers = defineIdentity({ jwt: jwtOptions });
  const router = ofrep({ provider, identity: callers }); // before identity(): CORS preflights and SSE carry no token
  app.use(router);
  app.use(identity(callers));
  app.post('/payments/fast', requireFeature('fast-payment'), (req, res) => res.json({ paid: true, flow: 'fast' }));
  app.post('/payments', (req, res) => res.json({ paid: true, flow: 'classic' }));
  return { app, store, close: async () => (router.close(), await OpenFeature.close()) };
}

if (require.main === module) {
  createApp().then(({ app }) => {
    const server = app.listen(Number(process.env.PORT ?? 3000), () => console.log(`express-basic on http://localhost:${server.address().port}`));
  });
}

module.exports = { createApp };
