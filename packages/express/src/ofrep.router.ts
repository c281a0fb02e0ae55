import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { ChangeStream, OfrepEvaluator, identityAttributeNames, type ChangeStreamOptions, type IdentityOptions, type OfrepOptions, type OfrepResponse } from '@rollgate/server';
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
}

export interface OfrepRouter extends Router {
  /** Ends open SSE streams and stops listening to the provider (call on shutdown). */
  close(): void;
  /** SSE streams open now (for metrics and readiness checks). */
  openStreams(): number;
}

/** body-parser's error types other than too large / not JSON (answered above them). */
const BODY_REFUSALS = new Set(['charset.unsupported', 'encoding.unsupported', 'request.aborted', 'request.size.invalid', 'stream.encoding.set', 'stream.not.readable', 'entity.verify.failed']);

const ERROR_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'private, no-store' };

function send(res: Response, out: OfrepResponse): void {
  res.status(out.status);
  // Vary is merged (CORS may already have set Origin), every other header is set
  for (const [name, value] of Object.entries(out.headers)) {
    if (name.toLowerCase() === 'vary') res.vary(value);
    else res.set(name, value);
  }
  // end(), not send(): send() would add Express's own weak ETag to error answers
  if (out.body === undefined) res.end();
  else res.end(JSON.stringify(out.body));
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
  const origins = new Set(options.cors?.origins ?? []);
  const router = Router() as OfrepRouter;
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

  // EventSource cannot send Authorization: the stream is authorised by the ticket from a bulk response.
  if (stream) router.get('/ofrep/v1/events', (req: Request, res: Response) => stream.handle(req, res, req.query.ticket));

  const authenticate = options.identity ? authenticateWith({ ...options.identity, transactionContext: false }, unauthorized) : (_req: Request, _res: Response, next: NextFunction) => next();
  const json = express.json({ limit: options.bodyLimit ?? '16kb', strict: true, type: () => true });

  router.post('/ofrep/v1/evaluate/flags', authenticate, json, (req: Request, res: Response) => {
    const who = getRequestIdentity(req);
    if (!who) return unauthorized(res);
    const out = evaluator.bulk(who, req.body, req.headers['if-none-match']);
    if (out.status === 200 && stream) {
      (out.body as Record<string, unknown>).eventStreams = [{ type: 'sse', endpoint: { requestUri: `${req.baseUrl}/ofrep/v1/events?ticket=${stream.issueTicket(who.subject)}` } }];
    }
    send(res, out);
  });

  router.post('/ofrep/v1/evaluate/flags/:key', authenticate, json, (req: Request, res: Response) => {
    const who = getRequestIdentity(req);
    if (!who) return unauthorized(res);
    send(res, evaluator.single(String(req.params.key), who, req.body));
  });

  // OFREP error bodies for what the JSON parser refuses (malformed, too large)
  router.use('/ofrep/v1', (err: { status?: number; type?: string }, _req: Request, res: Response, next: NextFunction) => {
    if (err?.type === 'entity.too.large') return send(res, { status: 413, headers: ERROR_HEADERS, body: { errorDetails: 'request body too large' } });
    if (err?.type === 'entity.parse.failed') return send(res, { status: 400, headers: ERROR_HEADERS, body: { errorCode: 'INVALID_CONTEXT', errorDetails: 'request body is not valid JSON' } });
    // other refusals of the body parser (415 unsupported charset or encoding, 400 aborted...) keep their status
    if (err?.type !== undefined && BODY_REFUSALS.has(err.type) && typeof err.status === 'number') return send(res, { status: err.status, headers: ERROR_HEADERS, body: { errorDetails: 'request body refused' } });
    if (err) return send(res, { status: 500, headers: ERROR_HEADERS, body: { errorDetails: 'internal error' } });
    next();
  });
  return router;
}

/** OFREP's 401: its error body, and the caching headers every OFREP answer carries. */
function unauthorized(res: Response): void {
  res.status(401).set('WWW-Authenticate', 'Bearer').set(ERROR_HEADERS).vary('Authorization').end(JSON.stringify({ errorDetails: 'unauthorized' }));
}
