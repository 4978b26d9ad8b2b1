/**
 * B1: Node vs C, the same import/teardown cycle (FROM_REFS, PRIME export, a
 * vgem import, teardown, the wait for the free), by size: 1 and 16 pages
 * (1024 x pages at 32 bpp) and a 1080p frame (2025 pages). Node's async API,
 * its opt-in sync API and zcbench's C alternate in blocks of 20 so all three
 * see the same VM. An event-loop delay sampler runs during both Node's async
 * blocks and C's (C runs as a child while the loop idles), so both pay for
 * its timer; an idle Node process measures the VM's own noise meanwhile
 * (B4's baseline).
 */
import { createHistogram } from 'node:perf_hooks';

import type { DrmDevice, ZeroCopyDevice } from '../../lib/index.js';
import type { SharedBuffer } from '../xen/fixture.js';
import { gcView, idleProbe, type Lag, lagOf, monoMs, monitored, refsFile, runC, type Samples } from './common.js';
import type { Row } from './report.js';
import { ratio, summarize, type Summary } from './stats.js';

export const FRAME_W = 1920;
export const FRAME_H = 1080;
export const FRAME_PAGES = (FRAME_W * FRAME_H * 4) / 4096;
const BLOCK = 20;

export interface B1Options {
  zc: ZeroCopyDevice;
  vgem: DrmDevice;
  domid: number;
  /** a guest buffer of at least FRAME_PAGES pages */
  frame: SharedBuffer;
  cycles: number;
  samples: Samples;
  log(m: string): void;
}

export interface B1Size { node_ms: Summary; node_sync_ms: Summary; c_ms: Summary; ratio: number; ratio_sync: number }

export interface B1Result {
  /** what latest.json keeps under B1 */
  json: {
    ratio: number; ratio_by_pages: Record<string, number>;
    ratio_sync: number; ratio_sync_by_pages: Record<string, number>;
    detail: Record<string, B1Size>; cycles: number; node_ms: Summary; c_ms: Summary;
  };
  rows: Row[];
  /** event-loop delay during the async blocks, C's blocks, and of the idle probe; both processes' GC pauses */
  lag: { backend: Lag; c_blocks: Lag; idle: Lag; gc: ReturnType<typeof gcView> };
}

const geometryOf = (pages: number) => (pages === FRAME_PAGES ? { w: FRAME_W, h: FRAME_H } : { w: 1024, h: pages });

