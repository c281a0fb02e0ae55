import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';

// A TCP proxy on loopback between clients and a redis-server, for faults Redis cannot make by
// itself: a partition (cut), and replies delayed past a client's timeout while the command runs.

/** A client chunk that runs a Lua script: EVALSHA, or EVAL the first time a connection runs it. */
export const SCRIPT_CALL = /\r\neval(sha)?\r\n/i;

export interface TcpProxy {
  readonly port: number;
  /** Closes every connection and refuses new ones until heal(): a network partition. */
  cut(): void;
  heal(): void;
  /**
   * From the next client chunk matching `pattern` on, holds the server's replies on that
   * connection for `ms`, then delivers them: the command ran, its answer comes too late.
   */
  delayRepliesAfter(pattern: RegExp, ms: number): void;
  /** Forwards the next client chunk matching `pattern`, then cuts (see cut()): the command ran, no answer can come. */
  cutAfter(pattern: RegExp): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let partitioned = false;
  let armed: { pattern: RegExp; ms: number } | undefined;
  let cutOn: RegExp | undefined;
  const cutAll = () => {
    partitioned = true;
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    pairs.clear();
  };
  const server: Server = createServer((client) => {
    if (partitioned) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    let holding = false;
    let muted = false;
    const held: Buffer[] = [];
    client.on('data', (chunk: Buffer) => {
      if (armed && armed.pattern.test(chunk.toString('latin1'))) {
        holding = true;
        setTimeout(() => {
          holding = false;
          for (const c of held.splice(0)) if (!client.destroyed) client.write(c);
        }, armed.ms);
        armed = undefined;
      }
      if (cutOn && cutOn.test(chunk.toString('latin1'))) {
        cutOn = undefined;
        // no reply gets through from now on; once Redis has the command, cut everything
        muted = true;
        upstream.write(chunk, () => setImmediate(cutAll));
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (muted) return;
      if (holding) held.push(chunk);
      else client.write(chunk);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    port,
    cut: cutAll,
    heal: () => {
      partitioned = false;
    },
    delayRepliesAfter: (pattern, ms) => {
      armed = { pattern, ms };
    },
    cutAfter: (pattern) => {
      cutOn = pattern;
    },
    close: async () => {
      cutAll();
      server.close();
      await once(server, 'close');
    },
  };
}
