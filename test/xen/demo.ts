/**
 * `npm run demo` (runs in Dom0, started by the harness): a DomU frontend
 * renders a 1920x1080 XRGB8888 test image into pages it grants to Dom0; the
 * Node backend imports them zero-copy through xen_drm_zcopy, hands the
 * dma-buf to a real DRM driver (vgem), reads the pixels back and saves
 * demo-out/guest-frame.png. Then the reverse path: a vgem buffer granted to
 * the guest, which draws into it; Dom0 saves demo-out/dom0-buffer.png. Both
 * are compared pixel for pixel with what the guest drew.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { DrmDevice, probe, ZeroCopyDevice } from '../../lib/index.js';
import { renderDemo } from './demo-image.js';
import { DomU } from './fixture.js';
import { encodePng } from './png.js';

const WIDTH = 1920;
const HEIGHT = 1080;
const PAGES = (WIDTH * HEIGHT * 4) / 4096;
const outDir = join(process.env.XZC_OUT ?? '.', 'demo-out');
const t0 = performance.now();
const step = (msg: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(2).padStart(6)} s] ${msg}`);

function compare(what: string, got: Buffer, want: Uint32Array): void {
  const px = new Uint32Array(got.buffer, got.byteOffset, want.length);
  for (let i = 0; i < want.length; i++) {
    if (px[i] !== want[i]) {
      throw new Error(`${what}: pixel (${i % WIDTH}, ${Math.floor(i / WIDTH)}) is 0x${px[i]!.toString(16)}, the guest drew 0x${want[i]!.toString(16)}`);
    }
  }
}

mkdirSync(outDir, { recursive: true });
const caps = probe();
step(`probe: xen=${caps.xen} dom0=${caps.dom0} ${caps.guestType ?? ''}; xen_drm_zcopy ${caps.zcopy.version ?? 'missing'} at ${caps.zcopy.node ?? '-'} (max ${caps.zcopy.maxPages} pages); gntdev dma-buf ${caps.gntdev.dmabuf ? 'yes' : 'no (Debian kernel)'}`);
step('starting a DomU frontend (PV guest, 128 MiB)');
const guest = await DomU.start({ name: `xzc-demo-${process.pid}` });
const zc = ZeroCopyDevice.open();
const vgem = DrmDevice.open('vgem');
try {
  step(`guest domid ${guest.domid} is up`);
  const frame = await guest.share({ pages: PAGES, seed: 0 });
  await guest.draw(frame.id, { width: WIDTH, height: HEIGHT, style: 0, frame: 1 });
  step(`the guest rendered a ${WIDTH}x${HEIGHT} XRGB8888 frame into ${PAGES} pages and granted them to Dom0`);
  const t1 = performance.now();
  const buf = await zc.importGuestBuffer({ domid: guest.domid, refs: frame.refs, width: WIDTH, height: HEIGHT, bpp: 32 });
  const handle = vgem.importDmaBuf(buf.dmabuf);
  step(`zero-copy import: FROM_REFS + dma-buf export + vgem import (handle ${handle}) in ${(performance.now() - t1).toFixed(1)} ms`);
  const view = buf.dmabuf.map('read');
  const pixels = view.toBuffer(); // a copy: the PNG encoder wants a plain Buffer
  await view.close();
  compare('guest frame', pixels, renderDemo({ width: WIDTH, height: HEIGHT, style: 0, frame: 1, domid: guest.domid }));
  writeFileSync(join(outDir, 'guest-frame.png'), encodePng(pixels, WIDTH, HEIGHT, buf.format.pitch));
  step('Dom0 read the guest\'s own pages through the dma-buf: every pixel as drawn -> demo-out/guest-frame.png');
  step(`released: ${await buf.close()} (vgem handle, zcopy handle, dma-buf fd closed; WAIT_FREE)`);
  await guest.unshare(frame.id);

  const mine = vgem.createDumbDmaBuf(WIDTH, HEIGHT, 32);
  const granted = await zc.exportToGuest(mine, { domid: guest.domid });
  step(`Dom0 granted a vgem buffer to the guest: ${granted.refs.length} refs`);
  await guest.mapDraw(granted.refs, { width: WIDTH, height: HEIGHT, style: 1, frame: 0 });
  const back = mine.map('read');
  const backPixels = back.toBuffer();
  await back.close();
  compare('Dom0 buffer', backPixels, renderDemo({ width: WIDTH, height: HEIGHT, style: 1, frame: 0, domid: guest.domid }));
  writeFileSync(join(outDir, 'dom0-buffer.png'), encodePng(backPixels, WIDTH, HEIGHT, mine.format!.pitch));
  await granted.close();
  await mine.close();
  step('the guest drew into the Dom0 buffer; Dom0 sees every pixel -> demo-out/dom0-buffer.png');
  // what was drawn, for checking the PNGs afterwards (test/xen/check-demo.ts)
  writeFileSync(join(outDir, 'demo.json'), `${JSON.stringify({
    width: WIDTH, height: HEIGHT, domid: guest.domid,
    images: { 'guest-frame.png': { style: 0, frame: 1 }, 'dom0-buffer.png': { style: 1, frame: 0 } },
  }, null, 2)}\n`);
} finally {
  await vgem.close();
  await zc.close();
  await guest.destroy();
  step('guest destroyed');
}
