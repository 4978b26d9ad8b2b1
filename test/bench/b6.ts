/**
 * B6, the headline: the whole pipeline. A guest app animates and page-flips
 * through Linux's drm_xen_front; `xen-zcopy display-backend --sink kms` (a
 * child process, as deployed) scans the frames out on vkms, either from the
 * guest's own pages (zero copy) or after copying each frame into a Dom0
 * buffer (`--copy`, the baseline). Measured per mode: the backend process's
 * CPU per frame (user+sys from /proc/<pid>/stat), Dom0's CPU per frame
 * (/proc/stat) and the frames per second the guest reached.
 *
 * vkms composes on the CPU only for writeback or CRC; neither is on here, as
 * a real display controller reads the pages by DMA. That what it shows is the
 * guest's frame is proven by test/xen/display-kms.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

import { loadVkms, unloadVkms } from '../xen/drm.js';
import { DomU } from '../xen/fixture.js';
import { wakeCost } from './common.js';

export interface B6Run {
  mode: 'zero copy' | 'copy';
  width: number;
  height: number;
  frames: number;
  seconds: number;
  fps: number;
  backend_cpu_ms_per_frame: number;
  backend_user_ms_per_frame: number;
  backend_sys_ms_per_frame: number;
  /** of backend_cpu_ms_per_frame, the main (JavaScript) thread's; the rest is the addon's pool, libuv's and V8's threads */
  backend_main_thread_ms_per_frame: number;
  /** times the main thread went to sleep and was woken, per frame (its voluntary context switches) */
  wakeups_per_frame: number;
  dom0_cpu_ms_per_frame: number;
}

const TICK_MS = 1000 / 100; // USER_HZ

/** user and system CPU of a process, in ms */
function procCpuMs(pid: number, mainThreadOnly = false): { user: number; sys: number } {
  // fields after the ')' of comm: state is field 3; utime 14, stime 15
  const stat = readFileSync(mainThreadOnly ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) * TICK_MS, sys: Number(f[12]) * TICK_MS };
}

/** voluntary context switches of a process's main thread: each is a sleep and a wake-up */
function wakeups(pid: number): number {
  return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8'))![1]);
}

function dom0BusyMs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) * TICK_MS;
}

