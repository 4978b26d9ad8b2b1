import { defineConfig } from 'vitest/config';

// Two projects. `unit` runs anywhere against fakes. `xen` talks to real Xen
// devices and a real DomU: it runs inside a Dom0 only, started by
// `test/xen/vm test` (QEMU-hosted Xen, or `--host` on a real Xen host).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'xen',
          include: ['test/xen/**/*.test.ts'],
          globalSetup: ['test/xen/global-setup.ts'],
          // One Dom0, one set of devices and one shared DomU: run files one
          // after another in a single worker.
          pool: 'forks',
          maxWorkers: 1,
          fileParallelism: false,
          // Loading modules over 9p under TCG is slow: load them once.
          isolate: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
