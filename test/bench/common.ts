/**
 * What the benchmark entry points share (run.ts on x86-64, arm64.ts on the
 * arm64 harness): the log, the C side (zcbench) as a child process, raw
 * samples, and the event-loop delay sampling of B1 and B4.
 */
import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type PerformanceEntry, PerformanceObserver, type RecordableHistogram } from 'node:perf_hooks';

import { gapsOutside, summarize } from './stats.js';

const t0 = performance.now();
/** One progress line, stamped with seconds since the process started benchmarking. */
export const log = (m: string): void =>
  console.log(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}`);

/** Where results go: $XZC_OUT/bench-results (the harness copies it back). */
export const outDir = join(process.env.XZC_OUT ?? '.', 'bench-results');

/** A file of refs, one per line, for zcbench. */
export function refsFile(refs: Uint32Array, name: string): string {
  const f = join('/tmp', name);
  writeFileSync(f, `${Array.from(refs).join('\n')}\n`);
  return f;
}

/**
 * Runs zcbench: its output lines, each split into fields of ns turned into ms.
 * Asynchronous: the event loop, and the delay sampler, run on meanwhile.
 */
export function zcbench(args: string[], env: NodeJS.ProcessEnv = {}): Promise<number[][]> {
  const bin = process.env.XZC_ZCBENCH;
  if (!bin) return Promise.reject(new Error('XZC_ZCBENCH is not set: run the benchmarks with npm run bench'));
  return new Promise((resolve, reject) => {
    execFile(bin, args, { encoding: 'utf8', maxBuffer: 1 << 24, env: { ...process.env, ...env } }, (err, stdout) =>
      err ? reject(err) : resolve(stdout.trim().split('\n').map((l) => l.split(' ').map((x) => Number(x) / 1e6))));
  });
}

/** zcbench's one-number-per-line modes: ms per cycle. */
export async function runC(args: string[]): Promise<number[]> {
  return (await zcbench(args)).map((fields) => fields[0]!);
}

/** Raw samples, kept next to the summaries (bench-results/samples*.json). */
export class Samples {
  readonly all: Record<string, number[]> = {};
  keep(name: string, xs: number[]): number[] {
    this.all[name] = xs.map((x) => Math.round(x * 1e4) / 1e4);
    return xs;
  }
}

export interface Lag { p50_ms: number; p99_ms: number; n: number }
export const lagOf = (h: RecordableHistogram): Lag => ({ p50_ms: h.percentile(50) / 1e6, p99_ms: h.percentile(99) / 1e6, n: h.count });

/**
 * Event-loop delay sampling: a 10 ms interval timer recording the time
 * between its ticks (10 ms when the loop is free) into `into`. Started and
 * stopped around each block (Node's monitorEventLoopDelay, disabled and
 * enabled again, records the whole gap as one delay, which charged C's and
 * the sync path's blocks to the async path). The idle probe runs this same
 * function. Values in ns. With `trace`, each sample is also kept as a pair
 * (CLOCK_MONOTONIC in ms, the gap in ms): the clock is the system's, so the
 * traces of two processes line up.
 */
export function sampleInto(into: RecordableHistogram, trace?: number[]): () => void {
  let prev = process.hrtime.bigint();
  const t = setInterval(() => {
    const now = process.hrtime.bigint();
    into.record(Number(now - prev));
    if (trace) trace.push(Number(now / 1000n) / 1000, Number((now - prev) / 1000n) / 1000);
    prev = now;
  }, 10);
  return () => clearInterval(t);
}

/** The system's monotonic clock in ms, as the traces of sampleInto stamp their samples. */
export const monoMs = (): number => Number(process.hrtime.bigint() / 1000n) / 1000;

/**
 * V8's GC pauses in this process until the returned function's promise
 * settles, appended to `into` as triples (start on CLOCK_MONOTONIC in ms, as
 * the delay traces, duration in ms, kind: 1 scavenge, 4 mark-compact, 8
 * incremental marking, 16 weak callbacks). The idle probe records its own
 * the same way.
 */
export function gcPausesInto(into: number[]): () => Promise<void> {
  return gcPausesWith(into, PerformanceObserver, monoMs);
}

/** gcPausesInto with what it uses passed in, so the idle probe can run its source. */
function gcPausesWith(into: number[], PO: typeof PerformanceObserver, mono: () => number): () => Promise<void> {
  // performance.now() and hrtime share a clock: one offset lines them up.
  // No named inner functions: the bundler would wrap them in a helper the
  // probe's copy of this source does not have.
  const offset = mono() - performance.now();
  const seen: PerformanceEntry[] = [];
  const obs = new PO((list) => {
    seen.push(...list.getEntries());
  });
  obs.observe({ entryTypes: ['gc'] });
  return async () => {
    // Node queues a GC's entry from the collector as an immediate: one turn
    // of the check phase lets a pause of the last turn reach the observer
    await new Promise((r) => setImmediate(r));
    seen.push(...obs.takeRecords());
    obs.disconnect();
    for (const e of seen) into.push(e.startTime + offset, e.duration, (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0);
  };
}

export async function monitored<T>(into: RecordableHistogram, fn: () => Promise<T>, trace?: number[], gc?: number[]): Promise<T> {
  const stop = sampleInto(into, trace);
  const stopGc = gc ? gcPausesInto(gc) : undefined;
  try {
    return await fn();
  } finally {
    stop();
    await stopGc?.();
  }
}

/** One process's GC pauses in a window (from gcPausesInto's triples). */
export interface GcPauses { pauses: number; total_ms: number; max_ms: number }
const gcOf = (p: readonly number[]): GcPauses => {
  const d = p.filter((_, i) => i % 3 === 1);
  return { pauses: d.length, total_ms: Math.round(d.reduce((a, b) => a + b, 0) * 100) / 100, max_ms: Math.round(Math.max(0, ...d) * 100) / 100 };
};

/**
 * B4's GC view of one window: each process's GC pauses, and both p99s from
 * the raw samples, with every sample and without those a GC pause of that
 * process overlaps (the same interpolated quantile for both; it can differ
 * from the histogram's p99, which the goal uses, by a few ms when the longest
 * samples are few and far apart). A diagnostic (what of the backend's delay
 * is V8's collector), not the goal's figure.
 */
export function gcView(backend: { trace: number[]; gc: number[] }, idle: { trace: number[]; gc: number[] }) {
  const p99 = (xs: number[]) => Math.round(summarize(xs).p99 * 100) / 100;
  const all = (x: { trace: number[] }) => p99(x.trace.filter((_, i) => i % 2 === 1));
  const outside = (x: { trace: number[]; gc: number[] }) => p99(gapsOutside(x.trace, x.gc));
  return {
    backend: gcOf(backend.gc),
    idle: gcOf(idle.gc),
    p99_ms_all: { backend: all(backend), idle: all(idle) },
    p99_ms_outside_gc: { backend: outside(backend), idle: outside(idle) },
  };
}

/**
 * A second Node process that does nothing but measure its own event-loop
 * delay at the same resolution: the VM's scheduling noise, measured in the
 * same window as the backend's.
 */
export async function idleProbe(): Promise<{ stop(): Promise<Lag & { trace: number[]; gc: number[] }> }> {
  const child = spawn(process.execPath, ['-e', `
    const h = require('node:perf_hooks').createHistogram();
    const trace = [];
    const gc = [];
    const stop = (${sampleInto.toString()})(h, trace);
    const stopGc = (${gcPausesWith.toString()})(gc, require('node:perf_hooks').PerformanceObserver, ${monoMs.toString()});
    console.log('ready');
    process.stdin.resume();
    process.stdin.on('end', async () => {
      stop();
      await stopGc();
      console.log(JSON.stringify({ p50_ms: h.percentile(50) / 1e6, p99_ms: h.percentile(99) / 1e6, n: h.count, trace, gc }));
    });`], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  // Node starts slowly under TCG: the window opens once the probe samples
  const ready = new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('ready\n')) resolve();
  }));
  const done = new Promise<void>((r) => child.on('exit', () => r()));
  await ready;
  return {
    async stop() {
      child.stdin.end();
      await done;
      return JSON.parse(out.slice(out.indexOf('ready\n') + 6)) as Lag & { trace: number[]; gc: number[] };
    },
  };
}

/**
 * CPU per wake-up of a process that sleeps and does nothing else (ms, the
 * scheduler's count from /proc/thread-self/schedstat): zcbench's poll loop
 * and a Node process's interval timer, `cycles` wake-ups `ms` apart. What a
 * wake-up costs on this machine, whatever the process then does.
 */
export async function wakeCost(cycles = 60, ms = 100): Promise<{ c_ms: number; node_ms: number }> {
  // the C twin needs zcbench (npm run bench builds it); without it, NaN (null in JSON)
  const c = process.env.XZC_ZCBENCH ? ((await zcbench(['wake', String(cycles), String(ms)])) as [[number]])[0][0] : NaN;
  const node = await new Promise<number>((resolve, reject) => {
    // the first second lets V8 settle (startup, first compiles)
    execFile(process.execPath, ['-e', `
      const rt = () => Number(require('node:fs').readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
      setTimeout(() => {
        const a = rt();
        let n = 0;
        const t = setInterval(() => {
          if (++n < ${cycles}) return;
          clearInterval(t);
          console.log((rt() - a) / n);
        }, ${ms});
      }, 1000);`], { encoding: 'utf8' }, (err, out) => (err ? reject(err) : resolve(Number(out) / 1e6)));
  });
  return { c_ms: c, node_ms: node };
}

