/**
 * The xen_drm_zcopy module against a real DomU and a real DRM driver (vgem),
 * through the addon's raw bindings.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { native, PROT_READ, PROT_WRITE } from '../../lib/binding.js';
import { openDrm, findDrmNode, insmod, moduleLoaded, rmmod, until, zcopyStats } from './drm.js';
import { pvDomain, xenEnv } from './env.js';
import { type DomU, sharedDomU } from './fixture.js';
import { fillPattern, firstMismatch } from './pattern.js';

const b = native();
const PAGE = 4096;
const W = 1920;
const H = 1080;
const PAGES = (W * H * 4) / PAGE; // 2025

describe('xen_drm_zcopy', () => {
  let zc: number;
  let vgem: number;
  let guest: DomU;

  beforeAll(async () => {
    expect(xenEnv().kmod, 'the harness built the module').not.toBe('');
    expect(moduleLoaded()).toBe(true);
    zc = openDrm('xen_drm_zcopy');
    vgem = openDrm('vgem');
    guest = await sharedDomU();
  });

  afterAll(() => {
    b.close(zc);
    b.close(vgem);
  });

  it('has the 2018 ABI and identity', () => {
    expect(b.zcopyIoctls).toMatchObject({ FROM_REFS: 0xc0406440, TO_REFS: 0xc0206441, WAIT_FREE: 0xc0086442 });
    expect(b.drmVersion(zc)).toMatchObject({ name: 'xen_drm_zcopy', desc: 'Xen PV DRM zero copy', major: 1 });
  });

  it('imports a guest 1080p frame into vgem; both mappings show every pixel', async () => {
    const shared = await guest.share({ pages: PAGES, seed: 0xf00d });
    const before = zcopyStats();
    const buf = await b.zcopyFromRefs(zc, guest.domid, shared.refs, W, H, 32);
    expect(buf).toMatchObject({ pitch: W * 4, size: W * H * 4 });
    expect(buf.waitHandle).toBeGreaterThan(0);
    expect(zcopyStats().mapped_foreign_pages - before.mapped_foreign_pages).toBe(PAGES);

    const dmabuf = b.drmPrimeHandleToFd(zc, buf.handle);
    expect(b.seekEnd(dmabuf)).toBe(PAGES * PAGE);
    const vh = b.drmPrimeFdToHandle(vgem, dmabuf);

    // through the importer: vgem hands back the same dma-buf for its handle
    // (DRM refuses dumb mmap offsets for imported buffers, so user space maps
    // imports through their dma-buf; the mmap lands in this driver)
    const vfd = b.drmPrimeHandleToFd(vgem, vh);
    expect(b.seekEnd(vfd)).toBe(PAGES * PAGE);
    const vview = b.mmap(vfd, PAGES * PAGE, PROT_READ, 0);
    expect(firstMismatch(new Uint32Array(vview), 0xf00d)).toBe(-1);
    expect(zcopyStats().user_mapped_pages).toBe(pvDomain() ? PAGES : 0);
    b.munmap(vview);
    b.close(vfd);
    expect(zcopyStats().user_mapped_pages).toBe(0);

    // through the dma-buf fd, bracketed by CPU access sync, writable
    const S = b.DMA_BUF_SYNC;
    const dview = b.mmap(dmabuf, PAGES * PAGE, PROT_READ | PROT_WRITE, 0);
    b.dmabufSync(dmabuf, S.START | S.READ | S.WRITE);
    const words = new Uint32Array(dview);
    expect(firstMismatch(words, 0xf00d)).toBe(-1);
    fillPattern(words, 0xbeef);
    b.dmabufSync(dmabuf, S.END | S.READ | S.WRITE);
    b.munmap(dview);
    // Dom0's writes land in the guest's own pages: no copy anywhere.
    expect(await guest.check(shared.id, 0xbeef)).toEqual({ match: true });

    // documented teardown: importer handle, zcopy handle, dma-buf fd, wait
    b.drmGemClose(vgem, vh);
    b.drmGemClose(zc, buf.handle);
    b.close(dmabuf);
    await expect(b.zcopyWaitFree(zc, buf.waitHandle, 5000)).resolves.toBeUndefined();
    await expect(b.zcopyWaitFree(zc, buf.waitHandle, 5000)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(zcopyStats().mapped_foreign_pages).toBe(before.mapped_foreign_pages);
    await guest.unshare(shared.id);
  });

  it('WAIT_FREE times out while another holder keeps the dma-buf, then succeeds', async () => {
    const shared = await guest.share({ pages: 4, seed: 1 });
    const buf = await b.zcopyFromRefs(zc, guest.domid, shared.refs, 64, 64, 32);
    const dmabuf = b.drmPrimeHandleToFd(zc, buf.handle);
    b.drmGemClose(zc, buf.handle);
    await expect(b.zcopyWaitFree(zc, buf.waitHandle, 200)).rejects.toMatchObject({
      code: 'ETIMEDOUT', syscall: 'DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE',
    });
    const waiting = b.zcopyWaitFree(zc, buf.waitHandle, 10_000);
    b.close(dmabuf);
    await expect(waiting).resolves.toBeUndefined();
    await guest.unshare(shared.id);
  });

  it('WAIT_FREE_FD (our extension): a wait fd polls readable once the buffer is freed, and owns the wait', async () => {
    expect(b.zcopyIoctls.WAIT_FREE_FD).toBe(0xc0106443);
    const shared = await guest.share({ pages: 4, seed: 2 });
    const buf = await b.zcopyFromRefs(zc, guest.domid, shared.refs, 64, 64, 32);
    const dmabuf = b.drmPrimeHandleToFd(zc, buf.handle);
    b.drmGemClose(zc, buf.handle);
    const before = zcopyStats();
    const w = b.zcopyWaitFreeFd(zc, buf.waitHandle);
    expect(zcopyStats().wait_fds).toBe(before.wait_fds + 1);
    expect(b.fdReadable(w)).toBe(false); // the dma-buf still holds the buffer
    // the handle became the fd: no second wait on it, in either form
    await expect(b.zcopyWaitFree(zc, buf.waitHandle, 0)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(() => b.zcopyWaitFreeFd(zc, buf.waitHandle)).toThrow(/ENOENT/);
    // readiness reaches the event loop through uv_poll, no thread involved
    const watch = new b.FdWatch(w);
    const ready = new Promise<null | Error>((resolve) => watch.start((err) => { watch.stop(); resolve(err); }));
    await new Promise((r) => setTimeout(r, 100));
    expect(b.fdReadable(w)).toBe(false);
    b.close(dmabuf); // the last reference: grants unmapped, the fd polls readable
    await expect(ready).resolves.toBeNull();
    expect(b.fdReadable(w)).toBe(true);
    expect(zcopyStats().mapped_foreign_pages).toBe(before.mapped_foreign_pages - 4);
    b.close(w);
    expect(zcopyStats().wait_fds).toBe(before.wait_fds);
    await guest.unshare(shared.id);
  });

  it('WAIT_FREE_FD: readable at once for a buffer freed before; outlives the DRM file; refuses flags, others\' and unknown handles', async () => {
    const shared = await guest.share({ pages: 2, seed: 3 });
    const own = openDrm('xen_drm_zcopy');
    const buf = await b.zcopyFromRefs(own, guest.domid, shared.refs, 32, 32, 32);
    const dmabuf = b.drmPrimeHandleToFd(own, buf.handle);
    b.drmGemClose(own, buf.handle);
    // another file's handle and an unknown one: ENOENT, as for WAIT_FREE
    expect(() => b.zcopyWaitFreeFd(zc, buf.waitHandle)).toThrow(/ENOENT/);
    expect(() => b.zcopyWaitFreeFd(own, 0x7fffffff)).toThrow(/ENOENT/);
    // flags other than IF_BUSY, and padding, must be 0
    const raw = new Uint8Array(16);
    new DataView(raw.buffer).setUint32(0, buf.waitHandle, true);
    new DataView(raw.buffer).setUint32(4, 1 << 1, true);
    expect(b.zcopyIoctlRaw(own, b.zcopyIoctls.WAIT_FREE_FD, raw)).toBe(22);
    new DataView(raw.buffer).setUint32(4, 0, true);
    new DataView(raw.buffer).setUint32(12, 1, true);
    expect(b.zcopyIoctlRaw(own, b.zcopyIoctls.WAIT_FREE_FD, raw)).toBe(22);
    // the wait fd outlives the DRM file it came from
    const w = b.zcopyWaitFreeFd(own, buf.waitHandle);
    b.close(own);
    expect(b.fdReadable(w)).toBe(false);
    b.close(dmabuf);
    expect(await until(() => b.fdReadable(w), 5000)).toBe(true);
    b.close(w);
    // freed first, asked after: readable at once
    const again = await b.zcopyFromRefs(zc, guest.domid, shared.refs, 32, 32, 32);
    b.close(b.drmPrimeHandleToFd(zc, again.handle));
    b.drmGemClose(zc, again.handle);
    const w2 = b.zcopyWaitFreeFd(zc, again.waitHandle);
    expect(b.fdReadable(w2)).toBe(true);
    b.close(w2);
    expect(zcopyStats()).toMatchObject({ wait_fds: 0, waiters: 0 });
    await guest.unshare(shared.id);
  });

  it('WAIT_FREE_FD_IF_BUSY: a wait fd only for a buffer still in use; freed already, the handle is consumed with no file (fd -1)', async () => {
    const IF_BUSY = b.zcopyIoctls.WAIT_FREE_FD_IF_BUSY;
    expect(IF_BUSY).toBe(1);
    const shared = await guest.share({ pages: 2, seed: 4 });
    const ask = (waitHandle: number) => {
      const raw = new Uint8Array(16);
      const v = new DataView(raw.buffer);
      v.setUint32(0, waitHandle, true);
      v.setUint32(4, IF_BUSY, true);
      v.setInt32(8, 12345, true);
      const err = b.zcopyIoctlRaw(zc, b.zcopyIoctls.WAIT_FREE_FD, raw);
      return { err, fd: v.getInt32(8, true) };
    };
    // still held by its dma-buf: a wait fd, as without the flag
    const busy = await b.zcopyFromRefs(zc, guest.domid, shared.refs, 32, 32, 32);
    const dmabuf = b.drmPrimeHandleToFd(zc, busy.handle);
    b.drmGemClose(zc, busy.handle);
    const held = ask(busy.waitHandle);
    expect(held.err).toBe(0);
    expect(held.fd).toBeGreaterThanOrEqual(0);
    expect(zcopyStats().wait_fds).toBe(1);
    expect(b.fdReadable(held.fd)).toBe(false);
    b.close(dmabuf);
    expect(await until(() => b.fdReadable(held.fd), 5000)).toBe(true);
    b.close(held.fd);
    // freed already: no file, the handle is consumed (a second ask: ENOENT)
    const done = await b.zcopyFromRefs(zc, guest.domid, shared.refs, 32, 32, 32);
    b.close(b.drmPrimeHandleToFd(zc, done.handle));
    b.drmGemClose(zc, done.handle);
    expect(ask(done.waitHandle)).toEqual({ err: 0, fd: -1 });
    expect(ask(done.waitHandle).err).toBe(2);
    await expect(b.zcopyWaitFree(zc, done.waitHandle, 0)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(zcopyStats()).toMatchObject({ wait_fds: 0, waiters: 0 });
    await guest.unshare(shared.id);
  });

  it('grants a vgem buffer to the guest (TO_REFS); the guest draws, Dom0 sees it; reclaim waits for the guest', async () => {
    const dumb = b.drmModeCreateDumb(vgem, 256, 256, 32);
    const pages = dumb.size / PAGE;
    const vfd = b.drmPrimeHandleToFd(vgem, dumb.handle);
    const zh = b.drmPrimeFdToHandle(zc, vfd);
    const before = zcopyStats();
    const refs = await b.zcopyToRefs(zc, zh, guest.domid, pages);
    expect(refs).toHaveLength(pages);
    expect(zcopyStats().granted_pages - before.granted_pages).toBe(pages);
    await expect(b.zcopyToRefs(zc, zh, guest.domid, pages)).rejects.toMatchObject({ code: 'EBUSY' });

    await guest.mapWrite(refs, 0x5eed);
    const view = b.mmap(vgem, dumb.size, PROT_READ, b.drmModeMapDumb(vgem, dumb.handle));
    expect(firstMismatch(new Uint32Array(view), 0x5eed)).toBe(-1);
    b.munmap(view);

    // The guest keeps the pages mapped while Dom0 lets go: the grants cannot
    // end, so the pages stay with the guest until it unmaps them.
    const held = await guest.mapHold(refs);
    b.drmGemClose(zc, zh);
    b.drmGemClose(vgem, dumb.handle);
    b.close(vfd);
    const s = zcopyStats();
    expect(s.deferred_reclaims).toBe(before.deferred_reclaims + 1);
    expect(s.deferred_reclaims_total).toBe(before.deferred_reclaims_total + 1);
    expect(rmmod()).toMatch(/in use|busy/i);
    await guest.unmap(held);
    expect(await until(() => zcopyStats().deferred_reclaims === before.deferred_reclaims, 10_000)).toBe(true);
    expect(zcopyStats().granted_pages).toBe(before.granted_pages);
  });

  it('refuses TO_REFS on a FROM_REFS buffer and a wrong page count', async () => {
    const shared = await guest.share({ pages: 1, seed: 2 });
    const buf = await b.zcopyFromRefs(zc, guest.domid, shared.refs, 16, 16, 32);
    await expect(b.zcopyToRefs(zc, buf.handle, guest.domid, 1)).rejects.toMatchObject({ code: 'EINVAL' });
    const dumb = b.drmModeCreateDumb(vgem, 64, 64, 32);
    const vfd = b.drmPrimeHandleToFd(vgem, dumb.handle);
    const zh = b.drmPrimeFdToHandle(zc, vfd);
    await expect(b.zcopyToRefs(zc, zh, guest.domid, dumb.size / PAGE + 1)).rejects.toMatchObject({ code: 'EINVAL' });
    b.drmGemClose(zc, zh);
    b.drmGemClose(vgem, dumb.handle);
    b.close(vfd);
    // the last handle frees it at once: the wait reports it and is consumed
    b.drmGemClose(zc, buf.handle);
    await expect(b.zcopyWaitFree(zc, buf.waitHandle, 0)).resolves.toBeUndefined();
    await expect(b.zcopyWaitFree(zc, buf.waitHandle, 0)).rejects.toMatchObject({ code: 'ENOENT' });
    await guest.unshare(shared.id);
  });

  it('frees cleanly when the creating file closes before the dma-buf', async () => {
    const shared = await guest.share({ pages: 4, seed: 3 });
    const zc2 = openDrm('xen_drm_zcopy');
    const buf = await b.zcopyFromRefs(zc2, guest.domid, shared.refs, 64, 64, 32);
    const dmabuf = b.drmPrimeHandleToFd(zc2, buf.handle);
    // wait handles belong to their file: another file cannot see it
    await expect(b.zcopyWaitFree(zc, buf.waitHandle, 10)).rejects.toMatchObject({ code: 'ENOENT' });
    const before = zcopyStats().live_objects;
    b.close(zc2);
    expect(zcopyStats().live_objects).toBe(before);
    b.close(dmabuf);
    expect(zcopyStats().live_objects).toBe(before - 1);
    await guest.unshare(shared.id);
  });

  it('is refused by rmmod while a client holds it, unloads after, and reloads', async () => {
    expect(rmmod()).toMatch(/in use|busy/i);
    b.close(zc);
    b.close(vgem);
    expect(rmmod()).toBeUndefined();
    expect(findDrmNode('xen_drm_zcopy')).toBeUndefined();
    insmod(xenEnv().kmod);
    expect(await until(() => findDrmNode('xen_drm_zcopy') !== undefined, 5000)).toBe(true);
    zc = openDrm('xen_drm_zcopy');
    vgem = openDrm('vgem');
    expect(zcopyStats()).toMatchObject({ live_objects: 0, mapped_foreign_pages: 0, granted_pages: 0, deferred_reclaims: 0 });
  });
});
