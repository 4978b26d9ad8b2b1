/** The DomU fixture itself: a guest of its own, started and destroyed on demand. */
import { describe, expect, it } from 'vitest';

import { DomU, domainExists, GuestRequestError } from './fixture.js';

describe('DomU fixture', () => {
  it('starts a guest, serves requests, and is destroyed on demand', async () => {
    const guest = await DomU.start({ name: `xzc-own-${process.pid}` });
    try {
      expect(guest.domid).toBeGreaterThan(0);
      expect(await domainExists(guest.name)).toBe(true);
      await guest.ping();
      await expect(guest.unshare(999)).rejects.toBeInstanceOf(GuestRequestError);
    } finally {
      await guest.destroy();
    }
    expect(await domainExists(guest.name)).toBe(false);
  });
});
