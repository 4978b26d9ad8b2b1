/**
 * A PV display backend (io/displif.h) for Linux's drm_xen_front: it serves
 * every `vdispl` device of every guest that names this domain as its
 * backend, imports the guest's buffers zero-copy through xen_drm_zcopy and
 * hands framebuffers and frames to a {@link DisplaySink}.
 *
 * Everything a guest writes is hostile: xenstore values, ring indices and
 * every request field are checked against the backend's limits; a bad
 * request gets a -errno response, a broken ring closes that device only.
 *
 * @module
 */
import { constants } from 'node:os';

import { DrmDevice } from '../drm/device.js';
import { ZeroCopyDevice } from '../zcopy/device.js';
import { XenZcopyError } from '../errors.js';
import { MAX_DOMID } from '../validate.js';
import { GrantMapper } from '../xen/grants.js';
import { EventChannels, MAX_PORT, type EventChannel } from '../xen/evtchn.js';
import { BackRing, EventRing, RingProtocolError } from '../xen/ring.js';
import { Xenstore, type XsWatch } from '../xen/xenstore.js';
import { directoryPages, parsePageDirectory } from './directory.js';
import {
  DBUF_FLG_REQ_ALLOC, decodeRequest, DisplOp, type DisplRequest, encodePageFlipEvent, encodeResponse,
  FOURCC_BPP, MAX_CONNECTORS, XenbusState,
} from './protocol.js';
import type { ConnectorInfo, DisplayBuffer, DisplaySink, Framebuffer, SinkFactory } from './sink.js';

const E = constants.errno;
const PAGE = 4096;
/**
 * A sink call may take this long: the frontend gives up on a response after
 * 3000 ms and on a frame-done event after 3100 ms, so waiting longer helps no one.
 */
export const SINK_TIMEOUT_MS = 2500;

