'use strict';
// The benchmark scenario shared by evaluate.bench.js, memory.bench.js and bench/peers: the seed
// flag (admin OR VIP tenant OR sticky 20%), a set of other flag shapes an app has beside it, the
// contexts, and hand-written JavaScript for every shape (the baseline). Deterministic: the same
// data on every run.

const { murmur3, bucketOf } = require('../dist/murmur3');

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generator(seed) {
  const rand = mulberry32(seed);
  const hex = (n) => {
    let s = '';
    for (let i = 0; i < n; i++) s += Math.floor(rand() * 16).toString(16);
    return s;
  };
  const pick = (list) => list[Math.floor(rand() * list.length)];
  const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
  return { rand, hex, pick, int };
}

const SEED_KEY = 'fast-payment';

function tenantIds(n, seed = 0x7e4a) {
  const g = generator(seed);
  const seen = new Set();
  while (seen.size < n) seen.add(`tnt_${g.hex(10)}`);
  return [...seen];
}

const TENANTS_50 = tenantIds(50);
const TENANTS_10K = tenantIds(10_000, 0x10c);

/** The seed rule: admins, then users of a VIP tenant, then a sticky 20% of everyone else. */
function seedTargeting(tenants) {
  return {
    if: [
      { '==': [{ var: 'role' }, 'admin'] },
      'on',
      { in: [{ var: 'tenant' }, tenants] },
      'on',
      { fractional: [['on', 20], ['off', 80]] },
    ],
  };
}

function seedFlag(tenants) {
  return { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: seedTargeting(tenants) };
}

// ---- other shapes an app has (each with its hand-written twin) ----------------------------------

const STAFF_DOMAIN = '@example.com';
const SHAPES = [
  {
    id: 'seed',
    flag: () => seedFlag(TENANTS_50.slice(0, 10)),
  },
  {
    id: 'banner',
    flag: () => ({
      state: 'ENABLED',
      variants: { staff: 'Hi team', a: 'Welcome', b: 'Hello' },
      defaultVariant: 'b',
      targeting: { if: [{ ends_with: [{ var: 'email' }, STAFF_DOMAIN] }, 'staff', { fractional: [['a', 50], ['b', 50]] }] },
    }),
  },
  {
    id: 'rate',
    flag: () => ({ state: 'ENABLED', variants: { low: 10, high: 1000 }, defaultVariant: 'high', targeting: { if: [{ '<': [{ var: 'requests' }, 100] }, 'low', 'high'] } }),
  },
  {
    id: 'static',
    flag: () => ({ state: 'ENABLED', variants: { v1: 'Buy now', v2: 'Get started' }, defaultVariant: 'v2' }),
  },
  {
    id: 'beta',
    flag: () => ({ state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'off', targeting: { if: [{ in: ['beta', { var: 'groups' }] }, 'on', 'off'] } }),
  },
  {
    id: 'plan',
    flag: () => ({
      state: 'ENABLED',
      variants: { yes: { seats: 100, sso: true }, no: { seats: 5, sso: false } },
      defaultVariant: 'no',
      targeting: { if: [{ '==': [{ var: 'plan' }, 'enterprise'] }, 'yes', 'no'] },
    }),
  },
];

/**
 * Hand-written evaluation of one flag of a shape: what you would write without an engine.
 * `form` 'result' (the baseline) returns `{ value, variant, reason }`, the evaluation contract, as a
 * fresh object; 'value' returns the bare value (what code that only needs the value would write:
 * shown for information, the floor of the floor); 'prebuilt' returns results built once, frozen
 * (as Rollgate does), for the dispatch floor of evaluate.bench.js.
 */
