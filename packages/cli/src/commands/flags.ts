import { compileFlagSet, FlagValidationError, formatIssue, type ValidationIssue } from '@rollgate/core';
import type { StoredFlagSet } from '@rollgate/redis';
import type { Command } from 'commander';
import { CommandContext, hasOwn, loadPinned, type CliDependencies } from '../context';
import { describeChange, diffFlagSets, type FlagSetDiff } from '../diff';
import { MissingError } from '../errors';
import { parseFlagFile, toFlagdDocument, type FlagFile } from '../flag-file';
import { printable, table, toJson } from '../output';
import { EXPECTED_VERSION_HELP, parseVersion } from '../parsers';
import { describeSplit } from '../rollout';

// rollgate flags list | get <key> | push <file> | pull [file] | diff <file>

interface FlagSummary {
  key: string;
  state: unknown;
  defaultVariant: unknown;
  variants: string[];
  /** 'static' (no targeting) or 'rules' */
  targeting: 'static' | 'rules';
  /** The split `rollout` edits, when there is one. */
  split: { path: string; buckets: [string, number][]; by: string | null } | null;
  /** False when the stored definition has validation issues (see `issues`). */
  valid: boolean;
}

function summarize(key: string, definition: unknown, invalid: Set<string>): FlagSummary {
  const def = (definition ?? {}) as Record<string, unknown>;
  const targeting = def.targeting;
  const hasTargeting = targeting !== null && typeof targeting === 'object' && Object.keys(targeting).length > 0;
  return {
    key,
    state: def.state ?? null,
    defaultVariant: def.defaultVariant ?? null,
    variants: def.variants !== null && typeof def.variants === 'object' ? Object.keys(def.variants) : [],
    targeting: hasTargeting ? 'rules' : 'static',
    split: describeSplit(def),
    valid: !invalid.has(key),
  };
}

function storedIssues(set: StoredFlagSet): ValidationIssue[] {
  return [...set.problems, ...compileFlagSet({ flags: set.flags, $evaluators: set.evaluators }).errors];
}

/** A flag the store holds but cannot parse is a validation problem (3), not a missing flag (5). */
export function requireFlag(set: StoredFlagSet, key: string, env: string): unknown {
  if (hasOwn(set.flags, key)) return set.flags[key];
  const broken = set.problems.filter((p) => p.flagKey === key);
  if (broken.length > 0) throw new FlagValidationError(broken, `flag "${key}" is stored but unreadable`);
  throw new MissingError(`flag "${key}" does not exist in env "${env}" (version ${set.version})`);
}

function splitText(split: FlagSummary['split']): string {
  if (!split) return '';
  const total = split.buckets.reduce((sum, [, w]) => sum + w, 0);
  const unit = total === 100 ? '%' : '';
  return `split ${split.buckets.map(([v, w]) => `${v} ${w}${unit}`).join(' / ')}${split.by ? ` by ${split.by}` : ''}`;
}

/** One line per change; a key or value from the store cannot break the line (see printable). */
function diffLines(diff: FlagSetDiff): string[] {
  return diff.changes.map((change) => printable(describeChange(change)));
}

function noteOnlyInStore(ctx: CommandContext, diff: FlagSetDiff, verb: string): void {
  if (diff.onlyInStore.length === 0) return;
  const names = diff.onlyInStore.map((e) => printable(`${e.kind} ${e.key}`)).join(', ');
  ctx.out.info(`${diff.onlyInStore.length} in the store but not in the file, ${verb} (use --prune to remove them): ${names}`);
}

