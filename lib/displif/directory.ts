/**
 * Xen PV display protocol (displif) grant-reference page directories: the
 * frontend passes the refs of a buffer's pages in a chain of 4 KiB directory
 * pages, each `{ gref_dir_next_page, gref[1023] }`, the last with next = 0.
 *
 * @module
 */
import { ValidationError } from '../errors.js';

/** Data refs per directory page (4096 / 4 - 1). */
export const REFS_PER_DIRECTORY_PAGE = 1023;

/** Directory pages needed for `numRefs` data refs. */
export function directoryPages(numRefs: number): number {
  return Math.ceil(numRefs / REFS_PER_DIRECTORY_PAGE);
}

/**
 * Builds the directory pages' contents (frontend side): `dirRefs[i]` is the
 * grant ref of directory page i. Returns one Uint32Array(1024) per page.
 */
export function buildPageDirectory(dataRefs: Uint32Array, dirRefs: Uint32Array): Uint32Array[] {
  const n = directoryPages(dataRefs.length);
  if (dirRefs.length !== n) throw new ValidationError(`${dataRefs.length} refs need ${n} directory pages, got ${dirRefs.length} directory refs`);
  const pages: Uint32Array[] = [];
  for (let p = 0; p < n; p++) {
    const page = new Uint32Array(1024);
    page[0] = p + 1 < n ? dirRefs[p + 1]! : 0;
    page.set(dataRefs.subarray(p * REFS_PER_DIRECTORY_PAGE, (p + 1) * REFS_PER_DIRECTORY_PAGE), 1);
    pages.push(page);
  }
  return pages;
}

/**
 * Reads a page directory (backend side): `readPage(ref)` returns the 1024
 * words of a mapped directory page. Rejects ref 0 in data positions, a chain
 * that ends early or does not end, and a loop.
 */
export function parsePageDirectory(firstDirRef: number, numRefs: number, readPage: (ref: number) => Uint32Array): Uint32Array {
  if (!Number.isInteger(numRefs) || numRefs < 1) throw new ValidationError(`numRefs must be a positive integer, got ${numRefs}`);
  const out = new Uint32Array(numRefs);
  const seen = new Set<number>();
  let ref = firstDirRef;
  for (let p = 0, got = 0; got < numRefs; p++) {
    if (ref === 0) throw new ValidationError(`page directory ends after ${got} of ${numRefs} refs`);
    if (seen.has(ref)) throw new ValidationError(`page directory loops at ref ${ref}`);
    seen.add(ref);
    const page = readPage(ref);
    const take = Math.min(REFS_PER_DIRECTORY_PAGE, numRefs - got);
    for (let i = 0; i < take; i++) {
      const r = page[1 + i]!;
      if (r === 0) throw new ValidationError(`data ref ${got + i} (directory page ${p}, slot ${i}) is 0`);
      out[got + i] = r;
    }
    got += take;
    ref = page[0]!;
    if (got === numRefs && ref !== 0) throw new ValidationError(`page directory continues after ${numRefs} refs (next ${ref})`);
  }
  return out;
}
