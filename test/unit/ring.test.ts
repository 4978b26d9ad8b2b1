/**
 * The backend ring ends (lib/xen/ring.ts) on the real addon, over a plain
 * page of memory with a frontend played by the test: wrap-around, private
 * copies, notification rules and hostile indices.
 */
import { describe, expect, it } from 'vitest';

import { native } from '../../lib/binding.js';
import { BackRing, EVENT_RING_SIZE, EventRing, RING_SIZE, RingProtocolError } from '../../lib/xen/ring.js';

const b = native();

/** The frontend side of a request/response ring, by the io/ring.h rules. */
class FrontRing {
  reqProd = 0;
  rspCons = 0;
  readonly view: DataView;
  constructor(readonly page: ArrayBuffer) {
    this.view = new DataView(page);
    this.view.setUint32(4, 1, true); // req_event
    this.view.setUint32(12, 1, true); // rsp_event
  }

  /** Publishes requests whose first byte is `tag + i`; true when the backend asked for a notification. */
  publish(n: number, tag: number): boolean {
    const old = this.reqProd;
    for (let i = 0; i < n; i++) {
      const slot = 64 + ((this.reqProd % RING_SIZE) * 64);
      new Uint8Array(this.page, slot, 64).fill(0);
      this.view.setUint8(slot, (tag + i) & 0xff);
      this.reqProd++;
    }
    b.ringStore32(this.page, 0, 0, this.reqProd);
    const event = b.ringLoad32(this.page, 0, 4);
    return ((this.reqProd - event) >>> 0) < ((this.reqProd - old) >>> 0);
  }

  responses(): number[] {
    const prod = b.ringLoad32(this.page, 0, 8);
    const out: number[] = [];
    while (this.rspCons !== prod) {
      out.push(this.view.getUint8(64 + (this.rspCons % RING_SIZE) * 64));
      this.rspCons++;
    }
    this.view.setUint32(12, this.rspCons + 1, true);
    return out;
  }
}

const response = (tag: number) => {
  const r = Buffer.alloc(64);
  r[0] = tag;
  return r;
};

describe('BackRing', () => {
  it('takes requests in order across many wrap-arounds and answers them', () => {
    const page = new ArrayBuffer(4096);
    const fe = new FrontRing(page);
    const be = new BackRing(page, 0);
    let tag = 0;
    for (let round = 0; round < 100; round++) {
      const n = 1 + (round % RING_SIZE);
      fe.publish(n, tag);
      const reqs = be.take();
      expect(reqs.map((r) => r[0])).toEqual(Array.from({ length: n }, (_, i) => (tag + i) & 0xff));
      be.push(reqs.map((r) => response(r[0]! ^ 0xff)));
      expect(fe.responses()).toEqual(reqs.map((r) => r[0]! ^ 0xff));
      tag = (tag + n) & 0xff;
    }
  });

  it('copies requests: the frontend rewriting a slot afterwards changes nothing', () => {
    const page = new ArrayBuffer(4096);
    const fe = new FrontRing(page);
    const be = new BackRing(page, 0);
    fe.publish(1, 7);
    const [req] = be.take();
    new Uint8Array(page, 64, 64).fill(0xee);
    expect(req![0]).toBe(7);
    expect(req!.buffer).not.toBe(page);
  });

  it('re-arms req_event so that the next request is notified, and suppresses notifications while busy', () => {
    const page = new ArrayBuffer(4096);
    const fe = new FrontRing(page);
    const be = new BackRing(page, 0);
    expect(fe.publish(1, 0)).toBe(true); // req_event starts at 1
    expect(fe.publish(1, 1)).toBe(false); // the backend has not looked yet
    expect(be.take()).toHaveLength(2);
    expect(b.ringLoad32(page, 0, 4)).toBe(3); // req_cons + 1
    expect(fe.publish(1, 2)).toBe(true);
  });

  it('says whether the frontend wants a notification for responses', () => {
    const page = new ArrayBuffer(4096);
    const fe = new FrontRing(page);
    const be = new BackRing(page, 0);
    fe.publish(3, 0);
    const reqs = be.take();
    expect(be.push([response(1)])).toBe(true); // rsp_event = 1
    expect(be.push([response(2)])).toBe(false); // the frontend has not consumed yet
    fe.responses();
    expect(be.push([response(3)])).toBe(true);
    expect(reqs).toHaveLength(3);
  });

  it('refuses a req_prod more than a ring ahead, and more requests than free slots', () => {
    const page = new ArrayBuffer(4096);
    const be = new BackRing(page, 0);
    b.ringStore32(page, 0, 0, RING_SIZE + 1);
    expect(() => be.take()).toThrow(RingProtocolError);
    b.ringStore32(page, 0, 0, 0xffffffff); // "behind": just as far off, modulo 2^32
    expect(() => be.take()).toThrow(RingProtocolError);

    const page2 = new ArrayBuffer(4096);
    const fe = new FrontRing(page2);
    const be2 = new BackRing(page2, 0);
    fe.publish(10, 0);
    expect(be2.take()).toHaveLength(10);
    fe.publish(RING_SIZE - 5, 0); // 27 more with 10 unanswered: slots overwritten
    expect(() => be2.take()).toThrow(RingProtocolError);
    expect(() => be2.push(Array.from({ length: RING_SIZE + 1 }, () => response(0)))).toThrow(RangeError);
  });

  it('checks the page it is given', () => {
    expect(() => new BackRing(new ArrayBuffer(100), 0)).toThrow(RangeError);
    expect(() => new BackRing(new ArrayBuffer(8192), 100)).toThrow(RangeError);
    expect(() => new BackRing(new ArrayBuffer(8192), 4096)).not.toThrow();
  });
});

describe('EventRing', () => {
  it('pushes events where the frontend reads them, and stops when the frontend does not consume', () => {
    const page = new ArrayBuffer(4096);
    const view = new DataView(page);
    const ev = new EventRing(page, 0);
    const events = Array.from({ length: EVENT_RING_SIZE + 5 }, (_, i) => response(i));
    expect(ev.push(events)).toBe(EVENT_RING_SIZE);
    expect(view.getUint32(4, true)).toBe(EVENT_RING_SIZE);
    expect(view.getUint8(64 + 62 * 64)).toBe(62);
    view.setUint32(0, 10, true); // the frontend consumed 10
    expect(ev.push(events.slice(EVENT_RING_SIZE))).toBe(5);
    expect(view.getUint8(64 + (EVENT_RING_SIZE % EVENT_RING_SIZE) * 64)).toBe(EVENT_RING_SIZE);
    view.setUint32(0, 0xfff0, true); // a nonsensical in_cons: no room
    expect(ev.push([response(1)])).toBe(0);
  });
});
