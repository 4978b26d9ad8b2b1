/**
 * Median and spread of the key figures over the last N `npm run bench` runs
 * (bench.sh keeps each x86-64 run's latest.json and samples.json under
 * .cache/bench/runs/<time>/, each arm64 run's arm64.json and
 * samples-arm64.json under .cache/bench/runs-arm64/<time>/). Writes
 * bench-results/summary.{json,md}, and puts the newest arm64 run in
 * bench-results/ and under `arm64` in latest.json.
 *
 *   node --import tsx test/bench/aggregate.ts [N=3]
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const repo = join(import.meta.dirname, '..', '..');
const runsDir = join(repo, '.cache', 'bench', 'runs');
const n = Number(process.argv[2] ?? 3);

type Json = Record<string, unknown>;
const out = join(repo, 'bench-results');

/** The last n runs under dir that hold file, oldest first. */
function lastRuns(dir: string, file: string) {
  return (existsSync(dir) ? readdirSync(dir).sort() : [])
    .filter((d) => existsSync(join(dir, d, file)))
    .slice(-n)
    .map((d) => ({ id: d, dir: join(dir, d), r: JSON.parse(readFileSync(join(dir, d, file), 'utf8')) as Json }));
}
const runs = lastRuns(runsDir, 'latest.json');
const armRuns = lastRuns(`${runsDir}-arm64`, 'arm64.json');
if (runs.length === 0 && armRuns.length === 0) {
  console.error(`no runs under ${runsDir} or ${runsDir}-arm64: run npm run bench first`);
  process.exit(1);
}

// latest.json (the newest x86-64 run, as the harness copied it) gets the newest arm64 run
const newestArm = armRuns.at(-1);
if (newestArm) {
  mkdirSync(out, { recursive: true });
  for (const f of ['arm64.json', 'samples-arm64.json']) copyFileSync(join(newestArm.dir, f), join(out, f));
  const latest = join(out, 'latest.json');
  if (existsSync(latest)) {
    const l = JSON.parse(readFileSync(latest, 'utf8')) as Json;
    l.arm64 = { run: newestArm.id, ...newestArm.r };
    writeFileSync(latest, `${JSON.stringify(l, null, 2)}\n`);
  }
}

/** Value at a dotted path, or undefined. */
function at(o: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Json)[k] : undefined), o);
}

