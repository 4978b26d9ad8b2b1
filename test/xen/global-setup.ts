/**
 * Global setup of the `xen` project: refuses to run outside a Dom0 and starts
 * the shared DomU fixture guest. The guest boots while vitest loads the test
 * files; tests attach to it by name (sharedDomU) and wait until it serves.
 */
import type { TestProject } from 'vitest/node';

import { DomU } from './fixture.js';
import { inDom0, xenEnv } from './env.js';

export default function setup(project: TestProject): () => Promise<void> {
  xenEnv();
  if (!inDom0()) throw new Error('the xen test project must run in a Xen Dom0 (/proc/xen/capabilities lacks control_d)');
  const name = `xzc-shared-${process.pid}`;
  const started = DomU.start({ name });
  started.catch(() => undefined); // reported by the tests that attach
  project.provide('sharedDomU', name);
  return async () => {
    const guest = await started.catch(() => undefined);
    await guest?.destroy().catch(() => undefined);
  };
}
