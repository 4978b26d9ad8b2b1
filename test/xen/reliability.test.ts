/**
 * Faults, concurrency, soak, fuzz and access control against the real module.
 * Sizes: XZC_SOAK_CYCLES (default 10000) and XZC_FUZZ_CALLS (default 20000);
 * XZC_FUZZ_SEED picks the fuzzer's seed (a fixed one runs too).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { native } from '../../lib/binding.js';
import { DrmDevice, ZeroCopyDevice } from '../../lib/index.js';
import { findDrmNode, insmod, openDrm, rmmod, until, zcopyStats } from './drm.js';
import { xenEnv } from './env.js';
import { DomU, type DomU as DomUType, sharedDomU, type SharedBuffer } from './fixture.js';

const b = native();
const SOAK = Number(process.env.XZC_SOAK_CYCLES ?? 10_000);
const FUZZ = Number(process.env.XZC_FUZZ_CALLS ?? 20_000);

function meminfo(): { memFreeKb: number; slabKb: number } {
  const m = readFileSync('/proc/meminfo', 'utf8');
  const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(m)![1]);
  return { memFreeKb: get('MemFree'), slabKb: get('Slab') };
}

const idle = () => until(() => {
  const s = zcopyStats();
  return s.live_objects === 0 && s.mapped_foreign_pages === 0 && s.user_mapped_pages === 0 && s.waiters === 0;
}, 10_000);

describe('reliability', () => {
  let guest: DomUType;
  let buf: SharedBuffer;

  beforeAll(async () => {
    guest = await sharedDomU();
    buf = await guest.share({ pages: 2025, seed: 7 });
  });

  afterAll(async () => {
    await guest.unshare(buf.id);
    writeFileSync(join(xenEnv().out, 'reliability.json'), JSON.stringify(figures, null, 2));
    console.log(`reliability figures: ${JSON.stringify(figures)}`);
  });

  const figures: Record<string, unknown> = {};

  it('survives SIGKILL of a process holding buffers, mappings and a pending wait', async () => {
    const script = `
      import { native } from '${process.cwd()}/lib/binding.ts';
      import { openDrm } from '${process.cwd()}/test/xen/drm.ts';
      const b = native();
      const zc = openDrm('xen_drm_zcopy');
      const refs = Uint32Array.from(process.argv[3].split(','), Number);
      const r = await b.zcopyFromRefs(zc, Number(process.argv[2]), refs, 1920, 1080, 32);
      const fd = b.drmPrimeHandleToFd(zc, r.handle);
      const view = b.mmap(fd, 2025 * 4096, 1, 0);
      b.zcopyWaitFree(zc, r.waitHandle, 60000).catch(() => {});
      console.log('ready', new Uint32Array(view)[0]);
      setInterval(() => {}, 1000);
    `;
    const file = join('/tmp', 'xzc-victim.mts');
    writeFileSync(file, script);
    const child = spawn(process.execPath, ['--import', 'tsx', file, String(guest.domid), Array.from(buf.refs).join(',')], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.on('exit', (c) => reject(new Error(`victim exited early (${c})`)));
    });
    expect(await until(() => zcopyStats().waiters === 1, 5000)).toBe(true);
    expect(zcopyStats()).toMatchObject({ live_objects: 1, mapped_foreign_pages: 2025, user_mapped_pages: 2025 });
    // two processes on the device at once: this one imports the same pages too
    const both = ZeroCopyDevice.open();
    const mine = await both.importGuestBuffer({ domid: guest.domid, refs: buf.refs, width: 1920, height: 1080, bpp: 32 });
    expect(zcopyStats()).toMatchObject({ live_objects: 2, mapped_foreign_pages: 4050 });
    expect(await mine.close()).toBe('freed');
    await both.close();
    child.kill('SIGKILL');
    expect(await idle()).toBe(true);
    // a new process (this one) works
    const dev = ZeroCopyDevice.open();
    const gb = await dev.importGuestBuffer({ domid: guest.domid, refs: buf.refs, width: 1920, height: 1080, bpp: 32 });
    expect(await gb.close()).toBe('freed');
    await dev.close();
    figures.sigkill = 'released: objects, foreign and user mappings, waiters back to 0';
  });

  it('keeps working when the guest is destroyed under an import, a pending wait and granted pages', async () => {
    const victim = await DomU.start({ name: `xzc-victim-${process.pid}` });
    const dev = ZeroCopyDevice.open();
    const vgem = DrmDevice.open('vgem');
    const theirs = await victim.share({ pages: 64, seed: 11 });
    const imported = await dev.importGuestBuffer({ domid: victim.domid, refs: theirs.refs, width: 128, height: 128, bpp: 32 });
    const holder = imported.dmabuf.dup();
    const waiting = imported.close({ timeoutMs: 30_000 });
    const mine = vgem.createDumbDmaBuf(128, 128, 32);
    const granted = await dev.exportToGuest(mine, { domid: victim.domid });
    await victim.mapHold(granted.refs);
    await granted.close();
    await mine.close();
    expect(zcopyStats().deferred_reclaims).toBe(1);
    await victim.destroy();
    // Dom0 still reads the (now orphaned) pages and tears down normally
    const view = holder.map('read');
    expect(view.bytes.length).toBe(64 * 4096);
    await view.close();
    await holder.close();
    expect(await waiting).toBe('freed');
    // Xen released the dead guest's mappings: the deferred reclaim drains
    expect(await until(() => zcopyStats().deferred_reclaims === 0, 20_000)).toBe(true);
    expect(zcopyStats().granted_pages).toBe(0);
    await vgem.close();
    await dev.close();
    figures.guestDestroyed = 'import, pending wait and granted pages survived xl destroy; reclaim drained';
  });

  it('handles 32 concurrent imports and releases', async () => {
    const dev = ZeroCopyDevice.open();
    const results = await Promise.all(Array.from({ length: 32 }, async (_, i) => {
      const gb = await dev.importGuestBuffer({ domid: guest.domid, refs: buf.refs.subarray(i * 60, i * 60 + 60), width: 64, height: 960, bpp: 32 });
      return gb.close();
    }));
    expect(results.every((r) => r === 'freed')).toBe(true);
    await dev.close();
    expect(await idle()).toBe(true);
  });

  it('races GEM_CLOSE against TO_REFS and the final free against WAIT_FREE', async () => {
    const zc = openDrm('xen_drm_zcopy');
    const vgem = openDrm('vgem');
    const outcomes = new Map<string, number>();
    const note = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    for (let i = 0; i < 40; i++) {
      // TO_REFS runs on the addon's pool while the handle is closed on this thread
      const dumb = b.drmModeCreateDumb(vgem, 64, 64, 32);
      const vfd = b.drmPrimeHandleToFd(vgem, dumb.handle);
      const zh = b.drmPrimeFdToHandle(zc, vfd);
      const granting = b.zcopyToRefs(zc, zh, guest.domid, 4).then(() => 'granted', (e: { code: string }) => e.code);
      b.drmGemClose(zc, zh);
      note(`to_refs:${await granting}`);
      b.drmGemClose(vgem, dumb.handle);
      b.close(vfd);
      // WAIT_FREE pending on the pool while the last reference goes away
      const r = await b.zcopyFromRefs(zc, guest.domid, buf.refs.subarray(0, 4), 32, 32, 32);
      const fd = b.drmPrimeHandleToFd(zc, r.handle);
      b.drmGemClose(zc, r.handle);
      const waiting = b.zcopyWaitFree(zc, r.waitHandle, 5000).then(() => 'freed', (e: { code: string }) => e.code);
      b.close(fd);
      note(`wait:${await waiting}`);
    }
    b.close(zc);
    b.close(vgem);
    figures.races = Object.fromEntries(outcomes);
    // every TO_REFS either won (and its grants were ended) or lost cleanly
    for (const k of outcomes.keys()) expect(['to_refs:granted', 'to_refs:EINVAL', 'wait:freed']).toContain(k);
    expect(outcomes.get('wait:freed')).toBe(40);
    expect(await until(() => zcopyStats().granted_pages === 0 && zcopyStats().live_objects === 0, 10_000)).toBe(true);
  });

  it('reports grant exhaustion cleanly on both sides, leaving nothing half-done', async () => {
    // guest side (a guest of its own, large enough to run out of grants
    // before memory): gntalloc fails; what was shared stays usable
    const big = await DomU.start({ name: `xzc-exhaust-${process.pid}`, memoryMb: 256 });
    const shares: SharedBuffer[] = [];
    let guestError = '';
    for (let i = 0; i < 40 && !guestError; i++) {
      try {
        shares.push(await big.share({ pages: 2048, seed: i }));
      } catch (e) {
        guestError = (e as Error).message;
      }
    }
    expect(guestError).toMatch(/No space left/);
    const dev = ZeroCopyDevice.open();
    const last = await dev.importGuestBuffer({ domid: big.domid, refs: shares.at(-1)!.refs, width: 1024, height: 2048, bpp: 32 });
    expect(await last.close()).toBe('freed');
    await dev.close();
    for (const s of shares) await big.unshare(s.id);
    // The guest kernel frees the refs of a failed or ended share on its own
    // schedule: record whether it recovers, the module has nothing to do here.
    let recovered = false;
    for (let i = 0; i < 20 && !recovered; i++) {
      try {
        await big.unshare((await big.share({ pages: 2048, seed: 1 })).id);
        recovered = true;
      } catch {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    await big.destroy();
    // Dom0 side: TO_REFS of ever larger vgem buffers until Dom0's grant table is full
    const zc = openDrm('xen_drm_zcopy');
    const vgem = openDrm('vgem');
    const held: { zh: number; vh: number; fd: number }[] = [];
    let dom0Error = '';
    for (let i = 0; i < 8 && !dom0Error; i++) {
      const dumb = b.drmModeCreateDumb(vgem, 2048, 2048, 32); // 4096 pages
      const fd = b.drmPrimeHandleToFd(vgem, dumb.handle);
      const zh = b.drmPrimeFdToHandle(zc, fd);
      held.push({ zh, vh: dumb.handle, fd });
      const before = zcopyStats().granted_pages;
      try {
        await b.zcopyToRefs(zc, zh, guest.domid, dumb.size / 4096);
      } catch (e) {
        dom0Error = (e as { code: string }).code;
        expect(zcopyStats().granted_pages).toBe(before); // no partial grants
      }
    }
    figures.exhaustion = { guest: guestError, guestBuffersBeforeLimit: shares.length, guestRecoveredWithin10s: recovered, dom0: dom0Error || 'none within 8 x 4096 pages', dom0Buffers: held.length };
    for (const h of held) {
      b.drmGemClose(zc, h.zh);
      b.drmGemClose(vgem, h.vh);
      b.close(h.fd);
    }
    b.close(zc);
    b.close(vgem);
    expect(await until(() => zcopyStats().granted_pages === 0, 10_000)).toBe(true);
  });

  it('refuses non-root users and unauthenticated clients', async () => {
    const node = findDrmNode('xen_drm_zcopy')!;
    expect(statSync(node).mode & 0o777).toBe(0o600);
    const asNobody = (path: string) => spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e',
      `try { require('fs').openSync('${path}', 'r+'); console.log('opened') } catch (e) { console.log(e.code) }`], { encoding: 'utf8' });
    expect(asNobody(node).stdout.trim()).toBe('EACCES');
    // with the node opened up, a second, unauthenticated client still gets EACCES
    const master = openDrm('xen_drm_zcopy'); // root: the master
    chmodSync(node, 0o666);
    // the unprivileged client must be able to load this checkout's code: a
    // clone under a private directory (mktemp -d makes it 0700) gets search
    // permission for the test's duration (in the QEMU Dom0, in its tmpfs overlay)
    const restore: [string, number][] = [];
    for (let dir = process.cwd(); dir !== dirname(dir); dir = dirname(dir)) {
      const mode = statSync(dir).mode & 0o7777;
      if ((mode & 0o005) !== 0o005) {
        restore.push([dir, mode]);
        chmodSync(dir, mode | 0o005);
      }
    }
    try {
      const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', '-e', `
        import('${process.cwd()}/lib/binding.ts').then(async ({ native }) => {
          const b = native(); const fd = b.open('${node}');
          try { await b.zcopyWaitFree(fd, 1, 0); console.log('ok') } catch (e) { console.log(e.code) }
        })`], { encoding: 'utf8' });
      expect(r.stdout.trim()).toBe('EACCES');
    } finally {
      for (const [dir, mode] of restore) chmodSync(dir, mode);
      chmodSync(node, 0o600);
      b.close(master);
    }
  });

  it('never logs grant references above debug level', () => {
    const dmesg = spawnSync('dmesg', ['--level=emerg,alert,crit,err,warn,notice,info'], { encoding: 'utf8' }).stdout;
    const refs = new Set(Array.from(buf.refs.subarray(0, 50), String));
    const lines = dmesg.split('\n').filter((l) => l.includes('xen_drm_zcopy') && [...l.matchAll(/\b\d{3,}\b/g)].some((m) => refs.has(m[0])));
    expect(lines).toEqual([]);
  });

  it(`fuzzes the ioctls: ${FUZZ} random calls with a fixed and a random seed`, async () => {
    const seeds = [0x5eed, Number(process.env.XZC_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))];
    console.log(`fuzz seeds: ${seeds.join(', ')} (reproduce with XZC_FUZZ_SEED=${seeds[1]})`);
    const zc = openDrm('xen_drm_zcopy');
    const counts: Record<number, number> = {};
    for (const seed of seeds) {
      let x = seed >>> 0;
      const rnd = () => {
        x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
        return x;
      };
      const reqs = [b.zcopyIoctls.FROM_REFS, b.zcopyIoctls.TO_REFS, b.zcopyIoctls.WAIT_FREE, b.zcopyIoctls.WAIT_FREE_FD, 0xc0086444, 0xc0406440 + 0x100, rnd];
      for (let i = 0; i < FUZZ / seeds.length; i++) {
        const bytes = new Uint8Array(256); // random sizes up to 127 bytes stay inside it
        for (let j = 0; j < 64; j++) bytes[j] = rnd() % 4 === 0 ? rnd() & 0xff : 0;
        const v = new DataView(bytes.buffer);
        // mostly plausible sizes, handles and domids
        v.setUint32(0, [0, 1, 2, 2025, rnd()][rnd() % 5]!, true);
        v.setBigUint64(16, BigInt([0, guest.domid, 0x7ff0, rnd()][rnd() % 4]!), true);
        if (rnd() % 2) { v.setUint32(24, rnd() % 64, true); v.setUint32(28, rnd() % 64, true); v.setUint32(32, [8, 16, 32, rnd() % 256][rnd() % 4]!, true); }
        const pick = reqs[rnd() % reqs.length]!;
        const req = typeof pick === 'function' ? (0xc0006440 | ((rnd() % 128) << 16) | (rnd() % 8)) >>> 0 : pick;
        const refArg = [buf.refs.subarray(0, 1 + (rnd() % 64)), 'null', 'unmapped', undefined][rnd() % 4] as Uint32Array | 'null' | 'unmapped' | undefined;
        const err = b.zcopyIoctlRaw(zc, req, bytes, refArg);
        counts[err] = (counts[err] ?? 0) + 1;
        if (err === 0 && req === b.zcopyIoctls.FROM_REFS) b.drmGemClose(zc, v.getUint32(40, true));
      }
    }
    b.close(zc);
    // wait fds the fuzzer made (WAIT_FREE_FD, also through other sizes of its
    // number, whose fd the kernel could not copy back): close them all
    let waitFds = 0;
    for (const f of readdirSync('/proc/self/fd')) {
      let link = '';
      try {
        link = readlinkSync(`/proc/self/fd/${f}`);
      } catch {
        continue; // the directory's own fd, gone
      }
      if (link === 'anon_inode:xen_zcopy_wait') {
        b.close(Number(f));
        waitFds++;
      }
    }
    expect(await until(() => zcopyStats().wait_fds === 0, 5000)).toBe(true);
    figures.fuzz = { calls: FUZZ, seeds, errnos: counts, waitFds };
    expect(Object.keys(counts).length).toBeGreaterThan(2);
  });

  it(`soaks ${SOAK} import -> export -> vgem import -> close -> WAIT_FREE cycles with flat memory`, async () => {
    const zc = openDrm('xen_drm_zcopy');
    const vgem = openDrm('vgem');
    const refs = buf.refs.subarray(0, 16);
    const cycle = async () => {
      const r = await b.zcopyFromRefs(zc, guest.domid, refs, 128, 128, 32);
      const fd = b.drmPrimeHandleToFd(zc, r.handle);
      const vh = b.drmPrimeFdToHandle(vgem, fd);
      b.drmGemClose(vgem, vh);
      b.drmGemClose(zc, r.handle);
      b.close(fd);
      await b.zcopyWaitFree(zc, r.waitHandle, 3000);
    };
    let before, after, t0;
    try {
      for (let i = 0; i < 200; i++) await cycle(); // warm-up: caches and slabs settle
      before = meminfo();
      t0 = Date.now();
      for (let i = 0; i < SOAK; i++) await cycle();
      after = meminfo();
    } finally {
      // never leave the module held for the tests after this one
      b.close(zc);
      b.close(vgem);
    }
    figures.soak = { cycles: SOAK, seconds: (Date.now() - t0) / 1000, memFreeDeltaKb: after.memFreeKb - before.memFreeKb, slabDeltaKb: after.slabKb - before.slabKb, counters: zcopyStats() };
    expect(zcopyStats()).toMatchObject({ live_objects: 0, mapped_foreign_pages: 0, waiters: 0 });
    expect(after.slabKb - before.slabKb).toBeLessThan(2048); // flat: well under 1 KiB per 10 cycles
  }, 600_000); // a soak: its length is a count, not a time limit

  it('loads and unloads 50 times with a buffer in between', async () => {
    const kmod = xenEnv().kmod;
    for (let i = 0; i < 50; i++) {
      expect(rmmod()).toBeUndefined();
      insmod(kmod);
      expect(await until(() => findDrmNode('xen_drm_zcopy') !== undefined, 5000)).toBe(true);
      const zc = openDrm('xen_drm_zcopy');
      const r = await b.zcopyFromRefs(zc, guest.domid, buf.refs.subarray(0, 4), 32, 32, 32);
      b.drmGemClose(zc, r.handle);
      b.close(zc);
    }
    expect(zcopyStats()).toMatchObject({ live_objects: 0, mapped_foreign_pages: 0 });
  });
});
