/**
 * The whole pipeline with real peers: a guest app flips frames through
 * Linux's drm_xen_front, the backend maps the guest's buffers with
 * xen_drm_zcopy and scans them out on vkms, and Dom0 checks what vkms
 * actually composed (its writeback capture) against the guest's frames, frame
 * by frame, in zero-copy and in copy mode.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type BackendEvent, DisplayBackend } from '../../lib/displif/backend.js';
import { KmsSink } from '../../lib/displif/kms-sink.js';
import { KmsDevice, modeFor } from '../../lib/drm/kms.js';
import type { ReadonlyBytes } from '../../lib/resource.js';
import { loadVkms, unloadVkms, until, zcopyStats } from './drm.js';
import { DomU, guestFrameImage } from './fixture.js';

/** SHA-1 of the colour bytes of `height` rows of `width` XRGB8888 pixels (the X byte is undefined by the format). */
export function rgbHash(px: Buffer | ReadonlyBytes, width: number, height: number, pitch: number): string {
  const packed = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) px.copy(packed, y * width * 4, y * pitch, y * pitch + width * 4);
  for (let i = 3; i < packed.length; i += 4) packed[i] = 0;
  return createHash('sha1').update(packed).digest('hex');
}

interface Captured {
  domid: number;
  conn: number;
  hash: string;
}

const quiet = () => until(() => {
  const s = zcopyStats();
  return s.live_objects === 0 && s.mapped_foreign_pages === 0 && s.user_mapped_pages === 0;
}, 15_000);

describe('scan-out of a real guest on vkms, captured through writeback', () => {
  let kms: KmsDevice;
  let backend: DisplayBackend | undefined;
  const captured: Captured[] = [];
  const events: BackendEvent[] = [];

  const startBackend = async (copy: boolean) => {
    await backend?.close();
    backend = await DisplayBackend.start({
      sink: () => new KmsSink({
        kms,
        copy,
        onCapture: (f) => captured.push({ domid: f.conn.domid, conn: f.conn.index, hash: rgbHash(f.pixels, f.fb.width, f.fb.height, f.fb.width * 4) }),
      }),
      onEvent: (e) => events.push(e),
    });
  };

  beforeAll(async () => {
    await loadVkms();
    kms = KmsDevice.open('vkms');
  });

  afterAll(async () => {
    await backend?.close();
    await kms?.close();
    // rmmod fails while anything still holds vkms (a framebuffer, an imported guest buffer)
    expect(unloadVkms()).toBeUndefined();
    expect(await quiet()).toBe(true);
  });

  for (const mode of ['zero copy', 'copy'] as const) {
    it(`${mode}: what vkms scanned out equals each of 30 guest frames, pixel for pixel`, async () => {
      await startBackend(mode === 'copy');
      const guest = await DomU.start({ name: `xzc-kms-${mode === 'copy' ? 'c' : 'z'}-${process.pid}`, vdispl: 'backend=0,be-alloc=0,connectors=id0:640x480' });
      try {
        await guest.loadFront();
        await guest.waitDisplay();
        expect(await guest.drmOpen(0)).toMatchObject({ width: 640, height: 480 });
        const from = captured.length;
        const loop = await guest.drmLoop(30);
        expect(loop.flips).toBe(30);
        const mine = captured.slice(from).filter((c) => c.domid === guest.domid);
        expect(mine).toHaveLength(30);
        for (let k = 0; k < 30; k++) {
          const want = rgbHash(guestFrameImage({ width: 640, height: 480, frame: k, domid: guest.domid }), 640, 480, 640 * 4);
          expect(mine[k]!.hash, `frame ${k}`).toBe(want);
        }
        await guest.drmClose();
        expect(await until(() => backend!.devices.get(`${guest.domid}/0`)?.bufferCount === 0, 10_000)).toBe(true);
        expect(events.filter((e) => e.type === 'error' && e.domid === guest.domid)).toEqual([]);
      } finally {
        await guest.destroy();
      }
      expect(await until(() => backend!.devices.size === 0, 15_000)).toBe(true);
      expect(await quiet()).toBe(true);
    }, 600_000);
  }

  it('zero copy: a guest destroyed while vkms scans out its pages releases everything, and the display still works', async () => {
    await startBackend(false);
    const guest = await DomU.start({ name: `xzc-kms-d-${process.pid}`, vdispl: 'backend=0,be-alloc=0,connectors=id0:320x240' });
    await guest.loadFront();
    await guest.waitDisplay();
    await guest.drmOpen(0);
    const from = captured.length;
    const looping = guest.drmLoop(100000).catch(() => undefined);
    expect(await until(() => captured.length - from >= 5, 60_000)).toBe(true);
    await guest.destroy();
    await looping;
    expect(await until(() => backend!.devices.size === 0, 15_000)).toBe(true);
    expect(await quiet()).toBe(true);
    // the pipe was handed back and still scans out
    const out = kms.claimOutput();
    expect(out).toBeDefined();
    const buf = await kms.createDumbBuffer(320, 240);
    try {
      await kms.modeset(out!, modeFor(out!.modes, 320, 240), buf.fb);
      await kms.flip(out!, buf.fb);
      await kms.disable(out!);
    } finally {
      kms.releaseOutput(out!);
      await buf.fb.close();
      await buf.dmabuf.close();
    }
  }, 600_000);
});
