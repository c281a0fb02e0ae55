import { startDemo, type RunningDemo } from './demo';

// `npm start` at the repo root builds everything and runs this. Environment:
//   REDIS_URL       the Redis to use: always, even when it does not answer yet (flag checks then
//                   answer 503 until it does; never an in-memory copy that would ignore its flags)
//   BOOKING_STORE   `memory`: the embedded in-memory store (not with REDIS_URL)
//   (neither)       a Redis answering at redis://127.0.0.1:6379, else the in-memory store
//   PORT (3000), HOST (127.0.0.1), BOOKING_UI_DIR (the built UI)
//   BOOKING_PLAN_STAGE_SEC  least time of each stage of the demo plan (20, from demo-plan.json)

function port(): number {
  const raw = process.env.PORT ?? '3000';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`booking-api: PORT must be a port number, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

function planStageSec(): number | undefined {
  const raw = process.env.BOOKING_PLAN_STAGE_SEC;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 3600) {
    console.error(`booking-api: BOOKING_PLAN_STAGE_SEC must be a whole number of seconds from 0 to 3600, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

function storeChoice(): { redisUrl?: string; memory?: boolean } {
  const redisUrl = process.env.REDIS_URL || undefined;
  const store = process.env.BOOKING_STORE || undefined;
  if (store !== undefined && store !== 'memory') {
    console.error(`booking-api: BOOKING_STORE must be "memory" (or unset), got ${JSON.stringify(store)}`);
    process.exit(2);
  }
  if (redisUrl !== undefined && store === 'memory') {
    console.error('booking-api: REDIS_URL and BOOKING_STORE=memory ask for two different stores; unset one');
    process.exit(2);
  }
  return redisUrl !== undefined ? { redisUrl } : store === 'memory' ? { memory: true } : {};
}

// Handled from the start: a signal that arrives while the demo starts (even right after its
// last start-up line) stops it cleanly once it is up, instead of killing it half-way.
let started: RunningDemo | undefined;
let stopRequested = false;
const stop = (demo: RunningDemo) =>
  demo.close().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
const onSignal = () => {
  if (stopRequested) return;
  stopRequested = true;
  if (started) void stop(started);
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

startDemo({
  ...storeChoice(),
  port: port(),
  planStageSec: planStageSec(),
  host: process.env.HOST || '127.0.0.1',
  ...(process.env.BOOKING_UI_DIR ? { uiDir: process.env.BOOKING_UI_DIR } : {}),
}).then(
  (demo) => {
    started = demo;
    if (stopRequested) void stop(demo);
  },
  (e: NodeJS.ErrnoException) => {
    if (e?.code === 'EADDRINUSE') console.error(`booking-api: port ${process.env.PORT ?? 3000} is in use; start with another, e.g. PORT=3001 npm start`);
    else console.error(e);
    process.exit(1);
  },
);
