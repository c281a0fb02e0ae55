import { once } from 'node:events';
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import { OpenFeatureEventEmitter } from '@openfeature/server-sdk';
import { ConfigError } from '@rollgate/redis';
import { ChangeStream, type ChangeStreamOptions } from '@rollgate/server';

// OFREP SSE behind a load balancer: a stream ticket issued by one instance opens a stream on any
// other that shares the secret; the secret rotates (a list: the first signs, all verify) by the
// documented rolling procedure with no ticket refused along the way (docs/operations.md).

const OLD = 'o'.repeat(32);
const NEW = 'n'.repeat(32);
const TTL = 3600;

/** One app instance: a ChangeStream behind its own HTTP server (`GET /?ticket=…`). */
interface Instance {
  stream: ChangeStream;
  server: Server;
  port: number;
}

const instances: Instance[] = [];
afterEach(async () => {
  for (const i of instances.splice(0)) {
    i.stream.close();
    i.server.close();
    i.server.closeAllConnections();
  }
});

async function instance(ticketSecret: ChangeStreamOptions['ticketSecret']): Promise<Instance> {
  const stream = new ChangeStream({ events: new OpenFeatureEventEmitter(), ticketSecret, ticketTtlSec: TTL });
  const server = createServer((req, res) => stream.handle(req, res, new URL(req.url!, 'http://x').searchParams.get('ticket') ?? undefined));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const i = { stream, server, port: (server.address() as { port: number }).port };
  instances.push(i);
  return i;
}

/** Opens the stream with `ticket`: 200 (the SSE preamble read) or the refusal's status. */
async function open(i: Instance, ticket: string): Promise<number> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => get({ host: '127.0.0.1', port: i.port, path: `/?ticket=${ticket}` }, resolve).on('error', reject));
  if (res.statusCode === 200) await once(res, 'data');
  res.destroy();
  return res.statusCode!;
}

it('a ticket issued by one instance opens a stream on another that shares the secret, and only there', async () => {
  const [a, b] = [await instance(OLD), await instance(OLD)];
  const stranger = await instance(NEW);
  const ticket = a.stream.issueTicket('user-1');
  expect(await open(b, ticket)).toBe(200);
  expect(await open(a, b.stream.issueTicket('user-1'))).toBe(200);
  expect(await open(stranger, ticket)).toBe(401); // bad-stream-ticket: the client refetches, and gets one that works
  // the same caller tag everywhere (the per-caller cap counts across instances' tickets alike)
  expect(b.stream.verifyTicket(ticket)).toBe(a.stream.verifyTicket(a.stream.issueTicket('user-1')));
  // instances sharing the secret agree on the ETag salt (a 304 from any of them)
  expect(a.stream.etagSalt()).toBe(b.stream.etagSalt());
});

it('rotating the secret by the documented rolling steps refuses no ticket at any moment, and changes the ETag once', async () => {
  // each step is a rolling deploy: instances change one by one, so every pair of adjacent
  // configurations runs side by side behind the load balancer
  const steps: ChangeStreamOptions['ticketSecret'][] = [OLD, [OLD, NEW], [NEW, OLD], NEW];
  const now = Date.now();
  // tickets in clients' hands: every one issued at any step, by any configuration
  const issued: { step: number; ticket: string; at: number }[] = [];
  const salts: string[] = [];
  for (let step = 0; step < steps.length; step++) {
    const before = await instance(steps[Math.max(0, step - 1)]);
    const after = await instance(steps[step]);
    // step 3 (drop the old secret) comes a ticket lifetime after step 2 finished — after the
    // last instance stopped signing with the old secret
    const at = step === 3 ? now + 2 * 60_000 + (TTL + 1) * 1000 : now + step * 60_000;
    for (const i of [before, after]) issued.push({ step, ticket: i.stream.issueTicket(`user-${step}`, at), at });
    for (const t of issued) {
      // a ticket still unexpired at this step opens on both configurations running now
      const live = Number(t.ticket.split('.')[0]) * 1000 >= at;
      for (const i of [before, after]) expect([step, t.step, live && i.stream.verifyTicket(t.ticket, at) !== undefined]).toEqual([step, t.step, live]);
    }
    salts.push(after.stream.etagSalt(now));
    // over HTTP too, for the tickets issued now
    for (const t of issued.filter((x) => x.step === step && step < 3)) for (const i of [before, after]) expect(await open(i, t.ticket)).toBe(200);
    for (const i of [before, after]) {
      i.stream.close();
      i.server.close();
    }
  }
  // the ETag salt follows the signing secret: it changes when [new, old] takes over signing (so a
  // revalidating client gets a 200 with a stream URL signed by the new secret), and only then
  expect(salts[1]).toBe(salts[0]);
  expect(salts[2]).not.toBe(salts[1]);
  expect(salts[3]).toBe(salts[2]);
});

it('skipping the first step would refuse tickets: an instance still on [old] cannot verify one signed by [new, old]', async () => {
  const still = await instance(OLD);
  const rotated = await instance([NEW, OLD]);
  expect(await open(still, rotated.stream.issueTicket('user-1'))).toBe(401);
  expect(await open(rotated, still.stream.issueTicket('user-1'))).toBe(200);
});

it('refuses an empty list and short secrets, naming which', () => {
  const events = new OpenFeatureEventEmitter();
  expect(() => new ChangeStream({ events, ticketSecret: [] })).toThrow(new ConfigError('changeStream: ticketSecret is an empty list; give at least one secret (the first signs tickets)'));
  expect(() => new ChangeStream({ events, ticketSecret: [NEW, 'short'] })).toThrow('changeStream: ticketSecret[1] must be at least 32 bytes');
  expect(() => new ChangeStream({ events, ticketSecret: 'short' })).toThrow('changeStream: ticketSecret must be at least 32 bytes');
});
