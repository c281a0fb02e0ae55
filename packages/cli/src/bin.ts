#!/usr/bin/env node
import { runCli } from './program';

// `rollgate … | head` closes stdout early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

void runCli(process.argv.slice(2)).then((code) => {
  // Every command has closed its store by now. Exit as soon as the output is flushed rather
  // than wait for the event loop to drain: after a failed connection ioredis keeps a 2 s
  // disconnect timer alive, and a script should get its exit code at once.
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
});
