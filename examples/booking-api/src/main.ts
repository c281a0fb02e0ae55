import { startDemo } from './demo';

// `npm start` at the repo root builds everything and runs this. Environment: REDIS_URL
// (default redis://127.0.0.1:6379; in-memory when nothing answers there), PORT (3000), HOST
// (127.0.0.1), BOOKING_UI_DIR (the built UI).

function port(): number {
  const raw = process.env.PORT ?? '3000';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`booking-api: PORT must be a port number, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

startDemo({
  redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
  port: port(),
  host: process.env.HOST || '127.0.0.1',
  ...(process.env.BOOKING_UI_DIR ? { uiDir: process.env.BOOKING_UI_DIR } : {}),
}).then(
  (demo) => {
    const stop = () => {
      demo.close().then(
        () => process.exit(0),
        (e: unknown) => {
          console.error(e);
          process.exit(1);
        },
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  },
  (e: NodeJS.ErrnoException) => {
    if (e?.code === 'EADDRINUSE') console.error(`booking-api: port ${process.env.PORT ?? 3000} is in use; start with another, e.g. PORT=3001 npm start`);
    else console.error(e);
    process.exit(1);
  },
);
