import { EventSource } from 'eventsource';
import type { EventSourceConstructor } from '@rollgate/web';

// The `eventsource` package (WHATWG EventSource for Node 20, which has none), injected through
// `options.eventSource`, plus hooks so tests can await a stream opening or closing instead of sleeping.

export interface TrackedStreams {
  EventSource: EventSourceConstructor;
  /** Every EventSource created, oldest first. */
  readonly created: EventSource[];
  /** Resolves when the next EventSource created after this call opens (or the latest one, if still connecting). */
  nextOpen(): Promise<void>;
  /** Resolves when the provider closes the current EventSource. */
  nextClose(): Promise<void>;
}

export function trackingEventSource(): TrackedStreams {
  const created: EventSource[] = [];
  let openWaiters: (() => void)[] = [];
  let closeWaiters: (() => void)[] = [];
  class Tracked extends EventSource {
    constructor(url: string, init?: { withCredentials?: boolean }) {
      super(url, init);
      created.push(this);
      this.addEventListener('open', () => {
        const waiting = openWaiters;
        openWaiters = [];
        for (const w of waiting) w();
      });
    }

    override close(): void {
      super.close();
      const waiting = closeWaiters;
      closeWaiters = [];
      for (const w of waiting) w();
    }
  }
  return {
    EventSource: Tracked,
    created,
    nextOpen: () => new Promise<void>((resolve) => openWaiters.push(resolve)),
    nextClose: () => new Promise<void>((resolve) => closeWaiters.push(resolve)),
  };
}
