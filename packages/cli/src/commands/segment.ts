import type { Command } from 'commander';
import { CommandContext, hasOwn, loadPinned, type CliDependencies } from '../context';
import { EditRefusedError, MissingError, UsageError } from '../errors';
import { printable, table } from '../output';
import { EXPECTED_VERSION_HELP, parseVersion } from '../parsers';
import { addToSegment, parseValueFile, readSegment, removeFromSegment, replaceSegment, segmentShapeProblem, type SegmentEdit } from '../segment';

// rollgate segment list [evaluator] | add <evaluator> <attribute> <values…> | remove …

/** Flags whose targeting uses `{"$ref": name}` directly. */
function usedBy(name: string, flags: Record<string, unknown>): string[] {
  const uses = (rule: unknown): boolean => {
    if (Array.isArray(rule)) return rule.some(uses);
    if (rule === null || typeof rule !== 'object') return false;
    const obj = rule as Record<string, unknown>;
    if (Object.keys(obj).length === 1 && obj.$ref === name) return true;
    return Object.values(obj).some(uses);
  };
  return Object.keys(flags)
    .filter((key) => uses((flags[key] as { targeting?: unknown } | null)?.targeting))
    .sort();
}

function valuesText(values: readonly string[], max = 5): string {
  return values.length <= max ? values.join(', ') : `${values.slice(0, max).join(', ')} (+${values.length - max} more)`;
}

const SHAPE_HELP = `
A segment is a shared evaluator of the shape {"in": [{"var": "<attribute>"}, ["v1", "v2", …]]},
used from targeting with {"$ref": "<evaluator>"} — e.g. pilot tenants. <attribute> must match
the segment's (a guard against editing the wrong list); evaluators of any other shape are refused
(exit 3): edit them with \`rollgate flags push\`. Values already present (add) or absent (remove)
are skipped; when nothing changes, nothing is written. Each write is pinned to the version read
(exit 4 on a concurrent change) and audited as "segment-add" / "segment-remove" / "segment-set".

Cohorts from a batch job: --from-file <file> reads the values one per line ('-' for stdin; blank
lines and # comments skipped), 100,000 ids in one write; \`segment set\` replaces the whole list.`;

/** The values of a command: on the command line, from --from-file, or both (files first). */
async function valuesOf(deps: CliDependencies, given: readonly string[], fromFile: string | undefined): Promise<string[]> {
  const fromLines = fromFile === undefined ? [] : parseValueFile(fromFile === '-' ? '<stdin>' : fromFile, await deps.readFile(fromFile));
  const all = [...fromLines, ...given];
  if (all.length === 0) throw new UsageError('name the values on the command line, or give --from-file <file> (one value per line)');
  return all;
}

