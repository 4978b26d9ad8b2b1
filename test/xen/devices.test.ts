/** The Dom0 the suite runs in has the devices the project needs. */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

import { native } from '../../lib/binding.js';
import { inDom0 } from './env.js';

const b = native();

function drmDrivers(): Map<string, string> {
  const found = new Map<string, string>();
  for (const name of readdirSync('/dev/dri').filter((n) => n.startsWith('card'))) {
    const fd = b.open(`/dev/dri/${name}`);
    try {
      found.set(b.drmVersion(fd).name, `/dev/dri/${name}`);
    } finally {
      b.close(fd);
    }
  }
  return found;
}

describe('Dom0 devices', () => {
  it('runs in a Xen control domain', () => {
    expect(inDom0()).toBe(true);
  });

  it('has vgem, a real DRM driver to import into, found by name', () => {
    const fd = b.open(drmDrivers().get('vgem')!);
    try {
      const v = b.drmVersion(fd);
      expect(v.name).toBe('vgem');
      expect(v.desc.length).toBeGreaterThan(0);
    } finally {
      b.close(fd);
    }
  });

  it('has the grant devices', () => {
    for (const dev of ['gntdev', 'gntalloc', 'xenbus']) {
      b.close(b.open(`/dev/xen/${dev}`));
    }
  });
});
