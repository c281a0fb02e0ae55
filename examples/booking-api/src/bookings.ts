// The app's own data about its users, which no token carries: how many bookings an agent made
// this month. The identity's `enrich` step adds it to every caller's evaluation context on the
// server (cached per caller for a minute), so the `busy-agents` segment of flags.json — agents
// with more than 50 bookings this month — decides for the guards and for OFREP alike.
//
// DEMO ONLY: fixed numbers for the demo's people; a real app counts in its database, e.g.
// SELECT count(*) FROM bookings WHERE agent = $1 AND created_at >= date_trunc('month', now()).

/** Bookings this month of the demo's people (bo, the VIP agent, is also a busy one). */
export const DEMO_BOOKINGS_THIS_MONTH: Readonly<Record<string, number>> = Object.freeze({ ada: 0, bo: 64, carol: 2, dale: 7 });

/** Bookings this month of `subject`: the demo's figure, or a stable made-up one (0-79) for simulated users. */
export async function bookingsThisMonth(subject: string): Promise<number> {
  if (Object.prototype.hasOwnProperty.call(DEMO_BOOKINGS_THIS_MONTH, subject)) return DEMO_BOOKINGS_THIS_MONTH[subject]!;
  let h = 0;
  for (let i = 0; i < subject.length; i++) h = (h * 31 + subject.charCodeAt(i)) >>> 0;
  return h % 80;
}

/** The `enrich` option of the demo's identity: one trusted attribute, read from the app's data. */
export const BOOKINGS_ENRICHMENT = {
  attributes: ['bookingsThisMonth'],
  load: async (who: { subject: string }) => ({ bookingsThisMonth: await bookingsThisMonth(who.subject) }),
  ttlMs: 60_000,
  timeoutMs: 200,
} as const;
