/**
 * The module's auto-translated paths (an Arm or PVH Dom0; the arm64 harness,
 * XZC_ARCH=arm64, runs them with autotranslated_unvalidated=1) against a real
 * DomU: the dma-buf mmap through vm_map_pages_zero(), DMA-contiguous backing
 * per buffer (XEN_ZCOPY_FROM_REFS_FLAG_CONTIGUOUS) and for every buffer (the
 * `contiguous` module parameter), the sg table as an importer (vgem) maps it.
 * In a PV Dom0 only the refusal is checked.
 */
import { openSync, readFileSync, readSync, closeSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { native, PROT_READ, PROT_WRITE } from '../../lib/binding.js';
import { findDrmNode, insmod, openDrm, rmmod, until, zcopyStats } from './drm.js';
import { xenEnv } from './env.js';
import { type DomU, sharedDomU } from './fixture.js';
import { fillPattern, firstMismatch } from './pattern.js';

const b = native();
const PAGE = 4096;
const guestType = (() => {
  try {
    return readFileSync('/sys/hypervisor/guest_type', 'utf8').trim();
  } catch {
    return 'unknown';
  }
})();
const autoTranslated = guestType !== 'PV' && guestType !== 'unknown';
const params = (): string => readFileSync('/sys/module/xen_drm_zcopy/parameters/contiguous', 'utf8').trim();

/**
 * Dom0 frame numbers behind the `pages` pages of this process's most recent
 * mapping of that size (from /proc/self/maps and /proc/self/pagemap; root).
 */
function mappedFrames(pages: number): number[] {
  const maps = readFileSync('/proc/self/maps', 'utf8').split('\n');
  const line = maps.filter((l) => /dmabuf|dma_buf|dma-buf/.test(l)).find((l) => {
    const [lo, hi] = l.split(' ')[0]!.split('-').map((h) => BigInt(`0x${h}`));
    return hi! - lo! === BigInt(pages * PAGE);
  });
  if (!line) throw new Error(`no dma-buf mapping of ${pages} pages in /proc/self/maps`);
  const start = BigInt(`0x${line.split('-')[0]}`) / BigInt(PAGE);
  const fd = openSync('/proc/self/pagemap', 'r');
  try {
    const buf = Buffer.alloc(8 * pages);
    readSync(fd, buf, 0, buf.length, Number(start * 8n));
    return Array.from({ length: pages }, (_, i) => {
      const e = buf.readBigUInt64LE(i * 8);
      if (!(e >> 63n)) throw new Error(`page ${i} of the mapping is not present`);
      return Number(e & ((1n << 55n) - 1n));
    });
  } finally {
    closeSync(fd);
  }
}

/** swiotlb slabs in use (debugfs), -1 without it: a bounce shows as a rise. */
function swiotlbUsed(): number {
  try {
    return Number(readFileSync('/sys/kernel/debug/swiotlb/io_tlb_used', 'utf8').trim());
  } catch {
    return -1;
  }
}

const consecutive = (frames: number[]): boolean => frames.every((f, i) => i === 0 || f === frames[i - 1]! + 1);

describe('auto-translated Dom0 paths', () => {
  let zc: number;
  let vgem: number;
  let guest: DomU;

  beforeAll(async () => {
    zc = openDrm('xen_drm_zcopy');
    vgem = openDrm('vgem');
    guest = await sharedDomU();
  });

  afterAll(() => {
    b.close(zc);
    b.close(vgem);
  });

  /**
   * Imports `pages` pages the guest filled with pattern(seed), checks them
   * through the dma-buf's own mmap (whole and from page 1 on) and through
   * vgem's import, writes pattern(seed + 1) back and has the guest check it.
   * Returns the Dom0 frames the mapping showed.
   */
  async function roundTrip(pages: number, seed: number, flags: number): Promise<number[]> {
    const shared = await guest.share({ pages, seed });
    const before = zcopyStats();
    const buf = await b.zcopyFromRefs(zc, guest.domid, shared.refs, PAGE / 4, pages, 32, flags);
    const dmabuf = b.drmPrimeHandleToFd(zc, buf.handle);
    const S = b.DMA_BUF_SYNC;
    const view = b.mmap(dmabuf, pages * PAGE, PROT_READ | PROT_WRITE, 0);
    const frames = mappedFrames(pages);
    b.dmabufSync(dmabuf, S.START | S.READ | S.WRITE);
    const words = new Uint32Array(view);
    expect(firstMismatch(words, seed)).toBe(-1);
    // PV grant mappings into user PTEs only; vm_map_pages maps Dom0's own pages
    expect(zcopyStats().user_mapped_pages).toBe(0);

    // a mapping that starts at page 1 (the DRM fake offset is not applied twice)
    const tail = b.mmap(dmabuf, (pages - 1) * PAGE, PROT_READ, PAGE);
    expect(firstMismatch(new Uint32Array(tail), seed, PAGE / 4)).toBe(-1);
    b.munmap(tail);

    // the importer: vgem DMA-maps the sg table at import; its dma-buf maps back here
    const slabs = swiotlbUsed();
    const vh = b.drmPrimeFdToHandle(vgem, dmabuf);
    console.log(`${pages} pages, flags ${flags}: swiotlb slabs held by vgem's import: ${swiotlbUsed() - slabs}`);
    const vfd = b.drmPrimeHandleToFd(vgem, vh);
    const vview = b.mmap(vfd, pages * PAGE, PROT_READ, 0);
    expect(firstMismatch(new Uint32Array(vview), seed)).toBe(-1);
    b.munmap(vview);
    b.close(vfd);

    fillPattern(words, seed + 1);
    b.dmabufSync(dmabuf, S.END | S.READ | S.WRITE);
    b.munmap(view);
    expect(await guest.check(shared.id, seed + 1)).toEqual({ match: true });

    b.drmGemClose(vgem, vh);
    b.drmGemClose(zc, buf.handle);
    b.close(dmabuf);
    await expect(b.zcopyWaitFree(zc, buf.waitHandle, 10_000)).resolves.toBeUndefined();
    expect(zcopyStats()).toMatchObject({ mapped_foreign_pages: before.mapped_foreign_pages, user_mapped_pages: 0 });
    await guest.unshare(shared.id);
    return frames;
  }

  it('runs where it should: an auto-translated Dom0 with the module\'s unvalidated paths on, or a PV one', () => {
    console.log(`guest_type ${guestType}, module parameters: contiguous=${params()}`);
    if (autoTranslated) {
      expect(readFileSync('/sys/module/xen_drm_zcopy/parameters/autotranslated_unvalidated', 'utf8').trim()).toBe('Y');
    }
  });

  it('contiguous backing: refused in a PV Dom0, else per buffer with the flag', async () => {
    const flag = b.zcopyIoctls.FLAG_CONTIGUOUS;
    if (!autoTranslated) {
      const shared = await guest.share({ pages: 4, seed: 7 });
      await expect(b.zcopyFromRefs(zc, guest.domid, shared.refs, 1024, 4, 32, flag)).rejects.toMatchObject({ code: expect.stringMatching(/^(EOPNOTSUPP|ENOTSUP)$/) }); // 95: libuv names it ENOTSUP
      await guest.unshare(shared.id);
      return;
    }
    const frames = await roundTrip(512, 0x5eed, flag);
    expect(consecutive(frames)).toBe(true);
  });

  it('default backing: the dma-buf mmap (vm_map_pages) and vgem show a 1080p guest buffer; writes reach the guest', async () => {
    if (!autoTranslated) return;
    const frames = await roundTrip(2025, 0xa11, 0);
    console.log(`default backing: ${consecutive(frames) ? 'consecutive' : 'scattered'} Dom0 frames ${frames[0]!.toString(16)}..`);
  });

  it('the contiguous module parameter makes every buffer contiguous', async () => {
    if (!autoTranslated) return;
    b.close(zc);
    b.close(vgem);
    expect(rmmod()).toBeUndefined();
    try {
      insmod(xenEnv().kmod, ['contiguous=1']); // after the harness's parameters
      expect(await until(() => findDrmNode('xen_drm_zcopy') !== undefined, 5000)).toBe(true);
      expect(params()).toBe('Y');
      zc = openDrm('xen_drm_zcopy');
      vgem = openDrm('vgem');
      const frames = await roundTrip(2025, 0xc0de, 0);
      expect(consecutive(frames)).toBe(true);
    } finally {
      b.close(zc);
      b.close(vgem);
      rmmod();
      insmod(xenEnv().kmod);
      await until(() => findDrmNode('xen_drm_zcopy') !== undefined, 5000);
      zc = openDrm('xen_drm_zcopy');
      vgem = openDrm('vgem');
    }
    expect(params()).toBe('N');
  });
});
