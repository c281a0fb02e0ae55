// Every Redis key and channel Rollgate uses, built in one place. The environment is a hash tag
// (`{prod}`) so all keys of one environment live in one Cluster slot and can be written in one
// script. Channels are not keys: ioredis `keyPrefix` would not apply to them, so it is refused.

export interface FlagStoreKeys {
  /** hash: flag key → flag definition JSON (flagd format) */
  readonly flags: string;
  /** hash: evaluator name → rule JSON (`$evaluators`) */
  readonly evaluators: string;
  /** integer bumped by every write */
  readonly version: string;
  /** random id set by the first write (see StoredFlagSet.epoch) */
  readonly epoch: string;
  /** stream of audit entries */
  readonly audit: string;
  /** capped stream of `track()` events */
  readonly events: string;
  /** pub/sub channel: `{version, keys, evaluators}` after every write */
  readonly changes: string;
}

const ENV_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const PREFIX_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

export function flagStoreKeys(env: string, prefix = 'rollgate'): FlagStoreKeys {
  if (!ENV_PATTERN.test(env)) {
    throw new TypeError(`env must be 1-64 characters of A-Z a-z 0-9 _ . - (got ${JSON.stringify(env)})`);
  }
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new TypeError(`prefix must be 1-64 characters of A-Z a-z 0-9 _ . : - (got ${JSON.stringify(prefix)})`);
  }
  const base = `${prefix}:{${env}}`;
  return Object.freeze({
    flags: `${base}:flags`,
    evaluators: `${base}:evaluators`,
    version: `${base}:version`,
    epoch: `${base}:epoch`,
    audit: `${base}:audit`,
    events: `${base}:events`,
    changes: `${base}:changes`,
  });
}
