import type { Command } from 'commander';
import { CommandContext, loadPinned, type CliDependencies } from '../context';
import { sameJson } from '../diff';
import { EXPECTED_VERSION_HELP, parseVersion, usage } from '../parsers';
import { parsePercent, setRollout, type SplitBuckets } from '../rollout';
import { requireFlag } from './flags';

// rollgate rollout <key> <percent> [--variant v] [--by attribute]

function bucketsText(buckets: SplitBuckets | null): string {
  return buckets === null ? 'none' : buckets.map(([v, w]) => `${v} ${w}%`).join(' / ');
}

export function registerRollout(program: Command, deps: CliDependencies): void {
  program
    .command('rollout')
    .description("set the weights of the flag's percentage split: <percent> (0-100) of subjects get the variant")
    .argument('<key>', 'flag key')
    .argument('<percent>', 'whole number from 0 to 100 (a trailing % is allowed)', usage(parsePercent))
    .option('--variant <name>', 'the variant that gets <percent>; default "on", or the variant whose value is true')
    .option('--by <attribute>', 'bucket by this context attribute (e.g. tenant) instead of targetingKey; "targetingKey" restores the default')
    .option('--expected-version <n>', EXPECTED_VERSION_HELP, parseVersion)
    .addHelpText(
      'after',
      `
The split edited is the "fractional" at the tail of the targeting: the targeting itself, or the
else branch of a top-level "if" (rules before it, e.g. pilot groups, keep matching first). A
flag without targeting gets {"fractional": [["on", p], ["off", 100-p]]}. Other targeting with
no split there is refused (exit 3) with an explanation. The other variants share the rest in
proportion to their weights (two variants: the other gets 100-p); weights always sum to 100.
--by <attr> writes the bucketing key {"cat": [{"var": "$flagd.flagKey"}, {"var": "<attr>"}]}:
everyone with the same attribute value gets the same variant (subjects without it share one bucket).

The write is pinned to the version read: if anything changes in between, exit 4 and nothing is
written (re-run to apply it to the new state); a rollout is never lost to a concurrent one.

Examples:
  rollgate rollout fast-payment 20 --env prod --reason "ramp step 1"
  rollgate rollout fast-payment 50 --by tenant
  rollgate rollout checkout-theme 10 --variant bold`,
    )
    .action(async (key: string, percent: number, opts: { variant?: string; by?: string; expectedVersion?: number }, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      ctx.actor();
      await ctx.withStore(async (store) => {
        const current = await loadPinned(store, opts.expectedVersion);
        const def = requireFlag(current, key, ctx.env) as Record<string, unknown>;
        const edit = setRollout(key, def, percent, { ...(opts.variant !== undefined ? { variant: opts.variant } : {}), ...(opts.by !== undefined ? { by: opts.by } : {}) });
        if (def.state === 'DISABLED') ctx.out.warn(`flag "${key}" is DISABLED: the split applies once it is enabled (rollgate enable ${key})`);
        const base = {
          env: ctx.env,
          key,
          percent,
          variant: edit.variant,
          by: edit.by,
          bucketingKey: edit.bucketingKey,
          path: edit.path,
          created: edit.created,
          before: edit.before,
          after: edit.after,
          previousVersion: current.version,
        };
        if (sameJson(def, edit.definition)) {
          ctx.out.info(`flag "${key}" already has this split (version ${current.version}); nothing written`);
          ctx.out.result({ ...base, written: false, version: current.version }, () => `${key}: ${bucketsText(edit.after)} (unchanged)`);
          return;
        }
        const result = await store.putFlag(key, edit.definition, ctx.writeOptions('rollout', current.version));
        ctx.out.result({ ...base, written: true, version: result.version }, () =>
          `${key}: ${bucketsText(edit.before)} → ${bucketsText(edit.after)}${edit.by ? ` by ${edit.by}` : ''} at ${edit.path}${edit.created ? ' (created)' : ''} (version ${result.version})`,
        );
      });
    });
}
