import { VersionConflictError } from '@rollgate/redis';
import type { Command } from 'commander';
import { CommandContext, loadPinned, type CliDependencies } from '../context';
import { EXPECTED_VERSION_HELP, parseVersion } from '../parsers';
import { requireFlag } from './flags';

// rollgate enable <key> | disable <key> — the kill switch: patches the flag's state.

const RETRIES = 3;

export function registerKillSwitch(program: Command, deps: CliDependencies): void {
  for (const [name, state] of [
    ['enable', 'ENABLED'],
    ['disable', 'DISABLED'],
  ] as const) {
    program
      .command(`${name} <key>`)
      .description(
        name === 'disable'
          ? 'kill switch: set the flag DISABLED (every evaluation serves the code default, everywhere at once)'
          : 'set the flag ENABLED again (its variants and targeting apply)',
      )
      .option('--expected-version <n>', EXPECTED_VERSION_HELP, parseVersion)
      .addHelpText(
        'after',
        `
Only "state" changes (audit action "${name}"). Already ${state}: nothing is written (exit 0).
Without --expected-version, a write that loses a race with an unrelated change is re-read and
retried (up to ${RETRIES} times): the state is all it sets, so nothing else can be lost.

Example:
  rollgate ${name} fast-payment --env prod --reason "incident 42"`,
      )
      .action(async (key: string, opts: { expectedVersion?: number }, cmd: Command) => {
        const ctx = CommandContext.of(cmd, deps);
        ctx.actor();
        await ctx.withStore(async (store) => {
          for (let attempt = 1; ; attempt++) {
            const current = await loadPinned(store, opts.expectedVersion);
            const def = requireFlag(current, key, ctx.env) as Record<string, unknown>;
            const base = { env: ctx.env, key, state, previousVersion: current.version };
            if (def.state === state) {
              ctx.out.info(`flag "${key}" is already ${state} (version ${current.version}); nothing written`);
              ctx.out.result({ ...base, changed: false, version: current.version }, () => `${key}: already ${state}`);
              return;
            }
            try {
              const result = await store.patchFlag(key, { state }, ctx.writeOptions(name, current.version));
              ctx.out.result({ ...base, changed: true, version: result.version }, () => `${key}: ${String(def.state)} → ${state} (version ${result.version})`);
              return;
            } catch (e) {
              if (!(e instanceof VersionConflictError) || opts.expectedVersion !== undefined || attempt >= RETRIES) throw e;
              ctx.out.info(`the store changed while writing (now version ${e.currentVersion}); retrying`);
            }
          }
        });
      });
  }
}
