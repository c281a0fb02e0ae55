'use strict';
// Throwaway redis-server processes for the benchmarks: a free port on loopback, no automatic
// persistence; SAVE writes a dump that a restart loads (the resync benchmark restarts from it).
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { once } = require('node:events');

async function freePort() {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  s.close();
  return port;
}

/** Starts redis-server; `start()` (again, after `kill()`) resolves at "Ready to accept connections" with that moment (hrtime). */
async function startRedis() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rollgate-bench-'));
  let proc;
  const start = async () => {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const child = proc;
    const readyAt = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c) => {
        out += c;
        if (out.includes('Ready to accept connections')) resolve(process.hrtime.bigint());
      });
      child.once('exit', () => reject(new Error(`redis-server exited: ${out}`)));
    });
    child.stdout.removeAllListeners('data');
    child.removeAllListeners('exit');
    child.stdout.resume();
    return readyAt;
  };
  const kill = async () => {
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    kill,
    stop: () => {
      proc.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { freePort, startRedis };
