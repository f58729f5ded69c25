import { defineConfig } from 'vitest/config';

// Two projects: `fast` (unit and component suites, seconds) and `slow` (whole journeys through the CLI, real
// clients, real mounts). `npm run test:fast` runs the first; `npm test` runs both.
export default defineConfig({
  test: {
    // The JSON report lets .ci/run print a plain 'N passed, N failed' line.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    projects: [
      {
        extends: true,
        test: { name: 'fast', include: ['test/**/*.test.ts'], exclude: ['test/e2e/**', 'test/**/*.slow.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'slow',
          include: ['test/e2e/**/*.test.ts', 'test/**/*.slow.test.ts'],
          fileParallelism: false,
        },
      },
    ],
  },
});
