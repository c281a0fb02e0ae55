import 'reflect-metadata';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { OpenFeature, ProviderEvents } from '@openfeature/server-sdk';
import { RedisFlagStore, StoreUnavailableError, type BaseFlagStore } from '@rollgate/redis';
import { AppModule } from './app.module';
import { DemoRuntime } from './demo-runtime';
import { DEMO_USERS } from './demo-users';
import { FLAGS_FILE, LOCAL_REDIS_URL, openDemoStore, redactUrl, rollgateCommand, seedIfEmpty, type StoreChoice } from './flag-store';
import { CONTROLLER, demoPlanSpec, GuardedRollout } from './guarded-rollout';

export interface DemoOptions {
  /**
   * The Redis asked for (main.ts: REDIS_URL). It is the store even when it does not answer at
   * start-up: the guards answer 503 until it does, and the demo never serves an in-memory copy
   * instead (which would ignore a kill switch stored there). Not with `memory`.
   */
  redisUrl?: string;
  /** The embedded in-memory store (main.ts: BOOKING_STORE=memory). Not with `redisUrl`. */
  memory?: boolean;
  /** Neither given: a Redis answering here is used, else the in-memory store. @default redis://127.0.0.1:6379 */
  localRedisUrl?: string;
  /** @default 3000; 0 picks a free port */
  port?: number;
  /** @default '127.0.0.1' (the demo signs admin tokens for anyone who asks: keep it local) */
  host?: string;
  /** The built React UI (`vite build` of examples/booking-web). @default ../booking-web/dist */
  uiDir?: string;
  /** Where the start-up lines go. @default console.log */
  print?: (line: string) => void;
  /** Least time of each stage of the demo plan, s (main.ts: BOOKING_PLAN_STAGE_SEC). @default demo-plan.json's 20 */
  planStageSec?: number;
}

export interface RunningDemo {
  url: string;
  close(): Promise<void>;
}

const UI_DIR = path.resolve(__dirname, '../../booking-web/dist');

function redactedUrl(choice: StoreChoice): string {
  return redactUrl('redisUrl' in choice ? choice.redisUrl : 'local' in choice ? choice.local : '');
}

const FILE = () => path.relative(process.cwd(), FLAGS_FILE) || FLAGS_FILE;

/** Seeds the empty namespace (see seedIfEmpty) and says what it did. */
async function seedAndSay(store: BaseFlagStore, print: (line: string) => void, rollgate: string): Promise<void> {
  const seed = await seedIfEmpty(store);
  if (seed.seeded) print(`flags: seeded from ${FILE()} (version ${seed.version})`);
  else {
    print(`flags: kept the namespace's flags as they are (version ${seed.version}); it is only seeded when empty`);
    if (!seed.hasFastPayment) print(`warning: there is no fast-payment flag; reset with: ${rollgate} flags push ${FILE()} --prune`);
  }
}

/**
 * A Redis that did not answer at start-up: seeds the namespace once it answers (if it is empty
 * then), and says when the flags are served from it. Returns what stops both.
 */
function whenRedisAnswers(store: BaseFlagStore, shown: string, print: (line: string) => void, rollgate: string): () => void {
  let settled = false;
  let trying = false;
  const attempt = () => {
    if (settled || trying) return;
    trying = true;
    seedAndSay(store, print, rollgate).then(
      () => ((settled = true), unwatch()),
      (e: unknown) => {
        if (e instanceof StoreUnavailableError) return; // still down: the next notice tries again
        settled = true;
        unwatch();
        print(`warning: seeding the namespace failed: ${(e as Error).message}`);
      },
    ).finally(() => (trying = false));
  };
  // the store tells its watchers when it answers again, and then what state it holds
  const unwatch = store.watch({ onChange: attempt, onAvailable: attempt });
  const ready = () => print(`store: Redis at ${shown} answers: flag checks use its flags`);
  OpenFeature.addHandler(ProviderEvents.Ready, ready);
  return () => {
    settled = true;
    unwatch();
    OpenFeature.removeHandler(ProviderEvents.Ready, ready);
  };
}

