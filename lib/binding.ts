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

/** `DRM_IOCTL_MODE_CREATE_DUMB` result. */
export interface DumbBuffer {
  handle: number;
  pitch: number;
  size: number;
}

/** `DRM_IOCTL_XEN_ZCOPY_DUMB_FROM_REFS` result. */
export interface FromRefsResult {
  /** GEM handle on the zcopy device fd. */
  handle: number;
  pitch: number;
  /** pitch x height in bytes. */
  size: number;
  /** For `zcopyWaitFree`; scoped to the fd that created it. */
  waitHandle: number;
}

/** `zcopyImport` result: FROM_REFS and its PRIME export. */
export interface ImportResult extends FromRefsResult {
  /** The exported dma-buf (DRM_CLOEXEC | DRM_RDWR), owned by the caller. */
  dmabufFd: number;
}

/** One lane of the addon's thread pool. */
export interface PoolLaneStats {
  threads: number;
  idle: number;
  queued: number;
  maxThreads: number;
}

/**
 * State of the addon's blocking-call thread pool (per environment: the main
 * thread and each Worker have their own). Totals over both lanes: `work`
 * (FROM_REFS, TO_REFS, closeAsync, GRANT_COPY) and `wait` (WAIT_FREE), so a
 * pending wait never delays an import or a close.
 */
export interface PoolStats extends PoolLaneStats {
  /** Promises not settled yet. */
  outstanding: number;
  lanes: { work: PoolLaneStats; wait: PoolLaneStats };
}

/** mmap protection bits accepted by {@link NativeBinding.mmap}. */
export const PROT_READ = 1;
export const PROT_WRITE = 2;

/** `/dev/xen/evtchn` in the addon (see lib/xen/evtchn.ts). */
export interface EvtchnDeviceNative {
  bindInterdomain(remoteDomain: number, remotePort: number): number;
  bindUnbound(remoteDomain: number): number;
  notify(port: number): void;
  unbind(port: number): void;
  unmask(port: number): void;
  /** Pending ports, on the event loop. */
  start(callback: (err: NativeError | null, ports: number[]) => void): void;
  close(): void;
}

/** A display mode (`struct drm_mode_modeinfo`). */
export interface KmsModeInfo {
  clock: number;
  hdisplay: number;
  hsyncStart: number;
  hsyncEnd: number;
  htotal: number;
  hskew: number;
  vdisplay: number;
  vsyncStart: number;
  vsyncEnd: number;
  vtotal: number;
  vscan: number;
  vrefresh: number;
  flags: number;
  type: number;
  name: string;
}

/** `DRM_IOCTL_MODE_GETCONNECTOR` result. */
export interface KmsConnectorInfo {
  id: number;
  type: number;
  typeId: number;
  /** 1 connected, 2 disconnected, 3 unknown. */
  connection: number;
  encoderId: number;
  encoders: number[];
  mmWidth: number;
  mmHeight: number;
  modes: KmsModeInfo[];
}

/** A DRM event read from a card fd (flip complete: type 2). */
export interface KmsEvent {
  type: number;
  userData?: bigint;
  sequence?: number;
  tvSec?: number;
  tvUsec?: number;
  crtcId?: number;
}

/** Readability of an fd on the event loop (the fd stays the caller's). */
export interface FdWatchNative {
  start(callback: (err: NativeError | null) => void): void;
  stop(): void;
}

export interface NativeBinding {
  /** open(2) with O_CLOEXEC; read-write unless `write` is false. */
  open(path: string, write?: boolean): number;
  close(fd: number): void;
  /** close(2) on the blocking pool (the last close of a dma-buf can take long). */
  closeAsync(fd: number): Promise<void>;
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
  /** IOCTL_GNTDEV_GRANT_COPY of whole pages into `dest`, on the blocking pool. */
  gntdevGrantCopyFromRefs(fd: number, domid: number, refs: Uint32Array, dest: Uint8Array): Promise<void>;

  drmPrimeHandleToFd(fd: number, handle: number): number;
  drmPrimeFdToHandle(fd: number, dmabufFd: number): number;
  drmGemClose(fd: number, handle: number): void;
  drmModeCreateDumb(fd: number, width: number, height: number, bpp: number): DumbBuffer;
  drmModeMapDumb(fd: number, handle: number): number;

  drmModeDestroyDumb(fd: number, handle: number): void;
  drmSetMaster(fd: number): void;
  drmDropMaster(fd: number): void;

  kmsResources(fd: number): { crtcs: number[]; connectors: number[]; encoders: number[]; minWidth: number;
    maxWidth: number; minHeight: number; maxHeight: number };
  kmsConnector(fd: number, id: number): KmsConnectorInfo;
  kmsEncoder(fd: number, id: number): { id: number; type: number; crtcId: number; possibleCrtcs: number };
  kmsPlanes(fd: number): number[];
  kmsPlane(fd: number, id: number): { id: number; crtcId: number; fbId: number; possibleCrtcs: number; formats: number[] };
  kmsProperties(fd: number, objectId: number, objectType: number): { id: number; name: string; value: bigint }[];
  kmsSetClientCap(fd: number, capability: number, value: number): void;
  kmsCreateModeBlob(fd: number, mode: KmsModeInfo): number;
  kmsDestroyBlob(fd: number, blobId: number): void;
  kmsAddFb2(fd: number, width: number, height: number, fourcc: number, handles: Uint32Array, pitches: Uint32Array,
    offsets: Uint32Array): number;
  kmsRmFb(fd: number, fbId: number): void;
  /** One atomic commit; returns the writeback out-fence fd (pair `fenceIndex`) or -1. */
  kmsAtomic(fd: number, flags: number, objects: Uint32Array, counts: Uint32Array, props: Uint32Array,
    values: BigUint64Array, userData: bigint, fenceIndex: number): number;
  /** The DRM events queued now; never blocks. */
  kmsReadEvents(fd: number): KmsEvent[];
  FdWatch: new (fd: number) => FdWatchNative;

