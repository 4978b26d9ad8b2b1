/**
 * The xen_drm_zcopy device: import a guest's granted pages as a dma-buf
 * (FROM_REFS), grant a Dom0 dma-buf's pages to a guest (TO_REFS), and tear
 * everything down in the documented order (WAIT_FREE last).
 *
 * @module
 */
import { native, type ImportResult, type NativeBinding } from '../binding.js';
import { DmaBuf, type BufferFormat, type FdCell } from '../drm/dmabuf.js';
import { findDrmNode } from '../drm/device.js';
import { ClosedError, DeviceNotFoundError, fromNative, ValidationError } from '../errors.js';
import { abortable, FdResource, leaks, MAX_RELEASE_TIMEOUT_MS, runAll, runAllSync, SyncClosable } from '../resource.js';
import { FreeWait } from './wait.js';
import { bufferGeometry, checkInt, MAX_DOMID, PAGE_SIZE, refArray, rejecting } from '../validate.js';

export { MAX_RELEASE_TIMEOUT_MS };

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

/**
 * @internal The zcopy device's file as its buffers see it: the fd (kept open
 * until the device and every buffer made on it are closed) and the GEM
 * handles on it. PRIME import returns the handle the file already has for a
 * dma-buf (e.g. a GuestBuffer's own), so handles are counted: only the last
 * holder closes one, and never one this API did not create.
 */
class ZcFile {
  /** Hold counts; an entry stays at 0 once let go (handles are reused: no delete and re-add per import). */
  readonly #handles = new Map<number, number>();

  constructor(readonly res: FdResource, readonly b: NativeBinding) {}

  hold(handle: number): void {
    this.#handles.set(handle, (this.#handles.get(handle) ?? 0) + 1);
  }

