/**
 * A minimal PNG writer (8-bit RGB, no interlace) for XRGB8888 pixels, used by
 * the demo to save what Dom0 read from a buffer.
 */
import { crc32, deflateSync } from 'node:zlib';

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** Encodes `width` x `height` XRGB8888 pixels (row pitch `pitch` bytes) as PNG. */
export function encodePng(pixels: Uint8Array, width: number, height: number, pitch = width * 4): Buffer {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const dst = y * (width * 3 + 1);
    raw[dst] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      const src = y * pitch + x * 4; // little-endian XRGB: B G R X
      raw[dst + 1 + x * 3] = pixels[src + 2]!;
      raw[dst + 2 + x * 3] = pixels[src + 1]!;
      raw[dst + 3 + x * 3] = pixels[src]!;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, truecolour, deflate, adaptive filters, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 6 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
