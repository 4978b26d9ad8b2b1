/**
 * The Dom0 backend API: import a guest's granted pages as a dma-buf
 * (FROM_REFS), grant a Dom0 dma-buf's pages to a guest (TO_REFS), hand
 * dma-bufs to real DRM drivers, and tear everything down in the documented
 * order.
 *
 * @module
 */
import { readdirSync } from 'node:fs';

import { native, PROT_READ, PROT_WRITE, type NativeBinding } from './binding.js';
import { ClosedError, DeviceNotFoundError, fromNative, ValidationError } from './errors.js';

const PAGE_SIZE = 4096;
/** Largest domain id a guest can have (DOMID_FIRST_RESERVED - 1). */
export const MAX_DOMID = 0x7fef;
/** WAIT_FREE time-out of the Xen display backend (displ_be). */
export const DEFAULT_RELEASE_TIMEOUT_MS = 3000;

/** How a released buffer ended: freed by this wait, or before it. */
export type ReleaseResult = 'freed' | 'already-freed';

/** Pixel layout of a buffer; DRM fourcc only for the formats we can name. */
export interface BufferFormat {
  width: number;
  height: number;
  /** Bits per pixel. */
  bpp: number;
  /** Bytes per row. */
  pitch: number;
}

export interface OpenOptions {
  /** Device node; by default the /dev/dri/card* whose driver is xen_drm_zcopy. */
  path?: string;
  /** The addon, or a fake in unit tests. */
  binding?: NativeBinding;
}

