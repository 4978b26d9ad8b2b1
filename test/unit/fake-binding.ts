/**
 * An in-memory stand-in for the addon, recording every call, so the TS
 * layer's policy (validation, teardown order, refcounts, error mapping) can
 * be tested anywhere.
 */
import type { NativeBinding, NativeError } from '../../lib/binding.js';

export function errnoError(code: string, errno: number, syscall: string): NativeError {
  return Object.assign(new Error(`${code}: fake, ${syscall}`), { code, errno: -errno, syscall });
}

export interface Fake {
  binding: NativeBinding;
  calls: string[];
  open: Set<number>;
  /** Next WAIT_FREE outcome. */
  waitResult: 'ok' | 'ENOENT' | 'ETIMEDOUT';
  /** Fail the next call of this name with this errno code. */
  failNext: Map<string, string>;
}

export function fakeBinding(): Fake {
  let nextFd = 100;
  let nextHandle = 1;
  const calls: string[] = [];
  const open = new Set<number>();
  const dmabufHandles = new Map<number, number>(); // dma-buf fd -> handle on the importer
  const fake: Fake = { binding: undefined as unknown as NativeBinding, calls, open, waitResult: 'ok', failNext: new Map() };
  const maybeFail = (name: string, syscall: string) => {
    const code = fake.failNext.get(name);
    if (code) {
      fake.failNext.delete(name);
      throw errnoError(code, code === 'EINVAL' ? 22 : 5, syscall);
    }
  };
  const newFd = () => {
    const fd = nextFd++;
    open.add(fd);
    return fd;
  };
  const b: Partial<NativeBinding> = {
    open(path: string) {
      calls.push(`open ${path}`);
      maybeFail('open', 'open');
      return newFd();
    },
    close(fd: number) {
      calls.push(`close ${fd}`);
      if (!open.delete(fd)) throw errnoError('EBADF', 9, 'close');
    },
    async closeAsync(fd: number) {
      calls.push(`close ${fd}`);
      if (!open.delete(fd)) throw errnoError('EBADF', 9, 'close');
    },
    dup(fd: number) {
      calls.push(`dup ${fd}`);
      return newFd();
    },
    seekEnd: () => 8 * 4096,
    drmVersion: () => ({ major: 1, minor: 0, patchlevel: 1, name: 'xen_drm_zcopy', date: '', desc: '' }),
    drmPrimeHandleToFd(fd: number, handle: number) {
      calls.push(`handle-to-fd ${handle}`);
      maybeFail('handleToFd', 'DRM_IOCTL_PRIME_HANDLE_TO_FD');
      return newFd();
    },
    drmPrimeFdToHandle(fd: number, dmabuf: number) {
      calls.push(`fd-to-handle ${fd} ${dmabuf}`);
      maybeFail('fdToHandle', 'DRM_IOCTL_PRIME_FD_TO_HANDLE');
      const h = dmabufHandles.get(dmabuf) ?? nextHandle++;
      dmabufHandles.set(dmabuf, h);
      return h;
    },
    drmGemClose(fd: number, handle: number) {
      calls.push(`gem-close ${fd} ${handle}`);
    },
    drmModeCreateDumb: (_fd, width, height, bpp) => ({ handle: nextHandle++, pitch: (width * bpp) / 8, size: (width * height * bpp) / 8 }),
    dmabufSync(fd: number, flags: number) {
      calls.push(`sync ${fd} ${flags}`);
    },
    DMA_BUF_SYNC: { READ: 1, WRITE: 2, START: 0, END: 4 },
    mmap(fd: number, length: number) {
      calls.push(`mmap ${fd} ${length}`);
      return new ArrayBuffer(length);
    },
    munmap() {
      calls.push('munmap');
      return true;
    },
    async zcopyFromRefs(fd, domid, refs, width, height, bpp) {
      calls.push(`from-refs ${domid} ${refs.length}`);
      maybeFail('fromRefs', 'DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS');
      return { handle: nextHandle++, pitch: (width * bpp) / 8, size: (width * height * bpp) / 8, waitHandle: 7 };
    },
    async zcopyToRefs(fd, handle, domid, count) {
      calls.push(`to-refs ${handle} ${domid} ${count}`);
      maybeFail('toRefs', 'DRM_IOCTL_XEN_ZCOPY_DUMB_TO_REFS');
      return Uint32Array.from({ length: count }, (_, i) => 100 + i);
    },
    async zcopyWaitFree(fd, waitHandle, timeoutMs) {
      calls.push(`wait-free ${waitHandle} ${timeoutMs}`);
      if (fake.waitResult === 'ENOENT') throw errnoError('ENOENT', 2, 'DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE');
      if (fake.waitResult === 'ETIMEDOUT') throw errnoError('ETIMEDOUT', 110, 'DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE');
    },
    zcopyIoctlRaw: () => 25,
  };
  fake.binding = b as NativeBinding;
  return fake;
}
