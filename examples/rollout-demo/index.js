'use strict';
// Rollgate in one terminal: pilot groups, a percentage ramp 20% → 50% → 100%, and a kill switch,
// heard live by a provider that evaluates from memory. Run with `npm run demo:console` from the repo
// root. With Redis it writes to a namespace of its own, `rollgate:{demo-console-<pid>}`, deleted when
// it ends: it never overwrites flags it did not create. `npm run demo:console -- --env demo` drives
// the booking demo's flags instead (`npm start`), and its open pages follow every step.
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { OpenFeature, ProviderEvents } = require('@openfeature/server-sdk');
const { Redis } = require('ioredis');
const { MemoryFlagStore, RedisFlagStore, RollgateProvider, redactRedisUrl } = require('@rollgate/redis');

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** `--env <name>`: an existing namespace to drive (on purpose); default: a throwaway one of this process. */
function chosenEnv(argv) {
  const i = argv.indexOf('--env');
  if (i < 0) return undefined;
  const env = argv[i + 1];
  if (!env || env.startsWith('-')) {
    console.error('usage: npm run demo:console [-- --env <name>]   (e.g. --env demo: the booking demo\'s flags)');
    process.exit(2);
  }
  return env;
}
const CHOSEN_ENV = chosenEnv(process.argv.slice(2));
const ENV = CHOSEN_ENV ?? `demo-console-${process.pid}`;
const flagSet = JSON.parse(readFileSync(join(__dirname, '../booking-api/flags.json'), 'utf8'));

const users = [
  { targetingKey: 'ada', roles: ['admin'], tenant: 'internal' },
  { targetingKey: 'bo', roles: ['agent'], tenant: 'atlas-travel' }, // a VIP agency
  ...Array.from({ length: 1000 }, (_, i) => ({ targetingKey: `customer-${i}`, roles: ['customer'], tenant: `agency-${i % 40}` })),
];

async function redisReachable() {
  const probe = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

async function main() {
  const useRedis = await redisReachable();
  const store = useRedis ? new RedisFlagStore({ redis: REDIS_URL, env: ENV }) : new MemoryFlagStore();
  const where = redactRedisUrl(REDIS_URL);
  if (!useRedis) console.log(`store: embedded in-memory (no Redis at ${where})`);
  else if (CHOSEN_ENV === undefined) console.log(`store: Redis at ${where}, namespace rollgate:{${ENV}} of its own (deleted at the end; --env demo drives the booking demo's flags)`);
  else {
    const existing = await store.load();
    console.log(
      `store: Redis at ${where}, namespace rollgate:{${ENV}} as asked (--env)` +
        (existing.version > 0 ? `: it holds ${Object.keys(existing.flags).length} flag(s) at version ${existing.version}; fast-payment and vip-agencies are rewritten, audited as actor "demo"` : ''),
    );
  }
  try {
    await run(store);
  } finally {
    await OpenFeature.close();
    if (useRedis && CHOSEN_ENV === undefined) await removeNamespace(store);
    await store.close(); // the provider closes only what it created; this store is ours
  }
  console.log('\nNext: see README.md (quick starts) and docs/.');
}

/** Deletes every key of the throwaway namespace (flags, audit, write records…): nothing else. */
async function removeNamespace(store) {
  const redis = store.connection;
  const keys = [];
  for await (const batch of redis.scanStream({ match: `rollgate:{${ENV}}:*`, count: 500 })) keys.push(...batch);
  if (keys.length > 0) await redis.del(...keys);
  console.log(`removed namespace rollgate:{${ENV}} (${keys.length} keys)`);
}

async function run(store) {

  // One write path: validated, versioned, audited, published.
  await store.apply(
    [
      { kind: 'evaluator', key: 'vip-agencies', definition: flagSet.$evaluators['vip-agencies'] },
      { kind: 'flag', key: 'fast-payment', definition: flagSet.flags['fast-payment'] },
    ],
    { actor: 'demo', reason: 'seed from examples/booking-api/flags.json' },
  );

  const provider = new RollgateProvider({ store });
  await OpenFeature.setProviderAndWait(provider);
  const client = OpenFeature.getClient();
  let changed;
  client.addHandler(ProviderEvents.ConfigurationChanged, (e) => changed?.(e));
  const nextChange = () => new Promise((resolve) => (changed = resolve));

  const report = async (label) => {
    const details = await Promise.all(users.map((u) => client.getBooleanDetails('fast-payment', false, u)));
    const customers = details.slice(2);
    const on = customers.filter((d) => d.value).length;
    console.log(
      `${label.padEnd(34)} admin ada: ${details[0].value ? 'ON ' : 'off'}  VIP agent bo: ${details[1].value ? 'ON ' : 'off'}  ` +
        `customers: ${String(on).padStart(4)}/1000 on (${(on / 10).toFixed(1)}%)  [${details[2].reason}]`,
    );
  };

  // audited with the CLI's words for the same operations (rollout, disable), as the admin API does
  const change = async (label, patch, reason, action) => {
    const heard = nextChange();
    const started = process.hrtime.bigint();
    const { version } = await store.patchFlag('fast-payment', patch, { actor: 'demo', reason, action });
    const event = await heard;
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    console.log(`  v${version}: ${reason} — heard by the provider in ${ms.toFixed(1)} ms (flagsChanged: ${event.flagsChanged.join(', ')})`);
    await report(label);
  };

  const ramp = (on) => ({
    targeting: { if: [{ in: ['admin', { var: 'roles' }] }, 'on', { $ref: 'vip-agencies' }, 'on', { fractional: [['on', on], ['off', 100 - on]] }] },
  });

  await report('pilot: admins + VIP agencies + 20%');
  await change('ramp to 50%', ramp(50), 'metrics good for a week: 50%', 'rollout');
  await change('ramp to 100%', ramp(100), 'all clear: 100%', 'rollout');
  await change('kill switch', { state: 'DISABLED' }, 'error rate spike: kill switch', 'disable');
  await change('re-enabled at 20%', { state: 'ENABLED', ...ramp(20) }, 'fix deployed: back to 20%', 'patch');

  const audit = await store.audit('fast-payment', { limit: 3 });
  console.log('\naudit (newest first):');
  for (const e of audit) console.log(`  v${e.version} ${new Date(e.time).toISOString()} ${e.actor} ${e.action}: ${e.reason}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
