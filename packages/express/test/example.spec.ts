import request from 'supertest';

// The example app in examples/express-basic keeps working: a VIP agent reaches the fast payment,
// a customer outside the rollout is refused, and OFREP shows each of them their own value.

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createApp } = require('../../../examples/express-basic') as { createApp: () => Promise<{ app: import('express').Express; close: () => Promise<void> }> };

it('runs the express-basic example end to end', async () => {
  const { app, close } = await createApp();
  try {
    const agent = (await request(app).post('/demo/login/bo').expect(200)).text;
    const customer = (await request(app).post('/demo/login/carol').expect(200)).text;
    await request(app).post('/payments/fast').set('Authorization', `Bearer ${agent}`).expect(200, { paid: true, flow: 'fast' });
    await request(app).post('/payments/fast').set('Authorization', `Bearer ${customer}`).expect(403);
    await request(app).post('/payments/fast').expect(401);
    const flags = await request(app).post('/ofrep/v1/evaluate/flags').set('Authorization', `Bearer ${customer}`).send({}).expect(200);
    expect(flags.body.flags).toEqual([
      { key: 'fast-payment', value: false, variant: 'off', reason: 'SPLIT' },
      // the booking demo's behaviour segment: this app adds no bookingsThisMonth (no enrich), so nobody is in it
      { key: 'priority-support', value: false, variant: 'off', reason: 'TARGETING_MATCH' },
    ]);
  } finally {
    await close();
  }
});
