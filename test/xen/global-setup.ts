/**
 * Global setup of the `xen` project: refuses to run outside a Dom0, starts the
 * shared DomU fixture guest (its boot overlaps with loading the test files)
 * and destroys it at the end.
 */
import type { TestProject } from 'vitest/node';

import { DomU } from './fixture.js';
import { inDom0, xenEnv } from './env.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  xenEnv();
  if (!inDom0()) throw new Error('the xen test project must run in a Xen Dom0 (/proc/xen/capabilities lacks control_d)');
  const guest = await DomU.start({ name: `xzc-shared-${process.pid}` });
  project.provide('sharedDomU', guest.name);
  guest.detach();
  return async () => {
    await guest.destroy().catch(() => undefined);
  };
}
