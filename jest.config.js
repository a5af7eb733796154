/** Jest: unit tests live next to the code (`*.test.ts`); end-to-end tests under compiler/test. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/compiler', '<rootDir>/plugins', '<rootDir>/executors', '<rootDir>/generators', '<rootDir>/scripts'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }] },
  testTimeout: 120000,
  maxWorkers: 2,
  setupFiles: ['<rootDir>/jest.setup.js'],
};
