/**
 * The display backend against a frontend played from Dom0 (fake-frontend.ts):
 * the handshake and teardown, a whole frame path through the real module,
 * and hostile requests written straight into the ring. The real frontend
 * (drm_xen_front in a DomU) is display.test.ts's peer.
 */
import { constants } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DisplayBackend, type BackendEvent } from '../../lib/displif/backend.js';
import { directoryPages, parsePageDirectory } from '../../lib/displif/directory.js';
import { DBUF_FLG_REQ_ALLOC, DisplOp, encodeRequest, FOURCC, XenbusState } from '../../lib/displif/protocol.js';
import { GrantMapper } from '../../lib/xen/grants.js';
import { ImportSink, type ShownFrame } from '../../lib/displif/sink.js';
import { until, zcopyStats } from './drm.js';
import { FakeFrontend } from './fake-frontend.js';

const E = constants.errno;
const W = 64;
const H = 48;
const SIZE = W * H * 4;
const PAGES = Math.ceil(SIZE / 4096);

const fill = (seed: number) => (buf: Buffer) => {
  for (let i = 0; i < SIZE; i += 4) buf.writeUInt32LE((Math.imul(i / 4 + 1, 2654435761) ^ seed) >>> 0, i);
};

const dbufCreate = (id: number, cookie: bigint, dirRef: number, over: Partial<{ width: number; height: number; bpp: number; bufferSize: number; flags: number; dataOffset: number }> = {}) =>
  encodeRequest({
    id, op: DisplOp.DBUF_CREATE, dbufCookie: cookie, width: W, height: H, bpp: 32, bufferSize: SIZE, flags: 0,
    grefDirectory: dirRef, dataOffset: 0, ...over,
  });
const fbAttach = (id: number, dbufCookie: bigint, fbCookie: bigint, pixelFormat: number = FOURCC.XRGB8888) =>
  encodeRequest({ id, op: DisplOp.FB_ATTACH, dbufCookie, fbCookie, width: W, height: H, pixelFormat });