interface Figure { key: string; what: string; goal: string; ok: (v: number) => boolean; count?: true }
const figures: Figure[] = [
  { key: 'B1.ratio', what: 'B1 Node/C, 2025 pages', goal: '≤ 1.05', ok: (v) => v <= 1.05 },
  { key: 'B1.ratio_by_pages.16', what: 'B1 Node/C, 16 pages', goal: '–', ok: () => true },
  { key: 'B1.ratio_by_pages.1', what: 'B1 Node/C, 1 page', goal: '≤ 1.2', ok: (v) => v <= 1.2 },
  { key: 'B1.ratio_sync', what: 'B1 Node (sync API)/C, 2025 pages', goal: '≤ 1.05', ok: (v) => v <= 1.05 },
  { key: 'B1.ratio_sync_by_pages.16', what: 'B1 Node (sync API)/C, 16 pages', goal: '–', ok: () => true },
  { key: 'B1.ratio_sync_by_pages.1', what: 'B1 Node (sync API)/C, 1 page', goal: '≤ 1.2', ok: (v) => v <= 1.2 },
  { key: 'B1.steps.ratio.c_mt', what: 'B1 steps, 1 page: C with 16 idle threads / C', goal: '–', ok: () => true },
  { key: 'B1.steps.ratio.napi', what: 'B1 steps, 1 page: the addon called directly / C', goal: '–', ok: () => true },
  { key: 'B1.steps.ratio.lib', what: 'B1 steps, 1 page: the library (sync) / C', goal: '–', ok: () => true },
  { key: 'B1.steps.addon_ms', what: 'B1 steps, 1 page: ms the addon adds to C', goal: '–', ok: () => true },
  { key: 'B1.steps.js_ms', what: 'B1 steps, 1 page: ms the library\'s JS adds', goal: '–', ok: () => true },
  ...[1, 16, 256, 2025, 8100].map((p) => ({ key: `B3.ratio.${p}`, what: `B3 C import / C gntdev, ${p} pages`, goal: '≤ 1.2', ok: (v: number) => v <= 1.2 })),
  { key: 'B4.ratio_vs_idle', what: 'B4 event-loop p99, backend / idle Node', goal: '≤ 1.5', ok: (v) => v <= 1.5 },
  { key: 'B4.p99_ms', what: 'B4 p99 beyond the idle baseline (ms)', goal: '< 5', ok: (v) => v < 5 },
  { key: 'B4.during_b1.backend.p99_ms', what: 'B4 imports window: backend p99 (ms)', goal: '–', ok: () => true },
  { key: 'B4.during_b1.idle.p99_ms', what: 'B4 imports window: idle Node p99 (ms)', goal: '–', ok: () => true },
  { key: 'B4.during_b1.gc.backend.pauses', what: 'B4 imports window: the backend\'s GC pauses', goal: '–', ok: () => true, count: true },
  { key: 'B4.during_b1.gc.backend.total_ms', what: 'B4 imports window: the backend\'s GC pauses, total (ms)', goal: '–', ok: () => true },
  { key: 'B4.during_b1.gc.p99_ms_all.backend', what: 'B4 imports window: backend p99 from the raw samples (ms)', goal: '–', ok: () => true },
  { key: 'B4.during_b1.gc.p99_ms_all.idle', what: 'B4 imports window: idle p99 from the raw samples (ms)', goal: '–', ok: () => true },
  { key: 'B4.during_b1.gc.p99_ms_outside_gc.backend', what: 'B4 imports window: backend p99 without the samples a GC pause overlaps (ms)', goal: '–', ok: () => true },
  { key: 'B4.during_b1.gc.p99_ms_outside_gc.idle', what: 'B4 imports window: idle p99 the same way (ms)', goal: '–', ok: () => true },
  { key: 'B4.waits16.backend.p99_ms', what: 'B4 16-wait window: backend p99 (ms)', goal: '–', ok: () => true },
  { key: 'B4.waits16.idle.p99_ms', what: 'B4 16-wait window: idle Node p99 (ms)', goal: '–', ok: () => true },
  { key: 'B5.max_buffers', what: 'B5 live 8 MiB buffers, one guest', goal: '≥ 64', ok: (v) => v >= 64, count: true },
  { key: 'B5.several_guests.max_buffers', what: 'B5 live 8 MiB buffers, two guests', goal: '≥ 128', ok: (v) => v >= 128, count: true },
  { key: 'B6.ratio_backend_cpu', what: 'B6 backend CPU/frame, copy / zero copy (1080p)', goal: '≥ 20', ok: (v) => v >= 20 },
  { key: 'B6.ratio_dom0_cpu', what: 'B6 Dom0 CPU/frame, copy / zero copy (1080p)', goal: '–', ok: () => true },
  { key: 'B6.fps_zero_copy', what: 'B6 guest fps, zero copy (1080p)', goal: '≥ copy mode', ok: (v) => v >= fpsCopy() },
  { key: 'B6.fps_copy', what: 'B6 guest fps, copy mode (1080p)', goal: '–', ok: () => true },
  { key: 'B6.wake_ms.node_ms', what: 'B6 probe: CPU per bare wake-up, Node (ms)', goal: '–', ok: () => true },
  { key: 'B6.wake_ms.c_ms', what: 'B6 probe: CPU per bare wake-up, C (ms)', goal: '–', ok: () => true },
  { key: 'B6.floor_ms_per_frame', what: 'B6 zero copy: wake-ups per frame × a bare Node wake-up (ms)', goal: '–', ok: () => true },
  { key: 'B6.ratio_ceiling', what: 'B6 the best copy / zero copy ratio that floor allows', goal: '–', ok: () => true },
];

/** On arm64 (bench.sh's arm64 step: B1 and B3 only), the same goals. */
const armFigures: Figure[] = figures
  .filter((f) => f.key.startsWith('B1.') || f.key.startsWith('B3.'))
  .map((f) => ({ ...f, what: `arm64: ${f.what}` }));

function fpsCopy(): number {
  return median(runs.map((x) => at(x.r, 'B6.fps_copy')).filter((v): v is number => typeof v === 'number'));
}
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const fmt = (v: number, count?: true) =>
  count ? String(v) : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);

const summary: Json = { runs: runs.map((x) => x.id), arm64_runs: armRuns.map((x) => x.id) };
const lines: string[] = [];
function table(set: typeof runs, figs: Figure[], title: string, keyPrefix: string): void {
  if (set.length === 0) return;
  lines.push(
    `${title}: median over ${set.length} run(s) (${set.map((x) => x.id).join(', ')}), [min – max]:`,
    '',
    '| figure | median | spread [min – max] | goal | met |',
    '|---|---|---|---|---|',
  );
  for (const f of figs) {
    const vals = set.map((x) => at(x.r, f.key)).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    if (vals.length === 0) continue;
    const m = median(vals);
    summary[keyPrefix + f.key] = { median: m, min: Math.min(...vals), max: Math.max(...vals), values: vals };
    const met = f.goal === '–' ? '–' : f.ok(m) ? 'yes' : 'no';
    lines.push(`| ${f.what} | ${fmt(m, f.count)} | ${fmt(Math.min(...vals), f.count)} – ${fmt(Math.max(...vals), f.count)} | ${f.goal} | ${met} |`);
  }
  lines.push('');
}
table(runs, figures, 'x86-64 (PV Dom0)', '');
table(armRuns, armFigures, 'arm64 (auto-translated Dom0)', 'arm64.');
const limits = runs.map((x) => at(x.r, 'B5.first_limit')).filter((v) => typeof v === 'string');
if (limits.length) lines.push(`B5 first limit (last run): ${String(limits.at(-1))}`);
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
writeFileSync(join(out, 'summary.md'), `${lines.join('\n')}\n`);
console.log(lines.join('\n'));
