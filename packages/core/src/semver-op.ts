import { compare, parse, coerce, type SemVer } from 'semver';

// flagd's `sem_ver` operator, with flagd-core's lenient parsing: a leading v/V is stripped,
// partial versions ("1", "1.2") and numbers are coerced, anything else is "no result" (null).

export type SemVerOperator = '=' | '!=' | '<' | '<=' | '>' | '>=' | '^' | '~';
const OPERATORS: ReadonlySet<string> = new Set(['=', '!=', '<', '<=', '>', '>=', '^', '~']);

export function isSemVerOperator(op: unknown): op is SemVerOperator {
  return typeof op === 'string' && OPERATORS.has(op);
}

export function parseVersion(raw: unknown): SemVer | null {
  if (raw === null || raw === undefined || typeof raw === 'object') return null;
  const str = String(raw).replace(/^[vV]/, '');
  const strict = parse(str);
  if (strict) return strict;
  // coerce only things that look like partial numeric versions: coerce alone would pull "1"
  // out of "myVersion_1".
  return /^\d+(\.\d+)?$/.test(str) ? coerce(str) : null;
}

export function compareVersions(a: SemVer, op: SemVerOperator, b: SemVer): boolean {
  switch (op) {
    case '^':
      return a.major === b.major;
    case '~':
      return a.major === b.major && a.minor === b.minor;
  }
  const c = compare(a, b);
  switch (op) {
    case '=':
      return c === 0;
    case '!=':
      return c !== 0;
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
  }
}
