import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigError } from '@rollgate/redis';
import type { ChangeStream } from './change-stream';
import { IdentityError, type Identity } from './identity';
import { ofrepError, writeOfrepResponse, type OfrepEvaluator, type OfrepResponse } from './ofrep';

// The two requests every browser repeats — the bulk evaluation and the stream connection —
// answered on the HTTP server itself, in front of the app. Measured (docs/benchmarks.md, "OFREP
// fan-out"), a framework's routing is most of what a refetch costs; when a change sends thousands
// of browsers back at once, that is the difference between a stall and none. The answers are the
// adapter's own (same evaluator, stream, identity, CORS and refusals); anything out of the common
// shape (another path, a preflight, a compressed or non-UTF-8 body…) is left to the app.

export interface OfrepFrontOptions {
  evaluator: OfrepEvaluator;
  stream: ChangeStream | undefined;
  /** Resolves the verified caller (an IdentityDefinition's `resolve`); rejects with IdentityError. */
  identify: (request: IncomingMessage) => Promise<Identity>;
  /** Origins allowed by CORS. */
  origins: ReadonlySet<string>;
  /** Largest JSON body (bytes). */
  bodyLimit: number;
  /** Where the OFREP routes are mounted ('' for the root). */
  basePath: string;
}

/** A request listener step: true when it answered the request, false to hand it on. */
export type OfrepFront = (req: IncomingMessage, res: ServerResponse) => boolean;

/** The CORS headers of an OFREP answer to an allowed origin (none for another origin). */
export function ofrepCorsHeaders(origin: unknown, origins: ReadonlySet<string>): Record<string, string> {
  if (typeof origin !== 'string' || !origins.has(origin)) return {};
  return { 'Access-Control-Allow-Origin': origin, 'Access-Control-Allow-Credentials': 'true', 'Access-Control-Expose-Headers': 'ETag', Vary: 'Origin, Authorization' };
}

/** Takes the bulk evaluation (POST) and the stream (GET) at exactly their paths under `basePath`. */
export function createOfrepFront(options: OfrepFrontOptions): OfrepFront {
  const base = options.basePath.replace(/\/+$/, '');
  if (base !== '' && !/^\/[\w.~%!$&'()*+,;=:@/-]*$/.test(base)) throw new ConfigError(`ofrep: the mount path must start with "/", got ${JSON.stringify(options.basePath)}`);
  const bulkPath = `${base}/ofrep/v1/evaluate/flags`;
  const eventsPath = `${base}/ofrep/v1/events`;
  const { evaluator, stream, identify, origins, bodyLimit } = options;

  const bulk = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (!plainJsonBody(req)) return false;
    const cors = ofrepCorsHeaders(req.headers.origin, origins);
    for (const [name, value] of Object.entries(cors)) res.setHeader(name, value);
    // as the adapters: who is calling first (401), then the body (400 / 413)
    identify(req).then(
      (who) =>
        readJson(req, res, bodyLimit).then((read) => {
          if ('refused' in read) return writeOfrepResponse(res, read.refused);
          const out = evaluator.bulk(who, read.body, req.headers['if-none-match']);
          if (out.status === 200 && stream) {
            (out.body as Record<string, unknown>).eventStreams = [{ type: 'sse', endpoint: { requestUri: `${eventsPath}?${stream.streamQuery(who.subject)}` } }];
          }
          writeOfrepResponse(res, out);
        }),
      (e: unknown) => {
        req.resume(); // the body is not read: let it drain
        writeOfrepResponse(res, e instanceof IdentityError ? ofrepError('unauthorized') : ofrepError('internal'));
      },
    ).catch(() => {
      if (!res.headersSent) writeOfrepResponse(res, ofrepError('internal'));
    });
    return true;
  };

  const events = (req: IncomingMessage, res: ServerResponse, query: string): boolean => {
    if (!stream) return false; // turned off: the app answers as it would without the front
    for (const [name, value] of Object.entries(ofrepCorsHeaders(req.headers.origin, origins))) res.setHeader(name, value);
    const params = new URLSearchParams(query);
    const one = (name: string) => {
      const all = params.getAll(name);
      return all.length === 0 ? undefined : all.length === 1 ? all[0] : all; // repeated: refused as the adapters refuse it
    };
    stream.handle(req, res, one('ticket'), one('since'));
    return true;
  };

  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (req.method === 'POST' && path === bulkPath) return bulk(req, res);
    if (req.method === 'GET' && path === eventsPath) return events(req, res, q === -1 ? '' : url.slice(q + 1));
    return false;
  };
}

/** A body read here exactly as express.json reads it: not compressed, UTF-8 (or no charset). */
function plainJsonBody(req: IncomingMessage): boolean {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return false;
  const type = req.headers['content-type'];
  if (type === undefined) return true;
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(type)?.[1];
  return charset === undefined || charset.toLowerCase() === 'utf-8';
}

type Read = { body: unknown } | { refused: OfrepResponse };

/**
 * The JSON body with a size limit, as express.json({ strict: true }) reads it: no body →
 * undefined, an empty one → {}, only an object or an array, a leading BOM ignored.
 */
function readJson(req: IncomingMessage, res: ServerResponse, limit: number): Promise<Read> {
  const declared = req.headers['content-length'];
  if (declared === undefined && req.headers['transfer-encoding'] === undefined) return Promise.resolve({ body: undefined });
  if (declared !== undefined && Number(declared) > limit) {
    res.setHeader('Connection', 'close'); // the body is never read
    return Promise.resolve({ refused: ofrepError('body-too-large') });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (read: Read) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      resolve(read);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        res.setHeader('Connection', 'close');
        return done({ refused: ofrepError('body-too-large') });
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8').replace(/^\uFEFF/, '');
      const first = /^[\x20\x09\x0a\x0d]*(.)/.exec(text)?.[1];
      if (first === undefined) return done({ body: {} });
      if (first !== '{' && first !== '[') return done({ refused: ofrepError('body-not-json') });
      try {
        done({ body: JSON.parse(text) as unknown });
      } catch {
        done({ refused: ofrepError('body-not-json') });
      }
    };
    const onError = () => done({ refused: ofrepError('body-refused', { status: 400 }) });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4, pb: 1024 ** 5 };

/** A body limit as express.json takes it ('16kb', '1mb', or bytes), in bytes. */
export function bodyLimitBytes(limit: string | number, option = 'bodyLimit'): number {
  if (typeof limit === 'number' && Number.isFinite(limit) && limit >= 0) return Math.floor(limit);
  const m = typeof limit === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|pb)?\s*$/i.exec(limit) : null;
  if (!m) throw new ConfigError(`ofrep: ${option} must be a number of bytes or a size such as '16kb', got ${JSON.stringify(limit)}`);
  return Math.floor(Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()]!);
}