export async function runB1(o: B1Options): Promise<B1Result> {
  const { zc, vgem, domid } = o;
  async function nodeCycles(refs: Uint32Array, pages: number, n: number): Promise<number[]> {
    const { w, h } = geometryOf(pages);
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = performance.now();
      const buf = await zc.importGuestBuffer({ domid, refs, width: w, height: h, bpp: 32 });
      vgem.importDmaBuf(buf.dmabuf);
      await buf.close();
      times.push(performance.now() - s);
    }
    return times;
  }
  /** The same cycle through the opt-in synchronous API: no hand-off to the addon's pool. */
  function nodeSyncCycles(refs: Uint32Array, pages: number, n: number): number[] {
    const { w, h } = geometryOf(pages);
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = performance.now();
      const buf = zc.importGuestBufferSync({ domid, refs, width: w, height: h, bpp: 32 });
      vgem.importDmaBuf(buf.dmabuf);
      if (buf.closeSync() !== 'freed') throw new Error('B1: a sync cycle left its buffer held');
      times.push(performance.now() - s);
    }
    return times;
  }

  const detail: Record<string, B1Size> = {};
  const lagNode = createHistogram();
  const lagC = createHistogram();
  // B4's traces of this window (samples.json): each delay sample as (time, gap), and the
  // blocks as (start, end, pages * 10 + 0 async | 1 C | 2 sync), and the GC pauses during the
  // async blocks as (start, duration, kind), all on CLOCK_MONOTONIC in ms
  const trace = { backend: [] as number[], c: [] as number[], blocks: [] as number[], gc: [] as number[] };
  const block = async <T>(kind: number, pages: number, fn: () => Promise<T> | T): Promise<T> => {
    const s = monoMs();
    try {
      return await fn();
    } finally {
      trace.blocks.push(s, monoMs(), pages * 10 + kind);
    }
  };
  const idle = await idleProbe();
  for (const pages of [1, 16, FRAME_PAGES]) {
    const refs = o.frame.refs.subarray(0, pages);
    const { w, h } = geometryOf(pages);
    const file = refsFile(refs, `b1-${pages}.refs`);
    const cArgs = (n: number) => ['cycle', String(domid), file, String(w), String(h), String(n)];
    o.log(`B1 ${pages} pages: warm-up, then ${o.cycles} cycles each of Node (async, sync) and C, alternated in blocks of ${BLOCK}`);
    await nodeCycles(refs, pages, 5);
    nodeSyncCycles(refs, pages, 5);
    await runC(cArgs(5));
    const node: number[] = [];
    const nodeSync: number[] = [];
    const c: number[] = [];
    for (let done = 0; done < o.cycles; done += BLOCK) {
      node.push(...(await block(0, pages, () => monitored(lagNode, () => nodeCycles(refs, pages, BLOCK), trace.backend, trace.gc))));
      c.push(...(await block(1, pages, () => monitored(lagC, () => runC(cArgs(BLOCK)), trace.c))));
      // the sync path blocks the loop by design: its delay is not B4's
      nodeSync.push(...(await block(2, pages, () => nodeSyncCycles(refs, pages, BLOCK))));
    }
    o.samples.keep(`B1.node.${pages}`, node);
    o.samples.keep(`B1.node_sync.${pages}`, nodeSync);
    o.samples.keep(`B1.c.${pages}`, c);
    const [sn, ss, sc] = [summarize(node), summarize(nodeSync), summarize(c)];
    detail[pages] = { node_ms: sn, node_sync_ms: ss, c_ms: sc, ratio: ratio(sn, sc), ratio_sync: ratio(ss, sc) };
    o.log(`B1 ${pages} pages: Node/C = ${detail[pages]!.ratio} (async), ${detail[pages]!.ratio_sync} (sync)`);
  }
  const { trace: idleTrace, gc: idleGc, ...idleLag } = await idle.stop();
  o.samples.keep('B4.imports.backend_trace', trace.backend);
  o.samples.keep('B4.imports.c_trace', trace.c);
  o.samples.keep('B4.imports.idle_trace', idleTrace);
  o.samples.keep('B4.imports.blocks', trace.blocks);
  o.samples.keep('B4.imports.backend_gc', trace.gc);
  o.samples.keep('B4.imports.idle_gc', idleGc);
  const frame = detail[FRAME_PAGES]!;
  const byPages = (k: 'ratio' | 'ratio_sync') => Object.fromEntries(Object.entries(detail).map(([p, v]) => [p, v[k]]));
  const json = {
    ratio: frame.ratio, ratio_by_pages: byPages('ratio'), ratio_sync: frame.ratio_sync, ratio_sync_by_pages: byPages('ratio_sync'),
    detail, cycles: o.cycles, node_ms: frame.node_ms, c_ms: frame.c_ms,
  };
  const rows: Row[] = [
    {
      id: 'B1', what: 'Node/C per import cycle (FROM_REFS + export + vgem import + teardown + wait), async API; by pages',
      result: Object.entries(detail).map(([k, v]) => `${k}: ${v.ratio} (Node ${v.node_ms.median.toFixed(2)} ms, C ${v.c_ms.median.toFixed(2)} ms)`).join('; '),
      goal: '≤ 1.05 at 2025, ≤ 1.2 at 1', met: json.ratio <= 1.05 && json.ratio_by_pages[1]! <= 1.2,
    },
    {
      id: 'B1s', what: 'the same through the synchronous API (importGuestBufferSync, closeSync)',
      result: Object.entries(detail).map(([k, v]) => `${k}: ${v.ratio_sync} (Node ${v.node_sync_ms.median.toFixed(2)} ms)`).join('; '),
      goal: '≤ 1.05 at 2025, ≤ 1.2 at 1', met: json.ratio_sync <= 1.05 && json.ratio_sync_by_pages[1]! <= 1.2,
    },
  ];
  const gc = gcView({ trace: trace.backend, gc: trace.gc }, { trace: idleTrace, gc: idleGc });
  return { json, rows, lag: { backend: lagOf(lagNode), c_blocks: lagOf(lagC), idle: idleLag, gc } };
}
