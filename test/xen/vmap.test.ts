/**
 * Kernel vmap of FROM_REFS buffers, through a real KMS importer: vkms
 * composes on the CPU, so it vmaps every framebuffer (the shmem helper's vmap
 * of an imported buffer is dma_buf_vmap of our dma-buf). A real guest's
 * buffer is scanned out on vkms's CRTC and captured by its writeback
 * connector (test/xen/probes/zcopy-probe.c `scanout`); the capture must equal
 * the guest's pattern. In a PV Dom0 a plain vmap() of grant-mapped pages
 * maps nothing (see pv-dom0-notes.md), so this needs real guest grants, not
 * self-grants.
 */
import { type ChildProcessByStdio, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { native } from '../../lib/binding.js';
import { loadVkms, moduleLoaded, openDrm, unloadVkms, until, zcopyStats } from './drm.js';
import { domainExists, DomU, sharedDomU } from './fixture.js';

const b = native();
const PAGE = 4096;
const PROBE = process.env.XZC_PROBE_BIN ?? '';

const kernelLog = (): string[] => execFileSync('dmesg', { encoding: 'utf8' }).split('\n').filter(Boolean);
const BAD_LOG = /Bad page|BUG:|WARNING:|Oops|Call Trace|general protection|leaking|unmap of .* failed/;

/** Every counter of the module back to 0 (vmapped pages included). */
const quiet = () => until(() => {
  const s = zcopyStats();
  return s.live_objects === 0 && s.mapped_foreign_pages === 0 && s.user_mapped_pages === 0 &&
    s.vmapped_pages === 0 && s.granted_pages === 0 && s.deferred_reclaims === 0;
}, 10_000);

describe('vmap of guest buffers: scan-out on vkms', () => {
  let zc: number;
  let guest: DomU;
  let vkms: string;

  beforeAll(async () => {
    expect(PROBE, 'the harness built zcopy-probe').not.toBe('');
    expect(moduleLoaded()).toBe(true);
    zc = openDrm('xen_drm_zcopy');
    guest = await sharedDomU();
    vkms = await loadVkms();
  });

  afterAll(() => {
    b.close(zc);
    // nothing may still hold vkms: no framebuffer, no import, no open file
    expect(unloadVkms()).toBeUndefined();
  });

  /** A guest buffer of width x height XRGB8888 holding pattern(seed), exported as a dma-buf. */
  async function guestBuffer(g: DomU, width: number, height: number, seed: number) {
    const pages = Math.ceil((width * height * 4) / PAGE);
    const shared = await g.share({ pages, seed });
    const r = await b.zcopyFromRefs(zc, g.domid, shared.refs, width, height, 32);
    const fd = b.drmPrimeHandleToFd(zc, r.handle);
    return {
      fd,
      pages,
      /** Closes the dma-buf and the handle and waits for the free; `unshare` when the guest lives. */
      async release(unshare = true) {
        b.close(fd);
        b.drmGemClose(zc, r.handle);
        await b.zcopyWaitFree(zc, r.waitHandle, 10_000);
        if (unshare) await g.unshare(shared.id);
      },
    };
  }

  /** The scanout probe with `hold`: its output lines, a way to go on, its exit. */
  function holdProbe(fd: number, width: number, height: number, seed: number) {
    const child = spawn(PROBE, ['scanout', vkms, String(width), String(height), String(seed), 'hold'],
      { stdio: ['pipe', 'pipe', 'inherit', fd] }) as ChildProcessByStdio<Writable, Readable, null>;
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async () => {
      const r = await Promise.race([lines.next(), new Promise<never>((_, rej) => setTimeout(() => rej(new Error('probe silent for 60 s')), 60_000))]);
      return r.done ? '' : r.value;
    };
    return { child, exited, next, go: () => child.stdin.write('go\n') };
  }

  // (a) vkms composes a real guest buffer; its writeback equals the guest's pixels.
  for (const [width, height] of [[640, 480], [1920, 1080]] as const) {
    it(`vkms scans out a ${width}x${height} guest buffer: the writeback capture equals the guest's pixels`, async () => {
      const seed = 0x7a000000 + width;
      const buf = await guestBuffer(guest, width, height, seed);
      const mark = kernelLog().length;
      let r;
      try {
        r = spawnSync(PROBE, ['scanout', vkms, String(width), String(height), String(seed)], {
          stdio: ['ignore', 'pipe', 'pipe', buf.fd], encoding: 'utf8', timeout: 90_000,
        });
      } finally {
        await buf.release();
      }
      expect(`${r.stdout}${r.stderr}`.trim()).toBe(`ok ${width * height * 4}\ndone`);
      expect(r.status).toBe(0);
      expect(kernelLog().slice(mark).filter((l) => BAD_LOG.test(l))).toEqual([]);
      expect(await quiet()).toBe(true);
    });
  }

  // (b) the kernel mapping is made once and lives as long as the object (a
  // CPU scan-out engine vmaps on every flip; the mapping outlives its vunmaps).
  it('vmapped_pages counts the buffer from its first scan-out until the buffer is freed', async () => {
    const [width, height, seed] = [640, 480, 0x7b000001];
    const buf = await guestBuffer(guest, width, height, seed);
    expect(zcopyStats().vmapped_pages).toBe(0);
    const p = holdProbe(buf.fd, width, height, seed);
    try {
      expect(await p.next()).toBe(`ok ${width * height * 4}`);
      expect(await p.next()).toBe('scanout');
      // one mapping of the whole object, however many vmaps vkms nests
      expect(zcopyStats().vmapped_pages).toBe(buf.pages);
      p.go();
      expect(await p.next()).toBe(`again ok ${width * height * 4}`);
      expect(await p.next()).toBe('done');
      expect(await p.exited).toBe(0);
      // the plane let go of the framebuffer and vkms of its import: the mapping stays with the object
      expect(zcopyStats().vmapped_pages).toBe(buf.pages);
    } finally {
      p.child.kill();
      await buf.release();
    }
    // freeing the object unmapped it
    expect(await quiet()).toBe(true);
  });

  // (c) the guest goes away while its buffer is on screen.
  it('a guest destroyed while its buffer is scanned out: nothing breaks, everything is torn down', async () => {
    const [width, height, seed] = [1920, 1080, 0x7c000002];
    const own = await DomU.start({ name: `xzc-vmap-${process.pid}` });
    const mark = kernelLog().length;
    let buf: Awaited<ReturnType<typeof guestBuffer>> | undefined;
    let p: ReturnType<typeof holdProbe> | undefined;
    try {
      buf = await guestBuffer(own, width, height, seed);
      p = holdProbe(buf.fd, width, height, seed);
      expect(await p.next()).toBe(`ok ${width * height * 4}`);
      expect(await p.next()).toBe('scanout');
      expect(zcopyStats().vmapped_pages).toBe(buf.pages);
      await own.destroy();
      // Xen keeps the dead guest's granted frames while Dom0 maps them: the
      // scan-out goes on showing the same pixels
      p.go();
      expect(await p.next()).toBe(`again ok ${width * height * 4}`);
      expect(await p.next()).toBe('done');
      expect(await p.exited).toBe(0);
      expect(zcopyStats().vmapped_pages).toBe(buf.pages);
      await buf.release(false);
      buf = undefined;
    } finally {
      p?.child.kill();
      await buf?.release(false);
      if (await domainExists(own.name)) await own.destroy();
    }
    expect(await quiet()).toBe(true);
    // the dying guest is gone once its last frames are released
    expect(await until(() => !execFileSync('xl', ['list'], { encoding: 'utf8' }).includes('(null)'), 20_000)).toBe(true);
    expect(kernelLog().slice(mark).filter((l) => BAD_LOG.test(l))).toEqual([]);
    // and vkms holds nothing: it unloads (afterAll checks it again)
    expect(unloadVkms()).toBeUndefined();
    vkms = await loadVkms();
  });
});