describe('display backend: protocol against a Dom0-played frontend', () => {
  let backend: DisplayBackend;
  const frames: { cookie: bigint; first: number; match: boolean }[] = [];
  const events: BackendEvent[] = [];
  let expected: Buffer | undefined;

  beforeAll(async () => {
    backend = await DisplayBackend.start({
      sink: () => new ImportSink({
        refreshHz: 0,
        onFrame: (f: ShownFrame) => frames.push({ cookie: f.fb.cookie, first: f.pixels.readUInt32LE(0), match: expected ? f.pixels.subarray(0, SIZE).equals(expected) : false }),
      }),
      onEvent: (e) => events.push(e),
      allowBeAlloc: true,
    });
  });

  afterAll(async () => {
    await backend?.close();
  });

  it('connects, serves a frame zero-copy, and releases everything on teardown', async () => {
    const fe = await FakeFrontend.create(11);
    try {
      await fe.connect();
      expect(backend.devices.get('0/11')?.state).toBe(XenbusState.Connected);
      const buf = fe.shareBuffer(PAGES, fill(5));
      expected = Buffer.from(buf.data.buffer.subarray(0, SIZE));
      fe.send(dbufCreate(1, 100n, buf.dirRef), fbAttach(2, 100n, 200n),
        encodeRequest({ id: 3, op: DisplOp.SET_CONFIG, fbCookie: 200n, x: 0, y: 0, width: W, height: H, bpp: 32 }),
        encodeRequest({ id: 4, op: DisplOp.PG_FLIP, fbCookie: 200n }));
      expect(await fe.responses(4)).toEqual([
        { id: 1, op: DisplOp.DBUF_CREATE, status: 0 },
        { id: 2, op: DisplOp.FB_ATTACH, status: 0 },
        { id: 3, op: DisplOp.SET_CONFIG, status: 0 },
        { id: 4, op: DisplOp.PG_FLIP, status: 0 },
      ]);
      expect(await fe.events(1)).toEqual([{ id: 0, fbCookie: 200n }]);
      expect(frames.at(-1)).toMatchObject({ cookie: 200n, match: true });
      expect(zcopyStats().live_objects).toBe(1);

      // zero copy: the frontend rewrites its pages, the next flip shows it
      fill(9)(buf.data.buffer);
      expected = Buffer.from(buf.data.buffer.subarray(0, SIZE));
      fe.send(encodeRequest({ id: 5, op: DisplOp.PG_FLIP, fbCookie: 200n }));
      expect(await fe.responses(1)).toEqual([{ id: 5, op: DisplOp.PG_FLIP, status: 0 }]);
      expect(await fe.events(1)).toEqual([{ id: 1, fbCookie: 200n }]);
      expect(frames.at(-1)).toMatchObject({ cookie: 200n, match: true });

      fe.send(encodeRequest({ id: 6, op: DisplOp.FB_DETACH, fbCookie: 200n }),
        encodeRequest({ id: 7, op: DisplOp.DBUF_DESTROY, dbufCookie: 100n }));
      expect((await fe.responses(2)).map((r) => r.status)).toEqual([0, 0]);
      expect(zcopyStats().live_objects).toBe(0);
    } finally {
      await fe.close();
    }
    expect(await until(() => !backend.devices.has('0/11'), 5000)).toBe(true);
    expect(zcopyStats()).toMatchObject({ live_objects: 0, mapped_foreign_pages: 0 });
  });

  it('answers hostile requests with -errno and keeps serving', async () => {
    const fe = await FakeFrontend.create(12);
    try {
      await fe.connect();
      const buf = fe.shareBuffer(PAGES, fill(1));
      // a directory that points at itself, and one whose data ref is 0
      const loop = fe.shareBuffer(PAGES);
      loop.dir.buffer.writeUInt32LE(loop.dirRef, 0);
      const zero = fe.shareBuffer(PAGES);
      zero.dir.buffer.writeUInt32LE(0, 4 * 2);
      const cases: [Buffer, number][] = [
        [dbufCreate(1, 1n, buf.dirRef), 0],
        [dbufCreate(2, 1n, buf.dirRef), -E.EEXIST],
        [dbufCreate(3, 2n, buf.dirRef, { width: 100000 }), -E.EINVAL],
        [dbufCreate(4, 2n, buf.dirRef, { bufferSize: SIZE - 1 }), -E.EINVAL],
        [dbufCreate(5, 2n, buf.dirRef, { bufferSize: 0xffffffff }), -E.EINVAL],
        [dbufCreate(6, 2n, buf.dirRef, { bpp: 7 }), -E.EINVAL],
        [dbufCreate(7, 2n, buf.dirRef, { flags: 1, bufferSize: SIZE * 4 }), -E.EINVAL], // be-alloc: size must match
        [dbufCreate(8, 2n, buf.dirRef, { flags: 0x80 }), -E.EINVAL],
        [dbufCreate(9, 2n, loop.dirRef, { bufferSize: 1024 * 4096 * 2 }), -E.EINVAL],
        [dbufCreate(10, 2n, zero.dirRef), -E.EINVAL],
        [dbufCreate(11, 2n, 0xfffff), -E.EINVAL],
        [fbAttach(12, 9n, 20n), -E.ENOENT],
        [fbAttach(13, 1n, 20n, 0x12345678), -E.EINVAL],
        [fbAttach(14, 1n, 20n), 0],
        [fbAttach(15, 1n, 20n), -E.EEXIST],
        [encodeRequest({ id: 16, op: DisplOp.SET_CONFIG, fbCookie: 99n, x: 0, y: 0, width: W, height: H, bpp: 32 }), -E.ENOENT],
        [encodeRequest({ id: 17, op: DisplOp.SET_CONFIG, fbCookie: 20n, x: 1, y: 0, width: W, height: H, bpp: 32 }), -E.EINVAL],
        [encodeRequest({ id: 18, op: DisplOp.PG_FLIP, fbCookie: 99n }), -E.ENOENT],
        [encodeRequest({ id: 19, op: DisplOp.DBUF_DESTROY, dbufCookie: 1n }), -E.EBUSY],
        [encodeRequest({ id: 20, op: DisplOp.DBUF_DESTROY, dbufCookie: 77n }), -E.ENOENT],
        [encodeRequest({ id: 21, op: DisplOp.FB_DETACH, fbCookie: 77n }), -E.ENOENT],
      ];
      const unknown = Buffer.alloc(64);
      unknown.writeUInt16LE(22, 0);
      unknown.writeUInt8(0x7f, 2);
      cases.push([unknown, -E.EOPNOTSUPP]);
      for (const [req, status] of cases) {
        fe.send(req);
        const [rsp] = await fe.responses(1);
        expect(rsp, `request ${req.readUInt16LE(0)}`).toEqual({ id: req.readUInt16LE(0), op: req.readUInt8(2), status });
      }
      // a burst of a whole ring's worth of flips at once: every request answered
      // in order; one flip may wait for its frame at a time, the rest are EBUSY
      const burst = Array.from({ length: 32 }, (_, i) => encodeRequest({ id: 100 + i, op: DisplOp.PG_FLIP, fbCookie: 20n }));
      fe.send(...burst);
      expect((await fe.responses(32)).map((r) => [r.id, r.status])).toEqual(burst.map((_, i) => [100 + i, i === 0 ? 0 : -E.EBUSY]));
      expect((await fe.events(32, 1000)).map((e) => e.id)).toEqual([0]);
      // a flip whose framebuffer is detached in the same batch: not shown, but its event comes
      const shownBefore = frames.length;
      fe.send(encodeRequest({ id: 200, op: DisplOp.PG_FLIP, fbCookie: 20n }), encodeRequest({ id: 201, op: DisplOp.FB_DETACH, fbCookie: 20n }));
      expect((await fe.responses(2)).map((r) => r.status)).toEqual([0, 0]);
      expect((await fe.events(1)).map((e) => e.id)).toEqual([1]);
      expect(frames.length).toBe(shownBefore);
      expect(backend.devices.get('0/12')?.state).toBe(XenbusState.Connected);
    } finally {
      await fe.close();
    }
    expect(await until(() => zcopyStats().live_objects === 0, 5000)).toBe(true);
  });

  it('be-alloc: Dom0 allocates, grants and fills the directory; the frontend draws into Dom0 pages', async () => {
    const fe = await FakeFrontend.create(15);
    const BW = 1920;
    const BH = 1080;
    const bsize = BW * BH * 4;
    const pages = bsize / 4096; // 2025: two directory pages
    try {
      await fe.connect();
      const dirs = directoryPages(pages);
      const dir = fe.alloc.share(0, dirs);
      fe.shares.push(dir);
      for (let i = 0; i < dirs; i++) dir.buffer.writeUInt32LE(i + 1 < dirs ? dir.refs[i + 1]! : 0, i * 4096);
      const granted0 = zcopyStats().granted_pages;
      fe.send(dbufCreate(1, 300n, dir.refs[0]!, { width: BW, height: BH, bufferSize: bsize, flags: DBUF_FLG_REQ_ALLOC }));
      expect(await fe.responses(1)).toEqual([{ id: 1, op: DisplOp.DBUF_CREATE, status: 0 }]);
      expect(zcopyStats().granted_pages - granted0).toBe(pages);
      const refs = parsePageDirectory(dir.refs[0]!, pages, (ref) => {
        const i = Array.prototype.indexOf.call(dir.refs, ref);
        return new Uint32Array(dir.buffer.buffer, dir.buffer.byteOffset + i * 4096, 1024);
      });
      const mapper = GrantMapper.open();
      const m = mapper.map(0, refs, { writable: true });
      const pattern = Buffer.alloc(bsize);
      for (let i = 0; i < bsize; i += 4) pattern.writeUInt32LE((i * 40503) >>> 0, i);
      pattern.copy(m.buffer);
      expected = Buffer.from(pattern.subarray(0, SIZE)); // the sink compares the first SIZE bytes
      fe.send(encodeRequest({ id: 2, op: DisplOp.FB_ATTACH, dbufCookie: 300n, fbCookie: 301n, width: BW, height: BH, pixelFormat: FOURCC.XRGB8888 }),
        encodeRequest({ id: 3, op: DisplOp.PG_FLIP, fbCookie: 301n }));
      expect((await fe.responses(2)).map((r) => r.status)).toEqual([0, 0]);
      expect(await fe.events(1)).toHaveLength(1);
      expect(frames.at(-1)).toMatchObject({ cookie: 301n, match: true });
      await m.close();
      await mapper.close();
      fe.send(encodeRequest({ id: 4, op: DisplOp.FB_DETACH, fbCookie: 301n }), encodeRequest({ id: 5, op: DisplOp.DBUF_DESTROY, dbufCookie: 300n }));
      expect((await fe.responses(2)).map((r) => r.status)).toEqual([0, 0]);
      expect(await until(() => zcopyStats().granted_pages === granted0 && zcopyStats().deferred_reclaims === 0, 5000)).toBe(true);
    } finally {
      await fe.close();
    }
  });

  it('bounds a sink that never shows a frame, a device\'s pages, and refuses be-alloc unless allowed', async () => {
    await backend.close();
    const hung: BackendEvent[] = [];
    const other = await DisplayBackend.start({
      sink: () => ({ attach() {}, detach() {}, setConfig() {}, show: () => new Promise<void>(() => undefined), close: async () => {} }),
      onEvent: (e) => hung.push(e),
      limits: { maxDevicePages: PAGES }, // and be-alloc left off (the default)
    });
    const fe = await FakeFrontend.create(16);
    try {
      await fe.connect();
      const buf = fe.shareBuffer(PAGES, fill(4));
      fe.send(dbufCreate(1, 1n, buf.dirRef), fbAttach(2, 1n, 2n), encodeRequest({ id: 3, op: DisplOp.PG_FLIP, fbCookie: 2n }),
        dbufCreate(4, 9n, buf.dirRef), dbufCreate(5, 9n, buf.dirRef, { flags: DBUF_FLG_REQ_ALLOC }));
      expect((await fe.responses(5)).map((r) => r.status)).toEqual([0, 0, 0, -E.ENOSPC, -E.ENOSPC]);
      const t0 = Date.now();
      expect(await fe.events(1, 6000)).toEqual([{ id: 0, fbCookie: 2n }]);
      expect(Date.now() - t0).toBeLessThan(3100); // within the frontend's own frame-done time-out
      expect(hung.some((e) => e.type === 'error' && /show took more than/.test(e.message))).toBe(true);
      fe.send(encodeRequest({ id: 6, op: DisplOp.FB_DETACH, fbCookie: 2n }), encodeRequest({ id: 7, op: DisplOp.DBUF_DESTROY, dbufCookie: 1n }),
        dbufCreate(8, 9n, buf.dirRef, { flags: DBUF_FLG_REQ_ALLOC }));
      expect((await fe.responses(3)).map((r) => r.status)).toEqual([0, 0, -E.EOPNOTSUPP]);
    } finally {
      await fe.close();
      await other.close();
      backend = await DisplayBackend.start({ sink: () => new ImportSink({ refreshHz: 0 }), onEvent: (e) => events.push(e), allowBeAlloc: true });
    }
  });

  it('refuses a frontend whose xenstore values lie (Closing, an error, nothing mapped), and serves the next one', async () => {
    const lies: [string, string][] = [
      ['0/req-ring-ref', 'x'],
      ['0/req-ring-ref', '99999999999'],
      ['0/req-event-channel', '4294967295'],
      ['0/evt-ring-ref', ''],
      ['0/resolution', '99999x1'],
      ['0/resolution', '640x480x32'],
      ['be-alloc', '7'],
      ['1/resolution', '640x480'], // a second connector with no rings
      ['3/resolution', '640x480'], // connectors must be numbered from 0 without gaps
    ];
    for (const [i, [key, value]] of lies.entries()) {
      const fe = await FakeFrontend.create(20 + i);
      const before = events.length;
      try {
        await fe.connect(10_000, { [key]: value }, XenbusState.Closing);
        expect(events.slice(before).some((e) => e.type === 'error' && /connecting/.test(e.message)), `${key}=${value}`).toBe(true);
        expect(zcopyStats().live_objects, `${key}=${value}`).toBe(0);
      } finally {
        await fe.close();
      }
    }
    const good = await FakeFrontend.create(30);
    try {
      await good.connect();
      expect(backend.devices.get('0/30')?.state).toBe(XenbusState.Connected);
    } finally {
      await good.close();
    }
    expect(await until(() => backend.devices.size === 0, 5000)).toBe(true);
  });

  it('closes a device whose ring indices lie, and serves the next one', async () => {
    const bad = await FakeFrontend.create(13);
    try {
      await bad.connect();
      const buf = bad.shareBuffer(PAGES, fill(2));
      bad.send(dbufCreate(1, 1n, buf.dirRef));
      expect(await bad.responses(1)).toEqual([{ id: 1, op: DisplOp.DBUF_CREATE, status: 0 }]);
      bad.setReqProd(bad.reqProd + 1000);
      await bad.xs.waitFor(`${bad.bePath}/state`, (v) => v === String(XenbusState.Closing), 5000);
      expect(events.some((e) => e.type === 'error' && /req_prod/.test(e.message))).toBe(true);
      expect(await until(() => zcopyStats().live_objects === 0, 5000)).toBe(true);
    } finally {
      await bad.close();
    }
    const good = await FakeFrontend.create(14);
    try {
      await good.connect();
      const buf = good.shareBuffer(PAGES, fill(3));
      good.send(dbufCreate(1, 5n, buf.dirRef));
      expect(await good.responses(1)).toEqual([{ id: 1, op: DisplOp.DBUF_CREATE, status: 0 }]);
    } finally {
      await good.close();
    }
    expect(await until(() => zcopyStats().live_objects === 0 && backend.devices.size === 0, 5000)).toBe(true);
  });
});
