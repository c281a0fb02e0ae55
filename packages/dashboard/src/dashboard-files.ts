import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DashboardError } from './errors';

// Serving the built dashboard, independent of any framework: the Express router and the Nest
// controller hand over the path below the mount point and send what `serve()` answers. The
// package that produces the files knows their shape (hashed names under assets/, one
// index.html, no inline script or style), so the headers that depend on it live here too.

/** The `dashboard` option of `adminRouter()` / the Nest `admin` options. */
export interface DashboardOptions {
  /**
   * Where the dashboard is served, relative to the router (or the admin controller's path): the
   * page is `${path}/`, its files `${path}/assets/…`. @default '/rollgate'
   */
  path?: string;
  /** The built files (an index.html and assets/). @default this package's {@link dashboardDir} */
  dir?: string;
}

/** What to send: the adapters copy status, headers and body as they are. */
export interface DashboardResponse {
  status: number;
  headers: Record<string, string>;
  /** Undefined for a redirect. */
  body?: Buffer;
}

export interface DashboardRequest {
  /**
   * The request path below the mount point, decoded: '' (the mount point itself, answered with a
   * redirect to `…/`), '/' or '/index.html' (the page), '/assets/<file>'.
   */
  path: string;
  /** The query string with its '?', kept on the redirect. */
  search?: string;
  /** The request's whole URL path (still encoded), for the redirect: its last segment plus '/'. */
  urlPath?: string;
  /** The Accept-Encoding header: gzip is sent when it allows it. */
  acceptEncoding?: string | undefined;
}

/**
 * The Content-Security-Policy of every dashboard response: only this origin's scripts, styles,
 * images and fetches; no inline script or style (the build has none), no plugins, no framing.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};
const COMPRESSIBLE = new Set(['.js', '.mjs', '.css', '.html', '.svg', '.json', '.map', '.txt']);
const COMMON = { 'Content-Security-Policy': DASHBOARD_CSP, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer', 'X-Frame-Options': 'DENY' };
/** The admin API's base below the router, where adminRouter() / the admin controller answer. */
export const ADMIN_API_PATH = '/rollgate/admin';
/** The meta element the page reads the admin API's location from (relative to the page). */
const API_META = /(<meta\s+name="rollgate-api"\s+content=")[^"]*(")/;
const SEGMENT = /^[A-Za-z0-9._~-]+$/;

interface Prepared {
  type: string;
  plain: Buffer;
  gzip: Buffer | undefined;
}

function prepare(name: string, plain: Buffer): Prepared {
  const ext = extname(name).toLowerCase();
  // gzip once, when first asked for; kept only when it saves something
  const gz = COMPRESSIBLE.has(ext) && plain.length > 512 ? gzipSync(plain, { level: 9 }) : undefined;
  return { type: TYPES[ext] ?? 'application/octet-stream', plain, gzip: gz && gz.length < plain.length ? gz : undefined };
}

function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== '*') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

