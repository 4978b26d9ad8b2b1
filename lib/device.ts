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
import {
  abortable, FdResource, MappingImpl, MAX_RELEASE_TIMEOUT_MS, runAll, runAllSync, type ReadonlyMapping, type WritableMapping,
} from './resource.js';

export { MAX_RELEASE_TIMEOUT_MS };

const PAGE_SIZE = 4096;
/** Largest domain id a guest can have (DOMID_FIRST_RESERVED - 1). */
export const MAX_DOMID = 0x7fef;
/** WAIT_FREE time-out of the Xen display backend (displ_be). */
export const DEFAULT_RELEASE_TIMEOUT_MS = 3000;

/** How a released buffer ended: freed by this wait, or before it. */
export type ReleaseResult = 'freed' | 'already-freed';

/** How long to wait for a buffer to be freed, and a way to stop waiting. */
export interface ReleaseOptions {
  /** WAIT_FREE time-out in ms: 0..{@link MAX_RELEASE_TIMEOUT_MS}, default {@link DEFAULT_RELEASE_TIMEOUT_MS}. */
  timeoutMs?: number;
  /**
   * Rejects the promise with `signal.reason` when aborted. The kernel's wait
   * itself cannot be interrupted: it goes on (on the addon's wait lane, never
   * delaying other calls) until the buffer is freed or `timeoutMs` passes.
   */
  signal?: AbortSignal;
}

function checkReleaseOptions(opts: ReleaseOptions | undefined): { timeoutMs: number; signal: AbortSignal | undefined } {
  if (opts !== undefined && (typeof opts !== 'object' || opts === null)) {
    throw new ValidationError('release options must be an object { timeoutMs?, signal? }');
  }
  const timeoutMs = checkInt('timeoutMs', opts?.timeoutMs ?? DEFAULT_RELEASE_TIMEOUT_MS, 0, MAX_RELEASE_TIMEOUT_MS);
  const signal = opts?.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new ValidationError('signal must be an AbortSignal');
  return { timeoutMs, signal };
}

/** Runs `fn` so that its synchronous throws become a rejection. */
function rejecting<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (e) {
    return Promise.reject(e);
  }
}

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


/** What a FinalizationRegistry entry releases when its owner was never closed. */
interface Leak {
  what: string;
  release: () => void;
}

const leaks = new FinalizationRegistry<Leak>((held) => {
  process.emitWarning(`${held.what} was garbage-collected without close(); closing it now`, 'XenZcopyLeakWarning');
  try {
    held.release();
  } catch {
    // already gone
  }
});

/** A CPU view of a dma-buf, bracketed by DMA_BUF_IOCTL_SYNC. */
export type MappedDmaBuf = WritableMapping;
/** A read-only CPU view of a dma-buf (`map('read')`). */
export type ReadonlyMappedDmaBuf = ReadonlyMapping;

/** A dma-buf file descriptor with its layout. Owns the fd. */
export class DmaBuf {
  #fd: number;
  readonly size: number;
  readonly format: BufferFormat | undefined;
  readonly #b: NativeBinding;
  /** @internal Importers holding a GEM handle for this buffer (released before the fd). */
  readonly imports = new Set<DrmDevice>();
  readonly #maps = new Set<MappingImpl>();
  #closing: Promise<void> | undefined;

  /** Takes ownership of `fd` (closed here if it is not a dma-buf). */
  constructor(fd: number, opts: { binding?: NativeBinding; format?: BufferFormat } = {}) {
    this.#b = opts.binding ?? native();
    this.#fd = fd;
    this.format = opts.format;
    try {
      this.size = this.#b.seekEnd(fd);
    } catch (e) {
      try {
        this.#b.close(fd);
      } catch {
        // not an fd at all
      }
      throw fromNative(e, 'reading the dma-buf size');
    }
    const b = this.#b;
    leaks.register(this, { what: `DmaBuf (fd ${fd})`, release: () => b.close(fd) }, this);
  }

