/**
 * The native addon, loaded once, with its full type. Everything here is thin
 * mechanism: each function issues one system call or ioctl and throws an
 * {@link ErrnoException}-shaped error (`errno`, `code`, `syscall`) on failure.
 * Validation and lifetime policy live in the modules that use it.
 *
 * @module
 */
import bindings from 'bindings';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `DRM_IOCTL_VERSION` result. */
export interface DrmVersion {
  major: number;
  minor: number;
  patchlevel: number;
  name: string;
  date: string;
  desc: string;
}

/** Pages granted through `/dev/xen/gntalloc`. */
export interface GntallocGrant {
  /** mmap offset of the granted pages on the gntalloc fd. */
  index: number;
  /** One grant reference per page. */
  refs: Uint32Array;
}

/** mmap protection bits accepted by {@link NativeBinding.mmap}. */
export const PROT_READ = 1;
export const PROT_WRITE = 2;

export interface NativeBinding {
  /** open(2) with O_CLOEXEC; read-write unless `write` is false. */
  open(path: string, write?: boolean): number;
  close(fd: number): void;
  /** fcntl(F_DUPFD_CLOEXEC). */
  dup(fd: number): number;
  /** lseek(fd, 0, SEEK_END): the size of a dma-buf. */
  seekEnd(fd: number): number;
  /** mmap(MAP_SHARED) as an external ArrayBuffer; unmapped by {@link munmap} or the GC. */
  mmap(fd: number, length: number, prot: number, offset: number | bigint): ArrayBuffer;
  /** Unmaps now and detaches the buffer; false if it was not a live mapping. */
  munmap(buffer: ArrayBuffer): boolean;

  drmVersion(fd: number): DrmVersion;

  gntallocAlloc(fd: number, domid: number, count: number, writable: boolean): GntallocGrant;
  gntallocDealloc(fd: number, index: number, count: number): void;

  /** Maps `refs` of `domid`; returns the mmap offset on the gntdev fd. */
  gntdevMapGrantRefs(fd: number, domid: number, refs: Uint32Array): number;
  gntdevUnmapGrantRef(fd: number, index: number, count: number): void;
}

/** Shape of the errors the addon throws (like Node's own fs errors). */
export interface NativeError extends Error {
  errno: number;
  code: string;
  syscall: string;
  path?: string;
}

let loaded: NativeBinding | undefined;

/** The addon, loaded on first use so that importing this package never needs it. */
export function native(): NativeBinding {
  // The package root is one level above this file (lib/ or dist/).
  loaded ??= bindings({
    bindings: 'xen_zcopy',
    module_root: dirname(dirname(fileURLToPath(import.meta.url))),
  }) as NativeBinding;
  return loaded;
}

/** True when `e` is an error thrown by the addon. */
export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as Partial<NativeError>).errno === 'number' &&
    typeof (e as Partial<NativeError>).syscall === 'string';
}