/** Starts the booking demo: store line first, then the app, then the URL and the demo users. */
export async function startDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  const print = options.print ?? ((line: string) => console.log(line));
  if (options.redisUrl !== undefined && options.memory === true) {
    throw new Error('booking-api: REDIS_URL and BOOKING_STORE=memory ask for two different stores; give one');
  }
  const choice: StoreChoice = options.redisUrl !== undefined ? { redisUrl: options.redisUrl } : options.memory === true ? { memory: true } : { local: options.localRedisUrl ?? LOCAL_REDIS_URL };
  const { store, kind, answering, description } = await openDemoStore(choice);
  print(description);
  const cli = rollgateCommand(choice);
  // Guarded rollouts: outcomes, plans and the controller's lease live in Redis.
  const guarded = store instanceof RedisFlagStore ? new GuardedRollout(store, print) : undefined;
  const demo = new DemoRuntime(kind, guarded, guarded ? demoPlanSpec(options.planStageSec) : undefined);
  print(
    guarded
      ? `guarded rollouts: on — outcomes are recorded per arm, and a rollout controller runs in this process every ${CONTROLLER.intervalMs / 1000} s (one acts per environment, by lease)`
      : 'guarded rollouts: OFF — they need Redis (outcomes, plans and the controller\'s lease live there): set REDIS_URL, or start a local Redis, to run the demo plan',
  );

  let app: NestExpressApplication | undefined;
  let stopWaiting = () => {};
  try {
    if (answering) await seedAndSay(store, print, cli.command);
    else {
      print(`flags: not loaded yet; once Redis answers they are served from it as they are there (seeded from ${FILE()} only if the namespace is empty)`);
      stopWaiting = whenRedisAnswers(store, redactedUrl(choice), print, cli.command);
    }

    // not answering: the module does not wait the full 5 s for a provider that cannot be ready
    app = await NestFactory.create<NestExpressApplication>(AppModule.register(store, demo, answering ? {} : { readyTimeoutMs: 500 }), { logger: ['error', 'warn'] });
    app.disable('x-powered-by');
    const uiDir = options.uiDir ?? UI_DIR;
    if (existsSync(path.join(uiDir, 'index.html'))) {
      app.useStaticAssets(uiDir, { index: 'index.html' });
    } else {
      print(`warning: the UI is not built (${uiDir}); run \`npm start\` from the repo root, or \`npm run build -w examples/booking-web\``);
    }
    await app.listen(options.port ?? 3000, options.host ?? '127.0.0.1');
  } catch (e) {
    stopWaiting();
    await guarded?.controller.stop();
    await app?.close().catch(() => undefined);
    await guarded?.recorder.close();
    await store.close();
    throw e;
  }

  const address = app.getHttpServer().address() as { address: string; port: number };
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;
  const url = `http://${host === '127.0.0.1' ? 'localhost' : host}:${address.port}`;
  // the simulated customers pay over HTTP through this very API (a wildcard address: over loopback)
  demo.traffic.target = `http://${address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '[::1]' : host}:${address.port}`;
  guarded?.start();
  print(`booking demo: ${url}`);
  print('sign in as:');
  for (const [name, user] of Object.entries(DEMO_USERS)) print(`  ${name.padEnd(6)} ${user.story}`);
  if (guarded) {
    print(`guarded rollout: as ada, the demo switches under the checkout (Simulate customers, Start the demo plan, then Break fast payment) and the plan in the dashboard; watch it: ${cli.command} plan status fast-payment --watch`);
  }
  print(
    kind === 'redis'
      ? `kill switch: the Rollgate dashboard (${url}/rollgate/; as ada, the link under the checkout), or in another terminal: ${cli.command} disable fast-payment`
      : `kill switch: the Rollgate dashboard (${url}/rollgate/; as ada, the link under the checkout); the CLI needs Redis (set REDIS_URL)`,
  );
  if (kind === 'redis' && cli.passwordLeftOut) print(`note: the commands above leave out REDIS_URL's password: in that terminal, export REDIS_URL (with it) and drop --redis`);

  let closing: Promise<void> | undefined;
  return {
    url,
    close: () =>
      (closing ??= (async () => {
        stopWaiting();
        await demo.traffic.stop(); // the simulated customers first: they call this API
        await guarded?.controller.stop(); // waits for a tick in progress, gives the lease up
        await app!.close(); // ends SSE streams, unbinds and closes the provider
        await guarded?.recorder.close(); // writes the last outcomes (it needs the store)
        await store.close(); // the store is ours, not the module's
      })()),
  };
}
