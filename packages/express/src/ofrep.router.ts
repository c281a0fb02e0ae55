import express, { Router, type NextFunction, type Request, type Response } from 'express';
import {
  ChangeStream,
  EVENTS_PATH,
  EventIntake,
  OfrepEvaluator,
  eventsBodyParserRefusal,
  eventsCorsHeaders,
  eventsError,
  identityAttributeNames,
  ofrepBodyParserRefusal,
  ofrepError,
  ofrepPathKey,
  writeOfrepResponse,
  type ChangeStreamOptions,
  type IdentityOptions,
  type OfrepOptions,
  type OutcomeSink,
  type TrackingOptions,
} from '@rollgate/server';
import type { RollgateProvider } from '@rollgate/redis';
import { ConfigError } from '@rollgate/redis';
import { getRequestIdentity } from './request-identity';
import { authenticate as authenticateWith } from './identity.middleware';

export interface OfrepRouterOptions extends Pick<OfrepOptions, 'clientVisible' | 'clientAttributes' | 'exposedMetadata'> {
  /** The provider whose flags are served (once loaded) and whose changes drive the SSE stream. */
  provider: Pick<RollgateProvider, 'snapshot' | 'events'> & Partial<Pick<RollgateProvider, 'health'>>;
  /** Verify callers here; without it, `identity()` must run before this router. */
  identity?: IdentityOptions;
  /** Browser origins allowed to call (CORS, with ETag exposed). @default none (same origin only) */
  cors?: { origins: readonly string[] };
  /** Largest JSON body accepted. @default '16kb' */
  bodyLimit?: string;
  /** The SSE change stream (OFREP eventStreams); false to turn it off. @default on */
  stream?: false | Omit<ChangeStreamOptions, 'events'>;
  /**
   * Accept events from browsers at `POST /rollgate/v1/events` (the web provider's `track()`):
   * allow-listed names, counted in the arms of the variants the server evaluates for the caller,
   * rate-limited. Needs `outcomes`. @default off (the route answers 404)
   */
  tracking?: TrackingOptions;
  /** Where accepted events are counted: the same `OutcomeRecorder` as `recordOutcomes({ sink })`. */
  outcomes?: { sink: OutcomeSink };
}

export interface OfrepRouter extends Router {
  /** Ends open SSE streams and stops listening to the provider (call on shutdown). */
  close(): void;
  /** SSE streams open now (for metrics and readiness checks). */
  openStreams(): number;
}

/**
 * OFREP endpoints for browsers and other services: bulk and single evaluation of client-visible
 * flags for the verified caller, ETag/304, and an SSE stream announcing changes.
 */
