import { defineConfig } from 'vitest/config';

// Two projects: `unit` runs anywhere without privileges; `integration` needs root and builds real
// namespaces, devices and routers, so its files run one at a time (the lab is heavy on 2 cores).
// The attack suite `test/security/` is split the same way: `net/` holds the attacks that need
// real namespaces and devices.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/integration/**', 'test/security/net/**'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/security/net/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          maxWorkers: 1,
        },
      },
    ],
  },
});
