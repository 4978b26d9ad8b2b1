/** The displif codec: offsets as Linux's drm_xen_front lays them out. */
import { describe, expect, it } from 'vitest';

import {
  decodeRequest, decodeResponse, DisplOp, encodePageFlipEvent, encodeRequest, encodeResponse, FOURCC,
} from '../../lib/displif/protocol.js';

describe('displif codec', () => {
  it('decodes DBUF_CREATE at the struct offsets (gref_directory @36, data_ofs @40)', () => {
    const b = Buffer.alloc(64);
    b.writeUInt16LE(0xbeef, 0);
    b.writeUInt8(0x10, 2);
    b.writeBigUInt64LE(0x1122334455667788n, 8);
    b.writeUInt32LE(1024, 16);
    b.writeUInt32LE(768, 20);
    b.writeUInt32LE(32, 24);
    b.writeUInt32LE(1024 * 768 * 4, 28);
    b.writeUInt32LE(1, 32);
    b.writeUInt32LE(77, 36);
    b.writeUInt32LE(5, 40);
    expect(decodeRequest(b)).toEqual({
      id: 0xbeef, op: DisplOp.DBUF_CREATE, dbufCookie: 0x1122334455667788n, width: 1024, height: 768, bpp: 32,
      bufferSize: 1024 * 768 * 4, flags: 1, grefDirectory: 77, dataOffset: 5,
    });
  });

  it('puts SET_CONFIG bpp at 32 (the struct), not 40 (the header diagram)', () => {
    const b = encodeRequest({ id: 1, op: DisplOp.SET_CONFIG, fbCookie: 9n, x: 1, y: 2, width: 3, height: 4, bpp: 32 });
    expect(b.readUInt32LE(32)).toBe(32);
    expect(b.readUInt32LE(40)).toBe(0);
  });

  it('round-trips every request it can encode', () => {
    const reqs = [
      { id: 2, op: DisplOp.DBUF_DESTROY, dbufCookie: 5n },
      { id: 3, op: DisplOp.FB_ATTACH, dbufCookie: 5n, fbCookie: 6n, width: 640, height: 480, pixelFormat: FOURCC.XRGB8888 },
      { id: 4, op: DisplOp.FB_DETACH, fbCookie: 6n },
      { id: 5, op: DisplOp.PG_FLIP, fbCookie: 6n },
    ] as const;
    for (const r of reqs) expect(decodeRequest(encodeRequest(r))).toEqual(r);
  });

  it('keeps unknown ops as unknown, and refuses a short request', () => {
    const b = Buffer.alloc(64);
    b.writeUInt8(0x16, 2); // GET_EDID: never sent by Linux
    expect(decodeRequest(b)).toEqual({ id: 0, op: 0x16, unknown: true });
    expect(() => decodeRequest(Buffer.alloc(63))).toThrow(RangeError);
  });

  it('encodes responses (id and op echoed, status @4) and frame-done events (fb_cookie @8)', () => {
    expect(decodeResponse(encodeResponse(0x1234, 0x15, -22))).toEqual({ id: 0x1234, op: 0x15, status: -22 });
    const e = encodePageFlipEvent(7, 0xabcn);
    expect([e.readUInt16LE(0), e.readUInt8(2), e.readBigUInt64LE(8)]).toEqual([7, 0, 0xabcn]);
  });
});