function handWrittenFor(shape, flagKey, flag, form = 'result') {
  if (form === 'prebuilt') return prebuiltFor(shape, flagKey, flag);
  const bare = form === 'value';
  const v = flag.variants;
  switch (shape) {
    case 'seed': {
      const vip = new Set(flag.targeting.if[2].in[1]);
      if (bare) {
        return (ctx) => {
          if (ctx.role === 'admin' || vip.has(ctx.tenant)) return true;
          const tk = ctx.targetingKey;
          return typeof tk === 'string' && tk !== '' && bucketOf(murmur3(flagKey + tk), 100) < 20;
        };
      }
      return (ctx) => {
        if (ctx.role === 'admin' || vip.has(ctx.tenant)) return { value: true, variant: 'on', reason: 'TARGETING_MATCH' };
        const tk = ctx.targetingKey;
        if (typeof tk !== 'string' || tk === '') return { value: false, variant: 'off', reason: 'DEFAULT' };
        return bucketOf(murmur3(flagKey + tk), 100) < 20 ? { value: true, variant: 'on', reason: 'SPLIT' } : { value: false, variant: 'off', reason: 'SPLIT' };
      };
    }
    case 'banner': {
      if (bare) {
        return (ctx) => {
          const email = ctx.email;
          if (typeof email === 'string' && email.endsWith(STAFF_DOMAIN)) return v.staff;
          const tk = ctx.targetingKey;
          if (typeof tk !== 'string' || tk === '') return v.b;
          return bucketOf(murmur3(flagKey + tk), 100) < 50 ? v.a : v.b;
        };
      }
      return (ctx) => {
        const email = ctx.email;
        if (typeof email === 'string' && email.endsWith(STAFF_DOMAIN)) return { value: v.staff, variant: 'staff', reason: 'TARGETING_MATCH' };
        const tk = ctx.targetingKey;
        if (typeof tk !== 'string' || tk === '') return { value: v.b, variant: 'b', reason: 'DEFAULT' };
        return bucketOf(murmur3(flagKey + tk), 100) < 50 ? { value: v.a, variant: 'a', reason: 'SPLIT' } : { value: v.b, variant: 'b', reason: 'SPLIT' };
      };
    }
    case 'rate':
      // contexts always carry a number of requests
      if (bare) return (ctx) => (ctx.requests < 100 ? v.low : v.high);
      return (ctx) => (ctx.requests < 100 ? { value: v.low, variant: 'low', reason: 'TARGETING_MATCH' } : { value: v.high, variant: 'high', reason: 'TARGETING_MATCH' });
    case 'static':
      if (bare) return () => v.v2;
      return () => ({ value: v.v2, variant: 'v2', reason: 'STATIC' });
    case 'beta':
      if (bare) return (ctx) => Array.isArray(ctx.groups) && ctx.groups.includes('beta');
      return (ctx) => {
        const g = ctx.groups;
        return Array.isArray(g) && g.includes('beta') ? { value: true, variant: 'on', reason: 'TARGETING_MATCH' } : { value: false, variant: 'off', reason: 'TARGETING_MATCH' };
      };
    case 'plan':
      if (bare) return (ctx) => (ctx.plan === 'enterprise' ? v.yes : v.no);
      return (ctx) => (ctx.plan === 'enterprise' ? { value: v.yes, variant: 'yes', reason: 'TARGETING_MATCH' } : { value: v.no, variant: 'no', reason: 'TARGETING_MATCH' });
    default:
      throw new Error(`no hand-written function for ${shape}`);
  }
}

/** handWrittenFor's 'prebuilt' form: the same decisions, returning results built once per flag. */
function prebuiltFor(shape, flagKey, flag) {
  const v = flag.variants;
  const R = (variant, reason) => Object.freeze({ flagKey, value: v[variant], variant, reason });
  switch (shape) {
    case 'seed': {
      const vip = new Set(flag.targeting.if[2].in[1]);
      const [match, dflt, on, off] = [R('on', 'TARGETING_MATCH'), R('off', 'DEFAULT'), R('on', 'SPLIT'), R('off', 'SPLIT')];
      return (ctx) => {
        if (ctx.role === 'admin' || vip.has(ctx.tenant)) return match;
        const tk = ctx.targetingKey;
        if (typeof tk !== 'string' || tk === '') return dflt;
        return bucketOf(murmur3(flagKey + tk), 100) < 20 ? on : off;
      };
    }
    case 'banner': {
      const [staff, dflt, a, b] = [R('staff', 'TARGETING_MATCH'), R('b', 'DEFAULT'), R('a', 'SPLIT'), R('b', 'SPLIT')];
      return (ctx) => {
        const email = ctx.email;
        if (typeof email === 'string' && email.endsWith(STAFF_DOMAIN)) return staff;
        const tk = ctx.targetingKey;
        if (typeof tk !== 'string' || tk === '') return dflt;
        return bucketOf(murmur3(flagKey + tk), 100) < 50 ? a : b;
      };
    }
    case 'rate': {
      const [low, high] = [R('low', 'TARGETING_MATCH'), R('high', 'TARGETING_MATCH')];
      return (ctx) => (ctx.requests < 100 ? low : high);
    }
    case 'static': {
      const r = R('v2', 'STATIC');
      return () => r;
    }
    case 'beta': {
      const [on, off] = [R('on', 'TARGETING_MATCH'), R('off', 'TARGETING_MATCH')];
      return (ctx) => {
        const g = ctx.groups;
        return Array.isArray(g) && g.includes('beta') ? on : off;
      };
    }
    case 'plan': {
      const [yes, no] = [R('yes', 'TARGETING_MATCH'), R('no', 'TARGETING_MATCH')];
      return (ctx) => (ctx.plan === 'enterprise' ? yes : no);
    }
    default:
      throw new Error(`no hand-written function for ${shape}`);
  }
}

