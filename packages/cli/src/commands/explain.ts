import { compileFlagSet, FlagValidationError, type EvaluationContext } from '@rollgate/core';
import type { Command } from 'commander';
import { CommandContext, type CliDependencies } from '../context';
import { UsageError } from '../errors';
import { brief, printable } from '../output';
import { requireFlag } from './flags';

// rollgate explain <key> --context '{…}'

function parseContext(text: string): EvaluationContext {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--context must be a JSON object: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new UsageError(`--context must be a JSON object, got ${brief(value)}`);
  return value as EvaluationContext;
}

export function registerExplain(program: Command, deps: CliDependencies): void {
  program
    .command('explain <key>')
    .description('evaluate a flag for a context and show which rule decided, step by step')
    .option('--context <json>', 'the evaluation context, a JSON object (targetingKey, role, tenant, …)', '{}')
    .addHelpText('after', `\nExample:\n  rollgate explain fast-payment --env prod --context '{"targetingKey": "u-42", "tenant": "acme"}'`)
    .action(async (key: string, opts: { context: string }, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      const context = parseContext(opts.context);
      await ctx.withStore(async (store) => {
        const set = await store.load();
        requireFlag(set, key, ctx.env);
        const { snapshot, errors } = compileFlagSet({ flags: set.flags, $evaluators: set.evaluators });
        if (!snapshot.has(key)) {
          throw new FlagValidationError(errors.filter((e) => e.flagKey === key), `flag "${key}" is stored but invalid, so it is not served`);
        }
        const { result, steps, summary } = snapshot.explain(key, context);
        // a percentage split buckets by targetingKey: without one it decides nothing, which reads as a bug
        const splitWithoutKey =
          !Object.prototype.hasOwnProperty.call(context, 'targetingKey') &&
          steps.some((s) => s.rule !== null && typeof s.rule === 'object' && Object.prototype.hasOwnProperty.call(s.rule, 'fractional') && (s.outcome === undefined || s.outcome === null));
        if (splitWithoutKey) {
          ctx.out.warn(`the percentage split needs a targetingKey to put the caller in a bucket: give one, e.g. --context '{"targetingKey": "user-42"}'`);
        }
        ctx.out.result({ env: ctx.env, version: set.version, key, context, result, steps, summary }, () => [
          `${key} (env "${ctx.env}", version ${set.version}) for ${brief(context, 200)}`,
          ...steps.map((s, i) => `  ${i + 1}. ${printable(`${s.path}: ${s.note}`)}\n       ${brief(s.rule)} → ${brief(s.outcome, 60)}`),
          `=> ${result.variant !== undefined ? `variant "${printable(result.variant)}" (${brief(result.value)})` : `no variant (code default)`}, reason ${result.reason}${result.errorCode ? ` ${result.errorCode}` : ''}`,
          `   ${printable(summary)}`,
        ]);
      });
    });
}
