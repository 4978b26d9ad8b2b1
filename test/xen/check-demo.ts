/**
 * Checks the demo's PNGs pixel for pixel against the image the guest drew
 * (demo-image.ts mirrors the guest's drawing code). Run on the host after
 * `npm run demo`: node --import tsx test/xen/check-demo.ts [demo-out]
 * Prints one line per image and `N passed, N failed`; exits 1 on a mismatch.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';

import { renderDemo } from './demo-image.js';

/** Decodes an 8-bit RGB PNG with filter type 0 rows (what png.ts writes) to XRGB8888 words. */
export function decodePng(png: Buffer): { width: number; height: number; pixels: Uint32Array } {
  if (png.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let off = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('ascii', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[9] !== 2) throw new Error('expected 8-bit RGB');
    } else if (type === 'IDAT') {
      idat.push(data);
    }
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const pixels = new Uint32Array(width * height);
  const stride = width * 3 + 1;
  for (let y = 0; y < height; y++) {
    if (raw[y * stride] !== 0) throw new Error(`row ${y}: unsupported filter ${raw[y * stride]}`);
    for (let x = 0; x < width; x++) {
      const p = y * stride + 1 + x * 3;
      pixels[y * width + x] = ((raw[p]! << 16) | (raw[p + 1]! << 8) | raw[p + 2]!) >>> 0;
    }
  }
  return { width, height, pixels };
}

const dir = process.argv[2] ?? 'demo-out';
const meta = JSON.parse(readFileSync(join(dir, 'demo.json'), 'utf8')) as {
  width: number; height: number;
  images: Record<string, { style: 0 | 1; frame: number; domid: number; width?: number; height?: number }>;
};
let passed = 0;
let failed = 0;
for (const [file, img] of Object.entries(meta.images)) {
  const png = decodePng(readFileSync(join(dir, file)));
  const width = img.width ?? meta.width;
  const height = img.height ?? meta.height;
  const want = renderDemo({ width, height, domid: img.domid, style: img.style, frame: img.frame });
  const bad = png.width !== width || png.height !== height ? 0 : want.findIndex((px, i) => px !== png.pixels[i]);
  if (bad === -1) {
    passed++;
    console.log(`ok   ${file}: ${png.width}x${png.height}, every pixel as the guest drew it`);
  } else {
    failed++;
    console.log(`FAIL ${file}: differs at pixel ${bad} (${png.width}x${png.height})`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
