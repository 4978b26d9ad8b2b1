/**
 * The fixture's test pattern: word `i` of a buffer filled with pattern(seed).
 * Mirrors `pattern_word()` in guest/xzc-guest.c exactly, so Dom0 and the DomU
 * can check each other's writes without shipping data around.
 */
export function patternWord(seed: number, i: number): number {
  let x = (Math.imul(seed, 0x9e3779b1) + i) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Fills `words` with pattern(seed), word 0 being pattern word `startWord`. */
export function fillPattern(words: Uint32Array, seed: number, startWord = 0): void {
  for (let i = 0; i < words.length; i++) words[i] = patternWord(seed, startWord + i);
}

/** Index of the first word that differs from pattern(seed), or -1. */
export function firstMismatch(words: Uint32Array, seed: number, startWord = 0): number {
  for (let i = 0; i < words.length; i++) {
    if (words[i] !== patternWord(seed, startWord + i)) return i;
  }
  return -1;
}
