import type { PacingClock } from '@rollgate/server';

/** A pacing clock whose time, event-loop busy time and single timer the test drives (no wall-clock timing). */
export class FakePacingClock implements PacingClock {
  time = 1000;
  busy = 0;
  private timer: { fn: () => void; at: number } | undefined;
  now = (): number => this.time;
  busyMs = (): number => this.busy;
  setTimeout = (fn: () => void, ms: number): unknown => {
    if (this.timer) throw new Error('the pacer keeps one timer at a time');
    this.timer = { fn, at: this.time + ms };
    return this.timer;
  };
  clearTimeout = (handle: unknown): void => {
    if (handle === this.timer) this.timer = undefined;
  };
  get scheduled(): boolean {
    return this.timer !== undefined;
  }
  /** Moves to the timer (plus `late` ms, as a busy event loop would) and runs it. */
  fire(late = 0): void {
    const t = this.timer;
    if (!t) throw new Error('no timer is set');
    this.timer = undefined;
    this.time = t.at + late;
    t.fn();
  }
}
