import { VersionConflictError, type BaseFlagStore, type StoredFlagSet } from '@rollgate/redis';
import type { Command } from 'commander';
import { CommandContext, hasOwn, loadPinned, type CliDependencies } from '../context';
import { EXPECTED_VERSION_HELP, parseVersion } from '../parsers';
import { requireFlag } from './flags';

// rollgate enable <key> | disable <key> — the kill switch: patches the flag's state.

const RETRIES = 3;

/**
 * What `disable` writes for a flag the store does not hold (an emptied Redis, a removed flag) or
 * cannot read: the kill switch must work exactly then. A DISABLED flag serves every caller's code
 * default with reason DISABLED, whatever its variants; guards deny it.
 */
export const KILLED_PLACEHOLDER = Object.freeze({
  state: 'DISABLED',
  variants: Object.freeze({ off: false }),
  defaultVariant: 'off',
  metadata: Object.freeze({ description: 'written by `rollgate disable` while the flag was missing or unreadable; replace it with the real definition' }),
});

/** Why a placeholder is needed, or undefined when the store holds a readable definition. */
function missingReason(set: StoredFlagSet, key: string): string | undefined {
  if (hasOwn(set.flags, key)) return undefined;
  if (set.problems.some((p) => p.flagKey === key)) return `flag "${key}" is stored but unreadable`;
  return set.version === 0 ? 'the store is empty' : `flag "${key}" does not exist`;
}

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
retried (up to ${RETRIES} times): the state is all it sets, so nothing else can be lost.${
          name === 'disable'
            ? `
A flag that is missing (an emptied Redis, a removed flag) or unreadable is written as a minimal
DISABLED definition, so the kill switch always works. On an empty store every running instance
then adopts that store as it is: its other flags are missing there, so their guards deny until
the flag set is pushed again (\`rollgate flags push\`).`
            : ''
        }

Example:
  rollgate ${name} fast-payment --env prod --reason "incident 42"`,
      )
      .action(async (key: string, opts: { expectedVersion?: number }, cmd: Command) => {
        const ctx = CommandContext.of(cmd, deps);
        ctx.actor();
        await ctx.withStore(async (store) => {
          for (let attempt = 1; ; attempt++) {
            const current = await loadPinned(store, opts.expectedVersion);
            try {
              await setState(ctx, store, key, name, state, current);
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

/** One attempt at the kill switch against the set just read (VersionConflictError when it moved). */
async function setState(ctx: CommandContext, store: BaseFlagStore, key: string, name: string, state: 'ENABLED' | 'DISABLED', current: StoredFlagSet): Promise<void> {
  const base = { env: ctx.env, key, state, previousVersion: current.version };
  const missing = state === 'DISABLED' ? missingReason(current, key) : undefined;
  if (missing !== undefined) {
    const result = await store.putFlag(key, KILLED_PLACEHOLDER, ctx.writeOptions(name, current.version));
    ctx.out.warn(`${missing} in env "${ctx.env}" (version ${current.version}): wrote a minimal DISABLED definition of "${key}"`);
    if (current.version === 0) {
      ctx.out.warn(
        'the store was empty (Redis lost its data, or a new environment): running instances kept their last known flags until now, ' +
          'and now adopt this store as it is — every other flag is missing there, so its guards deny. Push the flag set again: rollgate flags push <file>',
      );
    }
    ctx.out.result({ ...base, changed: true, created: true, version: result.version }, () => `${key}: missing → ${state} (version ${result.version})`);
    return;
  }
  const def = requireFlag(current, key, ctx.env) as Record<string, unknown>;
  if (def.state === state) {
    ctx.out.info(`flag "${key}" is already ${state} (version ${current.version}); nothing written`);
    ctx.out.result({ ...base, changed: false, version: current.version }, () => `${key}: already ${state}`);
    return;
  }
  const result = await store.patchFlag(key, { state }, ctx.writeOptions(name, current.version));
  ctx.out.result({ ...base, changed: true, version: result.version }, () => `${key}: ${String(def.state)} → ${state} (version ${result.version})`);
}
