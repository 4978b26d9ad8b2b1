/**
 * An in-memory stand-in for the addon, recording every call, so the TS
 * layer's policy (validation, teardown order, refcounts, error mapping) can
 * be tested anywhere. It models what the ownership rules depend on: fd
 * numbers are reused (lowest free one, as the kernel does), a dup'ed fd is
 * the same dma-buf, and PRIME gives one GEM handle per dma-buf per file
 * (importing it again returns the handle the file already has), GEM_CLOSE of
 * a handle the file does not have fails with EINVAL.
 */
import type { NativeBinding, NativeError } from '../../lib/binding.js';

export function errnoError(code: string, errno: number, syscall: string): NativeError {
  return Object.assign(new Error(`${code}: fake, ${syscall}`), { code, errno: -errno, syscall });
}

export interface Fake {
  binding: NativeBinding;
  calls: string[];
  /** Open fds. */
  open: Set<number>;
  /** GEM handles each open file holds: fd -> handles. */
  handles(fd: number): number[];
  /** The dma-buf object behind an fd (dup'ed fds share it). */
  objectOf(fd: number): number | undefined;
  /** Next WAIT_FREE outcome. */
  waitResult: 'ok' | 'ENOENT' | 'ETIMEDOUT' | 'hang';
  /** Active FdWatch polls. */
  watches: number;
  /** Frees every buffer a wait fd is open for (its fd polls readable). */
  freeAll(): void;
  /** Fail the next call of this name with this errno code. */
  failNext: Map<string, string>;
  /** Fail every call of this name with this errno code (a module without an ioctl). */
  failAlways: Map<string, string>;
}

const ERRNO: Record<string, number> = { EINVAL: 22, EIO: 5, EBADF: 9, ENOTTY: 25, EBUSY: 16 };