async function startBackend(copy: boolean): Promise<ChildProcess> {
  const args = ['dist/cli.js', 'display-backend', '--json', '--sink', 'kms', ...(copy ? ['--copy'] : [])];
  // XZC_B6_NODE_ARGS: e.g. "--cpu-prof --cpu-prof-dir=.cache/prof" to profile the backend
  const nodeArgs = (process.env.XZC_B6_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    rl.on('line', (l) => {
      if (l.includes('"ready"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`display-backend exited with ${code}`)));
  });
  return child;
}

async function stopBackend(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
}

/** One guest animating on one backend for at least `seconds`. */
async function measure(mode: B6Run['mode'], width: number, height: number, seconds: number, log: (m: string) => void): Promise<B6Run> {
  const child = await startBackend(mode === 'copy');
  const guest = await DomU.start({
    name: `xzc-b6-${process.pid}-${width}`, memoryMb: 192, vdispl: `backend=0,be-alloc=0,connectors=id0:${width}x${height}`,
  });
  try {
    await guest.loadFront();
    await guest.waitDisplay();
    await guest.drmOpen(0);
    const warm = await guest.drmLoop(6);
    const frames = Math.min(2400, Math.max(60, Math.ceil(((seconds * 1000) / warm.ms) * 6 * 1.05)));
    const cpu0 = procCpuMs(child.pid!);
    const main0 = procCpuMs(child.pid!, true);
    const wake0 = wakeups(child.pid!);
    const dom0 = dom0BusyMs();
    const loop = await guest.drmLoop(frames);
    const cpu1 = procCpuMs(child.pid!);
    const main1 = procCpuMs(child.pid!, true);
    const woken = wakeups(child.pid!) - wake0;
    const main = main1.user + main1.sys - main0.user - main0.sys;
    const user = cpu1.user - cpu0.user;
    const sys = cpu1.sys - cpu0.sys;
    const cpu = user + sys;
    const busy = dom0BusyMs() - dom0;
    await guest.drmClose();
    const run: B6Run = {
      mode, width, height, frames, seconds: +(loop.ms / 1000).toFixed(2), fps: +((frames * 1000) / loop.ms).toFixed(2),
      backend_cpu_ms_per_frame: +(cpu / frames).toFixed(3), backend_user_ms_per_frame: +(user / frames).toFixed(3),
      backend_sys_ms_per_frame: +(sys / frames).toFixed(3), backend_main_thread_ms_per_frame: +(main / frames).toFixed(3),
      wakeups_per_frame: +(woken / frames).toFixed(2), dom0_cpu_ms_per_frame: +(busy / frames).toFixed(3),
    };
    log(`B6 ${width}x${height} ${mode}: ${run.fps} fps over ${run.seconds} s, backend ${run.backend_cpu_ms_per_frame} ms CPU/frame (user ${run.backend_user_ms_per_frame}, sys ${run.backend_sys_ms_per_frame}; main thread ${run.backend_main_thread_ms_per_frame}, woken ${run.wakeups_per_frame}x), Dom0 ${run.dom0_cpu_ms_per_frame} ms/frame`);
    return run;
  } finally {
    await guest.destroy();
    await stopBackend(child);
  }
}

export interface B6Result {
  ratio_backend_cpu: number;
  ratio_dom0_cpu: number;
  fps_zero_copy: number;
  fps_copy: number;
  by_size: Record<string, { ratio_backend_cpu: number; ratio_dom0_cpu: number; fps_zero_copy: number; fps_copy: number }>;
  runs: B6Run[];
  /** CPU per bare wake-up on this machine, C and Node (common.ts wakeCost) */
  wake_ms: { c_ms: number; node_ms: number };
  /**
   * 1080p zero copy's wake-ups per frame times a bare Node wake-up: what a
   * frame costs the backend however little it does once awake
   */
  floor_ms_per_frame: number;
  /** the best copy / zero copy ratio that floor allows: (copy's extra CPU + floor) / floor */
  ratio_ceiling: number;
  seconds_per_run: number;
  note: string;
}

const r2 = (x: number) => +x.toFixed(2);

/** B6 at 1920x1080 (the headline figures) and 1024x768. */
export async function runB6(log: (m: string) => void, seconds = Number(process.env.XZC_B6_SECONDS ?? 10)): Promise<B6Result> {
  const wake = await wakeCost();
  log(`B6: a bare wake-up costs ${wake.c_ms.toFixed(3)} ms of CPU in C, ${wake.node_ms.toFixed(3)} ms in Node`);
  await loadVkms();
  const runs: B6Run[] = [];
  const by_size: B6Result['by_size'] = {};
  try {
    for (const [w, h] of (process.env.XZC_B6_SIZES === "1080" ? [[1920, 1080]] : [[1920, 1080], [1024, 768]]) as [number, number][]) {
      const zero = await measure('zero copy', w, h, seconds, log);
      const copy = await measure('copy', w, h, seconds, log);
      runs.push(zero, copy);
      by_size[`${w}x${h}`] = {
        ratio_backend_cpu: r2(copy.backend_cpu_ms_per_frame / Math.max(zero.backend_cpu_ms_per_frame, 1e-3)),
        ratio_dom0_cpu: r2(copy.dom0_cpu_ms_per_frame / Math.max(zero.dom0_cpu_ms_per_frame, 1e-3)),
        fps_zero_copy: zero.fps,
        fps_copy: copy.fps,
      };
    }
  } finally {
    const err = unloadVkms();
    if (err) log(`B6: vkms did not unload: ${err}`);
  }
  const hd = by_size['1920x1080']!;
  const [zero, copy] = runs as [B6Run, B6Run];
  const floor = zero.wakeups_per_frame * wake.node_ms;
  return {
    ...hd, by_size, runs, wake_ms: wake, floor_ms_per_frame: r2(floor),
    ratio_ceiling: floor > 0 ? r2((copy.backend_cpu_ms_per_frame - zero.backend_cpu_ms_per_frame + floor) / floor) : NaN,
    seconds_per_run: seconds,
    note: 'backend = the display-backend process (user+sys); Dom0 = all of Dom0 (/proc/stat busy); vkms without writeback/CRC (no CPU composition, as a DMA display engine)',
  };
}

// `node --import tsx test/bench/b6.ts` in Dom0: B6 alone, printed as JSON
// (only then: bundled into run.ts's program, this module is not the entry point)
if (process.argv[1]?.endsWith('/test/bench/b6.ts')) {
  const t0 = performance.now();
  const result = await runB6((m) => console.log(`[b6 ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}`));
  console.log(JSON.stringify(result, null, 2));
}
