/** Benchmark reporting: a Markdown table and an SVG bar chart of ratios. */

export interface Row {
  id: string;
  what: string;
  result: string;
  goal: string;
  met: boolean | undefined;
}

export function markdownTable(rows: readonly Row[]): string {
  const lines = ['| benchmark | what | result | goal | met |', '|---|---|---|---|---|'];
  for (const r of rows) {
    lines.push(`| ${r.id} | ${r.what} | ${r.result} | ${r.goal} | ${r.met === undefined ? '–' : r.met ? 'yes' : 'no'} |`);
  }
  return `${lines.join('\n')}\n`;
}

export interface Bar {
  label: string;
  value: number;
  /** A goal line to draw across the bar, same unit as value. */
  goal?: number;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A horizontal bar chart with a log-free linear scale per chart. */
export function barChartSvg(title: string, bars: readonly Bar[], unit: string): string {
  const width = 760;
  const rowH = 28;
  const left = 250;
  const top = 40;
  const height = top + bars.length * rowH + 30;
  const max = Math.max(1e-9, ...bars.map((b) => Math.max(b.value, b.goal ?? 0))) * 1.1;
  const scale = (v: number) => ((width - left - 80) * v) / max;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    parts.push(`<text x="10" y="${y + 17}">${esc(b.label)}</text>`);
    parts.push(`<rect x="${left}" y="${y + 4}" width="${scale(b.value).toFixed(1)}" height="${rowH - 10}" fill="#3b7dd8"/>`);
    parts.push(`<text x="${(left + scale(b.value) + 6).toFixed(1)}" y="${y + 17}">${b.value.toPrecision(3)} ${esc(unit)}</text>`);
    if (b.goal !== undefined) {
      const gx = (left + scale(b.goal)).toFixed(1);
      parts.push(`<line x1="${gx}" x2="${gx}" y1="${y + 1}" y2="${y + rowH - 3}" stroke="#d33" stroke-width="2"/>`);
    }
  });
  parts.push(`<text x="${left}" y="${height - 8}" fill="#d33">red mark: goal</text>`, '</svg>');
  return `${parts.join('\n')}\n`;
}
