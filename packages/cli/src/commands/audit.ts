import type { AuditEntry } from '@rollgate/redis';
import type { Command } from 'commander';
import { CommandContext, loadPinned, type CliDependencies } from '../context';
import { describeChange } from '../diff';
import { printable, table } from '../output';
import { EXPECTED_VERSION_HELP, parseCount, parseVersion } from '../parsers';

// rollgate audit [key] [--limit n] | revert <key> [--to <version>]

function changeOf(e: AuditEntry): string {
  const change = e.before === null ? 'added' : e.after === null ? 'removed' : 'changed';
  if (e.kind === 'plan') return `rollout plan ${change}`; // a flag's plan (@rollgate/rollouts): no definition to compare
  // "~ flag key: state …" → "state …"
  const line = describeChange({ kind: e.kind, key: e.key, change, before: e.before, after: e.after });
  const colon = line.indexOf(': ');
  return change === 'changed' ? (colon >= 0 ? line.slice(colon + 2) : '') : change;
}

function isoTime(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z') : '?';
}

export function registerAudit(program: Command, deps: CliDependencies): void {
  program
    .command('audit [key]')
    .description('show the audit trail, newest first: version, time, actor, action, what changed, reason')
    .option('--limit <n>', 'most entries to show', parseCount, 20)
    .addHelpText('after', '\nEach write of N flags/evaluators adds N entries with the same version.\n\nExamples:\n  rollgate audit --env prod\n  rollgate audit fast-payment --limit 5 --json')
    .action(async (key: string | undefined, opts: { limit: number }, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      await ctx.withStore(async (store) => {
        const entries = await store.audit(key, { limit: opts.limit });
        if (entries.length === 0) ctx.out.info(key === undefined ? `env "${ctx.env}" has no audit entries` : `no audit entries for "${key}" in env "${ctx.env}"`);
        ctx.out.result({ env: ctx.env, entries }, () =>
          entries.length === 0
            ? []
            : table([
                ['VERSION', 'TIME', 'ACTOR', 'ACTION', 'KEY', 'CHANGE', 'REASON'],
                ...entries.map((e) => [String(e.version), isoTime(e.time), e.actor, e.action, `${e.kind === 'evaluator' ? '$evaluators.' : ''}${e.key}`, changeOf(e), e.reason]),
              ]),
        );
      });
    });

  program
    .command('revert <key>')
    .description("restore a flag (or, with --evaluator, an evaluator) to an earlier definition, from the audit")
    .option('--to <version>', 'restore the definition as of this version (after its writes); default: undo the latest change', parseVersion)
    .option('--evaluator', '<key> names an $evaluators entry, not a flag')
    .option('--expected-version <n>', EXPECTED_VERSION_HELP, parseVersion)
    .addHelpText(
      'after',
      `
The earlier definition is read from the audit and written back exactly, as a new version (audit
action "revert"; the reason defaults to "revert to version N"). If it did not exist then, it is
removed. Exit 5 when the audit has no entry for <key>.

Examples:
  rollgate revert fast-payment --env prod --reason "error rate up"
  rollgate revert fast-payment --to 41`,
    )
    .action(async (key: string, opts: { to?: number; evaluator?: boolean; expectedVersion?: number }, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      const kind = opts.evaluator === true ? 'evaluator' : 'flag';
      ctx.actor();
      await ctx.withStore(async (store) => {
        const current = await loadPinned(store, opts.expectedVersion);
        const options = ctx.writeOptions('revert', current.version);
        const result = await store.revert(key, { kind, ...(opts.to !== undefined ? { toVersion: opts.to } : {}) }, options);
        if (result.unchanged) {
          // the definition it would restore is what is stored (perhaps with its keys in another order)
          const target = opts.to !== undefined ? `its definition as of version ${opts.to}` : 'what it was before the latest change';
          ctx.out.info(`no changes: ${kind} "${key}" already has ${target} (version ${current.version}); nothing written`);
          ctx.out.result({ env: ctx.env, key, kind, toVersion: opts.to ?? null, previousVersion: current.version, version: current.version, written: false }, () => `${kind} ${key}: unchanged (version ${current.version})`);
          return;
        }
        const [entry] = (await store.audit(key, { limit: 5 })).filter((e) => e.version === result.version && e.kind === kind);
        const definition = entry ? entry.after : null;
        const line = entry ? printable(changeOf(entry)) : '';
        ctx.out.result(
          { env: ctx.env, key, kind, toVersion: opts.to ?? null, previousVersion: current.version, version: result.version, written: true, definition },
          () => `${kind} ${key}: reverted ${opts.to !== undefined ? `to its definition as of version ${opts.to}` : 'the latest change'}${line ? ` (${line})` : ''} (version ${result.version})`,
        );
      });
    });
}