  /** DMA_BUF_IOCTL_SYNC with {@link NativeBinding.DMA_BUF_SYNC} flags. */
  dmabufSync(fd: number, flags: number): void;
  readonly DMA_BUF_SYNC: { READ: number; WRITE: number; START: number; END: number };

  /** FROM_REFS on the blocking pool. */
  zcopyFromRefs(fd: number, domid: number, refs: Uint32Array, width: number, height: number, bpp: number,
    flags?: number): Promise<FromRefsResult>;
  /**
   * FROM_REFS and the PRIME export as one pool job (the export's failure
   * undoes the import). The refs are checked first, on the native copy:
   * a RangeError with code ERR_XZC_BAD_REFS when fewer than the buffer's pages,
   * a 0 or a repeat. `size` is one page per ref.
   */
  zcopyImport(fd: number, domid: number, refs: Uint32Array, width: number, height: number, bpp: number,
    flags?: number): Promise<ImportResult>;
  /**
   * A guest buffer's teardown as one pool job: GEM_CLOSE of `handle` (0:
   * none), close of `dmabufFd` (< 0: none), then WAIT_FREE_FD (`waitHandle`
   * 0: none, and `freed` is false). `freed` when
   * the buffer was freed by then; otherwise `waitFd` (owned by the caller)
   * polls readable once it is. Rejects with the GEM_CLOSE error (nothing is
   * waited for then) or WAIT_FREE_FD's (ENOENT: freed and waited for before).
   */
  zcopyRelease(fd: number, handle: number, dmabufFd: number, waitHandle: number): Promise<{ freed: boolean; waitFd: number }>;
  /** zcopyImport on the calling thread (no pool hand-off; blocks while Xen maps the grants). */
  zcopyImportSync(fd: number, domid: number, refs: Uint32Array, width: number, height: number, bpp: number,
    flags?: number): ImportResult;
  /**
   * zcopyRelease on the calling thread, after the importers' GEM_CLOSEs
   * (`gemCloses`: fd, handle pairs; a failure is reported, the teardown goes on).
   */
  zcopyReleaseSync(fd: number, handle: number, dmabufFd: number, waitHandle: number, gemCloses?: readonly number[]):
    { freed: boolean; waitFd: number; gemCloseError?: NativeError };
  /** WAIT_FREE_FD (this driver's extension): a wait fd that polls readable once the buffer is freed. */
  zcopyWaitFreeFd(fd: number, waitHandle: number): number;
  /** poll(POLLIN) without waiting. */
  fdReadable(fd: number): boolean;
  /** TO_REFS on the blocking pool: `count` must equal the imported buffer's pages. */
  zcopyToRefs(fd: number, handle: number, domid: number, count: number): Promise<Uint32Array>;
  /** WAIT_FREE on the blocking pool; rejects with code ETIMEDOUT or ENOENT. */
  zcopyWaitFree(fd: number, waitHandle: number, timeoutMs: number): Promise<void>;
  /**
   * Issues ioctl `request` with raw struct bytes (updated in place with what
   * the kernel returned) and returns the errno (0 on success). `refs` sets the
   * pointer at offset 8: a Uint32Array, 'null' or 'unmapped'.
   */
  zcopyIoctlRaw(fd: number, request: number, bytes: Uint8Array, refs?: Uint32Array | 'null' | 'unmapped'): number;
  readonly zcopyIoctls: { FROM_REFS: number; TO_REFS: number; WAIT_FREE: number; WAIT_FREE_FD: number; WAIT_FREE_FD_IF_BUSY: number;
    FLAG_CONTIGUOUS: number };

  EvtchnDevice: new (path?: string) => EvtchnDeviceNative;

  /** Copies the requests between reqCons and req_prod; re-arms req_event (lib/xen/ring.ts). */
  ringTakeRequests(page: ArrayBuffer, offset: number, reqCons: number):
    { cons: number; requests: Buffer; more: boolean } | { overflow: true; prod: number };
  /** Writes responses after rspProd and publishes them; notify: the frontend asked for an event. */
  ringPushResponses(page: ArrayBuffer, offset: number, rspProd: number, responses: Uint8Array): { rspProd: number; notify: boolean };
  /** Pushes events that fit into an event page. */
  eventPush(page: ArrayBuffer, offset: number, inProd: number, events: Uint8Array): { inProd: number; pushed: number };
  /** A shared 32-bit word with acquire / release order. */
  ringLoad32(page: ArrayBuffer, offset: number, byteOffset: number): number;
  ringStore32(page: ArrayBuffer, offset: number, byteOffset: number, value: number): void;

  /** Bounds each lane (default 16 threads each). */
  poolSetMaxThreads(maxThreads: number): void;
  poolStats(): PoolStats;
  /** Test hook: a job that blocks one thread of `lane` for `ms` (nanosleep). */
  poolTestSleep(lane: 'work' | 'wait', ms: number): Promise<void>;
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
