/**
 * KMS scan-out through atomic mode setting: a display controller (or vkms)
 * shows dma-bufs, page flips complete on the event loop, and a writeback
 * connector captures what was scanned out.
 *
 * One {@link KmsDevice} per card, and it is the card's DRM master (only the
 * master may set modes): open it once per process and share it between the
 * sinks of every guest. Nothing here blocks the JavaScript thread: commits are
 * non-blocking, flip-complete events and writeback fences arrive through the
 * event loop, and every wait has a bound.
 *
 * @module
 */
import {
  native, type FdWatchNative, type KmsConnectorInfo, type KmsModeInfo, type NativeBinding,
} from '../binding.js';
import { ClosedError, fromNative, TimeoutError, ValidationError, XenZcopyError } from '../errors.js';
import { leaks, runAll, SyncClosable } from '../resource.js';
import { checkInt } from '../validate.js';
import { DrmDevice } from './device.js';
import type { DmaBuf } from './dmabuf.js';

export type { KmsModeInfo } from '../binding.js';

const OBJECT = { CRTC: 0xcccccccc, CONNECTOR: 0xc0c0c0c0, PLANE: 0xeeeeeeee } as const;
const CLIENT_CAP = { UNIVERSAL_PLANES: 2, ATOMIC: 3, WRITEBACK_CONNECTORS: 5 } as const;
/** Atomic commit flags (`DRM_MODE_*`). */
export const ATOMIC_FLAGS = { PAGE_FLIP_EVENT: 0x1, TEST_ONLY: 0x100, NONBLOCK: 0x200, ALLOW_MODESET: 0x400 } as const;
const EVENT_FLIP_COMPLETE = 2;
const CONNECTOR_TYPE_WRITEBACK = 18;
const CONNECTION_CONNECTED = 1;
const PLANE_TYPE_PRIMARY = 1n;
const MODE_TYPE_PREFERRED = 1 << 3;
const MODE_TYPE_USERDEF = 1 << 5;

/** `XR24`: 32 bpp, 8 bits per colour, the high byte unused. */
export const DRM_FORMAT_XRGB8888 = 0x34325258;

/** How long a flip, a modeset or a writeback may take before it counts as lost. */
export const KMS_TIMEOUT_MS = 2000;

/** Something about KMS itself went wrong (no output, not master, a lost event). */
export class KmsError extends XenZcopyError {
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** One display pipe: a connector, the CRTC that drives it and its primary plane. */
export interface KmsOutput {
  /** e.g. 'Virtual-1' (connector type name and index). */
  readonly name: string;
  readonly connectorId: number;
  readonly crtcId: number;
  readonly planeId: number;
  /** A writeback connector that can capture this CRTC, if the driver has one. */
  readonly writebackId: number | undefined;
  /** Modes the connector reports (the first preferred one first). */
  readonly modes: readonly KmsModeInfo[];
}

/** A framebuffer on the device (ADDFB2 of an imported dma-buf). */
export class KmsFramebuffer extends SyncClosable {
  #id: number;
  constructor(
    readonly kms: KmsDevice, id: number, readonly dmabuf: DmaBuf,
    readonly width: number, readonly height: number, readonly fourcc: number, readonly pitch: number,
  ) {
    super();
    this.#id = id;
  }

