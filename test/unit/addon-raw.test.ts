/** The raw ioctl hook: sized from the request, and not part of the package's public surface. */
import { openSync, closeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

import { native } from '../../lib/binding.js';
import * as root from '../../lib/index.js';

// _IOWR('d', 0x40 + n, size): any size up to 16383 can be encoded.
const iowr = (nr: number, size: number) => ((3 << 30) | (size << 16) | (0x64 << 8) | nr) >>> 0;

describe('zcopyIoctlRaw', () => {
  it('refuses a buffer smaller than _IOC_SIZE(request) (the kernel would copy that many bytes back)', () => {
    const b = native();
    const fd = openSync('/dev/null', 'r');
    try {
      // FROM_REFS is 64 bytes: 8 are not enough
      expect(() => b.zcopyIoctlRaw(fd, b.zcopyIoctls.FROM_REFS, new Uint8Array(8))).toThrow(RangeError);
      // a 4000-byte request with 64 bytes: the old max(64, len) sizing passed it to the kernel
      expect(() => b.zcopyIoctlRaw(fd, iowr(0x45, 4000), new Uint8Array(64))).toThrow(/needs 4000/);
      // the refs pointer at offset 8 needs 16 bytes
      expect(() => b.zcopyIoctlRaw(fd, iowr(0x46, 8), new Uint8Array(8), 'null')).toThrow(RangeError);
      // big enough: reaches the kernel (/dev/null has no ioctls: ENOTTY)
      expect(b.zcopyIoctlRaw(fd, iowr(0x45, 4000), new Uint8Array(4000))).toBe(25);
      expect(b.zcopyIoctlRaw(fd, b.zcopyIoctls.FROM_REFS, new Uint8Array(64), 'null')).toBe(25);
    } finally {
      closeSync(fd);
    }
  });

  it('is not exported from the package root', () => {
    const names = Object.keys(root);
    for (const n of ['native', 'isNativeError', 'PROT_READ', 'PROT_WRITE']) expect(names).not.toContain(n);
  });
});
