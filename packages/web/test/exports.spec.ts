import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import * as web from '@rollgate/web';
import type { EventSourceConstructor, EventSourceLike, FetchLike, HeaderEntries, RollgateWebProviderOptions, TrackingSettings } from '@rollgate/web';

describe('public API of @rollgate/web', () => {
  it('exports exactly these runtime names', () => {
    expect(Object.keys(web).sort()).toEqual(['RollgateWebProvider', 'WebConfigError']);
  });

  it('exports the documented types (checked by tsc as part of npm test)', () => {
    const headers: HeaderEntries = { Authorization: 'Bearer x' };
    const tracking: TrackingSettings = { flushIntervalMs: 1000, maxBatchSize: 20, beacon: true, path: '/rollgate/v1/events' };
    const options: RollgateWebProviderOptions = { baseUrl: 'http://localhost:3000', headersFactory: () => headers, credentials: 'include', bootstrap: { a: true }, tracking };
    const fetchLike: FetchLike = (input, init) => fetch(input, init);
    const source: EventSourceConstructor | undefined = undefined as unknown as new (url: string) => EventSourceLike;
    expect(new web.RollgateWebProvider({ ...options, fetchImplementation: fetchLike, ...(source ? { eventSource: source } : {}) }).metadata.name).toBe('rollgate-web');
  });

  it('never imports another @rollgate package: no rules engine in browser bundles', () => {
    const src = path.join(__dirname, '../src');
    for (const file of readdirSync(src)) {
      expect([file, readFileSync(path.join(src, file), 'utf8').match(/from '@rollgate\/[^']+'/g)]).toEqual([file, null]);
    }
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '../package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    const runtime = { ...pkg.dependencies, ...pkg.peerDependencies };
    expect(Object.keys(runtime).filter((name) => name.startsWith('@rollgate/'))).toEqual([]);
  });
});