  get id(): number {
    if (this.#id === 0) throw new ClosedError('KMS framebuffer');
    return this.#id;
  }

  get closed(): boolean {
    return this.#id === 0;
  }

  /** Removes the framebuffer (a plane still showing it is turned off) and drops the import. */
  closeSync(): void {
    if (this.#id === 0) return;
    const id = this.#id;
    this.#id = 0;
    this.kms.removeFramebuffer(this, id);
  }
}

/** A Dom0 buffer of the KMS driver itself (copy mode's target, a writeback capture). */
export interface KmsDumbBuffer {
  readonly dmabuf: DmaBuf;
  readonly fb: KmsFramebuffer;
}

const CONNECTOR_NAMES: Record<number, string> = {
  1: 'VGA', 2: 'DVI-I', 3: 'DVI-D', 4: 'DVI-A', 5: 'Composite', 6: 'SVIDEO', 7: 'LVDS', 8: 'Component',
  9: 'DIN', 10: 'DP', 11: 'HDMI-A', 12: 'HDMI-B', 13: 'TV', 14: 'eDP', 15: 'Virtual', 16: 'DSI', 17: 'DPI',
  18: 'Writeback', 19: 'SPI', 20: 'USB',
};

/**
 * A mode of exactly `width` x `height`: the connector's own (preferred first,
 * then the one closest to 60 Hz), otherwise one made up with 60 Hz timings
 * (atomic KMS takes any mode the CRTC can drive; vkms drives any size).
 */
export function modeFor(modes: readonly KmsModeInfo[], width: number, height: number): KmsModeInfo {
  const exact = modes.filter((m) => m.hdisplay === width && m.vdisplay === height);
  exact.sort((a, b) => (b.type & MODE_TYPE_PREFERRED) - (a.type & MODE_TYPE_PREFERRED) ||
    Math.abs(a.vrefresh - 60) - Math.abs(b.vrefresh - 60));
  if (exact[0]) return exact[0];
  const htotal = width + 160;
  const vtotal = height + 30;
  return {
    clock: Math.ceil((htotal * vtotal * 60) / 1000), hdisplay: width, hsyncStart: width + 48, hsyncEnd: width + 80,
    htotal, hskew: 0, vdisplay: height, vsyncStart: height + 3, vsyncEnd: height + 10, vtotal, vscan: 0, vrefresh: 60,
    flags: 0, type: MODE_TYPE_USERDEF, name: `${width}x${height}`,
  };
}

/** What one atomic commit sets: per object, property name → value. */
class AtomicRequest {
  readonly entries = new Map<number, { objType: number; props: Map<string, bigint> }>();
  fence: { obj: number } | undefined;

  set(obj: number, objType: number, prop: string, value: number | bigint): this {
    let e = this.entries.get(obj);
    if (!e) this.entries.set(obj, (e = { objType, props: new Map() }));
    e.props.set(prop, BigInt(value));
    return this;
  }

  /** WRITEBACK_OUT_FENCE_PTR of writeback connector `obj`: commit() returns the fence fd. */
  outFence(obj: number): this {
    this.set(obj, OBJECT.CONNECTOR, 'WRITEBACK_OUT_FENCE_PTR', 0);
    this.fence = { obj };
    return this;
  }
}

/**
 * A KMS card, opened as its DRM master with atomic mode setting.
 *
 * ```ts
 * await using kms = KmsDevice.open('vkms');
 * const out = kms.claimOutput();
 * const fb = kms.addFramebuffer(dmabuf, { width, height, pitch });
 * await kms.modeset(out, modeFor(out.modes, width, height), fb);
 * await kms.flip(out, fb);
 * ```
 */
export class KmsDevice {
  readonly drm: DrmDevice;
  readonly #b: NativeBinding;
  readonly #props = new Map<number, Map<string, number>>();
  readonly #pending = new Map<bigint, { resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  readonly #fbs = new Set<KmsFramebuffer>();
  readonly #claimed = new Set<number>();
  readonly #outputs: KmsOutput[];
  /** lit CRTCs: their mode blob, and whether they drive the writeback connector */
  readonly #active = new Map<number, { blob: number; capture: boolean }>();
  readonly #watch: FdWatchNative;
  readonly writeback: boolean;
  #nextEvent = 1n;
  #closing: Promise<void> | undefined;

  private constructor(drm: DrmDevice, b: NativeBinding) {
    this.drm = drm;
    this.#b = b;
    const fd = drm.fd;
    try {
      b.drmSetMaster(fd);
    } catch (e) {
      const err = fromNative(e, `becoming DRM master of ${drm.path}`);
      throw new KmsError('ERR_XZC_NOT_MASTER',
        `${err.message}: another process (a compositor, a console) is DRM master of ${drm.path}; ` +
        'stop it or give this process the card', { cause: err });
    }
    try {
      b.kmsSetClientCap(fd, CLIENT_CAP.UNIVERSAL_PLANES, 1);
      b.kmsSetClientCap(fd, CLIENT_CAP.ATOMIC, 1);
    } catch (e) {
      throw new KmsError('ERR_XZC_NO_ATOMIC', `${drm.driver} (${drm.path}) has no atomic mode setting`, { cause: e });
    }
    let writeback = true;
    try {
      b.kmsSetClientCap(fd, CLIENT_CAP.WRITEBACK_CONNECTORS, 1);
    } catch {
      writeback = false;
    }
    this.writeback = writeback;
    this.#outputs = this.#discover();
    this.#watch = new b.FdWatch(fd);
    this.#watch.start((err) => this.#onReadable(err));
  }

  /** Opens the card of driver `nameOrPath` (e.g. 'vkms') or a /dev/dri path, as its master. */
  static open(nameOrPath: string, opts: { binding?: NativeBinding } = {}): KmsDevice {
    const b = opts.binding ?? native();
    const drm = DrmDevice.open(nameOrPath, { binding: b });
    try {
      const kms = new KmsDevice(drm, b);
      leaks.register(kms, { what: `KmsDevice ${drm.path}`, release: () => drm.closeSync() }, kms);
      return kms;
    } catch (e) {
      drm.closeSync();
      throw e;
    }
  }

  get closed(): boolean {
    return this.drm.closed;
  }

  /** Every display pipe with a connected connector (writeback connectors are not outputs). */
  get outputs(): readonly KmsOutput[] {
    return this.#outputs;
  }

  /** Claims a free output (undefined if all are taken). */
  claimOutput(): KmsOutput | undefined {
    this.drm.fd; // throws when closed
    const out = this.#outputs.find((o) => !this.#claimed.has(o.crtcId));
    if (out) this.#claimed.add(out.crtcId);
    return out;
  }

  /** Gives an output back (turn it off first). */
  releaseOutput(out: KmsOutput): void {
    this.#claimed.delete(out.crtcId);
  }

  #discover(): KmsOutput[] {
    const b = this.#b;
    const fd = this.drm.fd;
    const res = b.kmsResources(fd);
    const planes = b.kmsPlanes(fd).map((id) => {
      const p = b.kmsPlane(fd, id);
      const type = b.kmsProperties(fd, id, OBJECT.PLANE).find((x) => x.name === 'type')?.value;
      return { ...p, type };
    });
    const crtcsOf = (c: KmsConnectorInfo): number[] => {
      let mask = 0;
      for (const e of c.encoders) mask |= b.kmsEncoder(fd, e).possibleCrtcs;
      return res.crtcs.filter((_, i) => (mask >>> i) & 1);
    };
    const connectors = res.connectors.map((id) => b.kmsConnector(fd, id));
    const writebacks = connectors.filter((c) => c.type === CONNECTOR_TYPE_WRITEBACK);
    const outputs: KmsOutput[] = [];
    const used = new Set<number>();
    for (const c of connectors) {
      if (c.type === CONNECTOR_TYPE_WRITEBACK || c.connection !== CONNECTION_CONNECTED) continue;
      const crtcId = crtcsOf(c).find((id) => !used.has(id));
      if (crtcId === undefined) continue;
      const idx = res.crtcs.indexOf(crtcId);
      const plane = planes.find((p) => p.type === PLANE_TYPE_PRIMARY && ((p.possibleCrtcs >>> idx) & 1) === 1);
      if (!plane) continue;
      used.add(crtcId);
      const wb = writebacks.find((w) => crtcsOf(w).includes(crtcId));
      const modes = [...c.modes].sort((x, y) => (y.type & MODE_TYPE_PREFERRED) - (x.type & MODE_TYPE_PREFERRED));
      outputs.push({
        name: `${CONNECTOR_NAMES[c.type] ?? 'Unknown'}-${c.typeId}`, connectorId: c.id, crtcId, planeId: plane.id,
        writebackId: wb?.id, modes,
      });
    }
    return outputs;
  }

  #propId(obj: number, objType: number, name: string): number {
    let m = this.#props.get(obj);
    if (!m) {
      m = new Map(this.#b.kmsProperties(this.drm.fd, obj, objType).map((p) => [p.name, p.id]));
      this.#props.set(obj, m);
    }
    const id = m.get(name);
    if (id === undefined) throw new KmsError('ERR_XZC_KMS', `KMS object ${obj} has no property ${name}`);
    return id;
  }

  /** Commits `req`; with an event, resolves when the flip completes (bounded). Returns the out-fence fd or -1. */
  #commit(req: AtomicRequest, flags: number, what: string): { fence: number; done: Promise<void> | undefined } {
    const objs: number[] = [];
    const counts: number[] = [];
    const props: number[] = [];
    const values: bigint[] = [];
    let fenceIndex = -1;
    for (const [obj, { objType, props: pm }] of req.entries) {
      objs.push(obj);
      counts.push(pm.size);
      for (const [name, value] of pm) {
        if (req.fence?.obj === obj && name === 'WRITEBACK_OUT_FENCE_PTR') fenceIndex = props.length;
        props.push(this.#propId(obj, objType, name));
        values.push(value);
      }
    }
    const event = (flags & ATOMIC_FLAGS.PAGE_FLIP_EVENT) !== 0;
    const userData = event ? this.#nextEvent++ : 0n;
    let fence: number;
    try {
      fence = this.#b.kmsAtomic(this.drm.fd, flags, Uint32Array.from(objs), Uint32Array.from(counts),
        Uint32Array.from(props), BigUint64Array.from(values), userData, fenceIndex);
    } catch (e) {
      throw fromNative(e, what);
    }
    if (!event) return { fence, done: undefined };
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(userData);
        reject(new TimeoutError('DRM_IOCTL_MODE_ATOMIC', `${what}: no flip-complete event in ${KMS_TIMEOUT_MS} ms`));
      }, KMS_TIMEOUT_MS);
      this.#pending.set(userData, { resolve, reject, timer });
    });
    return { fence, done };
  }

  #onReadable(err: Error | null): void {
    if (err || this.drm.closed) return;
    let events;
    try {
      events = this.#b.kmsReadEvents(this.drm.fd);
    } catch {
      return; // a read error leaves the pending flips to their time-outs
    }
    for (const ev of events) {
      if (ev.type !== EVENT_FLIP_COMPLETE || ev.userData === undefined) continue;
      const p = this.#pending.get(ev.userData);
      if (!p) continue;
      this.#pending.delete(ev.userData);
      clearTimeout(p.timer);
      p.resolve();
    }
  }

  /** Waits (on the event loop, bounded) until a sync_file fence fd signals, then closes it. */
  #waitFence(fence: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const watch = new this.#b.FdWatch(fence);
      const finish = (e?: Error): void => {
        clearTimeout(timer);
        watch.stop();
        this.#b.close(fence);
        if (e) reject(e);
        else resolve();
      };
      const timer = setTimeout(() => finish(new TimeoutError('poll', `${what}: the writeback fence did not signal in ${KMS_TIMEOUT_MS} ms`)), KMS_TIMEOUT_MS);
      watch.start((err) => finish(err ? fromNative(err, what) : undefined));
    });
  }

  /** Adds a framebuffer over `dmabuf` (imported into this device: zero copy). */
  addFramebuffer(dmabuf: DmaBuf, f: { width: number; height: number; pitch: number; fourcc?: number; offset?: number }): KmsFramebuffer {
    const fourcc = f.fourcc ?? DRM_FORMAT_XRGB8888;
    checkInt('width', f.width, 1, 16384);
    checkInt('height', f.height, 1, 16384);
    checkInt('pitch', f.pitch, 1, 0xffffffff);
    const offset = checkInt('offset', f.offset ?? 0, 0, 0xffffffff);
    if (offset + f.pitch * f.height > dmabuf.size) {
      throw new ValidationError(`a ${f.width}x${f.height} framebuffer of pitch ${f.pitch} needs more than the dma-buf's ${dmabuf.size} bytes`);
    }
    const handle = this.drm.importDmaBuf(dmabuf);
    let id: number;
    try {
      id = this.#b.kmsAddFb2(this.drm.fd, f.width, f.height, fourcc, Uint32Array.of(handle), Uint32Array.of(f.pitch),
        Uint32Array.of(offset));
    } catch (e) {
      this.drm.release(dmabuf);
      throw fromNative(e, `adding a ${f.width}x${f.height} framebuffer on ${this.drm.driver}`);
    }
    const fb = new KmsFramebuffer(this, id, dmabuf, f.width, f.height, fourcc, f.pitch);
    this.#fbs.add(fb);
    return fb;
  }

  /** @internal KmsFramebuffer.closeSync(). */
  removeFramebuffer(fb: KmsFramebuffer, id: number): void {
    if (!this.#fbs.delete(fb) || this.drm.closed) return;
    try {
      this.#b.kmsRmFb(this.drm.fd, id);
    } finally {
      this.drm.release(fb.dmabuf);
    }
  }

  /** A dumb buffer of this driver (XRGB8888) with its framebuffer. */
  async createDumbBuffer(width: number, height: number): Promise<KmsDumbBuffer> {
    const dmabuf = this.drm.createDumbDmaBuf(width, height, 32);
    try {
      const fb = this.addFramebuffer(dmabuf, { width, height, pitch: dmabuf.format!.pitch });
      return { dmabuf, fb };
    } catch (e) {
      await dmabuf.close();
      throw e;
    }
  }

  /**
   * Lights `out` with `mode` showing `fb`; resolves once the mode is on. With
   * `capture`, the CRTC drives the output's writeback connector instead of its
   * display connector, so that flips can capture what it composes (vkms's
   * writeback cannot clone another connector; a driver whose can would still
   * be driven this way).
   */
  async modeset(out: KmsOutput, mode: KmsModeInfo, fb: KmsFramebuffer, opts: { capture?: boolean } = {}): Promise<void> {
    const fd = this.drm.fd;
    if (opts.capture && (out.writebackId === undefined || !this.writeback)) {
      throw new KmsError('ERR_XZC_NO_WRITEBACK', `${this.drm.driver} has no writeback connector for ${out.name}`);
    }
    let blob: number;
    try {
      blob = this.#b.kmsCreateModeBlob(fd, mode);
    } catch (e) {
      throw fromNative(e, `creating a ${mode.hdisplay}x${mode.vdisplay} mode`);
    }
    const req = new AtomicRequest()
      .set(out.connectorId, OBJECT.CONNECTOR, 'CRTC_ID', opts.capture ? 0 : out.crtcId)
      .set(out.crtcId, OBJECT.CRTC, 'MODE_ID', blob)
      .set(out.crtcId, OBJECT.CRTC, 'ACTIVE', 1);
    this.#setPlane(req, out, fb, mode.hdisplay, mode.vdisplay);
    if (out.writebackId !== undefined && this.writeback) {
      req.set(out.writebackId, OBJECT.CONNECTOR, 'CRTC_ID', opts.capture ? out.crtcId : 0);
    }
    let done: Promise<void> | undefined;
    try {
      ({ done } = await this.#retryBusy(() => this.#commit(req,
        ATOMIC_FLAGS.ALLOW_MODESET | ATOMIC_FLAGS.NONBLOCK | ATOMIC_FLAGS.PAGE_FLIP_EVENT, `modeset of ${out.name}`)));
    } catch (e) {
      this.#b.kmsDestroyBlob(fd, blob);
      throw e;
    }
    // the committed state holds its own reference to the mode
    const old = this.#active.get(out.crtcId);
    this.#active.set(out.crtcId, { blob, capture: opts.capture ?? false });
    if (old !== undefined) this.#b.kmsDestroyBlob(fd, old.blob);
    await done;
  }

  #setPlane(req: AtomicRequest, out: KmsOutput, fb: KmsFramebuffer, w: number, h: number): void {
    const P = OBJECT.PLANE;
    req.set(out.planeId, P, 'FB_ID', fb.id).set(out.planeId, P, 'CRTC_ID', out.crtcId)
      .set(out.planeId, P, 'SRC_X', 0).set(out.planeId, P, 'SRC_Y', 0)
      .set(out.planeId, P, 'SRC_W', BigInt(fb.width) << 16n).set(out.planeId, P, 'SRC_H', BigInt(fb.height) << 16n)
      .set(out.planeId, P, 'CRTC_X', 0).set(out.planeId, P, 'CRTC_Y', 0)
      .set(out.planeId, P, 'CRTC_W', w).set(out.planeId, P, 'CRTC_H', h);
  }

  /**
   * Shows `fb` on `out` at the next vblank; resolves when the flip completed
   * (the display's own pacing). With `capture`, the writeback connector also
   * copies the composed output into that buffer, and this resolves once the
   * capture is written.
   */
  async flip(out: KmsOutput, fb: KmsFramebuffer, opts: { capture?: KmsFramebuffer } = {}): Promise<void> {
    const req = new AtomicRequest().set(out.planeId, OBJECT.PLANE, 'FB_ID', fb.id);
    if (opts.capture) {
      if (out.writebackId === undefined || !this.#active.get(out.crtcId)?.capture) {
        throw new KmsError('ERR_XZC_NO_WRITEBACK', `${out.name} was not set up for capture (modeset with { capture: true })`);
      }
      req.set(out.writebackId, OBJECT.CONNECTOR, 'WRITEBACK_FB_ID', opts.capture.id).outFence(out.writebackId);
    }
    const { fence, done } = await this.#retryBusy(() =>
      this.#commit(req, ATOMIC_FLAGS.NONBLOCK | ATOMIC_FLAGS.PAGE_FLIP_EVENT, `page flip on ${out.name}`));
    const fenced = fence >= 0 ? this.#waitFence(fence, `writeback of ${out.name}`) : undefined;
    try {
      await done;
    } finally {
      await fenced;
    }
  }

  /** Turns `out` off (non-blocking; a later commit on it waits for this one). */
  async disable(out: KmsOutput): Promise<void> {
    const req = new AtomicRequest()
      .set(out.connectorId, OBJECT.CONNECTOR, 'CRTC_ID', 0)
      .set(out.planeId, OBJECT.PLANE, 'FB_ID', 0).set(out.planeId, OBJECT.PLANE, 'CRTC_ID', 0)
      .set(out.crtcId, OBJECT.CRTC, 'MODE_ID', 0).set(out.crtcId, OBJECT.CRTC, 'ACTIVE', 0);
    if (out.writebackId !== undefined && this.writeback) req.set(out.writebackId, OBJECT.CONNECTOR, 'CRTC_ID', 0);
    await this.#retryBusy(() => this.#commit(req, ATOMIC_FLAGS.ALLOW_MODESET | ATOMIC_FLAGS.NONBLOCK, `turning ${out.name} off`));
    const lit = this.#active.get(out.crtcId);
    this.#active.delete(out.crtcId);
    if (lit !== undefined) this.#b.kmsDestroyBlob(this.drm.fd, lit.blob);
  }

  /** A non-blocking commit fails with EBUSY while the previous one on its CRTC is in flight: retry, bounded. */
  async #retryBusy<T>(fn: () => T): Promise<T> {
    const deadline = performance.now() + KMS_TIMEOUT_MS;
    for (;;) {
      try {
        return fn();
      } catch (e) {
        if ((e as { code?: string }).code !== 'EBUSY' || performance.now() > deadline) throw e;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** Turns every lit output off, removes the framebuffers and closes the card (dropping master). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.drm.closed) return;
    const lit = this.#outputs.filter((o) => this.#active.has(o.crtcId));
    await runAll([
      ...lit.map((o) => () => this.disable(o)),
      ...[...this.#fbs].map((fb) => () => fb.closeSync()),
      () => {
        this.#watch.stop();
        for (const [, p] of this.#pending) {
          clearTimeout(p.timer);
          p.reject(new ClosedError(`KmsDevice ${this.drm.path}`));
        }
        this.#pending.clear();
        leaks.unregister(this);
        this.drm.closeSync();
      },
    ]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
