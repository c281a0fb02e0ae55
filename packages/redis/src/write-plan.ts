import { randomUUID } from 'node:crypto';
import { compileFlagSet, FlagValidationError, formatIssue, type ValidationIssue } from '@rollgate/core';
import { InvalidWriteError, NotFoundError } from './errors';
import type { AuditEntry, FlagChange, StoredFlagSet, WriteOptions, WriteResult } from './flag-store';

// The one write path's logic, shared by every store: validate a change against the current set,
// and derive revert and patch changes. Stores only add atomic execution.

const WRITE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The write's id: the one given (checked: it becomes part of a Redis key) or a fresh UUID. */
export function writeIdOf(options: WriteOptions): string {
  if (options?.writeId === undefined) return randomUUID();
  if (typeof options.writeId !== 'string' || !WRITE_ID.test(options.writeId)) {
    throw new InvalidWriteError(`options.writeId must be 1-128 characters of A-Z a-z 0-9 _ . : - (got ${JSON.stringify(options.writeId)})`);
  }
  return options.writeId;
}

/** A validated change, ready for a store to execute. */
export interface PlannedEntry {
  kind: 'flag' | 'evaluator';
  key: string;
  /** JSON text to store, or null to remove. */
  json: string | null;
}

function toFlagSet(set: Pick<StoredFlagSet, 'flags' | 'evaluators'>): { flags: Record<string, unknown>; $evaluators: Record<string, unknown> } {
  return { flags: set.flags, $evaluators: set.evaluators };
}

/**
 * In JSON.stringify's output a lone surrogate is the only thing written as a \\udXXX escape
 * (pairs are written as characters), after an even run of backslashes (an odd one would be a
 * literal backslash followed by "u"). Redis's JSON decoder, and any strict one, refuses them.
 */
