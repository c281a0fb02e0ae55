import { RolloutController, type TickResult } from '@rollgate/rollouts';
import type { Command } from 'commander';
import { CommandContext, type CliDependencies } from '../context';
import { UsageError } from '../errors';
import { reportOf } from '../exit-codes';
import { usage } from '../parsers';
import { parseDuration, withRollouts } from './plan';

// rollgate controller — runs a RolloutController for the environment until SIGINT/SIGTERM.

const MAX_MS = 2 ** 31 - 1;

/** `5s`, `500ms`, `1m`: a positive whole number of milliseconds. */
export function parseIntervalMs(option: string, text: string): number {
  const ms = Math.round(1000 * parseDuration(text, option, `${option} 5s`, true));
  if (!(ms >= 1 && ms <= MAX_MS)) throw new UsageError(`${option}: expected a duration from 1ms to 24 days (e.g. ${option} 5s), got ${JSON.stringify(text)}`);
  return ms;
}

/** The kind of a hold reason, without its counts: "412/500" and "430/500" are the same hold. */
function gist(reason: string): string {
  return reason.replace(/\d+(\.\d+)?/g, '#');
}

function sleep(ms: number, until: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))), until]).finally(() => clearTimeout(timer));
}

export function registerController(program: Command, deps: CliDependencies): void {
  program
    .command('controller')
    .description("run the rollout controller for the environment until Ctrl-C: it advances healthy plans stage by stage and rolls back regressing ones")
    .option('--interval <duration>', 'how often it looks at the running plans (ms, s, m)', usage((t: string) => parseIntervalMs('--interval', t)), 5000)
    .option('--lease-ttl <duration>', 'time to live of its lease (renewed every tick; keep it a few intervals long)', usage((t: string) => parseIntervalMs('--lease-ttl', t)), 15_000)
    .option('--name <name>', 'names it in the audit as controller:<name>@<lease epoch> (default: host:pid)')
    .addHelpText(
      'after',
      `
Run one or more per environment: one acts at a time, the holder of the environment's lease
(a Redis key with a TTL, renewed every tick); the others stand by and take over when it stops or
its lease expires. Every write it makes carries the lease token, checked by the write scripts.

Each tick reads the plans' new per-second outcome counts (recorded by the apps' OutcomeRecorder)
and, per running plan, rolls back, holds (saying why) or advances. stdout gets one line per
action (--json: one JSON object per line {"time", "env", "flag", "action", "reason", "actor"});
a hold is printed when its kind changes, not on every tick. stderr gets status lines
(--json: {"status": "started" | "leader" | "standby" | "stopped", …}) and warnings.
SIGINT or SIGTERM: finishes the tick in progress, gives the lease up (another controller takes
over at once) and exits 0. Exit 6 when Redis is unreachable at start; later outages are warnings.

Example:
  rollgate controller --env prod --name ops-1`,
    )
    .action(async (opts: { interval: number; leaseTtl: number; name?: string }, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      if (opts.leaseTtl <= opts.interval) {
        throw new UsageError(`--lease-ttl (${opts.leaseTtl} ms) must be longer than --interval (${opts.interval} ms): the lease is renewed once per tick; e.g. --interval 5s --lease-ttl 15s`);
      }
      if (opts.name !== undefined && !/^[\x21-\x7e]{1,64}$/.test(opts.name)) throw new UsageError('--name: 1-64 printable characters without spaces (it names the controller in the audit)');
      const stop = deps.waitForStop();
      try {
        await withRollouts(
          ctx,
          async (_rollouts, store) => {
            await store.load(); // Redis unreachable at start: exit 6, not a controller that only warns
            const controller = new RolloutController({
              store,
              intervalMs: opts.interval,
              leaseTtlMs: opts.leaseTtl,
              ...(opts.name !== undefined ? { name: opts.name } : {}),
              logger: { warn: (message) => ctx.out.warn(message.replace(/^rollgate: /, '')) },
            });
            ctx.out.status(
              { status: 'started', env: ctx.env, intervalMs: opts.interval, leaseTtlMs: opts.leaseTtl },
              `controller started for env "${ctx.env}": every ${opts.interval} ms, lease ${opts.leaseTtl} ms (Ctrl-C to stop)`,
            );
            let stopping = false;
            void stop.promise.then(() => (stopping = true));
            let leader: boolean | undefined;
            let failing = false;
            const lastHold = new Map<string, string>();
            const log = (result: TickResult) => {
              if (result.leader !== leader) {
                leader = result.leader;
                if (leader) ctx.out.status({ status: 'leader', env: ctx.env, actor: controller.actor }, `holding the lease of env "${ctx.env}" as ${controller.actor}`);
                else ctx.out.status({ status: 'standby', env: ctx.env }, `another controller holds the lease of env "${ctx.env}"; standing by`);
              }
              for (const step of result.plans) {
                if (step.action === 'hold') {
                  if (lastHold.get(step.flag) === gist(step.reason)) continue;
                  lastHold.set(step.flag, gist(step.reason));
                } else {
                  lastHold.delete(step.flag);
                }
                const time = new Date().toISOString();
                ctx.out.record({ time, env: ctx.env, flag: step.flag, action: step.action, reason: step.reason, actor: controller.actor }, `${time}  ${step.flag}  ${step.action}  ${step.reason}`);
              }
            };
            try {
              while (!stopping) {
                const started = Date.now();
                try {
                  log(await controller.tick());
                  if (failing) ctx.out.status({ status: 'available' }, 'Redis is reachable again');
                  failing = false;
                } catch (e) {
                  const report = reportOf(e);
                  if (!failing) ctx.out.warn(`tick failed: ${report.message}; retrying every ${opts.interval} ms`);
                  failing = true;
                }
                if (stopping) break;
                await sleep(Math.max(0, opts.interval - (Date.now() - started)), stop.promise);
              }
            } finally {
              await controller.stop();
            }
            ctx.out.status({ status: 'stopped', env: ctx.env }, 'stopped; the lease is released');
          },
          { pollIntervalMs: 60_000 },
        );
      } finally {
        stop.dispose();
      }
    });
}
