/**
 * A displif frontend played from Dom0 for the backend's hostile-input tests:
 * it creates a vdispl device of domain 0 in xenstore, grants its ring pages
 * with gntalloc, offers event channels, and writes whatever requests a test
 * wants (well-formed or not) straight into the ring. The real frontend is
 * Linux's drm_xen_front in a DomU (display.test.ts); this one can lie.
 */
import { native } from '../../lib/binding.js';
import { buildPageDirectory, directoryPages } from '../../lib/displif/directory.js';
import { decodeResponse, XenbusState } from '../../lib/displif/protocol.js';
import { GrantAllocator, type SharedPages } from '../../lib/xen/grants.js';
import { type EventChannel, EventChannels } from '../../lib/xen/evtchn.js';
import { RING_SIZE } from '../../lib/xen/ring.js';
import { Xenstore } from '../../lib/xen/xenstore.js';

const b = native();

export class FakeFrontend {
  reqProd = 0;
  rspCons = 0;
  evtCons = 0;
  readonly shares: SharedPages[] = [];
  #waiters: (() => void)[] = [];
  reqChannel!: EventChannel;
  evtChannel!: EventChannel;
  reqRing!: SharedPages;
  evtRing!: SharedPages;

  private constructor(
    readonly xs: Xenstore,
    readonly alloc: GrantAllocator,
    readonly evtchn: EventChannels,
    readonly device: number,
  ) {}

  get fePath(): string {
    return `/local/domain/0/device/vdispl/${this.device}`;
  }

  get bePath(): string {
    return `/local/domain/0/backend/vdispl/0/${this.device}`;
  }

  /** Creates the device's xenstore nodes as libxl would (frontend and backend of domain 0). */
  static async create(device: number, resolution = '640x480'): Promise<FakeFrontend> {
    const xs = await Xenstore.connect();
    const fe = new FakeFrontend(xs, GrantAllocator.open(), EventChannels.open(), device);
    await xs.transaction(async (tx) => {
      await tx.write(`${fe.fePath}/backend`, fe.bePath);
      await tx.write(`${fe.fePath}/backend-id`, '0');
      await tx.write(`${fe.fePath}/be-alloc`, '0');
      await tx.write(`${fe.fePath}/0/resolution`, resolution);
      await tx.write(`${fe.fePath}/state`, String(XenbusState.Initialising));
      await tx.write(`${fe.bePath}/frontend`, fe.fePath);
      await tx.write(`${fe.bePath}/online`, '1');
      await tx.write(`${fe.bePath}/state`, String(XenbusState.Initialising));
      await tx.write(`${fe.bePath}/frontend-id`, '0');
    });
    return fe;
  }

  /**
   * The handshake: waits for InitWait, publishes rings and channels (any of
   * the frontend's keys replaced by `lies`, e.g. { '0/req-ring-ref': 'x' }),
   * and waits for the backend's answer: Connected, or `expect`.
   */
  async connect(timeoutMs = 10_000, lies: Record<string, string> = {}, expect: number = XenbusState.Connected): Promise<void> {
    await this.xs.waitFor(`${this.bePath}/state`, (v) => v === String(XenbusState.InitWait), timeoutMs);
    this.reqRing = this.alloc.share(0, 1);
    this.evtRing = this.alloc.share(0, 1);
    this.shares.push(this.reqRing, this.evtRing);
    // an initialised ring: indices 0, event thresholds 1
    this.reqRing.buffer.writeUInt32LE(1, 4);
    this.reqRing.buffer.writeUInt32LE(1, 12);
    const wake = () => {
      const w = this.#waiters;
      this.#waiters = [];
      for (const f of w) f();
    };
    this.reqChannel = this.evtchn.offer(0, wake);
    this.evtChannel = this.evtchn.offer(0, wake);
    await this.xs.transaction(async (tx) => {
      await tx.write(`${this.fePath}/0/req-ring-ref`, String(this.reqRing.refs[0]));
      await tx.write(`${this.fePath}/0/req-event-channel`, String(this.reqChannel.port));
      await tx.write(`${this.fePath}/0/evt-ring-ref`, String(this.evtRing.refs[0]));
      await tx.write(`${this.fePath}/0/evt-event-channel`, String(this.evtChannel.port));
      for (const [key, value] of Object.entries(lies)) await tx.write(`${this.fePath}/${key}`, value);
      await tx.write(`${this.fePath}/state`, String(XenbusState.Initialised));
    });
    await this.xs.waitFor(`${this.bePath}/state`, (v) => v === String(expect), timeoutMs);
    if (expect === XenbusState.Connected) await this.xs.write(`${this.fePath}/state`, String(XenbusState.Connected));
  }

