/**
 * `npm run bench` (runs in Dom0, started by test/bench/bench.sh through the
 * harness): B1-B5, measured side by side in one VM run; ratios matter, not
 * absolute TCG times. Writes $XZC_OUT/bench-results/{latest.json, table.md,
 * chart.svg}; the harness copies them to bench-results/.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { native } from '../../lib/binding.js';
import { DrmDevice, GrantMapper, type GuestBuffer, ZeroCopyDevice } from '../../lib/index.js';
import { DomU, type SharedBuffer } from '../xen/fixture.js';
import { runB6 } from './b6.js';
import { barChartSvg, markdownTable, type Row } from './report.js';
import { ratio, summarize, type Summary } from './stats.js';

const out = join(process.env.XZC_OUT ?? '.', 'bench-results');
const zcbench = process.env.XZC_ZCBENCH ?? '';
const CYCLES = Number(process.env.XZC_BENCH_CYCLES ?? 200);
const FRAMES = Number(process.env.XZC_BENCH_FRAMES ?? 30);
const W = 1920;
const H = 1080;
const FRAME_PAGES = (W * H * 4) / 4096;
const t0 = performance.now();
const log = (m: string) => console.log(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}`);

mkdirSync(out, { recursive: true });
const ms = (s: Summary) => `${s.median.toFixed(2)} ms (p10 ${s.p10.toFixed(2)}, p90 ${s.p90.toFixed(2)}, n ${s.n})`;

function refsFile(refs: Uint32Array, name: string): string {
  const f = join('/tmp', name);
  writeFileSync(f, `${Array.from(refs).join('\n')}\n`);
  return f;
}

function runC(args: string[]): number[] {
  return execFileSync(zcbench, args, { encoding: 'utf8', maxBuffer: 1 << 24 }).trim().split('\n').map((l) => Number(l) / 1e6);
}

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

// ---- B1: Node vs C, the same import/teardown cycle ----------------------------------
const frame = await guest.share({ pages: FRAME_PAGES, seed: 1 });
const frameRefs = refsFile(frame.refs, 'b1.refs');
async function nodeCycles(n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    const buf = await zc.importGuestBuffer({ domid: guest.domid, refs: frame.refs, width: W, height: H, bpp: 32 });
    vgem.importDmaBuf(buf.dmabuf);
    await buf.close();
    times.push(performance.now() - s);
  }
  return times;
}
log(`B1: warm-up, then ${CYCLES} cycles each of Node and C, alternated in blocks of 20`);
await nodeCycles(5);
runC(['cycle', String(guest.domid), frameRefs, String(W), String(H), '5']);
const b1Node: number[] = [];
const b1C: number[] = [];
const lag = monitorEventLoopDelay({ resolution: 10 });
for (let done = 0; done < CYCLES; done += 20) {
  lag.enable();
  b1Node.push(...(await nodeCycles(20)));
  lag.disable();
  b1C.push(...runC(['cycle', String(guest.domid), frameRefs, String(W), String(H), '20']));
}
const b1 = { node: summarize(b1Node), c: summarize(b1C) };
const b1Ratio = ratio(b1.node, b1.c);
results.B1 = { ratio: b1Ratio, node_ms: b1.node, c_ms: b1.c, cycles: CYCLES, pages: FRAME_PAGES };
rows.push({ id: 'B1', what: `Node/C, FROM_REFS ${FRAME_PAGES} pages + export + vgem import + teardown + WAIT_FREE`, result: `${b1Ratio} (Node ${ms(b1.node)}, C ${ms(b1.c)})`, goal: '≤ 1.05', met: b1Ratio <= 1.05 });
const b4DuringB1 = { p50_ms: lag.percentile(50) / 1e6, p99_ms: lag.percentile(99) / 1e6 };
log(`B1 Node/C = ${b1Ratio}`);

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

// ---- B3: import cost vs size, against the gntdev hypercall floor ----------------------------
log('B3: FROM_REFS + export vs gntdev map + mmap, by size');
const b3: Record<string, { node_ms: Summary; c_ms: Summary; ratio: number }> = {};
const big = await guest.share({ pages: 8100, seed: 4 });
const bigRefs = refsFile(big.refs, 'b3.refs');
for (const pages of [1, 16, 256, 2025, 8100]) {
  const refs = big.refs.subarray(0, pages);
  const n = pages >= 2025 ? 20 : 40;
  const node: number[] = [];
  for (let i = 0; i < n + 3; i++) {
    const s = performance.now();
    const gb = await zc.importGuestBuffer({ domid: guest.domid, refs, width: 1024, height: pages, bpp: 32 });
    await gb.close();
    if (i >= 3) node.push(performance.now() - s);
  }
  const c = runC(['gntmap', String(guest.domid), bigRefs, String(pages), String(n + 3)]).slice(3);
  const r = { node_ms: summarize(node), c_ms: summarize(c), ratio: ratio(summarize(node), summarize(c)) };
  b3[pages] = r;
  log(`B3 ${pages} pages: ${r.ratio}x`);
}
await guest.unshare(big.id);
results.B3 = { ratio: Object.fromEntries(Object.entries(b3).map(([k, v]) => [k, v.ratio])), detail: b3 };
rows.push({ id: 'B3', what: 'FROM_REFS + export / gntdev map + mmap (C)', result: Object.entries(b3).map(([k, v]) => `${k}: ${v.ratio}x`).join(', '), goal: '≤ 1.2x', met: Object.values(b3).every((v) => v.ratio <= 1.2) });

// ---- B4: event loop while 16 WAIT_FREEs are pending -------------------------------------------
log('B4: event-loop lag with 16 pending WAIT_FREEs');
const holders = [];
const pending = [];
for (let i = 0; i < 16; i++) {
  const gb = await zc.importGuestBuffer({ domid: guest.domid, refs: frame.refs.subarray(i, i + 1), width: 32, height: 32, bpp: 32 });
  holders.push(gb.dmabuf.dup());
  pending.push(gb);
}
const lag16 = monitorEventLoopDelay({ resolution: 10 });
lag16.enable();
const closing = pending.map((gb) => gb.close({ timeoutMs: 3000 }).catch(() => 'timeout'));
await new Promise((r) => setTimeout(r, 2000));
for (const h of holders) void h.close();
await Promise.all(closing);
lag16.disable();
const b4 = {
  resolution_ms: 10,
  waits16: { p50_ms: lag16.percentile(50) / 1e6, p99_ms: lag16.percentile(99) / 1e6 },
  during_b1: b4DuringB1,
};
results.B4 = { p99_ms: Math.max(b4.waits16.p99_ms, b4.during_b1.p99_ms) - 10, ...b4 };
rows.push({ id: 'B4', what: 'event-loop delay beyond the 10 ms sampling timer (16 waits / during B1)', result: `p50 ${(b4.waits16.p50_ms - 10).toFixed(1)} / ${(b4.during_b1.p50_ms - 10).toFixed(1)} ms, p99 ${(b4.waits16.p99_ms - 10).toFixed(1)} / ${(b4.during_b1.p99_ms - 10).toFixed(1)} ms`, goal: 'p99 < 5 ms', met: (results.B4 as { p99_ms: number }).p99_ms < 5 });

// ---- B5: how many 8 MiB guest buffers can live at once ----------------------------------------
log('B5: 8 MiB guest buffers until the first limit');
for (const s of bufs) await guest.unshare(s.id);
const live: GuestBuffer[] = [];
const shares: SharedBuffer[] = [];
let firstLimit = 'none up to 80 buffers';
for (let i = 0; i < 80; i++) {
  let s: SharedBuffer;
  try {
    s = await guest.share({ pages: 2048, seed: 100 + i });
  } catch (e) {
    firstLimit = `guest side after ${i} buffers: ${(e as Error).message}`;
    break;
  }
  shares.push(s);
  try {
    live.push(await zc.importGuestBuffer({ domid: guest.domid, refs: s.refs, width: 1024, height: 2048, bpp: 32 }));
  } catch (e) {
    firstLimit = `Dom0 side after ${i} buffers: ${(e as Error).message}`;
    break;
  }
}
results.B5 = { max_buffers: live.length, first_limit: firstLimit, buffer_mib: 8, guest_memory_mib: 256 };
rows.push({ id: 'B5', what: '8 MiB guest buffers live at once (256 MiB guest)', result: `${live.length}; first limit: ${firstLimit}`, goal: '≥ 64', met: live.length >= 64 });
for (const gb of live) await gb.close();
for (const s of shares) await guest.unshare(s.id);

await vgem.close();
await zc.close();
await guest.destroy();

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
  result: `${b6Rate('1920x1080')}; ${b6Rate('1024x768')}`, goal: '≥ 20x backend CPU at 1080p; fps not lower',
  met: b6.ratio_backend_cpu >= 20 && b6.fps_zero_copy >= b6.fps_copy,
});

// ---- report ------------------------------------------------------------------------------------
writeFileSync(join(out, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
const table = markdownTable(rows);
writeFileSync(join(out, 'table.md'), table);
writeFileSync(join(out, 'chart.svg'), barChartSvg('xen-zcopy benchmarks (QEMU TCG): ratios', [
  { label: 'B6 backend CPU, copy / zero copy', value: b6.ratio_backend_cpu, goal: 20 },
  { label: 'B6 Dom0 CPU, copy / zero copy', value: b6.ratio_dom0_cpu, goal: 20 },
  { label: 'B1 Node / C', value: b1Ratio, goal: 1.05 },
  { label: 'B2 memcpy / zero copy (CPU)', value: b2.ratio_memcpy, goal: 20 },
  { label: 'B2 GRANT_COPY / zero copy (CPU)', value: b2.ratio_grant_copy, goal: 20 },
  ...Object.entries(b3).map(([k, v]) => ({ label: `B3 import / gntdev, ${k} pages`, value: v.ratio, goal: 1.2 })),
], 'x'));
console.log(`\n${table}`);
log('done');
