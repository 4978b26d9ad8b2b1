/**
 * `npm run bench` (runs in Dom0, started by test/bench/bench.sh through the
 * harness): B1-B6, measured side by side in one VM run; ratios matter, not
 * absolute TCG times. Writes $XZC_OUT/bench-results/{latest.json, table.md,
 * chart.svg}; the harness copies them to bench-results/.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHistogram } from 'node:perf_hooks';

import { native } from '../../lib/binding.js';
import { type DmaBuf, DrmDevice, GrantMapper, type GuestBuffer, ZeroCopyDevice } from '../../lib/index.js';
import { DomU, type SharedBuffer } from '../xen/fixture.js';
import { FRAME_H as H, FRAME_PAGES, FRAME_W as W, runB1 } from './b1.js';
import { b1StepsRow, runB1Steps } from './b1steps.js';
import { runB3 } from './b3.js';
import { runB6 } from './b6.js';
import { gcView, idleProbe, lagOf, log, monoMs, monitored, outDir as out, Samples } from './common.js';
import { barChartSvg, markdownTable, type Row } from './report.js';

const CYCLES = Number(process.env.XZC_BENCH_CYCLES ?? 200);
const FRAMES = Number(process.env.XZC_BENCH_FRAMES ?? 30);
const samples = new Samples();
mkdirSync(out, { recursive: true });

function cpuNow(): { proc: number; dom0: number } {
  const u = process.cpuUsage();
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq: busy = all but idle and iowait, in 10 ms ticks
  const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]!;
  return { proc: (u.user + u.system) / 1000, dom0: busy * 10 };
}

log('starting the DomU peer (256 MiB)');
const guest = await DomU.start({ name: `xzc-bench-${process.pid}`, memoryMb: 256 });
const zc = ZeroCopyDevice.open();
const vgem = DrmDevice.open('vgem');
const results: Record<string, unknown> = {
  machine: { note: 'QEMU TCG (no KVM), 2 host cores shared by Xen, Dom0 and the DomU; absolute times are TCG times, compare ratios', node: process.version },
};
const rows: Row[] = [];

// ---- B1: Node vs C, the same import/teardown cycle, by size (b1.ts) -----------------------
const frame = await guest.share({ pages: FRAME_PAGES, seed: 1 });
const b1 = await runB1({ zc, vgem, domid: guest.domid, frame, cycles: CYCLES, samples, log });
// where a 1-page sync cycle's time goes, layer by layer (b1steps.ts)
const steps = await runB1Steps({ zc, vgem, domid: guest.domid, refs: frame.refs.subarray(0, 1), cycles: CYCLES, samples, log });
results.B1 = { ...b1.json, steps };
rows.push(...b1.rows, b1StepsRow(steps));
const b4DuringB1 = b1.lag;

// ---- B2: CPU per frame, zero copy vs copies ----------------------------------------------
log(`B2: 3 guest buffers of ${W}x${H}, ${FRAMES} frames per path`);
const bufs: SharedBuffer[] = [frame, await guest.share({ pages: FRAME_PAGES, seed: 2 }), await guest.share({ pages: FRAME_PAGES, seed: 3 })];
const target = vgem.createDumbDmaBuf(W, H, 32);
const targetView = target.map('write');
async function measure(name: string, perFrame: (i: number) => Promise<void> | void) {
  for (let i = 0; i < 3; i++) await perFrame(i); // warm-up
  const a = cpuNow();
  const s = performance.now();
  for (let i = 0; i < FRAMES; i++) await perFrame(i);
  const wall = performance.now() - s;
  const b = cpuNow();
  const r = { backend_cpu_ms_per_frame: (b.proc - a.proc) / FRAMES, dom0_cpu_ms_per_frame: (b.dom0 - a.dom0) / FRAMES, wall_ms_per_frame: wall / FRAMES };
  log(`B2 ${name}: backend ${r.backend_cpu_ms_per_frame.toFixed(3)} ms CPU/frame, Dom0 ${r.dom0_cpu_ms_per_frame.toFixed(1)} ms/frame`);
  return { ...r, backend_cpu_ms_per_s_at_60fps: r.backend_cpu_ms_per_frame * 60 };
}
// (a) zero copy: imported once; per frame only the flip: pick the buffer, bracket CPU-visible access
const imported: GuestBuffer[] = [];
for (const s of bufs) {
  const gb = await zc.importGuestBuffer({ domid: guest.domid, refs: s.refs, width: W, height: H, bpp: 32 });
  vgem.importDmaBuf(gb.dmabuf);
  imported.push(gb);
}
// The flip: pick this frame's buffer and bracket it with a dma-buf sync
// (what a backend does to order CPU-visible access); no pixel is touched.
const SYNC = native().DMA_BUF_SYNC;
const zeroCopy = await measure('zero copy', (i) => {
  const fd = imported[i % 3]!.dmabuf.fd;
  native().dmabufSync(fd, SYNC.START | SYNC.READ);
  native().dmabufSync(fd, SYNC.END | SYNC.READ);
});
// (b) gntdev map once + memcpy per frame
const mapper = GrantMapper.open();
const maps = bufs.map((s) => mapper.map(guest.domid, s.refs));
const memcpy = await measure('gntdev map + memcpy', (i) => {
  maps[i % 3]!.bytes.copy(targetView.buffer, 0, 0, W * H * 4);
});
// (c) GRANT_COPY per frame. Xen copies into pages gntdev pins with
// get_user_pages, which refuses vgem's VM_PFNMAP mapping (EFAULT), so the
// frame lands in a staging buffer and is then copied into the vgem buffer:
// what a backend on this path has to do.
const staging = new Uint8Array(FRAME_PAGES * 4096);
const grantCopy = await measure('GRANT_COPY + memcpy', async (i) => {
  await mapper.copyFrom(guest.domid, bufs[i % 3]!.refs, staging);
  targetView.buffer.set(staging.subarray(0, W * H * 4));
});
for (const m of maps) await m.close();
await mapper.close();
await targetView.close();
await target.close();
for (const gb of imported) await gb.close();
const b2 = {
  zero_copy: zeroCopy, memcpy, grant_copy: grantCopy,
  ratio_memcpy: Math.round((memcpy.backend_cpu_ms_per_frame / zeroCopy.backend_cpu_ms_per_frame) * 10) / 10,
  ratio_grant_copy: Math.round((grantCopy.backend_cpu_ms_per_frame / zeroCopy.backend_cpu_ms_per_frame) * 10) / 10,
  frames: FRAMES,
};
results.B2 = b2;
const best = Math.min(b2.ratio_memcpy, b2.ratio_grant_copy);
rows.push({ id: 'B2', what: 'backend CPU per 1080p frame: copy paths / zero copy', result: `memcpy ${b2.ratio_memcpy}x, GRANT_COPY ${b2.ratio_grant_copy}x (zero copy ${zeroCopy.backend_cpu_ms_per_frame.toFixed(3)} ms/frame)`, goal: '≥ 20x vs the best copy', met: best >= 20 });

// ---- B3: the kernel's import cost against the gntdev hypercall floor, C vs C (b3.ts) --------
const b3 = await runB3({ guest, samples, log });
results.B3 = b3.json;
rows.push(b3.row);

// ---- B4: event-loop delay of the backend process against an idle Node process ----------------
log('B4: event-loop delay with 16 pending WAIT_FREEs, against an idle Node process');
const holders: DmaBuf[] = [];
const pending: GuestBuffer[] = [];
for (let i = 0; i < 16; i++) {
  const gb = await zc.importGuestBuffer({ domid: guest.domid, refs: frame.refs.subarray(i, i + 1), width: 32, height: 32, bpp: 32 });
  holders.push(gb.dmabuf.dup());
  pending.push(gb);
}
const idle16 = await idleProbe();
const lag16 = createHistogram();
// samples.json: both processes' delay samples as (time, gap), and the marks
// (window opened, holders closed, every close resolved) on CLOCK_MONOTONIC in ms
const trace16: number[] = [];
const gc16: number[] = [];
const marks16 = [monoMs()];
await monitored(lag16, async () => {
  const closing = pending.map((gb) => gb.close({ timeoutMs: 3000 }).catch(() => 'timeout'));
  await new Promise((r) => setTimeout(r, 2000));
  marks16.push(monoMs());
  for (const h of holders) void h.close();
  await Promise.all(closing);
  marks16.push(monoMs());
}, trace16, gc16);
const { trace: idleTrace16, gc: idleGc16, ...idleLag16 } = await idle16.stop();
samples.keep('B4.waits16.backend_trace', trace16);
samples.keep('B4.waits16.idle_trace', idleTrace16);
samples.keep('B4.waits16.marks', marks16);
samples.keep('B4.waits16.backend_gc', gc16);
samples.keep('B4.waits16.idle_gc', idleGc16);
const b4 = {
  resolution_ms: 10,
  waits16: { backend: lagOf(lag16), idle: idleLag16, gc: gcView({ trace: trace16, gc: gc16 }, { trace: idleTrace16, gc: idleGc16 }) },
  during_b1: b4DuringB1,
};
const beyond = (x: { backend: { p99_ms: number }; idle: { p99_ms: number } }) => Math.max(0, x.backend.p99_ms - x.idle.p99_ms);
const vsIdle = (x: { backend: { p99_ms: number }; idle: { p99_ms: number } }) => Math.round((x.backend.p99_ms / x.idle.p99_ms) * 100) / 100;
results.B4 = {
  ratio_vs_idle: Math.max(vsIdle(b4.waits16), vsIdle(b4.during_b1)),
  p99_ms: Math.max(beyond(b4.waits16), beyond(b4.during_b1)),
  ...b4,
};
const b4r = results.B4 as { ratio_vs_idle: number; p99_ms: number };
rows.push({
  id: 'B4', what: 'event-loop delay p99, backend / idle Node in the same window (16 waits; imports of B1)',
  result: `16 waits: ${b4.waits16.backend.p99_ms.toFixed(1)} / ${b4.waits16.idle.p99_ms.toFixed(1)} ms; imports: ${b4.during_b1.backend.p99_ms.toFixed(1)} / ${b4.during_b1.idle.p99_ms.toFixed(1)} ms; ratio ${b4r.ratio_vs_idle}, beyond idle ${b4r.p99_ms.toFixed(1)} ms`,
  goal: 'ratio ≤ 1.5, beyond idle < 5 ms', met: b4r.ratio_vs_idle <= 1.5 && b4r.p99_ms < 5,
});

// ---- B5: how many 8 MiB guest buffers can live at once ----------------------------------------
// bench.sh raises Xen's grant-table and maptrack limits (gnttab_max_frames,
// gnttab_max_maptrack_frames) and the VM's memory; each guest gets
// max_grant_frames B5_GRANT_FRAMES, so the first limit is memory or the module.
for (const s of bufs) await guest.unshare(s.id);
await vgem.close();
await guest.destroy();
const B5_GUEST_MB = Number(process.env.XZC_B5_GUEST_MB ?? 768);
const B5_GRANT_FRAMES = Number(process.env.XZC_B5_GRANT_FRAMES ?? 400);
/** Shares and imports 8 MiB buffers round-robin over `guests` until `max` or the first failure. */
async function fill(guests: DomU[], max: number): Promise<{ live: number; first_limit: string }> {
  const live: GuestBuffer[] = [];
  const shares: { g: DomU; s: SharedBuffer }[] = [];
  let firstLimit = `none up to ${max} buffers`;
  for (let i = 0; i < max; i++) {
    const g = guests[i % guests.length]!;
    let s: SharedBuffer;
    try {
      s = await g.share({ pages: 2048, seed: 100 + i });
    } catch (e) {
      firstLimit = `guest side (domain ${g.domid}) after ${i} buffers: ${(e as Error).message}`;
      break;
    }
    shares.push({ g, s });
    try {
      live.push(await zc.importGuestBuffer({ domid: g.domid, refs: s.refs, width: 1024, height: 2048, bpp: 32 }));
    } catch (e) {
      firstLimit = `Dom0 side after ${i} buffers: ${(e as Error).message}`;
      break;
    }
  }
  const n = live.length;
  for (const gb of live) await gb.close();
  for (const { g, s } of shares) await g.unshare(s.id);
  return { live: n, first_limit: firstLimit };
}
log(`B5: 8 MiB guest buffers from one ${B5_GUEST_MB} MiB guest, then from two, until the first limit`);
const b5guest = await DomU.start({ name: `xzc-b5a-${process.pid}`, memoryMb: B5_GUEST_MB, maxGrantFrames: B5_GRANT_FRAMES });
const one = await fill([b5guest], 80);
await b5guest.destroy();
log(`B5 one guest: ${one.live}; ${one.first_limit}`);
const pair = [
  await DomU.start({ name: `xzc-b5b-${process.pid}`, memoryMb: B5_GUEST_MB, maxGrantFrames: B5_GRANT_FRAMES }),
  await DomU.start({ name: `xzc-b5c-${process.pid}`, memoryMb: B5_GUEST_MB, maxGrantFrames: B5_GRANT_FRAMES }),
];
const several = await fill(pair, 160);
for (const g of pair) await g.destroy();
log(`B5 two guests: ${several.live}; ${several.first_limit}`);
results.B5 = {
  max_buffers: one.live, first_limit: one.first_limit,
  several_guests: { guests: 2, max_buffers: several.live, first_limit: several.first_limit },
  buffer_mib: 8, guest_memory_mib: B5_GUEST_MB, max_grant_frames: B5_GRANT_FRAMES,
};
rows.push({
  id: 'B5', what: `8 MiB guest buffers live at once (one / two ${B5_GUEST_MB} MiB guests)`,
  result: `${one.live} (${one.first_limit}); ${several.live} (${several.first_limit})`,
  goal: '≥ 64 / ≥ 128', met: one.live >= 64 && several.live >= 128,
});
await zc.close();

