import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['machines/src/**/*.test.ts', 'server/src/**/*.test.ts', 'apps/client/src/**/*.test.ts', 'apps/inspector/src/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
    testTimeout: 60_000,
    globalSetup: ['test/support/build-apps.ts'],
    reporters: ['default'],
  },
});
