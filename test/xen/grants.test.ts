/**
 * Grant-table smoke tests through the addon: Dom0 self-grant loopback, a real
 * DomU granting pages to Dom0, and Dom0 granting pages to the DomU.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { native, PROT_READ, PROT_WRITE } from '../../lib/binding.js';
import { type DomU, sharedDomU } from './fixture.js';
import { renderDemo } from './demo-image.js';
import { fillPattern, firstMismatch, patternWord } from './pattern.js';

const PAGE = 4096;
const b = native();

describe('grant tables through the addon', () => {
  let gntalloc: number;
  let gntdev: number;
  let guest: DomU;

  beforeAll(async () => {
    gntalloc = b.open('/dev/xen/gntalloc');
    gntdev = b.open('/dev/xen/gntdev');
    guest = await sharedDomU();
  });

  afterAll(() => {
    b.close(gntalloc);
    b.close(gntdev);
  });

  it('mirrors the guest helper pattern exactly', () => {
    const bin = process.env.XZC_GUEST_BIN;
    expect(bin, 'harness exports XZC_GUEST_BIN').toBeTruthy();
    const out = spawnSync(bin!, ['pattern', '0xdeadbeef', '64'], { encoding: 'utf8' });
    expect(out.status).toBe(0);
    const words = out.stdout.trim().split('\n').map((h) => parseInt(h, 16));
    expect(words).toEqual(Array.from({ length: 64 }, (_, i) => patternWord(0xdeadbeef, i)));
  });

  it('draws the same demo image as its TypeScript mirror', () => {
    for (const style of [0, 1] as const) {
      const out = spawnSync(process.env.XZC_GUEST_BIN!, ['image', '320', '180', String(style), '9', '4'], { maxBuffer: 1 << 20 });
      expect(out.status).toBe(0);
      const c = new Uint32Array(Uint8Array.from(out.stdout).buffer);
      const ts = renderDemo({ width: 320, height: 180, style, frame: 9, domid: 4 });
      expect(c.length).toBe(ts.length);
      expect(c.findIndex((px, i) => px !== ts[i])).toBe(-1);
    }
  });

  it('loops a Dom0 self-grant back through gntdev, both directions', () => {
    const pages = 4;
    const grant = b.gntallocAlloc(gntalloc, 0, pages, true);
    expect(grant.refs).toHaveLength(pages);
    const src = b.mmap(gntalloc, pages * PAGE, PROT_READ | PROT_WRITE, grant.index);
    fillPattern(new Uint32Array(src), 11);
    const index = b.gntdevMapGrantRefs(gntdev, 0, grant.refs);
    const dst = b.mmap(gntdev, pages * PAGE, PROT_READ | PROT_WRITE, index);
    try {
      expect(firstMismatch(new Uint32Array(dst), 11)).toBe(-1);
      fillPattern(new Uint32Array(dst), 12);
      expect(firstMismatch(new Uint32Array(src), 12)).toBe(-1);
    } finally {
      expect(b.munmap(dst)).toBe(true);
      b.gntdevUnmapGrantRef(gntdev, index, pages);
      expect(b.munmap(src)).toBe(true);
      b.gntallocDealloc(gntalloc, grant.index, pages);
    }
    // the views are detached, not dangling
    expect(src.byteLength).toBe(0);
    expect(b.munmap(src)).toBe(false);
  });

  it('maps 16 pages a real DomU granted and checks every byte, then writes back', async () => {
    const shared = await guest.share({ pages: 16, seed: 0x1234 });
    expect(shared.refs).toHaveLength(16);
    expect(new Set(shared.refs).size).toBe(16);
    const index = b.gntdevMapGrantRefs(gntdev, guest.domid, shared.refs);
    const view = b.mmap(gntdev, 16 * PAGE, PROT_READ | PROT_WRITE, index);
    try {
      const words = new Uint32Array(view);
      expect(firstMismatch(words, 0x1234)).toBe(-1);
      // Dom0 writes through its mapping; the guest sees it in its own pages.
      fillPattern(words, 0x5678);
      expect(await guest.check(shared.id, 0x5678)).toEqual({ match: true });
      // The check can fail: one flipped word is found at its index.
      words[4097] = (words[4097]! ^ 1) >>> 0;
      expect(await guest.check(shared.id, 0x5678)).toMatchObject({ match: false, word: 4097 });
    } finally {
      b.munmap(view);
      b.gntdevUnmapGrantRef(gntdev, index, 16);
      await guest.unshare(shared.id);
    }
  });

  it('refuses to map a ref the guest never granted', async () => {
    const shared = await guest.share({ pages: 1, seed: 1 });
    await guest.unshare(shared.id);
    // gntdev reserves the mapping at ioctl time and maps at mmap time: the
    // revoked grant fails there.
    const index = b.gntdevMapGrantRefs(gntdev, guest.domid, shared.refs);
    try {
      expect(() => b.mmap(gntdev, PAGE, PROT_READ, index)).toThrow(expect.objectContaining({ syscall: 'mmap' }));
    } finally {
      b.gntdevUnmapGrantRef(gntdev, index, 1);
    }
  });

  it('grants 16 Dom0 pages to the DomU, which verifies them and writes back', async () => {
    const pages = 16;
    const grant = b.gntallocAlloc(gntalloc, guest.domid, pages, true);
    const view = b.mmap(gntalloc, pages * PAGE, PROT_READ | PROT_WRITE, grant.index);
    try {
      const words = new Uint32Array(view);
      fillPattern(words, 0xabc);
      expect(await guest.mapVerify(grant.refs, 0xabc)).toEqual({ match: true });
      expect(await guest.mapVerify(grant.refs, 0xabd)).toMatchObject({ match: false, word: 0 });
      await guest.mapWrite(grant.refs, 0xdef);
      expect(firstMismatch(words, 0xdef)).toBe(-1);
    } finally {
      b.munmap(view);
      b.gntallocDealloc(gntalloc, grant.index, pages);
    }
  });

  it('reports errors like Node fs errors', () => {
    expect(() => b.gntdevUnmapGrantRef(gntdev, 0x7fff0000, 1)).toThrow(
      expect.objectContaining({ code: 'ENOENT', errno: -2, syscall: 'IOCTL_GNTDEV_UNMAP_GRANT_REF' }),
    );
    expect(() => b.open('/dev/xen/no-such-device')).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'open', path: '/dev/xen/no-such-device' }),
    );
  });
});