// ---- B6 (the headline): the whole pipeline, zero copy vs copy mode -----------------------------
log('B6: guest app -> drm_xen_front -> display-backend -> vkms, zero copy vs --copy');
const b6 = await runB6(log);
results.B6 = b6;
const b6Rate = (k: '1920x1080' | '1024x768') => {
  const r = b6.by_size[k]!;
  return `${k}: backend CPU ${r.ratio_backend_cpu}x, Dom0 CPU ${r.ratio_dom0_cpu}x, guest ${r.fps_zero_copy} fps zero copy / ${r.fps_copy} fps copy`;
};
rows.unshift({
  id: 'B6', what: 'whole pipeline (guest app → drm_xen_front → backend → vkms scan-out): copy mode / zero copy',
  result: `${b6Rate('1920x1080')}; ${b6Rate('1024x768')}; a bare wake-up costs ${b6.wake_ms.node_ms.toFixed(2)} ms in Node ` +
    `(${b6.wake_ms.c_ms.toFixed(2)} in C): a ${b6.floor_ms_per_frame} ms floor per frame, ceiling ${b6.ratio_ceiling}x`, goal: '≥ 20x backend CPU at 1080p; fps not lower',
  met: b6.ratio_backend_cpu >= 20 && b6.fps_zero_copy >= b6.fps_copy,
});