/** `p`, or a RequestError(ETIMEDOUT) after `ms`. */
async function bounded<T>(p: Promise<T> | T, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve(p),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RequestError(E.ETIMEDOUT, `${what} took more than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Limits on what one guest device may ask for: a guest must not be able to exhaust Dom0. */
export interface DisplayLimits {
  /** Largest width and height of a buffer (Linux's frontend stays within 4095 x 2047). */
  maxWidth: number;
  maxHeight: number;
  /** Largest buffer in bytes. */
  maxBufferBytes: number;
  /** Display buffers one device may hold at once. */
  maxBuffers: number;
  /** Pages of all the buffers of one device together (grant mappings, or Dom0 memory with be-alloc). */
  maxDevicePages: number;
  /** Framebuffers one device may hold at once. */
  maxFramebuffers: number;
}

export const DEFAULT_LIMITS: DisplayLimits = {
  maxWidth: 4096,
  maxHeight: 4096,
  maxBufferBytes: 32 << 20, // one 4095 x 2047 XRGB8888 buffer fits
  maxBuffers: 16,
  maxDevicePages: 32768, // 128 MiB: four of the largest buffers, 16 1080p ones
  maxFramebuffers: 16,
};

/** What the backend reports as it works (a readable log, or JSON lines). */
export type BackendEvent =
  | { type: 'device'; domid: number; device: number; state: string; detail?: string }
  | { type: 'request'; domid: number; device: number; connector: number; op: number; id: number; status: number; ms: number }
  | { type: 'frame'; domid: number; device: number; connector: number; frames: number }
  | { type: 'error'; domid?: number; device?: number; message: string };

export interface DisplayBackendOptions {
  /** Makes the sink of each new device. */
  sink: SinkFactory;
  /** This domain's id (default 0: Dom0). */
  backendDomid?: number;
  limits?: Partial<DisplayLimits>;
  onEvent?: (e: BackendEvent) => void;
  /** How long a buffer's release may take when a device goes (WAIT_FREE bound). */
  releaseTimeoutMs?: number;
  /** DRM driver whose dumb buffers back be-alloc buffers (default 'vgem'; a KMS driver in production). */
  allocDriver?: string;
  /**
   * Serve DBUF_CREATE with DBUF_FLG_REQ_ALLOC (be-alloc): Dom0 allocates the
   * buffers. Off by default: a guest decides when to ask, and the pages are
   * Dom0's (the per-device page budget still applies).
   */
  allowBeAlloc?: boolean;
}

/** A -errno for a response: a known error's errno, else EIO. */
function statusOf(e: unknown): number {
  const errno = (e as { errno?: unknown }).errno;
  if (typeof errno === 'number' && errno < 0) return errno;
  if (e instanceof RequestError) return -e.errnoValue;
  if (e instanceof XenZcopyError && e.code === 'ERR_XZC_INVALID_ARG') return -E.EINVAL;
  return -E.EIO;
}

/** A request the backend refuses, with the errno it answers. */
class RequestError extends Error {
  constructor(readonly errnoValue: number, message: string) {
    super(message);
  }
}

const fail = (errno: number, message: string): never => {
  throw new RequestError(errno, message);
};

function parseUint(v: string | undefined, what: string, max = 0xffffffff): number {
  if (v === undefined || !/^\d{1,10}$/.test(v)) throw new RequestError(E.EINVAL, `${what} is not a number: ${JSON.stringify(v)}`);
  const n = Number(v);
  if (n > max) throw new RequestError(E.EINVAL, `${what} ${n} is out of range`);
  return n;
}

interface Connector {
  /** A requests task is queued and has not started: more notifications need no other. */
  scheduled: boolean;
  /** A flip is waiting to be shown: the frontend waits for its event before the next one. */
  flipPending: boolean;
  info: ConnectorInfo;
  ring: BackRing;
  events: EventRing;
  reqChannel: EventChannel;
  evtChannel: EventChannel;
  unmap: () => void;
  nextEventId: number;
  frames: number;
  shown?: Framebuffer;
}

interface StoredBuffer extends DisplayBuffer {
  readonly pages: number;
  /** Releases the pages: the guest's back to it, or Dom0's grants ended. */
  release(): Promise<unknown>;
}

/** One vdispl device of one guest. */
export class DisplayDevice {
  readonly bePath: string;
  #fePath = '';
  #state: number = XenbusState.Initialising;
  #connectors: Connector[] = [];
  readonly #buffers = new Map<bigint, StoredBuffer>();
  readonly #fbs = new Map<bigint, Framebuffer>();
  #sink: DisplaySink | undefined;
  #watches: XsWatch[] = [];
  /** Serialises state changes and requests: one thing at a time per device. */
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  /** The frontend state seen last. */
  #lastFe: number | undefined;

  constructor(private readonly backend: DisplayBackend, readonly domid: number, readonly device: number) {
    this.bePath = `/local/domain/${backend.domid}/backend/vdispl/${domid}/${device}`;
  }

  get state(): number {
    return this.#state;
  }

  /** Frames shown per connector since connection. */
  get frames(): number[] {
    return this.#connectors.map((c) => c.frames);
  }

  get bufferCount(): number {
    return this.#buffers.size;
  }

  #run(what: string, fn: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(fn).catch((e: unknown) => {
      this.backend.emit({ type: 'error', domid: this.domid, device: this.device, message: `${what}: ${(e as Error).message}` });
    });
    this.#queue = next;
    return next;
  }

  /** Announces InitWait and follows the frontend from there. */
  start(): Promise<void> {
    return this.#run('starting', async () => {
      const xs = this.backend.xs;
      const feId = parseUint(await xs.tryRead(`${this.bePath}/frontend-id`), 'frontend-id', MAX_DOMID);
      if (feId !== this.domid) fail(E.EINVAL, `frontend-id ${feId} is not domain ${this.domid}`);
      const fe = await xs.tryRead(`${this.bePath}/frontend`);
      if (fe !== `/local/domain/${this.domid}/device/vdispl/${this.device}`) fail(E.EINVAL, `unexpected frontend path ${fe}`);
      this.#fePath = fe!;
      await this.#setState(XenbusState.InitWait);
      const onChange = () => void this.#run('following the frontend', () => this.#step());
      this.#watches.push(await xs.watch(`${this.#fePath}/state`, onChange));
      this.#watches.push(await xs.watch(`${this.bePath}/online`, onChange));
    });
  }

  async #setState(state: number): Promise<void> {
    this.#state = state;
    await this.backend.xs.write(`${this.bePath}/state`, String(state));
    this.backend.emit({ type: 'device', domid: this.domid, device: this.device, state: stateName(state) });
  }

  async #step(): Promise<void> {
    if (this.#closed) return;
    const xs = this.backend.xs;
    const online = await xs.tryRead(`${this.bePath}/online`);
    const feState = Number(await xs.tryRead(`${this.#fePath}/state`) ?? XenbusState.Closed);
    if (online === '0' || feState === XenbusState.Closing || feState === XenbusState.Closed) {
      this.#lastFe = feState;
      if (this.#state === XenbusState.Closed) return;
      await this.#setState(XenbusState.Closing);
      await this.#release();
      await this.#setState(XenbusState.Closed);
      return;
    }
    if (feState === XenbusState.Initialised && this.#state === XenbusState.InitWait) {
      this.#lastFe = feState;
      try {
        await this.#connect();
      } catch (e) {
        this.backend.emit({ type: 'error', domid: this.domid, device: this.device, message: `connecting: ${(e as Error).message}` });
        await this.#release();
        await this.#setState(XenbusState.Closing);
        return;
      }
      await this.#setState(XenbusState.Connected);
      return;
    }
    if (feState === XenbusState.Initialising && this.#state !== XenbusState.InitWait) {
      // the frontend started over (its driver reloaded): so do we
      await this.#release();
      await this.#setState(XenbusState.InitWait);
    } else if (feState === XenbusState.Initialising && this.#lastFe !== undefined && this.#lastFe !== XenbusState.Initialising) {
      // It came back to Initialising after we announced InitWait (a restarted
      // backend found it Connected; it disconnected, released its card and
      // reset): it only acts on a change of our state, so announce it again.
      await this.#setState(XenbusState.InitWait);
    }
    this.#lastFe = feState;
  }

  /** Reads the connectors, maps their rings and binds their event channels. */
  async #connect(): Promise<void> {
    const xs = this.backend.xs;
    const beAlloc = await xs.tryRead(`${this.#fePath}/be-alloc`);
    if (beAlloc !== undefined && beAlloc !== '0' && beAlloc !== '1') fail(E.EINVAL, `be-alloc ${beAlloc}`);
    const names = (await xs.tryDirectory(this.#fePath)).filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
    if (names.length === 0 || names.length > MAX_CONNECTORS || names.some((n, i) => n !== i)) {
      fail(E.EINVAL, `connectors ${JSON.stringify(names)}`);
    }
    const infos: ConnectorInfo[] = [];
    for (const i of names) {
      const res = /^(\d{1,5})x(\d{1,5})$/.exec(await xs.tryRead(`${this.#fePath}/${i}/resolution`) ?? '');
      if (!res) fail(E.EINVAL, `connector ${i} has no resolution`);
      const width = Number(res![1]);
      const height = Number(res![2]);
      if (width < 1 || height < 1 || width > this.backend.limits.maxWidth || height > this.backend.limits.maxHeight) {
        fail(E.EINVAL, `connector ${i} resolution ${width}x${height}`);
      }
      infos.push({ domid: this.domid, device: this.device, index: i, width, height });
    }
    this.#sink = await bounded(this.backend.sinkFactory({ domid: this.domid, device: this.device, connectors: infos }),
      SINK_TIMEOUT_MS, 'the sink factory');
    for (const info of infos) {
      const p = `${this.#fePath}/${info.index}`;
      const reqRef = parseUint(await xs.tryRead(`${p}/req-ring-ref`), `connector ${info.index} req-ring-ref`);
      const reqPort = parseUint(await xs.tryRead(`${p}/req-event-channel`), `connector ${info.index} req-event-channel`, MAX_PORT);
      const evtRef = parseUint(await xs.tryRead(`${p}/evt-ring-ref`), `connector ${info.index} evt-ring-ref`);
      const evtPort = parseUint(await xs.tryRead(`${p}/evt-event-channel`), `connector ${info.index} evt-event-channel`, MAX_PORT);
      const mapper = this.backend.mapper;
      const reqMap = mapper.map(this.domid, [reqRef], { writable: true });
      let evtMap;
      try {
        evtMap = mapper.map(this.domid, [evtRef], { writable: true });
      } catch (e) {
        reqMap.closeSync();
        throw e;
      }
      const unmap = () => {
        reqMap.closeSync();
        evtMap.closeSync();
      };
      let reqChannel: EventChannel | undefined;
      let evtChannel: EventChannel | undefined;
      try {
        const conn: Partial<Connector> = { info, unmap, nextEventId: 0, frames: 0, scheduled: false, flipPending: false };
        conn.ring = new BackRing(reqMap.buffer.buffer as ArrayBuffer, reqMap.buffer.byteOffset);
        conn.events = new EventRing(evtMap.buffer.buffer as ArrayBuffer, evtMap.buffer.byteOffset);
        reqChannel = this.backend.evtchn.bind(this.domid, reqPort, () => void this.#onRequests(conn as Connector));
        evtChannel = this.backend.evtchn.bind(this.domid, evtPort, () => undefined);
        conn.reqChannel = reqChannel;
        conn.evtChannel = evtChannel;
        this.#connectors.push(conn as Connector);
      } catch (e) {
        await reqChannel?.close();
        await evtChannel?.close();
        unmap();
        throw e;
      }
    }
    // requests the frontend published before we were listening
    for (const c of this.#connectors) void this.#onRequests(c);
  }

  #onRequests(conn: Connector): Promise<void> {
    if (conn.scheduled) return Promise.resolve();
    conn.scheduled = true;
    return this.#run(`connector ${conn.info.index} requests`, async () => {
      conn.scheduled = false;
      if (this.#state !== XenbusState.Connected && this.#state !== XenbusState.InitWait) return;
      if (!this.#connectors.includes(conn)) return;
      for (;;) {
        let reqs: Buffer[];
        try {
          reqs = conn.ring.take();
        } catch (e) {
          if (!(e instanceof RingProtocolError)) throw e;
          // a frontend that breaks its ring gets no more service
          this.backend.emit({ type: 'error', domid: this.domid, device: this.device, message: `connector ${conn.info.index}: ${e.message}` });
          await this.#release();
          await this.#setState(XenbusState.Closing);
          return;
        }
        if (reqs.length === 0) return;
        for (const raw of reqs) {
          const req = decodeRequest(raw);
          const t0 = performance.now();
          let status = 0;
          let after: (() => void) | undefined;
          try {
            after = await this.#handle(conn, req);
          } catch (e) {
            status = statusOf(e);
            this.backend.emit({ type: 'error', domid: this.domid, device: this.device, message: `op 0x${req.op.toString(16)} id ${req.id}: ${(e as Error).message}` });
          }
          if (conn.ring.push([encodeResponse(req.id, req.op, status)])) conn.reqChannel.notify();
          this.backend.emit({ type: 'request', domid: this.domid, device: this.device, connector: conn.info.index, op: req.op, id: req.id, status, ms: performance.now() - t0 });
          after?.();
        }
        // let timers, other guests and xenstore in before the next batch: a
        // frontend that refills its ring as fast as we answer cannot hold us
        await new Promise((r) => setImmediate(r));
        if (!this.#connectors.includes(conn)) return;
      }
    });
  }

  /** Handles one request; may return work to start once the response is out (a flip). */
  async #handle(conn: Connector, req: DisplRequest): Promise<(() => void) | undefined> {
    const lim = this.backend.limits;
    if ('unknown' in req) return fail(E.EOPNOTSUPP, `unknown op 0x${req.op.toString(16)}`);
    switch (req.op) {
      case DisplOp.DBUF_CREATE: {
        if (this.#buffers.has(req.dbufCookie)) fail(E.EEXIST, `buffer ${req.dbufCookie} exists`);
        if (this.#buffers.size >= lim.maxBuffers) fail(E.ENOSPC, `device holds ${lim.maxBuffers} buffers already`);
        if (req.flags & ~DBUF_FLG_REQ_ALLOC) fail(E.EINVAL, `unknown flags 0x${req.flags.toString(16)}`);
        if (req.width === 0 || req.height === 0 || req.dataOffset !== 0) {
          fail(E.EOPNOTSUPP, 'buffers without a size or with a data offset (PRIME imports in the guest) are not supported');
        }
        if (req.width > lim.maxWidth || req.height > lim.maxHeight) fail(E.EINVAL, `buffer ${req.width}x${req.height} is too large`);
        if (req.bpp === 0 || req.bpp % 8 !== 0 || req.bpp > 32) fail(E.EINVAL, `bpp ${req.bpp}`);
        const pitch = Math.ceil((req.width * req.bpp) / 8);
        if (req.bufferSize < pitch * req.height || req.bufferSize > lim.maxBufferBytes) {
          fail(E.EINVAL, `buffer_sz ${req.bufferSize} for ${req.width}x${req.height}x${req.bpp}`);
        }
        const pages = Math.ceil(req.bufferSize / PAGE);
        const held = [...this.#buffers.values()].reduce((n, b) => n + b.pages, 0);
        if (held + pages > lim.maxDevicePages) fail(E.ENOSPC, `device holds ${held} pages; ${pages} more exceed ${lim.maxDevicePages}`);
        if (req.flags & DBUF_FLG_REQ_ALLOC) {
          if (!this.backend.allowBeAlloc) fail(E.EOPNOTSUPP, 'backend-allocated buffers are not enabled (allowBeAlloc)');
          this.#buffers.set(req.dbufCookie, await this.#allocate(req.dbufCookie, req.width, req.height, req.bpp, pages, req.grefDirectory));
          return undefined;
        }
        const refs = this.#readDirectory(req.grefDirectory, pages);
        const guest = await this.backend.zc.importGuestBuffer({ domid: this.domid, refs, width: req.width, height: req.height, bpp: req.bpp });
        this.#buffers.set(req.dbufCookie, {
          cookie: req.dbufCookie, width: req.width, height: req.height, bpp: req.bpp, pitch: guest.format.pitch, pages,
          dmabuf: guest.dmabuf, release: () => guest.close({ timeoutMs: this.backend.releaseTimeoutMs }),
        });
        return undefined;
      }
      case DisplOp.DBUF_DESTROY: {
        const buf = this.#buffers.get(req.dbufCookie) ?? fail(E.ENOENT, `no buffer ${req.dbufCookie}`);
        for (const fb of this.#fbs.values()) if (fb.buffer === buf) fail(E.EBUSY, `buffer ${req.dbufCookie} has framebuffer ${fb.cookie}`);
        this.#buffers.delete(req.dbufCookie);
        await buf.release();
        return undefined;
      }
      case DisplOp.FB_ATTACH: {
        const buf = this.#buffers.get(req.dbufCookie) ?? fail(E.ENOENT, `no buffer ${req.dbufCookie}`);
        if (this.#fbs.has(req.fbCookie)) fail(E.EEXIST, `framebuffer ${req.fbCookie} exists`);
        if (this.#fbs.size >= lim.maxFramebuffers) fail(E.ENOSPC, `device holds ${lim.maxFramebuffers} framebuffers already`);
        const bpp = FOURCC_BPP.get(req.pixelFormat) ?? fail(E.EINVAL, `pixel format 0x${req.pixelFormat.toString(16)}`);
        if (bpp !== buf.bpp || req.width === 0 || req.height === 0 || req.width > buf.width || req.height > buf.height) {
          fail(E.EINVAL, `framebuffer ${req.width}x${req.height} (${bpp} bpp) on buffer ${buf.width}x${buf.height} (${buf.bpp} bpp)`);
        }
        const fb: Framebuffer = { cookie: req.fbCookie, width: req.width, height: req.height, fourcc: req.pixelFormat, buffer: buf };
        await bounded(this.#sink!.attach(fb), SINK_TIMEOUT_MS, 'the sink\'s attach');
        this.#fbs.set(req.fbCookie, fb);
        return undefined;
      }
      case DisplOp.FB_DETACH: {
        const fb = this.#fbs.get(req.fbCookie) ?? fail(E.ENOENT, `no framebuffer ${req.fbCookie}`);
        for (const c of this.#connectors) {
          if (c.shown === fb) {
            await bounded(this.#sink!.setConfig(c.info, undefined), SINK_TIMEOUT_MS, 'the sink\'s setConfig');
            c.shown = undefined;
          }
        }
        this.#fbs.delete(req.fbCookie);
        await bounded(this.#sink!.detach(fb), SINK_TIMEOUT_MS, 'the sink\'s detach');
        return undefined;
      }
      case DisplOp.SET_CONFIG: {
        if (req.fbCookie === 0n) {
          await bounded(this.#sink!.setConfig(conn.info, undefined), SINK_TIMEOUT_MS, 'the sink\'s setConfig');
          conn.shown = undefined;
          return undefined;
        }
        const fb = this.#fbs.get(req.fbCookie) ?? fail(E.ENOENT, `no framebuffer ${req.fbCookie}`);
        if (req.width === 0 || req.height === 0 || req.x + req.width > fb.width || req.y + req.height > fb.height ||
          req.bpp !== fb.buffer.bpp) {
          fail(E.EINVAL, `mode ${req.width}x${req.height}+${req.x}+${req.y} (${req.bpp} bpp) on framebuffer ${fb.width}x${fb.height}`);
        }
        await bounded(this.#sink!.setConfig(conn.info, fb), SINK_TIMEOUT_MS, 'the sink\'s setConfig');
        conn.shown = fb;
        return undefined;
      }
      case DisplOp.PG_FLIP: {
        const fb = this.#fbs.get(req.fbCookie) ?? fail(E.ENOENT, `no framebuffer ${req.fbCookie}`);
        if (conn.flipPending) fail(E.EBUSY, 'a flip is still waiting for its frame-done event');
        conn.flipPending = true;
        // answered at once; the frame-done event follows when it is shown
        return () => {
          conn.shown = fb;
          void this.#run(`connector ${conn.info.index} flip`, async () => {
            conn.flipPending = false;
            const sink = this.#sink;
            if (!sink || !this.#connectors.includes(conn)) return; // released meanwhile
            try {
              // a framebuffer detached after the flip was asked for is not shown
              if (this.#fbs.get(fb.cookie) === fb) await bounded(sink.show(conn.info, fb), SINK_TIMEOUT_MS, 'the sink\'s show');
            } finally {
              // the event goes out even for a frame the sink failed to show:
              // the guest's vblank must not hang, and event ids stay in step
              if (this.#connectors.includes(conn)) this.#frameDone(conn, fb);
            }
          });
        };
      }
    }
    return undefined;
  }

  /**
   * be-alloc: a Dom0 buffer (a dumb buffer of the allocation driver) granted
   * to the guest (TO_REFS), its refs written into the directory the frontend
   * granted (the frontend chained the directory pages; we fill the refs).
   */
  async #allocate(cookie: bigint, width: number, height: number, bpp: number, pages: number, firstDir: number): Promise<StoredBuffer> {
    const dmabuf = this.backend.allocator().createDumbDmaBuf(width, height, bpp);
    try {
      if (Math.ceil(dmabuf.size / PAGE) !== pages) fail(E.EINVAL, `buffer_sz of ${pages} pages for a ${dmabuf.size}-byte buffer`);
      const granted = await this.backend.zc.exportToGuest(dmabuf, { domid: this.domid });
      try {
        this.#writeDirectory(firstDir, granted.refs);
      } catch (e) {
        await granted.close();
        throw e;
      }
      return {
        cookie, width, height, bpp, pitch: dmabuf.format!.pitch, dmabuf, pages,
        release: async () => {
          await granted.close(); // the module keeps pages the guest still maps
          await dmabuf.close();
        },
      };
    } catch (e) {
      await dmabuf.close();
      throw e;
    }
  }

  /** Writes `refs` into the frontend's directory pages, following its `next` chain (checked). */
  #writeDirectory(first: number, refs: Uint32Array): void {
    const mapper = this.backend.mapper;
    const seen = new Set<number>();
    let ref = first;
    for (let done = 0; done < refs.length;) {
      if (ref === 0 || seen.has(ref) || seen.size >= directoryPages(refs.length)) fail(E.EINVAL, `page directory chain broken at page ${seen.size}`);
      seen.add(ref);
      const m = mapper.map(this.domid, [ref], { writable: true });
      try {
        const words = new Uint32Array(m.buffer.buffer, m.buffer.byteOffset, 1024);
        const take = Math.min(1023, refs.length - done);
        words.set(refs.subarray(done, done + take), 1);
        done += take;
        ref = words[0]!;
      } finally {
        m.closeSync();
      }
    }
  }

  #frameDone(conn: Connector, fb: Framebuffer): void {
    conn.frames++;
    if (conn.events.push([encodePageFlipEvent(conn.nextEventId, fb.cookie)]) === 1) {
      conn.nextEventId = (conn.nextEventId + 1) & 0xffff;
      conn.evtChannel.notify();
    } else {
      this.backend.emit({ type: 'error', domid: this.domid, device: this.device, message: `connector ${conn.info.index}: the event page is full (the frontend does not consume)` });
    }
  }

  /** The data refs of a buffer from its page directory, each page mapped once and checked. */
  #readDirectory(first: number, pages: number): Uint32Array {
    const mapper = this.backend.mapper;
    const dirPages = directoryPages(pages);
    let read = 0;
    try {
      return parsePageDirectory(first, pages, (ref) => {
        if (++read > dirPages) fail(E.EINVAL, 'page directory longer than the buffer');
        const m = mapper.map(this.domid, [ref]);
        try {
          // a private copy: the frontend may rewrite the page while we read it
          const words = new Uint32Array(1024);
          for (let i = 0; i < 1024; i++) words[i] = m.bytes.readUInt32LE(i * 4);
          return words;
        } finally {
          m.closeSync();
        }
      });
    } catch (e) {
      if (e instanceof XenZcopyError && e.code === 'ERR_XZC_INVALID_ARG') fail(E.EINVAL, e.message);
      throw e;
    }
  }

  /** Drops connectors, framebuffers and buffers (the guest's pages go back). */
  async #release(): Promise<void> {
    const conns = this.#connectors;
    this.#connectors = [];
    for (const c of conns) {
      await c.reqChannel.close().catch(() => undefined);
      await c.evtChannel.close().catch(() => undefined);
      c.unmap();
    }
    const sink = this.#sink;
    this.#sink = undefined;
    const quietly = async (what: string, fn: () => unknown) => {
      try {
        await bounded(fn(), SINK_TIMEOUT_MS, what);
      } catch (e) {
        this.backend.emit({ type: 'error', domid: this.domid, device: this.device, message: `releasing: ${(e as Error).message}` });
      }
    };
    for (const fb of this.#fbs.values()) if (sink) await quietly('the sink\'s detach', () => sink.detach(fb));
    this.#fbs.clear();
    if (sink) await quietly('the sink\'s close', () => sink.close());
    const bufs = [...this.#buffers.values()];
    this.#buffers.clear();
    for (const b of bufs) {
      await b.release().catch((e: unknown) => {
        this.backend.emit({ type: 'error', domid: this.domid, device: this.device, message: `releasing buffer ${b.cookie}: ${(e as Error).message}` });
      });
    }
  }

  /** Ends service of this device: everything released, state Closed (unless the node is gone). */
  close(opts: { removed?: boolean } = {}): Promise<void> {
    return this.#run('closing', async () => {
      if (this.#closed) return;
      this.#closed = true;
      for (const w of this.#watches) await w.close();
      this.#watches = [];
      await this.#release();
      if (!opts.removed && !this.backend.xs.closed) {
        await this.#setState(XenbusState.Closed).catch(() => undefined);
      }
    });
  }
}

function stateName(s: number): string {
  return Object.entries(XenbusState).find(([, v]) => v === s)?.[0] ?? String(s);
}

/** The display backend of this domain: every vdispl device of every guest. */
export class DisplayBackend {
  readonly domid: number;
  readonly limits: DisplayLimits;
  readonly sinkFactory: SinkFactory;
  readonly releaseTimeoutMs: number;
  readonly allowBeAlloc: boolean;
  readonly devices = new Map<string, DisplayDevice>();
  #watches: XsWatch[] = [];
  #alloc: DrmDevice | undefined;
  readonly #allocDriver: string;
  #closing: Promise<void> | undefined;
  readonly #onEvent: (e: BackendEvent) => void;

  private constructor(
    readonly xs: Xenstore,
    readonly zc: ZeroCopyDevice,
    readonly mapper: GrantMapper,
    readonly evtchn: EventChannels,
    opts: DisplayBackendOptions,
  ) {
    this.domid = opts.backendDomid ?? 0;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.sinkFactory = opts.sink;
    this.releaseTimeoutMs = opts.releaseTimeoutMs ?? 3000;
    this.#onEvent = opts.onEvent ?? (() => undefined);
    this.#allocDriver = opts.allocDriver ?? 'vgem';
    this.allowBeAlloc = opts.allowBeAlloc ?? false;
  }

  /** @internal The DRM device backend-allocated buffers come from (opened on first use). */
  allocator(): DrmDevice {
    this.#alloc ??= DrmDevice.open(this.#allocDriver);
    return this.#alloc;
  }

  /** Opens what it needs and starts serving the devices that exist and appear. */
  static async start(opts: DisplayBackendOptions): Promise<DisplayBackend> {
    const xs = await Xenstore.connect();
    let zc: ZeroCopyDevice | undefined;
    let mapper: GrantMapper | undefined;
    let evtchn: EventChannels | undefined;
    try {
      zc = ZeroCopyDevice.open();
      mapper = GrantMapper.open();
      const be: { backend?: DisplayBackend } = {};
      evtchn = EventChannels.open({ onError: (err) => be.backend?.emit({ type: 'error', message: err.message }) });
      const backend = new DisplayBackend(xs, zc, mapper, evtchn, opts);
      be.backend = backend;
      await backend.#watch();
      return backend;
    } catch (e) {
      await evtchn?.close();
      await mapper?.close();
      await zc?.close();
      await xs.close();
      throw e;
    }
  }

  /** @internal */
  emit(e: BackendEvent): void {
    try {
      this.#onEvent(e);
    } catch {
      // a logger's failure is not the backend's
    }
  }

  async #watch(): Promise<void> {
    const root = `/local/domain/${this.domid}/backend/vdispl`;
    const rescan = () => void this.#rescan(root).catch((e: unknown) => this.emit({ type: 'error', message: `scanning ${root}: ${(e as Error).message}` }));
    this.#watches.push(await this.xs.watch(root, rescan));
    this.#watches.push(await this.xs.watch('@releaseDomain', rescan));
  }

  #scanning: Promise<void> = Promise.resolve();

  #rescan(root: string): Promise<void> {
    this.#scanning = this.#scanning.then(async () => {
      if (this.#closing) return;
      const seen = new Set<string>();
      for (const d of await this.xs.tryDirectory(root)) {
        if (!/^\d{1,5}$/.test(d)) continue;
        for (const n of await this.xs.tryDirectory(`${root}/${d}`)) {
          if (!/^\d{1,3}$/.test(n)) continue;
          const key = `${d}/${n}`;
          seen.add(key);
          if (this.devices.has(key)) continue;
          // libxl writes the nodes one by one: start once the frontend is named
          if (await this.xs.tryRead(`${root}/${key}/frontend-id`) === undefined) continue;
          if (await this.xs.tryRead(`/local/domain/${d}/name`) === undefined) continue;
          const dev = new DisplayDevice(this, Number(d), Number(n));
          this.devices.set(key, dev);
          this.emit({ type: 'device', domid: dev.domid, device: dev.device, state: 'found' });
          void dev.start();
        }
      }
      for (const [key, dev] of this.devices) {
        const gone = !seen.has(key) || (await this.xs.tryRead(`/local/domain/${dev.domid}/name`)) === undefined;
        if (!gone) continue;
        this.devices.delete(key);
        this.emit({ type: 'device', domid: dev.domid, device: dev.device, state: 'gone' });
        await dev.close({ removed: !seen.has(key) });
      }
    });
    return this.#scanning;
  }

  /** Stops serving: every device released and Closed, then the devices closed. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const w of this.#watches) await w.close();
      await this.#scanning.catch(() => undefined);
      await Promise.all([...this.devices.values()].map((d) => d.close()));
      this.devices.clear();
      await this.#alloc?.close();
      await this.evtchn.close();
      await this.mapper.close();
      await this.zc.close();
      await this.xs.close();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
