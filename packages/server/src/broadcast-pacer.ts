import { performance } from 'node:perf_hooks';
import { ConfigError } from '@rollgate/redis';

// Paces the change stream's announcements. Every refetchEvaluation a browser receives comes back
// as a bulk request, and all of them run on this process's one event loop: sent to 10,000 streams
// at once, they would block it for seconds, and the guarded API requests with it. So the messages
// go out in slices, at a rate that keeps the refetches they cause within a share of the event
// loop: rate = share / (what one refetch costs).
//
// That cost is measured here, while announcing: the event loop's busy time per bulk request
// served, less the process's steady load before the announcement (its other work), over the last
// few slices; it is kept for the next announcement. Other work that grows during an announcement
// counts as refetch cost: a busier process announces more slowly, never faster. The share itself
// is lowered when the process is already busy, so that refetches and the rest stay under
// BUSY_CEILING of the loop — never below MIN_SHARE, so that an announcement always gets through.

/** How the change stream spreads its announcements (ChangeStreamOptions.pacing). */
export interface PacingOptions {
  /**
   * The largest share of the event loop the refetches of an announcement may take while it goes
   * out: with N streams and a refetch costing c ms, it is spread over about N × c / share ms.
   * Lowered while the process is busy with other work (refetches and the rest stay under 90%).
   * @default 0.5
   */
  share?: number;
  /**
   * The share for an announcement that takes something away from browsers — a visible flag
   * turned off, removed or hidden (a kill switch), or a split rolled back towards its default
   * variant: it reaches everyone sooner. At least `share`, below 1. @default 0.75
   */
  urgentShare?: number;
  /** What one refetch is taken to cost (ms of event loop) until one has been measured. @default 0.5 */
  initialRefetchCostMs?: number;
  /** How often a slice of messages goes out (smaller: smaller bursts of refetches). @default 10 */
  sliceMs?: number;
  /** The clock, timers and event-loop meter (tests give their own). @default this process's */
  clock?: PacingClock;
}

/** What the pacer reads the time and the event loop's load from, and sets its timer with. */
export interface PacingClock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Milliseconds the process has been busy so far (monotonic). By default the event loop's busy time: per interval, the lesser of the process's CPU time and the loop's active time. */
  busyMs(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** A repeating timer (optional): samples the process's load while idle, so that it is recent when a change comes. */
  setInterval?(fn: () => void, ms: number): unknown;
  clearInterval?(handle: unknown): void;
}

/**
 * The event loop's busy time, as well as Node 20 can tell it: over each interval between two
 * readings, the lesser of the process's CPU time and the loop's active time. CPU time alone counts
 * V8's helper threads too (concurrent marking and sweeping run on another core: measured, right
 * after a write they doubled the "cost" of a refetch while the loop itself was 30% busy); the
 * loop's active time alone counts the time the scheduler gave the core to other processes (a busy
 * machine would read as a costlier refetch). Neither is the loop's own work; the lesser is the
 * closer bound on it.
 */
export function loopBusyMeter(read: () => { cpuMs: number; activeMs: number } = readLoad): () => number {
  let { cpuMs: cpu, activeMs: active } = read();
  let busy = 0;
  return () => {
    const { cpuMs: c, activeMs: a } = read();
    busy += Math.max(0, Math.min(c - cpu, a - active));
    cpu = c;
    active = a;
    return busy;
  };
}

/** This process's CPU time and its event loop's active time so far (ms). */
function readLoad(): { cpuMs: number; activeMs: number } {
  const { user, system } = process.cpuUsage();
  return { cpuMs: (user + system) / 1000, activeMs: performance.eventLoopUtilization().active };
}