// ---- report ------------------------------------------------------------------------------------
writeFileSync(join(out, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(out, 'samples.json'), `${JSON.stringify(samples.all)}\n`);
const table = markdownTable(rows);
writeFileSync(join(out, 'table.md'), table);
writeFileSync(join(out, 'chart.svg'), barChartSvg('xen-zcopy benchmarks (QEMU TCG): ratios', [
  { label: 'B6 backend CPU, copy / zero copy', value: b6.ratio_backend_cpu, goal: 20 },
  { label: 'B6 Dom0 CPU, copy / zero copy', value: b6.ratio_dom0_cpu, goal: 20 },
  { label: 'B1 Node / C, 2025 pages', value: b1.json.ratio, goal: 1.05 },
  { label: 'B1 Node / C, 1 page', value: b1.json.ratio_by_pages[1]!, goal: 1.2 },
  { label: 'B1 Node sync / C, 2025 pages', value: b1.json.ratio_sync, goal: 1.05 },
  { label: 'B1 Node sync / C, 1 page', value: b1.json.ratio_sync_by_pages[1]!, goal: 1.2 },
  { label: 'B2 memcpy / zero copy (CPU)', value: b2.ratio_memcpy, goal: 20 },
  { label: 'B2 GRANT_COPY / zero copy (CPU)', value: b2.ratio_grant_copy, goal: 20 },
  ...Object.entries(b3.json.detail).map(([k, v]) => ({ label: `B3 C import / C gntdev, ${k} pages`, value: v.ratio, goal: 1.2 })),
], 'x'));
console.log(`\n${table}`);
log('done');
