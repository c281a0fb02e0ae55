import { resolve } from 'node:path';
import type { Config } from 'jest';
import { browserTestFiles, hasChromium } from './test/support/browser-tests';

// One project per package so `jest --selectProjects core` works; @rollgate/* maps to the
// sources, so tests never run against stale build output.
const packages = ['core', 'redis', 'rollouts', 'server', 'express', 'cli', 'nest', 'web', 'dashboard'];
// Beyond the packages: the booking demo's browser end-to-end test (it runs the built demo, as
// `npm start` does), and the packaging check (packs every package above, installs the tarballs).
const others = [
  { name: 'booking-api', dir: 'examples/booking-api', tests: 'test/**/*.spec.ts' },
  { name: 'packaging', dir: 'test', tests: '*.spec.ts' },
];

// Without Chromium the browser tests are left out, and the run ends with one line saying which
// and how to get it, and fails (test/support/browser-tests.ts); CI installs Chromium.
const chromium = hasChromium();
const leftOut = chromium ? [] : browserTestFiles();
const escape = (path: string) => path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// A bound on a hang, not on speed: a test that takes 5 s on an idle machine may take 40 s on a
// loaded 2-core one. Suites that need more set it themselves; no test asserts wall-clock time.
const testTimeout = 120_000;

const project = (displayName: string, dir: string, tests = 'test/**/*.spec.ts'): NonNullable<Config['projects']>[number] => ({
  displayName,
  rootDir: `<rootDir>/${dir}`,
  testMatch: [`<rootDir>/${tests}`],
  testPathIgnorePatterns: ['/node_modules/', ...leftOut.filter((f) => f.startsWith(`${resolve(__dirname, dir)}/`)).map((f) => `^${escape(f)}$`)],
  testTimeout,
  testEnvironment: 'node',
  transform: {
    // Type checking is done once by `npm run typecheck` (tsc); ts-jest only transpiles, because
    // tsconfig.base.json sets isolatedModules (ts-jest's own option of that name is deprecated).
    '^.+\\.ts$': ['ts-jest', { tsconfig: `<rootDir>/${dir.replace(/[^/]+/g, '..')}/tsconfig.json` }],
  },
  moduleNameMapper: {
    // the React entry of @rollgate/web (its package "exports" ./react) before the package roots
    '^@rollgate/web/react$': `<rootDir>/${dir.replace(/[^/]+/g, '..')}/packages/web/src/react.ts`,
    '^@rollgate/(.*)$': `<rootDir>/${dir.replace(/[^/]+/g, '..')}/packages/$1/src`,
  },
});

const config: Config = {
  projects: [...packages.map((name) => project(name, `packages/${name}`)), ...others.map(({ name, dir, tests }) => project(name, dir, tests))],
  testTimeout,
  ...(chromium ? {} : { globalTeardown: '<rootDir>/test/support/browser-tests.ts' }),
};

export default config;
