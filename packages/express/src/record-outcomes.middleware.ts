import { performance } from 'node:perf_hooks';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { RollgateProvider } from '@rollgate/redis';
import { currentExposures, withExposureScope, type Exposure, type OutcomeSink } from '@rollgate/server';

export interface RecordOutcomesOptions {
  /** Where finished requests are counted: an `OutcomeRecorder` from @rollgate/rollouts. */
  sink: OutcomeSink;
  /**
   * Also count `client.track(name)` calls made while handling a request in the arms that request
   * was served (e.g. `payment.failed` for an event guard).
   */
  provider?: RollgateProvider;
}

/**
 * Counts each request's outcome — an error (5xx, or a thrown handler) and its latency — in the
 * arm of every flag variant it was served (noted by `requireFeature` when it lets the request
 * through, or by `recordExposure`). Mount it first, before `identity()` and the routes: it only
 * opens a scope and listens for the response's end; nothing reaches Redis per request.
 */
export function recordOutcomes(options: RecordOutcomesOptions): RequestHandler {
  const sink = options?.sink;
  if (!sink || typeof sink.recordRequest !== 'function') throw new TypeError('recordOutcomes: options.sink (an OutcomeRecorder) is required');
  options.provider?.onTrack((name, _context, details) => {
    const exposures = currentExposures();
    // details.value (OpenFeature's numeric value of a tracking event) feeds value guards
    if (exposures && exposures.length > 0) sink.recordEvent(name, exposures, typeof details?.value === 'number' ? details.value : undefined);
  });
  return (_req: Request, res: Response, next: NextFunction) => {
    const exposures: Exposure[] = [];
    const started = performance.now();
    res.once('finish', () => {
      if (exposures.length > 0) sink.recordRequest(exposures, { error: res.statusCode >= 500, durationMs: performance.now() - started });
    });
    withExposureScope(exposures, next);
  };
}
