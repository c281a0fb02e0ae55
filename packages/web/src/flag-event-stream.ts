import type { BulkEvaluationRefetchMetadata, EventStreamMessage } from '@openfeature/ofrep-core';
import type { Logger } from '@openfeature/web-sdk';
import type { EventSourceConstructor, EventSourceLike } from './options';

// One EventSource on the server's OFREP change stream (ADR-0008). It carries no flag data: it
// says when to refetch. This class only tells the provider what happened; the provider decides
// what to fetch and when to reopen.

const CLOSED = 2; // EventSource.CLOSED, without touching a global that Node may not have
const DEBOUNCE_MS = 50;

export interface FlagEventStreamListener {
  /** A `refetchEvaluation` message (bursts are coalesced). */
  refetch(metadata: BulkEvaluationRefetchMetadata): void;
  /** The stream is open (first time, or again after a loss): changes may have been missed. */
  opened(): void;
  /** The connection dropped; the EventSource is reconnecting by itself. */
  lost(): void;
  /** The EventSource gave up (the server answered non-200, e.g. an expired stream ticket): open a new URL. */
  refused(): void;
}

export class FlagEventStream {
  private source: EventSourceLike | undefined;
  private lost = false;
  private debounce: ReturnType<typeof setTimeout> | undefined;
  private pending: BulkEvaluationRefetchMetadata = {};

  constructor(
    private readonly EventSourceImpl: EventSourceConstructor,
    private readonly withCredentials: boolean,
    private readonly listener: FlagEventStreamListener,
    private readonly logger?: Logger,
  ) {}

  /** An EventSource exists (open, or connecting). */
  get active(): boolean {
    return this.source !== undefined;
  }

  get open(): boolean {
    return this.source !== undefined && this.source.readyState === 1 && !this.lost;
  }

  connect(url: string): void {
    this.close();
    const source = new this.EventSourceImpl(url, this.withCredentials ? { withCredentials: true } : undefined);
    this.source = source;
    this.lost = false;
    source.addEventListener('open', () => {
      if (this.source !== source) return;
      this.lost = false;
      this.listener.opened();
    });
    source.addEventListener('message', (event: MessageEvent) => {
      if (this.source === source) this.message(event);
    });
    source.addEventListener('error', () => {
      if (this.source !== source) return;
      if (source.readyState === CLOSED) {
        source.close();
        this.source = undefined;
        this.clearDebounce();
        this.listener.refused();
      } else if (!this.lost) {
        this.lost = true;
        this.listener.lost();
      }
    });
  }

  close(): void {
    this.clearDebounce();
    const source = this.source;
    this.source = undefined;
    source?.close();
  }

  private message(event: MessageEvent): void {
    let data: EventStreamMessage;
    try {
      data = (typeof event.data === 'string' ? JSON.parse(event.data) : event.data) as EventStreamMessage;
    } catch {
      this.logger?.warn('@rollgate/web: ignored an SSE message that is not JSON');
      return;
    }
    if (data?.type !== 'refetchEvaluation') return; // unknown types are for future use (ADR-0008)
    this.pending = {
      ...(typeof data.etag === 'string' ? { flagConfigEtag: data.etag } : {}),
      ...(data.lastModified !== undefined ? { flagConfigLastModified: data.lastModified } : {}),
    };
    this.clearDebounce();
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      const metadata = this.pending;
      this.pending = {};
      this.listener.refetch(metadata);
    }, DEBOUNCE_MS);
  }

  private clearDebounce(): void {
    if (this.debounce !== undefined) clearTimeout(this.debounce);
    this.debounce = undefined;
  }
}
