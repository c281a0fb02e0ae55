import 'reflect-metadata';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { DEMO_USERS } from './demo-users';
import { DEMO_ENV, FLAGS_FILE, openDemoStore, seedIfEmpty } from './flag-store';

export interface DemoOptions {
  /** @default process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' */
  redisUrl?: string;
  /** @default 3000; 0 picks a free port */
  port?: number;
  /** @default '127.0.0.1' (the demo signs admin tokens for anyone who asks: keep it local) */
  host?: string;
  /** The built React UI (`vite build` of examples/booking-web). @default ../booking-web/dist */
  uiDir?: string;
  /** Where the start-up lines go. @default console.log */
  print?: (line: string) => void;
}

export interface RunningDemo {
  url: string;
  close(): Promise<void>;
}

const UI_DIR = path.resolve(__dirname, '../../booking-web/dist');

/** Starts the booking demo: store line first, then the app, then the URL and the demo users. */
export async function startDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  const print = options.print ?? ((line: string) => console.log(line));
  const redisUrl = options.redisUrl ?? 'redis://127.0.0.1:6379';
  const { store, kind, description } = await openDemoStore(redisUrl);
  print(description);

  let app: NestExpressApplication | undefined;
  try {
    const seed = await seedIfEmpty(store);
    const file = path.relative(process.cwd(), FLAGS_FILE) || FLAGS_FILE;
    if (seed.seeded) print(`flags: seeded from ${file} (version ${seed.version})`);
    else {
      print(`flags: kept the namespace's flags as they are (version ${seed.version}); it is only seeded when empty`);
      if (!seed.hasFastPayment) print(`warning: there is no fast-payment flag; reset with: npx rollgate --env ${DEMO_ENV} flags push ${file} --prune`);
    }

    app = await NestFactory.create<NestExpressApplication>(AppModule.register(store), { logger: ['error', 'warn'] });
    app.disable('x-powered-by');
    const uiDir = options.uiDir ?? UI_DIR;
    if (existsSync(path.join(uiDir, 'index.html'))) {
      app.useStaticAssets(uiDir, { index: 'index.html' });
    } else {
      print(`warning: the UI is not built (${uiDir}); run \`npm start\` from the repo root, or \`npm run build -w examples/booking-web\``);
    }
    await app.listen(options.port ?? 3000, options.host ?? '127.0.0.1');
  } catch (e) {
    await app?.close().catch(() => undefined);
    await store.close();
    throw e;
  }

  const address = app.getHttpServer().address() as { address: string; port: number };
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;
  const url = `http://${host === '127.0.0.1' ? 'localhost' : host}:${address.port}`;
  print(`booking demo: ${url}`);
  print('sign in as:');
  for (const [name, user] of Object.entries(DEMO_USERS)) print(`  ${name.padEnd(6)} ${user.story}`);
  print(
    kind === 'redis'
      ? `kill switch: the admin panel (as ada), or in another terminal: npx rollgate --env ${DEMO_ENV} disable fast-payment`
      : 'kill switch: the admin panel (as ada); the CLI needs Redis (set REDIS_URL)',
  );

  let closing: Promise<void> | undefined;
  return {
    url,
    close: () =>
      (closing ??= (async () => {
        await app!.close(); // ends SSE streams, unbinds and closes the provider
        await store.close(); // the store is ours, not the module's
      })()),
  };
}
