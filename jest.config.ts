import type { Config } from 'jest';

// One project per package so `jest --selectProjects core` works; @rollgate/* maps to the
// sources, so tests never run against stale build output.
const packages = ['core', 'redis', 'rollouts', 'server', 'express', 'cli', 'nest', 'web', 'dashboard'];
// Beyond the packages: the booking demo's browser end-to-end test (it runs the built demo, as
// `npm start` does), and the packaging check (packs every package above, installs the tarballs).
const others = [
  { name: 'booking-api', dir: 'examples/booking-api', tests: 'test/**/*.spec.ts' },
  { name: 'packaging', dir: 'test', tests: '*.spec.ts' },
];

const project = (displayName: string, dir: string, tests = 'test/**/*.spec.ts'): NonNullable<Config['projects']>[number] => ({
  displayName,
  rootDir: `<rootDir>/${dir}`,
  testMatch: [`<rootDir>/${tests}`],
  testEnvironment: 'node',
  transform: {
    // Type checking is done once by `npm run typecheck` (tsc); ts-jest only transpiles.
    '^.+\\.ts$': ['ts-jest', { tsconfig: `<rootDir>/${dir.replace(/[^/]+/g, '..')}/tsconfig.json`, isolatedModules: true }],
  },
  moduleNameMapper: {
    // the React entry of @rollgate/web (its package "exports" ./react) before the package roots
    '^@rollgate/web/react$': `<rootDir>/${dir.replace(/[^/]+/g, '..')}/packages/web/src/react.ts`,
    '^@rollgate/(.*)$': `<rootDir>/${dir.replace(/[^/]+/g, '..')}/packages/$1/src`,
  },
});

const config: Config = {
  projects: [...packages.map((name) => project(name, `packages/${name}`)), ...others.map(({ name, dir, tests }) => project(name, dir, tests))],
};

export default config;
