/** The fixture pattern is deterministic and position-dependent. */
import { describe, expect, it } from 'vitest';

import { fillPattern, firstMismatch, patternWord } from '../xen/pattern.js';

describe('fixture pattern', () => {
  it('matches known words of the C implementation', () => {
    // Printed by `xzc-guest pattern 1 3` (guest/xzc-guest.c).
    expect([0, 1, 2].map((i) => patternWord(1, i))).toEqual([0x11fd02eb, 0xa64b3dd9, 0x7e32275d]);
  });

  it('finds the first differing word, honouring the start offset', () => {
    const w = new Uint32Array(1024);
    fillPattern(w, 42, 100);
    expect(firstMismatch(w, 42, 100)).toBe(-1);
    expect(firstMismatch(w, 42, 0)).toBe(0);
    w[777] = (w[777]! + 1) >>> 0;
    expect(firstMismatch(w, 42, 100)).toBe(777);
  });

  it('differs between seeds and positions', () => {
    const seen = new Set<number>();
    for (let seed = 0; seed < 8; seed++) for (let i = 0; i < 64; i++) seen.add(patternWord(seed, i));
    expect(seen.size).toBe(8 * 64);
  });
});
