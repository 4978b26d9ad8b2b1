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

/**
 * @internal One DRM device's import of a dma-buf: the GEM handle there and how
 * many imports of this DmaBuf hold it. Kept on the DmaBuf, so neither side
 * needs a map keyed by the other.
 */
export interface ImportRecord {
  readonly dev: DrmDevice;
  readonly handle: number;
  count: number;
}

/**
 * @internal A DmaBuf's fd, as its owner's leak record sees it (-1 once the
 * fd was closed or handed over).
 */
export interface FdCell {
  fd: number;
}

/** A dma-buf file descriptor with its layout. Owns the fd. */
export class DmaBuf {
  readonly #cell: FdCell;
  /**
   * The object this DmaBuf belongs to (a GuestBuffer), held so it lives as
   * long as this does; its leak record closes this fd, so this one makes
   * none (one registration per import, not two).
   */
  readonly #owner: object | undefined;
  readonly size: number;
  readonly format: BufferFormat | undefined;
  readonly #b: NativeBinding;
  /**
   * Importers holding a GEM handle for this buffer (released before the fd),
   * and the CPU mappings: made on first use (most buffers have at most one
   * importer and no mapping; an import cycle should not pay for two Sets).
   */
  #imports: ImportRecord[] | undefined;
  #maps: Set<MappingImpl> | undefined;
  #closing: Promise<void> | undefined;

  /**
   * Takes ownership of `fd` (closed here if it is not a dma-buf). `size`, when
   * the caller knows it (its exporter said), spares the lseek.
   */
  constructor(fd: number, opts: {
    binding?: NativeBinding; format?: BufferFormat; size?: number;
    /** @internal See {@link DmaBuf.fdCell}. */
    owner?: object;
  } = {}) {
    this.#b = opts.binding ?? native();
    this.#cell = { fd };
    this.#owner = opts.owner;
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
    if (this.#owner !== undefined) return;
    const b = this.#b;
    leaks.register(this, { what: `DmaBuf (fd ${fd})`, release: () => b.close(fd) }, this);
  }

  /**
   * @internal The fd's cell, for the leak record of an owner given to the
   * constructor: that record closes the fd when it is still >= 0.
   */
  get fdCell(): FdCell {
    return this.#cell;
  }

  /** The fd leaves this object (closed, or handed over): no leak record may close it now. */
  #letGo(): void {
    this.#cell.fd = -1;
    if (this.#owner === undefined) leaks.unregister(this);
  }

  get fd(): number {
    const fd = this.#cell.fd;
    if (fd < 0) throw new ClosedError('DmaBuf');
    return fd;
  }

  get closed(): boolean {
    return this.#cell.fd < 0;
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
      this.#maps?.delete(m);
      runAllSync([
        () => {
          // the owner, not an fd number: a closed DmaBuf ended its mappings first
          if (this.#cell.fd >= 0) b.dmabufSync(this.#cell.fd, S.END | dir);
        },
        () => b.munmap(mapped),
      ]);
    });
    (this.#maps ??= new Set()).add(m);
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
   * thread in a job of its own (a GuestBuffer's teardown). With `later`, the
   * importers' GEM_CLOSEs are handed over too, as (fd, handle) pairs in
   * `gemCloses`, for a caller that makes them at once on this thread. `fd`
   * is -1 when close() or takeFd() came first; `error` is the first step that
   * failed (every step runs, and the fd is handed over regardless).
   */
  takeFd(later = false): { fd: number; gemCloses?: number[]; error?: unknown } {
    const fd = this.#cell.fd;
    if (this.#closing !== undefined || fd < 0) return { fd: -1 };
    this.#closing = Promise.resolve();
    let error: unknown;
    const gemCloses: number[] = [];
    try {
      this.#endMappings();
    } catch (e) {
      error = e;
    }
    for (const rec of this.#imports ?? []) {
      try {
        if (later) rec.dev.forgetLater(rec, gemCloses);
        else rec.dev.forget(rec);
      } catch (e) {
        error ??= e;
      }
    }
    this.#imports = undefined;
    this.#letGo();
    return { fd, gemCloses, error };
  }

  /** @internal This buffer's import record on `dev`, if it has one. */
  importOn(dev: DrmDevice): ImportRecord | undefined {
    return this.#imports?.find((r) => r.dev === dev);
  }

  /** @internal Records an import (DrmDevice.importDmaBuf). */
  addImport(rec: ImportRecord): void {
    (this.#imports ??= []).push(rec);
  }

  /** @internal Removes an import record once no import holds it. */
  removeImport(rec: ImportRecord): void {
    const i = this.#imports?.indexOf(rec) ?? -1;
    if (i >= 0) this.#imports!.splice(i, 1);
  }

  #endMappings(): void {
    if (this.#maps === undefined || this.#maps.size === 0) return;
    runAllSync([...this.#maps].map((m) => () => m.closeSync()));
  }

  /**
   * Ends its mappings, releases importers' handles, then closes the fd off the
   * JS thread (the last close of a guest buffer unmaps all its grants).
   * Idempotent: later calls return the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const fd = this.#cell.fd;
      if (fd < 0) return;
      await runAll([
        () => this.#endMappings(),
        ...[...(this.#imports ?? [])].map((rec) => () => rec.dev.forget(rec)),
        async () => {
          this.#imports = undefined;
          this.#letGo();
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
