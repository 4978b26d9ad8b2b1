/**
 * Read-only mappings over real PROT_READ memory (the real addon's mmap of a
 * temp file): every way of writing through the read-only view throws a
 * TypeError; none reaches the page (which would be SIGSEGV, killing the runner).
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';

import { native, PROT_READ } from '../../lib/binding.js';
import { MappingImpl } from '../../lib/resource.js';

it('refuses writes through a PROT_READ mapping with a TypeError instead of SIGSEGV', async () => {
  const b = native();
  const dir = mkdtempSync(join(tmpdir(), 'xzc-ro-'));
  const file = join(dir, 'pages');
  writeFileSync(file, Buffer.alloc(2 * 4096, 0x42));
  const fd = openSync(file, 'r');
  try {
    const m = new MappingImpl(b.mmap(fd, 2 * 4096, PROT_READ, 0), false, (ab) => b.munmap(ab));
    const v = m.bytes as Buffer; // as a caller ignoring the types would
    const attempts: [string, () => unknown][] = [
      ['index', () => { v[0] = 1; }],
      ['fill', () => v.fill(1)],
      ['set', () => v.set([1, 2])],
      ['write', () => v.write('x')],
      ['writeUInt32LE', () => v.writeUInt32LE(1, 0)],
      ['copyWithin', () => v.copyWithin(0, 1)],
      ['reverse', () => v.reverse()],
      ['sort', () => v.sort()],
      ['swap16', () => v.swap16()],
      ['.buffer', () => new Uint8Array(v.buffer).fill(1)],
      ['subarray index', () => { v.subarray(8)[0] = 1; }],
      ['slice index', () => { v.slice(8)[0] = 1; }],
      ['valueOf', () => { (v.valueOf() as Buffer)[0] = 1; }],
      ['defineProperty', () => Object.defineProperty(v, 0, { value: 1 })],
      ['Buffer.prototype.fill.call', () => Buffer.prototype.fill.call(v, 1)],
      ['Uint8Array.prototype.set.call', () => Uint8Array.prototype.set.call(v, [1])],
    ];
    for (const [name, write] of attempts) expect(write, name).toThrow(TypeError);
    // reads work in place
    expect(v[0]).toBe(0x42);
    expect(v.readUInt32LE(4092)).toBe(0x42424242);
    expect(v.equals(Buffer.alloc(2 * 4096, 0x42))).toBe(true);
    const dest = Buffer.alloc(16);
    v.copy(dest, 0, 0, 16);
    expect(dest[15]).toBe(0x42);
    expect(m.toBuffer().length).toBe(2 * 4096);
    await m.close();
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});
