import type { JsonObject } from '@rollgate/core';
import { EditRefusedError, MissingError, UsageError } from './errors';

// `rollgate segment`: edit the value list of a shared evaluator of the shape
// `{"in": [{"var": "<attribute>"}, ["v1", "v2", …]]}` (used from targeting with `{"$ref": name}`).
// Pure: takes a rule, returns a new one.

export interface Segment {
  attribute: string;
  values: string[];
}

export interface SegmentEdit {
  /** The new rule (a copy). */
  rule: JsonObject;
  segment: Segment;
  /** True when `add` created the evaluator. */
  created: boolean;
  /** Values added or removed. */
  changed: string[];
  /** Values that were already present (add) or absent (remove): nothing to do for them. */
  unchanged: string[];
}

const SHAPE = '{"in": [{"var": "<attribute>"}, ["value", …]]}';

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Why a rule is not a segment this command can edit; undefined when it is one. */
export function segmentShapeProblem(rule: unknown): string | undefined {
  if (!isObject(rule) || Object.keys(rule).length !== 1 || !Array.isArray(rule.in)) return `it is ${JSON.stringify(rule)?.slice(0, 120)}, not ${SHAPE}`;
  const args = rule.in;
  if (args.length !== 2) return `its "in" has ${args.length} arguments, not 2`;
  const [needle, list] = args as [unknown, unknown];
  if (!isObject(needle) || Object.keys(needle).length !== 1 || attributeOfVar(needle.var) === undefined) {
    return `its first argument is ${JSON.stringify(needle)}, not {"var": "<attribute>"}`;
  }
  if (!Array.isArray(list)) return `its second argument is ${JSON.stringify(list)?.slice(0, 120)}, not a list of values`;
  const odd = list.find((v) => typeof v !== 'string');
  if (odd !== undefined) return `its list holds ${JSON.stringify(odd)}, not only strings (this command edits string lists)`;
  return undefined;
}

function attributeOfVar(v: unknown): string | undefined {
  if (typeof v === 'string' && v !== '') return v;
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'string' && v[0] !== '') return v[0];
  return undefined;
}

/** The segment a rule describes, or undefined when the rule has another shape. */
export function readSegment(rule: unknown): Segment | undefined {
  if (segmentShapeProblem(rule) !== undefined) return undefined;
  const [needle, list] = (rule as { in: [{ var: unknown }, string[]] }).in;
  return { attribute: attributeOfVar(needle.var)!, values: [...list] };
}

/** The canonical rule for a segment. */
export function segmentRule(attribute: string, values: readonly string[]): JsonObject {
  return { in: [{ var: attribute }, [...values]] };
}

function checkValues(values: readonly string[]): string[] {
  if (values.length === 0) throw new UsageError('name at least one value');
  for (const v of values) if (typeof v !== 'string' || v === '') throw new UsageError(`segment values must be non-empty strings, got ${JSON.stringify(v)}`);
  return [...new Set(values)];
}

function checkAttribute(attribute: string): void {
  if (typeof attribute !== 'string' || attribute.trim() === '' || attribute !== attribute.trim()) {
    throw new UsageError(`the attribute must be a context attribute name, got ${JSON.stringify(attribute)}`);
  }
}

function existing(name: string, rule: unknown, attribute: string): Segment {
  const problem = segmentShapeProblem(rule);
  if (problem !== undefined) {
    throw new EditRefusedError(`evaluator "${name}" is not a value list this command can edit: ${problem}. Edit it with \`rollgate flags push\``);
  }
  const segment = readSegment(rule)!;
  if (segment.attribute !== attribute) {
    throw new EditRefusedError(`evaluator "${name}" matches on "${segment.attribute}", not "${attribute}"; name the attribute it uses`);
  }
  return segment;
}

/**
 * Adds values to a segment, creating it (on `attribute`) when `rule` is undefined. The attribute
 * must match an existing segment's: it guards against editing a list you did not mean to.
 */
export function addToSegment(name: string, rule: unknown | undefined, attribute: string, values: readonly string[]): SegmentEdit {
  checkAttribute(attribute);
  const wanted = checkValues(values);
  const created = rule === undefined;
  const segment = created ? { attribute, values: [] } : existing(name, rule, attribute);
  const present = new Set(segment.values);
  const changed = wanted.filter((v) => !present.has(v));
  const unchanged = wanted.filter((v) => present.has(v));
  const next = { attribute: segment.attribute, values: [...segment.values, ...changed] };
  return { rule: segmentRule(next.attribute, next.values), segment: next, created, changed, unchanged };
}

/** What `segment set` does: the whole list replaced. */
export interface SegmentReplacement {
  rule: JsonObject;
  segment: Segment;
  created: boolean;
  added: string[];
  removed: string[];
}

/**
 * Replaces a segment's whole list (a cohort recomputed by a batch job), creating it on
 * `attribute` when `rule` is undefined. The order of `values` is kept (unless the members are
 * the same as now: then nothing changes); duplicates are dropped.
 */
export function replaceSegment(name: string, rule: unknown | undefined, attribute: string, values: readonly string[]): SegmentReplacement {
  checkAttribute(attribute);
  const wanted = checkValues(values);
  const created = rule === undefined;
  const segment = created ? { attribute, values: [] } : existing(name, rule, attribute);
  const before = new Set(segment.values);
  const after = new Set(wanted);
  const added = wanted.filter((v) => !before.has(v));
  const removed = segment.values.filter((v) => !after.has(v));
  // the same members in another order is the same segment: keep the stored list, so nothing is written
  const next = { attribute: segment.attribute, values: !created && added.length === 0 && removed.length === 0 ? [...segment.values] : wanted };
  return { rule: segmentRule(next.attribute, next.values), segment: next, created, added, removed };
}

/** Control, bidi and other invisible characters: never in an id a person must be able to read. */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

/**
 * The values of a file, one per line (`ids.txt` from a batch job): surrounding white space and
 * CR removed, blank lines and lines starting with `#` skipped. A value with control or invisible
 * characters is a UsageError naming its line: nothing is written.
 */
export function parseValueFile(file: string, text: string): string[] {
  const values: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const value = lines[i]!.trim();
    if (value === '' || value.startsWith('#')) continue;
    if (UNPRINTABLE.test(value)) throw new UsageError(`${file}:${i + 1}: the value holds a control or invisible character (${JSON.stringify(value).slice(0, 80)}); nothing was written`);
    values.push(value);
  }
  if (values.length === 0) throw new UsageError(`${file} holds no values (one per line; blank lines and # comments are skipped)`);
  return values;
}

/** Removes values from an existing segment (an empty list is kept: it matches nobody). */
export function removeFromSegment(name: string, rule: unknown | undefined, attribute: string, values: readonly string[]): SegmentEdit {
  checkAttribute(attribute);
  const unwanted = checkValues(values);
  if (rule === undefined) throw new MissingError(`evaluator "${name}" does not exist`);
  const segment = existing(name, rule, attribute);
  const present = new Set(segment.values);
  const changed = unwanted.filter((v) => present.has(v));
  const unchanged = unwanted.filter((v) => !present.has(v));
  const drop = new Set(changed);
  const next = { attribute: segment.attribute, values: segment.values.filter((v) => !drop.has(v)) };
  return { rule: segmentRule(next.attribute, next.values), segment: next, created: false, changed, unchanged };
}
