import type { RequestListener } from 'node:http';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import {
  ChangeStream,
  EVENTS_PATH,
  bodyLimitBytes,
  createOfrepFront,
  EventIntake,
  OfrepEvaluator,
  eventsBodyParserRefusal,
  eventsCorsHeaders,
  eventsError,
  isIdentityDefinition,
  ofrepBodyParserRefusal,
  ofrepError,
  ofrepPathKey,
  writeOfrepResponse,
  type ChangeStreamOptions,
  type ChangeStreamStats,
  type IdentityDefinition,
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
  /**
   * Who is calling: the identity defined once with `defineIdentity()` and given to `identity()`
   * as well (mount this router first: CORS preflights and the SSE stream carry no token).
   * Without it, `identity()` must run before this router. Plain options are refused: a second
   * copy of the identity config could map the same token differently from `identity()`'s.
   */
  identity?: IdentityDefinition;
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
  /** The change stream's counts (open streams, announcements waiting, the measured refetch cost…); undefined with `stream: false`. */
  streamStats(): ChangeStreamStats | undefined;
  /**
   * A request listener that answers the two requests every browser repeats — the bulk evaluation
   * and the stream connection — itself, in front of `app`, and hands everything else to `app`:
   * `http.createServer(flags.frontOf(app)).listen(3000)`. The same answers at about half the cost
   * of a refetch (Express's routing is most of it; see docs/operations.md, "Many browsers on one
   * instance"); your app's middleware does not run for them. Needs this router's `identity` with a
   * token check (`jwt`): in front of the app, nothing has set what `getIdentity` reads.
   * `mountPath`: where this router is mounted (`app.use('/flags', flags)` → '/flags'). @default ''
   */
  frontOf(app: RequestListener, options?: { mountPath?: string }): RequestListener;
}

/**
 * OFREP endpoints for browsers and other services: bulk and single evaluation of client-visible
 * flags for the verified caller, ETag/304, and an SSE stream announcing changes.
 */
export function ofrep(options: OfrepRouterOptions): OfrepRouter {
  if (!options?.provider) throw new ConfigError('ofrep: options.provider is required (your RollgateProvider)');
  const definition = routerIdentity('ofrep', options.identity);
  const stream = options.stream === false ? undefined : new ChangeStream({ ...(options.stream ?? {}), events: options.provider.events });
  const evaluator = new OfrepEvaluator({
    source: options.provider,
    ...(stream ? { stream } : {}), // announces only what browsers can see, paced; its etagSalt goes into the ETag
    ...(options.clientVisible ? { clientVisible: options.clientVisible } : {}),
    clientAttributes: options.clientAttributes ?? [],
    ...(definition ? { identityAttributes: definition.ownedNames } : {}),
    exposedMetadata: options.exposedMetadata ?? [],
  });
  if (options.tracking && !options.outcomes?.sink) throw new ConfigError('ofrep: tracking needs outcomes: { sink } (an OutcomeRecorder from @rollgate/rollouts) to count the events in');
  const intake = options.tracking ? new EventIntake({ ...options.tracking, evaluator, sink: options.outcomes!.sink }) : undefined;
  const origins = new Set(options.cors?.origins ?? []);
  const router = Router() as OfrepRouter;
  const send = writeOfrepResponse;
  router.close = () => stream?.close();
  router.openStreams = () => stream?.size ?? 0;
  router.streamStats = () => stream?.stats();
  router.frontOf = (app, frontOptions = {}) => {
    if (typeof app !== 'function') throw new TypeError('ofrep: frontOf(app) takes the request listener to hand the other requests to (your Express app)');
    if (!definition) throw new ConfigError("ofrep: frontOf() needs the router's own identity (options.identity, from defineIdentity()): no identity() middleware runs in front of the app");
    const front = createOfrepFront({ evaluator, stream, identify: (req) => definition.resolve(req), origins, bodyLimit: bodyLimitBytes(options.bodyLimit ?? '16kb'), basePath: frontOptions.mountPath ?? '' });
    return (req, res) => {
      if (!front(req, res)) app(req, res);
    };
  };

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

  const authenticate = definition ? authenticateWith(definition, { transactionContext: false }, unauthorized, 'ofrep()') : (_req: Request, _res: Response, next: NextFunction) => next();
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
    if (err instanceof ConfigError) return next(err); // a set-up mistake (two identity definitions): the app's error handler logs it
    const key = req.method === 'POST' ? ofrepPathKey(req.originalUrl ?? req.url) : undefined;
    if (err instanceof URIError && key?.decoded === false) return send(res, ofrepError('bad-flag-key', { key: key.key }));
    send(res, ofrepBodyParserRefusal(err, key?.key) ?? ofrepError('internal', { key: key?.key }));
  });
  return router;
}

/**
 * A router's `identity` option: a definition from defineIdentity(), or nothing (identity() runs
 * first). Plain options are refused at start-up: they would be a second copy of the identity.
 */
export function routerIdentity(router: 'ofrep' | 'adminRouter', given: unknown): IdentityDefinition | undefined {
  if (given === undefined) return undefined;
  if (isIdentityDefinition(given)) return given;
  throw new ConfigError(
    `${router}: options.identity must be the identity defined once with defineIdentity({ jwt, claims, … }) — the same object you give identity() — not options of its own: ` +
      `a second copy of the identity config can map the same token differently (e.g. claims on one and not the other), and the guard and OFREP then disagree. ` +
      `const callers = defineIdentity({ jwt, claims }); app.use(${router}({ …, identity: callers })); app.use(identity(callers)); (see docs/express.md#identity-define-it-once)`,
  );
}

/** OFREP's 401, as every adapter sends it. */
function unauthorized(res: Response): void {
  writeOfrepResponse(res, ofrepError('unauthorized'));
}