  #ab(p: SharedPages): ArrayBuffer {
    return p.buffer.buffer as ArrayBuffer;
  }

  /** Writes raw 64-byte requests into the ring and notifies. */
  send(...reqs: Buffer[]): void {
    const page = this.reqRing.buffer;
    for (const r of reqs) {
      r.copy(page, 64 + (this.reqProd % RING_SIZE) * 64);
      this.reqProd = (this.reqProd + 1) >>> 0;
    }
    b.ringStore32(this.#ab(this.reqRing), this.reqRing.buffer.byteOffset, 0, this.reqProd);
    this.reqChannel.notify();
  }

  /** Publishes a raw req_prod (a lie, for tests) and notifies. */
  setReqProd(value: number): void {
    b.ringStore32(this.#ab(this.reqRing), this.reqRing.buffer.byteOffset, 0, value >>> 0);
    this.reqChannel.notify();
  }

  /** Responses that arrived, waiting up to `timeoutMs` until there are `n`. */
  async responses(n: number, timeoutMs = 5000): Promise<{ id: number; op: number; status: number }[]> {
    const out: { id: number; op: number; status: number }[] = [];
    const end = Date.now() + timeoutMs;
    for (;;) {
      const prod = b.ringLoad32(this.#ab(this.reqRing), this.reqRing.buffer.byteOffset, 8);
      while (this.rspCons !== prod && out.length < n) {
        const slot = 64 + (this.rspCons % RING_SIZE) * 64;
        out.push(decodeResponse(Buffer.from(this.reqRing.buffer.subarray(slot, slot + 64))));
        this.rspCons = (this.rspCons + 1) >>> 0;
      }
      b.ringStore32(this.#ab(this.reqRing), this.reqRing.buffer.byteOffset, 12, this.rspCons + 1);
      if (out.length >= n) return out;
      const left = end - Date.now();
      if (left <= 0) return out;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Page-flip events that arrived (fb cookies), waiting up to `timeoutMs` for `n`. */
  async events(n: number, timeoutMs = 5000): Promise<{ id: number; fbCookie: bigint }[]> {
    const out: { id: number; fbCookie: bigint }[] = [];
    const end = Date.now() + timeoutMs;
    const page = this.evtRing.buffer;
    for (;;) {
      const prod = b.ringLoad32(this.#ab(this.evtRing), page.byteOffset, 4);
      while (this.evtCons !== prod && out.length < n) {
        const slot = 64 + (this.evtCons % 63) * 64;
        out.push({ id: page.readUInt16LE(slot), fbCookie: page.readBigUInt64LE(slot + 8) });
        this.evtCons = (this.evtCons + 1) >>> 0;
      }
      b.ringStore32(this.#ab(this.evtRing), page.byteOffset, 0, this.evtCons);
      if (out.length >= n || Date.now() > end) return out;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** A buffer of `pages` pages granted to Dom0 with its page directory: the directory's first ref. */
  shareBuffer(pages: number, fill?: (buf: Buffer) => void): { data: SharedPages; dirRef: number; dir: SharedPages } {
    const data = this.alloc.share(0, pages);
    fill?.(data.buffer);
    const dir = this.alloc.share(0, directoryPages(pages));
    const content = buildPageDirectory(data.refs, dir.refs);
    content.forEach((words, i) => Buffer.from(words.buffer).copy(dir.buffer, i * 4096));
    this.shares.push(data, dir);
    return { data, dirRef: dir.refs[0]!, dir };
  }

  /** Ends the device as libxl's destroy would, and releases everything. */
  async close(): Promise<void> {
    await this.xs.write(`${this.bePath}/online`, '0').catch(() => undefined);
    await this.xs.write(`${this.fePath}/state`, String(XenbusState.Closed)).catch(() => undefined);
    await this.xs.waitFor(`${this.bePath}/state`, (v) => v === String(XenbusState.Closed), 10_000).catch(() => undefined);
    await this.reqChannel?.close();
    await this.evtChannel?.close();
    for (const s of this.shares.splice(0)) await s.close();
    await this.xs.rm(this.bePath);
    await this.xs.rm(this.fePath);
    await this.evtchn.close();
    await this.alloc.close();
    await this.xs.close();
  }
}
