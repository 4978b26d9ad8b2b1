/**
 * Where a display backend's frames go. The backend hands a sink every
 * framebuffer a guest attaches and every frame it flips; the sink says when a
 * frame is shown (that releases the guest's vblank event).
 *
 * @module
 */
import { DrmDevice } from '../drm/device.js';
import type { DmaBuf } from '../drm/dmabuf.js';
import type { ReadonlyBytes } from '../resource.js';

/** A guest buffer (DBUF_CREATE) as the backend holds it. */
export interface DisplayBuffer {
  readonly cookie: bigint;
  readonly width: number;
  readonly height: number;
  readonly bpp: number;
  readonly pitch: number;
  /** The guest's pages as a dma-buf (zero copy). */
  readonly dmabuf: DmaBuf;
}

/** A framebuffer (FB_ATTACH) on a display buffer. */
export interface Framebuffer {
  readonly cookie: bigint;
  readonly width: number;
  readonly height: number;
  /** DRM fourcc. */
  readonly fourcc: number;
  readonly buffer: DisplayBuffer;
}

/** One connector of a guest's virtual display. */
export interface ConnectorInfo {
  readonly domid: number;
  readonly device: number;
  readonly index: number;
  /** The resolution libxl configured ("WxH" in xenstore). */
  readonly width: number;
  readonly height: number;
}

/** Receives a guest display's framebuffers and frames. Calls for one device never overlap. */
export interface DisplaySink {
  /** A framebuffer appeared (import it, create a KMS fb...). */
  attach(fb: Framebuffer): Promise<void> | void;
  /** A framebuffer goes away (it is not shown any more). */
  detach(fb: Framebuffer): Promise<void> | void;
  /** The connector's mode is set to `fb`, or the connector is off (undefined). */
  setConfig(conn: ConnectorInfo, fb: Framebuffer | undefined): Promise<void> | void;
  /** Shows `fb` on the connector; resolves once it is on screen. */
  show(conn: ConnectorInfo, fb: Framebuffer): Promise<void>;
  /** The device is gone: release everything. */
  close(): Promise<void>;
}

/** What a sink factory learns about a new device. */
export interface SinkContext {
  readonly domid: number;
  readonly device: number;
  readonly connectors: readonly ConnectorInfo[];
}

export type SinkFactory = (ctx: SinkContext) => DisplaySink | Promise<DisplaySink>;

/**
 * A frame as a sink saw it, for tests and tools: the guest's own pages,
 * read-only, valid only during the call (copy what you keep).
 */
export interface ShownFrame {
  readonly conn: ConnectorInfo;
  readonly fb: Framebuffer;
  readonly pixels: ReadonlyBytes;
}

/** Paces `show()` to a virtual refresh rate: resolves at the next tick of a clock of `hz`. */
export function nextVblank(hz: number, epoch: number): Promise<void> {
  if (hz <= 0) return Promise.resolve();
  const period = 1000 / hz;
  const now = performance.now();
  const next = epoch + Math.ceil((now - epoch) / period + 1e-9) * period;
  return new Promise((r) => setTimeout(r, Math.max(0, next - now)));
}

export interface ImportSinkOptions {
  /** The DRM driver that imports every framebuffer (default 'vgem'). */
  driver?: string;
  /** Virtual refresh rate that paces show() (default 60; 0 = as fast as frames come). */
  refreshHz?: number;
  /** Called with each shown frame's pixels, read through the dma-buf (CPU access bracketed). */
  onFrame?: (frame: ShownFrame) => void;
}

/**
 * A sink that imports every guest framebuffer into a DRM driver (vgem by
 * default: the zero-copy import a scan-out engine would make) and, if asked,
 * reads each shown frame back through its dma-buf.
 */
export class ImportSink implements DisplaySink {
  readonly #dev: DrmDevice;
  readonly #hz: number;
  readonly #epoch = performance.now();
  readonly #onFrame: ImportSinkOptions['onFrame'];

  constructor(opts: ImportSinkOptions = {}) {
    this.#dev = DrmDevice.open(opts.driver ?? 'vgem');
    this.#hz = opts.refreshHz ?? 60;
    this.#onFrame = opts.onFrame;
  }

  attach(fb: Framebuffer): void {
    this.#dev.importDmaBuf(fb.buffer.dmabuf);
  }

  async detach(fb: Framebuffer): Promise<void> {
    await this.#dev.release(fb.buffer.dmabuf);
  }

  setConfig(): void {
    // a virtual display: nothing to program
  }

  async show(conn: ConnectorInfo, fb: Framebuffer): Promise<void> {
    if (this.#onFrame) {
      const view = fb.buffer.dmabuf.map('read');
      try {
        this.#onFrame({ conn, fb, pixels: view.bytes });
      } finally {
        view.closeSync();
      }
    }
    await nextVblank(this.#hz, this.#epoch);
  }

  async close(): Promise<void> {
    await this.#dev.close();
  }
}
