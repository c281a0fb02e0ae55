import type { IncomingMessage, ServerResponse } from 'node:http';

// Reading a JSON request body with a size limit, for the controllers that answer with their own
// error bodies (OFREP, admin API) instead of Nest's.

/** The Express request/response as far as used here (no dependency on express' types). */
export type ExpressRequest = IncomingMessage & {
  originalUrl?: string;
  path?: string;
  params?: Record<string, string>;
  query?: Record<string, unknown>;
  body?: unknown;
  rawBody?: Buffer;
  _body?: boolean;
};
export type ExpressResponse = ServerResponse & {
  status(code: number): ExpressResponse;
  send(body?: unknown): ExpressResponse;
};

/** The caller's answers to the two ways a body can be refused. */
export interface BodyRefusals<R> {
  /** Larger than the limit (413). */
  tooLarge: R;
  /** Not a JSON object or array. */
  notJson: R;
}

export type BodyRead<R> = { ok: true; body: unknown } | { ok: false; response: R };

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || !Number.isNaN(Number.parseInt(req.headers['content-length'] ?? '', 10));
}

/** JSON as express.json({ strict: true, type: () => true }) reads it: empty body → {}, only objects/arrays. */
function parseJson<R>(text: string, refusals: BodyRefusals<R>): BodyRead<R> {
  const trimmed = text.replace(/^\uFEFF/, '').trim();
  if (trimmed === '') return { ok: true, body: {} };
  if (trimmed[0] !== '{' && trimmed[0] !== '[') return { ok: false, response: refusals.notJson };
  try {
    return { ok: true, body: JSON.parse(trimmed) as unknown };
  } catch {
    return { ok: false, response: refusals.notJson };
  }
}

/**
 * The size of a body another parser read, as JSON. A body nested too deeply to serialize again
 * (JSON.stringify overflows the stack, e.g. 10 000 nested arrays) is as large as it was declared,
 * or as the parser allowed: the caller's own checks decide about it (never a 500).
 */
function serializedSize(body: unknown, declared: number): number {
  try {
    return Buffer.byteLength(JSON.stringify(body) ?? '');
  } catch {
    return Number.isNaN(declared) ? 0 : declared;
  }
}

/**
 * The JSON body with a size limit. When the app's body parser already read it (Nest registers
 * one by default, limit 100kb), the limit is checked against what was read.
 */
export function readJsonBody<R>(req: ExpressRequest, res: ServerResponse, limit: number, refusals: BodyRefusals<R>): Promise<BodyRead<R>> {
  const refuse = (response: R): Promise<BodyRead<R>> => Promise.resolve({ ok: false, response });
  const declared = Number.parseInt(req.headers['content-length'] ?? '', 10);
  if (declared > limit) return refuse(refusals.tooLarge);
  if (req._body === true || req.readableEnded) {
    if (req.body === undefined) return Promise.resolve({ ok: true, body: undefined });
    const size = Buffer.isBuffer(req.rawBody) ? req.rawBody.length : serializedSize(req.body, declared);
    if (size > limit) return refuse(refusals.tooLarge);
    // read by another parser (e.g. urlencoded): it was not JSON
    if (!/^application\/([\w.+-]+\+)?json\b/i.test(req.headers['content-type'] ?? '')) return refuse(refusals.notJson);
    return Promise.resolve({ ok: true, body: req.body });
  }
  if (!hasBody(req)) return Promise.resolve({ ok: true, body: undefined });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        res.setHeader('Connection', 'close'); // the rest of the body is never read
        resolve({ ok: false, response: refusals.tooLarge });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(parseJson(Buffer.concat(chunks).toString('utf8'), refusals));
    };
    const onError = () => {
      cleanup();
      resolve({ ok: false, response: refusals.notJson });
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
