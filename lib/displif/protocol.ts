/**
 * The Xen PV display protocol (io/displif.h) as Linux's drm_xen_front speaks
 * it: constants, request decoding from private 64-byte copies, and response
 * and event encoding. Decoding never trusts a field: the backend validates
 * every value against its own limits.
 *
 * @module
 */

/** XenbusState values in xenstore `state` nodes. */
export const XenbusState = {
  Unknown: 0,
  Initialising: 1,
  InitWait: 2,
  Initialised: 3,
  Connected: 4,
  Closing: 5,
  Closed: 6,
  Reconfiguring: 7,
  Reconfigured: 8,
} as const;

/** Request operations. */
export const DisplOp = {
  DBUF_CREATE: 0x10,
  DBUF_DESTROY: 0x11,
  FB_ATTACH: 0x12,
  FB_DETACH: 0x13,
  SET_CONFIG: 0x14,
  PG_FLIP: 0x15,
  GET_EDID: 0x16,
} as const;

/** Event types on the event page. */
export const DisplEvent = { PG_FLIP: 0x00 } as const;

/** DBUF_CREATE flag: the backend allocates the buffer (be-alloc). */
export const DBUF_FLG_REQ_ALLOC = 1 << 0;

/** Most connectors a frontend may have (Linux's XENDISPL_MAX_CONNECTORS... and ours). */
export const MAX_CONNECTORS = 10;

/** DRM fourcc codes the backend knows, with their bits per pixel. */
export const FOURCC = {
  XRGB8888: 0x34325258, // 'XR24'
  ARGB8888: 0x34325241, // 'AR24'
  RGB565: 0x36314752, // 'RG16'
} as const;
export const FOURCC_BPP: ReadonlyMap<number, number> = new Map([
  [FOURCC.XRGB8888, 32],
  [FOURCC.ARGB8888, 32],
  [FOURCC.RGB565, 16],
]);

export type DisplRequest =
  | { id: number; op: typeof DisplOp.DBUF_CREATE; dbufCookie: bigint; width: number; height: number; bpp: number;
    bufferSize: number; flags: number; grefDirectory: number; dataOffset: number }
  | { id: number; op: typeof DisplOp.DBUF_DESTROY; dbufCookie: bigint }
  | { id: number; op: typeof DisplOp.FB_ATTACH; dbufCookie: bigint; fbCookie: bigint; width: number; height: number; pixelFormat: number }
  | { id: number; op: typeof DisplOp.FB_DETACH; fbCookie: bigint }
  | { id: number; op: typeof DisplOp.SET_CONFIG; fbCookie: bigint; x: number; y: number; width: number; height: number; bpp: number }
  | { id: number; op: typeof DisplOp.PG_FLIP; fbCookie: bigint }
  | { id: number; op: number; unknown: true };

/** Decodes a request from its private 64-byte copy. */
export function decodeRequest(b: Buffer): DisplRequest {
  if (b.length !== 64) throw new RangeError('a displif request is 64 bytes');
  const id = b.readUInt16LE(0);
  const op = b.readUInt8(2);
  switch (op) {
    case DisplOp.DBUF_CREATE:
      return {
        id, op, dbufCookie: b.readBigUInt64LE(8), width: b.readUInt32LE(16), height: b.readUInt32LE(20),
        bpp: b.readUInt32LE(24), bufferSize: b.readUInt32LE(28), flags: b.readUInt32LE(32),
        grefDirectory: b.readUInt32LE(36), dataOffset: b.readUInt32LE(40),
      };
    case DisplOp.DBUF_DESTROY:
      return { id, op, dbufCookie: b.readBigUInt64LE(8) };
    case DisplOp.FB_ATTACH:
      return {
        id, op, dbufCookie: b.readBigUInt64LE(8), fbCookie: b.readBigUInt64LE(16), width: b.readUInt32LE(24),
        height: b.readUInt32LE(28), pixelFormat: b.readUInt32LE(32),
      };
    case DisplOp.FB_DETACH:
      return { id, op, fbCookie: b.readBigUInt64LE(8) };
    case DisplOp.SET_CONFIG:
      return {
        id, op, fbCookie: b.readBigUInt64LE(8), x: b.readUInt32LE(16), y: b.readUInt32LE(20),
        width: b.readUInt32LE(24), height: b.readUInt32LE(28), bpp: b.readUInt32LE(32),
      };
    case DisplOp.PG_FLIP:
      return { id, op, fbCookie: b.readBigUInt64LE(8) };
    default:
      return { id, op, unknown: true };
  }
}

/** Encodes a request (a frontend's side: tests and tools). */
export function encodeRequest(r: Exclude<DisplRequest, { unknown: true }>): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt16LE(r.id, 0);
  b.writeUInt8(r.op, 2);
  switch (r.op) {
    case DisplOp.DBUF_CREATE:
      b.writeBigUInt64LE(r.dbufCookie, 8);
      b.writeUInt32LE(r.width, 16);
      b.writeUInt32LE(r.height, 20);
      b.writeUInt32LE(r.bpp, 24);
      b.writeUInt32LE(r.bufferSize, 28);
      b.writeUInt32LE(r.flags, 32);
      b.writeUInt32LE(r.grefDirectory, 36);
      b.writeUInt32LE(r.dataOffset, 40);
      break;
    case DisplOp.DBUF_DESTROY:
      b.writeBigUInt64LE(r.dbufCookie, 8);
      break;
    case DisplOp.FB_ATTACH:
      b.writeBigUInt64LE(r.dbufCookie, 8);
      b.writeBigUInt64LE(r.fbCookie, 16);
      b.writeUInt32LE(r.width, 24);
      b.writeUInt32LE(r.height, 28);
      b.writeUInt32LE(r.pixelFormat, 32);
      break;
    case DisplOp.FB_DETACH:
    case DisplOp.PG_FLIP:
      b.writeBigUInt64LE(r.fbCookie, 8);
      break;
    case DisplOp.SET_CONFIG:
      b.writeBigUInt64LE(r.fbCookie, 8);
      b.writeUInt32LE(r.x, 16);
      b.writeUInt32LE(r.y, 20);
      b.writeUInt32LE(r.width, 24);
      b.writeUInt32LE(r.height, 28);
      b.writeUInt32LE(r.bpp, 32);
      break;
  }
  return b;
}

/** A response: the request's id and op echoed, status 0 or -errno. */
export function encodeResponse(id: number, op: number, status: number): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt16LE(id & 0xffff, 0);
  b.writeUInt8(op & 0xff, 2);
  b.writeInt32LE(status, 4);
  return b;
}

export function decodeResponse(b: Buffer): { id: number; op: number; status: number } {
  return { id: b.readUInt16LE(0), op: b.readUInt8(2), status: b.readInt32LE(4) };
}

/** A frame-done event for `fbCookie`; ids run 0, 1, 2, ... per connection. */
export function encodePageFlipEvent(id: number, fbCookie: bigint): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt16LE(id & 0xffff, 0);
  b.writeUInt8(DisplEvent.PG_FLIP, 2);
  b.writeBigUInt64LE(fbCookie, 8);
  return b;
}
