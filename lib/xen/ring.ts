/**
 * The backend ends of the shared pages a PV frontend grants: a request /
 * response ring (Xen's io/ring.h) and a one-way event page (io/displif.h's
 * "in" ring). The index loads and stores with their memory ordering are in
 * the addon; requests are copied into private memory before anything reads
 * them, so a frontend cannot change a request while it is being checked.
 *
 * @module
 */
import { native, type NativeBinding } from '../binding.js';
import { XenZcopyError } from '../errors.js';

/** Size of a ring entry (request, response or event) in bytes. */
export const RING_ENTRY_SIZE = 64;
/** Entries of a one-page request/response ring with 64-byte entries. */
export const RING_SIZE = 32;
/** Entries of a one-page event ring. */
export const EVENT_RING_SIZE = 63;

/** The frontend published an index no well-behaved frontend can produce. */
export class RingProtocolError extends XenZcopyError {
  constructor(message: string) {
    super('EPROTO', message);
  }
}

/** The backend end of a request/response ring in a mapped page. */
export class BackRing {
  #reqCons = 0;
  #rspProd = 0;
  /** Requests taken whose responses are not pushed yet. */
  #outstanding = 0;
  readonly #b: NativeBinding;

  /** `page` holds the ring at `offset` (a whole page); the frontend set it up empty. */
  constructor(private readonly page: ArrayBuffer, private readonly offset = 0, binding?: NativeBinding) {
    this.#b = binding ?? native();
    // a fresh ring: the frontend initialised every index to 0
    this.#reqCons = this.#b.ringLoad32(page, offset, 8);
    this.#rspProd = this.#reqCons;
  }

  /**
   * Takes every request the frontend has published (private copies, in
   * order), and re-arms the frontend's notification. Throws a
   * RingProtocolError when `req_prod` claims more than a ring's worth.
   */
  take(): Buffer[] {
    const out: Buffer[] = [];
    for (;;) {
      if (this.#outstanding >= RING_SIZE) return out; // responses first: their slots are the requests'
      const r = this.#b.ringTakeRequests(this.page, this.offset, this.#reqCons);
      if ('overflow' in r) {
        throw new RingProtocolError(`req_prod ${r.prod} is more than ${RING_SIZE} ahead of req_cons ${this.#reqCons}`);
      }
      const n = r.requests.length / RING_ENTRY_SIZE;
      if (this.#outstanding + n > RING_SIZE) {
        throw new RingProtocolError(`the frontend published ${n} requests with ${this.#outstanding} still unanswered`);
      }
      for (let i = 0; i < n; i++) out.push(r.requests.subarray(i * RING_ENTRY_SIZE, (i + 1) * RING_ENTRY_SIZE));
      this.#reqCons = r.cons;
      this.#outstanding += n;
      if (!r.more) return out;
    }
  }

  /** Publishes responses (one per taken request, in any order); true when the frontend wants a notification. */
  push(responses: Buffer[]): boolean {
    if (responses.length === 0) return false;
    if (responses.length > this.#outstanding) throw new RangeError('more responses than requests taken');
    const data = Buffer.concat(responses.map((r) => {
      if (r.length !== RING_ENTRY_SIZE) throw new RangeError('a response is 64 bytes');
      return r;
    }));
    const res = this.#b.ringPushResponses(this.page, this.offset, this.#rspProd, data);
    this.#rspProd = res.rspProd;
    this.#outstanding -= responses.length;
    return res.notify;
  }
}

/** The producer end of an event page. */
export class EventRing {
  #inProd: number;
  readonly #b: NativeBinding;

  constructor(private readonly page: ArrayBuffer, private readonly offset = 0, binding?: NativeBinding) {
    this.#b = binding ?? native();
    this.#inProd = this.#b.ringLoad32(page, offset, 4);
  }

  /** Pushes the events that fit; returns how many did (fewer: the frontend is not consuming). */
  push(events: Buffer[]): number {
    if (events.length === 0) return 0;
    const res = this.#b.eventPush(this.page, this.offset, this.#inProd, Buffer.concat(events));
    this.#inProd = res.inProd;
    return res.pushed;
  }
}
