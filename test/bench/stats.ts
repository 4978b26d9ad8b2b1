/** Summary statistics for benchmark samples. */
export interface Summary {
  n: number;
  median: number;
  p10: number;
  p90: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
  /** (p90 - p10) / median: the spread, relative to the median. */
  spread: number;
}

/** Linear-interpolated quantile of sorted samples, q in [0, 1]. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const median = quantile(s, 0.5);
  const p10 = quantile(s, 0.1);
  const p90 = quantile(s, 0.9);
  return {
    n: s.length,
    median,
    p10,
    p90,
    p99: quantile(s, 0.99),
    min: s[0] ?? Number.NaN,
    max: s[s.length - 1] ?? Number.NaN,
    mean: s.reduce((a, b) => a + b, 0) / (s.length || 1),
    spread: median === 0 ? 0 : (p90 - p10) / median,
  };
}

/** Ratio of two medians, rounded to 3 decimals. */
export function ratio(a: Summary, b: Summary): number {
  return Math.round((a.median / b.median) * 1000) / 1000;
}

/**
 * The event-loop delay samples of `trace` (pairs: the sample's end time, its
 * gap; ms) whose interval [end - gap, end] overlaps none of `pauses` (triples:
 * start, duration, kind; ms on the same clock): the samples no pause
 * touched (V8's GC pauses, in the bench). Whole samples are dropped, not
 * shortened by the pause.
 */
export function gapsOutside(trace: readonly number[], pauses: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < trace.length; i += 2) {
    const end = trace[i]!;
    const start = end - trace[i + 1]!;
    let hit = false;
    for (let j = 0; j + 1 < pauses.length && !hit; j += 3) hit = pauses[j]! < end && pauses[j]! + pauses[j + 1]! > start;
    if (!hit) out.push(trace[i + 1]!);
  }
  return out;
}
