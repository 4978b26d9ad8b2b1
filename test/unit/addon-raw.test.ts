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

describe('zcopyImport', () => {
  it('checks the refs on its own copy before any ioctl: count, 0, repeats (ERR_XZC_BAD_REFS)', async () => {
    const b = native();
    const bad = (refs: Uint32Array, height: number) => {
      try {
        void b.zcopyImport(-1, 1, refs, 1024, height, 32);
      } catch (e) {
        return e as Error & { code?: string };
      }
      return undefined;
    };
    expect(bad(Uint32Array.of(5, 6, 5), 3)).toMatchObject({ name: 'RangeError', code: 'ERR_XZC_BAD_REFS', message: 'refs[2] repeats grant reference 5' });
    expect(bad(Uint32Array.of(1, 0), 2)?.message).toMatch(/^refs\[1\] must be a grant reference/);
    expect(bad(Uint32Array.of(1, 2), 3)?.message).toBe('refs has 2 entries, the buffer needs 3 pages');
    // a long list with one repeat at the very end, past any hash collisions
    const many = Uint32Array.from({ length: 8100 }, (_, i) => (i + 1) * 4096);
    many[8099] = many[17]!;
    expect(bad(many, 8100)?.message).toBe(`refs[8099] repeats grant reference ${many[17]}`);
    // good refs reach the kernel: fd -1 is EBADF there
    await expect(b.zcopyImport(-1, 1, Uint32Array.of(3, 4), 1024, 2, 32)).rejects.toMatchObject({ code: 'EBADF', syscall: 'DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS' });
  });

  it('zcopyRelease closes the dma-buf fd even when GEM_CLOSE fails, and makes no wait fd then', async () => {
    const b = native();
    const fd = openSync('/dev/null', 'r');
    const other = openSync('/dev/null', 'r');
    try {
      // /dev/null has no GEM_CLOSE: ENOTTY, named as GEM_CLOSE
      await expect(b.zcopyRelease(fd, 5, other, 1)).rejects.toMatchObject({ code: 'ENOTTY', syscall: 'DRM_IOCTL_GEM_CLOSE' });
      expect(() => b.seekEnd(other)).toThrow(/EBADF/);
      // no handle to close: straight to WAIT_FREE_FD
      await expect(b.zcopyRelease(fd, 0, -1, 1)).rejects.toMatchObject({ code: 'ENOTTY', syscall: 'DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE_FD' });
      expect(() => b.zcopyWaitFreeFd(fd, 1)).toThrow(/ENOTTY/);
      expect(b.fdReadable(fd)).toBe(true); // /dev/null always reads EOF
    } finally {
      closeSync(fd);
    }
  });
});