export function registerFlags(program: Command, deps: CliDependencies): void {
  const flags = program
    .command('flags')
    .description('list, show, export (pull), compare (diff) and import (push) flag definitions')
    .addHelpText('after', '\nRun `rollgate flags <command> --help` for each command.');

  flags
    .command('list')
    .description('list the flags of the environment: state, default variant, variants, targeting and split')
    .addHelpText('after', '\nExample:\n  rollgate flags list --env prod\n  rollgate flags list --json | jq \'.flags[] | select(.state == "DISABLED") | .key\'')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      await ctx.withStore(async (store) => {
        const set = await store.load();
        const issues = storedIssues(set);
        const invalid = new Set(issues.map((i) => i.flagKey).filter((k): k is string => k !== undefined));
        const keys = [...new Set([...Object.keys(set.flags), ...set.problems.map((p) => p.flagKey).filter((k): k is string => k !== undefined)])].sort();
        const list = keys.map((key) => summarize(key, set.flags[key], invalid));
        ctx.out.info(`env "${ctx.env}" at version ${set.version}: ${list.length} flag(s), ${Object.keys(set.evaluators).length} evaluator(s)`);
        if (list.length === 0) {
          ctx.out.info(
            set.version === 0
              ? `env "${ctx.env}" is empty: nothing was ever written to it (check --env and --redis). Load a flag set with: rollgate flags push <file> --env ${ctx.env}`
              : `env "${ctx.env}" has no flags: add some with: rollgate flags push <file> --env ${ctx.env}`,
          );
        }
        for (const issue of issues) ctx.out.warn(`stored definition is invalid: ${formatIssue(issue)}`);
        ctx.out.result({ env: ctx.env, version: set.version, flags: list, evaluators: Object.keys(set.evaluators).sort(), issues }, () =>
          list.length === 0
            ? []
            : table([
                ['KEY', 'STATE', 'DEFAULT', 'VARIANTS', 'TARGETING'],
                ...list.map((f) => [
                  f.key,
                  String(f.state ?? '?'),
                  f.defaultVariant === null ? '-' : String(f.defaultVariant),
                  f.variants.join(', '),
                  [f.valid ? '' : 'INVALID', f.targeting, splitText(f.split)].filter(Boolean).join(', '),
                ]),
              ]),
        );
      });
    });

  flags
    .command('get <key>')
    .description("print a flag's definition (flagd format)")
    .addHelpText('after', '\nExample:\n  rollgate flags get fast-payment --env prod')
    .action(async (key: string, _opts: unknown, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      await ctx.withStore(async (store) => {
        const set = await store.load();
        const definition = requireFlag(set, key, ctx.env);
        ctx.out.result({ env: ctx.env, version: set.version, key, definition }, () => toJson(definition, 2));
      });
    });

  flags
    .command('pull [file]')
    .description('export the flag set as a flagd flag-definition file (to stdout when no file is given)')
    .addHelpText(
      'after',
      '\nThe file holds {"$schema", "$evaluators", "flags"}, keys sorted; `flags push` takes it back.\n\nExamples:\n  rollgate flags pull flags.prod.json --env prod\n  rollgate flags pull | jq .flags',
    )
    .action(async (file: string | undefined, _opts: unknown, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      await ctx.withStore(async (store) => {
        const set = await store.load();
        for (const p of set.problems) ctx.out.warn(`left out of the export: ${formatIssue(p)}`);
        const text = `${JSON.stringify(toFlagdDocument(set), null, 2)}\n`;
        const counts = { flags: Object.keys(set.flags).length, evaluators: Object.keys(set.evaluators).length };
        if (file === undefined || file === '-') {
          ctx.out.raw(text);
          return;
        }
        await deps.writeFile(file, text);
        ctx.out.info(`wrote ${counts.flags} flag(s) and ${counts.evaluators} evaluator(s) of env "${ctx.env}" (version ${set.version}) to ${file}`);
        ctx.out.result({ env: ctx.env, version: set.version, file, ...counts }, () => []);
      });
    });

  const readFile = async (file: string): Promise<FlagFile> => parseFlagFile(file === '-' ? '<stdin>' : file, await deps.readFile(file));

  flags
    .command('diff <file>')
    .description('show what `flags push <file>` would change (nothing is written)')
    .option('--prune', 'also list as removed what is in the store but not in the file (as push --prune would remove it)')
    .addHelpText('after', '\nExample:\n  rollgate flags diff flags.prod.json --env prod')
    .action(async (fileName: string, opts: { prune?: boolean }, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      const file = await readFile(fileName);
      await ctx.withStore(async (store) => {
        const set = await store.load();
        const prune = opts.prune === true;
        const diff = diffFlagSets(set, file, { prune });
        if (diff.changes.length === 0) ctx.out.info(`no changes: env "${ctx.env}" (version ${set.version}) already matches ${file.file}`);
        noteOnlyInStore(ctx, diff, 'kept by push');
        ctx.out.result({ env: ctx.env, version: set.version, file: file.file, prune, ...diff }, () => diffLines(diff));
      });
    });

  flags
    .command('push <file>')
    .description('make the store match a flagd flag-set file, in one versioned, audited write')
    .option('--prune', 'also remove flags and $evaluators that are in the store but not in the file')
    .option('--dry-run', 'validate and show the changes, write nothing')
    .option('--expected-version <n>', EXPECTED_VERSION_HELP, parseVersion)
    .addHelpText(
      'after',
      `
The whole file is validated first (every issue with its line; exit 3, nothing written). Then
every flag and $evaluator that is new or different in the file is written in ONE write pinned
to the version read (audit action "push"); a concurrent change makes it fail with exit 4.
Without --prune, flags and evaluators that exist only in the store are kept (and listed);
with --prune, the store ends up equal to the file. Top-level "metadata" is not stored.

Examples:
  rollgate flags push flags.prod.json --env prod --reason "JIRA-123"
  rollgate flags diff flags.prod.json --env prod --json | jq .version   # review, then:
  rollgate flags push flags.prod.json --env prod --expected-version 41 --prune`,
    )
    .action(async (fileName: string, opts: { prune?: boolean; dryRun?: boolean; expectedVersion?: number }, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      const file = await readFile(fileName);
      if (file.hasSetMetadata) ctx.out.warn(`${file.file}: the flag-set "metadata" is not stored by Rollgate and was ignored (put metadata on each flag)`);
      const actorOptions = ctx.writeOptions('push', 0); // checks --actor before touching the store
      await ctx.withStore(async (store) => {
        const current = await loadPinned(store, opts.expectedVersion);
        const prune = opts.prune === true;
        const diff = diffFlagSets(current, file, { prune });
        noteOnlyInStore(ctx, diff, 'kept');
        const base = { env: ctx.env, file: file.file, prune, previousVersion: current.version };
        if (diff.changes.length === 0 || opts.dryRun === true) {
          ctx.out.info(diff.changes.length === 0 ? `no changes: env "${ctx.env}" (version ${current.version}) already matches ${file.file}` : `dry run: ${diff.changes.length} change(s), nothing written`);
          ctx.out.result({ ...base, written: false, version: current.version, ...diff }, () => diffLines(diff));
          return;
        }
        const result = await store.apply(
          diff.changes.map((c) => ({ kind: c.kind, key: c.key, definition: c.after })),
          { ...actorOptions, expectedVersion: current.version },
        );
        ctx.out.info(`pushed ${diff.changes.length} change(s) from ${file.file} to env "${ctx.env}": version ${current.version} → ${result.version}`);
        ctx.out.result({ ...base, written: true, version: result.version, ...diff }, () => diffLines(diff));
      });
    });
}
