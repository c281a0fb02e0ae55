import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { RedisFlagStore } from '@rollgate/redis';
import { registerAudit } from './commands/audit';
import { registerController } from './commands/controller';
import { registerExplain } from './commands/explain';
import { registerFlags } from './commands/flags';
import { registerKillSwitch } from './commands/kill-switch';
import { registerPlan } from './commands/plan';
import { registerRollout } from './commands/rollout';
import { registerSegment } from './commands/segment';
import { registerFeedback } from './commands/feedback';
import { registerWatch } from './commands/watch';
import type { CliDependencies } from './context';
import { UsageError } from './errors';
import { EXIT, EXIT_CODES_HELP, reportOf } from './exit-codes';
import { Output } from './output';

const VERSION = '0.1.0';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

function minReplicas(value: string): number {
  if (!/^\d{1,4}$/.test(value) || Number(value) > 1000) throw new InvalidArgumentError('must be an integer from 0 to 1000');
  return Number(value);
}

/**
 * The `rollgate` program. Commands report failures by throwing; {@link runCli} turns them into
 * messages and exit codes. Usage errors surface as CommanderError (exitOverride).
 */
export function createProgram(deps: CliDependencies): Command {
  const program = new Command('rollgate');
  program
    .description('Manage Rollgate feature flags in Redis: flags, segments, kill switch, rollout %, audit, revert, explain, watch, guarded rollout plans and their controller.')
    .version(VERSION, '-V, --version', 'print the CLI version')
    .addOption(
      new Option(
        '--redis <url>',
        'Redis URL: redis://[[user]:password@]host:port[/db] (rediss:// for TLS); Sentinel: redis+sentinel://[[user]:password@]sentinel:port[,sentinel:port…]/<master name>[/db][?sentinelPassword=…]; ' +
          'Cluster: redis+cluster://[[user]:password@]node:port[,node:port…] (rediss+… for TLS)',
      )
        .env('REDIS_URL')
        .default(DEFAULT_REDIS_URL),
    )
    .addOption(
      new Option('--min-replicas <n>', 'acknowledge a write only once this many replicas have it (WAIT): with Sentinel or Cluster it then survives a failover; otherwise the command fails, saying so (exit 7)')
        .env('ROLLGATE_MIN_REPLICAS')
        .argParser(minReplicas),
    )
    .addOption(new Option('--env <name>', 'environment (namespace in Redis: rollgate:{<env>}:…)').env('ROLLGATE_ENV').default('default'))
    .addOption(new Option('--actor <name>', 'who makes the change, recorded in the audit (default: your OS user name)').env('ROLLGATE_ACTOR'))
    .option('--reason <text>', 'why, recorded in the audit of every write')
    .option('--write-id <id>', 'idempotency key of the write, recorded in the audit: a write id is applied at most once (retry a write whose outcome was unknown, exit 7, with the id it printed)')
    .option('--json', 'machine output: one JSON document on stdout, JSON messages on stderr')
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => deps.io.stdout(s),
      writeErr: (s) => deps.io.stderr(s),
    })
    .addHelpText(
      'after',
      `${EXIT_CODES_HELP}\n\nExamples:\n  rollgate flags list --env prod\n  rollgate disable fast-payment --env prod --reason "incident 42"\n  rollgate rollout fast-payment 20 --env prod\n` +
        `  REDIS_URL=redis://redis.internal:6379 rollgate audit --limit 10 --json\n` +
        `  REDIS_URL='redis+sentinel://:secret@sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/rollgate' rollgate disable fast-payment --env prod --min-replicas 1\n` +
        `  rollgate flags list --env prod --redis 'redis+cluster://redis-1:6379,redis-2:6379,redis-3:6379'`,
    );

  registerFlags(program, deps);
  registerKillSwitch(program, deps);
  registerRollout(program, deps);
  registerSegment(program, deps);
  registerAudit(program, deps);
  registerExplain(program, deps);
  registerWatch(program, deps);
  registerFeedback(program, deps);
  registerPlan(program, deps);
  registerController(program, deps);
  return program;
}

async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, text, { encoding: 'utf8', flag: 'wx' });
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new UsageError(`cannot write ${path}: ${(e as Error).message}`);
  }
}

async function readInput(path: string): Promise<string> {
  try {
    if (path === '-') {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    }
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

/** The real world: process streams, signals and files, and a RedisFlagStore per command. */
export function processDependencies(): CliDependencies {
  return {
    io: { stdout: (s) => void process.stdout.write(s), stderr: (s) => void process.stderr.write(s) },
    openStore: (options) =>
      new RedisFlagStore({
        redis: options.redis,
        env: options.env,
        ...(options.pollIntervalMs ? { pollIntervalMs: options.pollIntervalMs } : {}),
        ...(options.minReplicas ? { minReplicas: options.minReplicas } : {}),
      }),
    waitForStop: () => {
      let onSignal = () => {};
      const promise = new Promise<void>((resolve) => {
        onSignal = () => resolve();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
      });
      return {
        promise,
        dispose: () => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        },
      };
    },
    readFile: readInput,
    writeFile: atomicWrite,
  };
}

/** Runs the CLI; resolves to the exit code (never throws, never calls process.exit). */
export async function runCli(argv: readonly string[], deps: CliDependencies = processDependencies()): Promise<number> {
  const program = createProgram(deps);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // help and --version exit 0; `rollgate` or `rollgate flags` alone print help and are usage errors
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT.ok;
      if (error.code === 'commander.help') return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return EXIT.usage; // commander has printed the message
    }
    const json = program.opts<{ json?: boolean }>().json === true;
    const report = reportOf(error);
    new Output(deps.io, json).error(report);
    if (report.exitCode === EXIT.unexpected && process.env.ROLLGATE_DEBUG && error instanceof Error && error.stack) deps.io.stderr(`${error.stack}\n`);
    return report.exitCode;
  }
}
