import { describe, expect, it } from 'vitest';

import { buildPageDirectory, directoryPages, parsePageDirectory, ValidationError } from '../../lib/index.js';

const seq = (n: number, from: number) => Uint32Array.from({ length: n }, (_, i) => from + i);

describe('displif page directories', () => {
  it('round-trips a 1080p buffer (2025 refs over 2 directory pages)', () => {
    const data = seq(2025, 10);
    const dirs = seq(directoryPages(2025), 9000);
    expect(dirs.length).toBe(2);
    const pages = buildPageDirectory(data, dirs);
    expect(pages[0]![0]).toBe(9001);
    expect(pages[1]![0]).toBe(0);
    const byRef = new Map([[9000, pages[0]!], [9001, pages[1]!]]);
    expect(parsePageDirectory(9000, 2025, (r) => byRef.get(r)!)).toEqual(data);
  });

  it('rejects ref 0 in data, short chains, loops and overlong chains', () => {
    const data = seq(1023, 1);
    const [page] = buildPageDirectory(data, Uint32Array.of(77));
    const zero = Uint32Array.from(page!);
    zero[3] = 0;
    expect(() => parsePageDirectory(77, 5, () => zero)).toThrow(/data ref 2 .* is 0/);
    expect(() => parsePageDirectory(77, 2000, () => page!)).toThrow(/ends after 1023 of 2000/);
    const loop = Uint32Array.from(page!);
    loop[0] = 77;
    expect(() => parsePageDirectory(77, 2000, () => loop)).toThrow(/loops at ref 77/);
    expect(() => parsePageDirectory(77, 4, () => loop)).toThrow(/continues after 4 refs/);
    expect(() => buildPageDirectory(data, seq(2, 1))).toThrow(ValidationError);
  });
});
