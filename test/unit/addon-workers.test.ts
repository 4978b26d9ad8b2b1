/**
 * The real addon (npm ci always builds it) under worker_threads: per-environment
 * mapping registries and pools, pool lanes and environment teardown. The
 * scenarios run in a child process so that a crash (SIGSEGV) is a failed
 * assertion, not a dead test runner.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import type { NativeBinding } from '../../lib/binding.js';

// XZC_TEST_ADDON=<path to a .node> runs the same checks against another build.
const addon = process.env.XZC_TEST_ADDON ?? resolve('build/Release/xen_zcopy.node');
const dir = mkdtempSync(join(tmpdir(), 'xzc-addon-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs an ES module script in a fresh node; returns its status, signal and output. */
function runScript(name: string, source: string, timeoutMs = 60_000) {
  const file = join(dir, name);
  writeFileSync(file, source);
  const r = spawnSync(process.execPath, ['--expose-gc', file], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, signal: r.signal, out: r.stdout + r.stderr };
}

describe('addon under worker_threads', () => {
  it('maps and unmaps from several workers at once without crashing (per-environment mapping registry)', () => {
    const r = runScript('mmap-workers.mjs', `
      import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
      import { createRequire } from 'node:module';
      import { openSync, writeFileSync, closeSync } from 'node:fs';
      const b = createRequire(import.meta.url)(${JSON.stringify(addon)});
      if (isMainThread) {
        const file = ${JSON.stringify(join(dir, 'data'))};
        writeFileSync(file, Buffer.alloc(64 * 4096, 7));
        const workers = Array.from({ length: 6 }, (_, i) => new Worker(new URL(import.meta.url), { workerData: { file, i } }));
        const results = await Promise.all(workers.map((w) => new Promise((res, rej) => { w.on('message', res); w.on('error', rej); })));
        console.log('ok', results.reduce((a, n) => a + n, 0));
      } else {
        const fd = openSync(workerData.file, 'r');
        let n = 0;
        for (let i = 0; i < 4000; i++) {
          const len = 4096 * (1 + ((i + workerData.i) % 64));
          const ab = b.mmap(fd, len, 1, 0);
          if (new Uint8Array(ab)[len - 1] !== 7) throw new Error('bad data');
          if (i % 3 === 0) { if (!b.munmap(ab)) throw new Error('munmap false'); } // the rest: the GC unmaps
          if (i % 500 === 0) globalThis.gc();
          n++;
        }
        closeSync(fd);
        parentPort.postMessage(n);
      }
    `);
    expect(r, r.out).toMatchObject({ status: 0, signal: null });
    expect(r.out).toContain('ok 24000');
  }, 60_000);

  it('terminates a worker at once while one of its waits blocks a pool thread', () => {
    const r = runScript('terminate.mjs', `
      import { Worker, isMainThread, parentPort } from 'node:worker_threads';
      import { createRequire } from 'node:module';
      const b = createRequire(import.meta.url)(${JSON.stringify(addon)});
      if (isMainThread) {
        const w = new Worker(new URL(import.meta.url));
        await new Promise((res) => w.on('message', res));
        const t0 = Date.now();
        await w.terminate();
        console.log('terminated-ms', Date.now() - t0);
      } else {
        b.poolTestSleep('wait', 20000); // a wait stuck in the kernel for 20 s
        b.poolTestSleep('work', 20000);
        b.poolTestSleep('work', 1);      // queued or running: dropped at teardown
        setTimeout(() => parentPort.postMessage('ready'), 100);
        setInterval(() => {}, 1000);
      }
    `, 40_000);
    expect(r, r.out).toMatchObject({ status: 0, signal: null });
    const ms = Number(/terminated-ms (\d+)/.exec(r.out)?.[1]);
    expect(ms).toBeLessThan(3000);
  }, 60_000);
});

describe('pool lanes', () => {
  const b = createRequire(import.meta.url)(addon) as NativeBinding;
  const timed = async (p: Promise<unknown>) => {
    const t0 = performance.now();
    await p;
    return performance.now() - t0;
  };

  it('starts a thread for a job submitted in the same tick as a long one (idle threads counted right)', async () => {
    await b.poolTestSleep('work', 1); // leaves one idle work thread behind
    await new Promise((r) => setTimeout(r, 50));
    const long = b.poolTestSleep('work', 1000);
    const short = await timed(b.poolTestSleep('work', 1));
    expect(short).toBeLessThan(500);
    await long;
  }, 20_000);

  it('never queues short work behind pending waits', async () => {
    const waits = Array.from({ length: 20 }, () => b.poolTestSleep('wait', 1500));
    await new Promise((r) => setTimeout(r, 50));
    const stats = b.poolStats();
    const short = await timed(b.poolTestSleep('work', 1));
    expect(short).toBeLessThan(500);
    expect(stats.lanes.wait).toMatchObject({ threads: 16, queued: 4 }); // bounded
    await Promise.all(waits);
    expect(b.poolStats().outstanding).toBe(0);
  }, 20_000);
});