  get fd(): number {
    if (this.#fd < 0) throw new ClosedError('DmaBuf');
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * Maps the buffer for CPU access, bracketed by DMA_BUF_IOCTL_SYNC start/end.
   * 'read' gives a read-only view (`bytes`; writing through it throws instead
   * of faulting), 'write' and 'readwrite' a writable `buffer`. The mapping
   * holds this DmaBuf: closing the DmaBuf ends it first.
   */
  map(access?: 'read'): ReadonlyMappedDmaBuf;
  map(access: 'write' | 'readwrite'): MappedDmaBuf;
  map(access: 'read' | 'write' | 'readwrite' = 'read'): ReadonlyMappedDmaBuf | MappedDmaBuf {
    if (access !== 'read' && access !== 'write' && access !== 'readwrite') {
      throw new ValidationError(`access must be 'read', 'write' or 'readwrite', got ${String(access)}`);
    }
    const fd = this.fd;
    const b = this.#b;
    const S = b.DMA_BUF_SYNC;
    const dir = (access !== 'write' ? S.READ : 0) | (access !== 'read' ? S.WRITE : 0);
    const prot = (access !== 'write' ? PROT_READ : 0) | (access !== 'read' ? PROT_WRITE | PROT_READ : 0);
    let ab: ArrayBuffer;
    try {
      ab = b.mmap(fd, this.size, prot, 0);
    } catch (e) {
      throw fromNative(e, 'mapping the dma-buf');
    }
    try {
      b.dmabufSync(fd, S.START | dir);
    } catch (e) {
      b.munmap(ab);
      throw fromNative(e, 'starting CPU access');
    }
    const m = new MappingImpl(ab, access !== 'read', (mapped) => {
      this.#maps.delete(m);
      runAllSync([
        () => {
          // the owner, not an fd number: a closed DmaBuf ended its mappings first
          if (this.#fd >= 0) b.dmabufSync(this.#fd, S.END | dir);
        },
        () => b.munmap(mapped),
      ]);
    });
    this.#maps.add(m);
    return m as ReadonlyMappedDmaBuf | MappedDmaBuf;
  }

  /** A second owner of the same buffer (a dup'ed fd). */
  dup(): DmaBuf {
    let fd: number;
    try {
      fd = this.#b.dup(this.fd);
    } catch (e) {
      throw fromNative(e, 'duplicating the dma-buf fd');
    }
    return new DmaBuf(fd, { binding: this.#b, format: this.format });
  }

  /**
   * Ends its mappings, releases importers' handles, then closes the fd off the
   * JS thread (the last close of a guest buffer unmaps all its grants).
   * Idempotent: later calls return the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#fd < 0) return;
      const fd = this.#fd;
      await runAll([
        ...[...this.#maps].map((m) => () => m.closeSync()),
        ...[...this.imports].map((dev) => () => dev.forget(this)),
        async () => {
          this.#fd = -1;
          leaks.unregister(this);
          await this.#b.closeAsync(fd);
        },
      ]);
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** A DRM device (e.g. vgem or a real KMS driver) that imports dma-bufs. */
export class DrmDevice {
  #fd: number;
  readonly path: string;
  readonly driver: string;
  readonly #b: NativeBinding;
  /**
   * GEM handles this file got from importDmaBuf, with their import counts.
   * PRIME gives one handle per dma-buf per file, so a DmaBuf and its dup()
   * share it: it is closed once, when the last import of either is released.
   */
  readonly #handles = new Map<number, number>();
  /** Per DmaBuf object: its handle and how many imports it made. */
  readonly #byBuf = new Map<DmaBuf, { handle: number; count: number }>();

  private constructor(fd: number, path: string, driver: string, b: NativeBinding) {
    this.#fd = fd;
    this.path = path;
    this.driver = driver;
    this.#b = b;
    leaks.register(this, { what: `DrmDevice ${path} (fd ${fd})`, release: () => b.close(fd) }, this);
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
    let driver: string;
    try {
      driver = b.drmVersion(fd).name;
    } catch (e) {
      try {
        b.close(fd);
      } catch {
        // nothing more to do
      }
      throw fromNative(e, `${path} is not a DRM device`);
    }
    return new DrmDevice(fd, path, driver, b);
  }

  get fd(): number {
    if (this.#fd < 0) throw new ClosedError(`DrmDevice ${this.path}`);
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Imports a dma-buf: its GEM handle here. Importing it again (or a dup of it) gives the same handle. */
  importDmaBuf(buf: DmaBuf): number {
    if (!(buf instanceof DmaBuf)) throw new ValidationError('importDmaBuf needs a DmaBuf');
    const fd = this.fd;
    const known = this.#byBuf.get(buf);
    if (known !== undefined) {
      known.count++;
      this.#handles.set(known.handle, this.#handles.get(known.handle)! + 1);
      return known.handle;
    }
    let handle: number;
    try {
      handle = this.#b.drmPrimeFdToHandle(fd, buf.fd);
    } catch (e) {
      throw fromNative(e, `importing a dma-buf into ${this.driver}`);
    }
    this.#handles.set(handle, (this.#handles.get(handle) ?? 0) + 1);
    this.#byBuf.set(buf, { handle, count: 1 });
    buf.imports.add(this);
    return handle;
  }

  /** Drops one import of `buf`; the GEM handle is closed with the last import of that dma-buf. */
  release(buf: DmaBuf): void {
    this.#drop(buf, 1);
  }

  /** @internal Drops every import `buf` made (its DmaBuf is closing). */
  forget(buf: DmaBuf): void {
    this.#drop(buf, Infinity);
  }

  #drop(buf: DmaBuf, n: number): void {
    const rec = this.#byBuf.get(buf);
    if (rec === undefined) return;
    const k = Math.min(n, rec.count);
    rec.count -= k;
    if (rec.count === 0) {
      this.#byBuf.delete(buf);
      buf.imports.delete(this);
    }
    const left = this.#handles.get(rec.handle)! - k;
    if (left > 0) {
      this.#handles.set(rec.handle, left);
      return;
    }
    this.#handles.delete(rec.handle);
    if (this.#fd >= 0) {
      try {
        this.#b.drmGemClose(this.#fd, rec.handle);
      } catch (e) {
        throw fromNative(e, `closing GEM handle ${rec.handle} on ${this.driver}`);
      }
    }
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
    let dfd: number;
    try {
      dfd = this.#b.drmPrimeHandleToFd(fd, dumb.handle);
    } catch (e) {
      throw fromNative(e, 'exporting the dumb buffer');
    } finally {
      this.#b.drmGemClose(fd, dumb.handle);
    }
    return new DmaBuf(dfd, { binding: this.#b, format: { width, height, bpp, pitch: dumb.pitch } });
  }

  /** Closes every handle it holds (each once), then the device. Idempotent; cheap. */
  closeSync(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    runAllSync([
      ...[...this.#handles.keys()].map((h) => () => this.#b.drmGemClose(fd, h)),
      () => {
        for (const buf of this.#byBuf.keys()) buf.imports.delete(this);
        this.#byBuf.clear();
        this.#handles.clear();
        this.#fd = -1;
        leaks.unregister(this);
        this.#b.close(fd);
      },
    ]);
  }

  /** closeSync() as a promise (the same lifetime model as every resource). */
  close(): Promise<void> {
    try {
      this.closeSync();
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  [Symbol.dispose](): void {
    this.closeSync();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
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

/**
 * @internal The zcopy device's file as its buffers see it: the fd (kept open
 * until the device and every buffer made on it are closed) and the GEM
 * handles on it. PRIME import returns the handle the file already has for a
 * dma-buf (e.g. a GuestBuffer's own), so handles are counted: only the last
 * holder closes one, and never one this API did not create.
 */
class ZcFile {
  readonly #handles = new Map<number, number>();

  constructor(readonly res: FdResource, readonly b: NativeBinding) {}

  hold(handle: number): void {
    this.#handles.set(handle, (this.#handles.get(handle) ?? 0) + 1);
  }

  drop(handle: number): void {
    const n = (this.#handles.get(handle) ?? 0) - 1;
    if (n > 0) {
      this.#handles.set(handle, n);
      return;
    }
    if (n < 0) return; // not ours
    this.#handles.delete(handle);
    try {
      this.b.drmGemClose(this.res.fd, handle);
    } catch (e) {
      throw fromNative(e, 'closing a zcopy handle');
    }
  }

  /** WAIT_FREE with the ENOENT-means-freed rule applied. */
  async waitFree(waitHandle: number, timeoutMs: number): Promise<ReleaseResult> {
    try {
      await this.b.zcopyWaitFree(this.res.fd, waitHandle, timeoutMs);
      return 'freed';
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return 'already-freed';
      throw fromNative(e, `waiting for buffer ${waitHandle} to be freed`);
    }
  }
}

/** A guest's pages mapped into Dom0 and exported as a dma-buf (FROM_REFS). */
export class GuestBuffer {
  readonly domid: number;
  readonly dmabuf: DmaBuf;
  readonly format: BufferFormat;
  /** WAIT_FREE handle, scoped to the device's fd. */
  readonly waitHandle: number;
  #handle: number;
  readonly #file: ZcFile;
  /** Holds the device's fd until the buffer is known to be freed. */
  #holdsFile = true;
  #freed = false;
  #closing: Promise<ReleaseResult> | undefined;

  /** @internal */
  constructor(file: ZcFile, domid: number, handle: number, waitHandle: number, dmabuf: DmaBuf, format: BufferFormat) {
    this.#file = file;
    this.domid = domid;
    this.#handle = handle;
    this.waitHandle = waitHandle;
    this.dmabuf = dmabuf;
    this.format = format;
    leaks.register(this, { what: 'GuestBuffer', release: () => file.res.release() }, this);
  }

  /** The zcopy GEM handle (0 once closed). */
  get handle(): number {
    return this.#handle;
  }

  /**
   * Waits until the buffer is freed (grants unmapped, pages back with the
   * guest): 'already-freed' when it was freed before (or waited for) already.
   * Rejects with TimeoutError while anything still holds the dma-buf, with
   * `signal.reason` when `signal` aborts, with ValidationError for bad options.
   */
  released(opts?: ReleaseOptions): Promise<ReleaseResult> {
    return rejecting(async () => {
      const { timeoutMs, signal } = checkReleaseOptions(opts);
      signal?.throwIfAborted();
      if (this.#freed) return 'already-freed';
      const wait = this.#file.waitFree(this.waitHandle, timeoutMs).then((r) => {
        this.#freed = true;
        this.#letGoOfFile();
        return r;
      });
      return abortable(wait, signal);
    });
  }

  #letGoOfFile(): void {
    if (!this.#holdsFile) return;
    this.#holdsFile = false;
    leaks.unregister(this);
    this.#file.res.release();
  }

  /**
   * The documented teardown: importers' handles, the zcopy handle, the
   * dma-buf fd, then the wait ({@link released}). Every step runs even if an
   * earlier one fails, also after the device was closed. Idempotent: later
   * calls return the same promise.
   */
  close(opts?: ReleaseOptions): Promise<ReleaseResult> {
    try {
      checkReleaseOptions(opts);
    } catch (e) {
      return Promise.reject(e);
    }
    this.#closing ??= (async () => {
      await runAll([
        ...[...this.dmabuf.imports].map((dev) => () => dev.forget(this.dmabuf)),
        () => {
          const h = this.#handle;
          this.#handle = 0;
          if (h !== 0) this.#file.drop(h);
        },
        () => this.dmabuf.close(),
      ]);
      return this.released(opts);
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
  readonly #file: ZcFile;

  /** @internal */
  constructor(file: ZcFile, domid: number, handle: number, refs: Uint32Array, dmabuf: DmaBuf) {
    this.#file = file;
    this.domid = domid;
    this.#handle = handle;
    this.refs = refs;
    this.dmabuf = dmabuf;
    leaks.register(this, { what: 'GrantedBuffer', release: () => file.res.release() }, this);
  }

  get closed(): boolean {
    return this.#handle === 0;
  }

  /**
   * Ends the grants (the module keeps the pages until the guest unmaps them).
   * The dma-buf stays with its owner. Idempotent; cheap (a GEM_CLOSE).
   */
  closeSync(): void {
    const h = this.#handle;
    if (h === 0) return;
    this.#handle = 0;
    leaks.unregister(this);
    runAllSync([() => this.#file.drop(h), () => this.#file.res.release()]);
  }

  /** closeSync() as a promise. */
  close(): Promise<void> {
    try {
      this.closeSync();
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  [Symbol.dispose](): void {
    this.closeSync();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** The xen_drm_zcopy device. */
export class ZeroCopyDevice {
  readonly path: string;
  readonly #b: NativeBinding;
  readonly #file: ZcFile;
  readonly #inflight = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  private constructor(fd: number, path: string, b: NativeBinding) {
    this.path = path;
    this.#b = b;
    const res = new FdResource(fd, b, 'ZeroCopyDevice');
    this.#file = new ZcFile(res, b);
    leaks.register(this, { what: `ZeroCopyDevice ${path} (fd ${fd})`, release: () => res.release() }, this);
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

  /** The device's fd; ClosedError once close() was called. */
  get fd(): number {
    if (this.#closing) throw new ClosedError('ZeroCopyDevice');
    return this.#file.res.fd;
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Runs a device call: refused once closing, tracked so close() waits for it. */
  #call<T>(fn: (fd: number) => Promise<T>): Promise<T> {
    const p = rejecting(() => fn(this.fd));
    this.#inflight.add(p);
    const done = () => this.#inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Maps a guest's granted pages and exports them as a dma-buf, zero copy. */
  importGuestBuffer(opts: ImportOptions): Promise<GuestBuffer> {
    return this.#call(async (fd) => {
      if (typeof opts !== 'object' || opts === null) throw new ValidationError('importGuestBuffer needs an options object');
      const domid = checkInt('domid', opts.domid, 0, MAX_DOMID);
      const geo = bufferGeometry(opts.width, opts.height, opts.bpp);
      const refs = checkRefs(opts.refs, geo.pages);
      let res;
      try {
        res = await this.#b.zcopyFromRefs(fd, domid, refs, opts.width, opts.height, opts.bpp);
      } catch (e) {
        throw fromNative(e, `mapping ${refs.length} pages granted by domain ${domid}`);
      }
      this.#file.hold(res.handle);
      let dmabuf: DmaBuf;
      try {
        dmabuf = new DmaBuf(this.#b.drmPrimeHandleToFd(fd, res.handle), {
          binding: this.#b,
          format: { width: opts.width, height: opts.height, bpp: opts.bpp, pitch: res.pitch },
        });
      } catch (e) {
        // transactional: undo FROM_REFS (closing the handle frees it)
        try {
          this.#file.drop(res.handle);
        } catch {
          // the original error matters more
        }
        throw fromNative(e, 'exporting the guest buffer');
      }
      this.#file.res.acquire(); // the buffer's hold on the device's fd
      return new GuestBuffer(this.#file, domid, res.handle, res.waitHandle, dmabuf, dmabuf.format!);
    });
  }

  /** Grants every page of `dmabuf` to domain `domid`. */
  exportToGuest(dmabuf: DmaBuf, opts: { domid: number }): Promise<GrantedBuffer> {
    return this.#call(async (fd) => {
      if (!(dmabuf instanceof DmaBuf)) throw new ValidationError('exportToGuest needs a DmaBuf');
      const domid = checkInt('domid', opts?.domid, 0, MAX_DOMID);
      const pages = Math.ceil(dmabuf.size / PAGE_SIZE);
      let handle: number;
      try {
        handle = this.#b.drmPrimeFdToHandle(fd, dmabuf.fd);
      } catch (e) {
        throw fromNative(e, 'importing the dma-buf into xen_drm_zcopy');
      }
      // may be a handle the file already had for this dma-buf: counted, not owned
      this.#file.hold(handle);
      let refs: Uint32Array;
      try {
        refs = await this.#b.zcopyToRefs(fd, handle, domid, pages);
      } catch (e) {
        try {
          this.#file.drop(handle);
        } catch {
          // the original error matters more
        }
        throw fromNative(e, `granting ${pages} pages to domain ${domid}`);
      }
      this.#file.res.acquire();
      return new GrantedBuffer(this.#file, domid, handle, refs, dmabuf);
    });
  }

  /**
   * Refuses new calls (ClosedError), waits for in-flight ones to settle, then
   * lets go of the device's fd. Buffers not closed yet stay valid and keep the
   * fd open until their own close(). Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
      leaks.unregister(this);
      this.#file.res.release();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