/**
 * An app's flag set: the seed flag (with `tenants`) and `n` more flags cycling through SHAPES
 * (keys flag-000, …). With `n` = 0, the seed flag alone.
 */
function appFlagSet(n, tenants = TENANTS_50) {
  const flags = { [SEED_KEY]: seedFlag(tenants) };
  const shapes = { [SEED_KEY]: 'seed' };
  for (let i = 0; i < n; i++) {
    const shape = SHAPES[i % SHAPES.length];
    const key = `flag-${String(i).padStart(3, '0')}`;
    flags[key] = shape.flag();
    shapes[key] = shape.id;
  }
  return { set: { flags }, shapes };
}

/** Hand-written functions for every flag of a set built by appFlagSet. */
function handWrittenSet({ set, shapes }, form = 'result') {
  const out = {};
  for (const key of Object.keys(set.flags)) out[key] = handWrittenFor(shapes[key], key, set.flags[key], form);
  return out;
}

// ---- contexts -------------------------------------------------------------------------------------

const FIRST = ['ana', 'bo', 'chen', 'dara', 'eli', 'femi', 'gus', 'hana', 'ivo', 'jun', 'kai', 'lea'];
const DOMAINS = ['example.com', 'gmail.com', 'acme.io', 'corp.example.org', 'mail.test'];
const NON_ASCII = ['josé', 'zoë', 'łukasz', '用户', 'müller', 'søren'];

/** A targetingKey in one of the forms apps use: UUID, prefixed id, e-mail, ObjectId, number, a few non-ASCII. */
function targetingKey(g, i) {
  const r = g.rand();
  if (r < 0.3) return `${g.hex(8)}-${g.hex(4)}-4${g.hex(3)}-a${g.hex(3)}-${g.hex(12)}`;
  if (r < 0.55) return `user-${i}-${g.hex(6)}`;
  if (r < 0.75) return `${g.pick(FIRST)}.${g.int(1, 9999)}@${g.pick(DOMAINS)}`;
  if (r < 0.9) return g.hex(24);
  if (r < 0.99) return String(g.int(1_000_000, 9_999_999_999));
  return `${g.pick(NON_ASCII)}-${g.int(1, 99999)}`;
}

/**
 * One context of a decision path of the seed flag: 'admin' (role admin), 'vip' (a tenant on the
 * list, not admin) or 'split' (neither: decided by the 20% split). Built from JSON text, as a
 * server builds it from a token or a request body, with the optional attributes apps send.
 */
function contextText(g, kind, i, tenants) {
  const ctx = { targetingKey: targetingKey(g, i) };
  ctx.role = kind === 'admin' ? 'admin' : g.pick(['member', 'viewer', 'owner', 'member']);
  ctx.tenant = kind === 'vip' ? g.pick(tenants) : `acme-${g.hex(6)}`;
  ctx.requests = g.int(0, 400);
  if (g.rand() < 0.7) ctx.email = g.rand() < 0.1 ? `${g.pick(FIRST)}${STAFF_DOMAIN}` : `${g.pick(FIRST)}.${g.int(1, 999)}@${g.pick(DOMAINS)}`;
  if (g.rand() < 0.6) ctx.plan = g.pick(['free', 'pro', 'enterprise']);
  if (g.rand() < 0.5) ctx.groups = Array.from({ length: g.int(0, 3) }, () => g.pick(['beta', 'staff', 'users', 'ops']));
  if (g.rand() < 0.4) ctx.country = g.pick(['DE', 'FR', 'US', 'JP', 'BR']);
  return JSON.stringify(ctx);
}

/** `n` contexts of one path ('admin' | 'vip' | 'split') or of the mix (20% admin, 30% VIP, 50% split, shuffled). */
function contexts(path, n, { tenants = TENANTS_50, seed = 1 } = {}) {
  const g = generator(0x5eed + seed * 7919 + ['admin', 'vip', 'split', 'mix'].indexOf(path) * 104729);
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    let kind = path;
    if (path === 'mix') {
      const k = i % 10;
      kind = k < 2 ? 'admin' : k < 5 ? 'vip' : 'split';
    }
    out[i] = JSON.parse(contextText(g, kind, i, tenants));
  }
  if (path === 'mix') {
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(g.rand() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
  }
  return out;
}

/** The path the seed flag takes for a context (by the hand-written rule). */
function pathOf(ctx, tenants) {
  if (ctx.role === 'admin') return 'admin';
  return tenants.includes(ctx.tenant) ? 'vip' : 'split';
}

module.exports = {
  SEED_KEY,
  TENANTS_50,
  TENANTS_10K,
  SHAPES,
  seedTargeting,
  seedFlag,
  appFlagSet,
  handWrittenFor,
  handWrittenSet,
  contexts,
  pathOf,
  generator,
  tenantIds,
};