const LONE_SURROGATE = /(?<!\\)(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/;

/** JSON text with object keys sorted: equal text, equal JSON (key order does not matter). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) Object.defineProperty(out, k, { value: (v as Record<string, unknown>)[k], enumerable: true, configurable: true, writable: true });
    return out;
  });
}

/**
 * Checks a write and returns what to store. Refuses (FlagValidationError, nothing written) when
 * the change introduces a validation problem; problems that already existed do not block
 * unrelated writes. A change whose definition equals the stored one (key order aside) is left
 * out: nothing changed, nothing is written — an empty plan means no version and no audit entry.
 */
export function planWrite(current: StoredFlagSet, changes: readonly FlagChange[], options: WriteOptions): PlannedEntry[] {
  if (typeof options?.actor !== 'string' || options.actor.trim() === '') {
    throw new InvalidWriteError('options.actor is required: name who makes the change (it is recorded in the audit)');
  }
  if (changes.length === 0) throw new InvalidWriteError('a write needs at least one change');
  const flags: Record<string, unknown> = { ...current.flags };
  const evaluators: Record<string, unknown> = { ...current.evaluators };
  const entries: PlannedEntry[] = [];
  const seen = new Set<string>();
  for (const change of changes) {
    if (change.kind !== 'flag' && change.kind !== 'evaluator') throw new InvalidWriteError(`unknown change kind ${JSON.stringify((change as { kind: unknown }).kind)}`);
    if (typeof change.key !== 'string' || change.key === '') throw new InvalidWriteError(`a ${change.kind} change needs a non-empty key`);
    const id = `${change.kind}:${change.key}`;
    if (seen.has(id)) throw new InvalidWriteError(`${change.kind} "${change.key}" appears twice in one write`);
    seen.add(id);
    const target = change.kind === 'flag' ? flags : evaluators;
    if (change.definition === null) {
      if (!Object.prototype.hasOwnProperty.call(target, change.key)) throw new NotFoundError(`${change.kind} "${change.key}" does not exist`);
      delete target[change.key];
      entries.push({ kind: change.kind, key: change.key, json: null });
    } else {
      // What is validated is exactly what is stored: the JSON text (undefined fields vanish).
      const json = JSON.stringify(change.definition) as string | undefined;
      if (json === undefined) throw new InvalidWriteError(`${change.kind} "${change.key}": the definition is not JSON`);
      if (LONE_SURROGATE.test(json)) {
        throw new InvalidWriteError(`${change.kind} "${change.key}": a string holds a broken character (a lone UTF-16 surrogate, e.g. an emoji cut in half), which is not valid Unicode and cannot be stored`);
      }
      const parsed = JSON.parse(json) as unknown;
      // the same definition, maybe with its keys in another order: not a change
      if (Object.prototype.hasOwnProperty.call(target, change.key) && canonicalJson(target[change.key]) === canonicalJson(parsed)) continue;
      // defineProperty so a key like "__proto__" is a plain own property; validation refuses it.
      Object.defineProperty(target, change.key, { value: parsed, enumerable: true, configurable: true, writable: true });
      entries.push({ kind: change.kind, key: change.key, json });
    }
  }
  if (entries.length === 0) return entries;
  const before = new Set(compileFlagSet(toFlagSet(current)).errors.map(formatIssue));
  const introduced: ValidationIssue[] = compileFlagSet(toFlagSet({ flags, evaluators })).errors.filter((issue) => !before.has(formatIssue(issue)));
  if (introduced.length > 0) throw new FlagValidationError(introduced, 'write refused, nothing was changed');
  return entries;
}

/** Fields of a flag a patch may set; anything else in a patch is refused. */
const PATCHABLE = ['state', 'variants', 'defaultVariant', 'targeting', 'metadata'] as const;

/** Builds the full definition for a patch, copying only the known fields (never a spread of input). */
export function patchedDefinition(current: StoredFlagSet, key: string, patch: Record<string, unknown>): Record<string, unknown> {
  if (!Object.prototype.hasOwnProperty.call(current.flags, key)) throw new NotFoundError(`flag "${key}" does not exist; use put to create it`);
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) throw new InvalidWriteError('a patch must be an object');
  for (const field of Object.keys(patch)) {
    if (!(PATCHABLE as readonly string[]).includes(field)) {
      throw new InvalidWriteError(`cannot patch "${field}"; patchable fields are ${PATCHABLE.join(', ')}`);
    }
  }
  const base = current.flags[key] as Record<string, unknown>;
  const next: Record<string, unknown> = {};
  for (const field of PATCHABLE) {
    const value = Object.prototype.hasOwnProperty.call(patch, field) ? patch[field] : base?.[field];
    if (value !== undefined) next[field] = value;
  }
  return next;
}

/**
 * The definition of a flag as of `toVersion` (after that version's writes), from the audit;
 * without `toVersion`, the definition before the latest change. null means "did not exist".
 */
export function definitionAt(entries: readonly AuditEntry[], kind: 'flag' | 'evaluator', key: string, toVersion?: number): unknown | null {
  const mine = entries.filter((e) => e.kind === kind && e.key === key).sort((a, b) => a.version - b.version);
  if (mine.length === 0) throw new NotFoundError(`the audit has no entry for ${kind} "${key}" (it may have been trimmed)`);
  if (toVersion === undefined) return mine[mine.length - 1]!.before;
  const atOrBefore = mine.filter((e) => e.version <= toVersion);
  if (atOrBefore.length > 0) return atOrBefore[atOrBefore.length - 1]!.after;
  // every recorded change is later: the state then is what the earliest change started from
  return mine[0]!.before;
}

/**
 * What a store answers for a write: its version and the keys it wrote (or had written, when
 * already applied). No entries on a first run: nothing changed, nothing was written.
 */
export function writeResultOf(version: number, writeId: string, alreadyApplied: boolean, entries: readonly Pick<PlannedEntry, 'kind' | 'key'>[]): WriteResult {
  return {
    version,
    writeId,
    alreadyApplied,
    unchanged: !alreadyApplied && entries.length === 0,
    flags: entries.filter((e) => e.kind === 'flag').map((e) => e.key),
    evaluators: entries.filter((e) => e.kind === 'evaluator').map((e) => e.key),
  };
}
