// The evaluation cost model: a static worst-case bound computed while a rule is compiled (a rule
// over the limit is refused), and the per-evaluation budget the compiled closures charge as they
// run (an evaluation over budget is stopped). Described for users in docs/flag-format.md
// ("Evaluation cost").
//
// Units. A *step* is about one compiled node evaluated (a closure call, ~5-10 ns); operators that
// do more work per evaluation weigh more (WEIGHT below). *Allocation* is counted in bytes, as an
// upper estimate: 8 per array element (plus 16 per array), 2 per string character.
// The *size* of a value is about the length of its JSON text: a string counts its length + 2, a
// number the length of String(n), true/false/null 4-5, an array 2 + its elements + commas, an
// object 2 + its keys and values, at least 15 (the length of "[object Object]"). So the size of a
// value bounds its length as a string (String(v)), as an array, and the sum of its elements' sizes.

/** A bound that grows linearly with data sizes: `c + d·D + a·A`. */
export interface Lin {
  readonly c: number;
  /** Per unit of D: the size of the data the rule reads (the context; the element inside an iterator; `current` inside reduce). */
  readonly d: number;
  /** Per unit of A: the size of a reduce accumulator (inside that reduce's body only). */
  readonly a: number;
}

/** Static facts about one compiled node. */
export interface Cost {
  /** Steps of one evaluation of the subtree, outside of iterations and data-dependent work (not counted at run time). */
  readonly weight: number;
  /** Worst-case steps the subtree charges to the run-time budget in one evaluation (iterations, list scans). */
  readonly steps: Lin;
  /** Worst-case bytes the subtree charges to the run-time budget in one evaluation. */
  readonly alloc: Lin;
  /** Worst-case size of the value it produces. */
  readonly size: Lin;
  /** Worst-case length of the longest string in the value (itself, or an element, at any depth). */
  readonly text: Lin;
  /** Worst-case length of the longest string `cat` builds in the subtree in one evaluation. */
  readonly built: Lin;
  /** The types the value can have (bit set of T_*). */
  readonly types: number;
}

export const T_STR = 1;
export const T_NUM = 2;
export const T_BOOL = 4;
export const T_NULL = 8;
export const T_ARR = 16;
export const T_OBJ = 32;
export const T_ANY = 63;

/** Bytes charged per array element, per array, per string character, per piece of a `cat`. */
export const BYTES_PER_ELEMENT = 8;
export const BYTES_PER_ARRAY = 32;
export const BYTES_PER_CHAR = 2;
/**
 * `cat` joins strings without copying them (V8 builds a "cons string" of ≈ 32 bytes per piece, a
 * number turned into a string takes ≤ 64): a piece costs this much; its characters are charged
 * when something reads the result.
 */
export const BYTES_PER_PIECE = 64;
/**
 * Reading a string's characters (comparing, parsing, hashing, searching it, or copying a joined
 * string flat first) is charged one step per this many characters, and 2 bytes per character.
 */
export const CHARS_PER_STEP = 16;
/** Strings up to this long are read as part of a node's step (not charged). */
export const FREE_CHARS = 64;

/**
 * The context the static bound assumes: JSON text of at most CONTEXT_SIZE characters ("size"
 * above), no string in it longer than CONTEXT_STRING characters, targetingKey a string. Larger
 * contexts are evaluated all the same, under the run-time budget.
 */
export const CONTEXT_SIZE = 4096;
export const CONTEXT_STRING = 256;

/** Most keys of an object written as a value in a rule (testing it for truth lists its keys). */
export const MAX_OBJECT_KEYS = 256;

/** Steps one evaluation of an operator costs beyond 1, measured (packages/core/bench/cost.bench.js). */
export const WEIGHT: Readonly<Record<string, number>> = {
  sem_ver: 44,
  fractional: 8,
  dynamicVar: 8,
  rootData: 4,
  missing: 2,
};

export const ZERO: Lin = { c: 0, d: 0, a: 0 };

export function lin(c: number, d = 0, a = 0): Lin {
  return { c, d, a };
}

/** x·y with 0·∞ = 0 (a term that is absent stays absent however large the other factor is). */
function mul(x: number, y: number): number {
  return x === 0 || y === 0 ? 0 : x * y;
}