/** The process's clock: performance.now, unref'd timers, and the event loop's busy time (loopBusyMeter). */
export const processClock: PacingClock = {
  now: () => performance.now(),
  busyMs: loopBusyMeter(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms).unref(),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

/**
 * A measurement spans the latest slices that hold SAMPLE bulk requests (fewer slices when they come
 * fast), at most WINDOW_SLICES back; fewer than MIN_SAMPLE there, and the estimate stands. A slow
 * rate therefore still measures (over a longer window), and a stall (a long GC) leaves the window
 * after a while instead of keeping the estimate high. MIN_SAMPLE is not small: while the refetches
 * lag behind their messages (slow clients, a long network), a handful of them would be charged
 * with everything else the process did meanwhile (measured: 8 refetches in 1.4 s took the
 * estimate to its 10 ms ceiling and held 9,000 messages back for 2 s).
 */
const SAMPLE = 64;
const MIN_SAMPLE = 32;
const WINDOW_SLICES = 300;
/**
 * Not measured in the first ms of an announcement: its refetches have not come back yet (the web
 * provider waits 50 ms), while writing its first messages keeps the loop busy.
 */
const WARMUP_MS = 150;
/** Bounds of the cost estimate (ms). */
const MIN_COST_MS = 0.02;
const MAX_COST_MS = 10;
/** A late slice sends at most this many slices' worth. */
const MAX_SLICES_AT_ONCE = 2;
/** Slices spent measuring after the last message: refetches arrive after their message. */
const TAIL_SLICES = 15;
/** Refetches and the process's other work together stay under this share of the loop... */
const BUSY_CEILING = 0.9;
/** ...but announcements always get at least this share. */
const MIN_SHARE = 0.1;
/** The process's own load (the baseline) is read every SAMPLE_MS while idle; the last BASELINE_MS of readings count. */
const SAMPLE_MS = 250;
const BASELINE_MS = 2000;

export interface PacerStats {
  /** Targets waiting for their message. */
  pending: number;
  /** The measured cost of one refetch (ms of event loop). */
  refetchCostMs: number;
  /** The share in use (0 when nothing is being announced). */
  share: number;
}

/** Sends one message to each target queued, paced; a target queued twice gets one message. */
export class BroadcastPacer<T> {
  private readonly share: number;
  private readonly urgentShare: number;
  private readonly sliceMs: number;
  private readonly clock: PacingClock;
  /** Insertion-ordered: the first queued is the first served. */
  private readonly queue = new Set<T>();
  private costMs: number;
  /** The share asked for (share or urgentShare); 0 when idle. */
  private wantedShare = 0;
  /** The share applied: the one asked for, lowered by the process's own load. */
  private activeShare = 0;
  private allowance = 0;
  private lastSlice = 0;
  private startedAt = 0;
  private timer: unknown;
  private tail = 0;
  private bulks = 0;
  private bulkCostMs = 0;
  private mark: { at: number; busy: number; bulks: number } | undefined;
  /** The latest slices' length, busy time and bulk requests served (newest last). */
  private slices: { ms: number; busy: number; served: number }[] = [];
  /** The busy share of the event loop while not announcing; readings taken while idle (newest last); where they restart. */
  private baseline = 0;
  private readings: { at: number; busy: number }[] = [];
  private idleSince: { at: number; busy: number };
  private readonly sampler: unknown;
  private closed = false;

  constructor(
    private readonly send: (target: T) => void,
    options: PacingOptions = {},
  ) {
    this.share = options.share ?? 0.5;
    this.urgentShare = options.urgentShare ?? Math.max(0.75, this.share);
    this.sliceMs = options.sliceMs ?? 10;
    this.costMs = options.initialRefetchCostMs ?? 0.5;
    this.clock = options.clock ?? processClock;
    const fraction = (name: string, v: number) => {
      if (typeof v !== 'number' || !(v > 0 && v < 1)) throw new ConfigError(`changeStream: pacing.${name} must be a number above 0 and below 1 (a share of the event loop), got ${String(v)}`);
    };
    fraction('share', this.share);
    fraction('urgentShare', this.urgentShare);
    if (this.urgentShare < this.share) throw new ConfigError(`changeStream: pacing.urgentShare (${this.urgentShare}) must be at least pacing.share (${this.share})`);
    if (typeof this.sliceMs !== 'number' || !(this.sliceMs >= 1 && this.sliceMs <= 1000)) throw new ConfigError(`changeStream: pacing.sliceMs must be from 1 to 1000, got ${String(this.sliceMs)}`);
    if (typeof this.costMs !== 'number' || !(this.costMs >= MIN_COST_MS && this.costMs <= MAX_COST_MS)) {
      throw new ConfigError(`changeStream: pacing.initialRefetchCostMs must be from ${MIN_COST_MS} to ${MAX_COST_MS}, got ${String(this.costMs)}`);
    }
    this.idleSince = { at: this.clock.now(), busy: this.clock.busyMs() };
    this.sampler = this.clock.setInterval?.(() => this.read(), SAMPLE_MS);
  }

  stats(): PacerStats {
    return { pending: this.queue.size, refetchCostMs: this.costMs, share: this.activeShare };
  }

  /** How long `targets` messages take at `share` with the cost measured so far (ms), the process otherwise idle. */
  windowMs(targets: number, urgent = false): number {
    return (targets * this.costMs) / (urgent ? this.urgentShare : this.share);
  }

  /** Queues every target (those already waiting keep their place); urgent raises the share until the queue is empty. */
  announce(targets: Iterable<T>, urgent: boolean): void {
    if (this.closed) return;
    for (const t of targets) this.queue.add(t);
    this.ask(urgent ? this.urgentShare : this.share);
  }

  /** Queues one target (a stream that connected from an older position). */
  enqueue(target: T): void {
    if (this.closed) return;
    this.queue.add(target);
    this.ask(this.share);
  }

  /** A target that went away. */
  remove(target: T): void {
    this.queue.delete(target);
  }

  /** A bulk evaluation was served (`ms`: its own time, a floor for the cost of a refetch). */
  noteBulk(ms: number): void {
    this.bulks++;
    this.bulkCostMs = this.bulkCostMs === 0 ? ms : this.bulkCostMs * 0.7 + ms * 0.3;
  }

  close(): void {
    this.closed = true;
    this.queue.clear();
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.sampler !== undefined) this.clock.clearInterval?.(this.sampler);
  }

  /** A reading of the process's load while idle (the sampler's). */
  private read(): void {
    if (this.timer !== undefined) return; // announcing: its own work is not the baseline
    this.readings.push({ at: this.clock.now(), busy: this.clock.busyMs() });
    if (this.readings.length > BASELINE_MS / SAMPLE_MS + 1) this.readings.shift();
  }

  private ask(share: number): void {
    if (this.timer === undefined) {
      // idle until now: what the process does besides announcing, and a full slice's worth at once
      this.takeBaseline(this.clock.now());
      this.startedAt = this.clock.now();
      this.lastSlice = this.clock.now() - this.sliceMs;
      this.allowance = 0;
      this.wantedShare = share;
      this.slice();
      return;
    }
    if (share > this.wantedShare) {
      this.wantedShare = share;
      this.activeShare = this.effective(share);
    }
    this.flush(); // what this slice's budget still allows
  }

  /** The share applied: refetches and the process's other work stay under the ceiling, announcements get at least the minimum. */
  private effective(share: number): number {
    return Math.min(share, Math.max(MIN_SHARE, BUSY_CEILING - this.baseline));
  }

  /**
   * The process's busy share before this announcement: the quietest quarter-second of the last two
   * seconds' idle readings (a burst just before — the provider compiling this very change, a wave
   * of page loads — is not the process's steady load), or else the share since it was last idle
   * (a quiet process, or a test's clock). An empty window keeps the last value.
   */
  private takeBaseline(now: number): void {
    const recent = this.readings.filter((r) => now - r.at <= BASELINE_MS);
    let quietest: number | undefined;
    for (let i = 1; i < recent.length; i++) {
      const span = recent[i]!.at - recent[i - 1]!.at;
      if (span > 0) quietest = Math.min(quietest ?? Infinity, (recent[i]!.busy - recent[i - 1]!.busy) / span);
    }
    if (quietest === undefined) {
      const span = now - this.idleSince.at;
      if (span >= this.sliceMs) quietest = (this.clock.busyMs() - this.idleSince.busy) / span;
    }
    if (quietest !== undefined) this.baseline = Math.min(1, Math.max(0, quietest));
  }

  private slice(): void {
    this.timer = undefined;
    if (this.closed) return;
    const now = this.clock.now();
    this.measure(now);
    this.activeShare = this.effective(this.wantedShare);
    const perMs = this.activeShare / this.costMs;
    // time since the last slice earns messages (a timer runs late on a busy loop); never more than
    // two slices' worth at once, so that a late timer (a stall elsewhere) does not turn into a burst
    const cap = Math.max(1, perMs * this.sliceMs * MAX_SLICES_AT_ONCE);
    this.allowance = Math.min(cap, this.allowance + perMs * Math.max(0, now - this.lastSlice));
    this.lastSlice = now;
    // after the last message, keep measuring a while: its refetches are still to come
    if (this.flush() > 0 || this.queue.size > 0) this.tail = TAIL_SLICES;
    else if (this.tail > 0) this.tail--;
    if (this.queue.size > 0 || this.tail > 0) {
      this.timer = this.clock.setTimeout(() => this.slice(), this.sliceMs);
      return;
    }
    // idle again: the next baseline window starts now, without the announcement's work
    this.wantedShare = 0;
    this.activeShare = 0;
    this.mark = undefined;
    this.slices = [];
    this.readings = [];
    this.idleSince = { at: now, busy: this.clock.busyMs() };
  }

  /** Sends as many messages as the allowance holds; returns how many. */
  private flush(): number {
    let sent = 0;
    for (const target of this.queue) {
      if (this.allowance < 1) break;
      this.queue.delete(target);
      this.allowance--;
      sent++;
      this.send(target);
    }
    return sent;
  }

  /** Updates the cost of a refetch: busy time beyond the baseline per bulk request, over the last few slices. */
  private measure(now: number): void {
    if (now - this.startedAt < WARMUP_MS) return;
    const busy = this.clock.busyMs();
    const mark = this.mark;
    this.mark = { at: now, busy, bulks: this.bulks };
    if (mark === undefined || now <= mark.at) return;
    this.slices.push({ ms: now - mark.at, busy: busy - mark.busy, served: this.bulks - mark.bulks });
    if (this.slices.length > WINDOW_SLICES) this.slices.shift();
    let ms = 0;
    let spent = 0;
    let served = 0;
    for (let i = this.slices.length - 1; i >= 0 && served < SAMPLE; i--) {
      ms += this.slices[i]!.ms;
      spent += this.slices[i]!.busy;
      served += this.slices[i]!.served;
    }
    if (served < MIN_SAMPLE) return;
    const sample = Math.max((spent - this.baseline * ms) / served, this.bulkCostMs);
    this.costMs = Math.min(MAX_COST_MS, Math.max(MIN_COST_MS, sample));
  }
}