  /** Gives up one hold; true when it was the last, so the handle is to be closed now. */
  let(handle: number): boolean {
    const n = (this.#handles.get(handle) ?? 0) - 1;
    if (n < 0) return false; // not ours
    this.#handles.set(handle, n);
    return n === 0;
  }

  drop(handle: number): void {
    if (!this.let(handle)) return;
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

function checkImport(opts: ImportOptions): { domid: number; refs: Uint32Array } {
  if (typeof opts !== 'object' || opts === null) throw new ValidationError('importGuestBuffer needs an options object');
  const domid = checkInt('domid', opts.domid, 0, MAX_DOMID);
  bufferGeometry(opts.width, opts.height, opts.bpp);
  return { domid, refs: refArray(opts.refs) };
}

function importError(e: unknown, pages: number, domid: number): Error {
  if ((e as { code?: string }).code === 'ERR_XZC_BAD_REFS') return new ValidationError((e as Error).message);
  return fromNative(e, `mapping ${pages} pages granted by domain ${domid}`);
}

/**
 * What a GuestBuffer collected without close() leaves to release: its
 * dma-buf's fd (unless closed or handed over), its wait fd and its hold on
 * the device's fd. The message is made only if it runs.
 */
class GuestBufferLeak {
  constructor(readonly dmabuf: FdCell, readonly wait: { w?: FreeWait }, readonly file: ZcFile) {}

  get what(): string {
    return 'GuestBuffer';
  }

  release(): void {
    const { dmabuf, wait, file } = this;
    runAllSync([
      () => {
        const fd = dmabuf.fd;
        dmabuf.fd = -1;
        if (fd >= 0) file.b.close(fd);
      },
      () => wait.w?.close(),
      () => file.res.release(),
    ]);
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
  /** The close job (GEM_CLOSE, last close, WAIT_FREE_FD) once started: a wait fd, or how it ended. */
  #job: Promise<FreeWait | ReleaseResult> | undefined;
  /** The wait as a pollable fd, once asked for (WAIT_FREE_FD); in an object the leak record shares. */
  readonly #wait: { w?: FreeWait } = {};

  /** @internal Takes `res.dmabufFd` over; holds one reference to the device's fd, released once freed. */
  constructor(file: ZcFile, domid: number, res: ImportResult, format: BufferFormat) {
    this.#file = file;
    this.domid = domid;
    this.#handle = res.handle;
    this.waitHandle = res.waitHandle;
    this.format = format;
    // the DmaBuf holds this object; this one's leak record closes its fd too
    this.dmabuf = new DmaBuf(res.dmabufFd, { binding: file.b, format, size: res.size, owner: this });
    leaks.register(this, new GuestBufferLeak(this.dmabuf.fdCell, this.#wait, file), this);
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
      return abortable(this.#waitFor(timeoutMs), signal);
    });
  }

  /**
   * Waits on the buffer's wait fd (the event loop polls it; no thread
   * blocks): the one a released() or the close job made, or a new one.
   */
  async #waitFor(timeoutMs: number): Promise<ReleaseResult> {
    let w: FreeWait | ReleaseResult;
    if (this.#wait.w !== undefined) w = this.#wait.w;
    else if (this.#job !== undefined) w = await this.#job;
    else {
      try {
        w = this.#wait.w = new FreeWait(this.#file.b, this.#file.b.zcopyWaitFreeFd(this.#file.res.fd, this.waitHandle));
      } catch (e) {
        return this.#waitFailed(e, timeoutMs);
      }
    }
    if (typeof w === 'string') return w;
    await w.until(timeoutMs, `buffer ${this.waitHandle}`);
    this.#setFreed();
    return 'freed';
  }

  /**
   * What a failed release or WAIT_FREE_FD means: a GEM_CLOSE error is thrown;
   * ENOENT, the buffer was freed and waited for before; EINVAL or ENOTTY, a
   * module without the extension ('fallback': the 2018 blocking WAIT_FREE
   * waits); anything else is thrown.
   */
  #releaseError(e: unknown): 'already-freed' | 'fallback' {
    if ((e as { syscall?: string }).syscall === 'DRM_IOCTL_GEM_CLOSE') throw fromNative(e, 'closing a zcopy handle');
    const code = (e as { code?: string }).code;
    if (code === 'EINVAL' || code === 'ENOTTY') return 'fallback';
    if (code !== 'ENOENT') throw fromNative(e, `waiting for buffer ${this.waitHandle} to be freed`);
    this.#setFreed();
    return 'already-freed';
  }

  /** #releaseError, then the fallback's wait on the addon's wait lane. */
  async #waitFailed(e: unknown, timeoutMs: number): Promise<ReleaseResult> {
    if (this.#releaseError(e) === 'already-freed') return 'already-freed';
    const r = await this.#file.waitFree(this.waitHandle, timeoutMs);
    this.#setFreed();
    return r;
  }

  #setFreed(): void {
    this.#freed = true;
    this.#wait.w?.close();
    this.#wait.w = undefined;
    this.#letGoOfFile();
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
    this.#closing ??= this.#freed ? this.#closeFreed() : this.#closeAndWait(opts);
    return this.#closing;
  }

  /**
   * The start of a teardown (close() or closeSync()): the dma-buf's fd and
   * the zcopy handle leave this object, and the release call's arguments are
   * fixed. No new wait fd is asked for when a released() made one already.
   */
  #beginTeardown(sync: boolean): {
    args: [number, number, number, number]; gemCloses: number[] | undefined; had: FreeWait | undefined; error: unknown;
  } {
    const { fd: dmabufFd, gemCloses, error } = this.dmabuf.takeFd(sync);
    const h = this.#handle;
    this.#handle = 0;
    const closeHandle = h !== 0 && this.#file.let(h);
    const had = this.#wait.w;
    return { args: [this.#file.res.fd, closeHandle ? h : 0, dmabufFd, had ? 0 : this.waitHandle], gemCloses, had, error };
  }

  /**
   * The teardown on the calling thread (GEM_CLOSE, the dma-buf's last close
   * with its grant unmapping, WAIT_FREE_FD): 'freed' when that freed the
   * buffer, 'held' when something else (an importer's dma-buf, a dup) still
   * holds it, or when the module has no WAIT_FREE_FD to tell: then
   * {@link released} (or close()) waits. Idempotent; after close() it only
   * reports. Throws what close() would reject with.
   */
  closeSync(): ReleaseResult | 'held' {
    if (this.#closing !== undefined) return this.#freed ? 'already-freed' : 'held';
    if (this.#freed) {
      this.#closing = this.#closeFreed();
      return 'already-freed';
    }
    // the importers' GEM_CLOSEs go in the same addon call: one crossing
    const { args, gemCloses, error: takeError } = this.#beginTeardown(true);
    let error = takeError;
    let result: ReleaseResult | 'held';
    try {
      const res = this.#file.b.zcopyReleaseSync(...args, gemCloses?.length ? gemCloses : undefined);
      if (res.gemCloseError !== undefined) error ??= fromNative(res.gemCloseError, 'closing an importer\'s GEM handle');
      if (res.waitFd >= 0) this.#wait.w = new FreeWait(this.#file.b, res.waitFd);
      result = res.freed || this.#wait.w?.freed ? 'freed' : 'held';
      if (result === 'freed') this.#setFreed();
    } catch (e) {
      result = this.#releaseError(e) === 'fallback' ? 'held' : 'already-freed';
    }
    // held: a later close() or closeSync() finds nothing left to close and
    // waits on (or checks) the wait fd
    if (result !== 'held') this.#closing = Promise.resolve(result);
    if (error !== undefined) throw error;
    return result;
  }

  /**
   * The teardown as one pool job: importers' handles and mappings end here,
   * then GEM_CLOSE, the dma-buf's last close and WAIT_FREE_FD run together
   * off the JS thread. If something else still holds the buffer, the wait
   * goes on as a poll of the wait fd.
   */
  async #closeAndWait(opts: ReleaseOptions | undefined): Promise<ReleaseResult> {
    const { timeoutMs, signal } = checkReleaseOptions(opts);
    const { args, had, error } = this.#beginTeardown(false);
    // the job's answer: how to wait (a wait fd), or how it ended
    this.#job = (async (): Promise<FreeWait | ReleaseResult> => {
      let res;
      try {
        res = await this.#file.b.zcopyRelease(...args);
      } catch (e) {
        return this.#waitFailed(e, timeoutMs);
      }
      if (had !== undefined) return had;
      if (res.freed) {
        this.#setFreed();
        return 'freed';
      }
      return (this.#wait.w = new FreeWait(this.#file.b, res.waitFd));
    })();
    const r = await abortable(this.#waitFor(timeoutMs), signal);
    if (error !== undefined) throw error;
    return r;
  }

  /** close() of a buffer already known to be freed (nothing left to wait for). */
  async #closeFreed(): Promise<ReleaseResult> {
    await runAll([
      () => {
        const h = this.#handle;
        this.#handle = 0;
        if (h !== 0) this.#file.drop(h);
      },
      () => this.dmabuf.close(),
    ]);
    return 'already-freed';
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close().then(() => undefined);
  }
}

/** Dom0 pages (an imported dma-buf) granted to a guest (TO_REFS). */
export class GrantedBuffer extends SyncClosable {
  readonly domid: number;
  /** One grant reference per page, for the guest. */
  readonly refs: Uint32Array;
  readonly dmabuf: DmaBuf;
  #handle: number;
  readonly #file: ZcFile;

  /** @internal */
  constructor(file: ZcFile, domid: number, handle: number, refs: Uint32Array, dmabuf: DmaBuf) {
    super();
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
      const { domid, refs } = checkImport(opts);
      let res;
      try {
        // FROM_REFS and the export in one job; the addon checks the refs
        // (count, 0, repeats) on its own copy and undoes FROM_REFS when the
        // export fails
        res = await this.#b.zcopyImport(fd, domid, refs, opts.width, opts.height, opts.bpp);
      } catch (e) {
        throw importError(e, refs.length, domid);
      }
      return this.#guestBuffer(opts, domid, res);
    });
  }

  /**
   * {@link importGuestBuffer} on the calling thread: no hand-off to the
   * addon's pool, but the event loop is blocked while Xen maps the grants
   * (about a millisecond per 1000 pages on hardware, much more under
   * emulation). For callers that count every microsecond per import, as
   * better-sqlite3's users do; everyone else wants the promise.
   */
  importGuestBufferSync(opts: ImportOptions): GuestBuffer {
    const fd = this.fd;
    const { domid, refs } = checkImport(opts);
    let res;
    try {
      res = this.#b.zcopyImportSync(fd, domid, refs, opts.width, opts.height, opts.bpp);
    } catch (e) {
      throw importError(e, refs.length, domid);
    }
    return this.#guestBuffer(opts, domid, res);
  }

  #guestBuffer(opts: ImportOptions, domid: number, res: ImportResult): GuestBuffer {
    this.#file.hold(res.handle);
    this.#file.res.acquire(); // the buffer's hold on the device's fd
    return new GuestBuffer(this.#file, domid, res, { width: opts.width, height: opts.height, bpp: opts.bpp, pitch: res.pitch });
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
