/**
 * The display backend with its real peer: Linux's drm_xen_front in a DomU,
 * driven by a guest app (raw KMS ioctls in xzc-guest) that creates dumb
 * buffers, sets a mode and page-flips frames it draws. Dom0 checks every
 * flipped frame's pixels through the zero-copy import.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type BackendEvent, DisplayBackend } from '../../lib/displif/backend.js';
import { DisplOp, XenbusState } from '../../lib/displif/protocol.js';
import { ImportSink } from '../../lib/displif/sink.js';
import { until, zcopyStats } from './drm.js';
import { xenEnv } from './env.js';
import { DomU, guestFrameImage } from './fixture.js';

const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');

interface Shown {
  domid: number;
  conn: number;
  cookie: bigint;
  hash: string;
}

const quiet = () => until(() => {
  const s = zcopyStats();
  return s.live_objects === 0 && s.mapped_foreign_pages === 0 && s.user_mapped_pages === 0;
}, 15_000);

describe('display backend with the real drm_xen_front', () => {
  let backend: DisplayBackend | undefined;
  const shown: Shown[] = [];
  const events: BackendEvent[] = [];
  let hashing = true;
  const figures: Record<string, unknown> = {};

  const startBackend = async () => {
    backend = await DisplayBackend.start({
      sink: () => new ImportSink({
        refreshHz: 60,
        onFrame: hashing
          ? (f) => {
            const copy = Buffer.alloc(f.fb.buffer.pitch * f.fb.height); // the test's copy: the sink hands out the guest's pages
            f.pixels.copy(copy, 0, 0, copy.length);
            shown.push({ domid: f.conn.domid, conn: f.conn.index, cookie: f.fb.cookie, hash: sha1(copy) });
          }
          : undefined,
      }),
      onEvent: (e) => events.push(e),
    });
  };

  beforeAll(startBackend);

  afterAll(async () => {
    await backend?.close();
    console.log(`display figures: ${JSON.stringify(figures)}`);
  });

  const creates = (domid: number) => events.filter((e) => e.type === 'request' && e.domid === domid && e.op === DisplOp.DBUF_CREATE && e.status === 0).length;
  const errors = (domid: number) => events.filter((e) => e.type === 'error' && e.domid === domid);

  it('connects a guest, flips 60 frames whose pixels Dom0 checks, proves zero copy, and releases everything', async () => {
    const guest = await DomU.start({ name: `xzc-displ-${process.pid}`, vdispl: 'backend=0,be-alloc=0,connectors=id0:640x480' });
    const key = `${guest.domid}/0`;
    try {
      expect(backend!.devices.get(key)?.state).toBe(XenbusState.InitWait);
      await guest.loadFront();
      await guest.waitDisplay();
      expect(backend!.devices.get(key)?.state).toBe(XenbusState.Connected);
      expect(await guest.drmOpen(0)).toMatchObject({ width: 640, height: 480 });

      const from = shown.length;
      const loop = await guest.drmLoop(60);
      expect(loop.flips).toBe(60);
      const mine = shown.slice(from).filter((f) => f.domid === guest.domid);
      expect(mine).toHaveLength(60);
      for (let k = 0; k < 60; k++) {
        expect(mine[k]!.hash, `frame ${k}`).toBe(sha1(guestFrameImage({ width: 640, height: 480, frame: k, domid: guest.domid })));
      }
      figures.fps60 = +(60_000 / loop.ms).toFixed(1);

      // zero copy: the guest redraws a buffer Dom0 imported long ago; the next
      // flip shows the new pixels and no buffer was created again
      const before = creates(guest.domid);
      await guest.drmDraw(loop.buffers[0], 1000);
      await guest.drmFlip(loop.fbs[0]);
      expect(shown.at(-1)!.hash).toBe(sha1(guestFrameImage({ width: 640, height: 480, frame: 1000, domid: guest.domid })));
      expect(creates(guest.domid)).toBe(before);

      // backend CPU per frame without the test's own hashing
      hashing = false;
      try {
        await backend!.close();
        await startBackendKeeping(guest);
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        const fast = await guest.drmLoop(120);
        const cpu = process.cpuUsage(cpu0);
        figures.fps = +(120_000 / fast.ms).toFixed(1);
        figures.wallMsPerFrame = +((performance.now() - t0) / 120).toFixed(2);
        figures.backendCpuMsPerFrame = +((cpu.user + cpu.system) / 1000 / 120).toFixed(3);
      } finally {
        hashing = true;
      }

      await guest.drmClose();
      expect(await until(() => backend!.devices.get(key)?.bufferCount === 0, 10_000)).toBe(true);
      expect(errors(guest.domid)).toEqual([]);
    } finally {
      await guest.destroy();
    }
    expect(await until(() => !backend!.devices.has(key), 15_000)).toBe(true);
    expect(await quiet()).toBe(true);
  }, 600_000);

  /**
   * Restarts the in-process backend while `guest` is connected: the frontend
   * disconnects, releases its card (the app closes it) and reconnects.
   */
  async function startBackendKeeping(guest: DomU): Promise<void> {
    await guest.drmClose();
    await startBackend();
    expect(await until(() => backend!.devices.get(`${guest.domid}/0`)?.state === XenbusState.Connected, 60_000)).toBe(true);
    await cardBack(guest);
    await guest.drmOpen(0);
  }

  /**
   * The frontend re-registers /dev/dri/card0 after a reconnect (its insmod
   * ended long ago, so waitDisplay() does not apply): poll for the card.
   */
  async function cardBack(guest: DomU, timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!(await guest.displayStatus()).card0) {
      if (Date.now() > end) throw new Error(`no /dev/dri/card0 in domain ${guest.domid} ${timeoutMs} ms after the backend reconnected`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it('serves two connectors of one guest and a second guest at once', async () => {
    const a = await DomU.start({ name: `xzc-displ-a-${process.pid}`, vdispl: 'backend=0,be-alloc=0,connectors=id0:320x240;id1:160x120' });
    const b = await DomU.start({ name: `xzc-displ-b-${process.pid}`, vdispl: 'backend=0,be-alloc=0,connectors=id0:256x192' });
    try {
      await Promise.all([a.loadFront(), b.loadFront()]);
      await Promise.all([a.waitDisplay(), b.waitDisplay()]);
      // connector 1 of guest a, and guest b, flipping at the same time
      expect(await a.drmOpen(1)).toMatchObject({ width: 160, height: 120 });
      expect(await b.drmOpen(0)).toMatchObject({ width: 256, height: 192 });
      const from = shown.length;
      const [la, lb] = await Promise.all([a.drmLoop(10), b.drmLoop(10)]);
      expect([la.flips, lb.flips]).toEqual([10, 10]);
      const sa = shown.slice(from).filter((f) => f.domid === a.domid);
      const sb = shown.slice(from).filter((f) => f.domid === b.domid);
      expect(sa.map((f) => f.conn)).toEqual(Array(10).fill(1));
      sa.forEach((f, k) => expect(f.hash).toBe(sha1(guestFrameImage({ width: 160, height: 120, frame: k, domid: a.domid }))));
      sb.forEach((f, k) => expect(f.hash).toBe(sha1(guestFrameImage({ width: 256, height: 192, frame: k, domid: b.domid }))));
      expect(sb).toHaveLength(10);
      await Promise.all([a.drmClose(), b.drmClose()]);
    } finally {
      await Promise.all([a.destroy(), b.destroy()]);
    }
    expect(await until(() => backend!.devices.size === 0, 15_000)).toBe(true);
    expect(await quiet()).toBe(true);
  }, 600_000);

  it('releases everything when the guest is destroyed mid-flip', async () => {
    const guest = await DomU.start({ name: `xzc-displ-d-${process.pid}`, vdispl: 'backend=0,be-alloc=0,connectors=id0:640x480' });
    const key = `${guest.domid}/0`;
    await guest.loadFront();
    await guest.waitDisplay();
    await guest.drmOpen(0);
    const from = shown.length;
    const looping = guest.drmLoop(100000).catch(() => undefined);
    expect(await until(() => shown.length - from >= 5, 60_000)).toBe(true);
    expect(zcopyStats().live_objects).toBeGreaterThan(0);
    await guest.destroy();
    await looping;
    expect(await until(() => !backend!.devices.has(key), 15_000)).toBe(true);
    expect(await quiet()).toBe(true);
  }, 300_000);

  it('a backend killed under a connected guest: nothing leaks, and a new backend reconnects it', async () => {
    await backend!.close();
    backend = undefined;
    const children: ChildProcess[] = [];
    let guest: DomU | undefined;
    try {
      const first = await startChild();
      children.push(first.child);
      guest = await DomU.start({ name: `xzc-displ-r-${process.pid}`, vdispl: 'backend=0,be-alloc=0,connectors=id0:320x240' });
      await guest.loadFront();
      await guest.waitDisplay();
      await guest.drmOpen(0);
      expect((await guest.drmLoop(5)).flips).toBe(5);
      expect(zcopyStats().live_objects).toBeGreaterThan(0);

      const exited = new Promise((r) => first.child.once('exit', r));
      first.child.kill('SIGKILL');
      await exited;
      // the kernel took back everything the killed process held
      expect(await quiet()).toBe(true);
      await guest.drmClose(); // the app gives up its card

      const second = await startChild();
      children.push(second.child);
      const connected = (l: string) => l.includes(`"domid":${guest!.domid}`) && l.includes('"state":"Connected"');
      expect(await until(() => second.lines.some(connected), 60_000)).toBe(true);
      await cardBack(guest);
      await guest.drmOpen(0);
      expect((await guest.drmLoop(5)).flips).toBe(5);
      await guest.drmClose();

      const done = new Promise<number | null>((r) => second.child.once('exit', r));
      second.child.kill('SIGTERM');
      expect(await done).toBe(0);
      expect(second.lines.some((l) => l.includes('"stopped"'))).toBe(true);
    } finally {
      for (const c of children) c.kill('SIGKILL');
      await guest?.destroy();
      await startBackend();
    }
    expect(await quiet()).toBe(true);
  }, 600_000);
});

/** `xen-zcopy display-backend --json` as a child process; resolves once it is ready. */
export async function startChild(): Promise<{ child: ChildProcess; lines: string[] }> {
  const child = spawn(process.execPath, ['dist/cli.js', 'display-backend', '--json', '--verbose'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, XZC_MODE: xenEnv().mode } });
  const lines: string[] = [];
  const rl = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    rl.on('line', (l) => {
      lines.push(l);
      if (l.includes('"ready"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`display-backend exited with ${code}`)));
  });
  return { child, lines };
}
