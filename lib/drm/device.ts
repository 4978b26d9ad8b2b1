/**
 * DRM devices that import dma-bufs (vgem, a KMS driver): PRIME import with
 * one reference-counted GEM handle per dma-buf, dumb buffers, lookup by
 * driver name.
 *
 * @module
 */
import { readdirSync } from 'node:fs';

import { native, type NativeBinding } from '../binding.js';
import { ClosedError, DeviceNotFoundError, fromNative, ValidationError } from '../errors.js';
import { FdResource, leaks, runAll, runAllSync, SyncClosable } from '../resource.js';
import { bufferGeometry } from '../validate.js';
import { DmaBuf, type ImportRecord } from './dmabuf.js';

/** A DRM device (e.g. vgem or a real KMS driver) that imports dma-bufs. */
export class DrmDevice extends SyncClosable {
  #fd: number;
  readonly path: string;
  readonly driver: string;
  readonly #b: NativeBinding;
  /**
   * GEM handles this file got from importDmaBuf, with their import counts.
   * PRIME gives one handle per dma-buf per file, so a DmaBuf and its dup()
   * share it: it is closed once, when the last import of either is released.
   * Which DmaBuf holds how many imports is on the DmaBuf (its ImportRecord).
   * An entry stays at 0 once closed (handles are reused: no delete and re-add
   * per import).
   */
  readonly #handles = new Map<number, number>();

  private constructor(fd: number, path: string, driver: string, b: NativeBinding) {
    super();
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
    const known = buf.importOn(this);
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
    buf.addImport({ dev: this, handle, count: 1 });
    return handle;
  }

  /** Drops one import of `buf`; the GEM handle is closed with the last import of that dma-buf. */
  release(buf: DmaBuf): void {
    const rec = buf.importOn(this);
    if (rec === undefined) return;
    const h = this.#unhold(rec, 1);
    if (rec.count === 0) buf.removeImport(rec);
    if (h !== 0) this.#gemClose(h);
  }

  /** @internal Drops every import of a record (its DmaBuf is closing). */
  forget(rec: ImportRecord): void {
    const h = this.#unhold(rec, Infinity);
    if (h !== 0) this.#gemClose(h);
  }

  /**
   * @internal forget(), but the GEM_CLOSE is left to the caller, who makes it
   * at once on this thread (a GuestBuffer's synchronous teardown, in the same
   * addon call as its own): appends (fd, handle) to `into` when one is due.
   */
  forgetLater(rec: ImportRecord, into: number[]): void {
    const h = this.#unhold(rec, Infinity);
    if (h !== 0) into.push(this.#fd, h);
  }

  /**
   * Gives up `n` of a record's imports: the handle to close now (its last
   * import here went), or 0. A closed device's handles went with it.
   */
  #unhold(rec: ImportRecord, n: number): number {
    const k = Math.min(n, rec.count);
    rec.count -= k;
    if (k === 0 || this.#fd < 0) return 0;
    const left = (this.#handles.get(rec.handle) ?? 0) - k;
    this.#handles.set(rec.handle, Math.max(left, 0));
    return left > 0 ? 0 : rec.handle;
  }

  #gemClose(handle: number): void {
    try {
      this.#b.drmGemClose(this.#fd, handle);
    } catch (e) {
      throw fromNative(e, `closing GEM handle ${handle} on ${this.driver}`);
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
      ...[...this.#handles].filter(([, n]) => n > 0).map(([h]) => () => this.#b.drmGemClose(fd, h)),
      () => {
        // DmaBufs keep their records of this device: a closed device drops none
        this.#handles.clear();
        this.#fd = -1;
        leaks.unregister(this);
        this.#b.close(fd);
      },
    ]);
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
