/**
 * B3: the kernel's import cost against the hypercall floor, C against C:
 * zcbench's FROM_REFS + PRIME export + teardown against gntdev
 * MAP_GRANT_REF + mmap + touch + munmap + UNMAP of the same refs, by size.
 * Alternated in blocks, each block's warm-up cycle dropped, so both see the
 * same VM.
 */
import type { DomU } from '../xen/fixture.js';
import { refsFile, runC, type Samples } from './common.js';
import type { Row } from './report.js';
import { ratio, summarize, type Summary } from './stats.js';

export const B3_SIZES = [1, 16, 256, 2025, 8100];

export interface B3Result {
  json: { ratio: Record<string, number>; detail: Record<string, { import_ms: Summary; gntdev_ms: Summary; ratio: number }> };
  row: Row;
}

export async function runB3(o: { guest: DomU; samples: Samples; log(m: string): void; blocks?: number }): Promise<B3Result> {
  o.log('B3: C FROM_REFS + export + teardown vs C gntdev map + mmap + unmap, by size');
  const detail: B3Result['json']['detail'] = {};
  const big = await o.guest.share({ pages: Math.max(...B3_SIZES), seed: 4 });
  const bigRefs = refsFile(big.refs, 'b3.refs');
  const domid = String(o.guest.domid);
  for (const pages of B3_SIZES) {
    const n = pages >= 2025 ? 10 : 20;
    const imp: number[] = [];
    const gnt: number[] = [];
    for (let block = 0; block < (o.blocks ?? 4); block++) {
      imp.push(...(await runC(['import', domid, bigRefs, String(pages), String(n + 1)])).slice(1));
      gnt.push(...(await runC(['gntmap', domid, bigRefs, String(pages), String(n + 1)])).slice(1));
    }
    o.samples.keep(`B3.import.${pages}`, imp);
    o.samples.keep(`B3.gntdev.${pages}`, gnt);
    const r = { import_ms: summarize(imp), gntdev_ms: summarize(gnt), ratio: ratio(summarize(imp), summarize(gnt)) };
    detail[pages] = r;
    o.log(`B3 ${pages} pages: ${r.ratio}x (import ${r.import_ms.median.toFixed(3)} ms, gntdev ${r.gntdev_ms.median.toFixed(3)} ms)`);
  }
  await o.guest.unshare(big.id);
  const json = { ratio: Object.fromEntries(Object.entries(detail).map(([k, v]) => [k, v.ratio])), detail };
  const row: Row = {
    id: 'B3', what: 'kernel cost: C FROM_REFS + export + teardown / C gntdev map + mmap + unmap, by pages',
    result: Object.entries(detail).map(([k, v]) => `${k}: ${v.ratio}x`).join(', '), goal: '≤ 1.2x',
    met: Object.values(detail).every((v) => v.ratio <= 1.2),
  };
  return { json, row };
}
