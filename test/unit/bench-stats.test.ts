import { describe, expect, it } from 'vitest';

import { barChartSvg, markdownTable } from '../bench/report.js';
import { gapsOutside, quantile, ratio, summarize } from '../bench/stats.js';

describe('benchmark statistics', () => {
  it('interpolates quantiles and summarizes', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    const s = summarize([5, 1, 4, 2, 3]);
    expect(s).toMatchObject({ n: 5, median: 3, min: 1, max: 5, mean: 3 });
    expect(s.p10).toBeCloseTo(1.4);
    expect(s.spread).toBeCloseTo((4.6 - 1.4) / 3);
  });

  it('compares medians', () => {
    expect(ratio(summarize([2, 2, 2]), summarize([1, 1, 1]))).toBe(2);
  });

  it('drops the delay samples a pause overlaps', () => {
    // samples end at 10, 20, 45, 55 (gaps 10, 10, 25, 10); one pause 30..38, one 54..54.5
    const trace = [10, 10, 20, 10, 45, 25, 55, 10];
    expect(gapsOutside(trace, [30, 8, 1, 54, 0.5, 4])).toEqual([10, 10]);
    // touching an interval's edge is not overlapping it
    expect(gapsOutside(trace, [20, 0, 1])).toEqual([10, 10, 25, 10]);
    expect(gapsOutside(trace, [])).toEqual([10, 10, 25, 10]);
  });
});

describe('benchmark report', () => {
  it('renders a table and an SVG chart with escaped labels', () => {
    const md = markdownTable([{ id: 'B1', what: 'Node/C', result: '1.02', goal: '≤ 1.05', met: true }]);
    expect(md).toContain('| B1 | Node/C | 1.02 | ≤ 1.05 | yes |');
    const svg = barChartSvg('t<1>', [{ label: 'a&b', value: 2, goal: 1 }], 'x');
    expect(svg).toContain('t&lt;1&gt;');
    expect(svg).toContain('a&amp;b');
    expect(svg).toMatch(/<line /);
  });
});
