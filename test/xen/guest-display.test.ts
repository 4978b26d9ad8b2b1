/**
 * The guest side of the PV display (displif) harness: a DomU started with a
 * vdispl device, its xenstore nodes, drm_xen_front loaded on request and its
 * handshake up to Connected, the guest DRM app's ops as far as they go without
 * a real backend, and the frame image the guest draws. The test plays the
 * backend's xenstore part only (states 2, 4 and 6): it maps no rings.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import { DomU, domainExists, GuestRequestError, guestFrameImage, sharedDomU } from './fixture.js';
import { Xenstore, XenstoreError } from '../../lib/xen/xenstore.js';

const VDISPL_ROOT = '/local/domain/0/backend/vdispl';
const VDISPL = 'backend=0,be-alloc=0,connectors=id0:1024x768';

/**
 * The xenstore half of a display backend, enough for libxl and the frontend's
 * handshake: every device that appears under VDISPL_ROOT in state 1 goes to 2
 * (InitWait), one in state 5 (Closing, written by xl destroy) to 6 (Closed).
 * Polls every 50 ms: libxl waits 10 s for InitWait.
 */
class XenstoreOnlyBackend {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private readonly seen = new Map<string, string>();
  /** "<ms> <domid>/<dev> state|online <value>" for every change seen, for diagnostics. */
  readonly log: string[] = [];
  private readonly t0 = Date.now();

  private constructor(private readonly xs: Xenstore) {}

  static async start(): Promise<XenstoreOnlyBackend> {
    const be = new XenstoreOnlyBackend(await Xenstore.connect());
    be.timer = setInterval(() => void be.scan(), 50);
    return be;
  }

  private async scan(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (const domid of await this.list(VDISPL_ROOT)) {
        for (const dev of await this.list(`${VDISPL_ROOT}/${domid}`)) {
          const state = `${VDISPL_ROOT}/${domid}/${dev}/state`;
          const v = await this.xs.tryRead(state);
          this.note(`${domid}/${dev} state`, v);
          this.note(`${domid}/${dev} online`, await this.xs.tryRead(`${VDISPL_ROOT}/${domid}/${dev}/online`));
          if (v === '1') await this.xs.write(state, '2');
          else if (v === '5') await this.xs.write(state, '6');
        }
      }
    } catch {
      // a device vanishing mid-scan: the next scan sees the new layout
    } finally {
      this.busy = false;
    }
  }

  private note(key: string, value: string | undefined): void {
    if (this.seen.get(key) === value) return;
    this.seen.set(key, value ?? '(none)');
    this.log.push(`${Date.now() - this.t0} ${key} ${value ?? '(none)'}`);
  }

  private async list(path: string): Promise<string[]> {
    try {
      return await this.xs.directory(path);
    } catch (e) {
      if (e instanceof XenstoreError && e.code === 'ENOENT') return [];
      throw e;
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.xs.close();
  }
}

