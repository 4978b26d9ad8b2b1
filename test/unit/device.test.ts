/** The TS policy layer against a fake binding: validation, teardown, refcounts, ownership, lifetimes, errors. */
import { describe, expect, it } from 'vitest';

import {
  bufferGeometry, checkRefs, ClosedError, DmaBuf, DrmDevice, GrantMapper, TimeoutError, ValidationError, XenZcopySystemError,
  ZeroCopyDevice,
} from '../../lib/index.js';
import { type Fake, fakeBinding } from './fake-binding.js';

const refs = (n: number, start = 1) => Uint32Array.from({ length: n }, (_, i) => start + i);
const small = { domid: 3, refs: refs(1), width: 16, height: 16, bpp: 32 };

function setup() {
  const fake = fakeBinding();
  const dev = ZeroCopyDevice.open({ binding: fake.binding, path: '/dev/dri/card9' });
  return { fake, dev };
}

/** A dma-buf fd of its own (a fresh object in the fake). */
const newDmaBuf = (fake: Fake) => new DmaBuf(fake.binding.open('/dev/fake-dmabuf'), { binding: fake.binding });
const gemCloses = (fake: Fake) => fake.calls.filter((c) => c.startsWith('gem-close'));

describe('validation before any ioctl', () => {
  it('computes geometry and rejects bad sizes', () => {
    expect(bufferGeometry(1920, 1080, 32)).toEqual({ pitch: 7680, size: 8294400, pages: 2025 });
    expect(() => bufferGeometry(0, 1, 32)).toThrow(ValidationError);
    expect(() => bufferGeometry(16, 16, 12)).toThrow(/multiple of 8/);
    expect(() => bufferGeometry(1.5, 16, 32)).toThrow(/integer/);
  });

  it('rejects zero, duplicate, out-of-range and missing refs with what was expected', () => {
    expect(() => checkRefs([1, 0, 3])).toThrow(/refs\[1\].*0 is never a data page/);
    expect(() => checkRefs([5, 6, 5])).toThrow(/refs\[2\] repeats grant reference 5/);
    expect(() => checkRefs([1, -2])).toThrow(ValidationError);
    expect(() => checkRefs([1, 2], 3)).toThrow('refs has 2 entries, the buffer needs 3 pages');
    expect(checkRefs([7, 8])).toEqual(Uint32Array.from([7, 8]));
    const mine = Uint32Array.of(7, 8);
    const checked = checkRefs(mine);
    expect(checked).toEqual(mine);
    expect(checked).not.toBe(mine); // the caller may reuse its array meanwhile
    expect(() => checkRefs(Uint32Array.of(4, 0))).toThrow(/refs\[1\].*0 is never/);
    expect(() => checkRefs([1, 2.5])).toThrow(/refs\[1\]/);
  });

  it('never reaches the kernel with bad input, and rejects instead of throwing', async () => {
    const { fake, dev } = setup();
    const bad = [
      { domid: -1, refs: refs(2025), width: 1920, height: 1080, bpp: 32 },
      { domid: 0x7ff0, refs: refs(2025), width: 1920, height: 1080, bpp: 32 },
      { domid: 1, refs: refs(2024), width: 1920, height: 1080, bpp: 32 },
      { domid: 1, refs: refs(1), width: 0, height: 1, bpp: 32 },
    ];
    for (const opts of bad) {
      let p: Promise<unknown> | undefined;
      expect(() => { p = dev.importGuestBuffer(opts); }).not.toThrow();
      await expect(p).rejects.toThrow(ValidationError);
    }
    expect(fake.calls.filter((c) => c.startsWith('from-refs'))).toEqual([]);
    expect(new ValidationError('x').code).toBe('ERR_XZC_INVALID_ARG');
  });
});

