import type { Config } from 'jest';

// One project per package so `jest --selectProjects core` works; @rollgate/* maps to the
// sources, so tests never run against stale build output.
const packages = ['core', 'redis', 'server', 'express', 'cli', 'nest', 'web'];

const config: Config = {
  projects: packages.map((name) => ({
    displayName: name,
    rootDir: `<rootDir>/packages/${name}`,
    testMatch: ['<rootDir>/test/**/*.spec.ts'],
    testEnvironment: 'node',
    transform: {
      // Type checking is done once by `npm run typecheck` (tsc); ts-jest only transpiles.
      '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/../../tsconfig.json', isolatedModules: true }],
    },
    moduleNameMapper: { '^@rollgate/(.*)$': '<rootDir>/../$1/src' },
  })),
};

export default config;
