import { proportionInterval, type ProportionEstimate } from '@rollgate/core';
import { StoreUnavailableError, type RedisFlagStore } from '@rollgate/redis';

// Users' feedback about a flag, as kept by OutcomeRecorder: per variant, the counts per
// sentiment, the share of negative answers with an anytime-valid interval, and the latest
// comments — untrusted text, returned as text for the caller to show as text.

export interface FeedbackEntry {
  /** Stream id. */
  id: string;
  /** ms since the epoch. */
  time: number;
  variant: string;
  /** The split chose the variant (randomized), rather than a targeting rule. */
  split: boolean;
  sentiment: 'positive' | 'neutral' | 'negative';
  comment: string;
  /** The reporter's targetingKey, when kept. */
  unit?: string;
}

export interface VariantFeedback {
  variant: string;
  positive: number;
  neutral: number;
  negative: number;
  total: number;
  /** The share of negative answers, with a 95% interval valid however often it is looked at. */
  negativeShare: ProportionEstimate;
}

export interface FeedbackSummary {
  flag: string;
  /** Reports read (the stream keeps the latest ones: see OutcomeRecorder's feedbackPerFlag and retention). */
  reports: number;
  variants: VariantFeedback[];
  /** Newest first, at most `limit`, of the variant asked for (or all). */
  latest: FeedbackEntry[];
}

const SENTIMENTS = new Set(['positive', 'neutral', 'negative']);

function fields(list: string[]): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]!] = list[i + 1]!;
  return out;
}

/** Reads a flag's feedback (up to the 10,000 newest reports) and summarises it per variant. */
export async function readFeedback(store: RedisFlagStore, flag: string, options: { variant?: string; limit?: number } = {}): Promise<FeedbackSummary> {
  const limit = options.limit ?? 20;
  if (!Number.isInteger(limit) || limit < 0 || limit > 1000) throw new RangeError(`limit must be an integer from 0 to 1000, got ${String(options.limit)}`);
  let rows: [string, string[]][];
  try {
    rows = (await store.connection.xrevrange(store.keys.feedback(flag), '+', '-', 'COUNT', 10_000)) as [string, string[]][];
  } catch (e) {
    throw new StoreUnavailableError(`Redis did not answer: ${(e as Error).message}`, { cause: e });
  }
  const byVariant = new Map<string, { positive: number; neutral: number; negative: number }>();
  const latest: FeedbackEntry[] = [];
  for (const [id, list] of rows) {
    const f = fields(list);
    if (!f.variant || !SENTIMENTS.has(f.sentiment ?? '')) continue; // not one of ours
    const entry: FeedbackEntry = { id, time: Number(f.time), variant: f.variant, split: f.split === '1', sentiment: f.sentiment as FeedbackEntry['sentiment'], comment: f.comment ?? '' };
    if (f.unit !== undefined) entry.unit = f.unit;
    const counts = byVariant.get(entry.variant) ?? { positive: 0, neutral: 0, negative: 0 };
    counts[entry.sentiment]++;
    byVariant.set(entry.variant, counts);
    if ((options.variant === undefined || entry.variant === options.variant) && latest.length < limit) latest.push(entry);
  }
  const variants = [...byVariant]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([variant, c]) => {
      const total = c.positive + c.neutral + c.negative;
      return { variant, ...c, total, negativeShare: proportionInterval({ n: total, bad: c.negative }) };
    });
  return { flag, reports: rows.length, variants, latest };
}
