/**
 * KmsSink's policy over a recording fake of KmsDevice: which pipe a guest
 * connector gets, what is committed for SET_CONFIG and PG_FLIP, copy mode's
 * per-frame copy (pitches differing), and that everything goes back on close.
 * The real device is exercised in test/xen/kms.test.ts and display-kms.test.ts.
 */
import { describe, expect, it } from 'vitest';

import type { ConnectorInfo, DisplayBuffer, Framebuffer } from '../../lib/displif/sink.js';
import { KmsSink } from '../../lib/displif/kms-sink.js';
import type { DmaBuf } from '../../lib/drm/dmabuf.js';
import type { KmsDevice, KmsFramebuffer, KmsModeInfo, KmsOutput } from '../../lib/drm/kms.js';

/** A byte array posing as a mappable dma-buf. */
function fakeDmaBuf(bytes: Buffer): DmaBuf {
  const mapping = { bytes, buffer: bytes, closeSync() {}, toBuffer: () => Buffer.from(bytes) };
  return { size: bytes.length, map: () => mapping, close: async () => {} } as unknown as DmaBuf;
}

function fakeKms(pipes: number) {
  const log: string[] = [];
  const outputs: KmsOutput[] = Array.from({ length: pipes }, (_, i) => ({
    name: `Virtual-${i + 1}`, connectorId: 10 + i, crtcId: 20 + i, planeId: 30 + i, writebackId: 40 + i, modes: [],
  }));
  const claimed = new Set<KmsOutput>();
  const dumbs: Buffer[] = [];
  let nextFb = 100;
  const fb = (dmabuf: DmaBuf, width: number, height: number, pitch: number): KmsFramebuffer => {
    const id = nextFb++;
    let closed = false;
    return {
      id, dmabuf, width, height, pitch, fourcc: 0x34325258, get closed() { return closed; },
      closeSync: () => { closed = true; log.push(`rmfb ${id}`); },
    } as unknown as KmsFramebuffer;
  };
  const kms = {
    drm: { driver: 'fake' },
    outputs,
    claimOutput: () => {
      const o = outputs.find((x) => !claimed.has(x));
      if (o) claimed.add(o);
      return o;
    },
    releaseOutput: (o: KmsOutput) => { claimed.delete(o); log.push(`release ${o.name}`); },
    addFramebuffer: (d: DmaBuf, f: { width: number; height: number; pitch: number }) => {
      const k = fb(d, f.width, f.height, f.pitch);
      log.push(`addfb ${k.id}`);
      return k;
    },
    createDumbBuffer: async (w: number, h: number) => {
      const bytes = Buffer.alloc((w * 4 + 64) * h); // a pitch wider than the guest's
      dumbs.push(bytes);
      const d = fakeDmaBuf(bytes);
      return { dmabuf: d, fb: fb(d, w, h, w * 4 + 64) };
    },
    modeset: async (o: KmsOutput, m: KmsModeInfo, k: KmsFramebuffer, opts: { capture?: boolean } = {}) => {
      log.push(`modeset ${o.name} ${m.hdisplay}x${m.vdisplay} fb ${k.id}${opts.capture ? ' capture' : ''}`);
    },
    flip: async (o: KmsOutput, k: KmsFramebuffer) => { log.push(`flip ${o.name} fb ${k.id}`); },
    disable: async (o: KmsOutput) => { log.push(`off ${o.name}`); },
  };
  return { kms: kms as unknown as KmsDevice, log, dumbs, claimed };
}

const conn = (index: number): ConnectorInfo => ({ domid: 5, device: 0, index, width: 4, height: 2 });

function guestFb(cookie: number, fill: number): Framebuffer {
  const bytes = Buffer.alloc(4 * 4 * 2, fill);
  const buffer: DisplayBuffer = { cookie: BigInt(cookie), width: 4, height: 2, bpp: 32, pitch: 16, dmabuf: fakeDmaBuf(bytes) };
  return { cookie: BigInt(cookie), width: 4, height: 2, fourcc: 0x34325258, buffer };
}

describe('KmsSink', () => {
  it('zero copy: the guest buffer itself is the scanned-out framebuffer', async () => {
    const { kms, log, claimed } = fakeKms(1);
    const sink = new KmsSink({ kms });
    const a = guestFb(1, 0xaa);
    const b = guestFb(2, 0xbb);
    sink.attach(a);
    sink.attach(b);
    await sink.setConfig(conn(0), a);
    await sink.show(conn(0), b);
    await sink.show(conn(0), a);
    sink.detach(b);
    await sink.setConfig(conn(0), undefined);
    expect(log).toEqual([
      'addfb 100', 'addfb 101', 'modeset Virtual-1 4x2 fb 100', 'flip Virtual-1 fb 101', 'flip Virtual-1 fb 100',
      'rmfb 101', 'off Virtual-1', 'release Virtual-1',
    ]);
    expect(claimed.size).toBe(0);
    await sink.close();
    expect(log.at(-1)).toBe('rmfb 100');
  });

  it('a connector without a free pipe is refused with ENOSPC; the first keeps its pipe', async () => {
    const { kms } = fakeKms(1);
    const one = new KmsSink({ kms });
    const two = new KmsSink({ kms });
    const a = guestFb(1, 1);
    one.attach(a);
    two.attach(a);
    await one.setConfig(conn(0), a);
    await expect(two.setConfig(conn(0), a)).rejects.toMatchObject({ code: 'ENOSPC' });
    await one.close();
    await two.setConfig(conn(0), a); // given back by close()
    await two.close();
  });

  it('copy mode: each frame is copied row by row into alternating Dom0 buffers', async () => {
    const { kms, log, dumbs } = fakeKms(1);
    const sink = new KmsSink({ kms, copy: true });
    const a = guestFb(1, 0x11);
    const b = guestFb(2, 0x22);
    sink.attach(a);
    sink.attach(b);
    await sink.setConfig(conn(0), a);
    await sink.show(conn(0), b);
    expect(log.filter((l) => l.startsWith('addfb'))).toEqual([]); // guest buffers are never imported
    expect(dumbs).toHaveLength(2);
    const dstPitch = 4 * 4 + 64;
    for (const [dumb, fill] of [[dumbs[0]!, 0x11], [dumbs[1]!, 0x22]] as const) {
      for (let y = 0; y < 2; y++) {
        expect(dumb.subarray(y * dstPitch, y * dstPitch + 16).every((v) => v === fill)).toBe(true);
        expect(dumb.subarray(y * dstPitch + 16, (y + 1) * dstPitch).every((v) => v === 0)).toBe(true);
      }
    }
    await sink.close();
    expect(log.filter((l) => l.startsWith('rmfb'))).toHaveLength(2);
  });
});
