import { createHash } from 'node:crypto';
import { describeSplit, targetingWithoutSplitWeights, type FlagDefinition, type FlagSnapshot, type JsonValue } from '@rollgate/core';

// What browsers can see of one snapshot, worked out once per snapshot (not per request): the
// client-visible keys, a revision that changes exactly when what they can see changes, and
// whether any of those flags reads the clock. The OFREP evaluator answers from it (and answers a
// revalidation of an unchanged revision with a 304 without evaluating); the change stream
// announces a change only when it touches one of these flags.

/** What browsers can see of one snapshot. */
export interface ClientView {
  /** The client-visible flag keys, in definition order. */
  readonly keys: readonly string[];
  /** The same keys, for lookups. */
  readonly visible: ReadonlySet<string>;
  /**
   * A hash of everything an answer depends on apart from who asks: the visible flags' definitions,
   * the `$evaluators` they reference, the flag set's metadata and the evaluator's own options. Equal
   * in every process serving the same flags with the same options (it is the SSE position).
   */
  readonly revision: string;
  /** A visible flag reads `$flagd.timestamp`: its answers change with time, with no new revision. */
  readonly readsClock: boolean;
}

/** The client view of `snapshot`; `options` is a fingerprint of the evaluator's options. */
export function clientViewOf(snapshot: FlagSnapshot, isVisible: (flagKey: string, definition: Readonly<FlagDefinition>) => boolean, options: string): ClientView {
  const keys: string[] = [];
  const evaluators = snapshot.evaluators();
  const hash = createHash('sha256').update(options).update('\0').update(JSON.stringify(snapshot.metadata));
  const referenced = new Set<string>();
  let readsClock = false;
  for (const key of snapshot.keys()) {
    const definition = snapshot.definition(key)!;
    if (!isVisible(key, definition)) continue;
    keys.push(key);
    hash.update('\0').update(key).update('\0').update(JSON.stringify(definition));
    if (definition.targeting !== undefined && walk(definition.targeting as JsonValue, evaluators, referenced)) readsClock = true;
  }
  // the shared rules these flags use, in a fixed order (a change to one is a change to them)
  for (const name of [...referenced].sort()) hash.update('\0$').update(name).update('\0').update(JSON.stringify(evaluators[name] ?? null));
  return Object.freeze({ keys: Object.freeze(keys), visible: new Set(keys), revision: hash.digest('base64url').slice(0, 22), readsClock });
}

/**
 * Notes the `$evaluators` a rule references (transitively) in `referenced`; true when the rule may
 * read the clock: a `var` of `$flagd…`, of the whole data (`""`, which holds `$flagd`) or of a
 * computed path (unknown, so assumed).
 */
function walk(rule: JsonValue, evaluators: Readonly<Record<string, JsonValue>>, referenced: Set<string>, depth = 0): boolean {
  if (rule === null || typeof rule !== 'object' || depth > 200) return depth > 200;
  let clock = false;
  if (Array.isArray(rule)) {
    for (const item of rule) if (walk(item, evaluators, referenced, depth + 1)) clock = true;
    return clock;
  }
  for (const [op, arg] of Object.entries(rule)) {
    if (op === '$ref' && typeof arg === 'string') {
      if (!referenced.has(arg)) {
        referenced.add(arg);
        if (Object.prototype.hasOwnProperty.call(evaluators, arg) && walk(evaluators[arg]!, evaluators, referenced, depth + 1)) clock = true;
      }
      continue;
    }
    if (op === 'var' && readsClockVar(arg)) clock = true;
    if (walk(arg, evaluators, referenced, depth + 1)) clock = true;
  }
  return clock;
}

function readsClockVar(arg: JsonValue): boolean {
  const path = Array.isArray(arg) ? arg[0] : arg;
  if (typeof path === 'number') return false;
  if (typeof path !== 'string') return true; // computed or missing: cannot tell
  return path === '' || (path.startsWith('$flagd') && path !== '$flagd.flagKey'); // the flag key is a constant
}

/**
 * Whether a change of these (changed) flags takes something away from browsers: a visible flag that
 * was on is now off, gone or hidden (a kill switch), or its split gives its default variant a larger
 * share with the rules otherwise unchanged (a rollback). Such announcements may use the urgent share.
 */
export function takesAway(changed: readonly string[], before: FlagSnapshot, beforeView: ClientView, after: FlagSnapshot, afterView: ClientView): boolean {
  for (const key of changed) {
    const was = beforeView.visible.has(key) ? before.definition(key) : undefined;
    if (was === undefined || was.state !== 'ENABLED') continue; // browsers had nothing of it on
    const is = afterView.visible.has(key) ? after.definition(key) : undefined;
    if (is === undefined || is.state !== 'ENABLED') return true;
    if (rolledBack(was, is)) return true;
  }
  return false;
}

function rolledBack(was: Readonly<FlagDefinition>, is: Readonly<FlagDefinition>): boolean {
  const fallback = is.defaultVariant;
  if (typeof fallback !== 'string' || was.defaultVariant !== fallback) return false;
  const a = describeSplit(was);
  const b = describeSplit(is);
  if (a === null || b === null) return false;
  if (JSON.stringify(targetingWithoutSplitWeights(was)) !== JSON.stringify(targetingWithoutSplitWeights(is))) return false;
  const share = (buckets: [string, number][]) => {
    const total = buckets.reduce((sum, [, w]) => sum + w, 0);
    const mine = buckets.reduce((sum, [v, w]) => sum + (v === fallback ? w : 0), 0);
    return total > 0 ? mine / total : 0;
  };
  return share(b.buckets) > share(a.buckets);
}