function segments(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

/** The href of `to` relative to the directory `fromDir` (both absolute paths below the router). */
export function relativeHref(fromDir: string, to: string): string {
  const from = segments(fromDir);
  const target = segments(to);
  let common = 0;
  while (common < from.length && common < target.length && from[common] === target[common]) common++;
  const href = [...from.slice(common).map(() => '..'), ...target.slice(common)].join('/');
  return href === '' ? './' : href;
}

/** Checks and normalizes the mount path: '/rollgate', '/ops/flags', or '/' (the router's root). */
export function normalizeDashboardPath(path: unknown, option = 'dashboard.path'): string {
  if (typeof path !== 'string' || !path.startsWith('/')) throw new DashboardError(`${option} must be a path starting with "/", such as "/rollgate", got ${JSON.stringify(path)}`);
  const parts = segments(path);
  for (const part of parts) {
    if (!SEGMENT.test(part) || part === '.' || part === '..') {
      throw new DashboardError(`${option}: ${JSON.stringify(path)} has the segment ${JSON.stringify(part)}; use letters, digits and . _ ~ - (no "." or ".." segments)`);
    }
  }
  const normalized = `/${parts.join('/')}`;
  if (normalized === ADMIN_API_PATH || normalized.startsWith(`${ADMIN_API_PATH}/`)) {
    throw new DashboardError(`${option}: ${JSON.stringify(path)} is inside the admin API (${ADMIN_API_PATH}), which answers every path below it; mount the dashboard beside it, e.g. "/rollgate"`);
  }
  return normalized;
}

/**
 * The built dashboard in one directory, served as static files. Reads index.html and the list of
 * assets once (at construction: a missing build fails at start-up, not at the first request);
 * only those files are ever read, so no request path reaches the file system.
 */
export class DashboardFiles {
  /** The normalized mount path. */
  readonly path: string;
  readonly dir: string;
  private readonly index: Prepared;
  private readonly assetNames: ReadonlySet<string>;
  private readonly cache = new Map<string, Promise<Prepared>>();

  /** `option` names the option in errors (e.g. 'adminRouter: dashboard'). */
  constructor(options: { dir: string; path?: string; apiPath?: string; option?: string }) {
    const option = options.option ?? 'dashboard';
    this.path = normalizeDashboardPath(options.path ?? '/rollgate', `${option}.path`);
    this.dir = options.dir;
    const indexFile = join(options.dir, 'index.html');
    if (!existsSync(indexFile)) {
      throw new DashboardError(
        `${option}: the dashboard is not built: ${indexFile} is missing. Run \`npm run build\` in the Rollgate repository (or \`npm run build -w @rollgate/dashboard\`); an installed @rollgate/dashboard ships it built. Or turn the dashboard option off.`,
      );
    }
    const html = readFileSync(indexFile, 'utf8');
    if (!API_META.test(html)) throw new DashboardError(`${option}: ${indexFile} is not the Rollgate dashboard's page (it has no <meta name="rollgate-api">)`);
    // the page finds the admin API relative to itself: right under any prefix the router is mounted at
    const api = relativeHref(`${this.path}/`, options.apiPath ?? ADMIN_API_PATH);
    this.index = prepare('index.html', Buffer.from(html.replace(API_META, `$1${api.replace(/&/g, '&amp;').replace(/"/g, '&quot;')}$2`), 'utf8'));
    const assets = join(options.dir, 'assets');
    this.assetNames = new Set(existsSync(assets) ? readdirSync(assets).filter((name) => statSync(join(assets, name)).isFile()) : []);
  }

  /** Answers a GET or HEAD below the mount point. */
  async serve(request: DashboardRequest): Promise<DashboardResponse> {
    const { path } = request;
    if (path === '') {
      // the page's relative URLs need the trailing slash: `rollgate` → `rollgate/`
      const last = segments(request.urlPath ?? this.path).pop();
      return { status: 301, headers: { ...COMMON, Location: `${last === undefined ? '.' : last}/${request.search ?? ''}`, 'Cache-Control': 'no-store' } };
    }
    if (path === '/' || path === '/index.html') return this.send(this.index, request, 'no-store');
    const m = /^\/assets\/([^/]+)$/.exec(path);
    if (m && this.assetNames.has(m[1]!)) {
      const name = m[1]!;
      let file = this.cache.get(name);
      if (!file) {
        file = readFile(join(this.dir, 'assets', name)).then((plain) => prepare(name, plain));
        this.cache.set(name, file);
        file.catch(() => this.cache.delete(name));
      }
      // the names carry a hash of the content: a new build has new names
      return this.send(await file, request, 'public, max-age=31536000, immutable');
    }
    return { status: 404, headers: { ...COMMON, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }, body: Buffer.from('not found\n') };
  }

  private send(file: Prepared, request: DashboardRequest, cacheControl: string): DashboardResponse {
    const headers: Record<string, string> = { ...COMMON, 'Content-Type': file.type, 'Cache-Control': cacheControl };
    if (file.gzip) headers.Vary = 'Accept-Encoding';
    if (file.gzip && acceptsGzip(request.acceptEncoding)) return { status: 200, headers: { ...headers, 'Content-Encoding': 'gzip' }, body: file.gzip };
    return { status: 200, headers, body: file.plain };
  }
}
