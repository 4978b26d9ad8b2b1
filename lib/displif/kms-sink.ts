/**
 * The display backend's KMS sink: each guest connector gets a display pipe of
 * a KMS card and the guest's frames are scanned out from the guest's own pages
 * (zero copy), or, in copy mode, copied into a Dom0 buffer first.
 *
 * @module
 */
import type { DmaBuf } from '../drm/dmabuf.js';
import { KmsDevice, KmsError, modeFor, type KmsDumbBuffer, type KmsFramebuffer, type KmsOutput } from '../drm/kms.js';
import type { ReadonlyMapping, WritableMapping } from '../resource.js';
import type { ConnectorInfo, DisplaySink, Framebuffer, ShownFrame } from './sink.js';

export interface KmsSinkOptions {
  /** The card, shared by the sinks of every guest (it is the card's DRM master). */
  kms: KmsDevice;
  /**
   * Copy mode, the baseline zero copy is measured against: the guest's buffer
   * is mapped once into the backend and each frame is copied (memcpy) into a
   * Dom0 dumb buffer, which is scanned out instead of the guest's pages.
   */
  copy?: boolean;
  /**
   * Called after each shown frame with what the display actually scanned out,
   * captured through the card's writeback connector (valid during the call).
   */
  onCapture?: (frame: ShownFrame) => void;
}

/** One guest connector on a display pipe. */
interface Pipe {
  readonly out: KmsOutput;
  width: number;
  height: number;
  /** copy mode: two Dom0 buffers, scanned out in turn */
  copies: { buf: KmsDumbBuffer; map: WritableMapping }[];
  next: number;
  capture: KmsDumbBuffer | undefined;
}

/**
 * Scans a guest's frames out on a KMS card: SET_CONFIG sets the mode with the
 * guest's framebuffer, PG_FLIP flips to it and resolves at the card's flip
 * event, so the guest is paced by the display's vblank. One display pipe per
 * guest connector while the card has free ones; a connector without one is
 * refused at SET_CONFIG (ENOSPC).
 */
export class KmsSink implements DisplaySink {
  readonly #kms: KmsDevice;
  readonly #copy: boolean;
  readonly #onCapture: KmsSinkOptions['onCapture'];
  /** zero copy: the guest framebuffers as card framebuffers */
  readonly #fbs = new Map<Framebuffer, KmsFramebuffer>();
  /** copy mode: the guest buffers mapped for reading, one mapping per buffer */
  readonly #sources = new Map<DmaBuf, { map: ReadonlyMapping; users: number }>();
  readonly #pipes = new Map<number, Pipe>();

  constructor(opts: KmsSinkOptions) {
    this.#kms = opts.kms;
    this.#copy = opts.copy ?? false;
    this.#onCapture = opts.onCapture;
  }

  get copyMode(): boolean {
    return this.#copy;
  }

