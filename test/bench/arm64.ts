/**
 * The benchmarks on arm64, the 2018 driver's own platform (an auto-translated
 * Dom0): B1 (Node vs C per import cycle, and its steps at 1 page) and B3 (the
 * kernel's import against gntdev's map), the same code as on x86-64 (b1.ts,
 * b1steps.ts, b3.ts). Run by
 * test/bench/bench.sh in the arm64 harness's Dom0 on Debian's Node 18, compiled
 * for it by test/xen/arm64/bundle.mjs. Writes $XZC_OUT/bench-results/arm64.json
 * (bench.sh puts it in latest.json under `arm64`) and samples-arm64.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { DrmDevice, ZeroCopyDevice } from '../../lib/index.js';
import { DomU } from '../xen/fixture.js';
import { FRAME_PAGES, runB1 } from './b1.js';
import { b1StepsRow, runB1Steps } from './b1steps.js';
import { runB3 } from './b3.js';
import { log, outDir, Samples } from './common.js';
import { markdownTable } from './report.js';

// as many cycles as on x86-64: an import cycle of Node 18 here costs about
// what Node 20's does in the x86-64 harness (both TCG)
const CYCLES = Number(process.env.XZC_BENCH_CYCLES ?? 200);
const samples = new Samples();
mkdirSync(outDir, { recursive: true });

log(`arm64: starting the DomU peer (256 MiB); Node ${process.version}`);
const guest = await DomU.start({ name: `xzc-bench-${process.pid}`, memoryMb: 256 });
const zc = ZeroCopyDevice.open();
const vgem = DrmDevice.open('vgem');
try {
  const frame = await guest.share({ pages: FRAME_PAGES, seed: 1 });
  const b1 = await runB1({ zc, vgem, domid: guest.domid, frame, cycles: CYCLES, samples, log });
  const steps = await runB1Steps({ zc, vgem, domid: guest.domid, refs: frame.refs.subarray(0, 1), cycles: CYCLES, samples, log });
  await guest.unshare(frame.id);
  const b3 = await runB3({ guest, samples, log });
  const results = {
    machine: {
      note: 'Xen 4.17 arm64 under qemu-system-aarch64 TCG on the x86-64 host (2 cores), auto-translated Dom0; compare ratios',
      node: process.version,
    },
    B1: { ...b1.json, steps },
    B3: b3.json,
  };
  writeFileSync(join(outDir, 'arm64.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(outDir, 'samples-arm64.json'), `${JSON.stringify(samples.all)}\n`);
  console.log(`\n${markdownTable([...b1.rows, b1StepsRow(steps), b3.row])}`);
} finally {
  await zc.close();
  await vgem.close();
  await guest.destroy();
}
log('done');