async function exists(xs: Xenstore, path: string): Promise<boolean> {
  try {
    await xs.directory(path);
    return true;
  } catch (e) {
    if (e instanceof XenstoreError && e.code === 'ENOENT') return false;
    throw e;
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('guest frame image', () => {
  it('what the guest draws (xzc-guest frame) is guestFrameImage(), pitch padding and pattern kind included', () => {
    const bin = process.env.XZC_GUEST_BIN;
    expect(bin, 'harness exports XZC_GUEST_BIN').toBeTruthy();
    const cases = [
      { width: 64, height: 48, pitch: 256, frame: 0, domid: 3, kind: 'demo' as const },
      { width: 320, height: 180, pitch: 1408, frame: 7, domid: 12, kind: 'demo' as const },
      { width: 1024, height: 768, pitch: 4096, frame: 123456, domid: 5, kind: 'demo' as const },
      { width: 33, height: 17, pitch: 136, frame: 42, domid: 1, kind: 'pattern' as const },
    ];
    for (const c of cases) {
      const out = spawnSync(bin!, ['frame', String(c.width), String(c.height), String(c.pitch), String(c.frame), c.kind === 'demo' ? '0' : '1', String(c.domid)], { maxBuffer: 1 << 23 });
      expect(out.status, JSON.stringify(c)).toBe(0);
      expect(out.stdout.equals(guestFrameImage(c)), JSON.stringify(c)).toBe(true);
    }
    // frames differ from each other
    const a = guestFrameImage({ width: 64, height: 48, frame: 1, domid: 3 });
    expect(a.equals(guestFrameImage({ width: 64, height: 48, frame: 2, domid: 3 }))).toBe(false);
  });
});

describe('guest display', () => {
  it('the DRM ops of a guest without a display say so', async () => {
    const guest = await sharedDomU();
    expect(await guest.displayStatus()).toEqual({ card0: false, insmod: 'none' });
    const open = await guest.drmOpen(0).catch((e: unknown) => e);
    expect(open).toBeInstanceOf(GuestRequestError);
    expect((open as GuestRequestError).what).toBe('open');
    expect((open as GuestRequestError).errno).toBe(2);
    const buf = await guest.drmCreateBuffer(64, 64).catch((e: unknown) => e);
    expect((buf as GuestRequestError).what).toBe('not-open');
    await guest.drmClose();
  });

  it('a vdispl guest: xenstore nodes, drm_xen_front handshake to Connected, card0, and clean teardown', { timeout: 300_000 }, async () => {
    const xs = await Xenstore.connect();
    const be = await XenstoreOnlyBackend.start();
    let guest: DomU | undefined;
    try {
      const t0 = Date.now();
      guest = await DomU.start({ name: `xzc-vdispl-${process.pid}`, vdispl: VDISPL });
      const domid = guest.domid;
      console.log(`vdispl guest ${domid} serving after ${Date.now() - t0} ms`);

      // libxl's nodes
      const devs = await xs.directory(`${VDISPL_ROOT}/${domid}`);
      expect(devs).toEqual(['0']);
      const bePath = `${VDISPL_ROOT}/${domid}/0`;
      const fePath = `/local/domain/${domid}/device/vdispl/0`;
      expect(await xs.read(`${bePath}/frontend`)).toBe(fePath);
      expect(await xs.read(`${bePath}/frontend-id`)).toBe(String(domid));
      expect(await xs.read(`${bePath}/online`)).toBe('1');
      expect(await xs.read(`${bePath}/state`)).toBe('2');
      expect(await xs.read(`${fePath}/backend`)).toBe(bePath);
      expect(await xs.read(`${fePath}/backend-id`)).toBe('0');
      expect(await xs.read(`${fePath}/be-alloc`)).toBe('0');
      expect(await xs.read(`${fePath}/0/resolution`)).toBe('1024x768');
      expect(await xs.read(`${fePath}/state`)).toBe('1');

      // the frontend, loaded on request, publishes its rings and goes to Initialised
      expect(await guest.loadFront()).toBeGreaterThan(1);
      expect((await guest.displayStatus()).card0).toBe(false);
      const t1 = Date.now();
      await xs.waitFor(`${fePath}/state`, (v) => v === '3', 30_000);
      console.log(`frontend Initialised ${Date.now() - t1} ms after loadfront`);
      for (const key of ['req-ring-ref', 'req-event-channel', 'evt-ring-ref', 'evt-event-channel']) {
        expect(await xs.read(`${fePath}/0/${key}`), key).toMatch(/^[1-9]\d*$/);
      }
      expect((await guest.displayStatus()).insmod).toBe('running');

      // backend Connected: the frontend registers card0, goes to 4 and insmod returns
      await xs.write(`${bePath}/state`, '4');
      await xs.waitFor(`${fePath}/state`, (v) => v === '4', 30_000);
      const st = await until('insmod to finish', async () => {
        const s = await guest!.displayStatus();
        return s.insmod === 'running' ? undefined : s;
      }, 40_000);
      expect(st).toEqual({ card0: true, insmod: 'exit:0' });
      await guest.waitDisplay(1000);

      // the guest DRM app: KMS objects come from the frontend alone
      await expect(guest.drmOpen(5)).rejects.toMatchObject({ what: 'connector', errno: 2 });
      const disp = await guest.drmOpen(0);
      console.log(`dopen: ${JSON.stringify(disp)}`);
      expect(disp).toMatchObject({ width: 1024, height: 768, connection: 1 });
      expect(disp.connectorId).toBeGreaterThan(0);
      expect(disp.crtcId).toBeGreaterThan(0);
      await expect(guest.drmOpen(0)).rejects.toMatchObject({ what: 'already-open' });
      // ... a dumb buffer needs the backend's answer to DBUF_CREATE: none comes
      const t2 = Date.now();
      const err = await guest.drmCreateBuffer(64, 64).catch((e: unknown) => e);
      console.log(`dbuf without a backend: ${(err as Error).message} after ${Date.now() - t2} ms`);
      expect(err).toBeInstanceOf(GuestRequestError);
      expect((err as GuestRequestError).what).toBe('CREATE_DUMB');
      expect((err as GuestRequestError).errno).toBeGreaterThan(0);
      await expect(guest.drmAddFb(1)).rejects.toMatchObject({ what: 'no-buffer', errno: 2 });
      await expect(guest.drmDraw(1, 0)).rejects.toMatchObject({ what: 'no-buffer' });
      await guest.drmClose();
      await guest.ping();

      // teardown: xl destroy removes both sides
      const t3 = Date.now();
      await guest.destroy();
      guest = undefined;
      console.log(`xl destroy took ${Date.now() - t3} ms (started at ${t3 - t0} ms); backend nodes seen:\n${be.log.join('\n')}`);
      expect(await domainExists(`xzc-vdispl-${process.pid}`)).toBe(false);
      expect(await exists(xs, `${VDISPL_ROOT}/${domid}`)).toBe(false);
      expect(await exists(xs, `/local/domain/${domid}`)).toBe(false);
    } finally {
      await guest?.destroy().catch(() => undefined);
      be.stop();
      xs.close();
    }
  });
});
