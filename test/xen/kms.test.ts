/**
 * lib/drm/kms.ts on a real KMS driver: vkms (built by the harness from
 * Debian's linux-source) in Dom0. Modesets, page flips paced by its vblank,
 * and its writeback connector capturing what it scanned out, compared pixel
 * for pixel with what was drawn. No guest here: display-kms.test.ts adds one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { KmsDevice, KmsError, modeFor, type KmsDumbBuffer } from '../../lib/drm/kms.js';
import { loadVkms, unloadVkms } from './drm.js';

/** XRGB8888: the X byte is undefined by the format, so compare the colour bytes only. */
export function sameRgb(a: Uint8Array, b: Uint8Array, width: number, height: number, pitchA: number, pitchB: number): string | undefined {
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * pitchA + x * 4;
      const j = y * pitchB + x * 4;
      if (a[i] !== b[j] || a[i + 1] !== b[j + 1] || a[i + 2] !== b[j + 2]) {
        return `pixel (${x}, ${y}): ${[a[i + 2], a[i + 1], a[i]].join(',')} vs ${[b[j + 2], b[j + 1], b[j]].join(',')}`;
      }
    }
  }
  return undefined;
}

function draw(buf: KmsDumbBuffer, seed: number): Buffer {
  const { width, height, pitch } = buf.fb;
  const m = buf.dmabuf.map('write');
  try {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) m.buffer.writeUInt32LE((((x * 7 + y * 13 + seed * 101) * 2654435761) >>> 8) & 0xffffff, y * pitch + x * 4);
    }
    return m.toBuffer();
  } finally {
    m.closeSync();
  }
}

describe('KMS on vkms: modeset, flips, writeback', () => {
  beforeAll(async () => {
    await loadVkms();
  });

  afterAll(() => {
    // rmmod fails while anything (a file, a framebuffer, a buffer) still holds vkms
    expect(unloadVkms()).toBeUndefined();
  });

  it('finds the output, scans out what was drawn and captures it exactly', async () => {
    const kms = KmsDevice.open('vkms');
    try {
      expect(kms.writeback).toBe(true);
      expect(kms.outputs).toHaveLength(1);
      const out = kms.claimOutput()!;
      expect(out.name).toMatch(/^Virtual-/);
      expect(out.writebackId).toBeDefined();
      expect(kms.claimOutput()).toBeUndefined();

      const [w, h] = [640, 480];
      const a = await kms.createDumbBuffer(w, h);
      const b = await kms.createDumbBuffer(w, h);
      const cap = await kms.createDumbBuffer(w, h);
      const pa = draw(a, 1);
      const pb = draw(b, 2);
      await kms.modeset(out, modeFor(out.modes, w, h), a.fb, { capture: true });
      for (const [fb, pixels] of [[a, pa], [b, pb], [a, pa]] as const) {
        await kms.flip(out, fb.fb, { capture: cap.fb });
        const got = cap.dmabuf.map('read');
        try {
          expect(sameRgb(pixels, got.toBuffer(), w, h, fb.fb.pitch, cap.fb.pitch)).toBeUndefined();
        } finally {
          got.closeSync();
        }
      }
      // flips complete at the display's rate: 30 flips take about half a second at 60 Hz
      const t0 = performance.now();
      for (let i = 0; i < 30; i++) await kms.flip(out, (i & 1 ? a : b).fb);
      const ms = performance.now() - t0;
      console.log(`kms figures: ${JSON.stringify({ flips: 30, ms: +ms.toFixed(1), hz: +(30_000 / ms).toFixed(1) })}`);
      await kms.disable(out);
      kms.releaseOutput(out);
      for (const d of [a, b, cap]) {
        await d.fb.close();
        await d.dmabuf.close();
      }
    } finally {
      await kms.close();
    }
  }, 120_000);

  it('a second process-wide master is refused with a clear error, and close() gives the card back', async () => {
    const first = KmsDevice.open('vkms');
    let err: unknown;
    try {
      KmsDevice.open('vkms');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KmsError);
    expect((err as KmsError).code).toBe('ERR_XZC_NOT_MASTER');
    await first.close();
    const again = KmsDevice.open('vkms');
    await again.close();
  }, 60_000);

  it('close() turns lit outputs off and removes its framebuffers', async () => {
    const kms = KmsDevice.open('vkms');
    const out = kms.claimOutput()!;
    const a = await kms.createDumbBuffer(320, 240);
    await kms.modeset(out, modeFor(out.modes, 320, 240), a.fb);
    await kms.close();
    expect(a.fb.closed).toBe(true);
    await a.dmabuf.close();
  }, 60_000);
});
