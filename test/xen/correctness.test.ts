/**
 * Defects found in review of the module, each with the probe that shows it:
 * the GUP-based accesses to a PV user mapping (special PTEs), swiotlb bounces
 * of exported sg tables, the TO_REFS copy-out window a guest could map
 * through, and the module's lifetime rules (bind attributes, load-time
 * parameters, wait handles per file, one value per sysfs file).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { native } from '../../lib/binding.js';
import { findDrmNode, insmod, moduleLoaded, openDrm, rmmod, until, zcopyStats } from './drm.js';
import { pvDomain, xenEnv } from './env.js';
import { type DomU, GuestRequestError, sharedDomU, type SharedBuffer } from './fixture.js';

const b = native();
const PAGE = 4096;
const PROBE = process.env.XZC_PROBE_BIN ?? '';

/** The kernel log as lines; a probe's lines are those after its mark. */
const kernelLog = (): string[] => execFileSync('dmesg', { encoding: 'utf8' }).split('\n').filter(Boolean);
const BAD_LOG = /Bad page|BUG:|WARNING:|Oops|Call Trace|general protection|unmap of .* failed/;

const quiet = () => until(() => {
  const s = zcopyStats();
  return s.live_objects === 0 && s.mapped_foreign_pages === 0 && s.user_mapped_pages === 0 &&
    s.granted_pages === 0 && s.deferred_reclaims === 0;
}, 10_000);

