import type { AdminClient } from './api';
import { backoffMs, SseParser } from './sse';

// Follows `GET /events` with fetch() streaming (EventSource cannot send the bearer token),
// reconnecting with backoff. On connecting the server announces the state as it is (a `flags`
// event, a `plan` event per plan), so a page that read before the stream was open can tell whether
// anything moved meanwhile. A reconnection, or the store back after being unreachable, is
// announced too: events may have been missed while it was down, so the caller reloads then.

export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'store_unavailable';

export interface EventHandlers {
  /** The stream is open: the first time (`again` false), or again after a drop or an unreachable store (reload everything). */
  onOpen(again: boolean): void;
  /** The flags' state (`flags` {version, revision}): on connecting, and on every change of flags or evaluators. */
  onFlags(version: number, revision: string | undefined): void;
  /** A plan's version (`plan` {flag, planVersion}): on connecting, and on every change of that plan. */
  onPlan(flag: string, planVersion: number): void;
  onStatus(status: LiveStatus): void;
  /** 401/403 on the stream: the caller shows the sign-in or "not authorized". */
  onRefused(status: 401 | 403): void;
}

/** Nothing at all (not even the 15 s keep-alive) for this long: the connection is dead. */
const SILENCE_MS = 45_000;

export function followEvents(client: AdminClient, handlers: EventHandlers): () => void {
  let stopped = false;
  let attempt = 0;
  let opened = false;
  let controller: AbortController | undefined;
  let retry: ReturnType<typeof setTimeout> | undefined;

  const connect = async () => {
    if (stopped) return;
    controller = new AbortController();
    const aborter = controller;
    let silence: ReturnType<typeof setTimeout> | undefined;
    const quiet = () => {
      clearTimeout(silence);
      silence = setTimeout(() => aborter.abort(), SILENCE_MS);
    };
    try {
      const res = await fetch(client.url('events'), { headers: client.headers({ Accept: 'text/event-stream' }), credentials: 'include', cache: 'no-store', signal: aborter.signal });
      if (res.status === 401 || res.status === 403) {
        handlers.onRefused(res.status);
        return; // the app signs in again and starts a new follower
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      attempt = 0;
      handlers.onStatus('live');
      handlers.onOpen(opened);
      opened = true;
      quiet();
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      const parser = new SseParser();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        quiet();
        for (const event of parser.push(decoder.decode(value, { stream: true }))) {
          let data: Record<string, unknown> = {};
          try {
            data = JSON.parse(event.data) as Record<string, unknown>;
          } catch {
            continue;
          }
          if (event.event === 'flags') handlers.onFlags(Number(data.version), typeof data.revision === 'string' ? data.revision : undefined);
          else if (event.event === 'plan') handlers.onPlan(String(data.flag), Number(data.planVersion));
          else if (event.event === 'unavailable') handlers.onStatus('store_unavailable');
          else if (event.event === 'available') {
            handlers.onStatus('live');
            handlers.onOpen(true);
          }
        }
      }
    } catch {
      // a dropped connection, a server restart, the silence timer: reconnect below
    } finally {
      clearTimeout(silence);
    }
    if (stopped) return;
    handlers.onStatus('reconnecting');
    retry = setTimeout(() => void connect(), backoffMs(attempt++));
  };

  handlers.onStatus('connecting');
  void connect();
  return () => {
    stopped = true;
    clearTimeout(retry);
    controller?.abort();
  };
}