  attach(fb: Framebuffer): void {
    const buf = fb.buffer;
    if (this.#copy) {
      const src = this.#sources.get(buf.dmabuf);
      if (src) src.users++;
      else this.#sources.set(buf.dmabuf, { map: buf.dmabuf.map('read'), users: 1 });
      return;
    }
    this.#fbs.set(fb, this.#kms.addFramebuffer(buf.dmabuf, {
      width: fb.width, height: fb.height, pitch: buf.pitch, fourcc: fb.fourcc,
    }));
  }

  detach(fb: Framebuffer): void {
    if (this.#copy) {
      const src = this.#sources.get(fb.buffer.dmabuf);
      if (src && --src.users === 0) {
        this.#sources.delete(fb.buffer.dmabuf);
        src.map.closeSync();
      }
      return;
    }
    const kfb = this.#fbs.get(fb);
    this.#fbs.delete(fb);
    kfb?.closeSync();
  }

  async setConfig(conn: ConnectorInfo, fb: Framebuffer | undefined): Promise<void> {
    const pipe = this.#pipes.get(conn.index);
    if (!fb) {
      if (pipe) await this.#drop(conn.index, pipe);
      return;
    }
    const out = pipe?.out ?? this.#kms.claimOutput();
    if (!out) {
      throw new KmsError('ENOSPC', `no free display pipe on ${this.#kms.drm.driver} for dom${conn.domid} connector ${conn.index}`);
    }
    const p: Pipe = pipe ?? { out, width: 0, height: 0, copies: [], next: 0, capture: undefined };
    this.#pipes.set(conn.index, p);
    try {
      if (p.width !== fb.width || p.height !== fb.height) await this.#resize(p, fb.width, fb.height);
      await this.#kms.modeset(out, modeFor(out.modes, fb.width, fb.height), this.#scanout(p, fb), { capture: p.capture !== undefined });
    } catch (e) {
      if (!pipe) await this.#drop(conn.index, p);
      throw e;
    }
  }

  async show(conn: ConnectorInfo, fb: Framebuffer): Promise<void> {
    const p = this.#pipes.get(conn.index);
    if (!p) return; // not configured: nothing is on screen
    if (fb.width !== p.width || fb.height !== p.height) {
      throw new KmsError('EINVAL', `a ${fb.width}x${fb.height} frame on a ${p.width}x${p.height} mode`);
    }
    await this.#kms.flip(p.out, this.#scanout(p, fb), { capture: p.capture?.fb });
    if (p.capture && this.#onCapture) {
      const view = p.capture.dmabuf.map('read');
      try {
        this.#onCapture({ conn, fb, pixels: view.bytes });
      } finally {
        view.closeSync();
      }
    }
  }

  /** The card framebuffer that shows `fb`: the guest's own (zero copy) or a Dom0 copy of it. */
  #scanout(p: Pipe, fb: Framebuffer): KmsFramebuffer {
    if (!this.#copy) {
      const kfb = this.#fbs.get(fb);
      if (!kfb) throw new KmsError('ENOENT', `framebuffer ${fb.cookie} is not attached`);
      return kfb;
    }
    const src = this.#sources.get(fb.buffer.dmabuf);
    if (!src) throw new KmsError('ENOENT', `framebuffer ${fb.cookie} is not attached`);
    const dst = p.copies[p.next]!;
    p.next = (p.next + 1) % p.copies.length;
    const from = src.map.bytes;
    const to = dst.map.buffer;
    const srcPitch = fb.buffer.pitch;
    const dstPitch = dst.buf.fb.pitch;
    const row = fb.width * 4;
    if (srcPitch === dstPitch) {
      from.copy(to, 0, 0, srcPitch * fb.height);
    } else {
      for (let y = 0; y < fb.height; y++) from.copy(to, y * dstPitch, y * srcPitch, y * srcPitch + row);
    }
    return dst.buf.fb;
  }

  async #resize(p: Pipe, width: number, height: number): Promise<void> {
    await this.#freeBuffers(p);
    p.width = width;
    p.height = height;
    if (this.#copy) {
      for (let i = 0; i < 2; i++) {
        const buf = await this.#kms.createDumbBuffer(width, height);
        p.copies.push({ buf, map: buf.dmabuf.map('write') });
      }
    }
    if (this.#onCapture) {
      if (p.out.writebackId === undefined) throw new KmsError('ERR_XZC_NO_WRITEBACK', `${p.out.name} cannot be captured: no writeback connector`);
      p.capture = await this.#kms.createDumbBuffer(width, height);
    }
  }

  async #freeBuffers(p: Pipe): Promise<void> {
    const copies = p.copies.splice(0);
    const capture = p.capture;
    p.capture = undefined;
    p.width = p.height = 0;
    for (const c of copies) {
      c.map.closeSync();
      c.buf.fb.closeSync();
      await c.buf.dmabuf.close();
    }
    if (capture) {
      capture.fb.closeSync();
      await capture.dmabuf.close();
    }
  }

  async #drop(index: number, p: Pipe): Promise<void> {
    this.#pipes.delete(index);
    try {
      if (p.width) await this.#kms.disable(p.out);
    } finally {
      this.#kms.releaseOutput(p.out);
      await this.#freeBuffers(p);
    }
  }

  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (const [index, p] of [...this.#pipes]) await this.#drop(index, p).catch((e: unknown) => errors.push(e));
    for (const kfb of this.#fbs.values()) kfb.closeSync();
    this.#fbs.clear();
    for (const src of this.#sources.values()) src.map.closeSync();
    this.#sources.clear();
    if (errors.length) throw errors[0];
  }
}