export function registerSegment(program: Command, deps: CliDependencies): void {
  const segment = program
    .command('segment')
    .description('list and edit the value lists of shared $evaluators (segments used with $ref)')
    .addHelpText('after', SHAPE_HELP);

  segment
    .command('list [evaluator]')
    .description('list the segments (or the values of one, one per line)')
    .addHelpText('after', '\nExamples:\n  rollgate segment list\n  rollgate segment list vip-agencies --env prod')
    .action(async (name: string | undefined, _opts: unknown, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      await ctx.withStore(async (store) => {
        const set = await store.load();
        if (name !== undefined) {
          if (!hasOwn(set.evaluators, name)) throw new MissingError(`evaluator "${name}" does not exist in env "${ctx.env}" (version ${set.version})`);
          const seg = readSegment(set.evaluators[name]);
          if (!seg) throw new EditRefusedError(`evaluator "${name}" is not a value list: ${segmentShapeProblem(set.evaluators[name])}`);
          ctx.out.result({ env: ctx.env, version: set.version, evaluator: name, attribute: seg.attribute, values: seg.values, usedBy: usedBy(name, set.flags) }, () => seg.values.map((v) => printable(v)));
          return;
        }
        const segments: { evaluator: string; attribute: string; values: string[]; usedBy: string[] }[] = [];
        const others: { evaluator: string; usedBy: string[] }[] = [];
        for (const evaluator of Object.keys(set.evaluators).sort()) {
          const seg = readSegment(set.evaluators[evaluator]);
          const users = usedBy(evaluator, set.flags);
          if (seg) segments.push({ evaluator, attribute: seg.attribute, values: seg.values, usedBy: users });
          else others.push({ evaluator, usedBy: users });
        }
        ctx.out.info(`env "${ctx.env}" at version ${set.version}: ${segments.length} segment(s)${others.length ? `, ${others.length} other evaluator(s)` : ''}`);
        ctx.out.result({ env: ctx.env, version: set.version, segments, others }, () =>
          segments.length + others.length === 0
            ? []
            : table([
                ['EVALUATOR', 'ATTRIBUTE', 'VALUES', 'USED BY'],
                ...segments.map((s) => [s.evaluator, s.attribute, `${s.values.length}: ${valuesText(s.values)}`, s.usedBy.join(', ') || '-']),
                ...others.map((o) => [o.evaluator, '-', '(other rule)', o.usedBy.join(', ') || '-']),
              ]),
        );
      });
    });

  const edit = (action: 'add' | 'remove', apply: (name: string, rule: unknown, attribute: string, values: string[]) => SegmentEdit) =>
    segment
      .command(`${action} <evaluator> <attribute> [values...]`)
      .description(action === 'add' ? 'add values to a segment (created on <attribute> when absent)' : 'remove values from a segment (an empty list matches nobody)')
      .option('--from-file <file>', "read the values from a file, one per line ('-': stdin)")
      .option('--expected-version <n>', EXPECTED_VERSION_HELP, parseVersion)
      .addHelpText(
        'after',
        `${SHAPE_HELP}\n\nExamples:\n  rollgate segment ${action} vip-agencies tenant acme globex --env prod --reason "pilot wave 2"\n  rollgate segment ${action} loyal targetingKey --from-file ids.txt --env prod`,
      )
      .action(async (name: string, attribute: string, given: string[], opts: { expectedVersion?: number; fromFile?: string }, cmd: Command) => {
        const ctx = CommandContext.of(cmd, deps);
        const writeAction = `segment-${action}`;
        ctx.actor();
        const values = await valuesOf(deps, given, opts.fromFile);
        await ctx.withStore(async (store) => {
          const current = await loadPinned(store, opts.expectedVersion);
          const existing = hasOwn(current.evaluators, name) ? current.evaluators[name] : undefined;
          const result = apply(name, existing, attribute, values);
          const verb = action === 'add' ? 'added' : 'removed';
          const base = {
            env: ctx.env,
            evaluator: name,
            attribute: result.segment.attribute,
            [verb]: result.changed,
            unchanged: result.unchanged,
            created: result.created,
            values: result.segment.values,
            previousVersion: current.version,
          };
          if (result.unchanged.length > 0) ctx.out.info(`${action === 'add' ? 'already in' : 'not in'} "${name}": ${valuesText(result.unchanged)}`);
          if (result.changed.length === 0 && !result.created) {
            ctx.out.result({ ...base, written: false, version: current.version }, () => `${name}: nothing to ${action} (${result.segment.values.length} value(s))`);
            return;
          }
          const write = await store.putEvaluator(name, result.rule, ctx.writeOptions(writeAction, current.version));
          if (result.created) ctx.out.info(`created segment "${name}" on "${attribute}"; use it in targeting as {"$ref": "${name}"}`);
          ctx.out.result({ ...base, written: true, version: write.version }, () =>
            `${name}: ${verb} ${valuesText(result.changed)} (${result.segment.values.length} value(s), version ${write.version})`,
          );
        });
      });

  edit('add', addToSegment);
  edit('remove', removeFromSegment);

  segment
    .command('set <evaluator> <attribute> [values...]')
    .description('replace the whole value list of a segment (created on <attribute> when absent): a cohort recomputed by a batch job')
    .option('--from-file <file>', "read the values from a file, one per line ('-': stdin)")
    .option('--expected-version <n>', EXPECTED_VERSION_HELP, parseVersion)
    .addHelpText('after', `${SHAPE_HELP}\n\nExample (nightly):\n  rollgate segment set loyal targetingKey --from-file loyal-ids.txt --env prod --reason "nightly cohort"`)
    .action(async (name: string, attribute: string, given: string[], opts: { expectedVersion?: number; fromFile?: string }, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      ctx.actor();
      const values = await valuesOf(deps, given, opts.fromFile);
      await ctx.withStore(async (store) => {
        const current = await loadPinned(store, opts.expectedVersion);
        const existing = hasOwn(current.evaluators, name) ? current.evaluators[name] : undefined;
        const result = replaceSegment(name, existing, attribute, values);
        const base = { env: ctx.env, evaluator: name, attribute: result.segment.attribute, added: result.added, removed: result.removed, created: result.created, count: result.segment.values.length, previousVersion: current.version };
        const write = await store.putEvaluator(name, result.rule, ctx.writeOptions('segment-set', current.version));
        if (write.unchanged) {
          ctx.out.info(`no changes: "${name}" already holds these ${result.segment.values.length} value(s) (version ${current.version}); nothing written`);
          ctx.out.result({ ...base, written: false, version: current.version }, () => `${name}: unchanged (${result.segment.values.length} value(s))`);
          return;
        }
        if (result.created) ctx.out.info(`created segment "${name}" on "${attribute}"; use it in targeting as {"$ref": "${name}"}`);
        ctx.out.result({ ...base, written: true, version: write.version }, () =>
          `${name}: ${result.segment.values.length} value(s), +${result.added.length}${result.added.length ? ` (${valuesText(result.added, 3)})` : ''} -${result.removed.length}${result.removed.length ? ` (${valuesText(result.removed, 3)})` : ''} (version ${write.version})`,
        );
      });
    });
}
