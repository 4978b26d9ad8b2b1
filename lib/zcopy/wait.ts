/**
 * @internal A guest buffer's wait as a file: WAIT_FREE_FD (this driver's
 * extension of the 2018 UAPI) turns a wait handle into an fd that polls
 * readable once the buffer is freed. Waiting is a uv_poll watch on the event
 * loop, never a blocked thread; the time-out is a timer.
 *
 * @module
 */
import type { FdWatchNative, NativeBinding } from '../binding.js';
import { fromNative, TimeoutError } from '../errors.js';

const SYSCALL = 'DRM_IOCTL_XEN_ZCOPY_DUMB_WAIT_FREE_FD';

/**
 * Owns a wait fd. One watch serves every caller waiting at a time and stops
 * when the last of them is done (freed, timed out), so an abandoned wait
 * keeps neither the event loop nor a thread busy.
 */
export class FreeWait {
  #fd: number;
  #watch: { w: FdWatchNative; freed: Promise<void>; resolve: () => void } | undefined;
  #waiting = 0;

  constructor(readonly b: NativeBinding, fd: number) {
    this.#fd = fd;
  }

  /** Has the buffer been freed? Never blocks. */
  get freed(): boolean {
    return this.#fd >= 0 && this.b.fdReadable(this.#fd);
  }

  /**
   * Resolves once the buffer is freed; rejects with TimeoutError after
   * `timeoutMs` (0: only a check). The fd stays open either way: close() it.
   */
  async until(timeoutMs: number, what: string): Promise<void> {
    if (this.#fd < 0 || this.freed) return; // closed: only ever once freed (or leaked)
    const timeout = () => new TimeoutError(SYSCALL, `${what}: not freed within ${timeoutMs} ms (something still holds the dma-buf)`);
    if (timeoutMs === 0) throw timeout();
    this.#waiting++;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#watched(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(timeout()), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (--this.#waiting === 0) this.#unwatch();
    }
  }

  #watched(): Promise<void> {
    if (this.#watch === undefined) {
      const w = new this.b.FdWatch(this.#fd);
      let resolve!: () => void;
      const freed = new Promise<void>((res, reject) => {
        resolve = res;
        w.start((err) => {
          // level-triggered: one readiness is all it takes
          w.stop();
          if (err) reject(fromNative(err, 'polling a wait fd'));
          else res();
        });
      });
      this.#watch = { w, freed, resolve };
    }
    return this.#watch.freed;
  }

  #unwatch(): void {
    this.#watch?.w.stop();
    this.#watch = undefined;
  }

  /**
   * Closes the fd, once the buffer is known to be freed (or leaked): callers
   * still waiting on it return as freed. Idempotent.
   */
  close(): void {
    this.#watch?.resolve();
    this.#unwatch();
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    this.b.close(fd);
  }
}