export function ofrep(options: OfrepRouterOptions): OfrepRouter {
  if (!options?.provider) throw new ConfigError('ofrep: options.provider is required (your RollgateProvider)');
  const stream = options.stream === false ? undefined : new ChangeStream({ ...(options.stream ?? {}), events: options.provider.events });
  const evaluator = new OfrepEvaluator({
    source: options.provider,
    ...(stream ? { etagSalt: () => stream.etagSalt() } : {}),
    ...(options.clientVisible ? { clientVisible: options.clientVisible } : {}),
    clientAttributes: options.clientAttributes ?? [],
    identityAttributes: identityAttributeNames(options.identity?.claims),
    exposedMetadata: options.exposedMetadata ?? [],
  });
  if (options.tracking && !options.outcomes?.sink) throw new ConfigError('ofrep: tracking needs outcomes: { sink } (an OutcomeRecorder from @rollgate/rollouts) to count the events in');
  const intake = options.tracking ? new EventIntake({ ...options.tracking, evaluator, sink: options.outcomes!.sink }) : undefined;
  const origins = new Set(options.cors?.origins ?? []);
  const router = Router() as OfrepRouter;
  const send = writeOfrepResponse;
  router.close = () => stream?.close();
  router.openStreams = () => stream?.size ?? 0;

  router.use('/ofrep/v1', (req: Request, res: Response, next: NextFunction) => {
    const origin = req.headers.origin;
    if (typeof origin === 'string' && origins.has(origin)) {
      res.set({
        'Access-Control-Allow-Origin': origin,
        'Access-Control-Allow-Credentials': 'true',
        'Access-Control-Expose-Headers': 'ETag',
        Vary: 'Origin, Authorization',
      });
      if (req.method === 'OPTIONS') {
        res.set({ 'Access-Control-Allow-Methods': 'POST, GET, OPTIONS', 'Access-Control-Allow-Headers': 'Content-Type, If-None-Match, Authorization', 'Access-Control-Max-Age': '600' });
        res.status(204).end();
        return;
      }
    }
    next();
  });

  router.use(EVENTS_PATH, (req: Request, res: Response, next: NextFunction) => {
    const preflight = req.method === 'OPTIONS';
    const cors = eventsCorsHeaders(req.headers.origin, origins, preflight);
    res.set(cors);
    if (preflight && cors['Access-Control-Allow-Origin']) {
      res.status(204).end();
      return;
    }
    next();
  });

  // EventSource cannot send Authorization: the stream is authorised by the ticket from a bulk response.
  if (stream) router.get('/ofrep/v1/events', (req: Request, res: Response) => stream.handle(req, res, req.query.ticket, req.query.since));

  const authenticate = options.identity ? authenticateWith({ ...options.identity, transactionContext: false }, unauthorized) : (_req: Request, _res: Response, next: NextFunction) => next();
  const parse = express.json({ limit: options.bodyLimit ?? '16kb', strict: true, type: () => true });
  // the parser's refusals answered here, where the single-flag route knows its key
  const json = (req: Request, res: Response, next: NextFunction) =>
    parse(req, res, (err?: unknown) => {
      if (!err) return next();
      const out = ofrepBodyParserRefusal(err, typeof req.params.key === 'string' ? req.params.key : undefined);
      if (out) send(res, out);
      else next(err);
    });

  router.post('/ofrep/v1/evaluate/flags', authenticate, json, (req: Request, res: Response) => {
    const who = getRequestIdentity(req);
    if (!who) return unauthorized(res);
    const out = evaluator.bulk(who, req.body, req.headers['if-none-match']);
    if (out.status === 200 && stream) {
      (out.body as Record<string, unknown>).eventStreams = [{ type: 'sse', endpoint: { requestUri: `${req.baseUrl}/ofrep/v1/events?${stream.streamQuery(who.subject)}` } }];
    }
    send(res, out);
  });

  router.post('/ofrep/v1/evaluate/flags/:key', authenticate, json, (req: Request, res: Response) => {
    const who = getRequestIdentity(req);
    if (!who) return unauthorized(res);
    send(res, evaluator.single(String(req.params.key), who, req.body));
  });

  if (intake) {
    const parseEvents = (req: Request, res: Response, next: NextFunction) =>
      parse(req, res, (err?: unknown) => {
        if (!err) return next();
        const out = eventsBodyParserRefusal(err);
        if (out) send(res, out);
        else next(err);
      });
    router.post(EVENTS_PATH, authenticate, parseEvents, (req: Request, res: Response) => {
      const who = getRequestIdentity(req);
      if (!who) return unauthorized(res);
      send(res, intake.handle(who, req.body));
    });
  } else {
    router.post(EVENTS_PATH, (_req: Request, res: Response) => send(res, eventsError('not-configured')));
  }
  router.use(EVENTS_PATH, (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (!err) return next();
    send(res, eventsBodyParserRefusal(err) ?? eventsError('internal'));
  });

  // What fails before a route runs: a flag key that is not valid percent-encoding (the router
  // cannot decode the path parameter), and anything else (a bug: 500, no detail)
  router.use('/ofrep/v1', (err: { status?: number; type?: string } | undefined, req: Request, res: Response, next: NextFunction) => {
    if (!err) return next();
    const key = req.method === 'POST' ? ofrepPathKey(req.originalUrl ?? req.url) : undefined;
    if (err instanceof URIError && key?.decoded === false) return send(res, ofrepError('bad-flag-key', { key: key.key }));
    send(res, ofrepBodyParserRefusal(err, key?.key) ?? ofrepError('internal', { key: key?.key }));
  });
  return router;
}

/** OFREP's 401, as every adapter sends it. */
function unauthorized(res: Response): void {
  writeOfrepResponse(res, ofrepError('unauthorized'));
}
