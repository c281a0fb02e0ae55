import { changedFlagKeys, compileFlagSet, type FlagSnapshot } from '@rollgate/core';
import type { AuditEntry, BaseFlagStore, StoredFlagSet } from '@rollgate/redis';
import type { Command } from 'commander';
import { CommandContext, type CliDependencies } from '../context';
import { sameJson } from '../diff';

// rollgate watch — a live stream of changes until SIGINT/SIGTERM.

/** Watch polls the version this often as a safety net for lost pub/sub messages. */
const WATCH_POLL_MS = 1000;
const RETRY_MS = 1000;

interface Loaded {
  set: StoredFlagSet;
  snapshot: FlagSnapshot;
}

function compile(set: StoredFlagSet): Loaded {
  return { set, snapshot: compileFlagSet({ flags: set.flags, $evaluators: set.evaluators }).snapshot };
}

function changedEvaluators(a: StoredFlagSet, b: StoredFlagSet): string[] {
  const names = new Set([...Object.keys(a.evaluators), ...Object.keys(b.evaluators)]);
  return [...names].filter((n) => !sameJson(a.evaluators[n], b.evaluators[n])).sort();
}

/** Who made the writes in (from, to], from the recent audit (best effort). */
async function writesBetween(store: BaseFlagStore, from: number, to: number): Promise<Pick<AuditEntry, 'version' | 'actor' | 'action' | 'kind' | 'key' | 'reason'>[]> {
  try {
    const entries = await store.audit(undefined, { limit: Math.min(500, Math.max(20, (to - from) * 10)) });
    return entries
      .filter((e) => e.version > from && e.version <= to)
      .reverse()
      .map(({ version, actor, action, kind, key, reason }) => ({ version, actor, action, kind, key, reason }));
  } catch {
    return [];
  }
}

export function registerWatch(program: Command, deps: CliDependencies): void {
  program
    .command('watch')
    .description('print every change to the environment as it happens, until Ctrl-C')
    .addHelpText(
      'after',
      `
Each line: the new version, the flags whose behaviour changed (core's changedFlagKeys between
consecutive loads, so several quick writes may show as one line), changed evaluators, and who
wrote. With --json, one JSON object per line on stdout:
  {"version", "revision", "time", "flags": [...], "evaluators": [...], "writes": [{"version", "actor", "action", "kind", "key", "reason"}]}
and status objects on stderr ({"status": "watching" | "unavailable" | "available", …}).
Ends cleanly (exit 0) on SIGINT or SIGTERM.

Example:
  rollgate watch --env prod`,
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      const stop = deps.waitForStop();
      try {
        await ctx.withStore(
          async (store) => {
            let current = compile(await store.load());
            let stopped = false;
            let ready = false;
            let chain = Promise.resolve();
            const retries = new Set<NodeJS.Timeout>();

            const handle = async (version: number, revision: string): Promise<void> => {
              if (stopped) return;
              if (!ready) {
                ready = true;
                ctx.out.status({ status: 'watching', env: ctx.env, version: current.set.version }, `watching env "${ctx.env}" from version ${current.set.version} (Ctrl-C to stop)`);
              }
              if (version === current.set.version && revision === current.set.revision) return;
              let next: Loaded;
              try {
                next = compile(await store.load());
              } catch (e) {
                ctx.out.warn(`could not load version ${version}: ${(e as Error).message}; retrying`);
                const t = setTimeout(() => {
                  retries.delete(t);
                  enqueue(version, revision);
                }, RETRY_MS);
                retries.add(t);
                return;
              }
              if (next.set.version === current.set.version && next.set.revision === current.set.revision) return;
              // not a step forward: the store went back (restore, failover) or was emptied and re-seeded
              const reset = current.set.revision !== '' && next.set.version <= current.set.version;
              const flags = changedFlagKeys(current.snapshot, next.snapshot).sort();
              const evaluators = changedEvaluators(current.set, next.set);
              const writes = reset ? [] : await writesBetween(store, current.set.version, next.set.version);
              if (reset) ctx.out.warn(`the store went back from version ${current.set.version} to ${next.set.version} (restored, failed over or re-seeded); comparing with what was there before`);
              const time = new Date().toISOString();
              const who = [...new Set(writes.map((w) => `${w.action} by ${w.actor}${w.reason ? ` ("${w.reason}")` : ''}`))].join('; ');
              ctx.out.record(
                { version: next.set.version, revision: next.set.revision, time, flags, evaluators, writes },
                `version ${next.set.version}  ${time}  flags: ${flags.join(', ') || '(no behaviour change)'}${evaluators.length ? `  evaluators: ${evaluators.join(', ')}` : ''}${who ? `  — ${who}` : ''}`,
              );
              current = next;
            };
            const enqueue = (version: number, revision: string) => {
              chain = chain.then(() => handle(version, revision)).catch((e: unknown) => ctx.out.warn(`watch: ${(e as Error).message}`));
            };

            const unwatch = store.watch({
              onChange: enqueue,
              onUnavailable: (e) => ctx.out.status({ status: 'unavailable', message: e.message }, `Redis unreachable (${e.message}); waiting for it to come back`),
              onAvailable: () => ctx.out.status({ status: 'available' }, 'Redis is reachable again; resyncing'),
            });
            try {
              await stop.promise;
            } finally {
              stopped = true;
              unwatch();
              for (const t of retries) clearTimeout(t);
              await chain;
            }
            ctx.out.info('stopped');
          },
          { pollIntervalMs: WATCH_POLL_MS },
        );
      } finally {
        stop.dispose();
      }
    });
}
