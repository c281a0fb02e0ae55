import { canonicalJson } from '@rollgate/redis';
import { describeSplit, targetingWithoutSplitWeights } from './rollout';
import { readSegment } from './segment';

// What `flags push` would change: the file against the store, flag by flag and evaluator by
// evaluator. Pure.

export type ChangeKind = 'flag' | 'evaluator';

export interface FlagSetChange {
  kind: ChangeKind;
  key: string;
  change: 'added' | 'changed' | 'removed';
  /** Definition in the store; null when added. */
  before: unknown | null;
  /** Definition in the file; null when removed. */
  after: unknown | null;
}

export interface FlagSetDiff {
  /** Exactly the changes a push with the same `prune` writes. */
  changes: FlagSetChange[];
  /** In the store but not in the file, and kept because `prune` is off. */
  onlyInStore: { kind: ChangeKind; key: string }[];
}

export interface FlagSetContent {
  flags: Record<string, unknown>;
  evaluators: Record<string, unknown>;
}

/** Equal as the store judges a write that changes nothing (its canonicalJson: key order does not matter). */
export function sameJson(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

const has = (record: Record<string, unknown>, key: string) => Object.prototype.hasOwnProperty.call(record, key);

export function diffFlagSets(store: FlagSetContent, file: FlagSetContent, options: { prune: boolean }): FlagSetDiff {
  const changes: FlagSetChange[] = [];
  const onlyInStore: FlagSetDiff['onlyInStore'] = [];
  const compare = (kind: ChangeKind, current: Record<string, unknown>, next: Record<string, unknown>) => {
    for (const key of Object.keys(next).sort()) {
      if (!has(current, key)) changes.push({ kind, key, change: 'added', before: null, after: next[key] });
      else if (!sameJson(current[key], next[key])) changes.push({ kind, key, change: 'changed', before: current[key], after: next[key] });
    }
    for (const key of Object.keys(current).sort()) {
      if (has(next, key)) continue;
      if (options.prune) changes.push({ kind, key, change: 'removed', before: current[key], after: null });
      else onlyInStore.push({ kind, key });
    }
  };
  compare('evaluator', store.evaluators, file.evaluators);
  compare('flag', store.flags, file.flags);
  return { changes, onlyInStore };
}

const FIELDS = ['state', 'variants', 'defaultVariant', 'targeting', 'metadata'] as const;

function short(value: unknown, max = 60): string {
  const text = value === undefined ? 'absent' : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** One line describing a change: `~ flag fast-payment: state "ENABLED" → "DISABLED"`. */
export function describeChange(c: FlagSetChange): string {
  const mark = c.change === 'added' ? '+' : c.change === 'removed' ? '-' : '~';
  const head = `${mark} ${c.kind} ${c.key}`;
  if (c.change !== 'changed') return head;
  if (c.kind === 'evaluator') {
    const a = readSegment(c.before);
    const b = readSegment(c.after);
    if (a && b && a.attribute === b.attribute) {
      const before = new Set(a.values);
      const after = new Set(b.values);
      const added = b.values.filter((v) => !before.has(v));
      const removed = a.values.filter((v) => !after.has(v));
      return `${head}: ${[...added.map((v) => `+${v}`), ...removed.map((v) => `-${v}`)].join(' ') || 'order changed'}`;
    }
    return `${head}: rule changed`;
  }
  const before = (c.before ?? {}) as Record<string, unknown>;
  const after = (c.after ?? {}) as Record<string, unknown>;
  const parts: string[] = [];
  for (const field of FIELDS) {
    if (sameJson(before[field], after[field])) continue;
    if (field === 'targeting') {
      const a = describeSplit(before);
      const b = describeSplit(after);
      if (a && b && !sameJson(a, b)) {
        const text = (s: NonNullable<typeof a>) => `${s.buckets.map(([v, w]) => `${v} ${w}`).join(' / ')}${s.by ? ` by ${s.by}` : ''}`;
        parts.push(`split ${text(a)} → ${text(b)}`);
        if (!sameJson(targetingWithoutSplitWeights(before), targetingWithoutSplitWeights(after))) parts.push('targeting changed');
        continue;
      }
    }
    const scalar = (v: unknown) => v === undefined || v === null || typeof v !== 'object';
    parts.push(scalar(before[field]) && scalar(after[field]) ? `${field} ${short(before[field])} → ${short(after[field])}` : `${field} changed`);
  }
  const extra = Object.keys({ ...before, ...after }).filter((k) => !(FIELDS as readonly string[]).includes(k) && !sameJson(before[k], after[k]));
  if (extra.length > 0) parts.push(`${extra.join(', ')} changed`);
  return `${head}: ${parts.join(', ') || 'key order only'}`;
}
