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
  /** random id of the write that produced the current state (see StoredFlagSet.revision) */
  readonly revision: string;
  /** stream of audit entries */
  readonly audit: string;
  /** capped stream of `track()` events */
  readonly events: string;
  /** pub/sub channel: `{version, revision, keys, evaluators}` after every write */
  readonly changes: string;
  /** string with a TTL: the version a write id produced (idempotent retries) */
  writeRecord(writeId: string): string;
  /** hash: flag key → rollout plan JSON (@rollgate/rollouts) */
  readonly plans: string;
  /** pub/sub channel: `{flag, planVersion}` after every plan write */
  readonly planChanges: string;
  /** string with a TTL: the rollout controller's lease token; writes that carry a token check it (fencing) */
  readonly lease: string;
  /** integer bumped on every lease acquisition */
  readonly leaseEpoch: string;
  /** hash with a TTL: one flag's outcome counts per arm for one second (epoch seconds) */
  outcomes(flagKey: string, second: number): string;
  /** HyperLogLog with a TTL: distinct units seen in one arm of a flag during one minute (epoch minutes) */
  units(flagKey: string, arm: string, minute: number): string;
  /** capped stream with a retention: users' feedback about one flag (sentiment, comment, variant) */
  feedback(flagKey: string): string;
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
    revision: `${base}:revision`,
    audit: `${base}:audit`,
    events: `${base}:events`,
    changes: `${base}:changes`,
    writeRecord: (writeId: string) => `${base}:write:${writeId}`,
    plans: `${base}:plans`,
    planChanges: `${base}:plans:changes`,
    lease: `${base}:lease`,
    leaseEpoch: `${base}:lease:epoch`,
    // flag keys and arm names are free text: encoded, so no two (flag, second) pairs share a key
    outcomes: (flagKey: string, second: number) => `${base}:obs:${encodeURIComponent(flagKey)}:${second}`,
    units: (flagKey: string, arm: string, minute: number) => `${base}:units:${encodeURIComponent(flagKey)}:${encodeURIComponent(arm)}:${minute}`,
    feedback: (flagKey: string) => `${base}:feedback:${encodeURIComponent(flagKey)}`,
  });
}