describe('module correctness (review findings)', () => {
  let zc: number;
  let vgem: number;
  let guest: DomU;
  const shared = new Map<number, SharedBuffer>();

  beforeAll(async () => {
    expect(PROBE, 'the harness built zcopy-probe').not.toBe('');
    expect(moduleLoaded()).toBe(true);
    zc = openDrm('xen_drm_zcopy');
    vgem = openDrm('vgem');
    guest = await sharedDomU();
    for (const pages of [1, 16, 2025]) shared.set(pages, await guest.share({ pages, seed: 0x5eed0000 + pages }));
  });

  afterAll(async () => {
    for (const s of shared.values()) await guest.unshare(s.id);
    b.close(vgem);
    b.close(zc);
  });

  /** FROM_REFS of the shared `pages`-page buffer, exported: its dma-buf fd and an undo. */
  async function importShared(pages: number) {
    const r = await b.zcopyFromRefs(zc, guest.domid, shared.get(pages)!.refs, pages * 1024, 1, 32);
    const fd = b.drmPrimeHandleToFd(zc, r.handle);
    return {
      fd,
      async release() {
        b.close(fd);
        b.drmGemClose(zc, r.handle);
        await b.zcopyWaitFree(zc, r.waitHandle, 10_000);
      },
    };
  }

  // Finding 1: the PTEs Xen writes for a PV user mapping hold the guest's
  // machine frame; without the special bit and find_special_page every GUP
  // user logged "BUG: Bad page map" and failed.
  describe('get_user_pages on a PV dma-buf mapping', () => {
    /** zcopy-probe's `umap ACCESS PAGES` on a fresh import: it reads the guest's bytes, logs nothing, leaves no mapping. */
    async function probeUmap(access: string, pages: number): Promise<void> {
      const buf = await importShared(pages);
      const mark = kernelLog().length;
      let r;
      try {
        r = spawnSync(PROBE, ['umap', access, String(pages)], {
          stdio: ['ignore', 'pipe', 'pipe', buf.fd], encoding: 'utf8', timeout: 60_000,
        });
      } finally {
        await buf.release();
      }
      // checked per probe: the kernel rate-limits bad page reports
      expect(kernelLog().slice(mark).filter((l) => BAD_LOG.test(l))).toEqual([]);
      expect(`${r.stdout}${r.stderr}`.trim()).toBe(`ok ${pages * PAGE}`);
      expect(r.status).toBe(0);
      expect(zcopyStats().user_mapped_pages).toBe(0);
    }

    for (const pages of [1, 16, 2025]) {
      for (const access of ['procvm', 'odirect', 'vmsplice', 'procmem']) {
        it(`${access} over ${pages} page(s) reads the guest's bytes and logs nothing`, () => probeUmap(access, pages));
      }
      // the MMU notifier on part of a PV mapping: its grants are unmapped in
      // batches of 512, the rest of the mapping is untouched (auto-translated
      // domains map pages, not grants: no counter to check)
      if (pvDomain()) {
        it(`MADV_DONTNEED of the middle of a ${pages}-page mapping unmaps exactly its grants; the rest still reads`,
          () => probeUmap('zap', pages));
      }
    }
  });

  // Finding 2: merged sg segments of guest frames are not machine-contiguous;
  // swiotlb-xen bounced them when vgem DMA-mapped its PRIME import.
  it('vgem imports of a guest 1080p buffer bounce nothing through swiotlb (4 rounds)', async () => {
    const usedPath = '/sys/kernel/debug/swiotlb/io_tlb_used';
    expect(existsSync(usedPath), 'swiotlb debugfs').toBe(true);
    const used = () => Number(readFileSync(usedPath, 'utf8').trim());
    const rounds: { held: number; after: number }[] = [];
    for (let round = 0; round < 4; round++) {
      const before = used();
      const buf = await importShared(2025);
      const vh = b.drmPrimeFdToHandle(vgem, buf.fd); // vgem DMA-maps the attachment here
      const held = used() - before;
      b.drmGemClose(vgem, vh);
      await buf.release();
      rounds.push({ held, after: used() - before });
    }
    console.log(`swiotlb slabs in use per round (held, after): ${JSON.stringify(rounds)}`);
    expect(rounds).toEqual(rounds.map(() => ({ held: 0, after: 0 })));
  });

  // Finding 3: TO_REFS granted first and copied the refs out after; when the
  // copy failed, a guest could already map them (refs are guessable).
  it('TO_REFS: a guest maps nothing during a copy-out that fails, and nothing is left', async () => {
    const pages = 4;
    const child = spawn(PROBE, ['torefs', findDrmNode('xen_drm_zcopy')!, findDrmNode('vgem')!, String(guest.domid), String(pages)],
      { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async () => {
      const r = await Promise.race([lines.next(), new Promise<never>((_, rej) => setTimeout(() => rej(new Error('probe silent for 30 s')), 30_000))]);
      return r.done ? '' : r.value;
    };
    try {
      const granted = await next();
      expect(granted).toMatch(/^granted( \d+){4}$/);
      const refs = granted.split(' ').slice(1).map(Number);
      // positive control: while granted, the guest maps each ref
      for (const ref of refs) await guest.unmap(await guest.mapHold(Uint32Array.of(ref)));
      child.stdin.write('next\n');
      // the next TO_REFS reserves the same refs (the free list is LIFO)
      expect(await next()).toBe('window');
      const held: number[] = [];
      for (const ref of refs) {
        try {
          held.push(await guest.mapHold(Uint32Array.of(ref)));
        } catch (e) {
          if (!(e instanceof GuestRequestError)) throw e;
        }
      }
      child.stdin.write('go\n');
      expect(await next()).toBe('result EFAULT');
      for (const id of held) await guest.unmap(id);
      expect(held, 'refs a guest mapped during the failed copy-out').toEqual([]);
      expect(await next()).toBe('retry ok');
      expect(await exited).toBe(0);
    } finally {
      child.kill();
    }
    expect(await quiet()).toBe(true);
  });

  describe('lifetime and parameters', () => {
    const kmod = () => xenEnv().kmod;
    /** rmmod + insmod with params; zc is open again afterwards whatever happens. */
    const reload = (params: string[] = []) => {
      b.close(zc);
      try {
        expect(rmmod()).toBeUndefined();
        insmod(kmod(), params);
      } finally {
        if (!moduleLoaded()) insmod(kmod());
        zc = openDrm('xen_drm_zcopy');
      }
    };

    it('has no sysfs bind/unbind (no unbind while files are open)', () => {
      expect(existsSync('/sys/bus/platform/drivers/xen_drm_zcopy')).toBe(true);
      expect(existsSync('/sys/bus/platform/drivers/xen_drm_zcopy/unbind')).toBe(false);
      expect(existsSync('/sys/bus/platform/drivers/xen_drm_zcopy/bind')).toBe(false);
    });

    it('parameters are load-time only and bounded', () => {
      for (const p of ['max_pages', 'max_wait_handles', 'contiguous', 'autotranslated_unvalidated']) {
        const path = `/sys/module/xen_drm_zcopy/parameters/${p}`;
        expect(statSync(path).mode & 0o222, p).toBe(0);
        expect(() => writeFileSync(path, '1'), p).toThrow();
      }
      reload(['max_pages=1048576']);
      expect(readFileSync('/sys/module/xen_drm_zcopy/parameters/max_pages', 'utf8').trim()).toBe('1048576');
      b.close(zc);
      try {
        expect(rmmod()).toBeUndefined();
        for (const bad of ['max_pages=0', 'max_pages=1048577', 'max_wait_handles=0']) {
          expect(() => insmod(kmod(), [bad]), bad).toThrow();
          expect(moduleLoaded(), bad).toBe(false);
        }
      } finally {
        if (!moduleLoaded()) insmod(kmod());
        zc = openDrm('xen_drm_zcopy');
      }
    });

    it('caps wait handles per file (EMFILE) and a consumed handle frees its slot', async () => {
      reload(['max_wait_handles=4']);
      try {
        const refs = shared.get(1)!.refs;
        const bufs = [];
        for (let i = 0; i < 4; i++) bufs.push(await b.zcopyFromRefs(zc, guest.domid, refs, 1024, 1, 32));
        await expect(b.zcopyFromRefs(zc, guest.domid, refs, 1024, 1, 32)).rejects.toMatchObject({ code: 'EMFILE' });
        // another file has its own allowance
        const other = openDrm('xen_drm_zcopy');
        const o = await b.zcopyFromRefs(other, guest.domid, refs, 1024, 1, 32);
        b.drmGemClose(other, o.handle);
        b.close(other);
        // freed but not waited for: the handle still counts
        b.drmGemClose(zc, bufs[0]!.handle);
        await expect(b.zcopyFromRefs(zc, guest.domid, refs, 1024, 1, 32)).rejects.toMatchObject({ code: 'EMFILE' });
        await b.zcopyWaitFree(zc, bufs[0]!.waitHandle, 5000);
        bufs[0] = await b.zcopyFromRefs(zc, guest.domid, refs, 1024, 1, 32);
        for (const x of bufs) {
          b.drmGemClose(zc, x.handle);
          await b.zcopyWaitFree(zc, x.waitHandle, 5000);
        }
      } finally {
        reload();
      }
      expect(await quiet()).toBe(true);
    });

    it('counters: one value per sysfs file, and a debugfs file under the DRM minor', () => {
      const dir = '/sys/devices/platform/xen_drm_zcopy.0/stats';
      expect(readdirSync(dir).sort()).toEqual(['deferred_reclaims', 'deferred_reclaims_total', 'granted_pages',
        'live_objects', 'mapped_foreign_pages', 'user_mapped_pages', 'vmapped_pages', 'wait_fds', 'waiters']);
      for (const f of readdirSync(dir)) expect(readFileSync(`${dir}/${f}`, 'utf8')).toMatch(/^\d+\n$/);
      const dri = '/sys/kernel/debug/dri';
      // 6.12 names the directory after the minor and the device (one a link to the other)
      const found = new Set(readdirSync(dri).filter((d) => existsSync(`${dri}/${d}/xen_zcopy_stats`))
        .map((d) => realpathSync(`${dri}/${d}/xen_zcopy_stats`)));
      expect(found.size).toBe(1);
      expect(readFileSync([...found][0]!, 'utf8')).toMatch(/^live_objects \d+\n/);
    });
  });
});
