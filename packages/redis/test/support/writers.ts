import type { RedisFlagStore } from '@rollgate/redis';

// A writer that runs during a failover: what it was told about every write it sent.

/** A flag whose value is the write's number, so that which write the store holds can be read back. */
export const counter = (n: number) => ({ state: 'ENABLED', variants: { n }, defaultVariant: 'n', metadata: { n } });

export interface WriterLog {
  acknowledged: { writeId: string; version: number }[];
  failed: { writeId: string; error: Error }[];
}

/** Writes `counter-<name>` in a loop (each write with its own write id) until `stop()`; every outcome logged. */
export function startWriter(name: string, store: RedisFlagStore, pauseMs = 10): { log: WriterLog; stop: () => Promise<void> } {
  const log: WriterLog = { acknowledged: [], failed: [] };
  let running = true;
  const done = (async () => {
    for (let n = 1; running; n++) {
      const writeId = `${name}-${n}`;
      try {
        const r = await store.putFlag(`counter-${name}`, counter(n), { actor: name, writeId });
        log.acknowledged.push({ writeId, version: r.version });
      } catch (e) {
        log.failed.push({ writeId, error: e as Error });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  })();
  return {
    log,
    stop: async () => {
      running = false;
      await done;
    },
  };
}
