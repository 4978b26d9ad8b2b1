/**
 * Median and spread of the key figures over the last N `npm run bench` runs
 * (bench.sh keeps each run's latest.json and samples.json under
 * .cache/bench/runs/<time>/). Writes bench-results/summary.{json,md}.
 *
 *   node --import tsx test/bench/aggregate.ts [N=3]
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const repo = join(import.meta.dirname, '..', '..');
const runsDir = join(repo, '.cache', 'bench', 'runs');
const n = Number(process.argv[2] ?? 3);

type Json = Record<string, unknown>;
const runs = (existsSync(runsDir) ? readdirSync(runsDir).sort() : [])
  .filter((d) => existsSync(join(runsDir, d, 'latest.json')))
  .slice(-n)
  .map((d) => ({ id: d, r: JSON.parse(readFileSync(join(runsDir, d, 'latest.json'), 'utf8')) as Json }));
if (runs.length === 0) {
  console.error(`no runs under ${runsDir}: run npm run bench first`);
  process.exit(1);
}

/** Value at a dotted path, or undefined. */
function at(o: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Json)[k] : undefined), o);
}

interface Figure { key: string; what: string; goal: string; ok: (v: number) => boolean }
const figures: Figure[] = [
  { key: 'B1.ratio', what: 'B1 Node/C, 2025 pages', goal: '≤ 1.05', ok: (v) => v <= 1.05 },
  { key: 'B1.ratio_by_pages.16', what: 'B1 Node/C, 16 pages', goal: '–', ok: () => true },
  { key: 'B1.ratio_by_pages.1', what: 'B1 Node/C, 1 page', goal: '≤ 1.2', ok: (v) => v <= 1.2 },
  { key: 'B1.ratio_sync', what: 'B1 Node (sync API)/C, 2025 pages', goal: '≤ 1.05', ok: (v) => v <= 1.05 },
  { key: 'B1.ratio_sync_by_pages.16', what: 'B1 Node (sync API)/C, 16 pages', goal: '–', ok: () => true },
  { key: 'B1.ratio_sync_by_pages.1', what: 'B1 Node (sync API)/C, 1 page', goal: '≤ 1.2', ok: (v) => v <= 1.2 },
  ...[1, 16, 256, 2025, 8100].map((p) => ({ key: `B3.ratio.${p}`, what: `B3 C import / C gntdev, ${p} pages`, goal: '≤ 1.2', ok: (v: number) => v <= 1.2 })),
  { key: 'B4.ratio_vs_idle', what: 'B4 event-loop p99, backend / idle Node', goal: '≤ 1.5', ok: (v) => v <= 1.5 },
  { key: 'B4.p99_ms', what: 'B4 p99 beyond the idle baseline (ms)', goal: '< 5', ok: (v) => v < 5 },
  { key: 'B5.max_buffers', what: 'B5 live 8 MiB buffers, one guest', goal: '≥ 64', ok: (v) => v >= 64 },
  { key: 'B5.several_guests.max_buffers', what: 'B5 live 8 MiB buffers, two guests', goal: '≥ 128', ok: (v) => v >= 128 },
  { key: 'B6.ratio_backend_cpu', what: 'B6 backend CPU/frame, copy / zero copy (1080p)', goal: '≥ 20', ok: (v) => v >= 20 },
  { key: 'B6.ratio_dom0_cpu', what: 'B6 Dom0 CPU/frame, copy / zero copy (1080p)', goal: '–', ok: () => true },
  { key: 'B6.fps_zero_copy', what: 'B6 guest fps, zero copy (1080p)', goal: '≥ copy mode', ok: (v) => v >= fpsCopy() },
  { key: 'B6.fps_copy', what: 'B6 guest fps, copy mode (1080p)', goal: '–', ok: () => true },
];

function fpsCopy(): number {
  return median(runs.map((x) => at(x.r, 'B6.fps_copy')).filter((v): v is number => typeof v === 'number'));
}
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

const summary: Json = { runs: runs.map((x) => x.id) };
const lines = [
  `Median over ${runs.length} run(s) (${runs.map((x) => x.id).join(', ')}), [min – max]:`,
  '',
  '| figure | median | spread [min – max] | goal | met |',
  '|---|---|---|---|---|',
];
for (const f of figures) {
  const vals = runs.map((x) => at(x.r, f.key)).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (vals.length === 0) continue;
  const m = median(vals);
  summary[f.key] = { median: m, min: Math.min(...vals), max: Math.max(...vals), values: vals };
  const met = f.goal === '–' ? '–' : f.ok(m) ? 'yes' : 'no';
  lines.push(`| ${f.what} | ${fmt(m)} | ${fmt(Math.min(...vals))} – ${fmt(Math.max(...vals))} | ${f.goal} | ${met} |`);
}
const limits = runs.map((x) => at(x.r, 'B5.first_limit')).filter((v) => typeof v === 'string');
if (limits.length) lines.push('', `B5 first limit (last run): ${String(limits.at(-1))}`);
const out = join(repo, 'bench-results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
writeFileSync(join(out, 'summary.md'), `${lines.join('\n')}\n`);
console.log(lines.join('\n'));
