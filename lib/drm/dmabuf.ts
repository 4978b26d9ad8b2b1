/**
 * A dma-buf file descriptor: its size and layout, CPU mappings bracketed by
 * DMA_BUF_IOCTL_SYNC, and the DRM devices that imported it.
 *
 * @module
 */
import { native, PROT_READ, PROT_WRITE, type NativeBinding } from '../binding.js';
import { ClosedError, fromNative, ValidationError } from '../errors.js';
import {
  FdResource, leaks, MappingImpl, runAll, runAllSync, type ReadonlyMapping, type WritableMapping,
} from '../resource.js';
import type { DrmDevice } from './device.js';

/** Pixel layout of a buffer; DRM fourcc only for the formats we can name. */
export interface BufferFormat {
  width: number;
  height: number;
  /** Bits per pixel. */
  bpp: number;
  /** Bytes per row. */
  pitch: number;
}

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

  /**
   * Takes ownership of `fd` (closed here if it is not a dma-buf). `size`, when
   * the caller knows it (its exporter said), spares the lseek.
   */
  constructor(fd: number, opts: { binding?: NativeBinding; format?: BufferFormat; size?: number } = {}) {
    this.#b = opts.binding ?? native();
    this.#fd = fd;
    this.format = opts.format;
    try {
      this.size = opts.size ?? this.#b.seekEnd(fd);
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
   * @internal Ends its mappings and importers' handles, as close() does, but
   * hands the fd over instead of closing it: the caller closes it off the JS
   * thread in a job of its own (a GuestBuffer's teardown). `fd` is -1 when
   * close() or takeFd() came first; `error` is the first step that failed
   * (every step runs, and the fd is handed over regardless).
   */
  takeFd(): { fd: number; error?: unknown } {
    if (this.#closing !== undefined || this.#fd < 0) return { fd: -1 };
    const fd = this.#fd;
    this.#closing = Promise.resolve();
    let error: unknown;
    try {
      runAllSync([
        ...[...this.#maps].map((m) => () => m.closeSync()),
        ...[...this.imports].map((dev) => () => dev.forget(this)),
      ]);
    } catch (e) {
      error = e;
    }
    this.#fd = -1;
    leaks.unregister(this);
    return error === undefined ? { fd } : { fd, error };
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
