import { randomUUID } from 'node:crypto';
import type { RedisFlagStore } from '@rollgate/redis';
import { runScript } from './scripts';

/**
 * The controller lease: one token in Redis with a TTL. Whoever holds it may write plans and
 * flag splits; each such write carries the token and the write scripts check it (fencing), so a
 * controller paused past its lease (GC, SIGSTOP) is refused when it wakes up, whatever it believes.
 */
export class ControllerLease {
  readonly token = randomUUID();
  /** Bumped on every acquisition (in Redis): tells one tenure from the next in the audit. */
  epoch = 0;

  constructor(
    private readonly store: RedisFlagStore,
    readonly ttlMs: number,
  ) {}

  /** Takes the lease if it is free, or extends it if already ours. True when held. */
  async acquire(): Promise<boolean> {
    const k = this.store.keys;
    const epoch = Number(await runScript(this.store.connection, 'rollgate_lease_acquire_v1', k.lease, k.leaseEpoch, this.token, this.ttlMs));
    if (epoch > 0) this.epoch = epoch;
    return epoch > 0;
  }

  /** Extends the lease while it is still ours. False once another holds it (or it expired and was taken). */
  async renew(): Promise<boolean> {
    return Number(await runScript(this.store.connection, 'rollgate_lease_renew_v1', this.store.keys.lease, this.token, this.ttlMs)) === 1;
  }

  /** Gives the lease up (if still ours), so another controller can take over at once. */
  async release(): Promise<void> {
    await runScript(this.store.connection, 'rollgate_lease_release_v1', this.store.keys.lease, this.token);
  }
}
