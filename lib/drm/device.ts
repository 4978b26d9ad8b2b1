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
import { DmaBuf } from './dmabuf.js';

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
   */
  readonly #handles = new Map<number, number>();
  /** Per DmaBuf object: its handle and how many imports it made. */
  readonly #byBuf = new Map<DmaBuf, { handle: number; count: number }>();

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
