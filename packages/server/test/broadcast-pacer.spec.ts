import { BroadcastPacer, loopBusyMeter, processClock } from '../src/broadcast-pacer';
import { FakePacingClock as FakeClock } from './support/fake-pacing-clock';

// The pacer on a clock the test moves: which messages go out when, with no wall-clock timing.

function setup(options: ConstructorParameters<typeof BroadcastPacer>[1] = {}) {
  const clock = new FakeClock();
  const sent: { target: number; at: number }[] = [];
  const pacer = new BroadcastPacer<number>((target) => sent.push({ target, at: clock.time }), { clock, ...options });
  return { clock, sent, pacer };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

it('spreads an announcement over the window sized from the streams, the refetch cost and the share', () => {
  // 1000 streams, a refetch costs 0.5 ms, refetches may take half the event loop: 1000 ms
  const { clock, sent, pacer } = setup({ share: 0.5, initialRefetchCostMs: 0.5, sliceMs: 20 });
  expect(pacer.windowMs(1000)).toBe(1000);
  pacer.announce(range(1000), false);
  expect(sent).toHaveLength(20); // the first slice at once: 20 ms × 0.5 / 0.5 ms
  const perSlice: number[] = [sent.length];
  while (pacer.stats().pending > 0) {
    const before = sent.length;
    clock.fire();
    perSlice.push(sent.length - before);
  }
  expect(perSlice.every((n) => n === 20)).toBe(true);
  expect(perSlice).toHaveLength(50);
  // every stream once, in the order they were announced to
  expect(sent.map((s) => s.target)).toEqual(range(1000));
  // spread across the window: the last message goes out 980 ms after the first, none earlier than its budget allows
  expect(sent.at(-1)!.at - sent[0]!.at).toBe(980);
  for (const [i, s] of sent.entries()) expect(s.at - sent[0]!.at).toBe(Math.floor(i / 20) * 20);
});

it('sends small announcements at once', () => {
  const { sent, pacer } = setup({ share: 0.5, initialRefetchCostMs: 0.5, sliceMs: 20 });
  pacer.announce(range(15), false);
  expect(sent).toHaveLength(15);
  expect(pacer.stats().pending).toBe(0);
});

it('a kill switch or rollback goes out at the urgent share', () => {
  const { clock, sent, pacer } = setup({ share: 0.5, urgentShare: 0.8, initialRefetchCostMs: 0.5, sliceMs: 20 });
  pacer.announce(range(1000), true);
  expect(sent).toHaveLength(32); // 20 ms × 0.8 / 0.5 ms
  clock.fire();
  expect(sent).toHaveLength(64);
  expect(pacer.windowMs(1000, true)).toBe(625);
  // an urgent change while an ordinary one goes out raises the share for the rest
  const ordinary = setup({ share: 0.5, urgentShare: 0.8, initialRefetchCostMs: 0.5, sliceMs: 20 });
  ordinary.pacer.announce(range(1000), false);
  ordinary.pacer.announce(range(1000), true);
  ordinary.clock.fire();
  expect(ordinary.sent).toHaveLength(20 + 32);
});

it('measures what a refetch costs from the event loop busy time per bulk request, and paces by it', () => {
  const { clock, sent, pacer } = setup({ share: 0.5, initialRefetchCostMs: 0.5, sliceMs: 20 });
  pacer.announce(range(10_000), false);
  // the refetches of each slice come back before the next; each costs 0.1 ms of event loop
  let answered = 0;
  const answerAndFire = () => {
    const arrived = sent.length - answered;
    answered = sent.length;
    for (let i = 0; i < arrived; i++) pacer.noteBulk(0.02);
    clock.busy += arrived * 0.1;
    clock.fire();
  };
  for (let slice = 0; slice < 30; slice++) answerAndFire();
  expect(pacer.stats().refetchCostMs).toBeCloseTo(0.1, 3);
  const before = sent.length;
  answerAndFire();
  expect(sent.length - before).toBeGreaterThanOrEqual(99); // 20 ms × 0.5 / 0.1 ms, give or take a rounding
  expect(sent.length - before).toBeLessThanOrEqual(100);
  expect(pacer.windowMs(10_000)).toBeCloseTo(2000, 0);
});

it('a stall (a long GC) raises the estimate only while it is in the measured window: slow announcements still measure, and recover', () => {
  const { clock, sent, pacer } = setup({ share: 0.5, initialRefetchCostMs: 0.5, sliceMs: 10 });
  pacer.announce(range(100_000), false);
  let answered = 0;
  const answerAndFire = (extraBusy = 0) => {
    const arrived = sent.length - answered;
    answered = sent.length;
    for (let i = 0; i < arrived; i++) pacer.noteBulk(0.02);
    clock.busy += arrived * 0.1 + extraBusy;
    clock.fire();
  };
  for (let i = 0; i < 40; i++) answerAndFire();
  expect(pacer.stats().refetchCostMs).toBeCloseTo(0.1, 3);
  answerAndFire(800); // 800 ms of GC in one slice
  expect(pacer.stats().refetchCostMs).toBeGreaterThan(5); // announcements slow to a crawl…
  const crawling = sent.length;
  for (let i = 0; i < 300 && pacer.stats().refetchCostMs > 0.2; i++) answerAndFire();
  expect(sent.length - crawling).toBeGreaterThan(0); // …still going out and measured…
  expect(pacer.stats().refetchCostMs).toBeCloseTo(0.1, 3); // …until the stall has left the window
});

it('refetches lagging behind their messages (slow clients) are not charged with the rest of the process: the estimate stands until enough come back', () => {
  const { clock, sent, pacer } = setup({ share: 0.5, initialRefetchCostMs: 0.5, sliceMs: 10 });
  pacer.announce(range(10_000), false);
  // 1.5 s: the process busy 20% with other work (a GC, its own writes), 15 refetches back in all
  for (let i = 0; i < 150; i++) {
    if (i % 10 === 0) pacer.noteBulk(0.05);
    clock.busy += 2;
    clock.fire();
  }
  expect(pacer.stats().refetchCostMs).toBe(0.5); // not (200 ms / 10 =) the 10 ms ceiling
  expect(sent.length).toBeGreaterThanOrEqual(1490); // still 10 ms × 0.5 / 0.5 ms a slice
  // then the refetches come back, 0.1 ms each: measured
  let answered = sent.length - 100;
  for (let i = 0; i < 60; i++) {
    const arrived = sent.length - answered;
    answered = sent.length;
    for (let j = 0; j < arrived; j++) pacer.noteBulk(0.02);
    clock.busy += arrived * 0.1;
    clock.fire();
  }
  expect(pacer.stats().refetchCostMs).toBeLessThan(0.2);
});

it('counts only the busy time beyond what the process did before the announcement, and lowers the share when it is already busy', () => {
  const { clock, sent, pacer } = setup({ share: 0.5, initialRefetchCostMs: 0.5, sliceMs: 20 });
  // before: 2 s with the event loop 30% busy (other requests)
  clock.time += 2000;
  clock.busy += 600;
  pacer.announce(range(10_000), false);
  expect(pacer.stats().share).toBe(0.5); // 0.3 + 0.5 stays under the 0.9 ceiling
  let answered = 0;
  for (let slice = 0; slice < 30; slice++) {
    const arrived = sent.length - answered;
    answered = sent.length;
    for (let i = 0; i < arrived; i++) pacer.noteBulk(0.02);
    clock.busy += 0.3 * 20 + arrived * 0.1; // the other work goes on; each refetch 0.1 ms
    clock.fire();
  }
  expect(pacer.stats().refetchCostMs).toBeCloseTo(0.1, 3);

  // a process 70% busy with other work: refetches get what is left under the ceiling
  const busy = setup({ share: 0.5, urgentShare: 0.75, initialRefetchCostMs: 0.5, sliceMs: 20 });
  busy.clock.time += 2000;
  busy.clock.busy += 1400;
  busy.pacer.announce(range(1000), true);
  expect(busy.pacer.stats().share).toBeCloseTo(0.2, 6);
  expect(busy.sent).toHaveLength(8); // 20 ms × 0.2 / 0.5 ms
  // and never less than 0.1, however busy
  const swamped = setup({ share: 0.5, initialRefetchCostMs: 0.5, sliceMs: 20 });
  swamped.clock.time += 2000;
  swamped.clock.busy += 2000;
  swamped.pacer.announce(range(1000), false);
  expect(swamped.pacer.stats().share).toBe(0.1);
});

it('catches up on a late timer, but never bursts after a stall elsewhere: at most two slices’ worth at a time', () => {
  const { clock, sent, pacer } = setup({ share: 0.5, initialRefetchCostMs: 0.5, sliceMs: 20 });
  pacer.announce(range(1000), false);
  clock.fire(10); // 30 ms after the first slice: 30 ms worth
  expect(sent).toHaveLength(20 + 30);
  clock.fire(500); // half a second late: two slices' worth, not 500 ms worth
  expect(sent).toHaveLength(20 + 30 + 40);
});

it('skips streams that went away, and sends one message to a stream queued twice', () => {
  const { clock, sent, pacer } = setup({ share: 0.5, initialRefetchCostMs: 0.5, sliceMs: 20 });
  pacer.announce(range(50), false); // 0–19 at once
  pacer.remove(30); // closed
  const open = range(50).filter((t) => t !== 30);
  pacer.announce(open, false); // a second change before the first reached everyone
  while (pacer.stats().pending > 0) clock.fire();
  // those still waiting keep their place and get one message; those served already get another
  expect(sent.map((s) => s.target)).toEqual([...range(20), ...open.slice(20), ...range(20)]);
});

it('stops its timer once everything is sent and measured, and on close', () => {
  const { clock, pacer } = setup({ share: 0.5, initialRefetchCostMs: 0.5, sliceMs: 20 });
  pacer.announce(range(100), false);
  while (clock.scheduled) clock.fire();
  expect(pacer.stats()).toEqual({ pending: 0, refetchCostMs: 0.5, share: 0 });
  pacer.announce(range(100), false);
  expect(clock.scheduled).toBe(true);
  pacer.close();
  expect(clock.scheduled).toBe(false);
  expect(pacer.stats().pending).toBe(0);
});

it('refuses shares that are not a part of the event loop, with the option named', () => {
  expect(() => setup({ share: 0 })).toThrow('changeStream: pacing.share must be a number above 0 and below 1 (a share of the event loop), got 0');
  expect(() => setup({ share: 1 })).toThrow('pacing.share must be a number above 0 and below 1');
  expect(() => setup({ share: 0.6, urgentShare: 0.5 })).toThrow('changeStream: pacing.urgentShare (0.5) must be at least pacing.share (0.6)');
  expect(() => setup({ urgentShare: 1.5 })).toThrow('pacing.urgentShare must be a number above 0 and below 1');
  expect(() => setup({ sliceMs: 0 })).toThrow('changeStream: pacing.sliceMs must be from 1 to 1000, got 0');
  expect(() => setup({ initialRefetchCostMs: 100 })).toThrow('changeStream: pacing.initialRefetchCostMs must be from 0.02 to 10, got 100');
});

it("reads the event loop's busy time as the lesser of CPU time and loop-active time over each interval", () => {
  // helper threads (concurrent GC) add CPU time the loop did not spend; other processes on the
  // core add active time the loop did not spend: neither may read as a costlier refetch
  const readings = [
    { cpuMs: 100, activeMs: 50 }, // the start
    { cpuMs: 130, activeMs: 60 }, // +30 CPU (GC threads), +10 active: 10
    { cpuMs: 135, activeMs: 90 }, // +5 CPU, +30 active (preempted): 5
    { cpuMs: 155, activeMs: 110 }, // +20, +20: 20
  ];
  let i = 0;
  const busyMs = loopBusyMeter(() => readings[i++]!);
  expect([busyMs(), busyMs(), busyMs()]).toEqual([10, 15, 35]);
});

it("the process clock's busy time grows with the loop's own work, and never faster than the wall clock", () => {
  const t0 = processClock.now();
  const b0 = processClock.busyMs();
  const until = t0 + 30;
  while (processClock.now() < until); // the loop busy for 30 ms
  const b1 = processClock.busyMs();
  const t1 = processClock.now();
  expect(b1).toBeGreaterThan(b0);
  expect(b1 - b0).toBeLessThanOrEqual(t1 - t0 + 1);
});
