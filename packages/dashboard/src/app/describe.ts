import { describeSplit, type SplitBuckets } from '../../../core/src/split-edit';
import type { FlagDefinition } from './model';

// Flag definitions in words: the targeting as an ordered list of branches ("if role includes
// admin → on"), segments by name, the split as buckets, a before → after diff, and who a change
// affects. Pure: the components render what these return.

export type Json = unknown;

/** A piece of a sentence: text, a value, a segment (linked by the UI), or raw JSON. */
export type Part = { text: string } | { value: Json } | { segment: string } | { code: Json };

/** What a branch serves. */
export type Outcome = { variant: string } | { split: SplitBuckets; by: string | null } | { nested: Branch[] } | { code: Json } | { none: true };

export interface Branch {
  /** Null: everyone who got this far (the else branch, or targeting without conditions). */
  when: Part[] | null;
  outcome: Outcome;
  /** Where in the targeting (core's path notation). */
  path: string;
}

export interface Segment {
  attribute: string;
  values: string[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function op(rule: unknown): [string, unknown] | undefined {
  if (!isObject(rule)) return undefined;
  const keys = Object.keys(rule);
  return keys.length === 1 ? [keys[0]!, rule[keys[0]!]] : undefined;
}

function varName(v: unknown): string | undefined {
  const o = op(v);
  if (!o || o[0] !== 'var') return undefined;
  const arg = Array.isArray(o[1]) ? o[1][0] : o[1];
  return typeof arg === 'string' ? arg : undefined;
}

/** The segment a shared evaluator describes (`{"in": [{"var": attr}, [values]]}`), or undefined for another rule. */
export function readSegment(rule: unknown): Segment | undefined {
  const o = op(rule);
  if (!o || o[0] !== 'in' || !Array.isArray(o[1]) || o[1].length !== 2) return undefined;
  const attribute = varName(o[1][0]);
  const list = o[1][1];
  if (attribute === undefined || !Array.isArray(list) || list.some((v) => typeof v !== 'string')) return undefined;
  return { attribute, values: list as string[] };
}

/** The canonical rule for a segment (what `rollgate segment add` writes). */
export function segmentRule(segment: Segment): Json {
  return { in: [{ var: segment.attribute }, [...segment.values]] };
}

/** "tenant is one of 3 values" */
export function describeSegment(rule: unknown): string {
  const s = readSegment(rule);
  if (!s) return 'a custom rule';
  return `${s.attribute} is one of ${s.values.length} value${s.values.length === 1 ? '' : 's'}`;
}

const t = (text: string): Part => ({ text });
const val = (value: Json): Part => ({ value });

const COMPARISONS: Record<string, string> = { '==': 'is', '===': 'is', '!=': 'is not', '!==': 'is not', '<': '<', '<=': '≤', '>': '>', '>=': '≥' };

/** A condition in words; raw JSON for what it does not know. */
export function condition(rule: unknown): Part[] {
  const o = op(rule);
  if (!o) return typeof rule === 'boolean' ? [t(rule ? 'always' : 'never')] : [{ code: rule }];
  const [name, args] = o;
  const list = Array.isArray(args) ? args : [args];
  if (name === '$ref' && typeof args === 'string') return [t('in segment '), { segment: args }];
  if (name === 'var') {
    const v = varName(rule);
    return v === undefined ? [{ code: rule }] : [t(`${v} is set`)];
  }
  if (name === 'in' && list.length === 2) {
    const [needle, hay] = list;
    const hayVar = varName(hay);
    const needleVar = varName(needle);
    if (hayVar !== undefined && needleVar === undefined) return [t(`${hayVar} includes `), val(needle)];
    if (needleVar !== undefined && Array.isArray(hay)) {
      const shown = hay.slice(0, 5);
      const parts: Part[] = [t(`${needleVar} is one of `)];
      shown.forEach((v, i) => parts.push(...(i > 0 ? [t(', ')] : []), val(v)));
      if (hay.length > shown.length) parts.push(t(` (+${hay.length - shown.length} more)`));
      return parts;
    }
    if (needleVar !== undefined && typeof hay === 'string') return [t(`${needleVar} is part of `), val(hay)];
  }
  if (name in COMPARISONS && list.length === 2) {
    const [a, b] = list;
    const av = varName(a);
    const bv = varName(b);
    if (av !== undefined && bv === undefined) return [t(`${av} ${COMPARISONS[name]} `), val(b)];
    if (bv !== undefined && av === undefined) return [val(a), t(` ${COMPARISONS[name]} ${bv}`)];
  }
  if ((name === 'starts_with' || name === 'ends_with') && list.length === 2 && varName(list[0]) !== undefined) {
    return [t(`${varName(list[0])} ${name === 'starts_with' ? 'starts with' : 'ends with'} `), val(list[1])];
  }
  if (name === 'sem_ver' && list.length === 3 && varName(list[0]) !== undefined && typeof list[1] === 'string') {
    return [t(`${varName(list[0])} ${list[1]} `), val(list[2]), t(' (semver)')];
  }
  if ((name === 'and' || name === 'or') && list.length > 0) {
    const parts: Part[] = [];
    list.forEach((c, i) => {
      if (i > 0) parts.push(t(` ${name} `));
      const inner = condition(c);
      const compound = op(c)?.[0] === 'and' || op(c)?.[0] === 'or';
      parts.push(...(compound ? [t('('), ...inner, t(')')] : inner));
    });
    return parts;
  }
  if (name === '!' && list.length === 1) return [t('not ('), ...condition(list[0]), t(')')];
  if (name === '!!' && list.length === 1) return [...condition(list[0])];
  return [{ code: rule }];
}

function outcome(result: unknown, path: string): Outcome {
  if (typeof result === 'string') return { variant: result };
  if (result === null || result === undefined) return { none: true };
  const o = op(result);
  if (o && o[0] === 'fractional') {
    const split = describeSplit({ targeting: result });
    if (split) return { split: split.buckets, by: split.by };
  }
  if (o && (o[0] === 'if' || o[0] === '?:')) return { nested: branches(result, path) };
  return { code: result };
}

/** The targeting as ordered branches: the first whose condition holds decides. */
export function branches(targeting: unknown, path = 'targeting'): Branch[] {
  if (targeting === undefined || targeting === null || (isObject(targeting) && Object.keys(targeting).length === 0)) return [];
  const o = op(targeting);
  if (o && (o[0] === 'if' || o[0] === '?:') && Array.isArray(o[1])) {
    const args = o[1];
    const out: Branch[] = [];
    for (let i = 0; i + 1 < args.length; i += 2) out.push({ when: condition(args[i]), outcome: outcome(args[i + 1], `${path}.${o[0]}[${i + 1}]`), path: `${path}.${o[0]}[${i + 1}]` });
    if (args.length % 2 === 1) {
      const last = args[args.length - 1];
      const lastPath = `${path}.${o[0]}[${args.length - 1}]`;
      const lo = op(last);
      // an else that is itself an if chain reads as more branches of the same list
      if (lo && (lo[0] === 'if' || lo[0] === '?:')) out.push(...branches(last, lastPath));
      else out.push({ when: null, outcome: outcome(last, lastPath), path: lastPath });
    }
    return out;
  }
  return [{ when: null, outcome: outcome(targeting, path), path }];
}

/** The split `rollout %` edits (the tail of the targeting) and the share of `variant` in it. */
export function splitOf(definition: FlagDefinition, variant?: string): { buckets: SplitBuckets; by: string | null; path: string; variant: string; percent: number } | null {
  const split = describeSplit(definition);
  if (!split) return null;
  const total = split.buckets.reduce((a, [, w]) => a + w, 0);
  const name = variant ?? rolloutVariant(definition);
  if (name === undefined) return null;
  const weight = split.buckets.find(([v]) => v === name)?.[1] ?? 0;
  return { ...split, variant: name, percent: total === 0 ? 0 : Math.round((100 * weight) / total) };
}

/** The variant `rollout` moves: `on`, else the one whose value is true. */
export function rolloutVariant(definition: FlagDefinition): string | undefined {
  const variants = definition.variants ?? {};
  if (Object.prototype.hasOwnProperty.call(variants, 'on')) return 'on';
  const truthy = Object.keys(variants).filter((k) => variants[k] === true);
  return truthy.length === 1 ? truthy[0] : undefined;
}

/** Segments a flag's targeting uses (`$ref`), in order of appearance. */
export function segmentsUsed(rule: unknown, out: string[] = []): string[] {
  if (Array.isArray(rule)) rule.forEach((r) => segmentsUsed(r, out));
  else if (isObject(rule)) {
    for (const [k, v] of Object.entries(rule)) {
      if (k === '$ref' && typeof v === 'string') {
        if (!out.includes(v)) out.push(v);
      } else segmentsUsed(v, out);
    }
  }
  return out;
}

/** Plain words for a condition (confirmations, summaries). */
export function partsText(parts: Part[]): string {
  return parts
    .map((p) => ('text' in p ? p.text : 'value' in p ? JSON.stringify(p.value) : 'segment' in p ? p.segment : JSON.stringify(p.code)))
    .join('');
}

function outcomeText(o: Outcome): string {
  if ('variant' in o) return `"${o.variant}"`;
  if ('split' in o) return o.split.map(([v, w]) => `${v} ${w}%`).join(' / ');
  if ('nested' in o) return 'depends on more rules';
  if ('none' in o) return 'the default variant';
  return 'a computed variant';
}

/** One line per branch: "roles includes "admin" → "on"". */
export function branchLines(definition: FlagDefinition): string[] {
  return branches(definition.targeting).map((b) => `${b.when ? partsText(b.when) : 'everyone else'} → ${outcomeText(b.outcome)}`);
}

/** Who a kill switch (disable / enable) affects, in sentences. */
export function killSwitchImpact(key: string, definition: FlagDefinition, disabling: boolean): string[] {
  const lines = branchLines(definition);
  const def = definition.defaultVariant ? `"${definition.defaultVariant}"` : 'no variant';
  if (disabling) {
    return [
      `Everyone who evaluates "${key}", in every app and instance, gets the code default (reason DISABLED): server guards deny it and browsers stop seeing it.`,
      lines.length > 0 ? `It serves now: ${lines.join('; ')}.` : `It serves ${def} to everyone now.`,
    ];
  }
  return [`"${key}" applies its variants and targeting again, everywhere: ${lines.length > 0 ? lines.join('; ') : `${def} to everyone`}.`];
}

/** Who a change of the rollout split affects. */
export function rolloutImpact(definition: FlagDefinition, from: number, to: number, variant: string): string[] {
  const bs = branches(definition.targeting);
  const earlier = bs.filter((b) => b.when !== null).map((b) => partsText(b.when!));
  const split = splitOf(definition, variant);
  const who = earlier.length > 0 ? `users who match none of the earlier rules (${earlier.join('; ')})` : 'everyone';
  const by = split?.by ? `by ${split.by}` : 'by user (targetingKey)';
  const delta = to - from;
  const lines = [`The split applies to ${who}, bucketed ${by}.`];
  if (delta > 0) lines.push(`"${variant}" goes from ${from}% to ${to}% of them: about ${delta}% of them switch to "${variant}"; those who had it keep it.`);
  else if (delta < 0) lines.push(`"${variant}" goes from ${from}% to ${to}% of them: about ${-delta}% of them lose "${variant}"; the rest keep it.`);
  else lines.push('Nothing changes: the split already has this share.');
  if (definition.state === 'DISABLED') lines.push('The flag is DISABLED: the split applies once it is enabled.');
  return lines;
}

/** One changed place between two JSON values. */
export interface Change {
  path: string;
  before: Json;
  after: Json;
  /** For lists of strings: what was added and removed. */
  added?: string[];
  removed?: string[];
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** Where two JSON values differ, path by path (lists of strings as added / removed). */
export function diff(before: Json, after: Json, path = '', out: Change[] = []): Change[] {
  if (JSON.stringify(before) === JSON.stringify(after)) return out;
  if (isObject(before) && isObject(after)) {
    for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) diff(before[k], after[k], path ? `${path}.${k}` : k, out);
    return out;
  }
  if (isStringList(before) && isStringList(after) && (before.length > 3 || after.length > 3)) {
    const b = new Set(before);
    const a = new Set(after);
    out.push({ path: path || '(value)', before, after, added: after.filter((x) => !b.has(x)), removed: before.filter((x) => !a.has(x)) });
    return out;
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length) {
    before.forEach((b, i) => diff(b, after[i], `${path}[${i}]`, out));
    return out;
  }
  out.push({ path: path || '(value)', before, after });
  return out;
}

/** A change in one short line: "state: "ENABLED" → "DISABLED"". */
export function changeText(c: Change): string {
  const short = (v: Json) => {
    if (v === undefined) return '(none)';
    const s = JSON.stringify(v);
    return s.length > 60 ? `${s.slice(0, 57)}…` : s;
  };
  if (c.added || c.removed) return `${c.path}: ${c.added?.length ? `+${c.added.slice(0, 3).join(', ')}${c.added.length > 3 ? ` (+${c.added.length - 3})` : ''}` : ''}${c.added?.length && c.removed?.length ? ' ' : ''}${c.removed?.length ? `−${c.removed.slice(0, 3).join(', ')}${c.removed.length > 3 ? ` (+${c.removed.length - 3})` : ''}` : ''}`;
  return `${c.path}: ${short(c.before)} → ${short(c.after)}`;
}

/** "5 s ago", "3 min ago", "2 h ago", or the date. */
export function ago(time: number, now: number): string {
  const s = Math.max(0, Math.round((now - time) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(time).toLocaleString();
}

/** A piece of an untrusted comment: its text, or one unprintable character written as an escape. */
export type CommentPart = { text: string } | { escape: string };

/**
 * What must not be shown as is: C0 and C1 controls and DEL (ESC starts terminal escape
 * sequences), Unicode format characters (bidi overrides such as U+202E reorder what is shown,
 * zero-width characters hide text), line and paragraph separators, and lone surrogates. Line
 * breaks stay line breaks.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/**
 * A user's comment, for rendering as text (React text nodes, never markup): the comment as
 * sent, cut into its printable runs and its unprintable characters, each written as the CLI
 * writes it (`\x1b` up to U+00FF, `\u202e` up to U+FFFF, `\u{e0001}` beyond), so an escape
 * sequence or a bidi override shows as what it is instead of acting.
 */
export function commentParts(comment: string): CommentPart[] {
  const out: CommentPart[] = [];
  let at = 0;
  for (const m of comment.matchAll(UNPRINTABLE)) {
    const ch = m[0];
    if (ch === '\n') continue;
    if (m.index > at) out.push({ text: comment.slice(at, m.index) });
    const code = ch.codePointAt(0)!;
    out.push({ escape: code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : code <= 0xffff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\u{${code.toString(16)}}` });
    at = m.index + ch.length;
  }
  if (at < comment.length) out.push({ text: comment.slice(at) });
  return out;
}

/** A share in percent: one decimal, two below 1% (0 and 100 without). */
export function percent(x: number): string {
  if (x === 0 || x === 1) return `${100 * x}%`;
  return `${(100 * x).toFixed(x < 0.01 ? 2 : 1)}%`;
}

/** The negative share with its interval, or why there is none. */
export function negativeShareWords(s: { status: 'ok'; share: number; lower: number; upper: number; confidence: number; n: number } | { status: 'not-enough-data'; n: number }): string {
  if (s.status !== 'ok') return 'not enough data yet: no answers';
  return `${percent(s.share)} negative (${Math.round(100 * s.confidence)}% interval ${percent(s.lower)}–${percent(s.upper)}), ${s.n.toLocaleString('en')} answer${s.n === 1 ? '' : 's'}`;
}