describe('GuestBuffer lifetime', () => {
  it('imports, and closes in the documented order: importer handle, zcopy handle, fd, wait', async () => {
    const { fake, dev } = setup();
    const vgem = DrmDevice.open('/dev/dri/card0', { binding: fake.binding });
    const buf = await dev.importGuestBuffer({ domid: 3, refs: refs(2025), width: 1920, height: 1080, bpp: 32 });
    expect(buf.format).toEqual({ width: 1920, height: 1080, bpp: 32, pitch: 7680 });
    const h = vgem.importDmaBuf(buf.dmabuf);
    const zcopyHandle = buf.handle;
    const dmabufFd = buf.dmabuf.fd;
    fake.calls.length = 0;
    await expect(buf.close()).resolves.toBe('freed');
    expect(fake.calls.slice(0, 4)).toEqual([
      `gem-close ${vgem.fd} ${h}`,
      `gem-close ${dev.fd} ${zcopyHandle}`,
      `close ${dmabufFd}`,
      'wait-free-fd 7',
    ]);
    // the wait fd, readable at once, closed in the same job
    expect(fake.calls).toHaveLength(5);
    expect(fake.calls[4]).toMatch(/^close \d+$/);
    expect(buf.dmabuf.closed).toBe(true);
    // idempotent
    await expect(buf.close()).resolves.toBe('freed');
    expect(fake.calls.filter((c) => c.startsWith('wait-free'))).toHaveLength(1);
    expect(fake.open.size).toBe(2); // the device and vgem
  });

  it('maps ENOENT to already-freed and ETIMEDOUT to a typed timeout', async () => {
    const { fake, dev } = setup();
    const buf = await dev.importGuestBuffer(small);
    fake.waitResult = 'ETIMEDOUT';
    const err = await buf.released({ timeoutMs: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ code: 'ETIMEDOUT', errno: -110, syscall: 'DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE_FD' });
    expect(fake.watches).toBe(0); // nothing left polling after the time-out
    const other = await dev.importGuestBuffer(small);
    fake.waitResult = 'ENOENT';
    await expect(other.released({ timeoutMs: 50 })).resolves.toBe('already-freed');
  });

  it('waits without a thread: concurrent waits share one poll of the wait fd, which survives a time-out', async () => {
    const { fake, dev } = setup();
    const buf = await dev.importGuestBuffer(small);
    fake.waitResult = 'hang';
    const opens = fake.open.size;
    await expect(buf.close({ timeoutMs: 20 })).rejects.toBeInstanceOf(TimeoutError);
    expect(fake.watches).toBe(0);
    expect(fake.open.size).toBe(opens); // dma-buf closed, wait fd kept for later waits
    const a = buf.released({ timeoutMs: 5000 });
    const b = buf.released({ timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 10));
    expect(fake.watches).toBe(1);
    fake.freeAll();
    await expect(Promise.all([a, b])).resolves.toEqual(['freed', 'freed']);
    expect(fake.calls.filter((c) => c.startsWith('wait-free'))).toEqual(['wait-free-fd 7']);
    expect(fake.watches).toBe(0);
    expect(fake.open.size).toBe(opens - 1); // the wait fd
    await expect(buf.released()).resolves.toBe('already-freed');
  });

  it('released() before or during close() shares one wait fd with it', async () => {
    const { fake, dev } = setup();
    const first = await dev.importGuestBuffer(small);
    fake.waitResult = 'hang';
    const before = first.released({ timeoutMs: 2000 }); // makes the wait fd
    fake.waitResult = 'ok';
    const closing = first.close();
    await expect(Promise.all([before, closing])).resolves.toEqual(['freed', 'freed']);
    const second = await dev.importGuestBuffer(small);
    const closing2 = second.close();
    const during = second.released(); // while the close job runs: waits for its answer
    await expect(Promise.all([closing2, during])).resolves.toEqual(['freed', 'freed']);
    expect(fake.calls.filter((c) => c.startsWith('wait-free'))).toEqual(['wait-free-fd 7', 'wait-free-fd 7']);
    expect(fake.watches).toBe(0);
    expect(fake.open.size).toBe(1); // only the device
  });

  it('the synchronous API: importGuestBufferSync and closeSync, same checks and order, held buffers waited for by released()', async () => {
    const { fake, dev } = setup();
    expect(() => dev.importGuestBufferSync({ ...small, refs: Uint32Array.of(0) })).toThrow(ValidationError);
    fake.failNext.set('handleToFd', 'EIO');
    expect(() => dev.importGuestBufferSync(small)).toThrow(expect.objectContaining({ code: 'EIO', syscall: 'DRM_IOCTL_PRIME_HANDLE_TO_FD' }));
    expect(fake.handles(dev.fd)).toEqual([]);
    const buf = dev.importGuestBufferSync(small);
    expect(buf.dmabuf.size).toBe(4096);
    expect(buf.closeSync()).toBe('freed');
    expect(buf.closeSync()).toBe('already-freed');
    await expect(buf.close()).resolves.toBe('freed');
    // held elsewhere: closeSync says so, released() waits without a thread
    const held = dev.importGuestBufferSync(small);
    fake.waitResult = 'hang';
    expect(held.closeSync()).toBe('held');
    expect(held.closeSync()).toBe('held');
    const waiting = held.released({ timeoutMs: 5000 });
    fake.freeAll();
    await expect(waiting).resolves.toBe('freed');
    await expect(held.close()).resolves.toBe('already-freed');
    expect(fake.open.size).toBe(1);
    await dev.close();
    expect(() => dev.importGuestBufferSync(small)).toThrow(/closed/);
  });

  it('falls back to the blocking WAIT_FREE when the module has no WAIT_FREE_FD', async () => {
    const { fake, dev } = setup();
    const buf = await dev.importGuestBuffer(small);
    fake.failNext.set('waitFreeFd', 'EINVAL');
    await expect(buf.close()).resolves.toBe('freed');
    expect(fake.calls.filter((c) => c.startsWith('wait-free'))).toEqual(['wait-free-fd 7', 'wait-free 7 3000']);
  });

  it('closeSync on a module without WAIT_FREE_FD: the teardown is done, the buffer reported held, released() waits the 2018 way', async () => {
    const { fake, dev } = setup();
    const buf = dev.importGuestBufferSync(small);
    fake.failAlways.set('waitFreeFd', 'ENOTTY');
    expect(buf.closeSync()).toBe('held');
    expect(buf.handle).toBe(0);
    expect(fake.handles(dev.fd)).toEqual([]);
    await expect(buf.released({ timeoutMs: 1000 })).resolves.toBe('freed');
    expect(fake.calls.filter((c) => c.startsWith('wait-free'))).toEqual(['wait-free-fd 7', 'wait-free-fd 7', 'wait-free 7 1000']);
    await expect(buf.close()).resolves.toBe('already-freed');
    expect(fake.open.size).toBe(1);
  });

  it("closeSync makes the importers' GEM_CLOSEs in its own addon call, first; an importer's failure is thrown after the whole teardown", () => {
    const { fake, dev } = setup();
    const vgem = DrmDevice.open('/dev/dri/card0', { binding: fake.binding });
    const buf = dev.importGuestBufferSync(small);
    const h = vgem.importDmaBuf(buf.dmabuf);
    vgem.importDmaBuf(buf.dmabuf); // counted: one handle, closed once
    const [zcopyHandle, dmabufFd] = [buf.handle, buf.dmabuf.fd];
    fake.calls.length = 0;
    expect(buf.closeSync()).toBe('freed');
    expect(fake.calls.slice(0, 4)).toEqual([`gem-close ${vgem.fd} ${h}`, `gem-close ${dev.fd} ${zcopyHandle}`, `close ${dmabufFd}`, 'wait-free-fd 7']);
    expect(vgem.importCount(h)).toBe(0);
    expect(fake.handles(vgem.fd)).toEqual([]);

    const failing = dev.importGuestBufferSync(small);
    vgem.importDmaBuf(failing.dmabuf);
    fake.failNext.set('gemClose', 'EIO'); // the importer's, made first
    expect(() => failing.closeSync()).toThrow(expect.objectContaining({ code: 'EIO', syscall: 'DRM_IOCTL_GEM_CLOSE' }));
    expect(fake.handles(dev.fd)).toEqual([]); // the zcopy handle, fd and wait went on
    expect(failing.dmabuf.closed).toBe(true);
    expect(failing.closeSync()).toBe('already-freed');
    expect(fake.open.size).toBe(2); // the device and vgem
  });

  it('closeSync maps errors as close() does: GEM_CLOSE thrown, ENOENT (waited for before) is already-freed', () => {
    const { fake, dev } = setup();
    const a = dev.importGuestBufferSync(small);
    fake.failNext.set('gemClose', 'EIO');
    expect(() => a.closeSync()).toThrow(expect.objectContaining({ code: 'EIO', syscall: 'DRM_IOCTL_GEM_CLOSE' }));
    const b = dev.importGuestBufferSync(small);
    fake.waitResult = 'ENOENT';
    expect(b.closeSync()).toBe('already-freed');
    expect(b.closeSync()).toBe('already-freed');
  });

  it('undoes FROM_REFS when the export fails (transactional)', async () => {
    const { fake, dev } = setup();
    fake.failNext.set('handleToFd', 'EIO');
    const err = await dev.importGuestBuffer(small).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XenZcopySystemError);
    expect(err).toMatchObject({ code: 'EIO', syscall: 'DRM_IOCTL_PRIME_HANDLE_TO_FD' });
    expect(fake.calls.at(-1)).toMatch(/^gem-close /);
    expect(fake.handles(dev.fd)).toEqual([]);
  });

  it('refuses bad refs in a Uint32Array (checked by the addon on its copy) as a ValidationError, before FROM_REFS', async () => {
    const { fake, dev } = setup();
    for (const r of [Uint32Array.of(9, 9), Uint32Array.of(0, 1)]) {
      await expect(dev.importGuestBuffer({ domid: 1, refs: r, width: 1024, height: 2, bpp: 32 })).rejects.toThrow(ValidationError);
    }
    await expect(dev.importGuestBuffer({ domid: 1, refs: [1, 2.5], width: 1024, height: 2, bpp: 32 })).rejects.toThrow(/refs\[1\]/);
    expect(fake.calls.filter((c) => c.startsWith('from-refs'))).toEqual([]);
  });

  it('a failing GEM_CLOSE in close() still closes the dma-buf fd, and the error says what failed', async () => {
    const { fake, dev } = setup();
    const buf = await dev.importGuestBuffer(small);
    const dmabufFd = buf.dmabuf.fd;
    fake.failNext.set('gemClose', 'EIO');
    await expect(buf.close()).rejects.toMatchObject({ code: 'EIO', syscall: 'DRM_IOCTL_GEM_CLOSE', message: /closing a zcopy handle/ });
    expect(fake.open.has(dmabufFd)).toBe(false);
    expect(fake.calls.filter((c) => c.startsWith('wait-free'))).toEqual([]);
  });

  it('close() after released() said freed makes no second wait', async () => {
    const { fake, dev } = setup();
    const buf = await dev.importGuestBuffer(small);
    await buf.dmabuf.close();
    // (the fake frees on any wait) the handle still counts as held: close() closes it
    await expect(buf.released()).resolves.toBe('freed');
    await expect(buf.close()).resolves.toBe('already-freed');
    expect(fake.calls.filter((c) => c.startsWith('wait-free'))).toHaveLength(1);
    expect(fake.handles(dev.fd)).toEqual([]);
  });

  it('wraps kernel errors with context, keeping errno, code and syscall', async () => {
    const { fake, dev } = setup();
    fake.failNext.set('fromRefs', 'EINVAL');
    const err = await dev.importGuestBuffer({ ...small, domid: 9 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EINVAL', errno: -22, syscall: 'DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS' });
    expect((err as Error).message).toMatch(/mapping 1 pages granted by domain 9/);
    expect((err as Error).cause).toBeDefined();
  });
});

describe('ownership (finding 3)', () => {
  it('exportToGuest never GEM_CLOSEs a handle the file already had for that dma-buf', async () => {
    const { fake, dev } = setup();
    const gb = await dev.importGuestBuffer(small);
    // exporting the guest buffer's own dma-buf: PRIME returns gb's handle
    fake.failNext.set('toRefs', 'EINVAL');
    await expect(dev.exportToGuest(gb.dmabuf, { domid: 4 })).rejects.toMatchObject({ code: 'EINVAL' });
    expect(gemCloses(fake)).toEqual([]);
    expect(fake.handles(dev.fd)).toContain(gb.handle);
    // and a second, failing export of a buffer already granted keeps the first one's handle
    const mine = newDmaBuf(fake);
    const granted = await dev.exportToGuest(mine, { domid: 4 });
    fake.failNext.set('toRefs', 'EBUSY');
    await expect(dev.exportToGuest(mine, { domid: 4 })).rejects.toMatchObject({ code: 'EBUSY' });
    expect(gemCloses(fake)).toEqual([]);
    await granted.close();
    expect(gemCloses(fake)).toHaveLength(1);
    await expect(gb.close()).resolves.toBe('freed');
    expect(fake.handles(dev.fd)).toEqual([]);
  });

  it('DmaBuf.close() releases every import of it (imports are counted)', async () => {
    const { fake } = setup();
    const drm = DrmDevice.open('/dev/dri/card0', { binding: fake.binding });
    const buf = newDmaBuf(fake);
    const h = drm.importDmaBuf(buf);
    drm.importDmaBuf(buf);
    await buf.close();
    expect(gemCloses(fake)).toEqual([`gem-close ${drm.fd} ${h}`]);
    expect(drm.importCount(h)).toBe(0);
    expect(fake.handles(drm.fd)).toEqual([]);
  });

  it('a DmaBuf and its dup() share one handle: released once, closed once (also by DrmDevice.close)', async () => {
    const { fake } = setup();
    const drm = DrmDevice.open('/dev/dri/card0', { binding: fake.binding });
    const a = newDmaBuf(fake);
    const b = a.dup();
    const h = drm.importDmaBuf(a);
    expect(drm.importDmaBuf(b)).toBe(h);
    drm.release(a);
    drm.release(a); // a has no import left: no effect on b's
    expect(gemCloses(fake)).toEqual([]);
    expect(drm.importCount(h)).toBe(1);
    drm.importDmaBuf(a);
    const fd = drm.fd;
    await drm.close();
    expect(gemCloses(fake)).toEqual([`gem-close ${fd} ${h}`]);
    await a.close();
    await b.close();
    expect(fake.open.size).toBe(1); // only the zcopy device of setup()
  });

  it('GuestBuffer.close() and GrantedBuffer.close() work after the device was closed', async () => {
    const { fake, dev } = setup();
    const devFd = dev.fd;
    const gb = await dev.importGuestBuffer(small);
    const granted = await dev.exportToGuest(newDmaBuf(fake), { domid: 4 });
    await dev.close();
    expect(() => dev.fd).toThrow(ClosedError);
    expect(fake.open.has(devFd)).toBe(true); // kept open for its buffers
    await granted.close();
    await expect(gb.close()).resolves.toBe('freed');
    expect(fake.handles(devFd)).toEqual([]);
    expect(fake.open.has(devFd)).toBe(false); // the last one closed it
    await granted.dmabuf.close();
    expect(fake.open.size).toBe(0);
  });

  it('a failing teardown step does not stop the others', async () => {
    const { fake, dev } = setup();
    const gb = await dev.importGuestBuffer(small);
    const fd = gb.dmabuf.fd;
    fake.failNext.set('gemClose', 'EIO');
    await expect(gb.close()).rejects.toMatchObject({ code: 'EIO' });
    expect(fake.open.has(fd)).toBe(false); // the dma-buf was still closed
    expect(gb.dmabuf.closed).toBe(true);
  });

  it('a mapping holds its DmaBuf, not an fd number: closing the DmaBuf ends it, a reused fd is never touched', async () => {
    const { fake } = setup();
    const a = newDmaBuf(fake);
    const view = a.map('readwrite');
    const fd = a.fd;
    await a.close();
    expect(fake.calls.slice(-3)).toEqual([`sync ${fd} 7`, 'munmap', `close ${fd}`]); // ended before the close
    const b = newDmaBuf(fake);
    expect(b.fd).toBe(fd); // the kernel reuses the number
    fake.calls.length = 0;
    view.closeSync();
    await view.close();
    expect(fake.calls).toEqual([]);
    expect(() => view.buffer).toThrow(ClosedError);
    await b.close();
  });

  it('a grant mapping holds its device fd: unmapped on the right file after the mapper closed', async () => {
    const fake = fakeBinding();
    const mapper = GrantMapper.open({ binding: fake.binding });
    const m = mapper.map(1, [5, 6]);
    const calls = fake.calls.slice();
    const mapperFd = Number(/gntdev-map (\d+)/.exec(calls.join('\n'))![1]);
    await mapper.close();
    expect(() => mapper.map(1, [7])).toThrow(ClosedError);
    const other = fake.binding.open('/dev/other'); // would reuse the number if it were closed
    expect(other).not.toBe(mapperFd);
    await m.close();
    expect(fake.calls.slice(-3)).toEqual(['munmap', `gntdev-unmap ${mapperFd} 0 2`, `close ${mapperFd}`]);
  });

  it('closes the fd when the DmaBuf constructor or DrmDevice.open fails', () => {
    const fake = fakeBinding();
    const fd = fake.binding.open('/dev/fake-dmabuf');
    fake.failNext.set('seekEnd', 'EINVAL');
    expect(() => new DmaBuf(fd, { binding: fake.binding })).toThrow(/dma-buf size/);
    expect(fake.open.has(fd)).toBe(false);
    fake.failNext.set('drmVersion', 'ENOTTY');
    expect(() => DrmDevice.open('/dev/dri/card0', { binding: fake.binding })).toThrow(/not a DRM device/);
    expect(fake.open.size).toBe(0);
  });
});

describe('read-only mappings (finding 4)', () => {
  it("map('read') gives a view that refuses writes with a TypeError (and a type error at compile time)", async () => {
    const { fake } = setup();
    const buf = newDmaBuf(fake);
    const view = buf.map('read');
    expect(view.writable).toBe(false);
    expect(view.bytes.length).toBe(8 * 4096);
    expect(view.bytes[0]).toBe(0);
    expect(view.bytes.readUInt32LE(4)).toBe(0);
    expect(() => {
      // @ts-expect-error read-only
      view.bytes[0] = 1;
    }).toThrow(TypeError);
    // @ts-expect-error no fill on a read-only view
    expect(() => view.bytes.fill(1)).toThrow(TypeError);
    // @ts-expect-error no writeUInt32LE either
    expect(() => view.bytes.writeUInt32LE(1, 0)).toThrow(TypeError);
    // @ts-expect-error .buffer would be a writable view
    expect(() => view.bytes.buffer).toThrow(TypeError);
    // @ts-expect-error the mapping has no writable buffer
    expect(() => view.buffer).toThrow(/read-only mapping/);
    const sub = view.bytes.subarray(0, 4);
    expect(() => {
      (sub as unknown as Uint8Array)[0] = 1;
    }).toThrow(TypeError);
    expect(sub.valueOf()).toBe(sub); // not the writable Buffer behind it
    expect(view.bytes[0]).toBe(0);
    const copy = view.toBuffer();
    copy[0] = 9; // a copy is writable, and not the pages
    expect(view.bytes[0]).toBe(0);
    await view.close();
    expect(() => view.bytes).toThrow(ClosedError);
    await buf.close();
  });

  it('GrantMapper.map is read-only unless asked for writable', async () => {
    const fake = fakeBinding();
    const mapper = GrantMapper.open({ binding: fake.binding });
    const ro = mapper.map(1, [5]);
    expect(() => {
      // @ts-expect-error read-only
      ro.bytes[0] = 1;
    }).toThrow(TypeError);
    const rw = mapper.map(1, [6], { writable: true });
    rw.buffer[0] = 1;
    expect(rw.bytes[0]).toBe(1);
    await ro.close();
    await rw.close();
    await mapper.close();
    expect(fake.open.size).toBe(0);
  });
});

describe('one lifetime model (finding 6)', () => {
  it('every resource closes with a promise and has Symbol.asyncDispose, mappings included', async () => {
    const { fake, dev } = setup();
    const drm = DrmDevice.open('/dev/dri/card0', { binding: fake.binding });
    const mapper = GrantMapper.open({ binding: fake.binding });
    const gb = await dev.importGuestBuffer(small);
    const dmabuf = newDmaBuf(fake);
    const granted = await dev.exportToGuest(dmabuf, { domid: 4 });
    const view = dmabuf.map('readwrite');
    const m = mapper.map(1, [5]);
    const all = [view, m, granted, gb, dmabuf, drm, mapper, dev];
    for (const r of all) expect(typeof (r as unknown as AsyncDisposable)[Symbol.asyncDispose]).toBe('function');
    for (const r of all) {
      const p = r.close();
      expect(p).toBeInstanceOf(Promise);
      await p;
    }
    expect(fake.open.size).toBe(0);
  });

  it('await using closes in reverse order', async () => {
    const { fake, dev } = setup();
    {
      await using gb = await dev.importGuestBuffer(small);
      await using view = gb.dmabuf.map('read');
      expect(view.bytes.length).toBeGreaterThan(0);
    }
    await dev.close();
    expect(fake.open.size).toBe(0);
  });

  it('released() takes { timeoutMs, signal }, bounds the time-out, and rejects on abort', async () => {
    const { fake, dev } = setup();
    const gb = await dev.importGuestBuffer(small);
    await expect(gb.released({ timeoutMs: 60_001 })).rejects.toThrow(ValidationError);
    await expect(gb.released({ timeoutMs: -1 })).rejects.toThrow(ValidationError);
    expect(fake.calls.filter((c) => c.startsWith('wait-free'))).toEqual([]);
    fake.waitResult = 'hang';
    const ac = new AbortController();
    const p = gb.released({ timeoutMs: 60_000, signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    await expect(gb.released({ signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    fake.waitResult = 'ok';
    await expect(gb.close({ timeoutMs: 100 })).resolves.toBe('freed');
  });

  it('ZeroCopyDevice.close() refuses new calls at once and waits for in-flight ones', async () => {
    const { fake, dev } = setup();
    const pending = dev.importGuestBuffer(small);
    const closing = dev.close();
    await expect(dev.importGuestBuffer(small)).rejects.toThrow(ClosedError);
    await expect(dev.exportToGuest(newDmaBuf(fake), { domid: 1 })).rejects.toThrow(ClosedError);
    const buf = await pending;
    await closing;
    expect(fake.open.has(100)).toBe(true); // the device fd (100) stays open for buf
    await buf.close();
    expect(fake.open.has(100)).toBe(false);
  });

  it('throws ClosedError after close, and close is idempotent', async () => {
    const { fake, dev } = setup();
    const buf = newDmaBuf(fake);
    const drm = DrmDevice.open('/dev/dri/card0', { binding: fake.binding });
    await buf.close();
    await buf.close();
    expect(() => buf.fd).toThrow(ClosedError);
    expect(() => buf.map()).toThrow(/DmaBuf is closed/);
    expect(() => drm.importDmaBuf(buf)).toThrow(ClosedError);
    await drm.close();
    expect(() => drm.importDmaBuf(newDmaBuf(fake))).toThrow(ClosedError);
    await dev.close();
    await dev.close();
    await expect(dev.importGuestBuffer(small)).rejects.toThrow(ClosedError);
  });
});

describe('DmaBuf and DrmDevice', () => {
  it('counts imports per handle: same buffer, same handle; closed with the last release', () => {
    const { fake } = setup();
    const drm = DrmDevice.open('/dev/dri/card0', { binding: fake.binding });
    const buf = newDmaBuf(fake);
    const h1 = drm.importDmaBuf(buf);
    const h2 = drm.importDmaBuf(buf);
    expect(h2).toBe(h1);
    expect(drm.importCount(h1)).toBe(2);
    drm.release(buf);
    expect(gemCloses(fake)).toEqual([]);
    drm.release(buf);
    expect(gemCloses(fake)).toEqual([`gem-close ${drm.fd} ${h1}`]);
    expect(drm.importCount(h1)).toBe(0);
  });

  it('brackets CPU access with sync start/end and unmaps once', () => {
    const { fake } = setup();
    const buf = newDmaBuf(fake);
    const view = buf.map('readwrite');
    expect(view.buffer.length).toBe(8 * 4096);
    view.closeSync();
    view.closeSync();
    expect(fake.calls.filter((c) => c.startsWith('sync') || c === 'munmap')).toEqual([`sync ${buf.fd} 3`, `sync ${buf.fd} 7`, 'munmap']);
  });

  it('exports a dma-buf to a guest and undoes its own import on failure', async () => {
    const { fake, dev } = setup();
    const buf = newDmaBuf(fake);
    const granted = await dev.exportToGuest(buf, { domid: 4 });
    expect(granted.refs).toHaveLength(8);
    await granted.close();
    await granted.close();
    expect(gemCloses(fake)).toHaveLength(1);
    fake.failNext.set('toRefs', 'EINVAL');
    await expect(dev.exportToGuest(buf, { domid: 4 })).rejects.toMatchObject({ code: 'EINVAL' });
    expect(fake.calls.at(-1)).toMatch(/^gem-close /);
    expect(fake.handles(dev.fd)).toEqual([]);
  });
});
