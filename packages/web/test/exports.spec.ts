import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import * as web from '@rollgate/web';
import type {
  CaptureErrorsSettings,
  ErrorSource,
  EventSourceConstructor,
  EventSourceLike,
  FeedbackInput,
  FetchLike,
  HeaderEntries,
  RollgateWebProviderOptions,
  Sentiment,
  SignalOptions,
  Task,
  TaskOptions,
  TrackingSettings,
} from '@rollgate/web';
// The React entry, as `@rollgate/web/react` (package.json "exports"; jest maps @rollgate/* to sources, not subpaths)
import * as react from '../src/react';
import type { FallbackProps, FeedbackPromptProps, RollgateErrorBoundaryProps } from '../src/react';

const SRC = path.join(__dirname, '../src');

describe('public API of @rollgate/web', () => {
  it('exports exactly these runtime names', () => {
    expect(Object.keys(web).sort()).toEqual(['RollgateWebProvider', 'WebConfigError', 'reportCaughtError', 'sendFeedback', 'startTask']);
  });

  it('exports the documented types (checked by tsc as part of npm test)', () => {
    const headers: HeaderEntries = { Authorization: 'Bearer x' };
    const tracking: TrackingSettings = { flushIntervalMs: 1000, maxBatchSize: 20, beacon: true, path: '/rollgate/v1/events' };
    const captureErrors: CaptureErrorsSettings = { unhandledRejections: true, dedupeMinutes: 30, maxPerMinute: 10, ignore: (message: string) => message.startsWith('ResizeObserver') };
    const options: RollgateWebProviderOptions = { baseUrl: 'http://localhost:3000', headersFactory: () => headers, credentials: 'include', bootstrap: { a: true }, tracking, captureErrors, pageviews: true };
    const fetchLike: FetchLike = (input, init) => fetch(input, init);
    const source: EventSourceConstructor | undefined = undefined as unknown as new (url: string) => EventSourceLike;
    expect(new web.RollgateWebProvider({ ...options, fetchImplementation: fetchLike, ...(source ? { eventSource: source } : {}) }).metadata.name).toBe('rollgate-web');
    const sentiment: Sentiment = 'neutral';
    const feedback: FeedbackInput = { flag: 'fast-payment', sentiment, comment: 'ok' };
    const signal: SignalOptions = { domain: 'app' };
    const taskOptions: TaskOptions = { ...signal, now: () => 0 };
    const task: Task = web.startTask('checkout', taskOptions);
    const where: ErrorSource = 'boundary';
    expect([feedback.flag, task.ended, where]).toEqual(['fast-payment', false, 'boundary']);
  });

  it('the react entry exports exactly these runtime names and types', () => {
    expect(Object.keys(react).sort()).toEqual(['FeedbackPrompt', 'RollgateErrorBoundary']);
    const prompt: FeedbackPromptProps = { flag: 'fast-payment', question: 'How was the new payment flow?', labels: { negative: 'Bad' }, onSent: () => undefined };
    const boundary: RollgateErrorBoundaryProps = { fallback: ({ reset }: FallbackProps) => String(reset), report: false, domain: 'app' };
    expect([prompt.flag, boundary.report]).toEqual(['fast-payment', false]);
  });

  it('package.json exposes the react entry (types, ES module, CommonJS) and react as an optional peer', () => {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '../package.json'), 'utf8')) as {
      exports: Record<string, unknown>;
      typesVersions: Record<string, Record<string, string[]>>;
      peerDependencies: Record<string, string>;
      peerDependenciesMeta: Record<string, { optional?: boolean }>;
      dependencies: Record<string, string>;
    };
    expect(pkg.exports['./react']).toEqual({ types: './dist/react.d.ts', module: './dist/esm/react.js', default: './dist/react.js' });
    expect(pkg.typesVersions).toEqual({ '*': { react: ['dist/react.d.ts'] } }); // TypeScript's moduleResolution node10 ignores "exports"
    expect(pkg.peerDependencies.react).toBeDefined();
    expect(pkg.peerDependenciesMeta.react).toEqual({ optional: true });
    expect(Object.keys(pkg.dependencies)).toEqual(['@openfeature/ofrep-core']); // nothing new at run time
  });

  it('never imports another @rollgate package: no rules engine in browser bundles', () => {
    for (const file of readdirSync(SRC)) {
      expect([file, readFileSync(path.join(SRC, file), 'utf8').match(/from '@rollgate\/[^']+'/g)]).toEqual([file, null]);
    }
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '../package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    const runtime = { ...pkg.dependencies, ...pkg.peerDependencies };
    expect(Object.keys(runtime).filter((name) => name.startsWith('@rollgate/'))).toEqual([]);
  });

  it('the react entry stays small: it never loads the provider, its OFREP client or the error capture (only the helpers that find the provider)', () => {
    const seen = new Set<string>();
    const external = new Set<string>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(path.join(SRC, `${file}.ts`), 'utf8');
      for (const m of text.matchAll(/^(?:import|export) (type )?[^;]*? from '([^']+)';/gm)) {
        if (m[1]) continue; // type-only: erased
        if (m[2]!.startsWith('./')) walk(m[2]!.slice(2));
        else external.add(m[2]!);
      }
    };
    walk('react');
    expect([...seen].sort()).toEqual(['error-boundary', 'feedback-prompt', 'react', 'signals']);
    expect([...external].sort()).toEqual(['@openfeature/web-sdk', 'react']);
  });
});