export interface ImportOptions {
  /** The granting domain. */
  domid: number;
  /** One grant reference per page, in page order. */
  refs: Uint32Array | readonly number[];
  width: number;
  height: number;
  /** Bits per pixel, a multiple of 8 (32 for XRGB8888). */
  bpp: number;
}

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ValidationError(`${name} must be an integer in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}

/** Pages a width x height x bpp buffer needs, and its pitch. */
export function bufferGeometry(width: number, height: number, bpp: number): { pitch: number; size: number; pages: number } {
  checkInt('width', width, 1, 16384);
  checkInt('height', height, 1, 16384);
  checkInt('bpp', bpp, 8, 128);
  if (bpp % 8 !== 0) throw new ValidationError(`bpp must be a multiple of 8, got ${bpp}`);
  const pitch = (width * bpp) / 8;
  const size = pitch * height;
  return { pitch, size, pages: Math.ceil(size / PAGE_SIZE) };
}

/** Validates grant references: integers, non-zero, no duplicates. */
export function checkRefs(refs: Uint32Array | readonly number[], expected?: number): Uint32Array {
  if (!(refs instanceof Uint32Array) && !Array.isArray(refs)) {
    throw new ValidationError('refs must be a Uint32Array or an array of numbers');
  }
  if (expected !== undefined && refs.length < expected) {
    throw new ValidationError(`refs has ${refs.length} entries, the buffer needs ${expected} pages`);
  }
  const out = new Uint32Array(refs.length);
  const seen = new Set<number>();
  for (let i = 0; i < refs.length; i++) {
    const r = refs[i];
    if (typeof r !== 'number' || !Number.isInteger(r) || r < 1 || r > 0xffffffff) {
      throw new ValidationError(`refs[${i}] must be a grant reference in 1..2^32-1 (0 is never a data page), got ${String(r)}`);
    }
    if (seen.has(r)) throw new ValidationError(`refs[${i}] repeats grant reference ${r}`);
    seen.add(r);
    out[i] = r;
  }
  return out;
}

const leaks = new FinalizationRegistry<{ fd: number; binding: NativeBinding; what: string }>((held) => {
  process.emitWarning(`${held.what} (fd ${held.fd}) was garbage-collected without close(); closing it now`, 'XenZcopyLeakWarning');
  try {
    held.binding.close(held.fd);
  } catch {
    // already gone
  }
});

/** A CPU view of a mapped dma-buf, bracketed by DMA_BUF_IOCTL_SYNC. */
export interface MappedDmaBuf {
  /** The pages, valid until end(). */
  readonly buffer: Buffer;
  /** Ends CPU access (sync end) and unmaps; idempotent. */
  end(): void;
}

/** A dma-buf file descriptor with its layout. Owns the fd. */
export class DmaBuf {
  #fd: number;
  readonly size: number;
  readonly format: BufferFormat | undefined;
  readonly #b: NativeBinding;
  /** Importers holding a GEM handle for this buffer (released before the fd). */
  readonly imports = new Set<DrmDevice>();

  /** Takes ownership of `fd`. */
  constructor(fd: number, opts: { binding?: NativeBinding; format?: BufferFormat } = {}) {
    this.#b = opts.binding ?? native();
    this.#fd = fd;
    this.format = opts.format;
    try {
      this.size = this.#b.seekEnd(fd);
    } catch (e) {
      throw fromNative(e, 'reading the dma-buf size');
    }
    leaks.register(this, { fd, binding: this.#b, what: 'DmaBuf' }, this);
  }

  get fd(): number {
    if (this.#fd < 0) throw new ClosedError('DmaBuf');
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Maps the buffer for CPU access: 'read', 'write' or 'readwrite'. */
  map(access: 'read' | 'write' | 'readwrite' = 'read'): MappedDmaBuf {
    const fd = this.fd;
    const S = this.#b.DMA_BUF_SYNC;
    const dir = (access !== 'write' ? S.READ : 0) | (access !== 'read' ? S.WRITE : 0);
    const prot = (access !== 'write' ? PROT_READ : 0) | (access !== 'read' ? PROT_WRITE | PROT_READ : 0);
    let ab: ArrayBuffer;
    try {
      ab = this.#b.mmap(fd, this.size, prot, 0);
    } catch (e) {
      throw fromNative(e, 'mapping the dma-buf');
    }
    try {
      this.#b.dmabufSync(fd, S.START | dir);
    } catch (e) {
      this.#b.munmap(ab);
      throw fromNative(e, 'starting CPU access');
    }
    let ended = false;
    const b = this.#b;
    return {
      buffer: Buffer.from(ab),
      end() {
        if (ended) return;
        ended = true;
        try {
          b.dmabufSync(fd, S.END | dir);
        } finally {
          b.munmap(ab);
        }
      },
    };
  }

  /** A second owner of the same buffer (a dup'ed fd). */
  dup(): DmaBuf {
    try {
      return new DmaBuf(this.#b.dup(this.fd), { binding: this.#b, format: this.format });
    } catch (e) {
      throw fromNative(e, 'duplicating the dma-buf fd');
    }
  }

  /** Releases importers' handles, then closes the fd. Idempotent. */
  close(): void {
    const fd = this.#detach();
    if (fd >= 0) this.#b.close(fd);
  }

  /**
   * Like close(), but the close(2) runs off the JS thread: closing the last
   * reference to a guest buffer unmaps all its grants inside the kernel.
   */
  async closeAsync(): Promise<void> {
    const fd = this.#detach();
    if (fd >= 0) await this.#b.closeAsync(fd);
  }

  #detach(): number {
    if (this.#fd < 0) return -1;
    for (const dev of [...this.imports]) dev.release(this);
    const fd = this.#fd;
    this.#fd = -1;
    leaks.unregister(this);
    return fd;
  }
}

/** A DRM device (e.g. vgem or a real KMS driver) that imports dma-bufs. */
export class DrmDevice {
  #fd: number;
  readonly path: string;
  readonly driver: string;
  readonly #b: NativeBinding;
  /** Import reference counts by GEM handle; one handle per dma-buf. */
  readonly #handles = new Map<number, number>();
  readonly #byBuf = new Map<DmaBuf, number>();

  private constructor(fd: number, path: string, driver: string, b: NativeBinding) {
    this.#fd = fd;
    this.path = path;
    this.driver = driver;
    this.#b = b;
    leaks.register(this, { fd, binding: b, what: `DrmDevice ${path}` }, this);
  }

  /** Opens the card node of driver `name` (e.g. 'vgem'), or a given path. */
  static open(nameOrPath: string, opts: { binding?: NativeBinding } = {}): DrmDevice {
    const b = opts.binding ?? native();
    const path = nameOrPath.startsWith('/') ? nameOrPath : findDrmNode(nameOrPath, b);
    if (!path) throw new DeviceNotFoundError(`no DRM device with driver '${nameOrPath}' under /dev/dri`);
    let fd: number;
    try {
      fd = b.open(path);
    } catch (e) {
      throw fromNative(e, `opening ${path}`);
    }
    return new DrmDevice(fd, path, b.drmVersion(fd).name, b);
  }

  get fd(): number {
    if (this.#fd < 0) throw new ClosedError(`DrmDevice ${this.path}`);
    return this.#fd;
  }

  /** Imports a dma-buf: its GEM handle here. Importing it again gives the same handle. */
  importDmaBuf(buf: DmaBuf): number {
    const known = this.#byBuf.get(buf);
    if (known !== undefined) {
      this.#handles.set(known, this.#handles.get(known)! + 1);
      return known;
    }
    let handle: number;
    try {
      handle = this.#b.drmPrimeFdToHandle(this.fd, buf.fd);
    } catch (e) {
      throw fromNative(e, `importing a dma-buf into ${this.driver}`);
    }
    this.#handles.set(handle, (this.#handles.get(handle) ?? 0) + 1);
    this.#byBuf.set(buf, handle);
    buf.imports.add(this);
    return handle;
  }

  /** Drops one import of `buf`; the GEM handle is closed with the last one. */
  release(buf: DmaBuf): void {
    const handle = this.#byBuf.get(buf);
    if (handle === undefined) return;
    const n = this.#handles.get(handle)! - 1;
    if (n > 0) {
      this.#handles.set(handle, n);
      return;
    }
    this.#handles.delete(handle);
    this.#byBuf.delete(buf);
    buf.imports.delete(this);
    if (this.#fd >= 0) this.#b.drmGemClose(this.#fd, handle);
  }

  /** Import count of a GEM handle (0 when not imported). */
  importCount(handle: number): number {
    return this.#handles.get(handle) ?? 0;
  }

  /** A dumb buffer of this driver, exported as a dma-buf (its handle is closed). */
  createDumbDmaBuf(width: number, height: number, bpp: number): DmaBuf {
    bufferGeometry(width, height, bpp);
    const fd = this.fd;
    let dumb;
    try {
      dumb = this.#b.drmModeCreateDumb(fd, width, height, bpp);
    } catch (e) {
      throw fromNative(e, `creating a ${width}x${height}x${bpp} dumb buffer on ${this.driver}`);
    }
    try {
      const dfd = this.#b.drmPrimeHandleToFd(fd, dumb.handle);
      return new DmaBuf(dfd, { binding: this.#b, format: { width, height, bpp, pitch: dumb.pitch } });
    } catch (e) {
      throw fromNative(e, 'exporting the dumb buffer');
    } finally {
      this.#b.drmGemClose(fd, dumb.handle);
    }
  }

  /** Closes every handle it holds, then the device. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    for (const buf of [...this.#byBuf.keys()]) {
      this.#handles.set(this.#byBuf.get(buf)!, 1);
      this.release(buf);
    }
    const fd = this.#fd;
    this.#fd = -1;
    leaks.unregister(this);
    this.#b.close(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** The /dev/dri/card* node whose DRM driver is `name`. */
export function findDrmNode(name: string, b: NativeBinding = native()): string | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/dev/dri');
  } catch {
    return undefined;
  }
  for (const entry of entries.filter((n) => /^card\d+$/.test(n)).sort()) {
    const path = `/dev/dri/${entry}`;
    let fd: number;
    try {
      fd = b.open(path);
    } catch {
      continue;
    }
    try {
      if (b.drmVersion(fd).name === name) return path;
    } catch {
      // not a DRM node we may query
    } finally {
      b.close(fd);
    }
  }
  return undefined;
}

/** A guest's pages mapped into Dom0 and exported as a dma-buf (FROM_REFS). */
export class GuestBuffer {
  readonly domid: number;
  readonly dmabuf: DmaBuf;
  readonly format: BufferFormat;
  /** WAIT_FREE handle, scoped to the device's fd. */
  readonly waitHandle: number;
  #handle: number;
  readonly #dev: ZeroCopyDevice;
  #closing: Promise<ReleaseResult> | undefined;

  /** @internal */
  constructor(dev: ZeroCopyDevice, domid: number, handle: number, waitHandle: number, dmabuf: DmaBuf, format: BufferFormat) {
    this.#dev = dev;
    this.domid = domid;
    this.#handle = handle;
    this.waitHandle = waitHandle;
    this.dmabuf = dmabuf;
    this.format = format;
  }

  /** The zcopy GEM handle (closed by close()). */
  get handle(): number {
    return this.#handle;
  }

  /**
   * Waits until the buffer is freed (grants unmapped, pages back with the
   * guest). 'already-freed' when it was freed before (or waited for) already.
   * Rejects with TimeoutError while anything still holds the dma-buf.
   */
  released(timeoutMs = DEFAULT_RELEASE_TIMEOUT_MS): Promise<ReleaseResult> {
    return this.#dev.waitFree(this.waitHandle, timeoutMs);
  }

  /**
   * The documented teardown: importers' handles, the zcopy handle, the
   * dma-buf fd, then the wait. Idempotent: later calls return the same promise.
   */
  close(timeoutMs = DEFAULT_RELEASE_TIMEOUT_MS): Promise<ReleaseResult> {
    this.#closing ??= (async () => {
      for (const dev of [...this.dmabuf.imports]) dev.release(this.dmabuf);
      if (this.#handle !== 0) {
        this.#dev.gemClose(this.#handle);
        this.#handle = 0;
      }
      await this.dmabuf.closeAsync();
      return this.released(timeoutMs);
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close().then(() => undefined);
  }
}

/** Dom0 pages (an imported dma-buf) granted to a guest (TO_REFS). */
export class GrantedBuffer {
  readonly domid: number;
  /** One grant reference per page, for the guest. */
  readonly refs: Uint32Array;
  readonly dmabuf: DmaBuf;
  #handle: number;
  readonly #dev: ZeroCopyDevice;

  /** @internal */
  constructor(dev: ZeroCopyDevice, domid: number, handle: number, refs: Uint32Array, dmabuf: DmaBuf) {
    this.#dev = dev;
    this.domid = domid;
    this.#handle = handle;
    this.refs = refs;
    this.dmabuf = dmabuf;
  }

  /**
   * Ends the grants (the module keeps the pages until the guest unmaps them).
   * The dma-buf stays with its owner. Idempotent.
   */
  close(): void {
    if (this.#handle === 0) return;
    this.#dev.gemClose(this.#handle);
    this.#handle = 0;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** The xen_drm_zcopy device. */
export class ZeroCopyDevice {
  #fd: number;
  readonly path: string;
  readonly #b: NativeBinding;
  readonly #inflight = new Set<Promise<unknown>>();

  private constructor(fd: number, path: string, b: NativeBinding) {
    this.#fd = fd;
    this.path = path;
    this.#b = b;
    leaks.register(this, { fd, binding: b, what: `ZeroCopyDevice ${path}` }, this);
  }

  /** Opens the xen_drm_zcopy node (found by driver name). */
  static open(opts: OpenOptions = {}): ZeroCopyDevice {
    const b = opts.binding ?? native();
    const path = opts.path ?? findDrmNode('xen_drm_zcopy', b);
    if (!path) {
      throw new DeviceNotFoundError(
        'the xen_drm_zcopy module is not loaded (no /dev/dri/card* with driver xen_drm_zcopy): ' +
          'run `modprobe xen_drm_zcopy` (DKMS install) or `insmod kernel-module/xen_drm_zcopy.ko` as root in Dom0',
      );
    }
    let fd: number;
    try {
      fd = b.open(path);
    } catch (e) {
      throw fromNative(e, `opening ${path} (root, or the xen-zcopy group, is needed)`);
    }
    return new ZeroCopyDevice(fd, path, b);
  }

  get fd(): number {
    if (this.#fd < 0) throw new ClosedError('ZeroCopyDevice');
    return this.#fd;
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p);
    const done = () => this.#inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Maps a guest's granted pages and exports them as a dma-buf, zero copy. */
  importGuestBuffer(opts: ImportOptions): Promise<GuestBuffer> {
    const fd = this.fd;
    const domid = checkInt('domid', opts.domid, 0, MAX_DOMID);
    const geo = bufferGeometry(opts.width, opts.height, opts.bpp);
    const refs = checkRefs(opts.refs, geo.pages);
    return this.#track((async () => {
      let res;
      try {
        res = await this.#b.zcopyFromRefs(fd, domid, refs, opts.width, opts.height, opts.bpp);
      } catch (e) {
        throw fromNative(e, `mapping ${refs.length} pages granted by domain ${domid}`);
      }
      let dmabuf: DmaBuf;
      try {
        dmabuf = new DmaBuf(this.#b.drmPrimeHandleToFd(fd, res.handle), {
          binding: this.#b,
          format: { width: opts.width, height: opts.height, bpp: opts.bpp, pitch: res.pitch },
        });
      } catch (e) {
        // transactional: undo FROM_REFS (closing the handle frees it)
        this.#b.drmGemClose(fd, res.handle);
        throw fromNative(e, 'exporting the guest buffer');
      }
      return new GuestBuffer(this, domid, res.handle, res.waitHandle, dmabuf, dmabuf.format!);
    })());
  }

  /** Grants every page of `dmabuf` to domain `domid`. */
  exportToGuest(dmabuf: DmaBuf, opts: { domid: number }): Promise<GrantedBuffer> {
    const fd = this.fd;
    const domid = checkInt('domid', opts.domid, 0, MAX_DOMID);
    const pages = Math.ceil(dmabuf.size / PAGE_SIZE);
    return this.#track((async () => {
      let handle: number;
      try {
        handle = this.#b.drmPrimeFdToHandle(fd, dmabuf.fd);
      } catch (e) {
        throw fromNative(e, 'importing the dma-buf into xen_drm_zcopy');
      }
      try {
        const refs = await this.#b.zcopyToRefs(fd, handle, domid, pages);
        return new GrantedBuffer(this, domid, handle, refs, dmabuf);
      } catch (e) {
        this.#b.drmGemClose(fd, handle);
        throw fromNative(e, `granting ${pages} pages to domain ${domid}`);
      }
    })());
  }

  /** @internal WAIT_FREE with the ENOENT-means-freed rule applied. */
  waitFree(waitHandle: number, timeoutMs: number): Promise<ReleaseResult> {
    checkInt('timeoutMs', timeoutMs, 0, 0xffffffff);
    const fd = this.fd;
    return this.#track(this.#b.zcopyWaitFree(fd, waitHandle, timeoutMs).then(
      () => 'freed' as const,
      (e: unknown) => {
        if ((e as { code?: string }).code === 'ENOENT') return 'already-freed' as const;
        throw fromNative(e, `waiting for buffer ${waitHandle} to be freed`);
      },
    ));
  }

  /** @internal */
  gemClose(handle: number): void {
    try {
      this.#b.drmGemClose(this.fd, handle);
    } catch (e) {
      throw fromNative(e, 'closing a zcopy handle');
    }
  }

  /**
   * Waits for in-flight calls to settle, then closes the device. Buffers not
   * closed yet stay valid (their dma-bufs keep the pages mapped). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#fd < 0) return;
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    leaks.unregister(this);
    this.#b.close(fd);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