export function fakeBinding(): Fake {
  let nextHandle = 1;
  let nextObject = 1;
  const calls: string[] = [];
  const fds = new Map<number, { obj: number; handles: Map<number, number> /* handle -> obj */ }>();
  const open = new Set<number>();
  const waitFds = new Map<number, boolean>(); // wait fd -> freed
  const fake: Fake = {
    binding: undefined as unknown as NativeBinding,
    calls,
    open,
    handles: (fd) => [...(fds.get(fd)?.handles.keys() ?? [])],
    objectOf: (fd) => fds.get(fd)?.obj,
    waitResult: 'ok',
    watches: 0,
    freeAll: () => {
      for (const fd of waitFds.keys()) waitFds.set(fd, true);
    },
    failNext: new Map(),
    failAlways: new Map(),
  };
  const fail = (code: string, syscall: string): never => {
    throw errnoError(code, ERRNO[code] ?? 5, syscall);
  };
  const maybeFail = (name: string, syscall: string) => {
    const always = fake.failAlways.get(name);
    if (always) fail(always, syscall);
    const code = fake.failNext.get(name);
    if (code) {
      fake.failNext.delete(name);
      fail(code, syscall);
    }
  };
  const newFd = (obj = nextObject++) => {
    let fd = 100;
    while (open.has(fd)) fd++;
    open.add(fd);
    fds.set(fd, { obj, handles: new Map() });
    return fd;
  };
  const file = (fd: number, syscall: string) => fds.get(fd) ?? fail('EBADF', syscall);
  const handleFor = (fd: number, obj: number) => {
    const f = file(fd, 'DRM_IOCTL_PRIME_FD_TO_HANDLE');
    for (const [h, o] of f.handles) if (o === obj) return h;
    const h = nextHandle++;
    f.handles.set(h, obj);
    return h;
  };
  const doClose = (fd: number) => {
    calls.push(`close ${fd}`);
    if (!open.delete(fd)) fail('EBADF', 'close');
    fds.delete(fd);
    waitFds.delete(fd);
  };
  const b: Partial<NativeBinding> = {
    open(path: string) {
      calls.push(`open ${path}`);
      maybeFail('open', 'open');
      return newFd();
    },
    close: doClose,
    async closeAsync(fd: number) {
      doClose(fd);
    },
    dup(fd: number) {
      calls.push(`dup ${fd}`);
      return newFd(file(fd, 'dup').obj);
    },
    seekEnd(fd: number) {
      maybeFail('seekEnd', 'lseek');
      file(fd, 'lseek');
      return 8 * 4096;
    },
    drmVersion(fd: number) {
      maybeFail('drmVersion', 'DRM_IOCTL_VERSION');
      file(fd, 'DRM_IOCTL_VERSION');
      return { major: 1, minor: 0, patchlevel: 1, name: 'xen_drm_zcopy', date: '', desc: '' };
    },
    drmPrimeHandleToFd(fd: number, handle: number) {
      calls.push(`handle-to-fd ${handle}`);
      maybeFail('handleToFd', 'DRM_IOCTL_PRIME_HANDLE_TO_FD');
      const obj = file(fd, 'DRM_IOCTL_PRIME_HANDLE_TO_FD').handles.get(handle) ?? fail('ENOENT', 'DRM_IOCTL_PRIME_HANDLE_TO_FD');
      return newFd(obj);
    },
    drmPrimeFdToHandle(fd: number, dmabuf: number) {
      calls.push(`fd-to-handle ${fd} ${dmabuf}`);
      maybeFail('fdToHandle', 'DRM_IOCTL_PRIME_FD_TO_HANDLE');
      return handleFor(fd, file(dmabuf, 'DRM_IOCTL_PRIME_FD_TO_HANDLE').obj);
    },
    drmGemClose(fd: number, handle: number) {
      calls.push(`gem-close ${fd} ${handle}`);
      maybeFail('gemClose', 'DRM_IOCTL_GEM_CLOSE');
      if (!file(fd, 'DRM_IOCTL_GEM_CLOSE').handles.delete(handle)) fail('EINVAL', 'DRM_IOCTL_GEM_CLOSE');
    },
    drmModeCreateDumb(fd, width, height, bpp) {
      const h = nextHandle++;
      file(fd, 'DRM_IOCTL_MODE_CREATE_DUMB').handles.set(h, nextObject++);
      return { handle: h, pitch: (width * bpp) / 8, size: (width * height * bpp) / 8 };
    },
    dmabufSync(fd: number, flags: number) {
      calls.push(`sync ${fd} ${flags}`);
      file(fd, 'DMA_BUF_IOCTL_SYNC');
    },
    DMA_BUF_SYNC: { READ: 1, WRITE: 2, START: 0, END: 4 },
    mmap(fd: number, length: number) {
      calls.push(`mmap ${fd} ${length}`);
      file(fd, 'mmap');
      return new ArrayBuffer(length);
    },
    munmap() {
      calls.push('munmap');
      return true;
    },
    gntallocAlloc(fd, domid, count) {
      calls.push(`gntalloc ${fd} ${domid} ${count}`);
      file(fd, 'IOCTL_GNTALLOC_ALLOC_GREF');
      return { index: 0, refs: Uint32Array.from({ length: count }, (_, i) => 500 + i) };
    },
    gntallocDealloc(fd, index, count) {
      calls.push(`gntalloc-dealloc ${fd} ${index} ${count}`);
      file(fd, 'IOCTL_GNTALLOC_DEALLOC_GREF');
    },
    gntdevMapGrantRefs(fd, domid, refs) {
      calls.push(`gntdev-map ${fd} ${domid} ${refs.length}`);
      file(fd, 'IOCTL_GNTDEV_MAP_GRANT_REF');
      return 0;
    },
    gntdevUnmapGrantRef(fd, index, count) {
      calls.push(`gntdev-unmap ${fd} ${index} ${count}`);
      file(fd, 'IOCTL_GNTDEV_UNMAP_GRANT_REF');
    },
    async zcopyFromRefs(fd, domid, refs, width, height, bpp) {
      calls.push(`from-refs ${domid} ${refs.length}`);
      maybeFail('fromRefs', 'DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS');
      const h = nextHandle++;
      file(fd, 'DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS').handles.set(h, nextObject++);
      return { handle: h, pitch: (width * bpp) / 8, size: (width * height * bpp) / 8, waitHandle: 7 };
    },
    async zcopyImport(fd, domid, refs, width, height, bpp) {
      return b.zcopyImportSync!(fd, domid, refs, width, height, bpp);
    },
    zcopyImportSync(fd, domid, refs, width, height, bpp) {
      // the addon's checks, on its copy: count, 0, repeats
      const need = Math.ceil((width * height * bpp) / 8 / 4096);
      const bad = refs.length < need ? 'too few' : refs.findIndex((r, i) => r === 0 || refs.indexOf(r) < i);
      if (bad !== -1) throw Object.assign(new RangeError(`fake: bad refs (${bad})`), { code: 'ERR_XZC_BAD_REFS' });
      calls.push(`from-refs ${domid} ${refs.length}`);
      maybeFail('fromRefs', 'DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS');
      const h = nextHandle++;
      const f = file(fd, 'DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS');
      const obj = nextObject++;
      f.handles.set(h, obj);
      calls.push(`handle-to-fd ${h}`);
      try {
        maybeFail('handleToFd', 'DRM_IOCTL_PRIME_HANDLE_TO_FD');
      } catch (e) {
        calls.push(`gem-close ${fd} ${h}`);
        f.handles.delete(h);
        throw e;
      }
      return { handle: h, pitch: (width * bpp) / 8, size: refs.length * 4096, waitHandle: 7, dmabufFd: newFd(obj) };
    },
    async zcopyRelease(fd, handle, dmabufFd, waitHandle) {
      return b.zcopyReleaseSync!(fd, handle, dmabufFd, waitHandle);
    },
    zcopyReleaseSync(fd, handle, dmabufFd, waitHandle, gemCloses) {
      // the importers' GEM_CLOSEs first, as the addon makes them
      let importerErr: NativeError | undefined;
      for (let i = 0; i + 1 < (gemCloses?.length ?? 0); i += 2) {
        try {
          b.drmGemClose!(gemCloses![i]!, gemCloses![i + 1]!);
        } catch (e) {
          importerErr ??= e as NativeError;
        }
      }
      const f = file(fd, 'DRM_IOCTL_GEM_CLOSE');
      let gemErr: unknown;
      if (handle !== 0) {
        calls.push(`gem-close ${fd} ${handle}`);
        try {
          maybeFail('gemClose', 'DRM_IOCTL_GEM_CLOSE');
          if (!f.handles.delete(handle)) fail('EINVAL', 'DRM_IOCTL_GEM_CLOSE');
        } catch (e) {
          gemErr = e;
        }
      }
      if (dmabufFd >= 0) doClose(dmabufFd);
      if (gemErr !== undefined) throw gemErr;
      if (fake.waitResult === 'ok') fake.freeAll(); // the last close freed the buffer
      const more = importerErr === undefined ? {} : { gemCloseError: importerErr };
      if (waitHandle === 0) return { freed: false, waitFd: -1, ...more };
      const w = b.zcopyWaitFreeFd!(fd, waitHandle);
      if (b.fdReadable!(w)) {
        doClose(w);
        return { freed: true, waitFd: -1, ...more };
      }
      return { freed: false, waitFd: w, ...more };
    },
    zcopyWaitFreeFd(fd, waitHandle) {
      calls.push(`wait-free-fd ${waitHandle}`);
      file(fd, 'DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE_FD');
      maybeFail('waitFreeFd', 'DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE_FD');
      if (fake.waitResult === 'ENOENT') throw errnoError('ENOENT', 2, 'DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE_FD');
      const w = newFd();
      waitFds.set(w, fake.waitResult === 'ok');
      return w;
    },
    fdReadable(fd) {
      return waitFds.get(fd) === true;
    },
    FdWatch: class {
      #fd: number;
      #on = false;
      constructor(fd: number) {
        this.#fd = fd;
      }
      start(cb: (err: NativeError | null) => void) {
        this.#on = true;
        fake.watches++;
        const poll = () => {
          if (!this.#on) return;
          if (waitFds.get(this.#fd) === true) cb(null);
          else setTimeout(poll, 5);
        };
        poll();
      }
      stop() {
        if (this.#on) fake.watches--;
        this.#on = false;
      }
    },
    async zcopyToRefs(fd, handle, domid, count) {
      calls.push(`to-refs ${handle} ${domid} ${count}`);
      maybeFail('toRefs', 'DRM_IOCTL_XEN_ZCOPY_DUMB_TO_REFS');
      return Uint32Array.from({ length: count }, (_, i) => 100 + i);
    },
    async zcopyWaitFree(fd, waitHandle, timeoutMs) {
      calls.push(`wait-free ${waitHandle} ${timeoutMs}`);
      file(fd, 'DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE');
      if (fake.waitResult === 'hang') return new Promise<void>(() => {});
      if (fake.waitResult === 'ENOENT') throw errnoError('ENOENT', 2, 'DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE');
      if (fake.waitResult === 'ETIMEDOUT') throw errnoError('ETIMEDOUT', 110, 'DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE');
    },
    zcopyIoctlRaw: () => 25,
  };
  fake.binding = b as NativeBinding;
  return fake;
}