export function add(...xs: Lin[]): Lin {
  return sum(xs);
}

/** add() over a list (of any length: no spread). */
export function sum(xs: readonly Lin[]): Lin {
  let c = 0;
  let d = 0;
  let a = 0;
  for (const x of xs) {
    c += x.c;
    d += x.d;
    a += x.a;
  }
  return { c, d, a };
}

export function plus(x: Lin, k: number): Lin {
  return { c: x.c + k, d: x.d, a: x.a };
}

/** An upper bound of all (coefficient by coefficient: every variable is ≥ 0). */
export function max(...xs: Lin[]): Lin {
  return upper(xs);
}

/** max() over a list (of any length: no spread). */
export function upper(xs: readonly Lin[]): Lin {
  let c = 0;
  let d = 0;
  let a = 0;
  for (const x of xs) {
    c = Math.max(c, x.c);
    d = Math.max(d, x.d);
    a = Math.max(a, x.a);
  }
  return { c, d, a };
}

export function scale(k: number, x: Lin): Lin {
  return { c: mul(k, x.c), d: mul(k, x.d), a: mul(k, x.a) };
}

/**
 * The sum over the elements of a list of a body bound `f` (in the body's variables, D being the
 * element's size): each element contributes `f.c`, and the elements' sizes add up to at most the
 * list's size, so the sum is at most `f.c·length + f.d·size` (in the list's variables).
 */
export function overElements(f: Lin, length: Lin, size: Lin): Lin {
  return add(scale(f.c, length), scale(f.d, size));
}

/** The numeric value of a bound, given the largest D and A in scope (0·∞ = 0). */
export function valueAt(x: Lin, dMax: number, aMax: number): number {
  return x.c + mul(x.d, dMax) + mul(x.a, aMax);
}

/** Size, longest string and largest object (keys) of a value known at compile time. */
export function measure(value: unknown): { size: number; text: number; keys: number } {
  const out = { size: 0, text: 0, keys: 0 };
  out.size = walk(value, out);
  return out;
}

function walk(value: unknown, out: { text: number; keys: number }): number {
  if (typeof value === 'string') {
    if (value.length > out.text) out.text = value.length;
    return value.length + 2;
  }
  if (value === null || typeof value !== 'object') return sizeOf(value);
  if (Array.isArray(value)) {
    let n = 2 + Math.max(0, value.length - 1);
    for (const item of value) n += walk(item, out);
    return n;
  }
  const keys = Object.keys(value);
  if (keys.length > out.keys) out.keys = keys.length;
  let n = 2 + Math.max(0, keys.length - 1);
  for (const k of keys) n += k.length + 3 + walk((value as Record<string, unknown>)[k], out);
  return Math.max(15, n);
}

/** Size (see above) of a value. */
export function sizeOf(value: unknown): number {
  if (value === null) return 4;
  switch (typeof value) {
    case 'string':
      return value.length + 2;
    case 'number':
      return String(value).length;
    case 'boolean':
      return value ? 4 : 5;
    case 'undefined':
      return 9;
    case 'object': {
      if (Array.isArray(value)) {
        let n = 2 + Math.max(0, value.length - 1);
        for (const item of value) n += sizeOf(item);
        return n;
      }
      const keys = Object.keys(value);
      let n = 2 + Math.max(0, keys.length - 1);
      for (const k of keys) n += k.length + 3 + sizeOf((value as Record<string, unknown>)[k]);
      return Math.max(15, n);
    }
    default:
      return 15;
  }
}

export function typeOf(value: unknown): number {
  if (value === null || value === undefined) return T_NULL;
  switch (typeof value) {
    case 'string':
      return T_STR;
    case 'number':
      return T_NUM;
    case 'boolean':
      return T_BOOL;
    default:
      return Array.isArray(value) ? T_ARR : T_OBJ;
  }
}

/** What an evaluation ran out of. */
export type BudgetResource = 'steps' | 'allocation';

/**
 * Thrown inside compiled rules when an evaluation has used up its budget. Deliberately not an
 * EvaluationFailure: nothing inside the rules may catch it.
 */
export class BudgetExceeded extends Error {
  constructor(readonly resource: BudgetResource) {
    super(`evaluation budget exceeded (${resource})`);
  }
}
