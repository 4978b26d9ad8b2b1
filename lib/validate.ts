/**
 * Argument checks shared by the API: they throw a ValidationError naming
 * what was expected, before any system call is made.
 *
 * @module
 */
import { ValidationError } from './errors.js';

export const PAGE_SIZE = 4096;
/** Largest domain id a guest can have (DOMID_FIRST_RESERVED - 1). */
export const MAX_DOMID = 0x7fef;

export function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ValidationError(`${name} must be an integer in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}

/** Pages a width x height x bpp buffer needs, and its pitch. */
export function bufferGeometry(width: number, height: number, bpp: number): { pitch: number; size: number; pages: number } {
  checkInt('width', width, 1, 16384);
  checkInt('height', height, 1, 16384);
  checkInt('bpp', bpp, 8, 128);
  if (bpp % 8 !== 0) throw new ValidationError(`bpp must be a multiple of 8, got ${bpp}`);
  const pitch = (width * bpp) / 8;
  const size = pitch * height;
  return { pitch, size, pages: Math.ceil(size / PAGE_SIZE) };
}

const refMessage = (i: number, r: unknown) =>
  `refs[${i}] must be a grant reference in 1..2^32-1 (0 is never a data page), got ${String(r)}`;

/**
 * Validates grant references: integers, non-zero, no duplicates. Returns
 * them as a Uint32Array of the caller's own (a copy).
 */
export function checkRefs(refs: Uint32Array | readonly number[], expected?: number): Uint32Array {
  const arr = refArray(refs);
  if (expected !== undefined && arr.length < expected) {
    throw new ValidationError(`refs has ${arr.length} entries, the buffer needs ${expected} pages`);
  }
  const out = arr === refs ? arr.slice() : arr;
  const seen = new Set<number>();
  for (let i = 0; i < out.length; i++) {
    const r = out[i]!;
    if (r === 0) throw new ValidationError(refMessage(i, r));
    if (seen.has(r)) throw new ValidationError(`refs[${i}] repeats grant reference ${r}`);
    seen.add(r);
  }
  return out;
}

/**
 * Refs as the addon takes them: a Uint32Array as it is (every element is a
 * uint32; 0 and repeats are the addon's check, on its own copy), an array
 * converted after checking each element's type and range.
 */
export function refArray(refs: Uint32Array | readonly number[]): Uint32Array {
  if (refs instanceof Uint32Array) return refs;
  if (!Array.isArray(refs)) throw new ValidationError('refs must be a Uint32Array or an array of numbers');
  const out = new Uint32Array(refs.length);
  for (let i = 0; i < refs.length; i++) {
    const r: unknown = refs[i];
    if (typeof r !== 'number' || !Number.isInteger(r) || r < 0 || r > 0xffffffff) throw new ValidationError(refMessage(i, r));
    out[i] = r;
  }
  return out;
}

/** Runs `fn` so that its synchronous throws become a rejection. */
export function rejecting<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (e) {
    return Promise.reject(e);
  }
}
