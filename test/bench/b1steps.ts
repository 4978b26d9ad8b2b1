/**
 * B1 steps: where the time of a 1-page sync cycle goes. The cycle is cut into
 * the same three steps at five layers, measured in one run, interleaved in
 * blocks so all see the same VM:
 *
 * - `c_2018`: zcbench, the 2018 teardown (WAIT_FREE);
 * - `c_fd`:   zcbench, the teardown the addon makes (WAIT_FREE_FD with IF_BUSY);
 * - `c_mt`:   zcbench as c_2018 with 16 idle threads, as many as Node's process
 *             has about (the kernel's paths for a process that shares its files
 *             and mm: fdget's reference count, ...);
 * - `napi`:   the addon's functions called directly, no library objects;
 * - `lib`:    the library's sync API (importGuestBufferSync, importDmaBuf, closeSync).
 *
 * Steps: `import` (FROM_REFS + PRIME export), `vgem` (PRIME import), `teardown`
 * (importer's and zcopy's GEM_CLOSE, the last close, the wait). napi - c_2018
 * is what the addon adds (c_fd shows its wait costs what 2018's does); lib -
 * napi is the library's JavaScript.
 * Probes of the parts: a clock read pair (performance.now()), an addon call
 * that makes no syscall, one that makes one poll(2), and that poll(2) from
 * zcbench (a cheap syscall in a small C process).
 */
import { native } from '../../lib/binding.js';
import type { DrmDevice, ZeroCopyDevice } from '../../lib/index.js';
import { refsFile, runC, type Samples, zcbench } from './common.js';
import type { Row } from './report.js';
import { summarize } from './stats.js';

const BLOCK = 20;
const STEPS = ['import', 'vgem', 'teardown'] as const;
type Step = (typeof STEPS)[number];
type Times = Record<Step, number[]>;

export interface B1StepsOptions {
  zc: ZeroCopyDevice;
  vgem: DrmDevice;
  domid: number;
  refs: Uint32Array;
  cycles: number;
  samples: Samples;
  log(m: string): void;
}

export interface B1Steps {
  pages: number;
  cycles: number;
  /** median ms per step and layer, and the whole cycle */
  median_ms: Record<string, Record<Step | 'cycle', number>>;
  /** median µs of each probe: clock_pair, napi_nop, napi_poll, c_poll */
  probes_us: Record<string, number>;
  /** cycle medians against C's (the 2018 teardown, B1's C side): C with threads, napi, lib */
  ratio: { c_mt: number; napi: number; lib: number };
  /** what each layer adds per cycle (median cycles): the addon (napi - c_2018), the library's JS (lib - napi) */
  addon_ms: number;
  js_ms: number;
}

const empty = (): Times => ({ import: [], vgem: [], teardown: [] });

async function zcbenchSteps(args: string[], threads = 0): Promise<Times> {
  const t = empty();
  for (const [a, b, c] of await zcbench(args, { XZC_ZCBENCH_THREADS: String(threads) })) {
    t.import.push(a!);
    t.vgem.push(b!);
    t.teardown.push(c!);
  }
  return t;
}

