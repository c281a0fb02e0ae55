import { OpenFeature, ProviderEvents, type Client } from '@openfeature/server-sdk';
import { RedisFlagStore, RollgateProvider } from '@rollgate/redis';
import { decideFeature, featureRequirement, type FeatureDecision } from '@rollgate/server';
import { startRedis, type TestRedis } from '../../redis/test/support/redis-server';

// maxStalenessMs against a hung Redis (SIGSTOP): no decision may pass later than the limit after
// the hang began, whatever the provider's status says by then.

jest.setTimeout(30_000);

let own: TestRedis;
let client: Client;
let provider: RollgateProvider;

beforeAll(async () => {
  own = await startRedis();
  const writer = new RedisFlagStore({ redis: own.url, env: 'stale' });
  await writer.putFlag('fast-payment', { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' }, { actor: 'test-suite' });
  await writer.close();
  // the store's defaults: heartbeat every 500 ms, commands time out after 1000 ms
  provider = new RollgateProvider({ store: { redis: own.url, env: 'stale' }, staleGraceMs: 60_000 });
  await OpenFeature.setProviderAndWait('staleness', provider);
  client = OpenFeature.getClient('staleness');
});
afterAll(async () => {
  await OpenFeature.clearProviders();
  await own.stop();
});

function next(event: ProviderEvents): Promise<void> {
  return new Promise((resolve) => {
    const handler = () => {
      provider.events.removeHandler(event, handler);
      resolve();
    };
    provider.events.addHandler(event, handler);
  });
}

it('no decision passes later than maxStalenessMs after Redis hangs, although the provider says READY for a while; decisions pass again once it answers', async () => {
  const maxStalenessMs = 1500;
  const requirement = featureRequirement('fast-payment', { maxStalenessMs, domain: 'staleness' });
  const ctx = { targetingKey: 'u1' };
  expect(await decideFeature(client, requirement, ctx)).toEqual({ outcome: 'allow' });

  const decisions: { at: number; decision: FeatureDecision; status: string }[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const at = Date.now(); // no later than the moment the decision reads the clock
      const decision = await decideFeature(client, requirement, ctx);
      decisions.push({ at, decision, status: client.providerStatus });
      await new Promise<void>((r) => setImmediate(r));
    }
  })();
  const stale = next(ProviderEvents.Stale);
  own.pause();
  const hungAt = Date.now();
  await stale;
  const staleAt = Date.now();
  while (!decisions.some((d) => d.at > hungAt + maxStalenessMs)) await new Promise<void>((r) => setImmediate(r));
  const ready = next(ProviderEvents.Ready);
  const resumedAt = Date.now();
  own.resume();
  await ready;
  stopped = true;
  await loop;

  const during = decisions.filter((d) => d.at > hungAt && d.at < resumedAt);
  const allowed = during.filter((d) => d.decision.outcome === 'allow');
  const refused = during.filter((d) => d.decision.outcome === 'unavailable');
  // the limit holds exactly: the flags were last confirmed by a check that left before the hang
  expect(allowed.filter((d) => d.at - hungAt > maxStalenessMs)).toEqual([]);
  expect(refused.length).toBeGreaterThan(0);
  expect(refused[0]!.decision).toMatchObject({ outcome: 'unavailable', flagKey: 'fast-payment', reason: expect.stringMatching(/^flags are stale for \d+ ms \(limit 1500 ms\)$/) });
  console.log(
    `hang: STALE after ${staleAt - hungAt} ms; last decision allowed ${allowed.length ? allowed[allowed.length - 1]!.at - hungAt : 'n/a'} ms, ` +
      `first refused ${refused[0]!.at - hungAt} ms into the hang (limit ${maxStalenessMs} ms)`,
  );
  expect(await decideFeature(client, requirement, ctx)).toEqual({ outcome: 'allow' });
});

it('refuses a maxStalenessMs below 100 ms: the flags are always confirmed some milliseconds ago, so every request would be refused', () => {
  expect(() => featureRequirement('fast-payment', { maxStalenessMs: 0 })).toThrow('requireFeature: options.maxStalenessMs must be a number of milliseconds >= 100');
  expect(() => featureRequirement('fast-payment', { maxStalenessMs: 99 })).toThrow('>= 100');
  expect(featureRequirement('fast-payment', { maxStalenessMs: 100 }).maxStalenessMs).toBe(100);
});
