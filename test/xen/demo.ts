/**
 * `npm run demo` (runs in Dom0): a DomU frontend renders a 1920x1080 XRGB8888
 * test image into pages it grants to Dom0; the Node backend maps them and
 * saves what it sees as demo-out/guest-frame.png; then Dom0 grants a buffer
 * to the guest, which draws into it, and Dom0 saves demo-out/dom0-buffer.png.
 * Both are compared pixel for pixel with what the guest drew.
 *
 * This is the smoke version: it maps the pages through gntdev. The zero-copy
 * path (xen_drm_zcopy -> dma-buf -> vgem) replaces it once the module lands.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { native, PROT_READ, PROT_WRITE } from '../../lib/binding.js';
import { renderDemo } from './demo-image.js';
import { DomU } from './fixture.js';
import { encodePng } from './png.js';

const WIDTH = 1920;
const HEIGHT = 1080;
const PAGES = Math.ceil((WIDTH * HEIGHT * 4) / 4096);
const outDir = join(process.env.XZC_OUT ?? '.', 'demo-out');
const b = native();
const t0 = performance.now();
const step = (msg: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(2).padStart(6)} s] ${msg}`);

function compare(what: string, got: Uint32Array, want: Uint32Array): void {
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) {
      throw new Error(`${what}: pixel (${i % WIDTH}, ${Math.floor(i / WIDTH)}) is 0x${got[i]!.toString(16)}, the guest drew 0x${want[i]!.toString(16)}`);
    }
  }
}

mkdirSync(outDir, { recursive: true });
step('starting a DomU frontend (PV guest, 128 MiB)');
const guest = await DomU.start({ name: `xzc-demo-${process.pid}` });
const gntdev = b.open('/dev/xen/gntdev');
const gntalloc = b.open('/dev/xen/gntalloc');
try {
  step(`guest domid ${guest.domid} is up`);
  const frame = await guest.share({ pages: PAGES, seed: 0 });
  await guest.draw(frame.id, { width: WIDTH, height: HEIGHT, style: 0, frame: 1 });
  step(`the guest rendered a ${WIDTH}x${HEIGHT} XRGB8888 frame into ${PAGES} pages and granted them to Dom0`);
  const index = b.gntdevMapGrantRefs(gntdev, guest.domid, frame.refs);
  const view = b.mmap(gntdev, PAGES * 4096, PROT_READ, index);
  const pixels = new Uint32Array(view, 0, WIDTH * HEIGHT);
  compare('guest frame', pixels, renderDemo({ width: WIDTH, height: HEIGHT, style: 0, frame: 1, domid: guest.domid }));
  writeFileSync(join(outDir, 'guest-frame.png'), encodePng(new Uint8Array(view), WIDTH, HEIGHT));
  b.munmap(view);
  b.gntdevUnmapGrantRef(gntdev, index, PAGES);
  await guest.unshare(frame.id);
  step('Dom0 read the guest frame (every pixel as drawn) -> demo-out/guest-frame.png');

  const grant = b.gntallocAlloc(gntalloc, guest.domid, PAGES, true);
  const mine = b.mmap(gntalloc, PAGES * 4096, PROT_READ | PROT_WRITE, grant.index);
  await guest.mapDraw(grant.refs, { width: WIDTH, height: HEIGHT, style: 1, frame: 0 });
  compare('Dom0 buffer', new Uint32Array(mine, 0, WIDTH * HEIGHT),
    renderDemo({ width: WIDTH, height: HEIGHT, style: 1, frame: 0, domid: guest.domid }));
  writeFileSync(join(outDir, 'dom0-buffer.png'), encodePng(new Uint8Array(mine), WIDTH, HEIGHT));
  b.munmap(mine);
  b.gntallocDealloc(gntalloc, grant.index, PAGES);
  step('the guest drew into a Dom0 buffer granted to it -> demo-out/dom0-buffer.png');
} finally {
  b.close(gntdev);
  b.close(gntalloc);
  await guest.destroy();
  step('guest destroyed');
}
