/** The TS policy layer against a fake binding: validation, teardown, refcounts, errors. */
import { describe, expect, it } from 'vitest';

import {
  bufferGeometry, checkRefs, ClosedError, DmaBuf, DrmDevice, TimeoutError, ValidationError, XenZcopySystemError, ZeroCopyDevice,
} from '../../lib/index.js';
import { fakeBinding } from './fake-binding.js';

const refs = (n: number, start = 1) => Uint32Array.from({ length: n }, (_, i) => start + i);

function setup() {
  const fake = fakeBinding();
  const dev = ZeroCopyDevice.open({ binding: fake.binding, path: '/dev/dri/card9' });
  return { fake, dev };
}

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
  });

  it('never reaches the kernel with bad input', async () => {
    const { fake, dev } = setup();
    const bad = [
      { domid: -1, refs: refs(2025), width: 1920, height: 1080, bpp: 32 },
      { domid: 0x7ff0, refs: refs(2025), width: 1920, height: 1080, bpp: 32 },
      { domid: 1, refs: refs(2024), width: 1920, height: 1080, bpp: 32 },
      { domid: 1, refs: refs(1), width: 0, height: 1, bpp: 32 },
    ];
    for (const opts of bad) {
      expect(() => dev.importGuestBuffer(opts)).toThrow(ValidationError);
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
    expect(fake.calls).toEqual([
      `gem-close ${vgem.fd} ${h}`,
      `gem-close ${dev.fd} ${zcopyHandle}`,
      `close ${dmabufFd}`,
      'wait-free 7 3000',
    ]);
    expect(buf.dmabuf.closed).toBe(true);
    // idempotent
    await expect(buf.close()).resolves.toBe('freed');
    expect(fake.calls.filter((c) => c.startsWith('wait-free'))).toHaveLength(1);
  });

  it('maps ENOENT to already-freed and ETIMEDOUT to a typed timeout', async () => {
    const { fake, dev } = setup();
    const buf = await dev.importGuestBuffer({ domid: 3, refs: refs(1), width: 16, height: 16, bpp: 32 });
    fake.waitResult = 'ETIMEDOUT';
    const err = await buf.released(50).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ code: 'ETIMEDOUT', errno: -110, syscall: 'DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE' });
    fake.waitResult = 'ENOENT';
    await expect(buf.released(50)).resolves.toBe('already-freed');
  });

  it('undoes FROM_REFS when the export fails (transactional)', async () => {
    const { fake, dev } = setup();
    fake.failNext.set('handleToFd', 'EIO');
    const err = await dev.importGuestBuffer({ domid: 3, refs: refs(1), width: 16, height: 16, bpp: 32 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XenZcopySystemError);
    expect(err).toMatchObject({ code: 'EIO', syscall: 'DRM_IOCTL_PRIME_HANDLE_TO_FD' });
    expect(fake.calls.at(-1)).toMatch(/^gem-close /);
  });

  it('wraps kernel errors with context, keeping errno, code and syscall', async () => {
    const { fake, dev } = setup();
    fake.failNext.set('fromRefs', 'EINVAL');
    const err = await dev.importGuestBuffer({ domid: 9, refs: refs(1), width: 16, height: 16, bpp: 32 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EINVAL', errno: -22, syscall: 'DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS' });
    expect((err as Error).message).toMatch(/mapping 1 pages granted by domain 9/);
    expect((err as Error).cause).toBeDefined();
  });
});

describe('DmaBuf and DrmDevice', () => {
  it('counts imports per handle: same buffer, same handle; closed with the last release', () => {
    const { fake } = setup();
    const drm = DrmDevice.open('/dev/dri/card0', { binding: fake.binding });
    const buf = new DmaBuf(fake.binding.dup(1), { binding: fake.binding });
    const h1 = drm.importDmaBuf(buf);
    const h2 = drm.importDmaBuf(buf);
    expect(h2).toBe(h1);
    expect(drm.importCount(h1)).toBe(2);
    drm.release(buf);
    expect(fake.calls.filter((c) => c.startsWith('gem-close'))).toEqual([]);
    drm.release(buf);
    expect(fake.calls.filter((c) => c.startsWith('gem-close'))).toEqual([`gem-close ${drm.fd} ${h1}`]);
    expect(drm.importCount(h1)).toBe(0);
  });

  it('brackets CPU access with sync start/end and unmaps once', () => {
    const { fake } = setup();
    const buf = new DmaBuf(fake.binding.dup(1), { binding: fake.binding });
    const view = buf.map('readwrite');
    expect(view.buffer.length).toBe(8 * 4096);
    view.end();
    view.end();
    expect(fake.calls.filter((c) => c.startsWith('sync') || c === 'munmap')).toEqual([`sync ${buf.fd} 3`, `sync ${buf.fd} 7`, 'munmap']);
  });

  it('throws ClosedError after close, and close is idempotent', async () => {
    const { fake, dev } = setup();
    const buf = new DmaBuf(fake.binding.dup(1), { binding: fake.binding });
    buf.close();
    buf.close();
    expect(() => buf.fd).toThrow(ClosedError);
    expect(() => buf.map()).toThrow(/DmaBuf is closed/);
    await dev.close();
    await dev.close();
    expect(() => dev.importGuestBuffer({ domid: 1, refs: refs(1), width: 1, height: 1, bpp: 32 })).toThrow(ClosedError);
    expect(fake.open.size).toBe(0);
  });

  it('lets in-flight calls finish before the device closes', async () => {
    const { fake, dev } = setup();
    const pending = dev.importGuestBuffer({ domid: 1, refs: refs(1), width: 16, height: 16, bpp: 32 });
    const closing = dev.close();
    const buf = await pending;
    await closing;
    expect(fake.calls.indexOf(`close ${100}`)).toBeGreaterThan(fake.calls.findIndex((c) => c.startsWith('handle-to-fd')));
    buf.dmabuf.close();
  });

  it('exports a dma-buf to a guest and undoes the import on failure', async () => {
    const { fake, dev } = setup();
    const buf = new DmaBuf(fake.binding.dup(1), { binding: fake.binding });
    const granted = await dev.exportToGuest(buf, { domid: 4 });
    expect(granted.refs).toHaveLength(8);
    granted.close();
    granted.close();
    expect(fake.calls.filter((c) => c.startsWith('gem-close'))).toHaveLength(1);
    fake.failNext.set('toRefs', 'EINVAL');
    await expect(dev.exportToGuest(buf, { domid: 4 })).rejects.toMatchObject({ code: 'EINVAL' });
    expect(fake.calls.at(-1)).toMatch(/^gem-close /);
  });
});
