import { readFeedback, type FeedbackSummary } from '@rollgate/rollouts';
import type { Command } from 'commander';
import { CommandContext, type CliDependencies } from '../context';
import { table } from '../output';
import { parseCount } from '../parsers';
import { withRollouts } from './plan';

// rollgate feedback <flag> [--variant v] [--limit n]: what users said about a flag, per variant.

function share(s: FeedbackSummary['variants'][number]['negativeShare']): string {
  if (s.status !== 'ok') return '–';
  const p = (x: number) => `${(100 * x).toFixed(1)}%`;
  return `${p(s.share)} (95%: ${p(s.lower)}–${p(s.upper)})`;
}

export function registerFeedback(program: Command, deps: CliDependencies): void {
  program
    .command('feedback <flag>')
    .description("users' feedback about a flag, per variant: sentiment counts, the share of negative answers, the latest comments")
    .option('--variant <name>', 'only the comments of this variant')
    .option('--limit <n>', 'most comments to show', parseCount, 20)
    .addHelpText(
      'after',
      `
Feedback comes from pages (sendFeedback, the React feedback component) through the events
endpoint, attributed to the variant the server serves each user. Comments are shown as text:
control and invisible characters escaped. The negative share's interval stays valid however often
it is looked at. With --json: {"env", "flag", "reports", "variants": [...], "latest": [...]}.

Example:
  rollgate feedback fast-payment --env prod --variant on`,
    )
    .action(async (flag: string, opts: { variant?: string; limit: number }, cmd: Command) => {
      const ctx = CommandContext.of(cmd, deps);
      await withRollouts(ctx, async (_rollouts, store) => {
        const summary = await readFeedback(store, flag, { limit: Math.min(opts.limit, 1000), ...(opts.variant !== undefined ? { variant: opts.variant } : {}) });
        ctx.out.result({ env: ctx.env, ...summary }, () => {
          if (summary.reports === 0) return [`no feedback about "${flag}" in env "${ctx.env}" yet`];
          const lines = [`feedback about "${flag}" in env "${ctx.env}": ${summary.reports} reports`, ''];
          lines.push(...table([['VARIANT', 'POSITIVE', 'NEUTRAL', 'NEGATIVE', 'NEGATIVE SHARE'], ...summary.variants.map((v) => [v.variant, String(v.positive), String(v.neutral), String(v.negative), share(v.negativeShare)])]));
          const comments = summary.latest.filter((e) => e.comment !== '');
          if (comments.length > 0) {
            lines.push('', 'latest comments:');
            lines.push(...table([['TIME', 'VARIANT', 'SENTIMENT', 'COMMENT'], ...comments.map((e) => [new Date(e.time).toISOString().replace(/\.\d{3}Z$/, 'Z'), e.variant, e.sentiment, e.comment])]));
          }
          return lines;
        });
      });
    });
}