export async function runB1Steps(o: B1StepsOptions): Promise<B1Steps> {
  const { zc, vgem, domid, refs } = o;
  const pages = refs.length;
  const w = 1024;
  const h = pages;
  const b = native();
  const zfd = zc.fd;
  const vfd = vgem.fd;
  const file = refsFile(refs, `b1steps-${pages}.refs`);
  const cArgs = (n: number, wait: string) => ['steps', String(domid), file, String(w), String(h), String(n), wait];

  function napi(n: number, into: Times): void {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const r = b.zcopyImportSync(zfd, domid, refs, w, h, 32);
      const t1 = performance.now();
      const vh = b.drmPrimeFdToHandle(vfd, r.dmabufFd);
      const t2 = performance.now();
      b.drmGemClose(vfd, vh);
      const rel = b.zcopyReleaseSync(zfd, r.handle, r.dmabufFd, r.waitHandle);
      const t3 = performance.now();
      if (!rel.freed) throw new Error('B1 steps: the napi cycle left its buffer held');
      into.import.push(t1 - t0);
      into.vgem.push(t2 - t1);
      into.teardown.push(t3 - t2);
    }
  }
  function lib(n: number, into: Times): void {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const buf = zc.importGuestBufferSync({ domid, refs, width: w, height: h, bpp: 32 });
      const t1 = performance.now();
      vgem.importDmaBuf(buf.dmabuf);
      const t2 = performance.now();
      const r = buf.closeSync();
      const t3 = performance.now();
      if (r !== 'freed') throw new Error('B1 steps: the lib cycle left its buffer held');
      into.import.push(t1 - t0);
      into.vgem.push(t2 - t1);
      into.teardown.push(t3 - t2);
    }
  }

  o.log(`B1 steps, ${pages} page(s): warm-up, then ${o.cycles} cycles per layer (C 2018, C wait fd, C with threads, addon direct, library), in blocks of ${BLOCK}`);
  // past the JIT's first tiers (Node's side) before anything counts
  napi(50, empty());
  lib(50, empty());
  await zcbenchSteps(cArgs(5, 'fd'));
  const layers: Record<string, Times> = { c_2018: empty(), c_fd: empty(), c_mt: empty(), napi: empty(), lib: empty() };
  const add = (into: Times, t: Times) => STEPS.forEach((s) => into[s].push(...t[s]));
  for (let done = 0; done < o.cycles; done += BLOCK) {
    add(layers.c_2018!, await zcbenchSteps(cArgs(BLOCK, '2018')));
    add(layers.c_fd!, await zcbenchSteps(cArgs(BLOCK, 'fd')));
    add(layers.c_mt!, await zcbenchSteps(cArgs(BLOCK, '2018'), 16));
    napi(BLOCK, layers.napi!);
    lib(BLOCK, layers.lib!);
  }
  const probe = (f: () => unknown): number => {
    const t: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const a = performance.now();
      f();
      t.push(performance.now() - a);
    }
    return summarize(t).median * 1000;
  };
  const empty0 = new ArrayBuffer(0);
  const probes_us: Record<string, number> = {
    clock_pair: probe(() => undefined),
    napi_nop: probe(() => b.munmap(empty0)), // a zero-length buffer: no syscall
    napi_poll: probe(() => b.fdReadable(vfd)),
    c_poll: summarize(await runC(['poll', '1000'])).median * 1000,
  };
  for (const k of Object.keys(probes_us)) probes_us[k] = Math.round(probes_us[k]! * 10) / 10;
  const median_ms: B1Steps['median_ms'] = {};
  for (const [layer, t] of Object.entries(layers)) {
    const m = Object.fromEntries(STEPS.map((s) => [s, summarize(t[s]).median])) as Record<Step, number>;
    const cycle = t.import.map((x, i) => x + t.vgem[i]! + t.teardown[i]!);
    median_ms[layer] = { ...m, cycle: summarize(cycle).median };
    for (const s of STEPS) o.samples.keep(`B1steps.${layer}.${s}`, t[s]);
  }
  const fmt = (x: number) => x.toFixed(3);
  for (const [layer, m] of Object.entries(median_ms))
    o.log(`B1 steps ${layer.padEnd(6)}: import ${fmt(m.import)}  vgem ${fmt(m.vgem)}  teardown ${fmt(m.teardown)}  cycle ${fmt(m.cycle)} ms`);
  o.log(`B1 steps probes (µs, median of 1000; the JS ones include a clock pair): ${JSON.stringify(probes_us)}`);
  const cyc = (l: string) => median_ms[l]!.cycle;
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  return {
    pages, cycles: o.cycles, median_ms, probes_us,
    ratio: { c_mt: r3(cyc('c_mt') / cyc('c_2018')), napi: r3(cyc('napi') / cyc('c_2018')), lib: r3(cyc('lib') / cyc('c_2018')) },
    addon_ms: r3(cyc('napi') - cyc('c_2018')), js_ms: r3(cyc('lib') - cyc('napi')),
  };
}

/** The table row of a B1 steps result. */
export function b1StepsRow(r: B1Steps): Row {
  const m = (l: string) => r.median_ms[l]!.cycle.toFixed(3);
  return {
    id: 'B1 steps', what: `the sync cycle at ${r.pages} page(s) by layer (ms): C, the addon called directly, the library`,
    result: `C ${m('c_2018')} (wait fd ${m('c_fd')}, 16 idle threads ${m('c_mt')}), addon ${m('napi')} (${r.ratio.napi}x), library ${m('lib')} (${r.ratio.lib}x): ` +
      `addon +${r.addon_ms}, library JS +${r.js_ms}`,
    goal: '– (explains B1 at 1 page)', met: undefined,
  };
}
